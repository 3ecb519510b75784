"""Moved: the FFT correlation kernels live in :mod:`atomtwin.toolkit.correlation`.

Kept only for ``toolkit/dynamics/transport.py``, which still imports ``msd_sums`` from here;
delete this file once it imports from :mod:`atomtwin.toolkit.correlation`.
"""

from __future__ import annotations

from atomtwin.toolkit.correlation import msd_sums

__all__ = ["msd_sums"]
