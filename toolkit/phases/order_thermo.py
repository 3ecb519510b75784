"""Thermodynamic, dynamical and chemical order parameters.

- :func:`temperature`, :func:`pressure` — instantaneous T (K) from velocities and P (GPa)
  from the stress tensor;
- :func:`self_diffusion` — D (Å^2/ps) through :mod:`atomtwin.toolkit.dynamics` (liquid vs solid);
- :func:`lindemann` — per-atom RMS vibration about the mean position over the
  nearest-neighbour distance;
- :func:`species_clusters` — clusters of one species by connectivity (largest cluster
  size, number of clusters against time: segregation such as carbon clusters in a
  decomposing melt).
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import nearest_neighbors
from atomtwin.toolkit.phases.order import pairs
from atomtwin.toolkit.progress import progress


def temperature(ds: xr.Dataset, n_constraints: int = 3) -> xr.DataArray:
    """Kinetic temperature per frame, T = Σ m v² / (k_B (3N − n_constraints)), in K.

    ``n_constraints`` = 3 for a run with fixed total momentum (the usual MD case).
    """
    S.validate(ds, require=(S.VELOCITIES,))
    v = np.asarray(ds[S.VELOCITIES].values, dtype=float)
    m = np.asarray(ds[S.MASS].values, dtype=float)
    ke2 = np.einsum("a,fai->f", m, v**2) * U.AMU_A2_PS2_TO_EV
    dof = 3 * v.shape[1] - n_constraints
    return xr.DataArray(ke2 / (dof * U.KB), dims=(S.FRAME,), name="temperature", attrs={"units": "K"})


def pressure(ds: xr.Dataset) -> xr.DataArray:
    """Pressure per frame in GPa, P = −tr(stress)/3.

    The stored ``stress`` must include the kinetic (ideal-gas) term; trajectories
    written by atomtwin engines say so with ``attrs['stress_includes_kinetic'] = 1``.
    Otherwise the kinetic term N k_B T / V is added from the velocities.
    """
    S.validate(ds, require=(S.STRESS, S.CELL))
    st = np.asarray(ds[S.STRESS].values, dtype=float)
    p = -np.trace(st, axis1=1, axis2=2) / 3.0
    if not int(ds.attrs.get("stress_includes_kinetic", 0)):
        if S.VELOCITIES not in ds:
            raise S.SchemaError(
                "the stress may lack its kinetic term and the trajectory has no velocities to add it. "
                "Fix: set ds.attrs['stress_includes_kinetic'] = 1 if it does include it."
            )
        vol = np.abs(np.linalg.det(np.asarray(ds[S.CELL].values)))
        t = temperature(ds).values
        p = p + ds.sizes[S.ATOM] * U.KB * t / vol
    return xr.DataArray(p * U.EV_A3_TO_GPA, dims=(S.FRAME,), name="pressure", attrs={"units": "GPa"})


def _unwrapped(ds: xr.Dataset) -> np.ndarray:
    from atomtwin.toolkit.geometry import unwrap

    if S.is_periodic(ds) and not ds.attrs.get("unwrapped"):
        ds = unwrap(ds)
    return np.asarray(ds[S.POSITIONS].values, dtype=float)


def self_diffusion(ds: xr.Dataset, species: str | None = None, fit_from: float | None = None) -> float:
    """Self-diffusion coefficient D (Å^2/ps): liquid (D > 0) against solid (D ≈ 0).

    The MSD and its fit are :func:`atomtwin.toolkit.dynamics.msd` (all time origins, centre-of-mass
    drift removed) and :func:`atomtwin.toolkit.dynamics.fit_diffusion` (covariance-aware GLS) —
    one implementation for the whole toolkit.  ``species``: one species, or None for the
    atom-weighted mean over all species.  ``fit_from``: start the fit at this fraction of
    the longest lag (default: that module's linear-regime rule).  Runs too short for that
    fit (fewer than 5 lags in the window) fall back to the ordinary least-squares slope of
    the same MSD over its lags >= ``fit_from`` (default 0.3) of the longest.
    """
    from atomtwin.toolkit.dynamics import fit_diffusion
    from atomtwin.toolkit.dynamics import msd as _msd

    S.validate(ds)
    if S.TIME not in ds.coords or ds.sizes[S.FRAME] < 3:
        raise InputError("self_diffusion needs a 'time' coordinate and at least 3 frames.")
    names = [species] if species is not None else list(dict.fromkeys(np.asarray(ds[S.SPECIES].values).astype(str)))
    ds_, weights = [], []
    for sp in names:
        m = _msd(ds, sp)
        lag = np.asarray(m["lag"].values, dtype=float)
        start = None if fit_from is None else fit_from * lag[-1]
        try:
            with warnings.catch_warnings():
                if start is not None:  # an explicit window: a solid's non-diffusive MSD is expected
                    warnings.simplefilter("ignore", UserWarning)
                d = float(fit_diffusion(m, start=start, stop=lag[-1] if start is not None else None).D)
        except ValueError:
            sel = lag >= (0.3 if fit_from is None else fit_from) * lag[-1]
            if sel.sum() < 2:
                sel = lag > 0
            d = float(np.polyfit(lag[sel], np.asarray(m.values)[sel], 1)[0] / (2 * int(m.attrs["n_dims"])))
        ds_.append(d)
        weights.append(int(m.attrs["n_atoms"]))
    return float(np.average(ds_, weights=weights))


def lindemann(ds: xr.Dataset, nn_distance: float | None = None) -> xr.DataArray:
    """Per-atom Lindemann ratio sqrt(<|u_i − <u_i>|²>) / d_nn over the frames of ``ds``.

    u_i are unwrapped positions with the centre-of-mass drift removed; ``d_nn`` is the
    nearest-neighbour distance (Å; default the mean nearest distance in frame 0).
    A crystal stays below ≈ 0.1–0.15 (Lindemann's criterion); in a liquid the ratio grows
    without bound with the length of the window.
    """
    S.validate(ds)
    x = _unwrapped(ds)
    m = np.asarray(ds[S.MASS].values, dtype=float)
    com = np.einsum("a,fai->fi", m, x) / m.sum()
    u = x - com[:, None, :]
    var = np.sum(u.var(axis=0), axis=1)
    if nn_distance is None:
        pos = np.asarray(ds[S.POSITIONS].isel({S.FRAME: 0}).values)
        cell = np.asarray(ds[S.CELL].isel({S.FRAME: 0}).values) if S.CELL in ds else None
        every = np.arange(pos.shape[0])
        _, dist = nearest_neighbors(pos, cell, S.pbc_of(ds) if cell is not None else None, every, every)
        nn_distance = float(np.mean(dist))
    return xr.DataArray(np.sqrt(var) / nn_distance, dims=(S.ATOM,), name="lindemann",
                        attrs={"units": "1", "nn_distance": nn_distance})


def species_clusters(ds: xr.Dataset, species: str, cutoff: float, min_size: int = 2) -> xr.Dataset:
    """Clusters of one species by connectivity, per frame.

    Two atoms of ``species`` are bonded when closer than ``cutoff`` (Å); clusters are
    the connected components of that graph.

    Returns
    -------
    Dataset on dim ``frame``:
        ``largest_cluster`` — atoms in the largest cluster;
        ``n_clusters`` — clusters with at least ``min_size`` atoms;
        ``largest_fraction`` — largest cluster / number of atoms of that species;
        ``clustered_fraction`` — fraction of that species in clusters >= ``min_size``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    S.validate(ds)
    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    idx = np.flatnonzero(sp == species)
    if idx.size == 0:
        raise InputError(f"species '{species}' is not in the trajectory (it has {sorted(set(sp))}).")
    sub = ds.isel({S.ATOM: idx})
    n = idx.size
    nf = ds.sizes[S.FRAME]
    largest = np.zeros(nf, int)
    count = np.zeros(nf, int)
    clustered = np.zeros(nf)
    pbc = S.pbc_of(ds)
    for f in progress(range(nf), total=nf, desc="species clusters"):
        pos = np.asarray(sub[S.POSITIONS].isel({S.FRAME: f}).values)
        cell = np.asarray(sub[S.CELL].isel({S.FRAME: f}).values) if S.CELL in sub else None
        i, j, _ = pairs(pos, cell, cutoff, pbc)
        g = coo_matrix((np.ones(i.size), (i, j)), shape=(n, n))
        _, lab = connected_components(g, directed=False)
        sizes = np.bincount(lab)
        largest[f] = sizes.max()
        big = sizes >= min_size
        count[f] = int(big.sum())
        clustered[f] = sizes[big].sum() / n
    coords = {S.TIME: ds[S.TIME]} if S.TIME in ds.coords else {}
    return xr.Dataset(
        {
            "largest_cluster": ((S.FRAME,), largest, {"units": "1"}),
            "n_clusters": ((S.FRAME,), count, {"units": "1"}),
            "largest_fraction": ((S.FRAME,), largest / n, {"units": "1"}),
            "clustered_fraction": ((S.FRAME,), clustered, {"units": "1"}),
        },
        coords=coords,
        attrs={"species": species, "cutoff": cutoff, "min_size": min_size},
    )
