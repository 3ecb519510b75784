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
    scha: {mixing: 0.5, max_iter: 200, tol: 1.0e-8, ess_threshold: 0.5, fix_centroid: false}
    tdscha: {dt: 0.0005, n_steps: 1000, output_every: 1, covariances: full, max_omega_dt: 1.0}
    pulse: {kind: gaussian, amplitude: 0.3, frequency: 12.0, t0: 0.15, width: 0.05,
            polarization: [1, 0, 0], screening: null}
    classical: true           # also run classical MD under the same pulse
    output: tdscha.nc
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from atomtwin.engines.tdscha import models as M

MODEL_KINDS = {"harmonic": M.harmonic_1d, "quartic": M.quartic_1d, "double_well": M.double_well_1d,
               "polar_lattice": M.polar_lattice}


def _build(cls, d: dict | None, where: str):
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in '{where}'. Fix: use only {sorted(names)}.")
    return cls(**d)


@dataclass(frozen=True)
class AveragesConfig:
    kind: str = "exact"
    n_configs: int = 64
    seed: int = 0
    correlated: bool = True

    def __post_init__(self):
        if self.kind not in ("exact", "ensemble"):
            raise ValueError(f"averages.kind '{self.kind}': use 'exact' or 'ensemble'.")
        if self.n_configs < 2 or self.n_configs % 2:
            raise ValueError("averages.n_configs must be even and >= 2 (antithetic pairs).")


@dataclass(frozen=True)
class SCHAOptions:
    mixing: float = 0.5
    max_iter: int = 200
    tol: float = 1e-8
    ess_threshold: float = 0.5
    fix_centroid: bool = False
    min_frequency: float = 0.1


@dataclass(frozen=True)
class TDSCHAOptions:
    dt: float = 0.0005
    n_steps: int = 1000
    output_every: int = 1
    covariances: str = "full"
    max_omega_dt: float = 1.0

    def __post_init__(self):
        if self.dt <= 0 or self.n_steps < 0 or self.output_every < 1:
            raise ValueError("tdscha: need dt > 0 (ps), n_steps >= 0, output_every >= 1.")


@dataclass(frozen=True)
class RunConfig:
    """Validated run configuration; see the module docstring for the YAML layout."""

    model: dict
    temperature: float = 0.0
    averages: AveragesConfig = field(default_factory=AveragesConfig)
    scha: SCHAOptions = field(default_factory=SCHAOptions)
    tdscha: TDSCHAOptions = field(default_factory=TDSCHAOptions)
    pulse: dict | None = None
    classical: bool = False
    output: str | None = None
    base_dir: str = "."

    def __post_init__(self):
        kind = self.model.get("kind")
        if kind not in (*MODEL_KINDS, "ase", "mlip"):
            raise ValueError(f"model.kind '{kind}' unknown. Fix: one of {[*MODEL_KINDS, 'ase', 'mlip']}.")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0 K.")
        if kind in ("ase", "mlip") and self.averages.kind == "exact":
            raise ValueError("exact averages need a polynomial model. Fix: set averages.kind: ensemble.")

    @classmethod
    def from_dict(cls, d: dict, base_dir: str = ".") -> RunConfig:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)} - {"base_dir"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown top-level key(s) {unknown}. Fix: use only {sorted(known)}.")
        if "model" not in d or not isinstance(d["model"], dict):
            raise ValueError("the config needs a 'model' mapping with a 'kind'.")
        return cls(model=dict(d["model"]), temperature=float(d.get("temperature", 0.0)),
                   averages=_build(AveragesConfig, d.get("averages"), "averages"),
                   scha=_build(SCHAOptions, d.get("scha"), "scha"),
                   tdscha=_build(TDSCHAOptions, d.get("tdscha"), "tdscha"),
                   pulse=d.get("pulse"), classical=bool(d.get("classical", False)),
                   output=d.get("output"), base_dir=base_dir)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        import yaml

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file '{path}' not found.")
        with open(path) as fh:
            d = yaml.safe_load(fh)
        if not isinstance(d, dict):
            raise ValueError(f"'{path}' is not a YAML mapping.")
        return cls.from_dict(d, base_dir=str(path.parent))

    # --- building the objects ------------------------------------------------------
    def build(self):
        """(system, model or None, provider) from the model section."""
        from atomtwin.engines.tdscha.providers import ASEProvider, System

        spec = dict(self.model)
        kind = spec.pop("kind")
        if kind in MODEL_KINDS:
            try:
                model = MODEL_KINDS[kind](**spec)
            except TypeError as err:
                raise ValueError(f"model '{kind}': {err}. Fix: see atomtwin.engines.tdscha.models.{MODEL_KINDS[kind].__name__}.") from None
            return System.from_model(model), model, model
        from ase.io import read

        if kind not in ("ase", "mlip"):
            raise ValueError(f"model.kind '{kind}' unknown. Fix: one of {sorted(MODEL_KINDS)}, ase or mlip.")
        struct = spec.pop("structure", None)
        if struct is None:
            raise ValueError(f"model.kind {kind} needs 'structure' (any file ASE reads).")
        p = Path(struct) if Path(struct).is_absolute() else Path(self.base_dir) / struct
        atoms = read(p)
        z = _born_charges(spec.pop("born_charges", None), atoms, self.base_dir)
        if kind == "mlip":
            from atomtwin.engines.tdscha.mlip_provider import MLIPProvider

            ck = spec.pop("checkpoint", None)
            if ck is None:
                raise ValueError("model.kind mlip needs 'checkpoint' (a trained atomtwin.engines.mlip checkpoint).")
            ck = Path(ck) if Path(ck).is_absolute() else Path(self.base_dir) / ck
            kw = {k: spec.pop(k) for k in ("device", "batch_size", "skin") if k in spec}
            if spec:
                raise ValueError(f"unknown key(s) {sorted(spec)} in model (kind mlip).")
            return System.from_atoms(atoms, z), None, MLIPProvider(str(ck), atoms, **kw)
        calc = make_calculator(spec.pop("calculator", "emt"))
        if spec:
            raise ValueError(f"unknown key(s) {sorted(spec)} in model (kind ase).")
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
    raise ValueError(f"calculator '{name}' unknown. Fix: emt, lj or 'module:factory'.")


def _born_charges(spec, atoms, base_dir: str):
    if spec is None:
        return None
    if isinstance(spec, dict):
        missing = sorted(set(atoms.get_chemical_symbols()) - set(spec))
        if missing:
            raise ValueError(f"born_charges lack species {missing}. Fix: give a charge for every species.")
        return np.array([np.eye(3) * float(spec[s]) for s in atoms.get_chemical_symbols()])
    p = Path(spec) if Path(spec).is_absolute() else Path(base_dir) / spec
    return np.load(p)
