"""Figures for vibrational spectra: VDOS per species, IR absorption, dielectric function."""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure


def _band(ax, x, y, err, color, label):
    ax.plot(x, y, color=color, label=label)
    if err is not None and np.all(np.isfinite(err)):
        ax.fill_between(x, y - err, y + err, color=color, alpha=0.25, linewidth=0)


def plot_vdos(res: xr.Dataset, ax=None, *, total: bool = True):
    """VDOS per species (and total) with block standard-error bands; returns (fig, ax)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    x = res["frequency"].values
    for i, sp in enumerate(res["species"].values):
        _band(ax, x, res["vdos"].sel(species=sp).values, res["vdos_std_err"].sel(species=sp).values,
              PALETTE[(i + 1) % len(PALETTE)], str(sp))
    if total:
        _band(ax, x, res["vdos_total"].values, res["vdos_total_std_err"].values, PALETTE[-1], "total")
    ax.set_xlabel(axis_label("Frequency", res["frequency"].attrs.get("units")))
    ax.set_ylabel(axis_label("VDOS", res["vdos"].attrs.get("units")))
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    return fig, ax


def plot_ir(res: xr.Dataset, ax=None, *, label: str | None = None, color=None):
    """IR absorption alpha n with its standard-error band; returns (fig, ax)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    x = res["frequency"].values
    _band(ax, x, res["absorption"].values, res["absorption_std_err"].values, color or PALETTE[0],
          label or res.attrs.get("source", "IR"))
    ax.set_xlabel(axis_label("Frequency", res["frequency"].attrs.get("units")))
    ax.set_ylabel(axis_label(r"$\alpha n$", res["absorption"].attrs.get("units")))
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(bottom=0)
    if label:
        ax.legend(frameon=False)
    return fig, ax


def plot_dielectric(res: xr.Dataset, axes=None):
    """eps' and eps'' against frequency (two stacked panels); returns (fig, axes)."""
    if axes is None:
        fig, axes = new_figure(aspect=1.0, nrows=2, sharex=True)
    else:
        fig = axes[0].figure
    x = res["frequency"].values
    _band(axes[0], x, res["eps_real"].values, res["eps_real_std_err"].values, PALETTE[0], r"$\varepsilon'$")
    axes[0].axhline(res.attrs.get("eps_inf", 1.0), color="0.5", lw=0.6, ls="--")
    _band(axes[1], x, res["eps_imag"].values, res["eps_imag_std_err"].values, PALETTE[1], r"$\varepsilon''$")
    axes[0].set_ylabel(r"$\varepsilon'$")
    axes[1].set_ylabel(r"$\varepsilon''$")
    axes[1].set_xlabel(axis_label("Frequency", res["frequency"].attrs.get("units")))
    axes[1].set_xlim(x[0], x[-1])
    return fig, axes


def plot_spectrum(res: xr.Dataset):
    """The figure that fits the result (VDOS, IR or dielectric)."""
    if "vdos" in res:
        return plot_vdos(res)
    if "absorption" in res:
        return plot_ir(res)
    if "eps_real" in res:
        return plot_dielectric(res)
    raise InputError(f"not a spectrum result (variables {sorted(res.data_vars)}).")
