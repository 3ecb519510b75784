"""Frozen, validated configuration of the potential and of training, readable from YAML."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["ModelConfig", "TrainConfig", "load_config"]

ARCHITECTURES = ("nequip", "allegro")


def _check_keys(cls, data: dict[str, Any], where: str) -> None:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} in {where}. Fix: use only {sorted(names)}."
        )


@dataclass(frozen=True)
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

    architecture: str = "nequip"
    species: tuple[str, ...] = ()
    r_max: float = 5.0
    num_layers: int = 3
    lmax: int = 2
    parity: bool = True
    mul: int = 32
    num_basis: int = 8
    radial_hidden: int = 64
    radial_layers: int = 2
    latent: int = 64
    mlp_hidden: int = 64
    avg_num_neighbors: float | None = None
    zbl: bool = False
    cutoff_p: float = 6.0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"model.architecture must be one of {ARCHITECTURES}, got '{self.architecture}'.")
        if not self.r_max > 0:
            raise ValueError(f"model.r_max must be positive (Å), got {self.r_max}.")
        for name in ("num_layers", "mul", "num_basis", "radial_hidden", "latent", "mlp_hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}.")
        if not 0 <= self.lmax <= 6:
            raise ValueError(f"model.lmax must be in 0..6, got {self.lmax}.")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"model.dtype must be 'float32' or 'float64', got '{self.dtype}'.")
        object.__setattr__(self, "species", tuple(self.species))
        if len(set(self.species)) != len(self.species):
            raise ValueError(f"model.species has duplicates: {self.species}.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        _check_keys(cls, data, "model config")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["species"] = list(self.species)
        return d


@dataclass(frozen=True)
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
    train_files: tuple[str, ...] = ()
    val_files: tuple[str, ...] = ()
    val_fraction: float = 0.1
    output_dir: str = "mlip-run"
    seed: int = 0
    batch_size: int = 4
    max_epochs: int = 100
    max_time_s: float | None = None
    lr: float = 5e-3
    weight_decay: float = 0.0
    schedule: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 10
    ema_decay: float = 0.99
    early_stopping_patience: int = 0
    energy_weight: float = 1.0
    force_weight: float = 1.0
    stress_weight: float = 0.0
    grad_clip: float | None = None
    residual_of: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        for name in ("train_files", "val_files"):
            v = getattr(self, name)
            object.__setattr__(self, name, (v,) if isinstance(v, str) else tuple(v))
        if self.schedule not in ("plateau", "cosine", "constant"):
            raise ValueError(f"schedule must be 'plateau', 'cosine' or 'constant', got '{self.schedule}'.")
        if self.batch_size < 1 or self.max_epochs < 1:
            raise ValueError("batch_size and max_epochs must be >= 1.")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}.")
        if min(self.energy_weight, self.force_weight, self.stress_weight) < 0:
            raise ValueError("loss weights must be >= 0.")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        _check_keys(cls, data, "training config")
        data = dict(data)
        if "model" in data:
            data["model"] = ModelConfig.from_dict(dict(data["model"]))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["model"] = self.model.to_dict()
        d["train_files"] = list(self.train_files)
        d["val_files"] = list(self.val_files)
        return d


def load_config(path: str | Path) -> TrainConfig:
    """Read a :class:`TrainConfig` from YAML; relative file paths resolve against the
    YAML file's folder."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file '{path}' does not exist.")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file '{path}' must hold a mapping of keys to values.")
    base = path.parent
    for key in ("train_files", "val_files"):
        if key in data:
            v = data[key]
            v = [v] if isinstance(v, str) else list(v)
            data[key] = [str(p if Path(p).is_absolute() else base / p) for p in v]
    for key in ("output_dir", "residual_of"):
        if data.get(key) and not Path(data[key]).is_absolute():
            data[key] = str(base / data[key])
    return TrainConfig.from_dict(data)
