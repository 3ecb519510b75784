"""LAMMPS data files and input scripts for ``pair_style atomtwin``.

LAMMPS keeps a triclinic cell in its restricted form (``a`` along x, ``b`` in the xy plane):
:func:`lammps_frame` rotates any right-handed cell and its positions into it (a rotation:
energies are unchanged, forces and stress rotate with the frame; the trajectory is written
in the LAMMPS frame).  :func:`write_data` writes ``atom_style atomic`` data with masses and
optional velocities; :func:`md_input` writes the input for the ensembles of our engine
(NVE, Langevin, Nose-Hoover chains, NPT), with the plugin load line, the communication cutoff
the package needs, thermo output of energy, pressure and cell, a dump and restart files.
Units are LAMMPS ``metal`` (eV, Å, ps, amu, K, bar): pressures are converted from eV/Å³.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from atomtwin.toolkit.errors import InputError

__all__ = [
    "lammps_frame",
    "write_data",
    "md_input",
    "single_point_input",
    "MDSettings",
    "EV_PER_A3_TO_BAR",
    "THERMO_FIELDS",
]

#: 1 eV/Å³ in bar (LAMMPS metal units' nktv2p)
EV_PER_A3_TO_BAR = 1.6021765e6
THERMO_FIELDS = (
    "step",
    "time",
    "pe",
    "ke",
    "etotal",
    "temp",
    "press",
    "pxx",
    "pyy",
    "pzz",
    "pyz",
    "pxz",
    "pxy",
    "vol",
    "lx",
    "ly",
    "lz",
    "xy",
    "xz",
    "yz",
    "ecouple",
)


def lammps_frame(
    cell: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate a cell (rows = lattice vectors, Å) and positions (N,3) into LAMMPS' restricted
    triclinic frame.

    Returns
    -------
    cell_l (3,3), positions_l (N,3), rotation (3,3)
        ``cell_l = cell @ rotation`` is lower triangular with a positive diagonal; positions,
        forces and velocities rotate the same way (``x_l = x @ rotation``).

    Raises
    ------
    InputError
        A left-handed or degenerate cell (LAMMPS cannot represent it).
    """
    cell = np.asarray(cell, dtype=float)
    det = np.linalg.det(cell)
    if not det > 1e-9:
        raise InputError(
            f"the cell has determinant {det:.3g} Å^3: LAMMPS needs a right-handed, "
            "non-degenerate cell. Fix: reorder the lattice vectors (e.g. swap two)."
        )
    q, r = np.linalg.qr(cell.T)
    s = np.sign(np.diag(r))
    q = q * s[None, :]
    cell_l = cell @ q
    cell_l[np.triu_indices(3, 1)] = 0.0
    return cell_l, np.asarray(positions, dtype=float) @ q, q


def _fmt(x: float) -> str:
    return repr(float(x))


def write_data(
    path: str | Path,
    positions: np.ndarray,
    cell: np.ndarray,
    types: np.ndarray,
    masses: list[float],
    species: list[str],
    velocities: np.ndarray | None = None,
) -> Path:
    """Write a LAMMPS data file (``atom_style atomic``) atomically.

    Parameters
    ----------
    path
        Target file.
    positions
        (N, 3) Å in the LAMMPS frame (see :func:`lammps_frame`).
    cell
        (3, 3) lower-triangular cell, Å.
    types
        (N,) LAMMPS types, 1-based.
    masses, species
        Per type (amu, symbol); the symbol goes into the Masses comment, which the LAMMPS
        dump reader (``data_file=``) uses.
    velocities
        (N, 3) Å/ps, optional.
    """
    path = Path(path)
    c = np.asarray(cell, dtype=float)
    n = len(positions)
    lines = [
        "atomtwin data file (atom_style atomic, units metal)",
        "",
        f"{n} atoms",
        f"{len(masses)} atom types",
        "",
        f"0.0 {_fmt(c[0, 0])} xlo xhi",
        f"0.0 {_fmt(c[1, 1])} ylo yhi",
        f"0.0 {_fmt(c[2, 2])} zlo zhi",
        f"{_fmt(c[1, 0])} {_fmt(c[2, 0])} {_fmt(c[2, 1])} xy xz yz",
        "",
        "Masses",
        "",
    ]
    lines += [
        f"{t + 1} {_fmt(m)} # {s}" for t, (m, s) in enumerate(zip(masses, species, strict=True))
    ]
    lines += ["", "Atoms # atomic", ""]
    lines += [
        f"{k + 1} {int(types[k])} {_fmt(p[0])} {_fmt(p[1])} {_fmt(p[2])}"
        for k, p in enumerate(np.asarray(positions, dtype=float))
    ]
    if velocities is not None:
        lines += ["", "Velocities", ""]
        lines += [
            f"{k + 1} {_fmt(v[0])} {_fmt(v[1])} {_fmt(v[2])}"
            for k, v in enumerate(np.asarray(velocities, dtype=float))
        ]
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def _header(
    plugin: str | Path,
    package: str | Path,
    species: list[str],
    ghost_cutoff: float,
    skin: float,
    data: str,
    read_restart: str | None = None,
    threads: int = 1,
) -> list[str]:
    comm = ghost_cutoff + skin + 0.01
    lines = [
        "units metal",
        "atom_style atomic",
        "atom_modify map array",
        "boundary p p p",
        "newton on",
    ]
    lines += [f"read_restart {read_restart}"] if read_restart else [f"read_data {data}"]
    lines += [
        f"plugin load {Path(plugin).resolve()}",
        f"pair_style atomtwin{'' if threads == 1 else f' threads {threads}'}",
        f"pair_coeff * * {Path(package).resolve()} {' '.join(species)}",
        f"neighbor {skin} bin",
        "neigh_modify every 1 delay 0 check yes",
        f"comm_modify cutoff {comm:.4f}",
    ]
    return lines


