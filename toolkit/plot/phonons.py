"""Figures for phonons: dispersion (+ DOS, + a second calculator) and mode energies vs time."""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure


def _pretty(label: str) -> str:
    return r"$\Gamma$" if label in ("G", "Gamma") else label


def plot_band_structure(bands: xr.Dataset, *, dos: xr.DataArray | None = None,
                        comparison: xr.Dataset | None = None):
    """Phonon dispersion along the path (THz), optionally with the DOS at the side and a
    second calculator's bands (dashed); returns (fig, axes)."""
    if dos is not None:
        fig, axes = new_figure(width="onehalf", aspect=0.6, ncols=2, sharey=True,
                               gridspec_kw={"width_ratios": [3, 1], "wspace": 0.05})
        ax = axes[0]
    else:
        fig, ax = new_figure(width="onehalf", aspect=0.6)
        axes = [ax]
    x = bands["distance"].values
    if comparison is not None:
        names = [str(c) for c in comparison["calculator"].values]
        for i, name in enumerate(names):
            f = comparison["frequency"].isel(calculator=i).values
            ax.plot(x, f, color=PALETTE[i], ls="-" if i == 0 else "--", lw=0.9)
            ax.plot([], [], color=PALETTE[i], ls="-" if i == 0 else "--", label=name)
        ax.legend(frameon=False, loc="lower right")
    else:
        ax.plot(x, bands["frequency"].values, color=PALETTE[0], lw=0.9)
    for d in bands.attrs["label_distances"]:
        ax.axvline(d, color="0.6", lw=0.5)
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xticks(bands.attrs["label_distances"])
    ax.set_xticklabels([_pretty(s) for s in bands.attrs["labels"]])
    ax.set_xlim(x[0], x[-1])
    ax.set_ylabel(axis_label("Frequency", "THz"))
    if dos is not None:
        axes[1].plot(dos.values, dos["frequency"].values, color=PALETTE[-1], lw=0.9)
        axes[1].set_xlabel(axis_label("DOS", dos.attrs.get("units")))
        axes[1].set_xlim(left=0)
    return fig, axes


def plot_mode_energies(energies: xr.Dataset, modes=None, *, kind: str = "total", ax=None):
    """Energy of selected modes (default the 6 most energetic on average) against time (eV)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    e = energies[kind]
    if modes is None:
        modes = np.argsort(e.mean(e.dims[0]).values)[::-1][:6]
    t = energies["time"].values if "time" in energies.coords else np.arange(e.shape[0])
    for i, m in enumerate(modes):
        lab = f"mode {int(m)}"
        if "frequency" in energies.coords:
            lab += f" ({float(energies['frequency'].values[m]):.2f} THz)"
        ax.plot(t, e.isel(mode=int(m)).values, color=PALETTE[i % len(PALETTE)], label=lab, lw=0.8)
    ax.set_xlabel(axis_label("Time", "ps" if "time" in energies.coords else None))
    ax.set_ylabel(axis_label(f"{kind.capitalize()} energy", "eV"))
    ax.legend(frameon=False, fontsize=6)
    return fig, ax


def plot_spectral_energy_density(sed: xr.DataArray, ax=None):
    """Spectral energy density map (mode ordered by frequency vs frequency)."""
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    order = np.argsort(sed["mode_frequency"].values)
    data = sed.values[order]
    nu = sed["frequency"].values
    im = ax.pcolormesh(nu, np.arange(len(order)), np.log10(np.maximum(data, data.max() * 1e-6)),
                       shading="auto", cmap="viridis")
    ax.plot(sed["mode_frequency"].values[order], np.arange(len(order)), "w.", ms=1)
    ax.set_xlabel(axis_label("Frequency", "THz"))
    ax.set_ylabel("Mode (by frequency)")
    fig.colorbar(im, ax=ax, label=r"log$_{10}$ SED (eV/THz)")
    return fig, ax
