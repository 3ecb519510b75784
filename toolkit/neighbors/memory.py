"""Memory budget of the per-frame analyses that use the neighbour layer.

Every such analysis (H-bonds, sites and hops, rotations' ligand assignment, proton
transfers, RDF, Steinhardt) holds one chunk of frames and the pair list of one frame at a
time, so its memory is linear in the atoms and independent of the trajectory's length.
What can still fail is a chunk the user asks for: ``frame_chunk`` frames of a 10^6-atom
trajectory, or a cutoff so long that one frame's pair list does not fit.  This module
turns that into a named error with the fix (:class:`ChunkMemoryError`, an
:class:`~atomtwin.toolkit.errors.InputError`) instead of a ``MemoryError`` traceback:

- :func:`check_chunk` compares an estimate with the memory this process can still get (the
  smaller of the kernel's ``MemAvailable`` and what an address-space limit leaves), before
  the chunk is read;
- :func:`memory_guard` converts a ``MemoryError`` raised inside the loop (the estimate was
  short, or something else took the memory meanwhile).
"""

from __future__ import annotations

import contextlib
import resource

from atomtwin.toolkit.errors import InputError, with_fix

__all__ = ["ChunkMemoryError", "available_memory", "check_chunk", "fit_chunk", "memory_guard"]

MiB = 2**20


class ChunkMemoryError(InputError, MemoryError):
    """A requested chunk (frames, or one frame's pairs) does not fit in the memory left.

    Also a :class:`MemoryError`, so code that already handles running out of memory keeps
    working; the message names the analysis, the sizes and the fix.
    """


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _address_space_left() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as fh:
            vm = int(fh.read().split()[0]) * resource.getpagesize()
    except OSError:
        return None
    return max(0, soft - vm)


def available_memory() -> int | None:
    """Bytes this process can still allocate (``None`` when the platform does not say)."""
    vals = [v for v in (_meminfo_available(), _address_space_left()) if v is not None]
    return min(vals) if vals else None


def check_chunk(n_bytes: float, what: str, fix: str) -> None:
    """Raise :class:`ChunkMemoryError` when ``n_bytes`` cannot be allocated now.

    Parameters
    ----------
    n_bytes
        Estimated peak bytes of one chunk of the analysis.
    what
        The analysis and the chunk (for the message), e.g. ``"hydrogen_bonds: 64 frames"``.
    fix
        What the user can change, e.g. ``"pass frame_chunk=8"``.
    """
    avail = available_memory()
    if avail is not None and n_bytes > avail:
        raise ChunkMemoryError(
            with_fix(
                f"{what} needs about {n_bytes / MiB:.0f} MiB but only {avail / MiB:.0f} MiB are "
                "available.",
                fix,
            )
        )


def fit_chunk(
    requested: int, bytes_per_item: float, fixed: float = 0.0, *, share: float = 0.5
) -> int:
    """Largest chunk <= ``requested`` whose ``fixed + n * bytes_per_item`` bytes stay within
    ``share`` of the available memory (at least 1)."""
    avail = available_memory()
    if avail is None:
        return max(1, int(requested))
    n = int((share * avail - fixed) // max(bytes_per_item, 1.0))
    return max(1, min(int(requested), n))


@contextlib.contextmanager
def memory_guard(what: str, fix: str):
    """Re-raise a ``MemoryError`` inside the block as :class:`ChunkMemoryError` with ``fix``."""
    try:
        yield
    except ChunkMemoryError:
        raise
    except MemoryError as err:
        raise ChunkMemoryError(
            with_fix(f"{what}: ran out of memory ({err or 'allocation failed'}).", fix)
        ) from None
