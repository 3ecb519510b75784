"""The learning curve of an active-learning run as a figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_learning_curve"]


def _col(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array(
        [float(r.get(key, math.nan)) if r.get(key) not in (None, "") else math.nan for r in rows]
    )


def plot_learning_curve(
    curve: list[dict[str, Any]], calls: list[dict[str, Any]], path: str | Path, fig=None
) -> Path:
    """Force error and uncertainty against the number of reference calls.

    Points: each call's calibrated trigger uncertainty and the force RMSE of the model on
    that frame measured before it was added; line: the validation force RMSE after each
    round (when validation frames were given).  Log scale, eV/Å.
    """
    from atomtwin.toolkit.plot import PALETTE, axis_label, new_figure, save

    fig, ax = new_figure("single", aspect=0.75) if fig is None else (fig, fig.axes[0])
    idx = _col(calls, "call")
    sig = _col(calls, "sigma")
    err = _col(calls, "error_before_forces_rmse")
    ok = np.isfinite(err)
    ax.plot(idx[ok] + 1, err[ok], "o", ms=3, color=PALETTE[1], label="error before adding")
    fin = np.isfinite(sig) & (sig > 0)
    ax.plot(idx[fin] + 1, sig[fin], "^", ms=3, mfc="none", color=PALETTE[0], label="trigger σ")
    n = _col(curve, "calls")
    val = _col(curve, "val_forces_rmse")
    if np.isfinite(val).any():
        ax.plot(
            np.maximum(n[np.isfinite(val)], 1),
            val[np.isfinite(val)],
            "-",
            color=PALETTE[2],
            label="validation RMSE",
        )
    failed = [r for r in calls if not r.get("ok")]
    if failed:
        lo = np.nanmin(np.r_[err[ok], sig[fin], 1e-3])
        ax.plot(
            [float(r["call"]) + 1 for r in failed],
            [lo] * len(failed),
            "x",
            ms=4,
            color=PALETTE[7],
            label="failed call",
        )
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("reference calls")
    ax.set_ylabel(axis_label("force error, σ", "eV/Å"))
    ax.legend(fontsize="small", frameon=False, loc="best")
    return save(fig, Path(path))[0]
