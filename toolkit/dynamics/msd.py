"""Mean squared displacement over all time origins (FFT), per species, by direction and
inside a region, out of core along ``atom``.

The estimator is the usual all-origins average

    MSD(m dt) = < |r_i(k + m) - r_i(k)|^2 >_{i, k},   k = 0 .. F - 1 - m,

computed with one FFT per chunk of atoms (O(F log F)), identical to the direct double sum
(and to MDAnalysis' ``EinsteinMSD(fft=True)``).  Atoms are processed in chunks, each
chunk loaded, unwrapped (:func:`toolkit.geometry.unwrap`) and reduced to an (F,) sum, so
a dask-backed trajectory (``toolkit.open``) larger than memory is analysed in a bounded
footprint.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import xarray as xr

from toolkit import geometry as G
from toolkit import schema as S
from toolkit.dynamics._fft import msd_sums, segment_msd_sums

AXES = {"x": 0, "y": 1, "z": 2}
#: default atoms per chunk: ~F * 256 * 3 * 8 bytes of positions plus the FFT work space
ATOM_CHUNK = 256


def parse_axes(axes: str) -> list[int]:
    """``"xy"`` -> [0, 1]; error naming the accepted letters otherwise."""
    ax = str(axes).lower()
    if not ax or any(c not in AXES for c in ax) or len(set(ax)) != len(ax):
        raise ValueError(f"axes={axes!r} is not a combination of distinct 'x', 'y', 'z' (e.g. 'xy', 'z', 'xyz').")
    return [AXES[c] for c in ax]


def parse_region(region) -> tuple[int, float, float] | None:
    """A slab ``"z=10:20"``, ``("z", 10, 20)`` or ``{"axis": "z", "range": (10, 20)}`` (Å)."""
    if region is None:
        return None
    if isinstance(region, str):
        m = re.fullmatch(r"\s*([xyz])\s*=\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*", region)
        if not m:
            raise ValueError(f"region {region!r} is not of the form 'z=LO:HI' (Å), e.g. 'z=10:20'.")
        axis, lo, hi = m.group(1), float(m.group(2)), float(m.group(3))
    elif isinstance(region, dict):
        axis, (lo, hi) = region["axis"], region["range"]
    else:
        axis, lo, hi = region
    if axis not in AXES:
        raise ValueError(f"region axis {axis!r} must be 'x', 'y' or 'z'.")
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        raise ValueError(f"region {axis}={lo}:{hi} is empty; give LO < HI in Å.")
    return AXES[axis], lo, hi


def species_indices(ds: xr.Dataset, species: str) -> np.ndarray:
    """Atom indices of one species; a clear error naming the species present when absent."""
    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    idx = np.flatnonzero(sp == str(species))
    if idx.size == 0:
        raise S.SchemaError(
            f"species '{species}' is not in the trajectory (it has {sorted(set(sp.tolist()))}). "
            "Fix: choose one of those, or map LAMMPS types to species when reading (species_map=...)."
        )
    return idx


def resolve_species(ds: xr.Dataset, species) -> list[str]:
    if species is None:
        sp = np.asarray(ds[S.SPECIES].values).astype(str)
        _, first = np.unique(sp, return_index=True)
        return [str(sp[i]) for i in sorted(first)]
    wanted = [species] if isinstance(species, str) else [str(s) for s in species]
    for s in wanted:
        species_indices(ds, s)
    return wanted


def continuous_positions(sub: xr.Dataset, unwrap: str | bool = "auto") -> np.ndarray:
    """Unwrapped positions (F, n, 3) in Å of a (small) atom subset, loaded as float64.

    ``unwrap`` is a :func:`toolkit.geometry.unwrap` method, or ``False``/``"none"`` when
    the positions are already continuous; then a periodic trajectory whose atoms jump by
    more than half a cell between frames triggers a warning (they look wrapped).
    """
    if unwrap in (False, None, "none"):
        pos = np.asarray(sub[S.POSITIONS].values, dtype=np.float64)
        if S.is_periodic(sub) and pos.shape[0] > 1:
            frac = G.to_fractional(np.diff(pos, axis=0), G.cell_array(sub)[1:])
            big = np.abs(frac) * S.pbc_of(sub) > 0.5
            if big.any():
                warnings.warn(
                    f"unwrap='none' but {int(big.any(axis=(0, 2)).sum())} atom(s) jump by more than half a "
                    "cell between frames: the positions look wrapped. Fix: pass unwrap='auto' (or keep "
                    "image flags in the trajectory).",
                    stacklevel=3,
                )
        return pos
    out = G.unwrap(sub, method="auto" if unwrap is True else unwrap)
    return np.asarray(out[S.POSITIONS].values, dtype=np.float64)


def wrapped_coordinate(sub: xr.Dataset, pos: np.ndarray, axis: int) -> np.ndarray:
    """Cartesian coordinate ``axis`` (F, n) of positions wrapped into the cell (Å)."""
    if not S.is_periodic(sub):
        return pos[..., axis]
    cell = G.cell_array(sub)
    s = G.to_fractional(pos, cell)
    s = s - np.where(S.pbc_of(sub), np.floor(s), 0.0)
    return G.to_cartesian(s, cell)[..., axis]


def com_drift(ds: xr.Dataset, unwrap: str | bool = "auto", atom_chunk: int = ATOM_CHUNK) -> np.ndarray:
    """Displacement of the mass-weighted centre of mass of all atoms since frame 0, (F, 3) Å."""
    n_atoms = ds.sizes[S.ATOM]
    mass = (np.asarray(ds[S.MASS].values, dtype=float) if S.MASS in ds.coords
            else np.ones(n_atoms))
    acc = np.zeros((ds.sizes[S.FRAME], 3))
    for a in range(0, n_atoms, atom_chunk):
        sl = slice(a, min(a + atom_chunk, n_atoms))
        pos = continuous_positions(ds.isel({S.ATOM: sl}), unwrap)
        acc += np.einsum("fai,a->fi", pos, mass[sl])
    com = acc / mass.sum()
    return com - com[0]


def _species_msd(ds, idx, comps, region, drift, unwrap, atom_chunk):
    n = ds.sizes[S.FRAME]
    sums = np.zeros(n)
    counts = np.zeros(n, dtype=np.int64)
    for a in range(0, idx.size, atom_chunk):
        sub = ds.isel({S.ATOM: idx[a:a + atom_chunk]})
        pos = continuous_positions(sub, unwrap)
        if region is not None:
            axis, lo, hi = region
            coord = wrapped_coordinate(sub, pos if unwrap in (False, None, "none")
                                       else np.asarray(sub[S.POSITIONS].values, dtype=float), axis)
            inside = (coord >= lo) & (coord < hi)
        if drift is not None:
            pos = pos - drift[:, None, :]
        x = pos[:, :, comps]
        if region is None:
            sums += msd_sums(x)
            counts += x.shape[1] * (n - np.arange(n))
        else:
            s_, c_ = segment_msd_sums(x, inside)
            sums += s_
            counts += c_
    return sums, counts


def msd(
    ds: xr.Dataset,
    species: str | list[str] | None = None,
    *,
    axes: str = "xyz",
    region=None,
    remove_drift: bool = True,
    unwrap: str | bool = "auto",
    n_blocks: int | None = None,
    atom_chunk: int = ATOM_CHUNK,
) -> xr.DataArray:
    """Mean squared displacement over all time origins, per species.

    Parameters
    ----------
    ds
        Trajectory (frame, atom, xyz) in Å with evenly spaced frames; may be dask-backed.
    species
        One species (result has dims ``(lag,)``), a list or ``None`` for every species
        (dims ``(species, lag)``).
    axes
        Cartesian components summed in the MSD: ``"xyz"``, ``"xy"`` (in-plane), ``"z"``...
    region
        Restrict to a slab, ``"z=10:20"`` (Å, on positions wrapped into the cell).  A pair
        of frames (k, k+m) counts only when the atom stays in the slab at every frame from
        k to k+m (it is the MSD of atoms *while resident*); ``n_pairs`` gives the number
        of (atom, origin) pairs behind each lag and lags no residence reaches are dropped.
    remove_drift
        Subtract the displacement of the centre of mass of the whole system (all atoms,
        mass weighted), e.g. from a thermostat's momentum leak.
    unwrap
        Method of :func:`toolkit.geometry.unwrap` (``"auto"``, ``"image"``, ``"jump"``,
        ``"displacement"``), or ``False`` when positions are already continuous.
    n_blocks
        Split the frames into this many contiguous blocks and return one MSD per block
        (extra leading dim ``block``), e.g. for block-averaged errors.
    atom_chunk
        Atoms loaded at a time (bounds memory; time correlations chunk along ``atom``).

    Returns
    -------
    DataArray ``msd`` in Å^2 over ``lag`` (ps), with coordinate ``n_pairs`` and attrs
    ``n_frames``, ``n_atoms``, ``n_dims``, ``timestep_ps``, ``axes``, ``region``...

    Raises
    ------
    SchemaError
        Unevenly spaced frames, an absent species.
    ValueError
        Bad ``axes``/``region``, a region no atom of the species visits, fewer than 2 frames.
    """
    S.validate(ds)
    if n_blocks is not None:
        return _block_msd(ds, species, n_blocks, axes=axes, region=region,
                          remove_drift=remove_drift, unwrap=unwrap, atom_chunk=atom_chunk)
    n = ds.sizes[S.FRAME]
    if n < 2:
        raise ValueError(f"the trajectory has {n} frame(s); an MSD needs at least 2 (and a fit many more).")
    dt = S.uniform_timestep(ds)
    comps = parse_axes(axes)
    reg = parse_region(region)
    names = resolve_species(ds, species)
    drift = com_drift(ds, unwrap, atom_chunk) if remove_drift else None
    out = []
    for sp in names:
        idx = species_indices(ds, sp)
        sums, counts = _species_msd(ds, idx, comps, reg, drift, unwrap, atom_chunk)
        keep = counts > 0
        if reg is not None and counts[0] == 0:
            raise ValueError(
                f"no {sp} atom ever visits the region {region!r} (the wrapped {'xyz'[reg[0]]} coordinates "
                f"of {sp} never fall in [{reg[1]}, {reg[2]}) Å). Fix: check the slab bounds against the cell."
            )
        keep[np.argmin(keep) if not keep.all() else n:] = False
        lags = np.flatnonzero(keep)
        vals = sums[lags] / counts[lags]
        da = xr.DataArray(
            vals, dims=("lag",),
            coords={"lag": ("lag", lags * dt, {"units": "ps"}), "n_pairs": ("lag", counts[lags])},
            name="msd",
            attrs={"units": "Å^2", "species": sp, "axes": str(axes), "n_dims": len(comps),
                   "n_frames": n, "n_atoms": int(idx.size), "timestep_ps": dt,
                   "region": "" if region is None else str(region),
                   "drift_removed": int(bool(remove_drift)), "unwrap": str(unwrap),
                   "long_name": "mean squared displacement"},
        )
        out.append(da)
    if isinstance(species, str):
        return out[0]
    res = xr.concat(out, dim=xr.DataArray(names, dims="species", name="species"), join="outer",
                    combine_attrs="drop_conflicts")
    res = res.assign_coords(n_atoms=("species", [d.attrs["n_atoms"] for d in out]))
    res.attrs.pop("species", None)
    res.attrs.update({"units": "Å^2", "long_name": "mean squared displacement"})
    return res


def _block_msd(ds, species, n_blocks, **kwargs) -> xr.DataArray:
    n = ds.sizes[S.FRAME]
    if n_blocks < 2 or n // n_blocks < 8:
        raise ValueError(f"n_blocks={n_blocks} with {n} frames leaves blocks of {n // max(n_blocks, 1)} frames; "
                         "use at least 2 blocks of at least 8 frames each.")
    size = n // n_blocks
    blocks = [msd(ds.isel({S.FRAME: slice(b * size, (b + 1) * size)}), species, **kwargs)
              for b in range(n_blocks)]
    ref = blocks[0]["lag"].values
    blocks = [b.assign_coords(lag=ref[: b.sizes["lag"]]) for b in blocks]
    res = xr.concat(blocks, dim="block", join="inner", combine_attrs="drop_conflicts")
    res.attrs.update({"units": "Å^2", "n_blocks": n_blocks, "n_frames": size})
    return res
