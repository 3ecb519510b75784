"""Figures for :mod:`atomtwin.toolkit.dynamics`: one function per result, each returning
``(fig, ax)`` in the atomtwin style."""

from __future__ import annotations

import numpy as np
from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure


def plot_msd(msd, fit=None, ax=None):
    """MSD against lag (one line per species), with the fitted line and window if given."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    curves = [msd.sel(species=s) for s in msd["species"].values] if "species" in msd.dims else [msd]
    for i, c in enumerate(curves):
        label = str(c.attrs.get("species", c.coords["species"].item() if "species" in c.coords else ""))
        ax.plot(c["lag"], c, color=PALETTE[i % len(PALETTE)], label=label)
    if fit is not None and "species" not in fit.dims:
        t = np.linspace(float(fit.fit_start), float(fit.fit_stop), 50)
        nd = int(msd.attrs.get("n_dims", 3))
        ax.plot(t, 2 * nd * float(fit.D) * t + float(fit.intercept), "--", color="k",
                label=f"D = {float(fit.D):.3g} ± {float(fit.D_err):.1g} Å$^2$/ps")
        ax.axvspan(float(fit.fit_start), float(fit.fit_stop), color="0.9", zorder=0)
    ax.set_xlabel(axis_label("lag time", "ps"))
    ax.set_ylabel(axis_label("MSD", "Å^2"))
    ax.legend()
    return fig, ax


def plot_arrhenius(result, ax=None, label: str = "", color=None):
    """ln(value) against 1000/T with error bars and the weighted fit (Ea ± σ in the legend).

    ``color``: one colour for points and fit (to overlay several series on one ``ax``);
    default: points and fit in the first two palette colours.
    """
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    T = result["temperature"].values
    v, e = result["values"].values, result["errors"].values
    ax.errorbar(1000 / T, v, yerr=None if np.all(np.isnan(e)) else e, fmt="o",
                color=PALETTE[0] if color is None else color, label=label)
    ax.plot(1000 / T, result["fit"].values, "-", color=PALETTE[1] if color is None else color,
            label=f"{label + ': ' if label and color is not None else ''}"
                  f"Ea = {float(result.Ea):.3f} ± {float(result.Ea_err):.3f} eV")
    ax.set_yscale("log")
    ax.set_xlabel(axis_label("1000 / T", "K^-1"))
    ax.set_ylabel("value")
    ax.legend()
    return fig, ax


def plot_van_hove(g, ax=None):
    """Radial probability density 4πr² G_s(r, t), one curve per lag."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    r = g["r"].values
    for i, t in enumerate(g["lag"].values):
        ax.plot(r, 4 * np.pi * r**2 * g.isel(lag=i), color=PALETTE[i % len(PALETTE)], label=f"t = {t:g} ps")
    ax.set_xlabel(axis_label("r", "Å"))
    ax.set_ylabel(axis_label("4πr$^2$ G$_s$(r, t)", "Å^-1"))
    ax.legend()
    return fig, ax


def plot_orientational_correlation(c, fits=None, ax=None):
    """C_l(t) on a log scale, with fitted curves (dict l -> fit Dataset) if given."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    for i, ell in enumerate(c["l"].values):
        y = c.sel(l=ell)
        ax.plot(y["lag"], y, color=PALETTE[i], label=f"C$_{ell}$")
        if fits and ell in fits:
            f = fits[ell]
            t = y["lag"].values
            ax.plot(t, np.exp(-((t / float(f.tau)) ** float(f.beta))), "--", color=PALETTE[i])
    ax.set_yscale("log")
    ax.set_ylim(1e-2, 1.1)
    ax.set_xlabel(axis_label("lag time", "ps"))
    ax.set_ylabel("C$_l$(t)")
    ax.legend()
    return fig, ax


def plot_residence_times(rt, ax=None, bins: int = 30):
    """Histogram of residence times (log counts: an exponential is a straight line)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    ax.hist(rt.values, bins=bins, color=PALETTE[0])
    ax.set_yscale("log")
    ax.set_xlabel(axis_label("residence time", "ps"))
    ax.set_ylabel("count")
    return fig, ax


def plot_events(events, ax=None, key: str = "group"):
    """Raster of events: time against unit (group / atom / hydrogen)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    ax.plot(events["time"], events[key], "|", color=PALETTE[0], markersize=4)
    ax.set_xlabel(axis_label("time", "ps"))
    ax.set_ylabel(key)
    return fig, ax


def plot_hbond_counts(hb, ax=None):
    """Number of hydrogen bonds per frame."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    ax.plot(hb["time"], hb["count"], color=PALETTE[0])
    ax.set_xlabel(axis_label("time", "ps"))
    ax.set_ylabel("hydrogen bonds")
    return fig, ax


def plot_hbond_lifetime(lt, ax=None):
    """Intermittent and continuous hydrogen-bond correlations."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    ax.plot(lt["lag"], lt["intermittent"], color=PALETTE[0], label=f"intermittent, τ = {float(lt.tau_intermittent):.3g} ps")
    ax.plot(lt["lag"], lt["continuous"], color=PALETTE[1], label=f"continuous, τ = {float(lt.tau_continuous):.3g} ps")
    ax.set_xlabel(axis_label("lag time", "ps"))
    ax.set_ylabel("correlation")
    ax.legend()
    return fig, ax


def plot_event_correlation(cc, ax=None):
    """P(B within Δt after A) observed against chance (shuffled ± 2σ and Poisson)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    w = cc["window"].values
    ax.plot(w, cc.p_observed, "o-", color=PALETTE[0], label="observed")
    ax.fill_between(w, cc.p_shuffled - 2 * cc.p_shuffled_std, cc.p_shuffled + 2 * cc.p_shuffled_std,
                    color=PALETTE[1], alpha=0.3, label="chance (shuffled, ±2σ)")
    ax.plot(w, cc.p_poisson, "--", color=PALETTE[1], label="chance (Poisson)")
    ax.set_xlabel(axis_label("Δt", "ps"))
    ax.set_ylabel("probability")
    ax.legend()
    return fig, ax


def plot_charge_msd(result, ax=None):
    """Collective charge MSD from :func:`atomtwin.toolkit.dynamics.conductivity` (σ and Haven ratio in the title)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    cm = result["charge_msd"]
    ax.plot(cm["lag"], cm, color=PALETTE[0])
    ax.set_title(f"σ = {float(result.sigma):.3g} ± {float(result.sigma_err):.1g} S/cm, "
                 f"H = {float(result.haven_ratio):.2f} ± {float(result.haven_ratio_err):.2f}")
    ax.set_xlabel(axis_label("lag time", "ps"))
    ax.set_ylabel(axis_label("charge MSD", "e^2*Å^2"))
    return fig, ax
