"""P–T phase diagram: regions, runs coloured by phase, boundaries with their band."""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure


def plot_phase_diagram(
    phase: xr.DataArray,
    boundaries: list[xr.Dataset] | xr.Dataset | None = None,
    *,
    ax=None,
    coexistence: xr.Dataset | None = None,
    colors: dict[str, str] | None = None,
    regions: bool = True,
):
    """Draw a P–T phase diagram (T on x, P on y).

    Parameters
    ----------
    phase
        Labels on a (pressure, temperature) grid (:func:`atomtwin.toolkit.phases.classify_phases`);
        ``""`` (failed runs) are drawn as crosses.
    boundaries
        Output(s) of :func:`atomtwin.toolkit.phases.phase_boundary`: line and shaded band.
    coexistence
        ``EnsembleResult.coexistence``: measured melting points with error bars.
    regions
        Shade each phase's region (nearest run) behind the points.

    Returns
    -------
    (Figure, Axes)
    """
    if ax is None:
        fig, ax = new_figure("single", aspect=0.8)
    else:
        fig = ax.figure
    labels = [x for x in dict.fromkeys(np.asarray(phase.values).ravel().tolist()) if x]
    colors = colors or {lab: PALETTE[k % len(PALETTE)] for k, lab in enumerate(sorted(labels))}
    P, T = xr.broadcast(phase["pressure"], phase["temperature"])
    p, t, lab = P.values.ravel(), T.values.ravel(), np.asarray(phase.values).astype(str).ravel()
    # 5 % margins so that the runs on the edge of the grid are drawn whole
    dt_, dp_ = 0.05 * ((t.max() - t.min()) or 1.0), 0.05 * ((p.max() - p.min()) or 1.0)
    t0, t1, p0, p1 = t.min() - dt_, t.max() + dt_, p.min() - dp_, p.max() + dp_
    if regions and len(labels) > 1 and p.size > 3:
        from scipy.interpolate import NearestNDInterpolator

        ok = lab != ""
        codes = np.array([labels.index(x) if x else -1 for x in lab])
        tt, pp = np.meshgrid(np.linspace(t0, t1, 200), np.linspace(p0, p1, 200))
        sx, sy = (t.max() - t.min()) or 1.0, (p.max() - p.min()) or 1.0
        f = NearestNDInterpolator(np.c_[t[ok] / sx, p[ok] / sy], codes[ok])
        from matplotlib.colors import ListedColormap

        ax.pcolormesh(tt, pp, f(tt / sx, pp / sy), cmap=ListedColormap([colors[x] for x in labels]),
                      vmin=-0.5, vmax=len(labels) - 0.5, alpha=0.15, shading="auto", rasterized=True)
    for name in labels:
        m = lab == name
        ax.scatter(t[m], p[m], s=18, color=colors[name], edgecolor="k", linewidth=0.4, label=name, zorder=3)
    bad = lab == ""
    if bad.any():
        ax.scatter(t[bad], p[bad], marker="x", color="k", s=18, label="failed", zorder=3)
    if boundaries is not None:
        for b in [boundaries] if isinstance(boundaries, xr.Dataset) else boundaries:
            ax.fill_betweenx(b["pressure"], b["lower"], b["upper"], color="0.5", alpha=0.35, lw=0,
                             label=f"{int(round(100 * b.attrs.get('level', 0.95)))}% band")
            ax.plot(b["temperature"], b["pressure"], color="k", lw=1.2, label="boundary")
    if coexistence is not None:
        ok = coexistence["status"].values == "ok"
        ax.errorbar(coexistence["temperature"].values[ok], coexistence["pressure"].values[ok],
                    xerr=coexistence["temperature_sem"].values[ok], yerr=coexistence["pressure_sem"].values[ok],
                    fmt="D", ms=4, color="k", mfc="w", label="coexistence", zorder=4)
    ax.set_xlim(t0, t1)
    ax.set_ylim(p0, p1)
    ax.set_xlabel(axis_label("Temperature", "K"))
    ax.set_ylabel(axis_label("Pressure", "GPa"))
    ax.legend(loc="best", fontsize=6, frameon=False)
    return fig, ax
