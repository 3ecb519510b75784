"""Run LAMMPS with ``pair_style atomtwin`` and bring its output into the trajectory schema.

:func:`run_lammps` runs ``mpirun -np N lmp -in INPUT`` with the environment the wheels need
(:func:`atomtwin.engines.lammps.build.lammps_env`) and turns a LAMMPS ``ERROR`` into a
:class:`LammpsError` (an :class:`~atomtwin.toolkit.errors.InputError`) carrying LAMMPS' own
message; a missing ``plugin load`` gets the fix.  :func:`read_thermo` reads the thermo rows
of a log, :func:`single_point` evaluates one structure, :func:`dump_to_dataset` reads a run's
dump with atomtwin's LAMMPS reader and adds energy and stress from the log.  The MD driver
behind ``atomtwin md`` with ``engine: lammps`` is :mod:`atomtwin.engines.lammps.md`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
from atomtwin.toolkit.errors import InputError

__all__ = ["LammpsError", "run_lammps", "read_thermo", "single_point", "dump_to_dataset"]


class LammpsError(InputError):
    """LAMMPS stopped with an error; the message is LAMMPS' own (plus a fix where we know one)."""


_ERROR = re.compile(r"^(ERROR(?: on proc \d+)?:.*)$", re.MULTILINE)


def binding(nprocs: int, threads: int = 1) -> list[str]:
    """MPICH (hydra) arguments pinning each rank to its own core(s) when the ranks fit on this
    machine's cores: ``-bind-to core`` (``core:T`` for T threads per rank); none when
    oversubscribed, or when ``ATOMTWIN_LAMMPS_BIND=0`` (set it when several LAMMPS jobs share
    the machine: each job would pin its ranks to the same first cores).  Pinned, a 1-rank
    baseline and a 2-rank run use the same cores, and ranks do not migrate (on a 2-core
    machine the effect on 2-rank efficiency was within that machine's noise)."""
    if os.environ.get("ATOMTWIN_LAMMPS_BIND", "1") == "0":
        return []
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if nprocs * threads > cores:
        return []
    return ["-bind-to", "core" if threads == 1 else f"core:{threads}"]


def run_lammps(
    input_text: str,
    workdir: str | Path,
    nprocs: int = 1,
    *,
    name: str = "in.lammps",
    log: str = "log.lammps",
    timeout: float | None = None,
    threads: int = 1,
    extra_args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """Write ``input_text`` to ``workdir/name`` and run it on ``nprocs`` MPI ranks.

    Returns
    -------
    The completed process (stdout = LAMMPS' screen output).

    Raises
    ------
    LammpsError
        LAMMPS reported an ``ERROR`` (its message, e.g. from ``pair_style atomtwin``) or
        exited with a non-zero status.
    """
    from atomtwin.engines.lammps.build import lammps_env, locate

    tc = locate()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / name).write_text(input_text)
    cmd = [
        str(tc.mpirun),
        "-np",
        str(int(nprocs)),
        *binding(int(nprocs), int(threads)),
        str(tc.lmp),
        "-in",
        name,
        "-log",
        log,
        "-nocite",
        *extra_args,
    ]
    r = subprocess.run(
        cmd,
        cwd=workdir,
        env=lammps_env(tc, threads),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    text = r.stdout + "\n" + r.stderr
    errors = _ERROR.findall(text)
    if errors or r.returncode:
        msg = (
            errors[0].strip()
            if errors
            else f"lmp exited with status {r.returncode}: {text[-2000:]}"
        )
        if "Unrecognized pair style 'atomtwin'" in msg:
            msg += (
                " -- the plugin is not loaded. Fix: put the line `atomtwin lammps build` prints "
                "(plugin load .../atomtwin_lammps.so) before pair_style."
            )
        raise LammpsError(f"LAMMPS ({workdir / name}): {msg}")
    return r


def read_thermo(log: str | Path) -> dict[str, np.ndarray]:
    """Thermo rows of every run in a LAMMPS log as float arrays by column name (steps of a
    later run replace the same steps of an earlier one)."""
    rows: dict[float, list[float]] = {}
    header: list[str] | None = None
    names: list[str] | None = None
    for line in Path(log).read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["Step"]:
            header = parts
            names = names or header
            continue
        if header is None:
            continue
        if line.startswith("Loop time") or not parts:
            header = None
            continue
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            header = None
            continue
        if len(vals) == len(header) and header == names:
            rows[vals[0]] = vals
    if names is None:
        raise InputError(
            f"no thermo output in '{log}'. Fix: check the LAMMPS input (thermo_style)."
        )
    steps = sorted(rows)
    data = np.array([rows[s] for s in steps], dtype=float).reshape(len(steps), len(names))
    return {n.lower(): data[:, k] for k, n in enumerate(names)}


def single_point(
    plugin,
    package,
    positions,
    cell,
    types,
    masses,
    species_per_type,
    *,
    ghost_cutoff: float,
    workdir,
    nprocs: int = 1,
) -> dict[str, np.ndarray]:
    """Energy, forces, per-atom energy, virial and per-atom virial of one periodic structure
    from LAMMPS (``run 0``), in the LAMMPS frame (use
    :func:`~atomtwin.engines.lammps.inputs.lammps_frame` first).

    Returns
    -------
    dict: ``energy`` eV, ``forces`` (N,3) eV/Å, ``atom_energy`` (N,) eV, ``virial`` (3,3) eV
    (``sum_i x_i f_i`` of the pair style, symmetric), ``atom_virial`` (N,6) eV (xx, yy, zz, xy,
    xz, yz, LAMMPS' order; sums to the virial),
    ``pressure`` (3,3) eV/Å³ (virial only: no velocities), ``volume`` Å³.
    """
    from atomtwin.engines.lammps.inputs import EV_PER_A3_TO_BAR, single_point_input, write_data

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_data(workdir / "data.lmp", positions, cell, types, masses, species_per_type)
    text = single_point_input(
        plugin, package, species_per_type, ghost_cutoff, "data.lmp", "sp.dump"
    )
    r = run_lammps(text, workdir, nprocs)
    line = [x for x in r.stdout.splitlines() if x.startswith("ATOMTWIN ")][-1]
    pe, pxx, pyy, pzz, pyz, pxz, pxy, vol = (float(v) for v in line.split()[1:])
    p = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]]) / EV_PER_A3_TO_BAR
    rows = (workdir / "sp.dump").read_text().splitlines()
    start = rows.index(next(x for x in rows if x.startswith("ITEM: ATOMS"))) + 1
    a = np.array([[float(v) for v in x.split()] for x in rows[start:]])
    w = -a[:, 9:15] / EV_PER_A3_TO_BAR  # stress/atom = -W_atom in bar·Å³: xx yy zz xy xz yz
    return {
        "energy": pe,
        "forces": a[:, 5:8],
        "atom_energy": a[:, 8],
        "atom_virial": w,
        "virial": p * vol,
        "pressure": p,
        "volume": vol,
        "positions": a[:, 2:5],
    }


