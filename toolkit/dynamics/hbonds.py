"""Protons and hydrogen bonds without topology: O–H assignment per frame, proton-transfer
events, O–H reorientations, geometric hydrogen bonds and their lifetimes.

Neighbours come from the shared neighbour layer (:mod:`atomtwin.toolkit.neighbors`, cell
lists: linear in the number of atoms, any cell), so MLIP trajectories that carry no bonds
are analysed as they are.  Criteria of
:func:`hydrogen_bonds` follow MDAnalysis' ``HydrogenBondAnalysis`` (D–A distance <=
``d_da``, D–H–A angle >= ``angle``, D–H pairs within ``d_dh``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import geometry as G
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.correlation import summed_autocorrelation
from atomtwin.toolkit.dynamics._outofcore import frame_blocks
from atomtwin.toolkit.dynamics.msd import species_indices
from atomtwin.toolkit.dynamics.rotations import jump_events
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import nearest_neighbors, pairs_between


def _frame_geometry(ds: xr.Dataset):
    """``geometry(pos, f) -> (cell or None, pbc or None)`` for global frame ``f``."""
    if not S.is_periodic(ds):
        return lambda f: (None, None)
    cells, pbc = G.cell_array(ds), S.pbc_of(ds)
    return lambda f: (cells[f], pbc)


def _frames(ds: xr.Dataset, frame_chunk: int | None, desc: str, atoms=None):
    """Yield ``(f, positions (n_atoms, 3) Å)``, reading ``frame_chunk`` frames at a time
    (see :func:`atomtwin.toolkit.dynamics._outofcore.frame_blocks`)."""
    for f0, pos in frame_blocks(ds, frame_chunk, desc, atoms):
        for k in range(pos.shape[0]):
            yield f0 + k, pos[k]


def assign_hydrogens(
    ds: xr.Dataset, hydrogen: str = "H", acceptor: str = "O", *, frame_chunk: int | None = None
) -> xr.DataArray:
    """Index of the nearest ``acceptor`` atom (the donor it is bonded to) of every hydrogen.

    The nearest atom over all periodic images, from the shared neighbour layer
    (:func:`atomtwin.toolkit.neighbors.nearest_neighbors`, cell lists: linear in the number
    of atoms); ``frame_chunk`` frames of the hydrogens and acceptors are read at a time
    (default: as many as fit, up to 256).

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
    geometry = _frame_geometry(ds)
    need = np.union1d(hi, oi)  # read only these atoms; local indices below
    h_loc, o_loc = np.searchsorted(need, hi), np.searchsorted(need, oi)
    for f, pos in _frames(ds, frame_chunk, "O-H assignment", need):
        own, dist[f] = nearest_neighbors(pos, *geometry(f), h_loc, o_loc)
        owner[f] = need[own]
    return xr.DataArray(
        owner,
        dims=(S.FRAME, S.ATOM),
        name="donor",
        coords={
            "time": (S.FRAME, np.arange(n) * dt, {"units": "ps"}),
            "atom_index": (S.ATOM, hi),
            "distance": ((S.FRAME, S.ATOM), dist, {"units": "Å"}),
        },
        attrs={"timestep_ps": dt, "hydrogen": hydrogen, "acceptor": acceptor},
    )


def _drop_short_runs(x: np.ndarray, min_frames: int) -> np.ndarray:
    """Replace runs shorter than ``min_frames`` along axis 0 by the preceding value
    (rattling), for every column of ``x`` (F,) or (F, n) at once.

    A short run is one that neither starts at frame 0 nor ends at the last frame; runs
    are judged on the original labels, so two short excursions in a row both go back
    to the value before the first (as the former one-column loop did).
    """
    if min_frames <= 1:
        return x
    x2 = x.reshape(x.shape[0], -1)
    F, n = x2.shape
    change = np.ones((F, n), bool)
    change[1:] = x2[1:] != x2[:-1]
    run_id = np.cumsum(change, axis=0) - 1  # run number per column
    # run start and length, per column: flatten runs with a column offset
    offs = np.concatenate([[0], np.cumsum(run_id[-1] + 1)[:-1]])
    gid = run_id + offs[None, :]
    length = np.bincount(gid.ravel(), minlength=int(gid.max()) + 1 if gid.size else 0)
    start_f = np.zeros(length.size, np.int64)
    fr = np.broadcast_to(np.arange(F)[:, None], (F, n))
    start_f[gid[change]] = fr[change]
    short = (length < min_frames) & (start_f > 0) & (start_f + length < F)
    bad = short[gid]
    if not bad.any():
        return x
    # the value before a short run: the last frame of the nearest preceding long run
    good_frame = np.where(bad, -1, fr)
    last = np.maximum.accumulate(good_frame, axis=0)
    out = np.take_along_axis(x2, np.maximum(last, 0), axis=0)
    return np.where(bad, out, x2).reshape(x.shape)


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
    own = _drop_short_runs(own, min_frames)
    f, a = np.nonzero(own[1:] != own[:-1])
    f = f + 1
    o = np.argsort(f, kind="stable")
    f, a = f[o], a[o]
    return xr.Dataset(
        {
            "hydrogen": ("event", np.asarray(assignment["atom_index"].values)[a]),
            "frame": ("event", f),
            "time": ("event", f * dt, {"units": "ps"}),
            "from_donor": ("event", own[f - 1, a]),
            "to_donor": ("event", own[f, a]),
        },
        attrs={
            "n_groups": own.shape[1],
            "duration_ps": (own.shape[0] - 1) * dt,
            "min_frames": min_frames,
        },
    )


