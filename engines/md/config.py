"""The frozen, validated configuration of an MD run, readable from YAML.

Example (units: Å, ps, K, eV, amu; pressure eV/Å^3)::

    structure: start.xyz          # any file ASE reads (its last frame)
    masses: {X: 12.0}             # optional, amu per species (required for non-elements)
    potential: {kind: lj, params: {Ar: [0.0104, 3.405]}, r_cut: 8.5}
    ensemble: langevin            # nve | langevin | nhc | npt | npt-aniso
    timestep: 4e-3
    steps: 10000
    temperature: 100
    output: traj.zarr
    stride: 10
    checkpoint: run.ckpt

Every path (``structure``, ``output``, ``checkpoint``, ``potential.model``) is taken
relative to the YAML file's folder.  A mistake raises
:class:`~atomtwin.toolkit.errors.ConfigError` with one line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

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
from pydantic import Field, model_validator

ENSEMBLES = ("nve", "langevin", "nhc", "npt", "npt-aniso")
POTENTIALS = ("lj", "morse", "emt", "ase", "mlip")
WRITABLE = ("positions", "velocities", "forces", "energy", "stress", "cell")
#: potentials evaluated by torch on the state's device (the others run through ASE on the CPU)
TORCH_POTENTIALS = ("lj", "morse", "mlip")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


@config_class
class PotentialConfig:
    """A force provider.

    kind : ``lj`` / ``morse`` (``params`` {symbol: [ε eV, σ Å]} / [D eV, a 1/Å, r0 Å],
        ``r_cut`` Å, optional ``r_on``, ``part`` full/short/long with ``split`` [r_in, r_out]),
        ``emt`` (ASE EMT), ``ase`` (``calculator`` "module:Class", ``kwargs``), ``mlip``
        (``model`` checkpoint path).
    device : where the state and a torch potential (lj, morse, mlip) live: cpu, cuda, cuda:N.
    skin : Verlet skin for the torch neighbour lists, Å.
    """

    kind: Literal["lj", "morse", "emt", "ase", "mlip"]
    params: dict[str, list[float]] = field(default_factory=dict)
    r_cut: PositiveFloat | None = None
    r_on: NonNegFloat | None = None
    part: Literal["full", "short", "long"] = "full"
    split: tuple[PositiveFloat, PositiveFloat] | None = None
    calculator: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    model: ConfigPath | None = None
    device: str = "cpu"
    skin: NonNegFloat = 1.0

    @model_validator(mode="after")
    def _check(self):
        if self.kind in ("lj", "morse"):
            if not self.params:
                raise Invalid("params", f"potential '{self.kind}' needs parameters per species",
                              "e.g. params: {Ar: [0.0104, 3.405]} (lj: [ε eV, σ Å]; morse: "
                              "[D eV, a 1/Å, r0 Å])")
            n = 2 if self.kind == "lj" else 3
            for s, p in self.params.items():
                if len(p) != n:
                    raise Invalid(f"params.{s}", f"{self.kind} takes {n} numbers per species, got {len(p)}",
                                  "lj: [ε eV, σ Å]; morse: [D eV, a 1/Å, r0 Å]")
            if self.r_cut is None:
                raise Invalid("r_cut", f"potential '{self.kind}' needs a cutoff", "add r_cut: <Å>")
        if self.kind == "ase" and not self.calculator:
            raise Invalid("calculator", "potential 'ase' needs a calculator",
                          "e.g. calculator: ase.calculators.emt:EMT")
        if self.calculator is not None and ":" not in self.calculator:
            raise Invalid("calculator", f"'{self.calculator}' is not of the form module:Class",
                          "e.g. calculator: ase.calculators.emt:EMT")
        if self.kind == "mlip" and not self.model:
            raise Invalid("model", "potential 'mlip' needs the trained model",
                          "add model: <path of a checkpoint such as best.ckpt>")
        if self.part != "full" and self.split is None:
            raise Invalid("split", f"part '{self.part}' needs the split switch", "add split: [r_in, r_out] (Å)")
        if self.split is not None and not self.split[0] < self.split[1]:
            raise Invalid("split", f"r_in {self.split[0]} must be below r_out {self.split[1]}",
                          "give split: [r_in, r_out] with r_in < r_out (Å)")
        if not _DEVICE.match(self.device):
            raise Invalid("device", f"'{self.device}' is not a device", "use cpu, cuda or cuda:N")
        if self.device != "cpu" and self.kind not in TORCH_POTENTIALS:
            raise Invalid("device", f"potential '{self.kind}' runs through ASE on the CPU",
                          "remove device: or set device: cpu")
        return self


@config_class
class MTSConfig:
    """RESPA: ``slow`` (a potential) evaluated every ``k`` inner steps."""

    slow: PotentialConfig
    k: PositiveCount

    def __getitem__(self, key: str):  # the earlier dict form: cfg.mts["k"]
        return getattr(self, key)


ENGINES = ("atomtwin", "lammps")


@config_class
class LammpsConfig:
    """``engine: lammps``: LAMMPS with ``pair_style atomtwin`` (see atomtwin.engines.lammps.md).

    nprocs : MPI ranks (``mpirun -np``).  threads : OpenMP threads per rank (1: torch's and
    LAMMPS' OpenMP runtimes share the process).  package : a ``.pt2`` from ``atomtwin compile
    CKPT OUT.pt2 --target lammps`` (default: compiled from ``potential.model`` into the run
    folder).  skin : neighbour-list skin, Å.
    """

    nprocs: PositiveCount = 1
    threads: PositiveCount = 1
    package: ConfigPath | None = None
    skin: NonNegFloat = 1.0


@config_class
class MDConfig:
    """Everything an MD run needs; see the module docstring for the YAML form.

    Attributes
    ----------
    structure : path of the starting structure (ASE-readable).
    potential : the force provider (the fast one when ``mts`` is set).
    ensemble : nve | langevin | nhc | npt | npt-aniso.
    timestep : ps (the inner step with MTS), in (0, 0.05].
    steps : number of (inner) steps, >= 0.
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
    engine : ``atomtwin`` (this package's integrators) or ``lammps`` (LAMMPS on
        ``lammps.nprocs`` MPI ranks with ``pair_style atomtwin``; potential kind mlip; the
        checkpoints are LAMMPS restart files every ``checkpoint_every`` steps).
    lammps : :class:`LammpsConfig`.
    """

    structure: ConfigPath
    potential: PotentialConfig
    ensemble: Literal["nve", "langevin", "nhc", "npt", "npt-aniso"] = "nve"
    timestep: PositiveFloat = 0.001
    steps: Count = 1000
    temperature: NonNegFloat | None = None
    initial_temperature: NonNegFloat | None = None
    friction: NonNegFloat = 1.0
    tdamp: PositiveFloat = 0.1
    chain: PositiveCount = 3
    pressure: float = 0.0
    compressibility: PositiveFloat = 1.0
    tau_p: PositiveFloat = 1.0
    mts: MTSConfig | None = None
    output: ConfigPath = Field(default="traj.zarr", validate_default=True)
    stride: PositiveCount = 10
    write: tuple[Literal["positions", "velocities", "forces", "energy", "stress", "cell"], ...] = WRITABLE
    checkpoint: ConfigPath | None = None
    checkpoint_every: PositiveCount = 1000
    max_force: PositiveFloat = 100.0
    max_temperature: PositiveFloat | None = None
    masses: dict[str, PositiveFloat] = field(default_factory=dict)
    seed: Count = 0
    progress: bool = True
    engine: Literal["atomtwin", "lammps"] = "atomtwin"
    lammps: LammpsConfig = field(default_factory=LammpsConfig)

    @model_validator(mode="after")
    def _check(self):
        if self.engine == "lammps":
            if self.potential.kind != "mlip":
                raise Invalid("potential.kind", f"engine lammps runs atomtwin potentials (kind mlip), not "
                              f"'{self.potential.kind}'", "use kind: mlip with model: CHECKPOINT, or engine: atomtwin")
            if self.mts is not None:
                raise Invalid("mts", "engine lammps has no multiple-time-step integrator",
                              "remove mts, or use engine: atomtwin")
        if self.timestep > 0.05:
            raise Invalid("timestep", f"{self.timestep} ps is above 0.05 ps (50 fs)",
                          "give the time step in ps (1 fs = 0.001)")
        if self.ensemble != "nve" and not self.temperature:
            raise Invalid("temperature", f"ensemble '{self.ensemble}' needs a target temperature > 0",
                          "add temperature: <K>, or use ensemble: nve")
        if "positions" not in self.write:
            raise Invalid("write", "must include 'positions'", f"e.g. write: {list(WRITABLE)}")
        if not str(self.output).rstrip("/").endswith((".nc", ".zarr")):
            raise Invalid("output", f"'{self.output}' is neither *.nc nor *.zarr",
                          "name the trajectory e.g. traj.nc or traj.zarr")
        if self.mts is not None:
            if self.ensemble not in ("nve", "langevin"):
                raise Invalid("ensemble", f"MTS (RESPA) runs NVE or Langevin NVT, not '{self.ensemble}'",
                              "ensemble: nve or langevin, or remove mts")
            k = self.mts.k
            # checkpoint_every matters only when checkpoints are written
            names = ("stride", "checkpoint_every", "steps") if self.checkpoint else ("stride", "steps")
            for name in names:
                if getattr(self, name) % k:
                    raise Invalid(name, f"{getattr(self, name)} is not a multiple of mts.k = {k}",
                                  f"give a multiple of {k}")
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, base: str | Path | None = None) -> MDConfig:
        """A config from a mapping (paths relative to ``base`` when given)."""
        return validate(cls, d, source=cls.__name__, base=base)

    @classmethod
    def from_yaml(cls, path: str | Path) -> MDConfig:
        """Read a YAML config; relative paths are taken relative to its folder."""
        return load(cls, path)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def physics(self) -> dict:
        """The fields a restart must share with the run that wrote the checkpoint."""
        d = self.to_dict()
        for k in ("steps", "output", "checkpoint", "checkpoint_every", "progress", "max_force",
                  "max_temperature", "engine", "lammps"):
            d.pop(k)
        return d

    @property
    def device(self) -> str:
        """Where the MD state lives: the potential's device for torch potentials, else cpu."""
        return self.potential.device if self.potential.kind in TORCH_POTENTIALS else "cpu"