def dump_to_dataset(
    dump: str | Path,
    data_file: str | Path,
    log: str | Path | None,
    timestep_ps: float,
    attrs: dict | None = None,
):
    """A run's dump as a schema Dataset (atomtwin's LAMMPS reader, ``units metal``), with
    ``energy`` (potential energy, eV) and ``stress`` (eV/Å³, ASE sign: minus the pressure
    tensor, kinetic part included as LAMMPS reports it) from the log's thermo rows at the
    dump's steps."""
    import xarray as xr
    from atomtwin.engines.lammps.inputs import EV_PER_A3_TO_BAR
    from atomtwin.toolkit import schema as S

    import atomtwin

    ds = atomtwin.read(dump, data_file=str(data_file), timestep_ps=timestep_ps, units="metal")
    if log is not None:
        th = read_thermo(log)
        steps = np.rint(np.asarray(ds["time"].values) / timestep_ps).astype(np.int64)
        where = {int(s): k for k, s in enumerate(th["step"].astype(np.int64))}
        missing = [int(s) for s in steps if int(s) not in where]
        if missing:
            raise InputError(
                f"the log '{log}' has no thermo row for steps {missing[:5]} of the "
                "dump. Fix: thermo and dump every the same number of steps."
            )
        k = np.array([where[int(s)] for s in steps])
        ds[S.ENERGY] = xr.DataArray(
            th["poteng"][k] if "poteng" in th else th["pe"][k],
            dims=(S.FRAME,),
            attrs={"units": "eV"},
        )
        comp = {
            "pxx": (0, 0),
            "pyy": (1, 1),
            "pzz": (2, 2),
            "pxy": (0, 1),
            "pxz": (0, 2),
            "pyz": (1, 2),
        }
        if all(c in th for c in comp):
            st = np.zeros((len(k), 3, 3))
            for c, (i, j) in comp.items():
                st[:, i, j] = st[:, j, i] = -th[c][k] / EV_PER_A3_TO_BAR
            ds[S.STRESS] = xr.DataArray(
                st, dims=(S.FRAME, S.XYZ, S.XYZ2), attrs={"units": "eV/Å^3"}
            )
    ds.attrs.update(attrs or {})
    return ds
