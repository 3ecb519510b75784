"""Formats read through ASE: extended XYZ / XYZ, ASE .traj, VASP XDATCAR / vasprun.xml /
OUTCAR, CIF, POSCAR and anything else ``ase.io.read`` knows."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U


def atoms_list_to_dataset(frames, *, source: str = "", timestep_ps: float | None = None) -> xr.Dataset:
    """Schema Dataset from a list of :class:`ase.Atoms` (same atoms in every frame).

    Energies, forces, stress (Voigt or 3x3, ASE's eV/Å^3), velocities (ASE units -> Å/ps),
    dipoles and per-atom energies are carried when every frame has them.
    """
    if not frames:
        raise ValueError(f"'{source}' holds no frames.")
    n0 = len(frames[0])
    sym0 = frames[0].get_chemical_symbols()
    for i, a in enumerate(frames):
        if len(a) != n0:
            raise ValueError(
                f"'{source}': frame {i} has {len(a)} atoms but frame 0 has {n0}. A trajectory needs the "
                "same atoms in every frame. Fix: read the frames separately (index=...) or split the file."
            )
        if a.get_chemical_symbols() != sym0:
            raise ValueError(f"'{source}': frame {i} has other species (or order) than frame 0.")
    pos = np.stack([a.get_positions() for a in frames])
    bad = ~np.isfinite(pos)
    if bad.any():
        f, at, _ = np.argwhere(bad)[0]
        raise ValueError(f"'{source}': NaN/inf coordinates in frame {f}, atom {at}. Fix: cut the file before that frame.")
    pbc = frames[0].get_pbc()
    has_cell = bool(pbc.any()) or frames[0].cell.rank == 3
    cell = np.stack([a.get_cell().array for a in frames]) if has_cell else None
    extra: dict[str, np.ndarray] = {}

    def collect(getter):
        out = []
        for a in frames:
            try:
                v = getter(a)
            except Exception:  # noqa: BLE001 - property absent on this frame
                return None
            if v is None:
                return None
            out.append(np.asarray(v, dtype=float))
        return np.stack(out)

    def calc_prop(name):
        def get(a):
            if a.calc is not None and name in getattr(a.calc, "results", {}):
                return a.calc.results[name]
            if name in a.info:
                return a.info[name]
            if name in a.arrays:
                return a.arrays[name]
            return None

        return get

    e = collect(calc_prop("energy"))
    if e is None:
        e = collect(calc_prop("free_energy"))
    if e is not None:
        extra[S.ENERGY] = e.reshape(len(frames))
    f = collect(calc_prop("forces"))
    if f is not None:
        extra[S.FORCES] = f
    st = collect(calc_prop("stress"))
    if st is not None:
        if st.shape[-1] == 6:
            from ase.stress import voigt_6_to_full_3x3_stress

            st = np.stack([voigt_6_to_full_3x3_stress(s) for s in st])
        extra[S.STRESS] = st.reshape(len(frames), 3, 3)
    ea = collect(calc_prop("energies"))
    if ea is not None:
        extra[S.ATOM_ENERGIES] = ea
    d = collect(calc_prop("dipole"))
    if d is not None:
        extra[S.DIPOLE] = d
    if all(a.has("momenta") for a in frames):
        v = np.stack([a.get_velocities() for a in frames]) * (1.0 / U.ASE_TIME_TO_PS)
        if np.any(v):
            extra[S.VELOCITIES] = v
    time = None
    if timestep_ps is not None:
        time = np.arange(len(frames)) * float(timestep_ps)
    elif all("time" in a.info for a in frames):
        time = np.array([float(a.info["time"]) for a in frames])  # assumed ps
    masses = frames[0].get_masses()
    ds = S.make_dataset(
        pos, sym0, cell=cell, time=time, pbc=pbc, masses=masses,
        attrs={S.SOURCE: source}, **extra,
    )
    return ds


def read_ase(path: str | Path, *, format: str | None = None, index=":", timestep_ps=None, **kw) -> xr.Dataset:
    import ase.io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frames = ase.io.read(str(path), index=index, format=format, **kw)
    if not isinstance(frames, list):
        frames = [frames]
    return atoms_list_to_dataset(frames, source=str(path), timestep_ps=timestep_ps)


def dataset_to_atoms(ds: xr.Dataset, frame: int = -1):
    """One frame as :class:`ase.Atoms` (with a SinglePointCalculator for stored labels)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    fr = ds.isel({S.FRAME: frame})
    atoms = Atoms(
        symbols=[str(s) for s in fr[S.SPECIES].values],
        positions=np.asarray(fr[S.POSITIONS].values),
        cell=np.asarray(fr[S.CELL].values) if S.CELL in fr else None,
        pbc=S.pbc_of(ds),
        masses=np.asarray(fr[S.MASS].values) if S.MASS in fr.coords else None,
    )
    if S.VELOCITIES in fr:
        atoms.set_velocities(np.asarray(fr[S.VELOCITIES].values) * U.ASE_TIME_TO_PS)
    res = {}
    if S.ENERGY in fr:
        res["energy"] = float(fr[S.ENERGY])
    if S.FORCES in fr:
        res["forces"] = np.asarray(fr[S.FORCES].values)
    if S.STRESS in fr:
        res["stress"] = np.asarray(fr[S.STRESS].values)
    if res:
        atoms.calc = SinglePointCalculator(atoms, **res)
    return atoms
