"""Publication figures: one style (:mod:`atomtwin.toolkit.plot.style`) and a figure function per
analysis (``atomtwin.toolkit.plot.<area>``), each returning the Figure and Axes for further editing."""

from __future__ import annotations

from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure, save, use_style

__all__ = ["PALETTE", "axis_label", "new_figure", "save", "use_style"]
