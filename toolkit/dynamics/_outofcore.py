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
            mm = np.lib.format.open_memmap(os.path.join(tmp, f"{name}.npy"), mode="w+", dtype=dtype,
                                           shape=(n_atoms, n_frames, 3))
            for f in range(0, n_frames, block):
                chunk = np.asarray(var.isel({S.FRAME: slice(f, f + block)}).values, dtype=dtype)
                mm[:, f:f + chunk.shape[0]] = chunk.transpose(1, 0, 2)
            mm.flush()
            # the memory map itself backs the variable (dask's from_array would copy it
            # into memory); slicing an atom chunk then reads just those pages
            out[name] = ((S.FRAME, S.ATOM, S.XYZ), mm.transpose(1, 0, 2), ds[name].attrs)
        try:
            yield out
        finally:
            del out
