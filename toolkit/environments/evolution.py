"""Evolution of environment labels: phase fractions and spatial profiles against time,
interphase thickness and its growth law."""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.environments.pipeline import CLUSTER, NOT_CENTRE
from atomtwin.toolkit.errors import InputError

AXES = {"x": 0, "y": 1, "z": 2}


def _clusters(lab: np.ndarray, clusters) -> np.ndarray:
    if clusters is not None:
        return np.asarray(list(clusters))
    return np.unique(lab[lab != NOT_CENTRE])


def phase_fractions(labels: xr.DataArray, clusters=None) -> xr.DataArray:
    """Fraction of the classified atoms in each cluster, per frame.

    Parameters
    ----------
    labels
        ``(frame, atom)`` labels (``-2`` = not a centre, excluded; ``-1`` = noise, kept as
        its own cluster).
    clusters
        Clusters to report (default: all present).

    Returns
    -------
    DataArray ``(frame, cluster)``; each row sums to 1 over all clusters.
    """
    lab = np.asarray(labels.values)
    ks = _clusters(lab, clusters)
    n = np.maximum((lab != NOT_CENTRE).sum(axis=1), 1)
    frac = np.stack([(lab == k).sum(axis=1) / n for k in ks], axis=1)
    coords = {CLUSTER: ks}
    if S.TIME in labels.coords:
        coords[S.TIME] = labels[S.TIME]
    return xr.DataArray(
        frac,
        dims=(S.FRAME, CLUSTER),
        coords=coords,
        name="fraction",
        attrs={"units": "1", "long_name": "phase fraction"},
    )


def spatial_profiles(
    ds: xr.Dataset, labels: xr.DataArray, *, axis: str = "z", n_bins: int = 50, clusters=None
) -> xr.DataArray:
    """Local fraction of each cluster in slabs along a cell axis, per frame.

    Positions are binned by their fractional coordinate along lattice vector ``axis`` (the
    interface normal of a slab cell), wrapped into [0, 1); ``position`` is the bin centre
    in Å (fractional coordinate x the cell height along that axis, of frame 0).

    Returns
    -------
    DataArray ``(frame, cluster, position)``: fraction of the classified atoms of each bin
    that are in the cluster (NaN for an empty bin).
    """
    from atomtwin.toolkit.geometry import cell_array, to_fractional

    S.validate(ds, require=(S.CELL,))
    if axis not in AXES:
        raise InputError(f"axis must be one of {list(AXES)}, got {axis!r}.")
    if n_bins < 1:
        raise InputError(f"n_bins must be >= 1, got {n_bins}.")
    lab = np.asarray(labels.values)
    if lab.shape != (ds.sizes[S.FRAME], ds.sizes[S.ATOM]):
        raise InputError(
            f"labels have shape {lab.shape}; the trajectory has "
            f"{(ds.sizes[S.FRAME], ds.sizes[S.ATOM])} (frame, atom)."
        )
    ks = _clusters(lab, clusters)
    ax = AXES[axis]
    cell = cell_array(ds)
    frac = to_fractional(np.asarray(ds[S.POSITIONS].values, float), cell)[..., ax] % 1.0
    b = np.minimum((frac * n_bins).astype(int), n_bins - 1)
    out = np.full((lab.shape[0], ks.size, n_bins), np.nan)
    for f in range(lab.shape[0]):
        ok = lab[f] != NOT_CENTRE
        tot = np.bincount(b[f, ok], minlength=n_bins).astype(float)
        for i, k in enumerate(ks):
            cnt = np.bincount(b[f, lab[f] == k], minlength=n_bins)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f, i] = np.where(tot > 0, cnt / tot, np.nan)
    c0 = cell[0]
    others = [i for i in range(3) if i != ax]
    height = abs(np.linalg.det(c0)) / np.linalg.norm(np.cross(c0[others[0]], c0[others[1]]))
    pos = (np.arange(n_bins) + 0.5) / n_bins * height
    coords = {CLUSTER: ks, "position": ("position", pos, {"units": "Å"})}
    if S.TIME in labels.coords:
        coords[S.TIME] = labels[S.TIME]
    return xr.DataArray(
        out,
        dims=(S.FRAME, CLUSTER, "position"),
        coords=coords,
        name="profile",
        attrs={"units": "1", "axis": axis, "long_name": "local cluster fraction"},
    )


