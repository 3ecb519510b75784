"""Damage checks of netCDF/zarr stores: an empty or half-written netCDF file, a zarr store
whose variables or chunk files are missing (zarr would read NaN or 0 in their place), and
chunks that cannot be decoded (named when a lazy read computes them)."""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import FileFormatError
from atomtwin.toolkit.io.targets import HDF5_SIGNATURE

__all__ = ["check_zarr_chunks"]

_FIX_STORE = "write it again from the source (atomtwin convert), or restore it from a copy."


def _open_netcdf(path: Path, chunks) -> xr.Dataset:
    if path.is_dir():
        raise FileFormatError(path, "is a folder, not a netCDF file.", "name zarr stores *.zarr.")
    size = path.stat().st_size
    if size == 0:
        raise FileFormatError(path, "is empty (0 bytes): the program writing it stopped before writing "
                              "anything.", _FIX_STORE)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head != HDF5_SIGNATURE:
        raise FileFormatError(path, f"is not a netCDF4/HDF5 file (it starts with {head!r}).",
                              "atomtwin stores are netCDF4; convert other files with atomtwin convert.")
    try:
        return xr.open_dataset(path, engine="h5netcdf", chunks=chunks)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise FileFormatError(path, f"cannot be opened as netCDF4 ({type(err).__name__}: {err}); it is "
                              "probably half-written or truncated.", _FIX_STORE) from err


class _Checked:
    """A zarr array whose reads name the store and the variable when a chunk cannot be
    decoded (checksum mismatch, cut file): a lazy reader fails with a FileFormatError
    when the damaged chunk is computed, not with a codec's bare exception."""

    def __init__(self, arr, path: Path, name: str):
        self.arr, self.path, self.name = arr, path, name
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, key):
        try:
            return self.arr[key]
        except Exception as err:  # noqa: BLE001 - codecs raise many types for a damaged chunk
            raise FileFormatError(self.path, f"variable {self.name}: a chunk cannot be decoded "
                                  f"({type(err).__name__}: {err}); the store is damaged.", _FIX_STORE) from err


def _checked_reads(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """Replace the dask arrays xarray built on the zarr arrays by ones reading through
    :class:`_Checked` (only where xarray's decoding is the identity: same dtype, no scale,
    offset or non-NaN fill value)."""
    import dask.array as da
    import zarr

    root = zarr.open_group(str(path), mode="r")
    new_vars, new_coords = {}, {}
    for name, var in ds.variables.items():
        if name in ds.indexes or not isinstance(var.data, da.Array) or name not in root:
            continue
        arr = root[name]
        enc = var.encoding
        fill = enc.get("_FillValue")
        if (arr.dtype != var.dtype or "scale_factor" in enc or "add_offset" in enc
                or (fill is not None and not (isinstance(fill, float) and np.isnan(fill)))):
            continue
        data = da.from_array(_Checked(arr, path, str(name)), chunks=var.data.chunks, lock=False,
                             asarray=True, name=f"atomtwin-checked-{path}-{name}-{uuid.uuid4().hex}")
        target = new_coords if name in ds.coords else new_vars
        target[name] = var.copy(data=data)
    return ds.assign(new_vars).assign_coords(new_coords)


def check_zarr_chunks(path: str | os.PathLike, n_frames: int | None = None) -> None:
    """Refuse a zarr store in which an array lacks chunk files (its initialised chunks,
    counted through zarr's API, fewer than its shape needs); with ``n_frames``, only the
    chunks holding the first ``n_frames`` frames are needed (an unfinished store)."""
    import zarr

    path = Path(path)
    try:
        root = zarr.open_group(str(path), mode="r")
        arrays = list(root.arrays())
    except Exception as err:  # noqa: BLE001 - zarr raises many types for a damaged store
        raise FileFormatError(path, f"is not a readable zarr store ({type(err).__name__}: {err}).",
                              _FIX_STORE) from err
    damaged = _missing_chunks(arrays, n_frames)
    if damaged:
        raise FileFormatError(path, f"chunk files are missing in {', '.join(damaged)}; zarr would read them "
                              "as NaN or 0.", _FIX_STORE)


def _missing_chunks(arrays, n_frames: int | None) -> list[str]:
    damaged = []
    for name, arr in arrays:
        shape, chunk = arr.shape, arr.chunks
        if n_frames is not None and shape and arr.attrs.get("_ARRAY_DIMENSIONS", [None])[0] == S.FRAME:
            shape = (min(n_frames, shape[0]), *shape[1:])
        need = math.prod(math.ceil(n / c) for n, c in zip(shape, chunk, strict=True)) if shape else 1
        try:
            have = arr.nchunks_initialized
        except Exception:  # noqa: BLE001 - an array whose folder is gone
            have = 0
        if have < need:
            damaged.append(f"{name}/ ({need - have} of {need} chunk files)")
    return damaged
