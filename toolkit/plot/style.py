"""One consistent figure style for every atomtwin figure.

- :func:`use_style` activates ``atomtwin.mplstyle`` (8 pt sans-serif, inward ticks, the
  Okabe–Ito colour-blind-safe cycle, TrueType fonts in PDF).
- :func:`new_figure` makes a Figure sized for a one-column (3.4 in / 86 mm) or two-column
  (7.0 in / 178 mm) journal layout.
- :func:`axis_label` writes "quantity (unit)" so every axis carries its unit.
- :func:`save` exports PNG/PDF/SVG atomically.

Importing this package never selects a matplotlib backend: a Jupyter kernel keeps its inline
backend (figures show in the notebook, also on a remote machine without a display), and a
script or the CLI gets matplotlib's own choice (Agg where there is no display), or the one it
sets itself with ``MPLBACKEND`` or :func:`matplotlib.use`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

STYLE_FILE = Path(__file__).with_name("atomtwin.mplstyle")

#: Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
#: sequential / diverging colour maps that are perceptually uniform and colour-blind safe
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"

#: figure widths in inches: single column (86 mm) and double column (178 mm)
WIDTHS = {"single": 3.39, "onehalf": 5.0, "double": 7.01}


def use_style() -> None:
    """Activate the atomtwin style for the figures that follow."""
    import matplotlib.pyplot as plt

    plt.style.use(str(STYLE_FILE))


def new_figure(width: str | float = "single", aspect: float = 0.75, nrows: int = 1, ncols: int = 1, **kwargs):
    """A Figure and Axes in the atomtwin style.

    Parameters
    ----------
    width
        ``"single"`` (3.39 in), ``"onehalf"``, ``"double"`` (7.01 in) or a width in inches.
    aspect
        Height / width of the whole figure.
    nrows, ncols, kwargs
        Passed to :func:`matplotlib.pyplot.subplots`.

    Returns
    -------
    (Figure, Axes or array of Axes)
    """
    import matplotlib.pyplot as plt

    use_style()
    w = WIDTHS[width] if isinstance(width, str) else float(width)
    return plt.subplots(nrows, ncols, figsize=(w, w * aspect), **kwargs)


def axis_label(quantity: str, unit: str | None = None) -> str:
    """``"MSD (Å$^2$)"``; dimensionless quantities get no parentheses."""
    if not unit or unit in ("1", ""):
        return quantity
    pretty = unit.replace("^2", "$^2$").replace("^3", "$^3$").replace("^-1", "$^{-1}$")
    return f"{quantity} ({pretty})"


def save(fig, path: str | os.PathLike, formats: Iterable[str] | None = None, **kwargs) -> list[Path]:
    """Save ``fig`` to ``path`` (its suffix) or to ``path`` with each of ``formats``.

    Each file is written to a temporary name and renamed, so no half-written figure is
    left behind.  Returns the written paths.
    """
    path = Path(path)
    if formats is None:
        formats = [path.suffix.lstrip(".") or "png"]
    out = []
    for fmt in formats:
        target = path.with_suffix("." + fmt)
        tmp = target.with_name(f".{target.name}.tmp")
        fig.savefig(tmp, format=fmt, **kwargs)
        os.replace(tmp, target)
        out.append(target)
    return out
