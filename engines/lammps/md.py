"""``atomtwin md config.yaml`` with ``engine: lammps``: the same run in LAMMPS on N MPI ranks.

The run folder ``<output>.lammps/`` holds the LAMMPS data file, input scripts (one per
segment: ``in.lammps``, ``in.1.lammps`` after a resume...), logs, the dump and restart files
(``restart.<step>`` every ``checkpoint_every`` steps and at the end).  When LAMMPS is done,
the dump is read with atomtwin's LAMMPS reader, energy and stress come from the thermo rows,
and the trajectory is written to ``output`` (netCDF or zarr), so every analysis reads it as
it reads our engine's.  ``--resume`` continues from the latest restart file: dump frames
after it are cut off and the next segment appends.

Ensembles: ``nve`` (``fix nve``), ``langevin`` (``fix langevin`` damping ``1/friction`` +
``fix nve``), ``nhc`` (``fix nvt``, chain ``chain``, period ``tdamp``), ``npt`` / ``npt-aniso``
(``fix npt iso`` / ``tri``, MTK barostat, period ``tau_p``).  The ensembles are ours; the
thermostat and barostat algorithms are LAMMPS' (Nose-Hoover MTK instead of our stochastic
cell rescaling for NPT), so trajectories agree in distribution, not step by step.
"""

from __future__ import annotations

import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from atomtwin.toolkit.errors import ConfigError, InputError

__all__ = ["run_md", "LammpsMDResult", "truncate_dump"]


@dataclass
class LammpsMDResult:
    """``output`` path, frames written, steps run in this call, wall time (s), ns/day."""

    output: Path
    n_frames: int
    steps: int
    final_step: int
    wall_s: float
    ns_per_day: float


def _restarts(work: Path) -> list[tuple[int, Path]]:
    found = []
    for p in work.glob("restart.*"):
        m = re.fullmatch(r"restart\.(\d+)", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def truncate_dump(dump: Path, step: int) -> int:
    """Cut a LAMMPS text dump before its first frame with timestep >= ``step`` (that frame is
    written again by the run that continues from a restart at ``step``); returns the frames
    kept."""
    if not dump.exists():
        return 0
    data = dump.read_bytes()
    starts = [m.start() for m in re.finditer(rb"ITEM: TIMESTEP\n", data)]
    for k, s in enumerate(starts):
        line_end = data.index(b"\n", s + 15)
        if int(data[s + 15 : line_end]) >= step:
            tmp = dump.with_name(f".{dump.name}.tmp")
            tmp.write_bytes(data[:s])
            tmp.replace(dump)
            return k
    return len(starts)


def _package(cfg, work: Path) -> tuple[Path, dict]:
    from atomtwin.engines.lammps.export import LAMMPS_FORMAT, compile_lammps
    from atomtwin.engines.mlip.compiled import read_metadata

    pkg = cfg.lammps.package
    if pkg is None:
        if cfg.potential.model is None:
            raise ConfigError(
                "potential.model: engine lammps needs the checkpoint (or lammps.package, "
                "a .pt2 from `atomtwin compile CKPT OUT.pt2 --target lammps`). Fix: set one."
            )
        pkg = work / "model.pt2"
        if not pkg.exists():
            compile_lammps(cfg.potential.model, pkg)
    pkg = Path(pkg)
    meta = read_metadata(pkg)
    if meta.get("format") != LAMMPS_FORMAT:
        raise InputError(
            f"'{pkg}' is not a package for LAMMPS (format {meta.get('format')!r}). Fix: "
            f"atomtwin compile CHECKPOINT {pkg.name} --target lammps."
        )
    return pkg, meta


def _fresh_inputs(cfg, work: Path, meta: dict) -> tuple[list[str], bool]:
    """Write data.lmp from the structure; returns the species per LAMMPS type and whether
    LAMMPS must draw initial velocities."""
    from ase.data import atomic_masses, atomic_numbers
    from ase.io import read
    from atomtwin.engines.lammps.inputs import lammps_frame, write_data
    from atomtwin.toolkit import units as U

    if not Path(cfg.structure).is_file():
        raise ConfigError(
            f"structure: the file '{cfg.structure}' does not exist. Fix: correct "
            "`structure:` (relative paths start at the YAML file's folder)."
        )
    atoms = read(cfg.structure, index=-1)
    if not (all(atoms.pbc) and atoms.cell.rank == 3):
        raise InputError(
            "engine lammps runs periodic cells (pbc in x, y and z). Fix: give the "
            "structure a periodic cell, or use engine: atomtwin."
        )
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(meta["species"]))
    if unknown:
        raise InputError(
            f"species {unknown} are unknown to the model, which knows {meta['species']}. "
            "Fix: use a potential trained on them."
        )
    kinds = [s for s in meta["species"] if s in symbols]
    types = np.array([kinds.index(s) + 1 for s in symbols])
    masses = [float(cfg.masses.get(s, atomic_masses[atomic_numbers[s]])) for s in kinds]
    cell, pos, rot = lammps_frame(atoms.cell[:], atoms.positions)
    t0 = cfg.initial_temperature if cfg.initial_temperature is not None else cfg.temperature
    vel = None
    if not t0 and atoms.has("momenta"):
        vel = (atoms.get_velocities() / U.ASE_TIME_TO_PS) @ rot
    write_data(work / "data.lmp", pos, cell, types, masses, kinds, velocities=vel)
    return kinds, bool(t0)


