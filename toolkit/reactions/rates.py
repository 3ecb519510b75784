"""Rates of bond-forming and bond-breaking events, with error bars.

Error bars of rates
-------------------
Two estimates are given and the larger is the one quoted (``rate_err``):

* Poisson: ``sqrt(n) / T`` (``sqrt(max(n, 1))``, so a run without events still states
  how small a rate it could have seen).  Exact when events are independent and the rate
  is constant, as for a thermally activated step observed for much longer than it lasts.
* Blocks: the run split into ``n_blocks`` equal time blocks, the standard error of the
  block rates.  It is larger than the Poisson error when events are correlated (a bond
  that recrosses, a cascade) or when the rate changes in time, as at a reacting
  interface that runs out of reactants; it is noisy with few blocks, hence not alone.

Breaking is first order (each bond breaks on its own), so it is also given as a rate
constant per bond, ``k = n_break / integral(N_bonds dt)`` (the maximum-likelihood rate of
an exponential lifetime with censoring), with the Poisson error ``k / sqrt(n)``.
Species lifetimes follow the same estimator: ``tau = integral(N_X dt) / n_X``, where
``n_X`` counts the instances of X whose set of atoms changed during the run.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S

__all__ = ["event_rates"]


def event_rates(events: xr.Dataset, bonds: xr.DataArray, n_blocks: int = 5) -> xr.Dataset:
    """Rates of bond forming and breaking per pair type, with Poisson and block errors.

    Parameters
    ----------
    events
        ``ReactionAnalysis.events``.
    bonds
        ``ReactionAnalysis.bonds`` (frame, pair), for the rate constant per bond.
    n_blocks
        Time blocks of the block error (at least 2).

    Returns
    -------
    Dataset over (pair, kind): ``n_events``; ``rate`` (events per ps in the whole system)
    with ``rate_err_poisson``, ``rate_err_blocks`` and ``rate_err`` (the larger);
    ``rate_constant`` (per bond per ps, breaking only: ``n / integral(N_bonds dt)``) and
    ``rate_constant_err`` (Poisson).  See the module docstring for the choice of errors.
    """
    t = np.asarray(bonds[S.TIME].values, dtype=float)
    pairs = [str(p) for p in bonds["pair"].values]
    kinds = ["form", "break"]
    T = float(t[-1] - t[0]) if t.size > 1 else 0.0
    nb = max(2, int(n_blocks))
    edges = np.linspace(0, t.size - 1, nb + 1).round().astype(int)  # frame indices of block ends
    block_T = t[edges[1:]] - t[edges[:-1]]
    shape = (len(pairs), 2)
    n = np.zeros(shape, np.int64)
    err_b = np.full(shape, np.nan)
    k = np.full(shape, np.nan)
    k_err = np.full(shape, np.nan)
    bv = np.asarray(bonds.values, dtype=float)
    expo = (bv[:-1] * np.diff(t)[:, None]).sum(axis=0) if t.size > 1 else np.zeros(len(pairs))
    ev_pair = np.asarray(events["pair"].values).astype(str)
    ev_kind = np.asarray(events["kind"].values).astype(str)
    ev_frame = np.asarray(events["frame"].values)
    for a, p in enumerate(pairs):
        for b, kd in enumerate(kinds):
            sel = (ev_pair == p) & (ev_kind == kd)
            n[a, b] = int(sel.sum())
            if t.size > 2 and (block_T > 0).all():
                # an event at frame f happened in the interval (f-1, f]
                blk = np.clip(np.searchsorted(edges, ev_frame[sel], side="left") - 1, 0, nb - 1)
                r_blk = np.bincount(blk, minlength=nb) / block_T
                err_b[a, b] = r_blk.std(ddof=1) / np.sqrt(nb)
            if kd == "break" and expo[a] > 0:
                k[a, b] = n[a, b] / expo[a]
                k_err[a, b] = np.sqrt(max(n[a, b], 1)) / expo[a]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = n / T if T > 0 else np.full(shape, np.nan)
        err_p = np.sqrt(np.maximum(n, 1)) / T if T > 0 else np.full(shape, np.nan)
    err = np.fmax(err_p, err_b)
    u = {"units": "1/ps"}
    return xr.Dataset(
        {
            "n_events": (("pair", "kind"), n),
            "rate": (("pair", "kind"), rate, u),
            "rate_err": (("pair", "kind"), err, u),
            "rate_err_poisson": (("pair", "kind"), err_p, u),
            "rate_err_blocks": (("pair", "kind"), err_b, u),
            "rate_constant": (("pair", "kind"), k, {"units": "1/ps per bond"}),
            "rate_constant_err": (("pair", "kind"), k_err, {"units": "1/ps per bond"}),
        },
        coords={"pair": pairs, "kind": kinds},
        attrs={"duration_ps": T, "n_blocks": nb},
    )