def interphase_thickness(
    profiles: xr.DataArray,
    clusters,
    *,
    method: str = "integral",
    threshold: float = 0.5,
    n_interfaces: int = 1,
) -> xr.DataArray:
    """Thickness (Å) of the region occupied by ``clusters`` (the interphase), per frame.

    ``"integral"``: the equivalent thickness ``sum_z phi(z) dz`` of the local fraction phi
    summed over ``clusters`` (robust to noise); ``"threshold"``: the total length of bins
    where phi > ``threshold``.  Divided by ``n_interfaces`` (2 in a periodic slab cell
    holding two equivalent interfaces).
    """
    if method not in ("integral", "threshold"):
        raise InputError(f"method must be 'integral' or 'threshold', got {method!r}.")
    clusters = [clusters] if np.isscalar(clusters) else list(clusters)
    missing = [c for c in clusters if c not in profiles[CLUSTER].values]
    if missing:
        raise InputError(
            f"clusters {missing} not in the profiles (they have {profiles[CLUSTER].values.tolist()})."
        )
    phi = profiles.sel({CLUSTER: clusters}).sum(CLUSTER, skipna=False).fillna(0.0)
    pos = profiles["position"].values
    dz = pos[1] - pos[0] if pos.size > 1 else 2 * pos[0]
    h = (
        (phi * dz).sum("position")
        if method == "integral"
        else ((phi > threshold) * dz).sum("position")
    )
    h = h / n_interfaces
    h.attrs = {"units": "Å", "long_name": "interphase thickness", "method": method}
    return h.rename("thickness")


def fit_growth_law(thickness: xr.DataArray, *, time=None) -> xr.Dataset:
    """Fit ``h(t) = A t^n`` by least squares in log-log space (points with t > 0, h > 0).

    Returns
    -------
    Dataset with ``n``, ``n_err`` (1 sigma, from the residual scatter), ``prefactor`` A
    (Å/ps^n) and its error, and ``fit`` (frame) the fitted curve.  n = 1/2 is diffusion
    limited growth, n = 1 interface-reaction limited.
    """
    h = np.asarray(thickness.values, float)
    t = np.asarray(thickness[S.TIME].values if time is None else time, float)
    ok = (t > 0) & (h > 0) & np.isfinite(h)
    if ok.sum() < 3:
        raise InputError(
            f"a growth-law fit needs at least 3 frames with t > 0 and thickness > 0 "
            f"(got {int(ok.sum())}). Fix: use more frames or check the interphase clusters."
        )
    x, y = np.log(t[ok]), np.log(h[ok])
    A = np.vstack([np.ones_like(x), x]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    dof = max(1, x.size - 2)
    cov = np.linalg.inv(A.T @ A) * (resid @ resid) / dof
    n, logA = float(coef[1]), float(coef[0])
    fit = np.where(t > 0, np.exp(logA) * np.clip(t, 1e-300, None) ** n, np.nan)
    return xr.Dataset(
        {
            "n": ((), n, {"units": "1"}),
            "n_err": ((), float(np.sqrt(cov[1, 1])), {"units": "1"}),
            "prefactor": ((), float(np.exp(logA)), {"units": "Å/ps^n"}),
            "prefactor_err": ((), float(np.exp(logA) * np.sqrt(cov[0, 0])), {"units": "Å/ps^n"}),
            "fit": (S.FRAME, fit, {"units": "Å"}),
        },
        coords={S.TIME: (S.FRAME, t, {"units": "ps"})},
    )
