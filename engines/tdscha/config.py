"""One frozen, validated configuration for ``atomtwin scha`` and ``atomtwin tdscha`` (YAML).

Example (every section but ``model`` is optional)::

    model:            # harmonic | quartic | double_well | polar_lattice | ase
      kind: quartic
      k: 0.6          # the constructor's keyword arguments (atomtwin.engines.tdscha.models)
      quartic: 0.5
    # model: {kind: ase, structure: cell.xyz, calculator: emt, born_charges: {Sr: 2.5, Ti: 7.1, O: -3.2}}
    # model: {kind: mlip, structure: cell.xyz, checkpoint: best.ckpt, device: cpu, batch_size: null}
    temperature: 0            # K
    averages: {kind: exact, n_configs: 64, seed: 0, correlated: true}   # exact | ensemble
    scha: {mixing: 0.5, max_iter: 500, tol: 1.0e-8, ess_threshold: 0.5, fix_centroid: false,
           start_centroid: null, start_force_constants: null, start_frequencies: null,
           scan_centroid: auto}     # start_*: Cartesian Å, eV/Å² (or file.npy), THz
    tdscha: {dt: 0.0005, n_steps: 1000, output_every: 1, covariances: full, max_omega_dt: 1.0}
    pulse: {kind: gaussian, amplitude: 0.3, frequency: 12.0, t0: 0.15, width: 0.05,
            polarization: [1, 0, 0], screening: null}
    classical: true           # also run classical MD under the same pulse
    output: tdscha.nc
"""

from __future__ import annotations

import inspect
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from atomtwin.engines.tdscha import models as M
from atomtwin.toolkit.config import (
    ConfigPath,
    Count,
    Invalid,
    NonNegFloat,
    PositiveCount,
    PositiveFloat,
    closest,
    config_class,
    load_yaml,
    unknown_key,
    validate,
)
from atomtwin.toolkit.errors import ConfigError, FileFormatError
from pydantic import Field, model_validator

MODEL_KINDS = {"harmonic": M.harmonic_1d, "quartic": M.quartic_1d, "double_well": M.double_well_1d,
               "polar_lattice": M.polar_lattice}
#: keys of the structure-based models (besides ``kind``)
STRUCTURE_KEYS = {"ase": ("structure", "calculator", "born_charges"),
                  "mlip": ("structure", "checkpoint", "device", "batch_size", "skin", "born_charges")}
PULSE_KINDS = ("gaussian", "single_cycle", "none")
UnitFraction = Annotated[float, Field(gt=0, le=1)]


def _keys_of(func) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]


def _check_section(where: str, given, allowed, what: str) -> None:
    for key in given:
        if key not in allowed:
            near = closest(key, allowed)
            fix = f"did you mean '{near}'?" if near else f"use only {', '.join(sorted(allowed))}"
            raise Invalid(f"{where}.{key}", f"unknown key for {what}", fix)


@config_class
class AveragesConfig:
    """How SCHA/TD-SCHA averages are taken: ``exact`` (polynomial models) or ``ensemble``
    (``n_configs`` antithetic configurations, even)."""

    kind: Literal["exact", "ensemble"] = "exact"
    n_configs: PositiveCount = 64
    seed: Count = 0
    correlated: bool = True

    @model_validator(mode="after")
    def _check(self):
        if self.n_configs < 2 or self.n_configs % 2:
            raise Invalid("n_configs", f"{self.n_configs} is not an even number >= 2 (antithetic pairs)",
                          f"use {max(2, self.n_configs + self.n_configs % 2)}")
        return self


@config_class
class SCHAOptions:
    """SCHA minimisation (see :func:`atomtwin.engines.tdscha.scha.scha`).

    ``mixing`` first step in (0, 1]; ``tol`` relative residual; ``min_frequency`` THz below
    which a harmonic start mode counts as soft.  Starting point (all optional, Cartesian):
    ``start_centroid`` (n values, Å), ``start_force_constants`` ((n, n) eV/Å², or a ``.npy``
    file), ``start_frequencies`` (THz: one number, or one per mode).  ``scan_centroid``:
    ``auto`` (symmetry-broken starts when the start is unstable), ``true`` (always, along the
    3 softest modes) or ``false``.  ``n_jackknife``: groups for the ensemble frequency errors.
    """

    mixing: UnitFraction = 0.5
    max_iter: PositiveCount = 500
    tol: PositiveFloat = 1e-8
    ess_threshold: UnitFraction = 0.5
    fix_centroid: bool = False
    min_frequency: NonNegFloat = 0.1
    start_centroid: list[float] | None = None
    start_force_constants: list[list[float]] | str | None = None
    start_frequencies: PositiveFloat | list[PositiveFloat] | None = None
    scan_centroid: bool | Literal["auto"] = "auto"
    n_jackknife: Annotated[int, Field(ge=2)] = 20


