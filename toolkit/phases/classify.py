"""Phases from order-parameter vectors; boundaries in (P, T) with an uncertainty band.

- :func:`classify_phases` — unsupervised (k-means or Gaussian mixture on standardised
  features) or by user criteria (``{"solid": "q6_bar > 0.3", "liquid": "q6_bar <= 0.3"}``);
- :func:`phase_boundary` — a logistic-regression classifier in (P, T) between two phases;
  the boundary T_b(P) where both are equally likely, with a bootstrap band;
- :func:`clausius_clapeyron` — dT/dP along a boundary with its bootstrap error;
  :func:`clapeyron_slope` — the thermodynamic dT/dP = T Δv / Δh for comparison;
- :func:`hysteresis` — transition temperatures of heating against cooling ramps.
"""

from __future__ import annotations

import operator
import re

import numpy as np
import xarray as xr
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}
_COND = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*$")


def _criteria_mask(ds: xr.Dataset, text: str) -> xr.DataArray:
    mask = None
    for part in re.split(r"\band\b|&", text):
        m = _COND.match(part)
        if not m:
            raise InputError(f"criterion {part.strip()!r} is not 'feature op number' (op one of {list(_OPS)}); "
                             "join several with 'and'.")
        name, op, val = m.groups()
        if name not in ds:
            raise InputError(f"criterion uses '{name}', which is not a feature (have {sorted(ds.data_vars)}).")
        term = _OPS[op](ds[name], float(val))
        mask = term if mask is None else mask & term
    return mask


