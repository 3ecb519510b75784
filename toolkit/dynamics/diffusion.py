"""Diffusion coefficients with error bars calibrated for correlated atoms, and Arrhenius fits.

Estimator: generalised least squares (GLS) on the all-origins MSD
---------------------------------------------------------------------
MSD points at different lags are strongly correlated (they share origins and, for
overlapping windows, the same steps), so an ordinary least-squares error bar on the slope
is far too small.  We fit with the covariance of the MSD itself.  Its *shape* is computed
exactly for the model the linear regime assumes: each coordinate of each atom is a random
walk with step variance sigma^2 per frame plus an independent vibrational offset of
variance s^2 at every frame,

    x_k = W_k + e_k,      MSD_1D(m) = m sigma^2 + 2 s^2.

Displacements are Gaussian, so Cov(d^2, d'^2) = 2 Cov(d, d')^2, and Cov(d, d') of two
windows is sigma^2 x (their overlap) plus s^2 x (shared end points).  Summing over all
origin pairs gives Cov(MSD_n, MSD_m) = sigma^4 A_nm + sigma^2 s^2 B_nm + s^4 C_nm with A,
B, C depending only on the frame count and lags (cached): the correlations between time
origins are thereby exact for the model.

Correlated atoms: an inflation factor measured from the data
--------------------------------------------------------------
Atoms of a liquid are not independent walkers: neighbours are displaced together
(back-flow, collective density relaxation), and displacements are non-Gaussian.  Both add
to the variance of the atom-averaged MSD, Var = sum_ij Cov(d_i^2, d_j^2), a term the
independent-walker model misses (a Lennard-Jones liquid at its triple point: the variance
of the MSD at 5-20 ps is 3-4.5 times the model's, so the model's error bar on D is ~2x too
small; at lags of 100 ps the excess fades to ~1.3x, as the correlated part of the
displacements stays bounded while each atom's own displacement grows).  :func:`msd`
therefore also records, at 16 geometrically spaced probe lags m from F/100 to F/2 (origins
every m/8 frames, which costs ~5 % of the MSD), the sample variance over time origins k of
the per-origin MSD, V(m) = var_k( mean_i |r_i(k+m) - r_i(k)|^2 ).  For
independent Gaussian walkers its expectation is known exactly,

    E[V(m)] = n/(n-1) (v_1(m) - Var_model(MSD_m)),   v_1 = 2 n_dims (MSD_m / n_dims)^2 / N,

(n origins used; Var_model from the covariance above accounts for the correlation of
overlapping origins), so R(m) = V(m) / E[V(m)] measures the variance excess, whatever its
cause: R = 1 for independent walkers, R = 1 + sum_{j != i} (correlations) for a liquid, i.e.
an effective number of independent walkers N_eff(m) = N / R(m).  R(t) is a straight line
in (ln t, ln R) fitted to the probes of the window (weights: the number of independent
origins, its relative noise being ~sqrt(2 (1 + 2m/3) / (F - m))), floored at 1 (Cov(d_i^2, d_j^2) = 2 Cov(d_i, d_j)^2 >= 0 for Gaussian displacements;
the floor keeps the probes' noise from shrinking the error of independent walkers), and the
GLS covariance becomes Cov_nm sqrt(R_n R_m).  The slope's variance is (X^T Sigma^-1 X)^-1,
times the reduced chi^2 of the fit when that exceeds 1 (the Birge ratio: the MSD scatters
more than even the inflated model says, e.g. time-correlated vibrations of a crystal).

Why this and not blocks or a bootstrap: contiguous blocks would capture every correlation
too, but a fit window reaching half a block leaves each block two independent samples of
its longest lags, so 5-10 blocks give an error that is itself uncertain by 25-35 % and a D
from shorter windows; resampling atoms (kinisi's bootstrap of the MSD covariance, or a
bootstrap over atoms) treats the atoms as independent, which is exactly what fails in a
liquid.  The origin-scatter probes use all N atoms and all origins at lags where many
independent origins exist, and the exact model transfers the measured excess to the
correlated long lags.  Validated in ``tests/regression/test_diffusion_lj.py`` (scatter of
D over independent segments of an LJ liquid against the reported error) and by the
coverage of independent-walker tests (unit tests).

Fit window: wait until the running slope is flat within its noise
-------------------------------------------------------------------
The window ends at half the trajectory (every lag then has at least half the origins).
Its start is chosen on a grid of lags (geometric at short lags, linear at long ones) among
the candidates t_c in [``FLOOR`` stop, stop / 2]: for each, the GLS slope over [t_c, stop]
is compared with the GLS slope over the later window [3 t_c, stop]; their difference divided
by its standard deviation (same covariance, correlation of the two estimates included) is
the z-score of how much D still moves if the fit starts later.  The start is the first
candidate with |z| <= ``flat_z`` (default 0.5) after the last candidate with |z| > 3 (the
one closest to flat if none is that close).  Why:
after the ballistic regime the running slope of a liquid approaches its plateau slowly (LJ
at its triple point: 15 % above it at 1 tau, 1.5 % at 3-5 tau, flat within 0.5 % from ~10
tau), and GLS trusts the early lags of the window most, so any rule with a fixed tolerance on
the local exponent or slope turns the transient into a bias of several error bars; the
z-rule adapts to the data's precision (the more precise the data, the later it starts).
The floor (the window spans at most a factor 5 in time) keeps short, noisy runs, where the
test has little power, out of the first few cage times, where the random-walk covariance is
also wrong (velocity correlations); for independent walkers it costs ~20 % in precision.
Calibration (4 NVE runs of 500 LJ atoms, T* = 0.75, rho* = 0.84, 200 tau each, split into
independent segments; ``tests/data/diffusion``): the within-run scatter of D over its reported
error is 0.90 +- 0.13 (32 segments of 25 tau) and 0.73 +- 0.20 (16 of 50 tau); treating the
atoms as independent gives 1.30 and 0.97 (1.6 and 1.24 without the Birge ratio); the former
model and tolerance rule gave 4.1 and 3.9, and D +4.5 % above the plateau on whole runs.  Rigid clusters of 4 walkers (true excess 4): scatter / error 1.08 at a fixed
start, 1.16 with the automatic one (the data-dependent start adds ~7 %).  Default D against
the long-time plateau (running slope from 12 tau to half the run): whole runs +0.7 +- 0.2 %;
25-tau segments +0.8 +- 0.9 % (0.2 of their error bar: the flatness test has less power).

Not diffusive
-------------
No diffusive regime is reported (``diffusive`` = False, ``status`` = "not diffusive", with
the reason) when the running slope never settles before stop/2, or when the fitted D is not
``min_significance`` (3) standard errors above zero (a crystal's or a glass's bounded MSD).
:func:`diffusion` and the CLI then give no number; :func:`fit_diffusion` keeps the fitted
values (for diagnostics) and warns, unless ``not_diffusive="nan"``.  ``start``/``stop``
override the window (the checks still run).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import scipy.linalg as sla
import xarray as xr
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError

#: lags entering the window search and the fit (at most; geometric + linear grid)
N_POINTS = 64
#: |z| of the change of D when the start moves LATER times later, at the window start
FLAT_Z = 0.5
#: no later candidate start may depart from the plateau by more than this many sigma
LATE_Z = 3.0
#: D must be this many standard errors above zero to count as diffusion
MIN_SIGNIFICANCE = 3.0
#: the flatness test compares the window [t_c, stop] with [LATER t_c, stop]
LATER = 3.0
#: the window never starts before FLOOR x stop (it spans at most a factor 1 / FLOOR in time)
FLOOR = 0.2


@lru_cache(maxsize=32)
def _cov_basis(n_frames: int, lags: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A, B, C (see module docstring) for one coordinate of one atom."""
    F = n_frames
    L = np.asarray(lags, dtype=np.int64)
    nl = L.size
    A = np.zeros((nl, nl))
    B = np.zeros((nl, nl))
    C = np.zeros((nl, nl))
    mmax = int(L.max())
    for i, n in enumerate(L):
        m = L[:, None]
        d = np.arange(-mmax, n + 1)[None, :]
        ov = np.clip(np.minimum(n, d + m) - np.maximum(0, d), 0, None).astype(float)
        cnt = np.clip(np.minimum(F - n - 1, F - m - 1 - d) - np.maximum(0, -d) + 1, 0, None).astype(float)
        cnt = np.where(d >= -m, cnt, 0.0)
        e = ((d == n - m).astype(float) - (d == n) - (d == -m) + (d == 0))
        norm = 2.0 / ((F - n) * (F - L).astype(float))
        A[i] = norm * (cnt * ov * ov).sum(axis=1)
        B[i] = norm * (cnt * 2.0 * ov * e).sum(axis=1)
        C[i] = norm * (cnt * e * e).sum(axis=1)
    return A, B, C