@config_class
class TDSCHAOptions:
    """Time stepping: ``dt`` ps, ``n_steps``, a frame every ``output_every`` steps."""

    dt: PositiveFloat = 0.0005
    n_steps: Count = 1000
    output_every: PositiveCount = 1
    covariances: Literal["full", "diagonal", "none"] = "full"
    max_omega_dt: PositiveFloat = 1.0


_FIELDS = ("model", "temperature", "averages", "scha", "tdscha", "pulse", "classical", "output", "base_dir")


@config_class
class RunConfig:
    """Validated run configuration; see the module docstring for the YAML layout."""

    model: dict[str, Any]
    temperature: NonNegFloat = 0.0
    averages: AveragesConfig = field(default_factory=AveragesConfig)
    scha: SCHAOptions = field(default_factory=SCHAOptions)
    tdscha: TDSCHAOptions = field(default_factory=TDSCHAOptions)
    pulse: dict[str, Any] | None = None
    classical: bool = False
    output: ConfigPath | None = None
    base_dir: str = "."
    _hidden_keys = ("base_dir",)  # set by from_yaml, not a key of the YAML

    @model_validator(mode="after")
    def _check(self):
        kind = self.model.get("kind")
        kinds = [*MODEL_KINDS, "ase", "mlip"]
        if kind is None:
            raise Invalid("model.kind", "required key missing", f"add kind: one of {', '.join(kinds)}")
        if kind not in kinds:
            near = closest(kind, kinds)
            raise Invalid("model.kind", f"'{kind}' is not one of {', '.join(kinds)}",
                          f"did you mean '{near}'?" if near else f"use one of {', '.join(kinds)}")
        rest = [k for k in self.model if k != "kind"]
        if kind in MODEL_KINDS:
            _check_section("model", rest, _keys_of(MODEL_KINDS[kind]), f"the {kind} model")
            for key in rest:
                value = self.model[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise Invalid(f"model.{key}", f"must be a number (got {value!r})",
                                  "write a number, e.g. 0.5 or 1e-3")
            if "n_cells" in self.model and (not float(self.model["n_cells"]).is_integer()
                                            or self.model["n_cells"] < 1):
                raise Invalid("model.n_cells", f"must be a whole number >= 1 (got {self.model['n_cells']})",
                              "write an integer such as 4")
            try:  # polynomial models are cheap: their own checks run at load time
                MODEL_KINDS[kind](**{k: self.model[k] for k in rest})
            except ValueError as err:
                problem, _, fix = str(err).partition(" Fix: ")
                raise Invalid("model", f"{kind}: {problem}", fix or None) from None
        else:
            _check_section("model", rest, STRUCTURE_KEYS[kind], f"model kind {kind}")
            if "structure" not in self.model:
                raise Invalid("model.structure", f"model kind {kind} needs a structure",
                              "add structure: <any file ASE reads>")
            if kind == "mlip" and "checkpoint" not in self.model:
                raise Invalid("model.checkpoint", "model kind mlip needs a trained model",
                              "add checkpoint: <path of a trained atomtwin checkpoint>")
            if self.averages.kind == "exact":
                raise Invalid("averages.kind", f"exact averages need a polynomial model, not '{kind}'",
                              "set averages: {kind: ensemble}")
        if self.pulse:
            pkind = self.pulse.get("kind", "gaussian")
            if pkind not in PULSE_KINDS:
                near = closest(pkind, PULSE_KINDS)
                raise Invalid("pulse.kind", f"'{pkind}' is not one of {', '.join(PULSE_KINDS)}",
                              f"did you mean '{near}'?" if near else f"use one of {', '.join(PULSE_KINDS)}")
            if pkind != "none":
                from atomtwin.engines.tdscha.pulses import GaussianPulse, SingleCyclePulse

                cls = GaussianPulse if pkind == "gaussian" else SingleCyclePulse
                _check_section("pulse", [k for k in self.pulse if k != "kind"],
                               [*_keys_of(cls), "screening"], f"a {pkind} pulse")
            scr = self.pulse.get("screening")
            if scr is not None and (isinstance(scr, bool) or not isinstance(scr, (int, float)) or scr <= 0):
                raise Invalid("pulse.screening", f"must be a number > 0 (got {scr!r})",
                              "give eps_infinity > 0, or null for no screening")
        return self

    @classmethod
    def from_dict(cls, d: dict, base_dir: str = ".", *, source: str | None = None) -> RunConfig:
        """A config from a mapping; relative paths are taken relative to ``base_dir``."""
        source = source or cls.__name__
        if isinstance(d, dict) and "base_dir" in d:
            raise unknown_key(source, "", "base_dir", [k for k in _FIELDS if k != "base_dir"])
        if isinstance(d, dict) and isinstance(d.get("model"), dict):
            model = dict(d["model"])
            for key in ("structure", "checkpoint", "born_charges"):
                v = model.get(key)
                if isinstance(v, str) and not Path(v).expanduser().is_absolute():
                    model[key] = str(Path(base_dir) / Path(v).expanduser())
            d = {**d, "model": model}
        data = {**d, "base_dir": str(base_dir)} if isinstance(d, dict) else d
        return validate(cls, data, source=source, base=base_dir if base_dir != "." else None)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        """Read a YAML config; relative paths are taken relative to its folder."""
        path = Path(path)
        return cls.from_dict(load_yaml(path), base_dir=str(path.resolve().parent), source=str(path))

    # --- building the objects ------------------------------------------------------
    def build(self):
        """(system, model or None, provider) from the model section."""
        from atomtwin.engines.tdscha.providers import ASEProvider, System

        spec = dict(self.model)
        kind = spec.pop("kind")
        if kind in MODEL_KINDS:
            try:
                model = MODEL_KINDS[kind](**spec)
            except (TypeError, ValueError) as err:
                fix = "" if " Fix: " in str(err) else \
                    f" Fix: see atomtwin.engines.tdscha.models.{MODEL_KINDS[kind].__name__}."
                raise ConfigError(f"model ({kind}): {err}{fix}") from None
            return System.from_model(model), model, model
        from ase.io import read

        struct = spec.pop("structure", None)
        p = Path(struct) if Path(struct).is_absolute() else Path(self.base_dir) / struct
        if not p.is_file():
            raise ConfigError(f"model.structure: the file '{p}' does not exist. Fix: correct the path "
                              "(relative paths start at the YAML file's folder).")
        try:
            atoms = read(p)
        except (ValueError, KeyError, IndexError, StopIteration, UnicodeDecodeError) as err:
            raise FileFormatError(p, f"ASE cannot read the structure ({err})",
                                  "give a structure file ASE reads (extxyz, cif, POSCAR ...)") from None
        z = _born_charges(spec.pop("born_charges", None), atoms, self.base_dir)
        if kind == "mlip":
            from atomtwin.engines.tdscha.mlip_provider import MLIPProvider

            ck = spec.pop("checkpoint", None)
            if ck is None:
                raise ConfigError("model.checkpoint: model kind mlip needs a trained model. "
                                  "Fix: add checkpoint: <path of a trained atomtwin checkpoint>.")
            ck = Path(ck) if Path(ck).is_absolute() else Path(self.base_dir) / ck
            kw = {k: spec.pop(k) for k in ("device", "batch_size", "skin") if k in spec}
            if spec:
                raise ConfigError(f"model: unknown key(s) {sorted(spec)} for kind mlip. "
                                  f"Fix: use only {', '.join(STRUCTURE_KEYS['mlip'])}.")
            return System.from_atoms(atoms, z), None, MLIPProvider(str(ck), atoms, **kw)
        calc = make_calculator(spec.pop("calculator", "emt"))
        if spec:
            raise ConfigError(f"model: unknown key(s) {sorted(spec)} for kind ase. "
                              f"Fix: use only {', '.join(STRUCTURE_KEYS['ase'])}.")
        return System.from_atoms(atoms, z), None, ASEProvider(atoms, calc)


def make_calculator(name: str):
    """An ASE calculator from a name: ``emt``, ``lj``, or ``package.module:factory``."""
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if name == "lj":
        from ase.calculators.lj import LennardJones

        return LennardJones()
    if ":" in name:
        from importlib import import_module

        mod, _, attr = name.partition(":")
        return getattr(import_module(mod), attr)()
    raise ConfigError(f"model.calculator: '{name}' is unknown. Fix: emt, lj or 'module:factory'.")


def _born_charges(spec, atoms, base_dir: str):
    if spec is None:
        return None
    if isinstance(spec, dict):
        missing = sorted(set(atoms.get_chemical_symbols()) - set(spec))
        if missing:
            raise ConfigError(f"model.born_charges: no charge for species {missing}. "
                              "Fix: give a charge for every species.")
        return np.array([np.eye(3) * float(spec[s]) for s in atoms.get_chemical_symbols()])
    p = Path(spec) if Path(spec).is_absolute() else Path(base_dir) / spec
    return np.load(p)
