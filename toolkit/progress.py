"""Progress bars for long analyses: on stderr, off unless asked for.

The CLI turns them on (:func:`enable`) for every long command; library calls stay silent
unless the caller enables them or passes ``progress=True`` to :func:`progress`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_ENABLED = False
_INTERRUPTED = False


def note_interrupt() -> None:
    """Record a Ctrl-C (the CLI's SIGINT handler calls this before raising KeyboardInterrupt).

    Python drops exceptions raised inside some callbacks (garbage-collector callbacks, e.g.
    dask's, and ``__del__``), so a KeyboardInterrupt can be lost; every :func:`progress` loop
    raises it again at its next item while the record stands."""
    global _INTERRUPTED
    _INTERRUPTED = True


def clear_interrupt() -> None:
    global _INTERRUPTED
    _INTERRUPTED = False


def interrupted() -> bool:
    """True once a Ctrl-C was recorded (and not cleared)."""
    return _INTERRUPTED


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C was recorded."""
    if _INTERRUPTED:
        raise KeyboardInterrupt


def enable(on: bool = True) -> None:
    """Show progress bars from now on (the CLI calls this)."""
    global _ENABLED
    _ENABLED = bool(on)


def enabled() -> bool:
    return _ENABLED and os.environ.get("ATOMTWIN_NO_PROGRESS", "") in ("", "0")


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "",
             unit: str = "frame", progress: bool | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar on stderr when progress is enabled.

    ``progress=None`` follows :func:`enable`; True/False forces it.
    """
    show = enabled() if progress is None else progress
    if show:
        from tqdm.auto import tqdm

        iterable = tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr,
                        dynamic_ncols=True, leave=False)
    for item in iterable:
        check_interrupt()
        yield item
