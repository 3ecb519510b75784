"""Mean squared displacement over all time origins (FFT), per species, by direction and
inside a region, out of core along ``atom``.

The estimator is the usual all-origins average

    MSD(m dt) = < |r_i(k + m) - r_i(k)|^2 >_{i, k},   k = 0 .. F - 1 - m,

computed with one FFT per chunk of atoms (O(F log F)), identical to the direct double sum
(and to MDAnalysis' ``EinsteinMSD(fft=True)``).  Atoms are processed in chunks, each
chunk loaded, unwrapped (:func:`atomtwin.toolkit.geometry.unwrap`) and reduced to an (F,) sum, so
a dask-backed trajectory (``atomtwin.toolkit.open``) larger than memory is analysed in a bounded
footprint.
"""

from __future__ import annotations

import contextlib
import re
import warnings

import numpy as np
import xarray as xr
from atomtwin.toolkit import geometry as G
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.correlation import Buffers, msd_sums, segment_msd_sums
from atomtwin.toolkit.dynamics._outofcore import atom_major, needs_atom_major
from atomtwin.toolkit.errors import InputError

AXES = {"x": 0, "y": 1, "z": 2}
#: largest atom chunk.  Per chunk the MSD holds the positions (F x chunk x 3 float64) and an
#: FFT work array plus its transform (2 x 3 chunk x 2F float64), ~ 5 x 24 F bytes an atom.
#: Measured (2000 atoms x 4000 frames, one core): 16 atoms 2.2 s, 32 1.5 s, 64-256 1.2-1.3 s,
#: 512 1.5 s, 1024 2.4 s (larger chunks fall out of cache), so the chunk size only bounds
#: memory inside 64..256.
ATOM_CHUNK = 256
#: bytes of work space one chunk may take at most (caps the chunk for very long runs)
CHUNK_BYTES = 256e6