def oh_reorientations(
    ds: xr.Dataset,
    assignment: xr.DataArray,
    *,
    threshold_deg: float = 60.0,
    smooth: int = 5,
    frame_chunk: int | None = None,
) -> xr.Dataset:
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
    need = np.union1d(hi, own)  # read only the hydrogens and their donors
    h_loc, own_loc = np.searchsorted(need, hi), np.searchsorted(need, own)
    cells = G.cell_array(ds) if S.is_periodic(ds) else None
    u = np.empty(own.shape + (3,))
    for f0, pos in frame_blocks(ds, frame_chunk, "O-H vectors", need):
        fr = slice(f0, f0 + pos.shape[0])
        d = pos[:, h_loc] - np.take_along_axis(pos, own_loc[fr][..., None].repeat(3, -1), axis=1)
        if cells is not None:
            d = G.minimum_image(d, cells[fr], S.pbc_of(ds))
        u[fr] = d / np.linalg.norm(d, axis=-1, keepdims=True)
    fr, which, ang = jump_events(u, threshold_deg=threshold_deg, smooth=smooth)
    lo, hi_ = np.maximum(fr - smooth, 0), np.minimum(fr + smooth, own.shape[0] - 1)
    keep = own[lo, which] == own[hi_, which]
    fr, which, ang = fr[keep], which[keep], ang[keep]
    return xr.Dataset(
        {
            "hydrogen": ("event", hi[which]),
            "donor": ("event", own[fr, which]),
            "frame": ("event", fr),
            "time": ("event", fr * dt, {"units": "ps"}),
            "angle": ("event", ang, {"units": "deg"}),
        },
        attrs={"n_groups": hi.size, "duration_ps": (own.shape[0] - 1) * dt},
    )


