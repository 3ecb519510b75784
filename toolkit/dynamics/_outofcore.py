"""Atom-major scratch copy of a frame-chunked, larger-than-memory trajectory.

Stores written by :class:`atomtwin.toolkit.io.TrajectoryWriter` are chunked along ``frame`` (a
chunk holds every atom of a few frames), but an all-origins MSD needs every frame of a few
atoms.  Reading an atom chunk straight from such a store decompresses the whole file each
time, so an analysis in ``n`` atom chunks costs ``n`` full reads.  Instead the file is read
ONCE, frame block by frame block (each block about the size of one atom chunk), and
written transposed into a raw float64 scratch file (atom-major, ``(atom, frame, 3)``);
every atom chunk is then a single contiguous read.  The process holds at most one frame
block and one atom chunk; the scratch file lives in the temporary directory (the same
size as the positions in float64) and is deleted on exit.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S


def _is_lazy(var: xr.DataArray) -> bool:
    return getattr(var.data, "chunks", None) is not None and not isinstance(var.data, np.ndarray)


def needs_atom_major(ds: xr.Dataset, n_load: int, atom_chunk: int) -> bool:
    """True when positions are dask-backed, split along ``frame`` and read in several atom chunks."""
    pos = ds[S.POSITIONS]
    if not _is_lazy(pos):
        return False
    frame_chunks = pos.data.chunks[pos.dims.index(S.FRAME)]
    return len(frame_chunks) > 1 and n_load > atom_chunk


@contextlib.contextmanager
def atom_major(ds: xr.Dataset, atom_chunk: int, tmpdir: str | None = None):
    """Yield ``ds`` with positions (and image flags) backed by an atom-major scratch file.

    Parameters
    ----------
    ds
        dask-backed trajectory (frame, atom, xyz).
    atom_chunk
        Atoms the caller will read at a time; frame blocks are sized to the same number
        of bytes, so the peak memory stays a few atom chunks.
    tmpdir
        Directory of the scratch file (default: the system's temporary directory).
    """
    n_frames, n_atoms = ds.sizes[S.FRAME], ds.sizes[S.ATOM]
    block = max(1, int(n_frames * atom_chunk / max(n_atoms, 1)))
    with tempfile.TemporaryDirectory(prefix="atomtwin-msd-", dir=tmpdir) as tmp:
        out = ds.copy()
        for name in (S.POSITIONS, S.IMAGE):
            if name not in ds:
                continue
            var = ds[name].transpose(S.FRAME, S.ATOM, S.XYZ)
            dtype = np.float64 if name == S.POSITIONS else np.int32
            mm = np.lib.format.open_memmap(
                os.path.join(tmp, f"{name}.npy"),
                mode="w+",
                dtype=dtype,
                shape=(n_atoms, n_frames, 3),
            )
            for f in range(0, n_frames, block):
                chunk = np.asarray(var.isel({S.FRAME: slice(f, f + block)}).values, dtype=dtype)
                mm[:, f : f + chunk.shape[0]] = chunk.transpose(1, 0, 2)
            mm.flush()
            # the memory map itself backs the variable (dask's from_array would copy it
            # into memory); slicing an atom chunk then reads just those pages
            out[name] = ((S.FRAME, S.ATOM, S.XYZ), mm.transpose(1, 0, 2), ds[name].attrs)
        try:
            yield out
        finally:
            del out


def frame_blocks(
    ds: xr.Dataset,
    frame_chunk: int | None,
    desc: str,
    atoms=None,
    *,
    extra_bytes_per_frame: float = 0.0,
    default: int = 256,
):
    """Yield ``(f0, positions (k, n, 3) float64 Å)`` for consecutive blocks of frames.

    Only ``atoms`` (global indices; all atoms when ``None``) are read, ``frame_chunk``
    frames at a time, with a progress bar over frames (rate and time left) when progress is
    enabled.  ``frame_chunk=None`` picks the largest block up to ``default`` frames that
    fits in a quarter of the available memory; an explicit ``frame_chunk`` that cannot fit
    raises :class:`~atomtwin.toolkit.neighbors.memory.ChunkMemoryError` (an ``InputError``)
    naming a chunk that would, before anything is read.

    Parameters
    ----------
    extra_bytes_per_frame
        Working memory of the caller per frame of a block (besides the positions).
    """
    from atomtwin.toolkit.neighbors.memory import check_chunk, fit_chunk, memory_guard
    from atomtwin.toolkit.progress import progress

    n = ds.sizes[S.FRAME]
    n_atoms = ds.sizes[S.ATOM] if atoms is None else len(atoms)
    per_frame = n_atoms * 3 * 8 * 2 + extra_bytes_per_frame  # the read and its float64 copy
    if frame_chunk is None:
        chunk = fit_chunk(default, per_frame, share=0.25)
    else:
        if int(frame_chunk) < 1:
            from atomtwin.toolkit.errors import InputError

            raise InputError(
                f"frame_chunk must be a positive number of frames, got {frame_chunk!r}."
            )
        chunk = min(int(frame_chunk), max(n, 1))
        fits = fit_chunk(chunk, per_frame, share=0.5)
        check_chunk(
            chunk * per_frame,
            f"{desc}: a chunk of {chunk} frames of {n_atoms} atoms",
            f"pass frame_chunk={fits} or fewer (or leave frame_chunk unset).",
        )
    sel = {} if atoms is None else {S.ATOM: np.asarray(atoms)}
    bar = iter(progress(range(n), total=n, desc=desc))
    with memory_guard(desc, f"pass a smaller frame_chunk (now {chunk})"):
        for f0 in range(0, n, chunk):
            block = ds[S.POSITIONS].isel({S.FRAME: slice(f0, min(f0 + chunk, n)), **sel})
            pos = np.asarray(block.values, dtype=np.float64)
            yield f0, pos
            for _ in range(pos.shape[0]):  # the caller is done with this block
                next(bar, None)
