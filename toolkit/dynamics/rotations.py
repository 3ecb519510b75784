"""Polyanion rotations: groups by connectivity, orientational correlations C_l(t),
(stretched-)exponential relaxation times, angle-jump reorientation events and rates.

C_l(t) = < P_l(u(t0) . u(t0 + t)) > over all bond vectors u and all time origins, by FFT:
P_1 needs the autocorrelation of the three components of u, P_2 = (3 x^2 - 1) / 2 that of
the six distinct products u_a u_b, since (u . u')^2 = sum_ab u_a u_b u'_a u'_b.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import geometry as G
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.correlation import summed_autocorrelation
from atomtwin.toolkit.dynamics._outofcore import frame_blocks
from atomtwin.toolkit.dynamics.msd import species_indices
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import nearest_neighbors
from atomtwin.toolkit.progress import progress
from scipy import optimize, special


def _mic(d: np.ndarray, ds: xr.Dataset, frames=None) -> np.ndarray:
    if not S.is_periodic(ds):
        return d
    cell = G.cell_array(ds if frames is None else ds.isel({S.FRAME: frames}))
    shape = (cell.shape[0],) + (1,) * (d.ndim - 3) + (3, 3)  # row vectors: matmul batch dims
    return G.minimum_image(d, cell.reshape(shape), S.pbc_of(ds))


def find_polyanions(
    ds: xr.Dataset, centre: str, ligand: str, *, n_ligands: int = 4, frame: int = 0
) -> xr.DataArray:
    """Groups made of each ``centre`` atom and its ``n_ligands`` nearest ``ligand`` atoms.

    Returns
    -------
    DataArray (group, slot) of global ligand atom indices, coordinate ``centre_index``
    (group) and attr ``max_bond`` (Å, longest centre–ligand distance in ``frame``).

    Raises
    ------
    ValueError
        When a ligand would belong to two groups (the connectivity is ambiguous: check
        the species or ``n_ligands``) or there are too few ligands.
    """
    S.validate(ds)
    ci = species_indices(ds, centre)
    li = species_indices(ds, ligand)
    if li.size < n_ligands:
        raise InputError(f"{li.size} {ligand} atoms cannot give {n_ligands} ligands per {centre}.")
    pos = np.asarray(ds[S.POSITIONS].isel({S.FRAME: frame}).values, dtype=float)
    cell = G.cell_array(ds)[frame] if S.is_periodic(ds) else None
    # the n_ligands nearest ligands of every centre (cell lists, nearest images)
    groups, bonds = nearest_neighbors(
        pos, cell, S.pbc_of(ds) if cell is not None else None, ci, li, k=n_ligands
    )
    uniq, cnt = np.unique(groups, return_counts=True)
    if np.any(cnt > 1):
        raise InputError(
            f"{ligand} atom(s) {uniq[cnt > 1][:5].tolist()} are among the {n_ligands} nearest of more than one "
            f"{centre}: the {centre}{ligand}{n_ligands} connectivity is ambiguous in frame {frame}. Fix: check "
            "n_ligands and the species, or choose a frame where the groups are intact."
        )
    return xr.DataArray(
        groups,
        dims=("group", "slot"),
        coords={"centre_index": ("group", ci)},
        name="polyanions",
        attrs={"centre": centre, "ligand": ligand, "max_bond": float(bonds.max()), "units": ""},
    )


def bond_vectors(
    ds: xr.Dataset, groups: xr.DataArray, *, frame_chunk: int | None = None
) -> xr.DataArray:
    """Unit vectors centre -> ligand (frame, group, slot, xyz), minimum image.

    Only the centre and ligand atoms are read, ``frame_chunk`` frames at a time, so the
    working memory is one chunk of those atoms (the result itself is frames x bonds).
    """
    ci = np.asarray(groups["centre_index"].values)
    li = np.asarray(groups.values)
    need, inv = np.unique(np.concatenate([ci, li.ravel()]), return_inverse=True)
    c_loc, l_loc = inv[: ci.size], inv[ci.size :].reshape(li.shape)
    n = ds.sizes[S.FRAME]
    u = np.empty((n, *li.shape, 3))
    for f0, pos in frame_blocks(
        ds, frame_chunk, "bond vectors", need, extra_bytes_per_frame=li.size * 3 * 8 * 3
    ):
        fr = slice(f0, f0 + pos.shape[0])
        d = _mic(pos[:, l_loc] - pos[:, c_loc][:, :, None, :], ds, fr)
        u[fr] = d / np.linalg.norm(d, axis=-1, keepdims=True)
    return xr.DataArray(
        u,
        dims=(S.FRAME, "group", "slot", S.XYZ),
        name="bond_vectors",
        coords={
            "time": (
                S.FRAME,
                np.asarray(ds[S.TIME].values)
                if S.TIME in ds.coords
                else np.arange(u.shape[0]) * S.uniform_timestep(ds),
            )
        },
        attrs={"units": "1", "timestep_ps": S.uniform_timestep(ds)},
    )


def legendre_correlation(
    vectors: np.ndarray, ls=(1, 2), *, chunk_bytes: float = 64 * 2**20
) -> np.ndarray:
    """C_l(m) for unit vectors (F, ..., 3), all origins; returns (len(ls), F).

    The sums run over chunks of vectors (a time correlation chunks along atoms), each
    chunk's FFT work about ``chunk_bytes``, so memory does not grow with the vector count.
    """
    F = vectors.shape[0]
    u = vectors.reshape(F, -1, 3)
    nvec = u.shape[1]
    for ell in ls:
        if ell not in (1, 2):
            raise InputError(f"l={ell}: only l = 1 and 2 are implemented.")
    norm = nvec * (F - np.arange(F))
    sums = {ell: np.zeros(F) for ell in ls}
    # FFT work per vector: 2F padded complex values for each of 6 components (x ~4 buffers)
    step = max(1, int(chunk_bytes // (F * 6 * 16 * 4)))
    for a in range(0, nvec, step):
        v = u[:, a : a + step]
        if 1 in sums:
            sums[1] += summed_autocorrelation(v)
        if 2 in sums:  # (u.u')^2 = sum_ab u_a u_b u'_a u'_b: 3 squares, 3 doubled products
            r2 = np.sqrt(2.0)
            sq = np.concatenate([v * v, r2 * v[..., [0, 0, 1]] * v[..., [1, 2, 2]]], axis=-1)
            sums[2] += summed_autocorrelation(sq)
    return np.asarray([sums[1] / norm if ell == 1 else 1.5 * sums[2] / norm - 0.5 for ell in ls])


def orientational_correlation(
    ds: xr.Dataset, centre: str, ligand: str, *, n_ligands: int = 4, ls=(1, 2)
) -> xr.DataArray:
    """C_l(t) = < P_l(u(0) . u(t)) > of the centre->ligand bond vectors of every group.

    Returns
    -------
    DataArray (l, lag) (dimensionless), ``lag`` in ps.
    """
    S.validate(ds)
    dt = S.uniform_timestep(ds)
    u = bond_vectors(ds, find_polyanions(ds, centre, ligand, n_ligands=n_ligands))
    c = legendre_correlation(u.values, ls)
    F = c.shape[1]
    return xr.DataArray(
        c,
        dims=("l", "lag"),
        coords={"l": list(ls), "lag": ("lag", np.arange(F) * dt, {"units": "ps"})},
        name="orientational_correlation",
        attrs={
            "units": "1",
            "centre": centre,
            "ligand": ligand,
            "n_groups": u.sizes["group"],
            "long_name": "C_l(t) = <P_l(u(0).u(t))>",
        },
    )


def _stretched(t, tau, beta):
    return np.exp(-((t / tau) ** beta))


def fit_relaxation(
    corr: xr.DataArray, *, model: str = "stretched", t_max: float | None = None, c_min: float = 0.05
) -> xr.Dataset:
    """Relaxation time of a decaying correlation C(t) (one ``lag`` dim).

    Parameters
    ----------
    model
        ``"exp"``: exp(-t/tau); ``"stretched"``: exp(-(t/tau)^beta) (KWW);
        ``"biexp"``: a exp(-t/tau1) + (1-a) exp(-t/tau2); ``"auto"``: exp or biexp,
        whichever has the lower Bayesian information criterion (two rates only when the
        data say so).
    t_max, c_min
        Fit up to ``t_max`` ps (default: half the lags) and while C > ``c_min``.

    Returns
    -------
    Dataset with ``tau`` (ps), ``beta``, ``mean_tau`` = tau/beta Gamma(1/beta) (the
    integral of the fit), and for two rates ``tau2``, ``weight``; attr ``model``.
    """
    t = np.asarray(corr["lag"].values, dtype=float)
    c = np.asarray(corr.values, dtype=float)
    if t_max is None:
        t_max = t[-1] / 2
    below = np.flatnonzero(c < c_min)
    end = below[0] if below.size else t.size
    sel = (t > 0) & (t <= t_max) & (np.arange(t.size) < end)
    if sel.sum() < 4:
        raise InputError(
            f"too few points to fit a relaxation ({int(sel.sum())} with C > {c_min} below {t_max:g} ps): "
            "the correlation decays within a few frames; store frames more often."
        )
    tt, cc = t[sel], c[sel]
    tau0 = float(np.interp(np.exp(-1), cc[::-1], tt[::-1])) if cc.min() < np.exp(-1) else tt[-1]

    def fit(name):
        if name == "exp":
            p, cov = optimize.curve_fit(
                lambda x, tau: np.exp(-x / tau), tt, cc, p0=[tau0], bounds=(1e-12, np.inf)
            )
            return dict(tau=p[0], beta=1.0, tau2=np.nan, weight=1.0), np.exp(-tt / p[0]), 1
        if name == "stretched":
            p, cov = optimize.curve_fit(
                _stretched, tt, cc, p0=[tau0, 1.0], bounds=([1e-12, 0.05], [np.inf, 2.0])
            )
            return dict(tau=p[0], beta=p[1], tau2=np.nan, weight=1.0), _stretched(tt, *p), 2
        if name == "biexp":
            f = lambda x, a, t1, t2: a * np.exp(-x / t1) + (1 - a) * np.exp(-x / t2)  # noqa: E731
            p, cov = optimize.curve_fit(
                f,
                tt,
                cc,
                p0=[0.5, tau0 / 3, tau0 * 3],
                bounds=([0, 1e-12, 1e-12], [1, np.inf, np.inf]),
            )
            a, t1, t2 = p
            if t1 > t2:
                a, t1, t2 = 1 - a, t2, t1
            return dict(tau=t1, beta=1.0, tau2=t2, weight=a), f(tt, *p), 3
        raise InputError(f"model={name!r}; use 'exp', 'stretched', 'biexp' or 'auto'.")

    if model == "auto":
        res = {}
        for name in ("exp", "biexp"):
            try:
                pars, pred, k = fit(name)
            except RuntimeError:
                continue
            rss = float(((cc - pred) ** 2).sum())
            res[name] = (tt.size * np.log(max(rss, 1e-300) / tt.size) + k * np.log(tt.size), pars)
        chosen = min(res, key=lambda k: res[k][0])
        pars = res[chosen][1]
    else:
        chosen = model
        pars = fit(model)[0]
    b = pars["beta"]
    mean_tau = pars["tau"] / b * special.gamma(1 / b)
    if chosen == "biexp":
        mean_tau = pars["weight"] * pars["tau"] + (1 - pars["weight"]) * pars["tau2"]
    return xr.Dataset(
        {
            "tau": ((), pars["tau"], {"units": "ps"}),
            "beta": ((), b),
            "tau2": ((), pars["tau2"], {"units": "ps"}),
            "weight": ((), pars["weight"]),
            "mean_tau": ((), mean_tau, {"units": "ps"}),
        },
        attrs={"model": chosen, "fit_stop_ps": float(tt[-1])},
    )


def jump_events(
    vectors: np.ndarray, *, threshold_deg: float = 60.0, smooth: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angle jumps of unit vectors (F, n, 3): (frames, vector indices, angles in degrees).

    The vectors are first averaged over ``smooth`` frames (removes libration).  Each vector
    keeps an anchor direction; when the smoothed vector is more than ``threshold_deg`` away
    from it, a jump is recorded at that frame and the anchor moves to the *settled* new
    direction, the smoothed vector ``smooth`` frames later (once the averaging window lies
    wholly after the jump).  The reported angle is between the old and the settled
    direction.  A crossing whose settled direction is back within ``threshold_deg`` of the
    anchor (an excursion that returned) is no jump: nothing is recorded and the anchor
    stays, so every reported angle exceeds the threshold.  (Moving the anchor to the first smoothed vector past the threshold would
    leave it on a blend of the old and new directions, ~70° into a 109° tetrahedral jump:
    the angle would be under-reported and the next jump could be counted twice.)
    """
    F, n, _ = vectors.shape
    if smooth > 1:
        k = np.ones(smooth) / smooth
        cs = np.cumsum(np.concatenate([np.zeros((1, n, 3)), vectors]), axis=0)
        v = (cs[smooth:] - cs[:-smooth]) * k[0]
        v = np.concatenate(
            [np.repeat(v[:1], smooth // 2, 0), v, np.repeat(v[-1:], smooth - 1 - smooth // 2, 0)]
        )
    else:
        v = vectors
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    cos_t = np.cos(np.deg2rad(threshold_deg))
    anchor = v[0].copy()
    frames, which, angles = [], [], []
    for f in progress(range(1, F), total=F - 1, desc="angle jumps"):  # vectorised over vectors
        c = np.einsum("ij,ij->i", v[f], anchor)
        hit = np.flatnonzero(c < cos_t)
        if hit.size:
            settled = v[min(f + (smooth if smooth > 1 else 0), F - 1), hit]
            c_new = np.einsum("ij,ij->i", settled, anchor[hit])
            moved = c_new < cos_t
            hit, settled, c_new = hit[moved], settled[moved], c_new[moved]
        if hit.size:
            frames.append(np.full(hit.size, f))
            which.append(hit)
            angles.append(np.degrees(np.arccos(np.clip(c_new, -1, 1))))
            anchor[hit] = settled
    if not frames:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    return np.concatenate(frames), np.concatenate(which), np.concatenate(angles)


def _group_events(fr, vec, ang, ns: int, merge: int):
    """Merge bond-vector jumps of one group within ``merge`` frames into group events:
    (group, frame, largest angle, number of distinct bond vectors that jumped)."""
    g = vec // ns
    order = np.lexsort((fr, g))
    fr, g, ang, vec = fr[order], g[order], ang[order], vec[order]
    new = np.ones(fr.size, bool)
    new[1:] = (g[1:] != g[:-1]) | (fr[1:] - fr[:-1] > merge)
    start = np.flatnonzero(new)
    ev_ang = np.maximum.reduceat(ang, start) if ang.size else ang
    # distinct bond vectors per event (one vector jumping twice within the window is one)
    ev_id = np.cumsum(new) - 1
    pairs = np.unique(np.column_stack([ev_id, vec]), axis=0) if vec.size else np.empty((0, 2), int)
    ev_n = np.bincount(pairs[:, 0], minlength=start.size)
    return g[start], fr[start], ev_ang, ev_n


def reorientation_events(
    ds: xr.Dataset,
    centre: str,
    ligand: str,
    *,
    n_ligands: int = 4,
    threshold_deg: float = 60.0,
    smooth: int = 5,
    merge: int | None = None,
    frame_chunk: int | None = None,
) -> xr.Dataset:
    """Discrete reorientations of polyanions (angle jumps of their bond vectors).

    Jumps of several bond vectors of one group within ``merge`` frames (default
    ``smooth``) are one group event; ``n_bonds`` counts the distinct bond vectors that
    jumped (at most ``n_ligands``).

    Events mean something only for jump-like motion; the attrs carry the verdict of
    :func:`rotation_mechanism` (``mechanism``: ``"jump"``, ``"continuous"``,
    ``"undetermined"`` or ``"unresolved"``, ``count_ratio``, ``tau_ratio``, ``tau_1_ps``, ``tau_2_ps``).  For
    continuous rotational diffusion the "events" are threshold crossings whose number
    depends on the threshold: report the rotational diffusion coefficient instead of a
    rate (attr ``D_r`` in rad^2/ps = 1 / (2 tau_1); NaN for other verdicts).

    Returns
    -------
    Dataset over ``event``: ``group``, ``centre_index``, ``frame``, ``time`` (ps), ``angle``
    (largest bond-vector jump, degrees), ``n_bonds`` (bond vectors that jumped), with
    attrs ``n_groups`` and ``duration_ps`` for :func:`event_rate`.
    """
    dt = S.uniform_timestep(ds)
    groups = find_polyanions(ds, centre, ligand, n_ligands=n_ligands)
    u = bond_vectors(ds, groups, frame_chunk=frame_chunk).values
    F, ng, ns, _ = u.shape
    u = u.reshape(F, ng * ns, 3)
    fr, vec, ang = jump_events(u, threshold_deg=threshold_deg, smooth=smooth)
    merge = smooth if merge is None else merge
    ev_g, ev_f, ev_ang, ev_n = _group_events(fr, vec, ang, ns, merge)
    o = np.argsort(ev_f, kind="stable")
    ci = np.asarray(groups["centre_index"].values)
    mech = _mechanism(u, dt, threshold_deg, smooth)
    return xr.Dataset(
        {
            "group": ("event", ev_g[o]),
            "centre_index": ("event", ci[ev_g[o]]),
            "frame": ("event", ev_f[o]),
            "time": ("event", ev_f[o] * dt, {"units": "ps"}),
            "angle": ("event", ev_ang[o], {"units": "deg"}),
            "n_bonds": ("event", ev_n[o]),
        },
        attrs={
            "n_groups": ng,
            "duration_ps": (F - 1) * dt,
            "threshold_deg": threshold_deg,
            "smooth": smooth,
            "mechanism": mech["mechanism"],
            "count_ratio": mech["count_ratio"],
            "tau_ratio": mech["tau_ratio"],
            "tau_1_ps": mech["tau_1"],
            "tau_2_ps": mech["tau_2"],
            "D_r": 0.5 / mech["tau_1"] if mech["mechanism"] == "continuous" else np.nan,
        },
    )


#: thresholds of the jump test, as fractions of ``threshold_deg``
_LOW, _HIGH = 2.0 / 3.0, 4.0 / 3.0
#: count ratios N(low) / N(high) below this are jump-like, above it continuous (see
#: :func:`rotation_mechanism`: 1 for jumps, about 4 for rotational diffusion at 40°/80°;
#: 2 is their geometric mean)
_RATIO_SPLIT = 2.0
_MIN_EVENTS = 20


def _mechanism(u: np.ndarray, dt: float, threshold_deg: float, smooth: int) -> dict:
    """Jump test on unit vectors (F, n, 3); see :func:`rotation_mechanism`."""
    lo = jump_events(u, threshold_deg=_LOW * threshold_deg, smooth=smooth)[0].size
    hi = jump_events(u, threshold_deg=min(_HIGH * threshold_deg, 179.0), smooth=smooth)[0].size
    ratio = lo / hi if hi else (np.inf if lo else np.nan)
    c = legendre_correlation(u, (1, 2))
    t1, t2 = _one_over_e(c[0], dt), _one_over_e(c[1], dt)
    tau_ratio = t1 / t2 if np.isfinite(t1 + t2) else np.nan
    if np.isfinite(t1) and t1 < max(smooth, 2) * dt:
        verdict = "unresolved"  # orientations decorrelate between a few frames
    elif lo < _MIN_EVENTS:
        verdict = "undetermined"
    elif ratio >= _RATIO_SPLIT or (np.isfinite(tau_ratio) and tau_ratio >= _RATIO_SPLIT):
        verdict = "continuous"
    else:
        verdict = "jump"
    return {
        "mechanism": verdict,
        "count_ratio": float(ratio),
        "n_low": int(lo),
        "n_high": int(hi),
        "tau_1": t1,
        "tau_2": t2,
        "tau_ratio": tau_ratio,
    }


def _one_over_e(c: np.ndarray, dt: float) -> float:
    """Time (ps) where C first falls below 1/e, linearly interpolated (NaN if it never does)."""
    below = np.flatnonzero(c < np.exp(-1))
    if not below.size or below[0] == 0:
        return np.nan
    k = below[0]
    x0, x1 = c[k - 1], c[k]
    return float(dt * (k - 1 + (x0 - np.exp(-1)) / (x0 - x1)))


def rotation_mechanism(
    ds: xr.Dataset,
    centre: str,
    ligand: str,
    *,
    n_ligands: int = 4,
    threshold_deg: float = 60.0,
    smooth: int = 5,
    frame_chunk: int | None = None,
) -> xr.Dataset:
    """Jump-like or continuous reorientation?  Two tests on the bond vectors.

    1. Threshold test.  Count angle jumps (:func:`jump_events`) at 2/3 and 4/3 of
       ``threshold_deg`` (40° and 80° by default).  Jumps between discrete orientations
       (109.5° for a tetrahedron, 104.5° for a water flip) exceed both thresholds, so
       both count every jump: ratio ~1.  Continuous rotational diffusion crosses a cone of
       half-angle θ after a mean first-passage time (1/D_r) ln(2 / (1 + cos θ)), so the
       ratio is ~ln(2/(1+cos 80°)) / ln(2/(1+cos 40°)) = 4.3.  Below 2 (the geometric
       mean) the motion is jump-like.  The dead time after each crossing (the anchor
       settles ``smooth`` frames later) lowers the diffusive ratio when the vectors turn
       by a radian within ``smooth`` frames, hence the second test.
    2. Ivanov's ratio tau_1 / tau_2 of the 1/e times of C_1 and C_2: 3 for small-step
       rotational diffusion (C_l = exp(-l(l+1) D_r t)); near 1 for large-angle jumps
       (1 for tetrahedral jumps, 1.1 for water flips); 2 splits them again (used when
       both C_l fall below 1/e within the trajectory).

    The verdict is ``"jump"`` when both ratios are below 2, ``"continuous"`` when either is
    above, ``"undetermined"`` with fewer than 20 crossings at the lower threshold, and
    ``"unresolved"`` when C_1 falls below 1/e within ``max(smooth, 2)`` frames: the frames
    are too far apart for any reorientation to be followed (every frame would look like
    a jump); store frames more often.

    For continuous motion the rotational diffusion coefficient is D_r = 1 / (2 tau_1)
    (and 1 / (6 tau_2), which agrees for isotropic diffusion); for other verdicts ``D_r``
    is NaN (jumps have a rate: :func:`reorientation_events`, :func:`event_rate`).

    Returns
    -------
    Dataset of scalars: ``count_ratio``, ``n_low``, ``n_high``, ``tau_1_c1``, ``tau_2_c2``
    (1/e times of C_1, C_2, ps), ``tau_ratio``, ``D_r`` and ``D_r_from_c2`` (rad^2/ps);
    attr ``mechanism``.
    """
    S.validate(ds)
    dt = S.uniform_timestep(ds)
    groups = find_polyanions(ds, centre, ligand, n_ligands=n_ligands)
    u = bond_vectors(ds, groups, frame_chunk=frame_chunk).values
    F = u.shape[0]
    u = u.reshape(F, -1, 3)
    m = _mechanism(u, dt, threshold_deg, smooth)
    t1, t2 = m["tau_1"], m["tau_2"]
    if m["mechanism"] != "continuous":  # a diffusion coefficient describes diffusion only
        t1 = t2 = np.nan
    return xr.Dataset(
        {
            "count_ratio": ((), m["count_ratio"]),
            "n_low": ((), m["n_low"]),
            "n_high": ((), m["n_high"]),
            "tau_ratio": ((), m["tau_ratio"]),
            "tau_1_c1": ((), m["tau_1"], {"units": "ps"}),
            "tau_2_c2": ((), m["tau_2"], {"units": "ps"}),
            "D_r": ((), 0.5 / t1 if np.isfinite(t1) else np.nan, {"units": "rad^2/ps"}),
            "D_r_from_c2": (
                (),
                1.0 / (6 * t2) if np.isfinite(t2) else np.nan,
                {"units": "rad^2/ps"},
            ),
        },
        attrs={
            "mechanism": m["mechanism"],
            "threshold_deg": threshold_deg,
            "thresholds_deg": [_LOW * threshold_deg, _HIGH * threshold_deg],
            "smooth": smooth,
        },
    )


def event_rate(
    events: xr.Dataset, n_units: int | None = None, duration: float | None = None
) -> xr.Dataset:
    """Events per unit (group, proton...) per ps with the Poisson error sqrt(n) / (units x time)."""
    n_units = int(events.attrs["n_groups"] if n_units is None else n_units)
    duration = float(events.attrs["duration_ps"] if duration is None else duration)
    n = events.sizes["event"]
    expo = n_units * duration
    return xr.Dataset(
        {
            "rate": ((), n / expo, {"units": "1/ps"}),
            "rate_err": ((), np.sqrt(max(n, 1)) / expo, {"units": "1/ps"}),
            "n_events": ((), n),
        }
    )


def waiting_times(events: xr.Dataset, key: str = "group") -> np.ndarray:
    """Times (ps) between consecutive events of the same unit."""
    t = np.asarray(events["time"].values)
    k = np.asarray(events[key].values)
    o = np.lexsort((t, k))
    t, k = t[o], k[o]
    same = k[1:] == k[:-1]
    return np.diff(t)[same]


def rate_components(waits, *, max_components: int = 2) -> xr.Dataset:
    """Rates behind a set of waiting times: a mixture of 1..``max_components``
    exponentials fitted by maximum likelihood, the number chosen by BIC.

    A single Poisson process gives exponential waiting times (one rate); units with two
    distinct mechanisms or populations give a mixture, and BIC keeps the second rate only
    when the likelihood gain outweighs its two extra parameters.

    Returns
    -------
    Dataset over ``component``: ``rate`` (1/ps), ``rate_err`` (from the observed
    information), ``weight``; attr ``bic`` per number of components.
    """
    w = np.asarray(waits, dtype=float)
    w = w[w > 0]
    if w.size < 10:
        raise InputError(f"{w.size} waiting times are too few to resolve rates (need >= 10).")
    fits = {}
    for k in range(1, max_components + 1):
        if k == 1:
            lam = np.array([1.0 / w.mean()])
            wts = np.array([1.0])
        else:
            q = np.quantile(w, np.linspace(0.2, 0.8, k))
            lam, wts = 1.0 / q, np.full(k, 1.0 / k)
            for _ in range(500):  # EM for an exponential mixture
                dens = wts * lam * np.exp(-np.outer(w, lam))
                resp = dens / dens.sum(axis=1, keepdims=True)
                nk = resp.sum(axis=0)
                new = nk / (resp * w[:, None]).sum(axis=0)
                wts = nk / w.size
                if np.allclose(new, lam, rtol=1e-9):
                    lam = new
                    break
                lam = new
        ll = float(np.log((wts * lam * np.exp(-np.outer(w, lam))).sum(axis=1)).sum())
        fits[k] = (-2 * ll + (2 * k - 1) * np.log(w.size), lam, wts)
    best = min(fits, key=lambda k: fits[k][0])
    _, lam, wts = fits[best]
    order = np.argsort(-lam)
    lam, wts = lam[order], wts[order]
    err = lam / np.sqrt(np.maximum(wts * w.size, 1))
    return xr.Dataset(
        {
            "rate": ("component", lam, {"units": "1/ps"}),
            "rate_err": ("component", err, {"units": "1/ps"}),
            "weight": ("component", wts),
        },
        attrs={"bic": str({k: round(v[0], 3) for k, v in fits.items()}), "n_waits": int(w.size)},
    )