def msd_covariance(n_frames: int, lags, sigma2: float, s2: float, n_dims: int, n_atoms) -> np.ndarray:
    """Covariance (n_lags, n_lags) in Å^4 of the all-origins MSD of independent random walkers.

    Parameters
    ----------
    n_frames
        Frames in the trajectory (F).
    lags
        Lags in frames (ints >= 1).
    sigma2, s2
        Per-coordinate step variance per frame and vibrational offset variance (Å^2).
    n_dims
        Cartesian components summed in the MSD.
    n_atoms
        Number of independent walkers: a scalar, or one effective number per lag
        (region MSDs), combined as 1 / sqrt(n_i n_j).
    """
    A, B, C = _cov_basis(int(n_frames), tuple(int(x) for x in lags))
    n_atoms = np.broadcast_to(np.asarray(n_atoms, dtype=float), (len(lags),))
    scale = n_dims / np.sqrt(np.outer(n_atoms, n_atoms))
    return scale * (sigma2**2 * A + sigma2 * s2 * B + s2**2 * C)


def local_exponent(lag: np.ndarray, values: np.ndarray, factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """beta(t) = dln MSD / dln t between points ``factor`` apart in time: (t_mid, beta)."""
    ok = (lag > 0) & (values > 0)
    t, v = lag[ok], values[ok]
    if t.size < 2:
        return np.empty(0), np.empty(0)
    j = np.searchsorted(t, t * factor)
    good = j < t.size
    i = np.flatnonzero(good)
    j = j[good]
    beta = np.log(v[j] / v[i]) / np.log(t[j] / t[i])
    return np.sqrt(t[i] * t[j]), beta


def origin_inflation(msd: xr.DataArray, sigma2: float, s2: float) -> tuple[np.ndarray, ...]:
    """Variance excess R(m) of the MSD over the independent-walker model at the probe lags.

    Parameters
    ----------
    msd
        One MSD curve of :func:`atomtwin.toolkit.dynamics.msd` (with its ``origin_var``
        coordinate).
    sigma2, s2
        Per-coordinate step variance per frame and vibrational offset variance (Å^2) of the
        model (from the fit).

    Returns
    -------
    (t, R, n_eff): probe lags (ps), R (dimensionless), and the approximate number of
    independent origins behind each R (its relative standard error is ~sqrt(2 / n_eff)).
    Empty arrays when the MSD carries no probes (region MSDs, charge MSDs).
    """
    if "origin_var" not in msd.coords:
        return np.empty(0), np.empty(0), np.empty(0)
    lag = np.asarray(msd["lag"].values, dtype=float)
    ov = np.asarray(msd["origin_var"].values, dtype=float)
    y = np.asarray(msd.values, dtype=float)
    dt = float(msd.attrs["timestep_ps"])
    F, nd = int(msd.attrs["n_frames"]), int(msd.attrs["n_dims"])
    N = float(msd.attrs["n_atoms"])
    idx = np.flatnonzero(np.isfinite(ov) & (lag > 0) & (y > 0))
    t, R, w = [], [], []
    from atomtwin.toolkit.dynamics.msd import probe_stride

    for i in idx:
        m = int(round(lag[i] / dt))
        n = -(-(F - m) // probe_stride(m))  # origins used by the probe
        am = m * sigma2 + 2.0 * s2
        if n < 3 or am <= 0:
            continue
        rho = msd_covariance(F, [m], sigma2, s2, nd, N)[0, 0] / (2.0 * nd * am * am / N)
        if not rho < 0.9:
            continue
        expect = n / (n - 1.0) * 2.0 * nd * (y[i] / nd) ** 2 / N * (1.0 - rho)
        t.append(lag[i])
        R.append(ov[i] / expect)
        w.append((F - m) / (1.0 + 2.0 * m / 3.0))
    return np.array(t), np.array(R), np.array(w)


def _inflation_curve(t_probe, R_probe, w_probe, t_min=0.0):
    """R(t) for any lag: a straight line in (ln t, ln R) fitted to the probes at t >= t_min / 5
    (weights n_eff: the variance of ln R is ~2 / n_eff), floored at 1.

    A smooth, two-parameter curve on purpose: R at the longest lags rests on a few
    independent origins, and GLS weights built on noisy per-lag variances trust the lags
    whose variance came out low by chance (an error bar 1.4x too small for rigid clusters of
    4 walkers with per-probe R; calibrated with the line).  None when there are no probes,
    or when the pooled R is not 3 standard errors above 1 (then the data cannot tell the
    atoms from independent walkers, and R would only add noise).
    """
    ok = np.isfinite(R_probe) & (R_probe > 0)
    t, R, w = t_probe[ok], R_probe[ok], w_probe[ok]
    use = t >= t_min / 5.0  # the window's lags and a little before (more origins)
    if not use.any():
        use = t == t.max() if t.size else use
    if not use.any():
        return None
    t, R, w = t[use], R[use], w[use]
    pooled = np.average(R, weights=w)
    if pooled < 1.0 + 3.0 * pooled * np.sqrt(2.0 / w.sum()):
        return None
    if t.size >= 3:
        b, a = np.polyfit(np.log(t), np.log(R), 1, w=np.sqrt(w))
    else:
        b, a = 0.0, np.log(pooled)

    def curve(lag):
        return np.maximum(np.exp(a + b * np.log(np.maximum(lag, 1e-300))), 1.0)

    return curve


def _grid(stop_frame: int, n_points: int) -> np.ndarray:
    """Lags (frames) for the window search and fit: geometric at short lags, linear at long."""
    if stop_frame <= n_points:
        return np.arange(1, stop_frame + 1)
    g = np.concatenate([np.geomspace(1, stop_frame, n_points // 2),
                        np.linspace(1, stop_frame, n_points - n_points // 2)])
    return np.unique(np.rint(g).astype(np.int64))


def _gls_weights(t, cov):
    """Rows of (X^T S^-1 X)^-1 X^T S^-1 for X = [t, 1]: (2, n) weights and (2, 2) covariance."""
    X = np.column_stack([t, np.ones_like(t)])
    cov = cov + np.eye(len(t)) * 1e-12 * np.trace(cov) / len(t)
    cf = sla.cho_factor(cov, lower=True)
    SiX = sla.cho_solve(cf, X)
    pcov = np.linalg.inv(X.T @ SiX)
    return pcov @ SiX.T, pcov, cf


class _Model:
    """The MSD covariance at any set of lags: exact random-walk shape times R(t)."""

    def __init__(self, n_frames, n_dims, n_walkers, dt, inflation=None):
        self.F, self.nd, self.dt = int(n_frames), int(n_dims), float(dt)
        self.n = n_walkers  # scalar or callable(frames) -> per-lag effective walkers
        self.inflation = inflation

    def cov(self, frames, sigma2, s2):
        frames = np.asarray(frames, dtype=np.int64)
        n = self.n(frames) if callable(self.n) else np.full(frames.size, float(self.n))
        if self.inflation is not None:
            n = n / self.inflation(frames * self.dt)
        return msd_covariance(self.F, frames, max(sigma2, 1e-300), max(s2, 0.0), self.nd, n)


def _fit(frames, t, y, model, params, n_iter=6):
    """GLS slope and intercept (iterated: the covariance depends on them), (2, 2) pcov, chi2."""
    beta = np.asarray(params, dtype=float)
    for _ in range(n_iter):
        W, pcov, cf = _gls_weights(t, model.cov(frames, beta[0] * model.dt / model.nd,
                                                beta[1] / (2 * model.nd)))
        new = W @ y
        done = np.allclose(new, beta, rtol=1e-8, atol=0)
        beta = new
        if done:
            break
    r = y - beta[0] * t - beta[1]
    return beta, pcov, float(r @ sla.cho_solve(cf, r))


def flatness(frames, t, y, model, params) -> tuple[np.ndarray, np.ndarray]:
    """z-score of the running slope's departure from the plateau for every candidate start.

    For candidate c: (GLS slope over [3 t_c, stop]) - (GLS slope over [t_c, stop]), i.e. how
    much D moves when the start moves later, divided by its standard deviation under the
    covariance of ``model`` at ``params`` (slope, intercept), the correlation of the two
    estimates included.  Returns (t_c, z) for the candidates t_c <= stop / 2 whose later
    window still holds >= 5 points.
    """
    sig2, s2 = params[0] * model.dt / model.nd, max(params[1], 0.0) / (2 * model.nd)
    cov = model.cov(frames, sig2, s2)
    K = t.size
    tc, z = [], []
    for c in range(K):
        if t[c] > t[-1] / 2 or K - c < 5:
            break
        Wp, _, _ = _gls_weights(t[c:], cov[c:, c:])
        u = np.zeros(K)
        c3 = min(int(np.searchsorted(t, LATER * t[c])), K - 5)
        if c3 <= c:
            break
        Wl, _, _ = _gls_weights(t[c3:], cov[c3:, c3:])
        u[c3:] += Wl[0]
        u[c:] -= Wp[0]
        sd = np.sqrt(max(u @ cov @ u, 1e-300))
        tc.append(t[c])
        z.append((u @ y) / sd)
    return np.array(tc), np.array(z)


def _choose_start(tc, z, flat_z, late_z):
    """First candidate with |z| <= flat_z after the last one departing by more than late_z."""
    bad = np.flatnonzero(np.abs(z) > late_z)
    first = 0 if bad.size == 0 else int(bad[-1]) + 1
    if first >= z.size:
        return None  # D still moves by > late_z sigma at the last candidate
    ok = np.flatnonzero(np.abs(z[first:]) <= flat_z)
    # none within flat_z: the candidate closest to flat (all are within late_z)
    return float(tc[first + (ok[0] if ok.size else int(np.argmin(np.abs(z[first:]))))])


def fit_diffusion(
    msd: xr.DataArray,
    *,
    start: float | None = None,
    stop: float | None = None,
    n_points: int = N_POINTS,
    flat_z: float = FLAT_Z,
    min_significance: float = MIN_SIGNIFICANCE,
    correlated: bool = True,
    not_diffusive: str = "warn",
) -> xr.Dataset:
    """Diffusion coefficient D = slope / (2 n_dims) from an MSD, with its standard error.

    Parameters
    ----------
    msd
        Output of :func:`atomtwin.toolkit.dynamics.msd` (dims ``lag``, optionally ``species`` or
        ``block``).  With a ``block`` dim the estimate is the mean of per-block ordinary
        least-squares slopes and the error their standard deviation / sqrt(n_blocks).
        Otherwise: GLS with the random-walk covariance times the measured variance excess
        of correlated atoms (module docstring).
    start, stop
        Fit window in ps (default: the flat-slope rule of the module docstring).
    n_points
        At most this many lags (geometric + linear grid) enter the window search and the
        fit; the covariance accounts for their correlation, so more adds little.
    flat_z
        The window starts where the running slope departs from the plateau by at most
        this many of its standard deviations.
    min_significance
        D must exceed this many standard errors for the motion to count as diffusive.
    correlated
        Measure the excess variance of correlated atoms from the MSD's ``origin_var`` probes
        (default); ``False`` treats the atoms as independent walkers.
    not_diffusive
        When no diffusive regime exists: ``"warn"`` (keep the fitted numbers, warn),
        ``"nan"`` (D and D_err NaN, no warning: the result says so), ``"raise"``
        (:class:`~atomtwin.toolkit.errors.InputError`).

    Returns
    -------
    Dataset with ``D`` and ``D_err`` (Å^2/ps), ``intercept`` (Å^2), ``fit_start``,
    ``fit_stop`` (ps), ``chi2_red`` (GLS goodness of fit), ``beta`` (mean local exponent in
    the window), ``inflation`` (variance excess over independent walkers at the window's
    start, 1 = independent; D_err scales like its square root), ``diffusive`` (bool); attrs
    ``status`` ("diffusive" / "not diffusive"), ``reason``, ``window_rule``.
    """
    if not_diffusive not in ("warn", "nan", "raise"):
        raise InputError(f"not_diffusive={not_diffusive!r}; use 'warn', 'nan' or 'raise'.")
    kw = dict(start=start, stop=stop, n_points=n_points, flat_z=flat_z,
              min_significance=min_significance, correlated=correlated, not_diffusive=not_diffusive)
    if "species" in msd.dims:
        parts = [fit_diffusion(msd.sel(species=s).dropna("lag"), **kw) for s in msd["species"].values]
        out = xr.concat(parts, dim="species", combine_attrs="drop_conflicts")
        out.attrs["status"] = ("diffusive" if bool(out["diffusive"].all()) else "not diffusive")
        return out
    if "block" in msd.dims:
        return _fit_blocks(msd, **kw)
    lag = np.asarray(msd["lag"].values, dtype=float)
    y_all = np.asarray(msd.values, dtype=float)
    dt = float(msd.attrs.get("timestep_ps", lag[1] - lag[0] if lag.size > 1 else 1.0))
    n_frames = int(msd.attrs["n_frames"])
    n_dims = int(msd.attrs["n_dims"])
    n_atoms = int(msd.coords["n_atoms"].values) if "n_atoms" in msd.coords else int(msd.attrs["n_atoms"])
    lag_frames_all = np.rint(lag / dt).astype(np.int64)
    if "n_pairs" in msd.coords and msd.attrs.get("region"):
        pairs = np.asarray(msd["n_pairs"].values, dtype=float)

        def walkers(frames):
            return np.interp(frames, lag_frames_all, pairs) / (n_frames - frames)
    else:
        walkers = n_atoms
    rule = []
    if stop is None:
        stop = lag[-1] / 2.0 if lag[-1] > 0 else lag[-1]
        rule.append("stop=half the trajectory")
    stop_frame = int(np.floor(stop / dt + 1e-9))
    stop_frame = min(stop_frame, int(lag_frames_all[-1]))
    grid = _grid(max(stop_frame, 1), n_points)
    grid = grid[np.isin(grid, lag_frames_all)]
    t_g = grid * dt
    y_g = y_all[np.searchsorted(lag_frames_all, grid)]
    if grid.size < 5:
        raise InputError(
            f"too few frames for the fit: lags up to {stop:g} ps hold {grid.size} frame(s) of {dt:g} ps; "
            "need at least 5. Fix: run longer, store frames more often, or widen start=/stop=."
        )
    # preliminary slope and intercept: least squares over the second half of the window
    late = t_g >= t_g[-1] / 2
    params = np.polyfit(t_g[late], y_g[late], 1) if late.sum() >= 2 else np.polyfit(t_g, y_g, 1)
    params = np.array([max(params[0], 1e-12 * max(abs(y_g[-1]), 1e-300) / t_g[-1]), max(params[1], 0.0)])
    model = _Model(n_frames, n_dims, walkers, dt)
    R_info = (np.empty(0),) * 3
    if correlated:
        R_info = origin_inflation(msd, params[0] * dt / n_dims, params[1] / (2 * n_dims))
        model.inflation = _inflation_curve(*R_info, FLOOR * stop) if R_info[0].size else None
    reason = ""
    if start is None:
        tc, z = flatness(grid, t_g, y_g, model, params)
        keep = tc >= FLOOR * t_g[-1]
        tc, z = tc[keep], z[keep]
        start = _choose_start(tc, z, flat_z, LATE_Z) if tc.size else None
        if start is None:
            reason = (f"the running slope dMSD/dt keeps changing beyond {LATE_Z:g} sigma of its noise up "
                      f"to {t_g[-1] / 2:g} ps (half the window): no linear regime spanning a factor 2 "
                      "in time")
            start = t_g[0] if tc.size == 0 else float(tc[-1])
            rule.append("start=none found (not diffusive)")
        else:
            rule.append(f"start=first lag where the running slope is within {flat_z:g} sigma of the "
                        f"plateau and stays within {LATE_Z:g} sigma")
    w = (t_g >= start - 1e-9 * dt) & (t_g <= stop + 1e-9 * dt)
    if w.sum() < 5:
        raise InputError(
            f"too few frames for the fit: the window [{start:g}, {stop:g}] ps holds {int(w.sum())} lag(s) of "
            f"{dt:g} ps; need at least 5. Fix: run longer, store frames more often, or widen start=/stop=."
        )
    frames, t, y = grid[w], t_g[w], y_g[w]
    if model.inflation is not None:
        (params, _, _) = _fit(frames, t, y, model, params)
        R_info = origin_inflation(msd, max(params[0], 0.0) * dt / n_dims, max(params[1], 0.0) / (2 * n_dims))
        model.inflation = _inflation_curve(*R_info, start)
    (slope, icpt), pcov, chi2 = _fit(frames, t, y, model, params)
    chi2_red = chi2 / max(t.size - 2, 1)
    # a fit worse than its covariance predicts (time-correlated vibrations, a crystal's
    # bounded MSD) widens the error by the Birge ratio sqrt(chi2_red); never narrows it
    pcov = pcov * max(chi2_red, 1.0)
    D, D_err = slope / (2 * n_dims), np.sqrt(pcov[0, 0]) / (2 * n_dims)
    if not D > min_significance * D_err:  # the more basic finding: the MSD does not grow
        reason = (f"D = {D:.3g} ± {D_err:.2g} Å^2/ps is not {min_significance:g} standard errors above 0 "
                  f"over [{start:g}, {stop:g}] ps: the MSD does not grow linearly (a solid or a glass "
                  "on this time scale, or a run too short to resolve the motion)")
    tm, beta = local_exponent(lag, y_all - max(icpt, 0.0))
    inwin = (tm >= start) & (tm <= stop)
    infl = float(model.inflation(np.array([start]))[0]) if model.inflation is not None else 1.0
    out = _result(D, D_err, icpt, np.sqrt(pcov[1, 1]), start, stop, chi2_red,
                  float(beta[inwin].mean()) if inwin.any() else np.nan, t.size, "gls", "; ".join(rule),
                  msd.attrs, infl, reason)
    return _not_diffusive(out, not_diffusive, stacklevel=3)


def _not_diffusive(out: xr.Dataset, action: str, stacklevel: int) -> xr.Dataset:
    if bool(out["diffusive"]):
        return out
    msg = f"no diffusive regime{' for ' + out.attrs['species'] if out.attrs.get('species') else ''}: {out.attrs['reason']}."
    if action == "raise":
        raise InputError(msg + " Fix: run longer, or give start=/stop= to fit a window you trust.")
    if action == "warn":
        warnings.warn(msg + " D is reported anyway (diffusive=False); treat it as an upper bound "
                      "at best.", UserWarning, stacklevel=stacklevel + 1)
        return out
    out = out.copy()
    out["D"] = out["D"].copy(data=np.nan)
    out["D_err"] = out["D_err"].copy(data=np.nan)
    return out


def _result(D, D_err, icpt, icpt_err, t0, t1, chi2_red, beta, npts, method, rule, attrs, infl=1.0,
            reason="") -> xr.Dataset:
    return xr.Dataset(
        {
            "D": ((), D, {"units": "Å^2/ps", "long_name": "diffusion coefficient"}),
            "D_err": ((), D_err, {"units": "Å^2/ps", "long_name": "standard error of D"}),
            "intercept": ((), icpt, {"units": "Å^2"}),
            "intercept_err": ((), icpt_err, {"units": "Å^2"}),
            "fit_start": ((), t0, {"units": "ps"}),
            "fit_stop": ((), t1, {"units": "ps"}),
            "chi2_red": ((), chi2_red, {"units": "1"}),
            "beta": ((), beta, {"units": "1", "long_name": "mean local exponent in the window"}),
            "n_fit_points": ((), npts),
            "inflation": ((), infl, {"units": "1", "long_name": "MSD variance over the independent-walker "
                                     "model at the window start (N / N_eff)"}),
            "diffusive": ((), not reason),
        },
        attrs={"method": method, "window_rule": rule, "species": attrs.get("species", ""),
               "axes": attrs.get("axes", ""), "region": attrs.get("region", ""),
               "D_to_cm2_per_s": U.A2_PS_TO_CM2_S, "status": "not diffusive" if reason else "diffusive",
               "reason": reason},
    )


def _fit_blocks(msd: xr.DataArray, *, start, stop, n_points, flat_z, min_significance, correlated,
                not_diffusive) -> xr.Dataset:
    lag = np.asarray(msd["lag"].values, dtype=float)
    mean = msd.mean("block", keep_attrs=True)
    mean.attrs["n_atoms"] = int(msd.attrs["n_atoms"]) * int(msd.sizes["block"])
    if start is None or stop is None:  # the window of the pooled curve, by the same rule
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ref = fit_diffusion(mean.drop_vars("origin_var", errors="ignore"), start=start, stop=stop,
                                n_points=n_points, flat_z=flat_z, correlated=False)
        start, stop = float(ref.fit_start), float(ref.fit_stop)
    t0, t1 = start, stop
    sel = (lag >= t0) & (lag <= t1) & (lag > 0)
    if sel.sum() < 5:
        raise InputError(f"too few frames for the fit: the window [{t0:g}, {t1:g}] ps of each block holds "
                         f"{int(sel.sum())} lag(s); need at least 5. Fix: use fewer blocks or a longer run.")
    n_dims = int(msd.attrs["n_dims"])
    fits = np.array([np.polyfit(lag[sel], np.asarray(b)[sel], 1) for b in msd.transpose("block", "lag").values])
    nb = fits.shape[0]
    Ds = fits[:, 0] / (2 * n_dims)
    D, D_err = Ds.mean(), Ds.std(ddof=1) / np.sqrt(nb)
    reason = "" if D > min_significance * D_err else (
        f"D = {D:.3g} ± {D_err:.2g} Å^2/ps is not {min_significance:g} standard errors above 0 over "
        f"[{t0:g}, {t1:g}] ps: the MSD does not grow linearly")
    out = _result(D, D_err, fits[:, 1].mean(), fits[:, 1].std(ddof=1) / np.sqrt(nb), t0, t1, np.nan, np.nan,
                  int(sel.sum()), f"blocks({nb})", "window of the block-mean MSD", msd.attrs, np.nan, reason)
    return _not_diffusive(out, not_diffusive, stacklevel=4)


def diffusion(ds: xr.Dataset, species, *, method: str = "gls", n_blocks: int = 5,
              start: float | None = None, stop: float | None = None, not_diffusive: str = "nan",
              **msd_kwargs) -> xr.Dataset:
    """MSD then D ± error in one call (see :func:`atomtwin.toolkit.dynamics.msd`, :func:`fit_diffusion`).

    ``method="gls"`` (default; covariance-aware, correlated atoms) or ``"blocks"``
    (``n_blocks`` contiguous blocks, error from their scatter).  When no diffusive regime
    exists D and D_err are NaN and ``status`` says "not diffusive" with the reason
    (``not_diffusive="warn"`` keeps the numbers, ``"raise"`` raises).  Extra keywords go to
    :func:`msd`.
    """
    from atomtwin.toolkit.dynamics.msd import msd as _msd

    if method not in ("gls", "blocks"):
        raise InputError(f"method={method!r}; use 'gls' or 'blocks'.")
    m = _msd(ds, species, n_blocks=n_blocks if method == "blocks" else None, **msd_kwargs)
    return fit_diffusion(m, start=start, stop=stop, not_diffusive=not_diffusive)


def arrhenius(temperature, values, errors=None) -> xr.Dataset:
    """Weighted fit of value(T) = prefactor * exp(-Ea / (kB T)).

    Parameters
    ----------
    temperature
        (n,) temperatures in K (at least 2, distinct).
    values
        (n,) positive rates or diffusion coefficients (any unit; the prefactor has it).
    errors
        (n,) standard errors of ``values``; the fit of ln(value) against 1/(kB T) is then
        weighted by (value / error)^2 and the reported errors follow from those weights
        (``chi2_red`` tells whether the scatter agrees with them).  Without errors the fit is
        unweighted and the errors come from the residual scatter (needs n >= 3).

    Returns
    -------
    Dataset with ``Ea``, ``Ea_err`` (eV), ``prefactor``, ``prefactor_err``, ``chi2_red``,
    and ``fit`` (the curve at the given temperatures).
    """
    T = np.asarray(temperature, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    if T.size != v.size or T.size < 2 or np.unique(T).size < 2:
        raise InputError(f"an Arrhenius fit needs >= 2 distinct temperatures with one value each (got {T.size} T, {v.size} values).")
    if np.any(v <= 0) or np.any(T <= 0):
        raise InputError("Arrhenius fit: temperatures (K) and values must be positive.")
    x = -1.0 / (U.KB * T)
    y = np.log(v)
    X = np.column_stack([x, np.ones_like(x)])
    if errors is not None:
        e = np.asarray(errors, dtype=float).ravel()
        if e.shape != v.shape or np.any(e <= 0):
            raise InputError("Arrhenius fit: errors must be positive, one per value.")
        w = (v / e) ** 2
    else:
        if T.size < 3:
            raise InputError("an unweighted Arrhenius fit needs >= 3 temperatures to estimate its error; give errors=.")
        w = np.ones_like(v)
    XtW = X.T * w
    pcov = np.linalg.inv(XtW @ X)
    coef = pcov @ (XtW @ y)
    r = y - X @ coef
    dof = max(T.size - 2, 1)
    chi2_red = float((w * r * r).sum() / dof) if T.size > 2 else np.nan
    if errors is None:
        pcov = pcov * chi2_red
    Ea, lnA = coef
    Ea_err, lnA_err = np.sqrt(np.diag(pcov))
    A = np.exp(lnA)
    return xr.Dataset(
        {
            "Ea": ((), Ea, {"units": "eV", "long_name": "activation energy"}),
            "Ea_err": ((), Ea_err, {"units": "eV"}),
            "prefactor": ((), A, {"long_name": "Arrhenius prefactor (unit of the values)"}),
            "prefactor_err": ((), A * lnA_err),
            "chi2_red": ((), chi2_red),
            "fit": (("temperature",), A * np.exp(x * Ea)),
            "values": (("temperature",), v),
            "errors": (("temperature",), np.asarray(errors, dtype=float) if errors is not None else np.full_like(v, np.nan)),
        },
        coords={"temperature": ("temperature", T, {"units": "K"})},
        attrs={"weighted": int(errors is not None), "cov_Ea_lnA": float(pcov[0, 1])},
    )