def single_point_input(
    plugin,
    package,
    species: list[str],
    ghost_cutoff: float,
    data: str,
    dump: str,
    skin: float = 1.0,
) -> str:
    """Input of a single point (``run 0``): a dump with positions, forces, per-atom energy
    and per-atom stress (bar Å³), and one line ``ATOMTWIN pe pxx pyy pzz pyz pxz pxy vol``
    (eV, bar, Å³) at full precision."""
    lines = _header(plugin, package, species, ghost_cutoff, skin, data)
    lines += [
        "compute peatom all pe/atom",
        "compute satom all stress/atom NULL virial",
        f"dump d all custom 1 {dump} id type x y z fx fy fz c_peatom c_satom[*]",
        "dump_modify d sort id format float %.17g",
        "thermo_style custom step pe press",
        "run 0",
        'print "ATOMTWIN $(pe:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) '
        '$(pyz:%.17g) $(pxz:%.17g) $(pxy:%.17g) $(vol:%.17g)"',
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MDSettings:
    """What :func:`md_input` needs of an MD run (units: ps, K, eV/Å³, Å).

    ``ensemble``: nve, langevin, nhc, npt (isotropic), npt-aniso; ``friction`` 1/ps
    (Langevin damping = 1/friction); ``tau_t``, ``tau_p`` ps (Nose-Hoover chain and barostat
    relaxation times); ``stride`` steps between frames; ``restart_every`` steps between
    restart files (``restart.<step>``, also at the end); ``seed`` for Langevin and the initial velocities; ``init_velocities``: draw
    Maxwell-Boltzmann velocities at ``init_temperature`` (default ``temperature``).
    """

    ensemble: str
    timestep: float
    steps: int
    temperature: float | None = None
    pressure: float = 0.0
    friction: float = 1.0
    tau_t: float = 0.1
    tau_p: float = 1.0
    stride: int = 10
    restart_every: int = 1000
    seed: int = 12345
    thermostat_chain: int = 3
    init_velocities: bool = False
    init_temperature: float | None = None


def md_input(
    plugin,
    package,
    species: list[str],
    ghost_cutoff: float,
    md: MDSettings,
    *,
    data: str = "data.lmp",
    dump: str = "dump.lammpstrj",
    restart: str = "restart",
    resume_from: str | None = None,
    steps: int | None = None,
    skin: float = 1.0,
    threads: int = 1,
) -> str:
    """Input script of an MD run with the ensembles of :mod:`atomtwin.engines.md`.

    Writes the dump (``id type x y z ix iy iz vx vy vz fx fy fz``, sorted, full precision)
    and thermo output (:data:`THERMO_FIELDS`, full precision, in the log) every ``stride`` steps,
    and ``restart.<step>`` every ``restart_every`` steps and at the end.  With
    ``resume_from`` it reads that restart file instead of the data file, appends to the dump
    and runs the remaining ``steps`` (``run N upto``).
    """
    ens = md.ensemble
    if ens not in ("nve", "langevin", "nhc", "npt", "npt-aniso"):
        raise InputError(
            f"ensemble '{ens}' has no LAMMPS input here. Fix: one of nve, langevin, "
            "nhc, npt, npt-aniso."
        )
    if ens != "nve" and md.temperature is None:
        raise InputError(f"ensemble '{ens}' needs a temperature. Fix: set temperature (K).")
    lines = _header(plugin, package, species, ghost_cutoff, skin, data, resume_from, threads)
    lines += [f"timestep {_fmt(md.timestep)}", "reset_timestep 0" if resume_from is None else ""]
    t_init = md.init_temperature if md.init_temperature is not None else md.temperature
    if md.init_velocities and resume_from is None and t_init:
        lines.append(f"velocity all create {_fmt(t_init)} {md.seed} dist gaussian mom yes")
    t = md.temperature
    p_bar = md.pressure * EV_PER_A3_TO_BAR
    chain = f"tchain {md.thermostat_chain}"
    if ens == "nve":
        lines.append("fix integ all nve")
    elif ens == "langevin":
        lines += [
            "fix integ all nve",
            f"fix thermostat all langevin {_fmt(t)} {_fmt(t)} {_fmt(1.0 / md.friction)} "
            f"{md.seed} zero yes",
        ]
    elif ens == "nhc":
        lines.append(f"fix integ all nvt temp {_fmt(t)} {_fmt(t)} {_fmt(md.tau_t)} {chain}")
    else:
        style = "iso" if ens == "npt" else "tri"
        lines.append(
            f"fix integ all npt temp {_fmt(t)} {_fmt(t)} {_fmt(md.tau_t)} {style} "
            f"{_fmt(p_bar)} {_fmt(p_bar)} {_fmt(md.tau_p)} {chain}"
        )
    append = " append yes" if resume_from else ""
    lines += [
        f"dump d all custom {md.stride} {dump} id type x y z ix iy iz vx vy vz fx fy fz",
        "dump_modify d sort id format float %.17g" + append,
        f"thermo {md.stride}",
        f"thermo_style custom {' '.join(THERMO_FIELDS)}",
        "thermo_modify format float %.17g norm no flush yes",
        f"restart {md.restart_every} {restart}.*",
        "",
    ]
    if resume_from:
        lines.append(f"run {steps if steps is not None else md.steps} upto")
    else:
        lines.append(f"run {steps if steps is not None else md.steps}")
    lines.append(f"write_restart {restart}.*")
    return "\n".join(x for x in lines if x is not None) + "\n"