def classify_phases(
    results: xr.Dataset,
    *,
    method: str = "kmeans",
    features: list[str] | None = None,
    n_phases: int = 2,
    criteria: dict[str, str] | None = None,
    names: dict[str, list[str]] | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """Label each run with a phase from its order-parameter vector.

    Parameters
    ----------
    results
        Dataset of per-run features (e.g. ``EnsembleResult.grid``); any dims.
    method
        ``"kmeans"``, ``"gmm"`` (Gaussian mixture) or ``"criteria"``.
    features
        Feature names for clustering (default: q6_bar, diffusion, lindemann when present).
        They are standardised (zero mean, unit variance) first.
    n_phases
        Number of clusters.
    criteria
        ``{label: "feature op value [and ...]"}``, first match wins (method="criteria").
    names
        ``{feature: [label, ...]}``: name the clusters in ascending order of that feature's
        cluster mean, e.g. ``{"q6_bar": ["liquid", "solid"]}``; default ``phase0``...
    seed
        For the clustering's initialisation.

    Returns
    -------
    DataArray of str with the dims of ``results``: the phase of each run; ``""`` where the
    run failed (NaN features), so failed runs never enter a phase.
    """
    if criteria is not None or method == "criteria":
        if not criteria:
            raise InputError("method 'criteria' needs criteria={label: 'feature > value'}.")
        out = xr.full_like(results[next(iter(results.data_vars))], "", dtype=object)
        for label, text in reversed(list(criteria.items())):
            out = xr.where(_criteria_mask(results, text), label, out)
        return out.astype(str).rename("phase")
    if features is None:
        features = [f for f in ("q6_bar", "diffusion", "lindemann") if f in results]
    missing = [f for f in features if f not in results]
    if missing:
        raise InputError(f"features {missing} are not in the results (have {sorted(results.data_vars)}).")
    stacked = results[features].to_array("feature").stack(run=[d for d in results[features[0]].dims])
    X = np.asarray(stacked.transpose("run", "feature").values, dtype=float)
    ok = np.all(np.isfinite(X), axis=1)
    if ok.sum() < n_phases:
        raise InputError(f"only {ok.sum()} runs have finite features; cannot form {n_phases} phases.")
    Z = (X[ok] - X[ok].mean(0)) / np.where(X[ok].std(0) > 0, X[ok].std(0), 1.0)
    if method == "kmeans":
        from sklearn.cluster import KMeans

        lab = KMeans(n_clusters=n_phases, n_init=10, random_state=seed).fit_predict(Z)
    elif method == "gmm":
        from sklearn.mixture import GaussianMixture

        lab = GaussianMixture(n_components=n_phases, random_state=seed, n_init=3).fit_predict(Z)
    else:
        raise InputError(f"method {method!r} unknown; use 'kmeans', 'gmm' or 'criteria'.")
    label_names = [f"phase{k}" for k in range(n_phases)]
    if names:
        (feat, ordered), = names.items()
        if feat not in features:
            raise InputError(f"names keyed on '{feat}', which is not among the features {features}.")
        if len(ordered) != n_phases:
            raise InputError(f"names[{feat!r}] has {len(ordered)} labels for {n_phases} phases.")
        col = X[ok][:, features.index(feat)]
        means = [col[lab == k].mean() for k in range(n_phases)]
        rank = np.argsort(means)
        label_names = [""] * n_phases
        for r, k in enumerate(rank):
            label_names[k] = ordered[r]
    full = np.full(X.shape[0], "", dtype=object)
    full[ok] = [label_names[k] for k in lab]
    out = xr.DataArray(full.astype(str), dims=("run",), coords=stacked.coords["run"].coords).unstack("run")
    return out.transpose(*results[features[0]].dims).rename("phase")


def _design(P, T, scale, degree):
    p = (np.asarray(P) - scale[0]) / scale[1]
    t = (np.asarray(T) - scale[2]) / scale[3]
    cols = [p, t]
    if degree >= 2:
        cols += [p * p, p * t, t * t]
    if degree >= 3:
        cols += [p**3, p * p * t, p * t * t, t**3]
    return np.stack(cols, axis=-1)


def _boundary_curve(model, scale, degree, p_grid, t_grid):
    P, T = np.meshgrid(p_grid, t_grid, indexing="ij")
    prob = model.predict_proba(_design(P.ravel(), T.ravel(), scale, degree))[:, 1].reshape(P.shape)
    out = np.full(p_grid.size, np.nan)
    for a in range(p_grid.size):
        d = prob[a] - 0.5
        cross = np.flatnonzero(np.sign(d[:-1]) != np.sign(d[1:]))
        if cross.size:
            k = cross[0]
            out[a] = t_grid[k] + (t_grid[k + 1] - t_grid[k]) * d[k] / (d[k] - d[k + 1])
    return out


def phase_boundary(
    pressure,
    temperature,
    phase,
    phases: tuple[str, str] | None = None,
    *,
    degree: int = 1,
    C: float = 10.0,
    n_boot: int = 200,
    level: float = 0.95,
    p_grid=None,
    seed: int = 0,
) -> xr.Dataset:
    """Boundary T_b(P) between two phases from labelled runs, with a bootstrap band.

    A logistic regression on polynomial features of the standardised (P, T) (``degree`` 1:
    a straight line; 2: a conic) gives the probability of the second phase; the boundary
    is where it is 1/2.  The band: the ``level`` percentile interval of T_b(P) over
    ``n_boot`` refits on runs resampled with replacement (it reflects the grid spacing and
    mislabelled runs near the boundary).

    Parameters
    ----------
    pressure, temperature, phase
        Arrays of one shape (GPa, K, labels), or DataArrays (``phase`` from
        :func:`classify_phases` on a (pressure, temperature) grid: then pass
        ``pressure=None, temperature=None``).
    phases
        The two labels (low-T side first is customary); default the two most frequent.

    Returns
    -------
    Dataset on ``pressure`` (GPa): ``temperature`` (K, the boundary), ``lower``/``upper``
    (K, the band), ``boot`` (bootstrap, pressure) curves; attrs ``phases``, ``level``.
    """
    from sklearn.linear_model import LogisticRegression

    if pressure is None or temperature is None:
        P, T = xr.broadcast(phase["pressure"], phase["temperature"])
        pressure, temperature = P.values, T.values
    lab = np.asarray(phase).astype(str).ravel()
    P = np.asarray(pressure, dtype=float).ravel()
    T = np.asarray(temperature, dtype=float).ravel()
    if not (P.size == T.size == lab.size):
        raise InputError(f"pressure, temperature and phase differ in size ({P.size}, {T.size}, {lab.size}).")
    if phases is None:
        vals, counts = np.unique(lab[lab != ""], return_counts=True)
        if vals.size < 2:
            raise InputError(f"need two phases to draw a boundary, found {list(vals)}.")
        phases = tuple(vals[np.argsort(-counts)][:2])
    keep = np.isin(lab, phases)
    P, T, y = P[keep], T[keep], (lab[keep] == phases[1]).astype(int)
    if y.min() == y.max():
        raise InputError(f"all runs are '{phases[y[0]]}': no boundary inside the sampled (P, T) range.")
    scale = (P.mean(), P.std() or 1.0, T.mean(), T.std() or 1.0)
    p_grid = np.linspace(P.min(), P.max(), 25) if p_grid is None else np.asarray(p_grid, dtype=float)
    t_grid = np.linspace(T.min(), T.max(), 400)

    def fit(Pi, Ti, yi):
        return LogisticRegression(C=C, max_iter=2000).fit(_design(Pi, Ti, scale, degree), yi)

    centre = _boundary_curve(fit(P, T, y), scale, degree, p_grid, t_grid)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, y.size, y.size)
        if y[idx].min() == y[idx].max():
            continue
        boots.append(_boundary_curve(fit(P[idx], T[idx], y[idx]), scale, degree, p_grid, t_grid))
    boots = np.array(boots)
    a = (1 - level) / 2
    lo = np.nanquantile(boots, a, axis=0)
    hi = np.nanquantile(boots, 1 - a, axis=0)
    return xr.Dataset(
        {
            "temperature": (("pressure",), centre, {"units": "K"}),
            "lower": (("pressure",), lo, {"units": "K"}),
            "upper": (("pressure",), hi, {"units": "K"}),
            "boot": (("bootstrap", "pressure"), boots, {"units": "K"}),
        },
        coords={"pressure": ("pressure", p_grid, {"units": "GPa"})},
        attrs={"phases": list(phases), "level": level, "degree": degree},
    )


