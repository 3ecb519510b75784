"""Diffusion coefficients with honest uncertainties, and Arrhenius fits.

Estimator (generalised least squares with the MSD's own covariance)
--------------------------------------------------------------------
MSD points at different lags are strongly correlated (they share origins and, for
overlapping windows, the same steps), so an ordinary least-squares error bar on the slope
is far too small.  Like kinisi (McCluskey et al., J. Chem. Phys. 2024) we fit with the
covariance of the MSD itself, but we compute that covariance *exactly* for the model the
linear regime assumes: each coordinate of each atom is a random walk with step variance
sigma^2 per frame plus an independent vibrational offset of variance s^2 at every frame,

    x_k = W_k + e_k,      MSD_1D(m) = m sigma^2 + 2 s^2.

Displacements are Gaussian, so Cov(d^2, d'^2) = 2 Cov(d, d')^2, and Cov(d, d') of two
windows is sigma^2 x (their overlap) plus s^2 x (shared end points).  Summing over all
origin pairs of the all-origins estimator gives Cov(MSD_n, MSD_m) =
sigma^4 A_nm + sigma^2 s^2 B_nm + s^4 C_nm with A, B, C depending only on the frame count
and lags (cached).  Atoms and Cartesian components are independent: the covariance of the
reported MSD is that of one coordinate times n_dims / n_atoms.  sigma^2 and s^2 come from
the fit itself (iterated to convergence), and the slope's variance is (X^T Sigma^-1 X)^-1.

Linear-regime rule
------------------
The window ends at half the trajectory (every lag then has at least half the origins).
It starts at the first lag from which on the local exponent beta = dln(MSD - c)/dlnt, measured
between points a factor 1.5 apart in time, lies within 1 +- ``beta_tol`` (default 0.15)
and the local slope dMSD/dt (same pairs of points) stays within ``beta_tol`` (relative) of its
median over the second half of the window, up to the end of the window;
c = max(0, 2 MSD(dt) - MSD(2 dt)) is the vibrational offset 2 d s^2 of the model
extrapolated from the two shortest lags (it would otherwise bend the log-log slope; for
ballistic motion it is negative and clipped to 0).
Before that lag the motion is ballistic (beta -> 2) or caged (beta < 1).  Both conditions
matter in a liquid: after the ballistic regime the slope keeps falling while beta already
crosses 1 (liquid argon: starting at the first beta crossing biases D by +25 %), and the cage
offset keeps beta below 1 while the slope is already constant.
``start``/``stop`` override.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import scipy.linalg as sla
import xarray as xr
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError


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


def local_slope(lag: np.ndarray, values: np.ndarray, factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """dMSD/dt between points ``factor`` apart in time: (t_mid, slope) in Å^2/ps."""
    ok = lag > 0
    t, v = lag[ok], values[ok]
    j = np.searchsorted(t, t * factor)
    good = j < t.size
    i = np.flatnonzero(good)
    j = j[good]
    return np.sqrt(t[i] * t[j]), (v[j] - v[i]) / (t[j] - t[i])


def linear_window(lag, values, *, start=None, stop=None, beta_tol: float = 0.15) -> tuple[float, float, str]:
    """The fit window (ps) by the rule of the module docstring, and the rule used."""
    lag = np.asarray(lag, dtype=float)
    values = np.asarray(values, dtype=float)
    rule = []
    if stop is None:
        stop = lag[-1] / 2.0 if lag[-1] > 0 else lag[-1]
        rule.append("stop=half the trajectory")
    if start is None:
        # vibrational offset from the two shortest lags (exact for walk + noise), >= 0
        icpt = max(0.0, 2 * values[1] - values[2]) if values.size > 2 else 0.0
        w = lag <= stop
        tm, beta = local_exponent(lag[w], values[w] - icpt)
        # the diffusive regime is where beta STAYS near 1: in a liquid beta falls from 2
        # (ballistic) through 1 into a sub-diffusive cage dip before it settles, so the first
        # crossing of the band would start the fit inside the transient and bias D upward
        bad = np.flatnonzero(np.abs(beta - 1.0) > beta_tol)
        first_ok = 0 if bad.size == 0 else int(bad[-1]) + 1
        if beta.size and first_ok < beta.size:
            start = max(float(tm[first_ok]), float(lag[1]))
            # ... and where the local slope dMSD/dt has settled: a cage offset keeps beta
            # below 1 while the slope is already constant, and the end of the ballistic
            # transient keeps the slope high while beta already passes 1
            ts, slope = local_slope(lag[w], values[w])
            ref = np.median(slope[ts >= stop / 2]) if np.any(ts >= stop / 2) else np.nan
            if np.isfinite(ref) and ref > 0:
                off = np.flatnonzero(np.abs(slope / ref - 1.0) > beta_tol)
                if off.size and int(off[-1]) + 1 < ts.size:
                    start = max(start, float(ts[int(off[-1]) + 1]))
            rule.append(f"start=first lag from which |beta-1|<={beta_tol} and the local slope stays within "
                        f"{beta_tol:.0%} of its late-time median, up to stop")
        else:
            start = stop / 5.0
            warnings.warn(
                f"no diffusive regime found: the local exponent beta=dlnMSD/dlnt stays in "
                f"[{beta.min() if beta.size else np.nan:.2f}, {beta.max() if beta.size else np.nan:.2f}], never within "
                f"1+-{beta_tol}, up to {stop:g} ps. Fitting [{start:g}, {stop:g}] ps anyway; the motion is "
                "sub- or super-diffusive there, so run longer or give start=/stop= explicitly.",
                stacklevel=3,
            )
            rule.append("start=stop/5 (no diffusive regime found)")
    return float(start), float(stop), "; ".join(rule) or "given"


def _gls(t, y, cov_fn, n_iter=6):
    X = np.column_stack([t, np.ones_like(t)])
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    for _ in range(n_iter):
        cov = cov_fn(max(beta[0], 1e-300), max(beta[1], 0.0))
        cov = cov + np.eye(len(t)) * 1e-12 * np.trace(cov) / len(t)
        cf = sla.cho_factor(cov, lower=True)
        XtSi = sla.cho_solve(cf, X).T
        pcov = np.linalg.inv(XtSi @ X)
        new = pcov @ (XtSi @ y)
        if np.allclose(new, beta, rtol=1e-10, atol=0):
            beta = new
            break
        beta = new
    r = y - X @ beta
    chi2 = float(r @ sla.cho_solve(cf, r))
    return beta, pcov, chi2


def fit_diffusion(
    msd: xr.DataArray,
    *,
    start: float | None = None,
    stop: float | None = None,
    beta_tol: float = 0.15,
    n_points: int = 64,
) -> xr.Dataset:
    """Diffusion coefficient D = slope / (2 n_dims) from an MSD, with its standard error.

    Parameters
    ----------
    msd
        Output of :func:`atomtwin.toolkit.dynamics.msd` (dims ``lag``, optionally ``species`` or
        ``block``).  With a ``block`` dim the estimate is the mean of per-block ordinary
        least-squares slopes and the error their standard deviation / sqrt(n_blocks).
        Otherwise: generalised least squares with the exact random-walk covariance.
    start, stop
        Fit window in ps (default: the linear-regime rule of the module docstring).
    beta_tol
        Tolerance on the local exponent for the start of the linear regime.
    n_points
        At most this many lags (evenly spaced in the window) enter the fit; the
        covariance accounts for their correlation, so more adds little.

    Returns
    -------
    Dataset with ``D`` and ``D_err`` (Å^2/ps), ``intercept`` (Å^2), ``fit_start``,
    ``fit_stop`` (ps), ``chi2_red`` (GLS goodness of fit; >> 1 means the MSD is not that of
    a random walk in the window), ``beta`` (mean local exponent in the window).
    """
    if "species" in msd.dims:
        parts = [fit_diffusion(msd.sel(species=s).dropna("lag"), start=start, stop=stop,
                               beta_tol=beta_tol, n_points=n_points)
                 for s in msd["species"].values]
        return xr.concat(parts, dim="species", combine_attrs="drop_conflicts")
    if "block" in msd.dims:
        return _fit_blocks(msd, start=start, stop=stop, beta_tol=beta_tol)
    lag = np.asarray(msd["lag"].values, dtype=float)
    y_all = np.asarray(msd.values, dtype=float)
    dt = float(msd.attrs.get("timestep_ps", lag[1] - lag[0] if lag.size > 1 else 1.0))
    n_frames = int(msd.attrs["n_frames"])
    n_dims = int(msd.attrs["n_dims"])
    n_atoms = int(msd.coords["n_atoms"].values) if "n_atoms" in msd.coords else int(msd.attrs["n_atoms"])
    t0, t1, rule = linear_window(lag, y_all, start=start, stop=stop, beta_tol=beta_tol)
    frames = np.flatnonzero((lag >= t0 - 1e-9 * dt) & (lag <= t1 + 1e-9 * dt) & (lag > 0))
    if frames.size < 5:
        raise InputError(
            f"too few frames for the fit: the window [{t0:g}, {t1:g}] ps holds {frames.size} lag(s) of "
            f"{dt:g} ps; need at least 5. Fix: run longer, store frames more often, or widen start=/stop=."
        )
    if frames.size > n_points:
        frames = np.unique(np.round(np.linspace(frames[0], frames[-1], n_points)).astype(int))
    lag_frames = np.rint(lag[frames] / dt).astype(int)
    t, y = lag[frames], y_all[frames]
    if "n_pairs" in msd.coords and msd.attrs.get("region"):
        neff = np.asarray(msd["n_pairs"].values, dtype=float)[frames] / (n_frames - lag_frames)
    else:
        neff = n_atoms

    def cov_fn(slope, intercept):
        sigma2 = slope * dt / n_dims
        s2 = intercept / (2 * n_dims)
        return msd_covariance(n_frames, lag_frames, sigma2, s2, n_dims, neff)

    (slope, icpt), pcov, chi2 = _gls(t, y, cov_fn)
    tm, beta = local_exponent(lag, y_all)
    inwin = (tm >= t0) & (tm <= t1)
    out = _result(slope / (2 * n_dims), np.sqrt(pcov[0, 0]) / (2 * n_dims), icpt, np.sqrt(pcov[1, 1]),
                  t0, t1, chi2 / max(t.size - 2, 1), float(beta[inwin].mean()) if inwin.any() else np.nan,
                  t.size, "gls", rule, msd.attrs)
    return out


def _result(D, D_err, icpt, icpt_err, t0, t1, chi2_red, beta, npts, method, rule, attrs) -> xr.Dataset:
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
        },
        attrs={"method": method, "window_rule": rule, "species": attrs.get("species", ""),
               "axes": attrs.get("axes", ""), "region": attrs.get("region", ""),
               "D_to_cm2_per_s": U.A2_PS_TO_CM2_S},
    )


def _fit_blocks(msd: xr.DataArray, *, start, stop, beta_tol) -> xr.Dataset:
    lag = np.asarray(msd["lag"].values, dtype=float)
    mean = np.asarray(msd.mean("block").values)
    t0, t1, rule = linear_window(lag, mean, start=start, stop=stop, beta_tol=beta_tol)
    sel = (lag >= t0) & (lag <= t1) & (lag > 0)
    if sel.sum() < 5:
        raise InputError(f"too few frames for the fit: the window [{t0:g}, {t1:g}] ps of each block holds "
                         f"{int(sel.sum())} lag(s); need at least 5. Fix: use fewer blocks or a longer run.")
    n_dims = int(msd.attrs["n_dims"])
    fits = np.array([np.polyfit(lag[sel], np.asarray(b)[sel], 1) for b in msd.transpose("block", "lag").values])
    nb = fits.shape[0]
    Ds = fits[:, 0] / (2 * n_dims)
    return _result(Ds.mean(), Ds.std(ddof=1) / np.sqrt(nb), fits[:, 1].mean(), fits[:, 1].std(ddof=1) / np.sqrt(nb),
                   t0, t1, np.nan, np.nan, int(sel.sum()), f"blocks({nb})", rule, msd.attrs)


def diffusion(ds: xr.Dataset, species, *, method: str = "gls", n_blocks: int = 5,
              start: float | None = None, stop: float | None = None, **msd_kwargs) -> xr.Dataset:
    """MSD then D ± error in one call (see :func:`atomtwin.toolkit.dynamics.msd`, :func:`fit_diffusion`).

    ``method="gls"`` (default; covariance-aware) or ``"blocks"`` (``n_blocks`` contiguous
    blocks, error from their scatter).  Extra keywords go to :func:`msd`.
    """
    from atomtwin.toolkit.dynamics.msd import msd as _msd

    if method not in ("gls", "blocks"):
        raise InputError(f"method={method!r}; use 'gls' or 'blocks'.")
    m = _msd(ds, species, n_blocks=n_blocks if method == "blocks" else None, **msd_kwargs)
    return fit_diffusion(m, start=start, stop=stop)


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
