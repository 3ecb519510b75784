"""Figures of the light-induced-order study (:mod:`atomtwin.engines.tdscha.light_order`)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure

#: 1 V/Å = 100 MV/cm
MV_PER_CM = 100.0


def plot_light_order(
    quantum: list[xr.Dataset],
    classical: list[xr.Dataset],
    *,
    x_min: float | None = None,
    note: str | None = None,
    width: str | float = "double",
):
    """Soft-mode polarization and fluctuation against time, TD-SCHA beside classical MD.

    One column per pulse amplitude: top, the mean soft centroid <s> (Å); bottom, the soft
    mode's spread sqrt(<ds²>) (Å).  The pulse envelope is shaded.

    Parameters
    ----------
    quantum, classical
        Results of :func:`~atomtwin.engines.tdscha.light_order.pump_tdscha` and
        :func:`~atomtwin.engines.tdscha.light_order.pump_classical`, one per amplitude, in
        the same order (attrs ``pulse_amplitude``, V/Å).
    x_min
        Classical minimum of the soft mode, Å, drawn as dotted lines.
    note
        A line of text (e.g. the parameters) written above the panels.

    Returns
    -------
    (Figure, Axes (2, n))
    """
    k = len(quantum)
    fig, axes = new_figure(
        width, aspect=0.52, nrows=2, ncols=k, sharex=True, sharey="row", squeeze=False
    )
    for j, (q, c) in enumerate(zip(quantum, classical, strict=True)):
        top, bot = axes[0, j], axes[1, j]
        tq, tc = q.time.values, c.time.values
        amp = float(q.attrs.get("pulse_amplitude", np.nan))
        env = np.abs(q.field.values[:, 0]) if "field" in q else None
        for ax in (top, bot):
            if env is not None and env.max() > 0:
                on = env > 0.05 * env.max()
                ax.axvspan(tq[on].min(), tq[on].max(), color="0.88", lw=0, zorder=0)
        top.plot(tq, q.polarization.values, color=PALETTE[0], lw=1.0, label="TD-SCHA")
        top.plot(
            tc,
            c.polarization.values,
            color=PALETTE[1],
            lw=1.0,
            ls="--",
            label="classical MD (ensemble)",
        )
        bot.plot(tq, np.sqrt(q.soft_variance.values), color=PALETTE[0], lw=1.0)
        bot.plot(tc, np.sqrt(c.soft_variance.values), color=PALETTE[1], lw=1.0, ls="--")
        bot.axhline(np.sqrt(q.soft_variance.values[0]), color="0.4", lw=0.6, ls=":")
        if x_min:
            for s in (x_min, -x_min):
                top.axhline(s, color="0.4", lw=0.6, ls=":")
        top.axhline(0.0, color="0.6", lw=0.5)
        top.set_title(f"$E_0$ = {amp * MV_PER_CM:.2g} MV/cm", fontsize=8)
        bot.set_xlabel(axis_label("time", "ps"))
    axes[0, 0].set_ylabel(axis_label(r"soft centroid $\langle s\rangle$", "Å"))
    axes[1, 0].set_ylabel(axis_label(r"spread $\sqrt{\langle \delta s^2\rangle}$", "Å"))
    if note:
        fig.suptitle(note, fontsize=7)
    axes[0, 0].legend(loc="lower left", frameon=False, fontsize=7)
    return fig, axes


def plot_pulse_map(scan: xr.Dataset, *, ax=None, width: str | float = "single"):
    """Late |<s>| (Å) over pulse carrier frequency (THz) and peak field (MV/cm).

    Cells where the centroid stayed in one well (``scan.polar``) are marked with a dot; the
    dashed line is the hard mode's SCHA frequency (``scan.attrs['hard_thz']``).

    Returns
    -------
    (Figure, Axes)
    """
    if ax is None:
        fig, ax = new_figure(width, aspect=0.8)
    else:
        fig = ax.figure
    f = scan.frequency.values
    a = scan.amplitude.values * MV_PER_CM
    z = np.abs(scan.late_polarization.values)
    mesh = ax.pcolormesh(
        np.arange(f.size + 1) - 0.5,
        np.arange(a.size + 1) - 0.5,
        z,
        cmap="viridis",
        shading="flat",
        vmin=0.0,
    )
    ii, jj = np.nonzero(scan.polar.values)
    ax.plot(jj, ii, "o", ms=2.5, color="white", mec="k", mew=0.4)
    ax.set_xticks(np.arange(f.size), [f"{x:g}" for x in f], rotation=90)
    ax.set_yticks(np.arange(a.size), [f"{x:.2g}" for x in a])
    hard = scan.attrs.get("hard_thz")
    if hard is not None:
        ax.axvline(np.interp(hard, f, np.arange(f.size)), color="w", lw=0.8, ls="--")
    ax.set_xlabel(axis_label("pulse carrier", "THz"))
    ax.set_ylabel(axis_label("peak field", "MV/cm"))
    cb = fig.colorbar(mesh, ax=ax, pad=0.02)
    cb.set_label(axis_label(r"late $|\langle s\rangle|$", "Å"))
    ax.set_title("dots: ends in one well;  dashed: hard-mode SCHA frequency", fontsize=6.5)
    return fig, ax
