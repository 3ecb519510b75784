"""Cross-correlation of events: does an event of kind B follow an event of kind A on the
same unit (polyanion, site, proton) within a time window more often than by chance?"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.errors import InputError


def event_cross_correlation(
    first_times,
    first_keys,
    second_times,
    second_keys,
    windows,
    *,
    duration: float,
    n_shuffles: int = 200,
    seed=None,
) -> xr.Dataset:
    """P(a B event of the same key within (0, window] after an A event) against chance.

    Parameters
    ----------
    first_times, first_keys
        Times (ps) and unit keys (e.g. the polyanion's centre index) of the A events
        (e.g. rotations).
    second_times, second_keys
        The same for the B events (e.g. proton hops, keyed by the group they leave).
    windows
        Delta t values (ps).
    duration
        Length of the trajectory (ps).
    n_shuffles
        Surrogates in which each key's B events are shifted in time by a random amount
        (circularly over ``duration``), which keeps each unit's B rate and clustering but
        breaks their timing relative to A.
    seed
        Seed or :class:`numpy.random.Generator` for the shifts.

    Returns
    -------
    Dataset over ``window``: ``p_observed``; ``p_poisson`` = mean over A events of
    1 - exp(-r_key window) (B of that key as a Poisson process at its observed rate);
    ``p_shuffled`` and ``p_shuffled_std`` from the surrogates; ``enhancement`` =
    p_observed / p_shuffled; ``z`` = (p_observed - p_shuffled) / p_shuffled_std.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ta, ka = np.asarray(first_times, float), np.asarray(first_keys)
    tb, kb = np.asarray(second_times, float), np.asarray(second_keys)
    w = np.atleast_1d(np.asarray(windows, float))
    if ta.size == 0:
        raise InputError("no A events (first_times is empty): nothing to correlate.")
    if duration <= 0:
        raise InputError(f"duration must be positive (ps), got {duration}.")
    keys = np.unique(np.concatenate([ka, kb]))
    ka_i, kb_i = np.searchsorted(keys, ka), np.searchsorted(keys, kb)

    def prob(tb_):
        # for each A event: the first B time of the same key strictly after it
        o = np.lexsort((tb_, kb_i))
        tbs, kbs = tb_[o], kb_i[o]
        comb = kbs * (2.0 * duration + 1.0) + tbs
        q = ka_i * (2.0 * duration + 1.0) + ta
        j = np.searchsorted(comb, q, side="right")
        nxt = np.full(ta.size, np.inf)
        idx = np.flatnonzero(j < comb.size)
        idx = idx[kbs[j[idx]] == ka_i[idx]]
        nxt[idx] = tbs[j[idx]] - ta[idx]
        return (nxt[:, None] <= w[None, :]).mean(axis=0)

    p_obs = prob(tb)
    rate = np.bincount(kb_i, minlength=keys.size) / duration
    p_poi = (1.0 - np.exp(-rate[ka_i][:, None] * w[None, :])).mean(axis=0)
    sh = np.empty((n_shuffles, w.size))
    for s in range(n_shuffles):
        shift = rng.uniform(0, duration, keys.size)[kb_i]
        sh[s] = prob(np.mod(tb + shift, duration))
    mu, sd = sh.mean(axis=0), sh.std(axis=0, ddof=1) if n_shuffles > 1 else np.full(w.size, np.nan)
    return xr.Dataset(
        {
            "p_observed": ("window", p_obs),
            "p_poisson": ("window", p_poi),
            "p_shuffled": ("window", mu),
            "p_shuffled_std": ("window", sd),
            "enhancement": (
                "window",
                np.divide(p_obs, mu, out=np.full(w.size, np.nan), where=mu > 0),
            ),
            "z": ("window", np.divide(p_obs - mu, sd, out=np.full(w.size, np.nan), where=sd > 0)),
        },
        coords={"window": ("window", w, {"units": "ps"})},
        attrs={"n_first": int(ta.size), "n_second": int(tb.size), "duration_ps": float(duration)},
    )
