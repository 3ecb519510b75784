"""The validated configuration of an active-learning run (``atomtwin learn config.yaml``).

Example (units: Å, ps, K, eV, amu; pressure eV/Å³; thresholds eV/Å)::

    output_dir: cu-active
    seed_frames: seed.extxyz          # labelled, or bare structures the reference labels first
    validation_files: val.extxyz      # optional: the learning curve's validation error
    model: {r_max: 4.0, num_layers: 2, lmax: 1, mul: 8}
    uncertainty: {kind: committee, n_models: 3, check_every: 10, threshold: 0.15}
    fit: {epochs: 80, update_epochs: 20, full_retrain_every: 10}
    reference: {calculator: emt, timeout_s: 600, max_consecutive_failures: 5}
    walkers:
      - {structure: cu.xyz, ensemble: langevin, temperature: 300, temperature_end: 1800,
         steps: 2000, timestep: 0.004, copies: 2}
    max_calls: 100

``max_force`` (eV/Å, the model's) and ``min_distance`` (Å, optional): a walker check with a
larger force or two atoms closer is a blow-up — the frame is labelled and the walker goes
back to its last safe state.  Relative paths resolve against the YAML file's folder.  Mistakes raise
:class:`~atomtwin.toolkit.errors.ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from atomtwin.engines.mlip.config import ModelConfig
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

__all__ = [
    "WalkerConfig",
    "UncertaintyConfig",
    "FitSettings",
    "ReferenceConfig",
    "LearnConfig",
    "load_config",
]


def _as_list(value):
    return [value] if isinstance(value, (str, Path)) else value


Files = Annotated[tuple[ConfigPath, ...], BeforeValidator(_as_list)]


@config_class
class WalkerConfig:
    """One MD walker (``copies`` independent ones with seeds seed, seed+1, ...).

    structure : file ASE reads (frame ``frame``).  ensemble : ``langevin`` / ``nhc`` (NVT) or
    ``npt`` (stochastic cell rescaling).  temperature, temperature_end : K, a linear ramp
    over ``steps``.  pressure, pressure_end : eV/Å³ (NPT), a linear ramp.  timestep : ps.
    friction : 1/ps.  compressibility : Å³/eV.  tau_p : ps.
    """

    structure: ConfigPath
    frame: int = -1
    ensemble: Literal["langevin", "nhc", "npt"] = "langevin"
    temperature: PositiveFloat = 300.0
    temperature_end: PositiveFloat | None = None
    pressure: float = 0.0
    pressure_end: float | None = None
    steps: PositiveCount = 1000
    timestep: PositiveFloat = 0.002
    friction: PositiveFloat = 5.0
    compressibility: PositiveFloat = 1.0
    tau_p: PositiveFloat = 0.5
    copies: PositiveCount = 1


@config_class
class UncertaintyConfig:
    """Estimator, calibration and trigger.

    kind : ``committee`` (``n_models`` independently initialised models) or ``gp`` (one
    model; posterior variance on its last-layer features, prior precision ``reg``).
    calibration : ``scale`` / ``isotonic`` (fitted on errors measured before each labelled
    frame was added, and on ``validation_files``).  check_every : MD steps between checks.
    threshold : eV/Å, calibrated force std of the most uncertain atom that triggers a call;
    or ``threshold_rel`` times the reference's ``noise_floor`` (eV/Å).
    threshold_train : a trigger relative to the model's own floor: a call when the structure
    uncertainty exceeds ``threshold_train`` times the median structure uncertainty of the
    current training frames (for ``gp`` each frame as if left out of the fit; recomputed
    after every update; the larger of this and
    ``threshold`` when both are given).  It follows the model as it improves, and for a
    ``scale`` calibration it does not depend on the calibration at all.
    floor : the level ``threshold_train`` multiplies: ``pooled`` (all training frames) or
    ``walker`` (one level per walker, over the frames it called and the seed frames).  A
    pooled level is set by the hardest walker once its frames are in (a melt raises it for
    every walker, and a cold walker then stops calling while its error is still large); a
    level per walker asks each walker for novelty against what it has itself taught.
    min_gap : MD steps after a walker's call during which its uncertainty does not trigger
    another call (blow-ups still do): consecutive frames of one walker are correlated, and
    a walker that resumes from before its uncertain step otherwise tends to return to the
    same place and label near-copies of the frame it just added.
    features : the ``gp`` estimator's per-atom features, ``all`` (invariants of every
    interaction layer) or ``last`` (the energy head's input).
    calibration_window : the most recent labelled frames the calibration uses.
    """

    kind: Literal["committee", "gp"] = "committee"
    n_models: Annotated[int, Field(ge=2)] = 3
    reg: PositiveFloat = 1e-3
    features: Literal["all", "last"] = "all"
    calibration: Literal["scale", "isotonic"] = "scale"
    check_every: PositiveCount = 10
    threshold: PositiveFloat | None = None
    threshold_rel: PositiveFloat | None = None
    noise_floor: PositiveFloat | None = None
    threshold_train: Annotated[float, Field(gt=1.0)] | None = None
    floor: Literal["pooled", "walker"] = "pooled"
    min_gap: Count = 0
    calibration_window: PositiveCount = 30

    @model_validator(mode="after")
    def _check(self):
        if self.threshold is None and self.threshold_rel is None and self.threshold_train is None:
            raise Invalid(
                "threshold",
                "no trigger given",
                "give threshold (eV/Å), threshold_rel with noise_floor, or threshold_train",
            )
        if self.threshold is not None and self.threshold_rel is not None:
            raise Invalid("threshold_rel", "both threshold and threshold_rel are given", "keep one")
        if self.threshold_rel is not None and self.noise_floor is None:
            raise Invalid(
                "noise_floor",
                "threshold_rel needs the reference's noise floor",
                "give noise_floor (eV/Å), e.g. the force error of the reference's settings",
            )
        return self

    @property
    def trigger(self) -> float:
        """The fixed part of the threshold in eV/Å (0 when only ``threshold_train`` is set)."""
        if self.threshold is not None:
            return float(self.threshold)
        if self.threshold_rel is not None:
            return float(self.threshold_rel * self.noise_floor)
        return 0.0


@config_class
class FitSettings:
    """Model updates: ``epochs`` for the first fit and every full retrain (fresh weights),
    ``update_epochs`` for the warm-started fine-tuning after each round, a full retrain
    every ``full_retrain_every`` labelled frames (0: never); Adam ``lr``, ``batch_size``,
    loss weights."""

    epochs: PositiveCount = 80
    update_epochs: PositiveCount = 20
    full_retrain_every: Count = 20
    lr: PositiveFloat = 5e-3
    batch_size: PositiveCount = 4
    energy_weight: NonNegFloat = 1.0
    force_weight: NonNegFloat = 1.0


@config_class
class ReferenceConfig:
    """The reference: ``calculator`` "module:Class" or a shorthand (emt, lj, chgnet,
    tblite) built with ``kwargs``; ``timeout_s`` per call; ``stress`` also labelled;
    ``max_consecutive_failures`` in a row stop the run."""

    calculator: str = "emt"
    kwargs: dict[str, Any] = field(default_factory=dict)
    timeout_s: PositiveFloat | None = None
    stress: bool = False
    max_consecutive_failures: PositiveCount = 5


@config_class
class LearnConfig:
    """An active-learning run (see the module docstring)."""

    seed_frames: Files
    walkers: tuple[WalkerConfig, ...]
    output_dir: ConfigPath = Field(default="active-run", validate_default=True)
    validation_files: Files = ()
    model: ModelConfig = field(default_factory=ModelConfig)
    uncertainty: UncertaintyConfig = field(default_factory=lambda: UncertaintyConfig(threshold=0.2))
    fit: FitSettings = field(default_factory=FitSettings)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    max_calls: PositiveCount = 100
    max_calls_per_round: PositiveCount | None = None
    max_force: PositiveFloat = 50.0
    min_distance: PositiveFloat | None = None
    seed: Count = 0
    progress: bool = True

    @model_validator(mode="after")
    def _check(self):
        if not self.seed_frames:
            raise Invalid("seed_frames", "is empty", "list at least one file of seed structures")
        if not self.walkers:
            raise Invalid("walkers", "is empty", "list at least one walker")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: str | Path | None = None) -> LearnConfig:
        return validate(cls, data, source=cls.__name__, base=base)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return _plain(d)


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def load_config(path: str | Path) -> LearnConfig:
    """Read a :class:`LearnConfig` from YAML (relative paths against its folder)."""
    return load(LearnConfig, path)
