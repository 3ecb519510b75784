"""Publication figures: one style (:mod:`toolkit.plot.style`) and a figure function per
analysis (``toolkit.plot.<area>``), each returning the Figure and Axes for further editing."""

from __future__ import annotations

from toolkit.plot.style import PALETTE, axis_label, new_figure, save, use_style

__all__ = ["PALETTE", "axis_label", "new_figure", "save", "use_style"]
