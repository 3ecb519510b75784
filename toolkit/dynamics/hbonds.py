"""Protons and hydrogen bonds without topology: O–H assignment per frame, proton-transfer
events, O–H reorientations, geometric hydrogen bonds and their lifetimes.

Everything is vectorised over atoms (distance matrices per chunk of frames, minimum
image), so MLIP trajectories that carry no bonds are analysed as they are.  Criteria of
:func:`hydrogen_bonds` follow MDAnalysis' ``HydrogenBondAnalysis`` (D–A distance <=
``d_da``, D–H–A angle >= ``angle``, D–H pairs within ``d_dh``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import geometry as G
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.dynamics._fft import summed_autocorrelation
from atomtwin.toolkit.dynamics.msd import species_indices
from atomtwin.toolkit.dynamics.rotations import jump_events


def _pair_vectors(ds, pos, a_idx, b_idx, frames) -> np.ndarray:
    """Minimum-image vectors b - a, (f, n_a, n_b, 3)."""
    d = pos[:, b_idx][:, None, :, :] - pos[:, a_idx][:, :, None, :]
    if S.is_periodic(ds):
        cell = G.cell_array(ds.isel({S.FRAME: frames}))[:, None]  # (f, 1, 3, 3): matmul batch
        d = G.minimum_image(d, cell, S.pbc_of(ds))
    return d


def _orthorhombic_box(ds: xr.Dataset) -> np.ndarray | None:
    """Box lengths (3,) when the cell is the same diagonal box in every frame and fully
    periodic (then a periodic k-d tree gives exact minimum-image neighbours), else None."""
    if not S.is_periodic(ds) or not np.all(S.pbc_of(ds)):
        return None
    cell = G.cell_array(ds)
    diag = np.diagonal(cell, axis1=1, axis2=2)
    if np.any(np.abs(cell - np.einsum("fi,ij->fij", diag, np.eye(3))) > 1e-9) or np.ptp(diag, axis=0).max() > 1e-9:
        return None
    return diag[0].copy()


def assign_hydrogens(ds: xr.Dataset, hydrogen: str = "H", acceptor: str = "O", *, frame_chunk: int = 256) -> xr.DataArray:
    """Index of the nearest ``acceptor`` atom (the donor it is bonded to) of every hydrogen.

    Returns
    -------
    DataArray (frame, atom) of global atom indices (int), coordinate ``distance`` (Å) and
    ``atom_index`` (the hydrogens' global indices).
    """
    S.validate(ds)
    dt = S.uniform_timestep(ds)
    hi = species_indices(ds, hydrogen)
    oi = species_indices(ds, acceptor)
    n = ds.sizes[S.FRAME]
    owner = np.empty((n, hi.size), dtype=np.int64)
    dist = np.empty((n, hi.size))
    box = _orthorhombic_box(ds)
    for f0 in range(0, n, frame_chunk):
        sl = slice(f0, min(f0 + frame_chunk, n))
        pos = np.asarray(ds[S.POSITIONS].isel({S.FRAME: sl}).values, dtype=float)
        if box is not None:
            # periodic k-d tree per frame: exact minimum-image nearest neighbours in
            # O(n log n) instead of an (n_H x n_O) distance matrix
            from scipy.spatial import cKDTree

            pos = np.mod(pos, box)
            pos = np.where(pos >= box, pos - box, pos)  # mod can round up to exactly L
            for j in range(pos.shape[0]):
                d, k = cKDTree(pos[j, oi], boxsize=box).query(pos[j, hi])
                owner[f0 + j], dist[f0 + j] = oi[k], d
            continue
        r = np.linalg.norm(_pair_vectors(ds, pos, hi, oi, sl), axis=-1)
        k = np.argmin(r, axis=-1)
        owner[sl] = oi[k]
        dist[sl] = np.take_along_axis(r, k[..., None], -1)[..., 0]
    return xr.DataArray(owner, dims=(S.FRAME, S.ATOM), name="donor",
                        coords={"time": (S.FRAME, np.arange(n) * dt, {"units": "ps"}), "atom_index": (S.ATOM, hi),
                                "distance": ((S.FRAME, S.ATOM), dist, {"units": "Å"})},
                        attrs={"timestep_ps": dt, "hydrogen": hydrogen, "acceptor": acceptor})


def _drop_short_runs(x: np.ndarray, min_frames: int) -> np.ndarray:
    """Replace runs shorter than ``min_frames`` (1-D) by the preceding value (rattling)."""
    if min_frames <= 1:
        return x
    x = x.copy()
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    lengths = np.diff(np.r_[starts, x.size])
    for s, length in zip(starts[1:], lengths[1:], strict=True):
        if length < min_frames and s + length < x.size:
            x[s:s + length] = x[s - 1]
    return x


def proton_transfers(assignment: xr.DataArray, *, min_frames: int = 5) -> xr.Dataset:
    """Proton-transfer events: the donor of a hydrogen changes and the new bond lasts.

    Parameters
    ----------
    assignment
        From :func:`assign_hydrogens`.
    min_frames
        A new O–H bond must last this many frames to count (a proton rattling in a
        hydrogen bond is not a transfer); shorter excursions are removed first.

    Returns
    -------
    Dataset over ``event``: ``hydrogen`` (global index), ``frame``, ``time`` (ps),
    ``from_donor``, ``to_donor``; attrs ``n_units`` (hydrogens), ``duration_ps``.
    """
    own = np.asarray(assignment.values)
    dt = float(assignment.attrs["timestep_ps"])
    own = np.stack([_drop_short_runs(own[:, a], min_frames) for a in range(own.shape[1])], axis=1)
    f, a = np.nonzero(own[1:] != own[:-1])
    f = f + 1
    o = np.argsort(f, kind="stable")
    f, a = f[o], a[o]
    return xr.Dataset({"hydrogen": ("event", np.asarray(assignment["atom_index"].values)[a]),
                       "frame": ("event", f), "time": ("event", f * dt, {"units": "ps"}),
                       "from_donor": ("event", own[f - 1, a]), "to_donor": ("event", own[f, a])},
                      attrs={"n_groups": own.shape[1], "duration_ps": (own.shape[0] - 1) * dt,
                             "min_frames": min_frames})


def oh_reorientations(ds: xr.Dataset, assignment: xr.DataArray, *, threshold_deg: float = 60.0,
                      smooth: int = 5) -> xr.Dataset:
    """Reorientations of O–H bonds while the proton stays on its donor (angle jumps of the
    donor -> H unit vector; jumps at frames where the donor changes are transfers, not
    reorientations, and are left out).

    Returns
    -------
    Dataset over ``event``: ``hydrogen``, ``donor``, ``frame``, ``time`` (ps), ``angle`` (deg).
    """
    dt = float(assignment.attrs["timestep_ps"])
    hi = np.asarray(assignment["atom_index"].values)
    own = np.asarray(assignment.values)
    pos = np.asarray(ds[S.POSITIONS].values, dtype=float)
    d = pos[:, hi] - np.take_along_axis(pos, own[..., None].repeat(3, -1), axis=1)
    if S.is_periodic(ds):
        d = G.minimum_image(d, G.cell_array(ds), S.pbc_of(ds))
    u = d / np.linalg.norm(d, axis=-1, keepdims=True)
    fr, which, ang = jump_events(u, threshold_deg=threshold_deg, smooth=smooth)
    lo, hi_ = np.maximum(fr - smooth, 0), np.minimum(fr + smooth, own.shape[0] - 1)
    keep = own[lo, which] == own[hi_, which]
    fr, which, ang = fr[keep], which[keep], ang[keep]
    return xr.Dataset({"hydrogen": ("event", hi[which]), "donor": ("event", own[fr, which]),
                       "frame": ("event", fr), "time": ("event", fr * dt, {"units": "ps"}),
                       "angle": ("event", ang, {"units": "deg"})},
                      attrs={"n_groups": hi.size, "duration_ps": (own.shape[0] - 1) * dt})


def hydrogen_bonds(ds: xr.Dataset, donor: str = "O", hydrogen: str = "H", acceptor: str = "O", *,
                   d_da: float = 3.0, angle: float = 150.0, d_dh: float = 1.2, frame_chunk: int = 64) -> xr.Dataset:
    """Geometric hydrogen bonds D–H...A in every frame.

    Parameters
    ----------
    donor, hydrogen, acceptor
        Species.
    d_da
        Largest donor–acceptor distance (Å).
    angle
        Smallest D–H–A angle (degrees).
    d_dh
        D–H pairs are all donor/hydrogen pairs closer than this (Å), per frame.

    Returns
    -------
    Dataset over ``bond``: ``frame``, ``donor``, ``hydrogen``, ``acceptor`` (global indices),
    ``distance`` (D–A, Å), ``angle`` (deg); and ``count`` over ``frame``.
    """
    S.validate(ds)
    dt = S.uniform_timestep(ds) if ds.sizes[S.FRAME] > 1 else float(ds.attrs.get(S.TIMESTEP, 1.0))
    di, hi, ai = (species_indices(ds, s) for s in (donor, hydrogen, acceptor))
    n = ds.sizes[S.FRAME]
    cos_min = np.cos(np.deg2rad(angle))
    rows = []
    for f0 in range(0, n, frame_chunk):
        sl = slice(f0, min(f0 + frame_chunk, n))
        pos = np.asarray(ds[S.POSITIONS].isel({S.FRAME: sl}).values, dtype=float)
        dh = _pair_vectors(ds, pos, di, hi, sl)  # (f, nD, nH, 3) D->H
        fr, kd, kh = np.nonzero(np.linalg.norm(dh, axis=-1) <= d_dh)
        if fr.size == 0:
            continue
        v_dh = dh[fr, kd, kh]
        # vectors H->A and D->A for each D-H pair and every acceptor
        ha = _pair_vectors(ds, pos, hi, ai, sl)[fr, kh]  # (p, nA, 3)
        da = v_dh[:, None, :] + ha
        r_da = np.linalg.norm(da, axis=-1)
        # angle D-H-A between H->D and H->A
        hd = -v_dh[:, None, :]
        cosang = np.einsum("pai,pai->pa", np.broadcast_to(hd, ha.shape), ha) / (
            np.linalg.norm(hd, axis=-1) * np.linalg.norm(ha, axis=-1) + 1e-300)
        ok = (r_da <= d_da) & (cosang <= cos_min) & (ai[None, :] != di[kd][:, None])
        p, ka = np.nonzero(ok)
        rows.append(np.column_stack([fr[p] + f0, di[kd[p]], hi[kh[p]], ai[ka], r_da[p, ka],
                                     np.degrees(np.arccos(np.clip(cosang[p, ka], -1, 1)))]))
    tab = np.concatenate(rows) if rows else np.empty((0, 6))
    frames = tab[:, 0].astype(np.int64)
    return xr.Dataset(
        {"frame": ("bond", frames), "donor": ("bond", tab[:, 1].astype(np.int64)),
         "hydrogen": ("bond", tab[:, 2].astype(np.int64)), "acceptor": ("bond", tab[:, 3].astype(np.int64)),
         "distance": ("bond", tab[:, 4], {"units": "Å"}), "angle": ("bond", tab[:, 5], {"units": "deg"}),
         "count": (S.FRAME, np.bincount(frames, minlength=n))},
        coords={"time": (S.FRAME, np.arange(n) * dt, {"units": "ps"})},
        attrs={"d_da": d_da, "angle": angle, "d_dh": d_dh, "timestep_ps": dt, "n_frames": n},
    )


def hbond_lifetime(bonds: xr.Dataset) -> xr.Dataset:
    """Hydrogen-bond time correlations over all time origins.

    Intermittent C(t) = <h(0) h(t)> / <h> (the bond may break and reform) and continuous
    S(t) (the bond never broke in between), with h(t) = 1 when the D–H...A triple is
    bonded.  Lifetimes are the integrals of C and S up to where they first drop below zero
    (or the end).

    Returns
    -------
    Dataset over ``lag`` (ps): ``intermittent``, ``continuous``; scalars ``tau_intermittent``,
    ``tau_continuous`` (ps).
    """
    n = int(bonds.attrs["n_frames"])
    dt = float(bonds.attrs["timestep_ps"])
    key = np.column_stack([bonds["donor"].values, bonds["hydrogen"].values, bonds["acceptor"].values])
    if key.shape[0] == 0:
        raise ValueError("no hydrogen bond in any frame: nothing to correlate (check species and criteria).")
    _, triple = np.unique(key, axis=0, return_inverse=True)
    h = np.zeros((n, triple.max() + 1))
    h[np.asarray(bonds["frame"].values), triple.ravel()] = 1.0
    lags = np.arange(n)
    norm0 = h.sum()
    inter = summed_autocorrelation(h) / (n - lags) / (norm0 / n)
    # continuous: for each run of length L, it contributes L - m pairs at lag m < L
    edges = np.diff(np.vstack([np.zeros((1, h.shape[1])), h, np.zeros((1, h.shape[1]))]), axis=0)
    st = np.nonzero(edges.T == 1)
    en = np.nonzero(edges.T == -1)
    lengths = en[1] - st[1]
    cnt = np.bincount(lengths, minlength=n + 1)[1:]  # runs of length 1..n
    # pairs at lag m = sum_{L>m} (L - m) * cnt[L]
    L = np.arange(1, n + 1)
    rev = lambda a: np.cumsum(a[::-1])[::-1]  # noqa: E731
    s_m = rev(cnt * L)[lags] - lags * rev(cnt)[lags]
    cont = s_m / (n - lags) / (norm0 / n)

    def integral(c):
        neg = np.flatnonzero(c <= 0)
        end = neg[0] if neg.size else c.size
        return float(np.trapezoid(c[:end], dx=dt))

    return xr.Dataset({"intermittent": ("lag", inter), "continuous": ("lag", cont),
                       "tau_intermittent": ((), integral(inter), {"units": "ps"}),
                       "tau_continuous": ((), integral(cont), {"units": "ps"})},
                      coords={"lag": ("lag", lags * dt, {"units": "ps"})})
