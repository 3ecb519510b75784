"""Site-based hop analysis: sites (reference or density maxima), site trajectories,
hop events, residence times and rates.

Assignment uses the "transition-state" rule: an atom belongs to the last site whose
sphere of radius ``r_site`` it entered, so thermal excursions between sites are not hops
and a hop is counted once, when the atom arrives in a new site.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import geometry as G
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.dynamics._outofcore import frame_blocks
from atomtwin.toolkit.dynamics.msd import species_indices
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import nearest_neighbors, neighbor_pairs, pair_arrays
from atomtwin.toolkit.neighbors.memory import check_chunk, memory_guard
from atomtwin.toolkit.progress import progress
from scipy import ndimage


def _mean_cell(ds) -> np.ndarray:
    return G.cell_array(ds).mean(axis=0)


def find_sites(
    ds: xr.Dataset,
    species: str,
    *,
    reference=None,
    grid_spacing: float = 0.2,
    smoothing: float = 0.3,
    min_separation: float = 1.0,
    min_occupancy: float = 0.01,
    frame_chunk: int = 256,
    slab_bytes: int = 128 * 2**20,
) -> xr.DataArray:
    """Sites visited by ``species``: from a reference structure or the density maxima.

    Parameters
    ----------
    reference
        ``None`` (density maxima), a Dataset (positions of ``species`` in its first frame)
        or an (n_sites, 3) array in Å.
    grid_spacing, smoothing
        Density grid spacing and Gaussian smoothing width (Å).
    min_separation
        Maxima closer than this (Å) are merged (the smaller dropped).
    min_occupancy
        A maximum is a site only when its smoothed density exceeds this fraction of the
        highest one.
    frame_chunk, slab_bytes
        Frames read at a time; bytes of one slab of the density grid.  The counts are kept
        per occupied voxel and the smoothing and maxima are computed slab by slab, so the
        memory is linear in the atoms (the occupied volume), not in grid x frames.

    Returns
    -------
    DataArray (site, xyz) of site positions in Å (inside the mean cell).
    """
    S.validate(ds, require=(S.CELL,))
    if reference is not None:
        if isinstance(reference, xr.Dataset):
            idx = species_indices(reference, species)
            pos = np.asarray(reference[S.POSITIONS].isel({S.FRAME: 0}).values)[idx]
        else:
            pos = np.asarray(reference, dtype=float).reshape(-1, 3)
        return xr.DataArray(
            pos, dims=("site", S.XYZ), name="sites", attrs={"units": "Å", "source": "reference"}
        )
    idx = species_indices(ds, species)
    cell = _mean_cell(ds)
    lengths = np.linalg.norm(cell, axis=1)
    nbins = np.maximum(4, np.ceil(lengths / grid_spacing).astype(int))
    keys, counts = _voxel_counts(ds, idx, nbins, frame_chunk)
    sigma = smoothing / (lengths / nbins)
    size = np.maximum(3, 2 * np.ceil(0.5 * min_separation / (lengths / nbins)).astype(int) + 1)
    vox, dens = _density_maxima(keys, counts, nbins, sigma, size, slab_bytes)
    keep = dens >= min_occupancy * dens.max() if dens.size else dens.astype(bool)
    vox, dens = vox[keep], dens[keep]
    order = np.argsort(-dens, kind="stable")
    frac = (vox[order] + 0.5) / nbins
    kept = _suppress_close(frac @ cell, cell, min_separation)
    return xr.DataArray(
        frac[kept] @ cell,
        dims=("site", S.XYZ),
        name="sites",
        attrs={"units": "Å", "source": "density maxima"},
    )


def _voxel_counts(ds, idx, nbins, frame_chunk):
    """Occupied voxels of the fractional grid and their counts (sparse: memory ~ occupied
    voxels, never the whole grid), reading ``frame_chunk`` frames at a time."""
    n = ds.sizes[S.FRAME]
    cells = G.cell_array(ds)
    keys, counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
    for f0 in progress(
        range(0, n, frame_chunk), total=-(-n // frame_chunk), desc="site density", unit="chunk"
    ):
        fr = slice(f0, min(f0 + frame_chunk, n))
        pos = np.asarray(ds[S.POSITIONS].isel({S.FRAME: fr, S.ATOM: idx}).values, dtype=float)
        s = G.to_fractional(pos, cells[fr])
        v = np.floor((s - np.floor(s)) * nbins).astype(np.int64) % nbins
        lin = (v[..., 0] * nbins[1] + v[..., 1]) * nbins[2] + v[..., 2]
        k, c = np.unique(lin.ravel(), return_counts=True)
        keys, inv = np.unique(np.concatenate([keys, k]), return_inverse=True)
        counts = np.bincount(inv, weights=np.concatenate([counts, c]), minlength=keys.size).astype(
            np.int64
        )
    return keys, counts


def _density_maxima(keys, counts, nbins, sigma, size, slab_bytes):
    """Voxels (k, 3) that are maxima of the Gaussian-smoothed density within ``size``
    voxels, and their densities; computed in slabs along the first axis with halos wide
    enough for both filters, so the dense grid never exists whole (periodic in all axes)."""
    nx, ny, nz = (int(b) for b in nbins)
    truncate = 4.0
    rg = int(truncate * float(sigma[0]) + 0.5)
    rm = int(size[0]) // 2
    halo = min(rg + rm, nx)
    layer = ny * nz * 4 * 3  # three float32 grids per layer (counts, smoothed, maxima)
    thick = int(max(1, min(nx, slab_bytes // layer - 2 * halo)))
    check_chunk(
        layer * (thick + 2 * halo), "find_sites: density slab", "pass a larger grid_spacing"
    )
    x = keys // (ny * nz)
    order = np.argsort(x, kind="stable")
    keys, counts, x = keys[order], counts[order], x[order]
    vox, dens = [], []
    with memory_guard("find_sites", "pass a larger grid_spacing"):
        for x0 in range(0, nx, thick):
            t = min(thick, nx - x0)
            xs = np.arange(x0 - halo, x0 + t + halo) % nx  # slab layers, wrapped
            slab = np.zeros((xs.size, ny, nz), np.float32)
            for li, xx in enumerate(xs):
                lo, hi = np.searchsorted(x, [xx, xx + 1])
                slab[li].ravel()[keys[lo:hi] - xx * ny * nz] += counts[lo:hi]
            sm = ndimage.gaussian_filter(slab, sigma=sigma, mode="wrap", truncate=truncate)
            mx = ndimage.maximum_filter(sm, size=tuple(size), mode="wrap")
            inner = slice(halo, halo + t)
            peak = (sm[inner] == mx[inner]) & (sm[inner] > 0)
            ijk = np.argwhere(peak)
            dens.append(sm[inner][peak])
            ijk[:, 0] += x0
            vox.append(ijk)
    return np.concatenate(vox), np.concatenate(dens).astype(float)


def _suppress_close(points, cell, min_separation):
    """Indices of ``points`` (ordered by priority) kept after dropping every point closer
    than ``min_separation`` (Å, periodic) to a point kept before it."""
    n = points.shape[0]
    if n < 2:
        return np.arange(n)
    p = neighbor_pairs(points, cell, True, min_separation, full=True, sort=True)
    start = np.searchsorted(p.i, np.arange(n + 1))
    dropped = np.zeros(n, bool)
    kept = []
    for a in range(n):
        if dropped[a]:
            continue
        kept.append(a)
        dropped[p.j[start[a] : start[a + 1]]] = True
    return np.asarray(kept, dtype=np.int64)


def assign_sites(
    ds: xr.Dataset,
    species: str,
    sites,
    *,
    r_site: float | None = None,
    frame_chunk: int | None = None,
) -> xr.DataArray:
    """Site of each atom of ``species`` at each frame (transition-state rule).

    Parameters
    ----------
    sites
        (n_sites, 3) Å, e.g. from :func:`find_sites`.
    r_site
        Radius (Å) of the sphere that claims an atom; default 0.45 x the shortest
        site–site distance (spheres do not overlap).
    frame_chunk
        Frames of ``species`` read at a time (default: as many as fit, up to 256); each
        frame's atom-site pairs come from cell lists, so memory is linear in atoms + sites.

    Returns
    -------
    DataArray (frame, atom) of site indices (int; -1 before the atom first enters a site),
    with ``time`` and the atoms' global indices as coordinates.
    """
    S.validate(ds)
    dt = S.uniform_timestep(ds)
    idx = species_indices(ds, species)
    sites = np.asarray(sites, dtype=float).reshape(-1, 3)
    periodic = S.is_periodic(ds)
    if sites.shape[0] < 2:
        raise InputError(f"{sites.shape[0]} site(s) given; hops need at least 2.")
    pbc = S.pbc_of(ds) if periodic else None
    if r_site is None:
        every = np.arange(sites.shape[0])
        _, dist = nearest_neighbors(sites, _mean_cell(ds) if periodic else None, pbc, every, every)
        r_site = 0.45 * float(dist.min())
    n = ds.sizes[S.FRAME]
    near = np.full((n, idx.size), -1, dtype=np.int32 if sites.shape[0] < 2**31 else np.int64)
    cells = G.cell_array(ds) if periodic else None
    n_at = idx.size  # atoms first, then the sites, in the points searched
    wider = float(np.nextafter(r_site, np.inf))  # the search keeps r < cutoff; claims r <= r_site
    for f0, pos in frame_blocks(ds, frame_chunk, "site assignment", idx):
        for k in range(pos.shape[0]):
            f = f0 + k
            # sites within r_site of each atom (cell lists), the nearest of them claims it;
            # of the raw pair arrays keep the atom-site pairs, oriented atom -> site
            i, j, d = pair_arrays(
                np.concatenate([pos[k], sites]),
                None if cells is None else cells[f],
                pbc,
                wider,
                "ijd",
            )
            i, j = i.astype(np.int64), j.astype(np.int64)
            ok = ((i < n_at) != (j < n_at)) & (d <= r_site)
            i, j, d = i[ok], j[ok], d[ok]
            i, j = np.minimum(i, j), np.maximum(i, j)
            o = np.lexsort((d, i))
            first = o[np.r_[True, i[o][1:] != i[o][:-1]]] if o.size else o
            near[f, i[first]] = j[first] - idx.size
    # carry the last claimed site forward through excursions (-1)
    frame_idx = np.where(near >= 0, np.arange(n)[:, None], -1)
    last = np.maximum.accumulate(frame_idx, axis=0)
    traj = np.where(last >= 0, np.take_along_axis(near, np.maximum(last, 0), axis=0), -1)
    return xr.DataArray(
        traj,
        dims=(S.FRAME, S.ATOM),
        coords={"time": (S.FRAME, np.arange(n) * dt, {"units": "ps"}), "atom_index": (S.ATOM, idx)},
        name="site",
        attrs={"species": species, "r_site": r_site, "timestep_ps": dt, "n_sites": sites.shape[0]},
    )


def hops(site_traj: xr.DataArray) -> xr.Dataset:
    """Hop events (arrival in a new site) from :func:`assign_sites`.

    Returns
    -------
    Dataset over ``event``: ``atom`` (global index), ``frame``, ``time`` (ps),
    ``from_site``, ``to_site``, sorted by time.
    """
    st = np.asarray(site_traj.values)
    dt = float(site_traj.attrs["timestep_ps"])
    change = (st[1:] != st[:-1]) & (st[:-1] >= 0)
    f, a = np.nonzero(change)
    order = np.argsort(f, kind="stable")
    f, a = f[order] + 1, a[order]
    atoms = np.asarray(site_traj["atom_index"].values)[a]
    return xr.Dataset(
        {
            "atom": ("event", atoms),
            "frame": ("event", f),
            "time": ("event", f * dt, {"units": "ps"}),
            "from_site": ("event", st[f - 1, a]),
            "to_site": ("event", st[f, a]),
        },
        attrs={
            "n_atoms": st.shape[1],
            "duration_ps": (st.shape[0] - 1) * dt,
            "species": site_traj.attrs.get("species", ""),
        },
    )


def residence_times(site_traj: xr.DataArray) -> xr.DataArray:
    """Durations (ps) of completed site visits: from arriving at a site to leaving it.

    The first visit of each atom (its start is not seen) and the last (its end is not seen)
    are censored and left out.
    """
    st = np.asarray(site_traj.values)
    dt = float(site_traj.attrs["timestep_ps"])
    out = []
    for a in range(st.shape[1]):
        ch = np.flatnonzero((st[1:, a] != st[:-1, a]) & (st[:-1, a] >= 0)) + 1
        if ch.size >= 2:
            out.append(np.diff(ch) * dt)
    vals = np.concatenate(out) if out else np.empty(0)
    return xr.DataArray(vals, dims=("visit",), name="residence_time", attrs={"units": "ps"})


def hop_rate(site_traj: xr.DataArray) -> xr.Dataset:
    """Hop rate per atom (1/ps) with its Poisson error, and the mean residence time.

    rate = n_hops / (n_atoms x observed time), error sqrt(n_hops) / (n_atoms x time);
    only time after an atom's first site assignment counts.
    """
    st = np.asarray(site_traj.values)
    dt = float(site_traj.attrs["timestep_ps"])
    n_hops = int(((st[1:] != st[:-1]) & (st[:-1] >= 0)).sum())
    observed = float(((st[:-1] >= 0).sum()) * dt)
    if observed <= 0:
        raise InputError("no atom of the species ever sits in a site; check the sites and r_site.")
    rt = residence_times(site_traj)
    mean_res = float(rt.mean()) if rt.size else np.nan
    res_err = float(rt.std(ddof=1) / np.sqrt(rt.size)) if rt.size > 1 else np.nan
    return xr.Dataset(
        {
            "rate": ((), n_hops / observed, {"units": "1/ps", "long_name": "hop rate per atom"}),
            "rate_err": ((), np.sqrt(max(n_hops, 1)) / observed, {"units": "1/ps"}),
            "n_hops": ((), n_hops),
            "mean_residence": ((), mean_res, {"units": "ps"}),
            "mean_residence_err": ((), res_err, {"units": "ps"}),
        },
        attrs={"species": site_traj.attrs.get("species", ""), "observed_atom_ps": observed},
    )