def run_md(
    cfg, *, resume: bool = False, overwrite: bool = False, steps: int | None = None
) -> LammpsMDResult:
    """Run the MD an :class:`~atomtwin.engines.md.config.MDConfig` with ``engine: lammps``
    describes (see the module docstring).

    Raises
    ------
    InputError
        An earlier run is there and neither ``resume`` nor ``overwrite``; LAMMPS' own errors
        (:class:`~atomtwin.engines.lammps.run.LammpsError`).
    """
    from atomtwin.engines.lammps.build import build_plugin
    from atomtwin.engines.lammps.inputs import MDSettings, md_input
    from atomtwin.engines.lammps.run import dump_to_dataset, run_lammps

    import atomtwin

    total = int(cfg.steps if steps is None else steps)
    if total < 0:
        raise InputError(f"steps={total}: must be >= 0. Fix: give e.g. {cfg.steps}.")
    out = Path(cfg.output)
    work = out.with_name(out.name + ".lammps")
    if resume and overwrite:
        raise InputError("resume and overwrite contradict each other. Fix: give one of them.")
    if overwrite and work.exists():
        if not (work / "in.lammps").exists() and any(work.iterdir()):
            raise InputError(
                f"'{work}' holds files that are not a LAMMPS run of atomtwin; not deleting "
                "it. Fix: choose another `output:`."
            )
        shutil.rmtree(work)
    restarts = _restarts(work) if work.exists() else []
    if resume and not restarts:
        warnings.warn(f"--resume: no restart file in '{work}'; starting from step 0.", stacklevel=2)
        if work.exists():
            shutil.rmtree(work)
        resume = False
    if not resume and not overwrite and (work.exists() or out.exists()):
        raise InputError(
            f"an earlier run's files are at '{out}' / '{work}'. Fix: --resume to continue "
            "it or --force to start over."
        )
    work.mkdir(parents=True, exist_ok=True)
    plugin = build_plugin()
    pkg, meta = _package(cfg, work)
    lc = cfg.lammps
    md = MDSettings(
        ensemble=cfg.ensemble,
        timestep=cfg.timestep,
        steps=total,
        temperature=cfg.temperature,
        pressure=cfg.pressure,
        friction=cfg.friction,
        tau_t=cfg.tdamp,
        tau_p=cfg.tau_p,
        stride=cfg.stride,
        restart_every=cfg.checkpoint_every,
        seed=cfg.seed + 1,
        thermostat_chain=cfg.chain,
    )
    if resume:
        step0, rfile = restarts[-1]
        kinds = (work / "species.txt").read_text().split()
        truncate_dump(work / "dump.lammpstrj", step0)
        seg = len(list(work.glob("in*.lammps")))
        name, log = f"in.{seg}.lammps", f"log.{seg}.lammps"
        text = md_input(
            plugin,
            pkg,
            kinds,
            meta["ghost_cutoff"],
            md,
            resume_from=rfile.name,
            skin=lc.skin,
            threads=lc.threads,
        )
    else:
        step0 = 0
        kinds, draw = _fresh_inputs(cfg, work, meta)
        (work / "species.txt").write_text(" ".join(kinds) + "\n")
        if draw:
            t0 = cfg.initial_temperature if cfg.initial_temperature is not None else cfg.temperature
            md = MDSettings(**{**md.__dict__, "init_velocities": True, "init_temperature": t0})
        text = md_input(
            plugin, pkg, kinds, meta["ghost_cutoff"], md, skin=lc.skin, threads=lc.threads
        )
        name, log = "in.lammps", "log.lammps"
    t0w = time.perf_counter()
    run_lammps(text, work, lc.nprocs, name=name, log=log, threads=lc.threads)
    wall = time.perf_counter() - t0w
    logs = [work / "log.lammps"] + sorted(
        work.glob("log.*.lammps"), key=lambda p: int(p.name.split(".")[1])
    )
    merged = work / "thermo_all.log"
    merged.write_text("\n".join(p.read_text() for p in logs))
    ds = dump_to_dataset(
        work / "dump.lammpstrj",
        work / "data.lmp",
        merged,
        cfg.timestep,
        attrs={
            "source": "atomtwin md (engine lammps)",
            "lammps_nprocs": int(lc.nprocs),
            "timestep_md_ps": cfg.timestep,
        },
    )
    atomtwin.write(ds, out, overwrite=True)
    done = total - step0
    nsd = done * cfg.timestep * 1e-3 / max(wall, 1e-12) * 86400.0
    return LammpsMDResult(out, int(ds.sizes["frame"]), done, total, wall, nsd)