def auto_atom_chunk(n_frames: int, n_atoms: int) -> int:
    """Atoms per chunk: at most :data:`ATOM_CHUNK`, at most 1/16 of the atoms analysed (so
    the work space stays <= ~0.3x the positions array, the peak <= ~1.3x), at most
    :data:`CHUNK_BYTES` of work space, at least 16 (fewer only costs Python overhead)."""
    per_atom = 5 * 24 * max(n_frames, 1)
    return int(max(16, min(ATOM_CHUNK, n_atoms // 16, CHUNK_BYTES // per_atom)))


def parse_axes(axes: str) -> list[int]:
    """``"xy"`` -> [0, 1]; error naming the accepted letters otherwise."""
    ax = str(axes).lower()
    if not ax or any(c not in AXES for c in ax) or len(set(ax)) != len(ax):
        raise InputError(f"axes={axes!r} is not a combination of distinct 'x', 'y', 'z' (e.g. 'xy', 'z', 'xyz').")
    return [AXES[c] for c in ax]


def parse_region(region) -> tuple[int, float, float] | None:
    """A slab ``"z=10:20"``, ``("z", 10, 20)`` or ``{"axis": "z", "range": (10, 20)}`` (Å)."""
    if region is None:
        return None
    if isinstance(region, str):
        m = re.fullmatch(r"\s*([xyz])\s*=\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*", region)
        if not m:
            raise InputError(f"region {region!r} is not of the form 'z=LO:HI' (Å), e.g. 'z=10:20'.")
        axis, lo, hi = m.group(1), float(m.group(2)), float(m.group(3))
    elif isinstance(region, dict):
        axis, (lo, hi) = region["axis"], region["range"]
    else:
        axis, lo, hi = region
    if axis not in AXES:
        raise InputError(f"region axis {axis!r} must be 'x', 'y' or 'z'.")
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        raise InputError(f"region {axis}={lo}:{hi} is empty; give LO < HI in Å.")
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


def _atom_selection(idx: np.ndarray):
    """A slice when the indices are a contiguous run (a view, no fancy-index copy)."""
    idx = np.asarray(idx)
    if idx.size and idx[-1] - idx[0] + 1 == idx.size and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def load_positions(ds: xr.Dataset, idx, unwrap: str | bool = "auto") -> np.ndarray:
    """Continuous positions (F, n, 3) float64 in Å of atoms ``idx`` (a chunk).

    In-memory, already-continuous positions are sliced straight from the array (a view
    when ``idx`` is a contiguous run); everything else goes through
    :func:`continuous_positions` (unwrapping, dask loading).
    """
    sel = _atom_selection(idx)
    data = ds[S.POSITIONS].data
    if unwrap in (False, None, "none") and isinstance(data, np.ndarray) and not S.is_periodic(ds):
        return np.asarray(data[:, sel], dtype=np.float64)
    return continuous_positions(ds.isel({S.ATOM: sel}), unwrap)


def continuous_positions(sub: xr.Dataset, unwrap: str | bool = "auto") -> np.ndarray:
    """Unwrapped positions (F, n, 3) in Å of a (small) atom subset, loaded as float64.

    ``unwrap`` is a :func:`atomtwin.toolkit.geometry.unwrap` method, or ``False``/``"none"`` when
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


def com_drift(ds: xr.Dataset, unwrap: str | bool = "auto", atom_chunk: int | None = ATOM_CHUNK) -> np.ndarray:
    """Displacement of the mass-weighted centre of mass of all atoms since frame 0, (F, 3) Å."""
    n_atoms = ds.sizes[S.ATOM]
    atom_chunk = atom_chunk or auto_atom_chunk(ds.sizes[S.FRAME], n_atoms)
    mass = (np.asarray(ds[S.MASS].values, dtype=float) if S.MASS in ds.coords
            else np.ones(n_atoms))
    acc = np.zeros((ds.sizes[S.FRAME], 3))
    for a in range(0, n_atoms, atom_chunk):
        sl = slice(a, min(a + atom_chunk, n_atoms))
        pos = load_positions(ds, np.arange(sl.start, sl.stop), unwrap)
        acc += np.einsum("fai,a->fi", pos, mass[sl])
    com = acc / mass.sum()
    return com - com[0]


def _region_msd(ds, idx, comps, region, drift, unwrap, atom_chunk):
    """Residence-restricted sums and pair counts of one species (drift subtracted first)."""
    n = ds.sizes[S.FRAME]
    sums = np.zeros(n)
    counts = np.zeros(n, dtype=np.int64)
    axis, lo, hi = region
    for a in range(0, idx.size, atom_chunk):
        sub = ds.isel({S.ATOM: _atom_selection(idx[a:a + atom_chunk])})
        pos = continuous_positions(sub, unwrap)
        coord = wrapped_coordinate(sub, pos if unwrap in (False, None, "none")
                                   else np.asarray(sub[S.POSITIONS].values, dtype=float), axis)
        inside = (coord >= lo) & (coord < hi)
        if drift is not None:
            pos = pos - drift[:, None, :]
        s_, c_ = segment_msd_sums(pos[:, :, comps], inside)
        sums += s_
        counts += c_
    return sums, counts


#: lags (frames) at which :func:`msd` also measures the scatter over time origins of the
#: per-origin MSD (the data behind the correlation-aware error of ``fit_diffusion``)
N_PROBES = 16


def probe_lags(n_frames: int) -> np.ndarray:
    """Geometrically spaced lags (frames) from (F - 1) // 100 (at least 1) to (F - 1) // 2 for
    the origin-scatter probes: the fit window starts at >= F / 10 (``fit_diffusion``), whose
    error model reads the probes from a fifth of its start on."""
    top = max(1, (n_frames - 1) // 2)
    return np.unique(np.rint(np.geomspace(max(1, top // 50), top, N_PROBES)).astype(np.int64))


def probe_stride(m: int) -> int:
    """Origins of probe lag m are taken every max(1, m // 8) frames: origins closer than m
    share most of their window, so this keeps the information and bounds the cost at
    ~8 (F / m) windows per probe (without it the probes cost as much as the MSD itself)."""
    return max(1, int(m) // 8)


def _probe_sums(x: np.ndarray, probes: np.ndarray, out: np.ndarray) -> None:
    """out[p, j] += sum over atoms and components of (x[k + m_p] - x[k])^2, k = j * stride
    (x: (F, n, d))."""
    n = x.shape[0]
    for p, m in enumerate(probes):
        if m < n:
            st = probe_stride(m)
            d = x[m::st] - x[:n - m:st]
            out[p, :d.shape[0]] += np.einsum("kai,kai->k", d, d)


def _all_species_msd(ds, groups, comps, remove_drift, unwrap, atom_chunk, workers):
    """Origin-summed MSD of every species in ``groups`` in ONE pass over the atoms.

    Each atom chunk is loaded and unwrapped once; it feeds the centre-of-mass sum (all
    atoms, when the drift is removed) and, per species, the FFT sums S_s(m) and the
    species' position sum X_s(t) (up to a constant, which no MSD sees).  The drift d(t)
    is removed exactly afterwards: with
    y_i = x_i - d and the species mean xbar = X_s / n_s,

        sum_i sum_k |dy_i|^2 = S_s(m) + n_s (S[xbar - d](m) - S[xbar](m)),

    because sum_i dx_i . dd = n_s dxbar . dd (S[z] is the origin-summed squared
    displacement of the single path z).  No second unwrap pass over the atoms.
    """
    n = ds.sizes[S.FRAME]
    n_atoms = ds.sizes[S.ATOM]
    owner = np.full(n_atoms, -1)
    for g, idx in enumerate(groups):
        owner[idx] = g
    load = np.arange(n_atoms) if remove_drift else np.flatnonzero(owner >= 0)
    mass = (np.asarray(ds[S.MASS].values, dtype=float) if S.MASS in ds.coords else np.ones(n_atoms))
    sums = np.zeros((len(groups), n))
    xsum = np.zeros((len(groups), n, len(comps)))
    com = np.zeros((n, 3))
    probes = probe_lags(n)
    psums = np.zeros((len(groups), probes.size, n))
    buffers = Buffers()  # FFT work arrays shared by all chunks, freed on return
    for a in range(0, load.size, atom_chunk):
        chunk = load[a:a + atom_chunk]
        pos = load_positions(ds, chunk, unwrap)
        if remove_drift:
            com += np.einsum("fai,a->fi", pos, mass[chunk])
        who = owner[chunk]
        for g in np.unique(who[who >= 0]):
            sel = who == g
            x = pos if sel.all() else pos[:, sel]
            x = x if len(comps) == 3 else x[:, :, comps]
            _probe_sums(x, probes, psums[g])
            if remove_drift:
                s_, path = msd_sums(x, workers=workers, return_sum=True, buffers=buffers)
                sums[g] += s_
                xsum[g] += path  # sum of x_i(t) - x_i(0): X_s(t) up to a constant shift
            else:
                sums[g] += msd_sums(x, workers=workers, buffers=buffers)
    if remove_drift:
        com /= mass.sum()
        d = (com - com[0])[:, comps]
        for g, idx in enumerate(groups):
            xbar = xsum[g] / idx.size
            sums[g] += idx.size * (msd_sums(xbar - d) - msd_sums(xbar))
            sums[g, 0] = 0.0
            # the same exact drift correction, origin by origin, for the probes:
            # sum_i |dx_i - dd|^2 = sum_i |dx_i|^2 - 2 dd . dX_s + n_s |dd|^2
            for p, m in enumerate(probes):
                st = probe_stride(m)
                dd = d[m::st] - d[:n - m:st]
                dX = xsum[g, m::st] - xsum[g, :n - m:st]
                psums[g, p, :dd.shape[0]] += (idx.size * np.einsum("ki,ki->k", dd, dd)
                                              - 2.0 * np.einsum("ki,ki->k", dd, dX))
        np.maximum(sums, 0.0, out=sums)
    return sums, _origin_variance(psums, probes, [g.size for g in groups], n)


def _origin_variance(psums, probes, sizes, n) -> np.ndarray:
    """(n_groups, F) sample variance over origins k (every :func:`probe_stride` frames) of the
    per-origin MSD at each probe lag (Å^4), NaN at the other lags and where fewer than 3
    origins exist."""
    out = np.full((len(sizes), n), np.nan)
    for p, m in enumerate(probes):
        used = -(-(n - m) // probe_stride(m))
        if used >= 3:
            out[:, m] = np.var(psums[:, p, :used] / np.asarray(sizes, float)[:, None], axis=1, ddof=1)
    return out


def msd(
    ds: xr.Dataset,
    species: str | list[str] | None = None,
    *,
    axes: str = "xyz",
    region=None,
    remove_drift: bool = True,
    unwrap: str | bool = "auto",
    n_blocks: int | None = None,
    atom_chunk: int | None = None,
    workers: int | None = None,
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
        Method of :func:`atomtwin.toolkit.geometry.unwrap` (``"auto"``, ``"image"``, ``"jump"``,
        ``"displacement"``), or ``False`` when positions are already continuous.
    n_blocks
        Split the frames into this many contiguous blocks and return one MSD per block
        (extra leading dim ``block``), e.g. for block-averaged errors.
    atom_chunk
        Atoms loaded at a time (bounds memory; time correlations chunk along ``atom``);
        ``None`` picks :func:`auto_atom_chunk`.  A dask-backed trajectory chunked along
        ``frame`` (a store from ``atomtwin.toolkit.open``) is first copied (without ``region``; the
        region path reads each atom chunk from the store), in one streaming pass,
        into an atom-major scratch file (see ``atomtwin.toolkit.dynamics._outofcore``) so that
        each atom chunk is one contiguous read.
    workers
        Threads of the FFTs (:mod:`scipy.fft`; ``None`` one, ``-1`` every core).

    Notes
    -----
    Without a region the whole analysis is one pass over the atoms: each chunk is read
    and unwrapped once, and the centre-of-mass drift is subtracted exactly afterwards
    from per-species position sums (see ``_all_species_msd``).  The FFTs are float64,
    zero-padded to the next fast length >= 2F - 1 (a linear correlation), and run along
    contiguous rows.

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
        return _block_msd(ds, species, n_blocks, axes=axes, region=region, remove_drift=remove_drift,
                          unwrap=unwrap, atom_chunk=atom_chunk, workers=workers)
    n = ds.sizes[S.FRAME]
    if n < 2:
        raise InputError(f"the trajectory has {n} frame(s); an MSD needs at least 2 (and a fit many more).")
    dt = S.uniform_timestep(ds)
    comps = parse_axes(axes)
    reg = parse_region(region)
    names = resolve_species(ds, species)
    groups = [species_indices(ds, sp) for sp in names]
    n_load = ds.sizes[S.ATOM] if remove_drift else sum(g.size for g in groups)
    atom_chunk = atom_chunk or auto_atom_chunk(n, n_load)
    if reg is None:
        with contextlib.ExitStack() as stack:
            src = (stack.enter_context(atom_major(ds, atom_chunk)) if needs_atom_major(ds, n_load, atom_chunk)
                   else ds)
            all_sums, origin_var = _all_species_msd(src, groups, comps, remove_drift, unwrap,
                                                    atom_chunk, workers)
    else:
        drift = com_drift(ds, unwrap, atom_chunk) if remove_drift else None
    out = []
    for g, sp in enumerate(names):
        idx = groups[g]
        if reg is None:
            sums, counts = all_sums[g], idx.size * (n - np.arange(n))
        else:
            sums, counts = _region_msd(ds, idx, comps, reg, drift, unwrap, atom_chunk)
        keep = counts > 0
        if reg is not None and counts[0] == 0:
            raise InputError(
                f"no {sp} atom ever visits the region {region!r} (the wrapped {'xyz'[reg[0]]} coordinates "
                f"of {sp} never fall in [{reg[1]}, {reg[2]}) Å). Fix: check the slab bounds against the cell."
            )
        keep[np.argmin(keep) if not keep.all() else n:] = False
        lags = np.flatnonzero(keep)
        vals = sums[lags] / counts[lags]
        coords = {"lag": ("lag", lags * dt, {"units": "ps"}), "n_pairs": ("lag", counts[lags])}
        if reg is None:
            coords["origin_var"] = ("lag", origin_var[g, lags], {
                "units": "Å^4", "long_name": "variance over time origins of the per-origin MSD "
                "(atom mean at one origin), at probe lags; NaN elsewhere"})
        da = xr.DataArray(
            vals, dims=("lag",),
            coords=coords,
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
        raise InputError(f"n_blocks={n_blocks} with {n} frames leaves blocks of {n // max(n_blocks, 1)} frames; "
                         "use at least 2 blocks of at least 8 frames each.")
    size = n // n_blocks
    blocks = [msd(ds.isel({S.FRAME: slice(b * size, (b + 1) * size)}), species, **kwargs)
              for b in range(n_blocks)]
    ref = blocks[0]["lag"].values
    blocks = [b.assign_coords(lag=ref[: b.sizes["lag"]]) for b in blocks]
    res = xr.concat(blocks, dim="block", join="inner", combine_attrs="drop_conflicts")
    res.attrs.update({"units": "Å^2", "n_blocks": n_blocks, "n_frames": size})
    return res