def hydrogen_bonds(
    ds: xr.Dataset,
    donor: str = "O",
    hydrogen: str = "H",
    acceptor: str = "O",
    *,
    d_da: float = 3.0,
    angle: float = 150.0,
    d_dh: float = 1.2,
    frame_chunk: int | None = None,
) -> xr.Dataset:
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
    frame_chunk
        Frames read at a time (default: as many as fit, up to 256); the pairs of one frame
        are found with cell lists, so memory is linear in the atoms and independent of
        the number of frames (besides the bonds found).

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
    geometry = _frame_geometry(ds)
    # the neighbour search keeps r < cutoff; the criteria are r <= d: search a hair wider
    wider = lambda d: float(np.nextafter(d, np.inf))  # noqa: E731
    rows = []
    need = np.union1d(np.union1d(di, hi), ai)  # read only these atoms; local indices below
    di, hi, ai = (np.searchsorted(need, x) for x in (di, hi, ai))
    for f, pos in _frames(ds, frame_chunk, "hydrogen bonds", need):
        cell, pbc = geometry(f)
        dh = pairs_between(pos, cell, pbc, wider(d_dh), di, hi)  # D->H
        ok = dh.distances <= d_dh
        d_of, h_of, v_dh = dh.i[ok], dh.j[ok], dh.vectors[ok]
        if d_of.size == 0:
            continue
        da = pairs_between(pos, cell, pbc, wider(d_da), np.unique(d_of), ai)  # D->A
        o = np.argsort(da.i, kind="stable")
        da_d, da_a, v_da = da.i[o], da.j[o], da.vectors[o]
        # every (D-H, D-A) combination sharing the donor
        lo, hi_ = np.searchsorted(da_d, d_of, "left"), np.searchsorted(da_d, d_of, "right")
        cnt = hi_ - lo
        p = np.repeat(np.arange(d_of.size), cnt)
        q = np.repeat(lo - np.cumsum(cnt) + cnt, cnt) + np.arange(cnt.sum())
        v_ha = v_da[q] - v_dh[p]  # H->A
        r_da = np.linalg.norm(v_da[q], axis=-1)
        # angle D-H-A between H->D and H->A
        cosang = np.einsum("pi,pi->p", -v_dh[p], v_ha) / (
            np.linalg.norm(v_dh[p], axis=-1) * np.linalg.norm(v_ha, axis=-1) + 1e-300
        )
        keep = (r_da <= d_da) & (cosang <= cos_min) & (da_a[q] != d_of[p])
        p, q = p[keep], q[keep]
        tab = np.column_stack(
            [
                np.full(p.size, f),
                need[d_of[p]],
                need[h_of[p]],
                need[da_a[q]],
                r_da[keep],
                np.degrees(np.arccos(np.clip(cosang[keep], -1, 1))),
            ]
        )
        rows.append(tab[np.lexsort((tab[:, 3], tab[:, 2], tab[:, 1]))])
    tab = np.concatenate(rows) if rows else np.empty((0, 6))
    frames = tab[:, 0].astype(np.int64)
    return xr.Dataset(
        {
            "frame": ("bond", frames),
            "donor": ("bond", tab[:, 1].astype(np.int64)),
            "hydrogen": ("bond", tab[:, 2].astype(np.int64)),
            "acceptor": ("bond", tab[:, 3].astype(np.int64)),
            "distance": ("bond", tab[:, 4], {"units": "Å"}),
            "angle": ("bond", tab[:, 5], {"units": "deg"}),
            "count": (S.FRAME, np.bincount(frames, minlength=n)),
        },
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
    key = np.column_stack(
        [bonds["donor"].values, bonds["hydrogen"].values, bonds["acceptor"].values]
    )
    if key.shape[0] == 0:
        raise InputError(
            "no hydrogen bond in any frame: nothing to correlate (check species and criteria)."
        )
    _, triple = np.unique(key, axis=0, return_inverse=True)
    triple = triple.ravel()
    frames = np.asarray(bonds["frame"].values)
    n_tr = int(triple.max()) + 1
    # one entry per (frame, triple): in a cell thinner than 2 d_da a triple may be bonded
    # through two images at once, which is still h = 1
    _, first = np.unique(frames * n_tr + triple, return_index=True)
    triple, frames = triple[first], frames[first]
    lags = np.arange(n)
    norm0 = float(triple.size)  # sum of h over frames and triples
    # intermittent: sum over triples of the autocorrelation of h, in chunks of triples
    # whose dense (frame, triple) block and its FFT stay within ~64 MB (memory does not
    # grow with the number of distinct triples, which grows with the trajectory)
    step = max(1, int(64 * 2**20 // (n * 8 * 6)))
    o = np.argsort(triple, kind="stable")
    tr_s, fr_s = triple[o], frames[o]
    bounds = np.searchsorted(tr_s, np.arange(0, n_tr + step, step).clip(max=n_tr))
    acc = np.zeros(n)
    for a, b, lo, hi in zip(
        range(0, n_tr, step), range(step, n_tr + step, step), bounds[:-1], bounds[1:], strict=False
    ):
        h = np.zeros((n, min(b, n_tr) - a))
        h[fr_s[lo:hi], tr_s[lo:hi] - a] = 1.0
        acc += summed_autocorrelation(h)
    inter = acc / (n - lags) / (norm0 / n)
    # continuous: for each run of length L, it contributes L - m pairs at lag m < L; runs
    # from the sorted (triple, frame) list: a run breaks where the triple changes or a
    # frame is skipped
    oo = np.lexsort((frames, triple))
    t2, f2 = triple[oo], frames[oo]
    brk = np.r_[True, (t2[1:] != t2[:-1]) | (f2[1:] != f2[:-1] + 1)]
    starts = np.flatnonzero(brk)
    lengths = np.diff(np.r_[starts, t2.size])
    cnt = np.bincount(lengths, minlength=n + 1)[1 : n + 1]  # runs of length 1..n
    # pairs at lag m = sum_{L>m} (L - m) * cnt[L]
    L = np.arange(1, n + 1)
    rev = lambda a: np.cumsum(a[::-1])[::-1]  # noqa: E731
    s_m = rev(cnt * L)[lags] - lags * rev(cnt)[lags]
    cont = s_m / (n - lags) / (norm0 / n)

    def integral(c):
        neg = np.flatnonzero(c <= 0)
        end = neg[0] if neg.size else c.size
        return float(np.trapezoid(c[:end], dx=dt))

    return xr.Dataset(
        {
            "intermittent": ("lag", inter),
            "continuous": ("lag", cont),
            "tau_intermittent": ((), integral(inter), {"units": "ps"}),
            "tau_continuous": ((), integral(cont), {"units": "ps"}),
        },
        coords={"lag": ("lag", lags * dt, {"units": "ps"})},
    )
