"""Frozen, validated configuration of the potential and of training, readable from YAML.

A mistake raises :class:`~atomtwin.toolkit.errors.ConfigError` with one line naming the file,
the key (``model.r_max``), the problem and the fix; numbers such as ``lr: 1e-3`` are numbers;
relative paths (``train_files``, ``val_files``, ``output_dir``, ``residual_of``) are taken
relative to the YAML file's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from atomtwin.toolkit.config import (
    ConfigPath,
    Count,
    Invalid,
    NonNegFloat,
    PositiveCount,
    PositiveFloat,
    config_class,
    load,
    validate,
)
from pydantic import BeforeValidator, Field, model_validator

__all__ = ["ModelConfig", "TrainConfig", "load_config"]

ARCHITECTURES = ("nequip", "allegro")


def _as_list(value):
    return [value] if isinstance(value, (str, Path)) else value


Files = Annotated[tuple[ConfigPath, ...], BeforeValidator(_as_list)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


@config_class
class ModelConfig:
    """Architecture of the potential.

    Attributes
    ----------
    architecture
        ``"nequip"`` (message passing) or ``"allegro"`` (strictly local pairs).
    species
        Chemical symbols; ``atom_types`` index into this list.  Filled from the data when
        empty.
    r_max
        Cutoff radius, Å.
    num_layers, lmax, parity, mul
        Interaction layers, highest rotation order, O(3) (True) or SO(3) equivariance,
        channels per irrep.
    num_basis, radial_hidden, radial_layers
        Bessel functions and the radial network (NequIP); ``latent`` and ``mlp_hidden`` are
        Allegro's scalar-track sizes.
    avg_num_neighbors
        Normalisation of neighbour sums; ``None`` = from the training data.
    zbl
        Add ZBL screened nuclear repulsion (short-range safety).
    cutoff_p
        Exponent of the polynomial envelope.
    dtype
        ``"float32"`` or ``"float64"``.
    """

    architecture: Literal["nequip", "allegro"] = "nequip"
    species: tuple[str, ...] = ()
    r_max: PositiveFloat = 5.0
    num_layers: PositiveCount = 3
    lmax: Annotated[int, Field(ge=0, le=6)] = 2
    parity: bool = True
    mul: PositiveCount = 32
    num_basis: PositiveCount = 8
    radial_hidden: PositiveCount = 64
    radial_layers: PositiveCount = 2
    latent: PositiveCount = 64
    mlp_hidden: PositiveCount = 64
    avg_num_neighbors: PositiveFloat | None = None
    zbl: bool = False
    cutoff_p: PositiveFloat = 6.0
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _check(self):
        dup = sorted({s for s in self.species if self.species.count(s) > 1})
        if dup:
            raise Invalid("species", f"{dup} listed more than once", "list each chemical symbol once")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return validate(cls, data, source="model config")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["species"] = list(self.species)
        return d


@config_class
class TrainConfig:
    """Training run.

    Attributes
    ----------
    train_files, val_files
        Training data (extxyz / anything ASE reads / our netCDF or zarr trajectories);
        without ``val_files`` a fraction ``val_fraction`` of the frames is held out.
    output_dir
        Checkpoints (``last.ckpt`` every epoch, ``best.ckpt``), ``metrics.csv``.
    energy_weight, force_weight, stress_weight
        Loss = w_E MSE(E/atom) + w_F MSE(F) + w_S MSE(stress).
    schedule
        ``"plateau"`` (reduce by ``lr_factor`` after ``lr_patience`` epochs), ``"cosine"``
        (to 0 at ``max_epochs``) or ``"constant"``.
    ema_decay
        Exponential moving average of the weights (0 disables); checkpoints evaluate
        with the averaged weights.
    early_stopping_patience
        Stop when validation loss has not improved for this many epochs (0 disables).
    residual_of
        Path of a trained (small) model: train on the residual labels reference minus
        that model (co-training for multiple-time-step MD, arXiv:2310.13756).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    train_files: Files = ()
    val_files: Files = ()
    val_fraction: Fraction = 0.1
    output_dir: ConfigPath = Field(default="mlip-run", validate_default=True)
    seed: Count = 0
    batch_size: PositiveCount = 4
    max_epochs: PositiveCount = 100
    max_time_s: PositiveFloat | None = None
    lr: PositiveFloat = 5e-3
    weight_decay: NonNegFloat = 0.0
    schedule: Literal["plateau", "cosine", "constant"] = "plateau"
    lr_factor: Annotated[float, Field(gt=0, lt=1)] = 0.5
    lr_patience: Count = 10
    ema_decay: Fraction = 0.99
    early_stopping_patience: Count = 0
    energy_weight: NonNegFloat = 1.0
    force_weight: NonNegFloat = 1.0
    stress_weight: NonNegFloat = 0.0
    grad_clip: PositiveFloat | None = None
    residual_of: ConfigPath | None = None
    progress: bool = True

    @model_validator(mode="after")
    def _check(self):
        if self.energy_weight == self.force_weight == self.stress_weight == 0:
            raise Invalid("force_weight", "every loss weight is 0: nothing would be learned",
                          "give energy_weight, force_weight or stress_weight > 0")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: str | Path | None = None) -> TrainConfig:
        """A config from a mapping (relative paths against ``base`` when given)."""
        return validate(cls, data, source=cls.__name__, base=base)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["model"] = self.model.to_dict()
        d["train_files"] = list(self.train_files)
        d["val_files"] = list(self.val_files)
        return d


def load_config(path: str | Path) -> TrainConfig:
    """Read a :class:`TrainConfig` from YAML; relative file paths resolve against the
    YAML file's folder.

    Raises
    ------
    ConfigError
        One line: the file, the key, the problem and the fix.
    """
    return load(TrainConfig, path)
