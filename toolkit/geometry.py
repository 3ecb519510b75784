"""Periodic geometry: fractional coordinates, minimum image, wrapping and unwrapping.

Unwrapping is an explicit function, never an assumption.  :func:`unwrap` uses image flags
when the trajectory has them; otherwise it accumulates minimum-image jumps of the
*fractional* coordinates between consecutive frames, which is correct when the cell
changes (NPT): the displacement between frames is taken in the fractional frame of the
later cell, so a cell that breathes does not register as a jump (the "TOR" scheme of
von Bülow, Bullerjahn & Hummer, J. Chem. Phys. 153, 021101 (2020) avoids the
spurious drift of naive Cartesian unwrapping under a fluctuating box).
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import InputError


def cell_array(ds: xr.Dataset) -> np.ndarray:
    """Cell as an array (n_frames, 3, 3) in Å; error when the trajectory has no cell."""
    if S.CELL not in ds:
        raise S.SchemaError(
            "this operation needs a periodic cell but the trajectory has none. "
            "Fix: assign one with ds['cell'] = (('frame','cell_vector','xyz'), cells) or read a "
            "file that stores it."
        )
    return np.asarray(ds[S.CELL].values, dtype=float)


def to_fractional(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Fractional coordinates s with r = s @ cell (cell rows are lattice vectors).

    ``positions`` (..., n_atoms, 3), ``cell`` (..., 3, 3) broadcastable.
    """
    inv = np.linalg.inv(cell)
    return positions @ inv


def to_cartesian(fractional: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Cartesian positions r = s @ cell."""
    return fractional @ cell


def minimum_image(vectors: np.ndarray, cell: np.ndarray, pbc=(True, True, True)) -> np.ndarray:
    """Apply the minimum-image convention to displacement vectors (..., 3) in Å.

    Exact for orthorhombic cells; for triclinic cells the fractional rounding is the
    standard approximation, exact for displacements shorter than half the shortest
    perpendicular width of the cell.
    """
    s = to_fractional(vectors, cell)
    pbc = np.asarray(pbc, dtype=bool)
    s = s - np.where(pbc, np.round(s), 0.0)
    return to_cartesian(s, cell)


def wrap(ds: xr.Dataset) -> xr.Dataset:
    """Positions wrapped into the cell [0, 1) along periodic directions; image flags updated."""
    S.validate(ds, require=(S.CELL,))
    cell = cell_array(ds)
    pbc = S.pbc_of(ds)
    s = to_fractional(np.asarray(ds[S.POSITIONS].values), cell)
    shift = np.where(pbc, np.floor(s), 0.0)
    out = ds.copy()
    out[S.POSITIONS] = ds[S.POSITIONS].copy(data=to_cartesian(s - shift, cell))
    if S.IMAGE in ds:
        out[S.IMAGE] = ds[S.IMAGE] + shift.astype(ds[S.IMAGE].dtype)
    else:
        out[S.IMAGE] = (S.VARIABLES[S.IMAGE].dims, shift.astype(np.int32), {"units": "1"})
    return out


def unwrap(ds: xr.Dataset, *, method: str = "auto") -> xr.Dataset:
    """Continuous (unwrapped) positions.

    Parameters
    ----------
    ds
        Trajectory with ``cell``; positions may be wrapped.
    method
        ``"image"``: r + n @ h(t) from the stored ``image`` flags (exact, LAMMPS'
        definition).  ``"jump"``: the image flags are reconstructed by accumulating the
        rounded jumps of the *fractional* coordinates between consecutive frames, then
        r + n @ h(t) as for ``"image"``; identical to ``"image"`` under a changing cell
        (NPT) as long as no atom moves more than half a cell between stored frames.
        ``"displacement"``: the "toroidal" scheme of von Bülow, Bullerjahn & Hummer,
        J. Chem. Phys. 153, 021101 (2020): minimum-image Cartesian displacements in the
        later cell are accumulated, which avoids the spurious box-scaling displacements
        of image-based unwrapping in long NPT runs (use it for diffusion under NPT).
        ``"auto"`` (default): ``"image"`` when flags are present, else ``"jump"``.

    Returns
    -------
    Dataset
        A copy with unwrapped ``positions`` (Å), ``attrs['unwrapped'] = method`` and the
        ``image`` flags removed.  Non-periodic trajectories are returned unchanged.
    """
    S.validate(ds)
    if not S.is_periodic(ds):
        return ds
    if method == "auto":
        method = "image" if S.IMAGE in ds else "jump"
    if method not in ("image", "jump", "displacement"):
        raise InputError(f"unknown unwrap method {method!r}; use 'auto', 'image', 'jump' or 'displacement'.")
    cell = cell_array(ds)
    pos = np.asarray(ds[S.POSITIONS].values, dtype=float)
    pbc = S.pbc_of(ds)
    if method == "image":
        if S.IMAGE not in ds:
            raise S.SchemaError(
                "method='image' but the trajectory has no 'image' flags. Fix: use method='jump'."
            )
        img = np.asarray(ds[S.IMAGE].values, dtype=float) * pbc
        new = pos + np.einsum("fai,fij->faj", img, cell)
    elif method == "jump":
        s = to_fractional(pos, cell)
        ds_ = np.diff(s, axis=0)
        jumps = np.where(pbc, np.round(ds_), 0.0)
        _warn_ambiguous(np.abs(ds_ - jumps))
        img = np.zeros_like(s)
        img[1:] = -np.cumsum(jumps, axis=0)
        new = np.einsum("fai,fij->faj", s + img, cell)
    else:
        dw = np.diff(pos, axis=0)
        sd = to_fractional(dw, cell[1:])
        jumps = np.where(pbc, np.round(sd), 0.0)
        _warn_ambiguous(np.abs(sd - jumps))
        dr = dw - np.einsum("fai,fij->faj", jumps, cell[1:])
        new = np.empty_like(pos)
        new[0] = pos[0]
        new[1:] = pos[0] + np.cumsum(dr, axis=0)
    out = ds.drop_vars(S.IMAGE, errors="ignore").copy()
    out[S.POSITIONS] = ds[S.POSITIONS].copy(data=new)
    out.attrs["unwrapped"] = method
    return out


def _warn_ambiguous(frac_step: np.ndarray, limit: float = 0.35) -> None:
    if frac_step.size and frac_step.max() > limit:
        f, a, k = np.unravel_index(np.argmax(frac_step), frac_step.shape)
        warnings.warn(
            f"atom {a} moves {frac_step.max():.2f} of the cell along axis {k} between frames {f} and "
            f"{f + 1}: jumps near half a cell are ambiguous without image flags, so unwrapping may "
            "be wrong there. Store frames more often or keep image flags (LAMMPS: dump ... ix iy iz).",
            stacklevel=3,
        )