def clausius_clapeyron(boundary: xr.Dataset, p_range: tuple[float, float] | None = None) -> dict:
    """dT/dP (K/GPa) along a boundary from :func:`phase_boundary`, with its error.

    The slope of a straight-line fit of T_b(P) over ``p_range`` (default all); the error
    is the standard deviation of the same fit over the bootstrap curves.
    """
    P = boundary["pressure"].values
    sel = np.ones(P.size, bool) if p_range is None else (P >= p_range[0]) & (P <= p_range[1])

    def slope(t):
        ok = sel & np.isfinite(t)
        return np.polyfit(P[ok], t[ok], 1)[0] if ok.sum() >= 2 else np.nan

    s = slope(boundary["temperature"].values)
    bs = np.array([slope(b) for b in boundary["boot"].values])
    return {"dT_dP": float(s), "error": float(np.nanstd(bs, ddof=1)) if np.isfinite(bs).sum() > 1 else np.nan,
            "units": "K/GPa"}


def clapeyron_slope(temperature: float, delta_volume: float, delta_enthalpy: float) -> float:
    """Thermodynamic Clausius–Clapeyron slope dT/dP = T Δv / Δh in K/GPa.

    ``temperature`` K; ``delta_volume`` Å^3 per atom and ``delta_enthalpy`` eV per atom,
    both (high-T phase) − (low-T phase).
    """
    if delta_enthalpy == 0:
        raise InputError("delta_enthalpy is zero: no first-order transition to apply Clapeyron to.")
    return float(temperature * delta_volume * U.GPA_TO_EV_A3 / delta_enthalpy)


def _transition(temps: np.ndarray, labels: np.ndarray, low: str, high: str, direction: str) -> float:
    """Midpoint between the last step in the starting phase and the first in the other."""
    order = np.argsort(temps) if direction == "heating" else np.argsort(-temps)
    t, lab = temps[order], labels[order]
    start, end = (low, high) if direction == "heating" else (high, low)
    for k in range(1, t.size):
        if lab[k - 1] == start and lab[k] == end:
            return float(0.5 * (t[k - 1] + t[k]))
    return np.nan


def hysteresis(ramps: dict[str, xr.Dataset], classify, low: str = "solid", high: str = "liquid") -> xr.Dataset:
    """Transition temperatures of heating and cooling ramps, and their difference.

    Parameters
    ----------
    ramps
        ``EnsembleResult.ramps`` ({label: Dataset on ``step`` with a ``temperature`` coord}).
    classify
        ``f(Dataset) -> DataArray of labels`` (e.g. ``functools.partial(classify_phases,
        method="criteria", criteria=...)``).
    low, high
        Labels of the low- and high-temperature phases.

    Returns
    -------
    Dataset on ``pressure``: ``T_heating`` (superheating limit), ``T_cooling``
    (undercooling limit), ``width`` = T_heating − T_cooling (K).
    """
    rows: dict[float, dict] = {}
    for ds in ramps.values():
        lab = np.asarray(classify(ds)).astype(str)
        direction = ds.attrs["direction"]
        T = ds["temperature"].values
        ok = ds["status"].values == "ok"
        tt = _transition(T[ok], lab[ok], low, high, direction)
        rows.setdefault(float(ds.attrs["pressure"]), {})[direction] = tt
    P = np.array(sorted(rows))
    heat = np.array([rows[p].get("heating", np.nan) for p in P])
    cool = np.array([rows[p].get("cooling", np.nan) for p in P])
    return xr.Dataset(
        {"T_heating": (("pressure",), heat, {"units": "K"}),
         "T_cooling": (("pressure",), cool, {"units": "K"}),
         "width": (("pressure",), heat - cool, {"units": "K"})},
        coords={"pressure": ("pressure", P, {"units": "GPa"})},
    )
