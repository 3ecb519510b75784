"""Reading what the spectra need from a schema Dataset, chunk by chunk (lazy-safe)."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError

#: spectra return frequencies in one of these units
FREQUENCY_UNITS = {"THz": 1.0, "cm^-1": U.THZ_TO_INV_CM}
_ALIASES = {"thz": "THz", "cm-1": "cm^-1", "cm^-1": "cm^-1", "1/cm": "cm^-1", "invcm": "cm^-1"}


def frequency_unit(unit: str) -> str:
    """Canonical name of a frequency unit (``"THz"`` or ``"cm^-1"``)."""
    key = _ALIASES.get(str(unit).lower().replace(" ", ""))
    if key is None:
        raise InputError(f"unknown frequency unit '{unit}'. Fix: use 'THz' or 'cm-1'.")
    return key


def to_thz(value: float | None, unit: str) -> float | None:
    """A frequency given in ``unit`` converted to THz."""
    return None if value is None else float(value) / FREQUENCY_UNITS[frequency_unit(unit)]


def frequency_coords(nu_thz: np.ndarray, unit: str) -> dict:
    """``frequency`` in the asked unit plus the other unit as an auxiliary coordinate."""
    unit = frequency_unit(unit)
    other = "cm^-1" if unit == "THz" else "THz"
    return {
        "frequency": ("frequency", nu_thz * FREQUENCY_UNITS[unit], {"units": unit}),
        ("wavenumber" if other == "cm^-1" else "frequency_thz"):
            ("frequency", nu_thz * FREQUENCY_UNITS[other], {"units": other}),
    }


def timestep(ds: xr.Dataset) -> float:
    """Frame spacing in ps (error naming the fix when frames are uneven or time is absent)."""
    return S.uniform_timestep(ds)


def masses(ds: xr.Dataset) -> np.ndarray:
    """Atomic masses (n_atoms,) in amu; ASE's standard masses when the coordinate is absent."""
    if S.MASS in ds.coords:
        return np.asarray(ds[S.MASS].values, dtype=float)
    from ase.data import atomic_masses, atomic_numbers

    return np.array([atomic_masses[atomic_numbers[s]] for s in np.asarray(ds[S.SPECIES].values).astype(str)])


def species_groups(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Atom indices of each species, in order of first appearance."""
    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    _, first = np.unique(sp, return_index=True)
    return {str(sp[i]): np.flatnonzero(sp == sp[i]) for i in sorted(first)}


def volume(ds: xr.Dataset, volume: float | None = None) -> float:
    """Mean cell volume in Å^3, or ``volume`` when given; error for a cell-less trajectory."""
    if volume is not None:
        if volume <= 0:
            raise InputError(f"volume must be positive, got {volume} Å^3.")
        return float(volume)
    if S.CELL not in ds:
        raise InputError(
            "an absolute IR/dielectric spectrum needs a volume but the trajectory has no cell. "
            "Fix: pass volume= (Å^3) or normalization='peak'/'area'."
        )
    cell = ds[S.CELL]
    n = cell.sizes[S.FRAME]
    idx = np.unique(np.linspace(0, n - 1, min(n, 1000)).astype(int))
    c = np.asarray(cell.isel({S.FRAME: idx}).values, dtype=float)
    return float(np.abs(np.linalg.det(c)).mean())


def velocity_chunk(ds: xr.Dataset, frames: slice, atoms: np.ndarray | slice, dt: float) -> np.ndarray:
    """Velocities (n, n_atoms_chunk, 3) in Å/ps for a frame range.

    From ``velocities`` when stored; otherwise forward differences of the positions,
    minimum-imaged in the later cell: difference k of the range is r[k+1] - r[k] (midpoint
    velocities; the trajectory has one fewer of them than frames).
    """
    if S.VELOCITIES in ds:
        return np.asarray(ds[S.VELOCITIES].isel({S.FRAME: frames, S.ATOM: atoms}).values, dtype=float)
    start = frames.start or 0
    stop = ds.sizes[S.FRAME] - 1 if frames.stop is None else frames.stop
    r = np.asarray(ds[S.POSITIONS].isel({S.FRAME: slice(start, stop + 1), S.ATOM: atoms}).values, dtype=float)
    d = np.diff(r, axis=0)
    if S.is_periodic(ds):
        from atomtwin.toolkit.geometry import minimum_image

        cell = np.asarray(ds[S.CELL].isel({S.FRAME: slice(start + 1, stop + 1)}).values, dtype=float)
        d = minimum_image(d, cell, S.pbc_of(ds))
    return d / dt


def kinetic_temperature(ds: xr.Dataset, max_frames: int = 2000) -> float:
    """Kinetic temperature in K, from up to ``max_frames`` evenly spread frames (3 N dof)."""
    if S.VELOCITIES not in ds:
        raise InputError(
            "the spectrum needs a temperature and the trajectory has no velocities to estimate it. "
            "Fix: pass temperature= (K)."
        )
    n = ds.sizes[S.FRAME]
    idx = np.unique(np.linspace(0, n - 1, min(n, max_frames)).astype(int))
    v = np.asarray(ds[S.VELOCITIES].isel({S.FRAME: idx}).values, dtype=float)
    m = masses(ds)
    ke = 0.5 * np.einsum("a,fai->", m, v**2) / len(idx) * U.AMU_A2_PS2_TO_EV
    return float(2.0 * ke / (3 * ds.sizes[S.ATOM] * U.KB))


def warn_short(n_frames: int, n_lags: int, what: str) -> None:
    """Warn when the correlation length is more than half the data (noisy tail)."""
    if n_lags > n_frames // 2 + 1:
        warnings.warn(f"{what}: the correlation length ({n_lags} frames) exceeds half of a block "
                      f"({n_frames} frames); its tail is noisy. Fix: a shorter max_lag or fewer blocks.",
                      UserWarning, stacklevel=3)
