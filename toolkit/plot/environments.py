"""Figures of environment classification: reduced map, phase fractions, profile heat map."""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure, use_style


def _colour(k: int) -> str:
    return "#BBBBBB" if k < 0 else PALETTE[k % len(PALETTE)]


def plot_reduced_map(reduced: np.ndarray, labels: np.ndarray, *, components=(0, 1), ax=None):
    """Scatter of the fit subsample in the reduced space, coloured by cluster (noise grey).

    ``reduced`` (n, n_components), ``labels`` (n,).  Returns the figure.
    """
    use_style()
    fig, ax = (new_figure("single") if ax is None else (ax.figure, ax))
    reduced, labels = np.asarray(reduced), np.asarray(labels)
    i, j = components
    for k in np.unique(labels):
        m = labels == k
        ax.scatter(reduced[m, i], reduced[m, j], s=3, color=_colour(int(k)), alpha=0.6, lw=0,
                   label="noise" if k < 0 else f"cluster {k}", rasterized=True)
    ax.set_xlabel(f"component {i + 1}")
    ax.set_ylabel(f"component {j + 1}")
    ax.legend(markerscale=3, fontsize="small", frameon=False)
    return fig


def plot_phase_fractions(fractions: xr.DataArray, *, names: dict | None = None, ax=None):
    """Phase fractions ``(frame, cluster)`` against time (or frame)."""
    use_style()
    fig, ax = (new_figure("single") if ax is None else (ax.figure, ax))
    x = fractions["time"].values if "time" in fractions.coords else np.arange(fractions.sizes["frame"])
    for k in fractions["cluster"].values:
        label = (names or {}).get(int(k), "noise" if k < 0 else f"cluster {k}")
        ax.plot(x, fractions.sel(cluster=k).values, color=_colour(int(k)), label=label)
    ax.set_xlabel(axis_label("time", "ps") if "time" in fractions.coords else "frame")
    ax.set_ylabel(axis_label("fraction"))
    # beside the axes: fractions fill the whole height, so no corner of the plot is free
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def plot_profile_heatmap(profiles: xr.DataArray, cluster: int, *, ax=None, colorbar: bool = True):
    """Heat map of the local fraction of ``cluster`` against position (Å) and time.

    ``colorbar=False`` leaves the colour bar out (panels of one figure share the 0–1 scale;
    the returned figure's last image is the mappable for one shared bar)."""
    use_style()
    fig, ax = (new_figure("single") if ax is None else (ax.figure, ax))
    p = profiles.sel(cluster=cluster)
    t = profiles["time"].values if "time" in profiles.coords else np.arange(profiles.sizes["frame"])
    z = profiles["position"].values
    mesh = ax.pcolormesh(z, t, p.values, shading="nearest", vmin=0, vmax=1, cmap="viridis")
    if colorbar:
        fig.colorbar(mesh, ax=ax, label=f"fraction of cluster {cluster}")
    ax.set_xlabel(axis_label(f"position along {profiles.attrs.get('axis', 'z')}", "Å"))
    ax.set_ylabel(axis_label("time", "ps") if "time" in profiles.coords else "frame")
    return fig
