"""The frozen, validated configuration of an MD run, readable from YAML.

Example (units: Å, ps, K, eV, amu; pressure eV/Å^3)::

    structure: start.xyz          # any file ASE reads (its last frame)
    masses: {X: 12.0}             # optional, amu per species (required for non-elements)
    potential: {kind: lj, params: {Ar: [0.0104, 3.405]}, r_cut: 8.5}
    ensemble: langevin            # nve | langevin | nhc | npt | npt-aniso
    timestep: 0.004
    steps: 10000
    temperature: 100
    output: traj.zarr
    stride: 10
    checkpoint: run.ckpt
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENSEMBLES = ("nve", "langevin", "nhc", "npt", "npt-aniso")
POTENTIALS = ("lj", "morse", "emt", "ase", "mlip")
WRITABLE = ("positions", "velocities", "forces", "energy", "stress", "cell")


@dataclass(frozen=True)
class PotentialConfig:
    """A force provider.

    kind : ``lj`` / ``morse`` (``params`` {symbol: [ε eV, σ Å]} / [D eV, a 1/Å, r0 Å],
        ``r_cut`` Å, optional ``r_on``, ``part`` full/short/long with ``split`` [r_in, r_out]),
        ``emt`` (ASE EMT), ``ase`` (``calculator`` "module:Class", ``kwargs``), ``mlip``
        (``model`` checkpoint path, ``device``).
    skin : Verlet skin for the torch neighbour lists, Å.
    """

    kind: str
    params: dict = field(default_factory=dict)
    r_cut: float | None = None
    r_on: float | None = None
    part: str = "full"
    split: tuple[float, float] | None = None
    calculator: str | None = None
    kwargs: dict = field(default_factory=dict)
    model: str | None = None
    device: str = "cpu"
    skin: float = 1.0

    def __post_init__(self):
        if self.kind not in POTENTIALS:
            raise ValueError(f"potential kind '{self.kind}' is unknown. Fix: use one of {POTENTIALS}.")
        if self.kind in ("lj", "morse") and (not self.params or self.r_cut is None):
            raise ValueError(f"potential '{self.kind}' needs `params` per species and `r_cut` (Å).")
        if self.kind == "ase" and not self.calculator:
            raise ValueError("potential 'ase' needs `calculator: module:Class` (e.g. ase.calculators.emt:EMT).")
        if self.kind == "mlip" and not self.model:
            raise ValueError("potential 'mlip' needs `model:` the path of a trained checkpoint.")
        if self.split is not None:
            object.__setattr__(self, "split", tuple(float(x) for x in self.split))


@dataclass(frozen=True)
class MDConfig:
    """Everything an MD run needs; see the module docstring for the YAML form.

    Attributes
    ----------
    structure : path of the starting structure (ASE-readable).
    potential : the force provider (the fast one when ``mts`` is set).
    ensemble : nve | langevin | nhc | npt | npt-aniso.
    timestep : ps (the inner step with MTS).
    steps : number of (inner) steps.
    temperature : K (thermostat target; also the initial Maxwell–Boltzmann temperature
        unless ``initial_temperature`` is given).
    friction : Langevin friction, 1/ps.  tdamp : Nosé–Hoover period, ps.  chain : NHC length.
    pressure : eV/Å^3.  compressibility : Å^3/eV.  tau_p : ps.
    mts : ``{slow: <potential>, k: int}`` — RESPA with the slow correction every k steps.
    output : ``*.zarr`` or ``*.nc``.  stride : steps between frames.  write : stored fields.
    checkpoint : path; ``checkpoint_every`` steps between checkpoints.
    max_force : eV/Å, blow-up threshold.  max_temperature : K, runaway threshold (default
        10x the target, initial or starting temperature, at least 1000 K).
    masses : {symbol: amu} overrides.  seed : random seed.  progress : show a progress bar.
    """

    structure: str
    potential: PotentialConfig
    ensemble: str = "nve"
    timestep: float = 0.001
    steps: int = 1000
    temperature: float | None = None
    initial_temperature: float | None = None
    friction: float = 1.0
    tdamp: float = 0.1
    chain: int = 3
    pressure: float = 0.0
    compressibility: float = 1.0
    tau_p: float = 1.0
    mts: dict | None = None
    output: str = "traj.zarr"
    stride: int = 10
    write: tuple[str, ...] = WRITABLE
    checkpoint: str | None = None
    checkpoint_every: int = 1000
    max_force: float = 100.0
    max_temperature: float | None = None
    masses: dict = field(default_factory=dict)
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.potential, dict):
            object.__setattr__(self, "potential", PotentialConfig(**self.potential))
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble '{self.ensemble}' is unknown. Fix: use one of {ENSEMBLES}.")
        if not self.timestep > 0 or self.timestep > 0.05:
            raise ValueError(f"timestep {self.timestep} ps is outside (0, 0.05] ps. "
                             "Fix: give the time step in ps (1 fs = 0.001).")
        if self.ensemble != "nve" and not (self.temperature and self.temperature > 0):
            raise ValueError(f"ensemble '{self.ensemble}' needs `temperature` (K) > 0.")
        for name in ("steps", "stride", "checkpoint_every"):
            if int(getattr(self, name)) < 1 and not (name == "steps" and self.steps == 0):
                raise ValueError(f"`{name}` must be a positive integer (got {getattr(self, name)}).")
        write = tuple(self.write)
        bad = sorted(set(write) - set(WRITABLE))
        if bad or "positions" not in write:
            raise ValueError(f"`write` must include 'positions' and only {WRITABLE} (bad: {bad}).")
        object.__setattr__(self, "write", write)
        if self.mts is not None:
            mts = dict(self.mts)
            if "slow" not in mts or int(mts.get("k", 0)) < 1:
                raise ValueError("`mts` needs `slow:` (a potential) and `k:` (inner steps per slow step, >= 1).")
            slow = mts["slow"]
            mts = {"slow": slow if isinstance(slow, PotentialConfig) else PotentialConfig(**slow),
                   "k": int(mts["k"])}
            object.__setattr__(self, "mts", mts)
            if self.ensemble not in ("nve", "langevin"):
                raise ValueError("MTS (RESPA) runs NVE or Langevin NVT. Fix: ensemble: nve or langevin.")
            k = mts["k"]
            # checkpoint_every matters only when checkpoints are written
            names = ("stride", "checkpoint_every", "steps") if self.checkpoint else ("stride", "steps")
            for name in names:
                if int(getattr(self, name)) % k:
                    raise ValueError(f"with mts.k = {k}, `{name}` ({getattr(self, name)}) must be a multiple of k.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MDConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}. Fix: use only {sorted(known)}.")
        if "structure" not in d or "potential" not in d:
            raise ValueError("the config needs `structure:` (a file) and `potential:` (a force provider).")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> MDConfig:
        import yaml

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no such config file: '{path}'.")
        d = yaml.safe_load(path.read_text()) or {}
        base = path.parent
        for key in ("structure", "output", "checkpoint"):
            if d.get(key) and not Path(d[key]).is_absolute():
                d[key] = str(base / d[key])
        return cls.from_dict(d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def physics(self) -> dict:
        """The fields a restart must share with the run that wrote the checkpoint."""
        d = self.to_dict()
        for k in ("steps", "output", "checkpoint", "checkpoint_every", "progress", "max_force",
                  "max_temperature"):
            d.pop(k)
        return d
