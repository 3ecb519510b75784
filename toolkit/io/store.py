"""netCDF4 (h5netcdf) and zarr storage of schema Datasets, lazily opened with dask, and
a streaming :class:`TrajectoryWriter` that survives being killed.

Atomicity: every writer writes to a temporary name beside the target and renames it into
place only when complete, so no command leaves a half-written output behind.

Target safety: :func:`write` refuses an existing target unless ``overwrite=True``, and even
then replaces only a netCDF4/HDF5 file or a zarr store that atomtwin wrote (never another
folder).  Temporaries are named ``.<target>.atomtwin-tmp.<host>.<pid>.<random>``; a later
write to the same target removes those of processes of this host that are gone
(:mod:`.targets`).

Integrity: :func:`open_store` refuses an empty or half-written netCDF file, and a zarr
store whose variables or chunk files are missing (zarr would fill them with NaN or 0):
the initialised chunks of every array are counted through zarr's API against its shape;
chunks carry checksums, and a chunk that cannot be decoded is named when read
(:mod:`.integrity`).

Durability: :class:`TrajectoryWriter` appends frames to a zarr store ("<target>.partial"
until it finishes), each chunk in its own file.  zarr grows an array's shape before it
writes the new data, so after every flush the writer records atomically (write, then
rename) how many frames all variables hold in full; a writer killed at any instant leaves
every flushed frame readable (``atomtwin.toolkit.open`` opens the partial store trimmed to that
count) and the writer can resume from it.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import FileFormatError, InputError
from atomtwin.toolkit.io.integrity import (
    _FIX_STORE,
    _Checked,
    _checked_reads,
    _missing_chunks,
    _open_netcdf,
    check_zarr_chunks,
)
from atomtwin.toolkit.io.targets import (
    _check_replaceable,
    _remove,
    _replace,
    _tmp_name,
    clean_stale_temporaries,
)

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5")
ZARR_SUFFIXES = (".zarr",)
PARTIAL = ".partial"


def store_format(path: str | os.PathLike) -> str:
    """'netcdf' or 'zarr' from the file name; a clear error otherwise."""
    name = str(path).rstrip("/")
    if name.endswith(PARTIAL):
        name = name[: -len(PARTIAL)]
    low = name.lower()
    if low.endswith(ZARR_SUFFIXES):
        return "zarr"
    if low.endswith(NETCDF_SUFFIXES):
        return "netcdf"
    raise InputError(
        f"cannot tell the storage format of '{path}'. Fix: name it *.nc (netCDF4) or *.zarr."
    )


def _encoding(ds: xr.Dataset, fmt: str, chunk_frames: int, compress: bool) -> dict:
    """Per-variable encoding: frame variables chunked along ``frame``; every chunk carries
    a checksum (zarr: a CRC32 filter, netCDF: HDF5's Fletcher32), so a damaged chunk is an
    error when read, never silently wrong numbers (blosc decodes a cut buffer without
    complaint)."""
    enc = {}
    names = list(ds.data_vars) if fmt == "netcdf" else list(ds.variables)
    for name in names:
        da = ds[name]
        e = {}
        if S.FRAME in da.dims:
            chunks = tuple(
                min(chunk_frames, max(1, da.sizes[d])) if d == S.FRAME else da.sizes[d] for d in da.dims
            )
            if fmt == "netcdf":
                e = {"chunksizes": chunks, "fletcher32": True}
                if compress and da.dtype.kind in "fiu":
                    e.update(compression="gzip", compression_opts=1, shuffle=True)
            else:
                e = {"chunks": chunks}
        elif fmt == "netcdf":
            continue
        if fmt == "zarr":
            from numcodecs import CRC32, Blosc

            size = max(1, np.dtype(da.dtype).itemsize) if da.dtype.kind != "O" else 1
            e["filters"] = [CRC32()]
            e["compressors"] = [_blosc(Blosc, size)] if compress else None
        enc[name] = e
    return enc


def _blosc(blosc, typesize: int):
    """lz4 + byte shuffle with the element size given: behind the CRC32 filter blosc sees
    bytes, and shuffling by 1 byte would cost the compression of floats."""
    try:
        return blosc("lz4", 5, blosc.SHUFFLE, typesize=typesize)
    except TypeError:  # numcodecs without the typesize argument
        return blosc("lz4", 5, blosc.SHUFFLE)


def netcdf_safe_attrs(ds: xr.Dataset) -> xr.Dataset:
    """netCDF attributes must be str/number/arrays; drop None, stringify the rest."""
    ds = ds.copy()
    attrs = {}
    for k, v in ds.attrs.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, (dict, tuple)) or (isinstance(v, list) and v and isinstance(v[0], (dict, list))):
            import json

            v = json.dumps(v)
        attrs[k] = v
    ds.attrs = attrs
    # species as fixed strings: object arrays do not round-trip through zarr v3
    if S.SPECIES in ds.coords and ds[S.SPECIES].dtype.kind == "O":
        ds = ds.assign_coords({S.SPECIES: ds[S.SPECIES].astype(str)})
    return ds


def write(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    chunk_frames: int = 64,
    compress: bool = True,
    progress: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write a schema Dataset to netCDF4 (``*.nc``) or zarr (``*.zarr``), atomically.

    Data are chunked along ``frame`` (``chunk_frames`` frames a chunk) and compressed
    (gzip level 1 with shuffle for netCDF, zarr's default codec for zarr).  A dask-backed
    Dataset is streamed chunk by chunk, so writing a trajectory larger than memory works.

    Parameters
    ----------
    overwrite
        Replace an existing target.  Only a netCDF4/HDF5 file or a zarr store atomtwin
        wrote is ever replaced; anything else at ``path`` is refused (FileExistsError).
    """
    S.validate(ds)
    path = Path(path)
    if str(path).endswith(PARTIAL):
        raise InputError(f"'{path}': *{PARTIAL} names belong to unfinished TrajectoryWriter stores. "
                         "Fix: write to the name without the suffix.")
    fmt = store_format(path)
    clean_stale_temporaries(path)
    if path.exists() or path.is_symlink():
        _check_replaceable(path, fmt, overwrite)
    ds = netcdf_safe_attrs(ds)
    from atomtwin.toolkit import __version__

    ds.attrs.setdefault(S.VERSION, __version__)
    enc = _encoding(ds, fmt, chunk_frames, compress)
    tmp = _tmp_name(path)
    try:
        if fmt == "netcdf":
            job = ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc, compute=False)
        else:
            if any(v.chunks for v in ds.variables.values()):
                # dask chunks must align with the zarr chunks (a writer's store may hold
                # flush-sized chunks in some variables and chunk-sized ones in others)
                ds = ds.chunk({S.FRAME: chunk_frames})
            # every chunk is stored, even one equal to the fill value, so that a missing
            # chunk file always means damage (see open_store)
            job = ds.to_zarr(tmp, mode="w", encoding=enc, compute=False, consolidated=True, zarr_format=2,
                             write_empty_chunks=True)
        if progress:
            from dask.diagnostics import ProgressBar

            with ProgressBar():
                job.compute()
        else:
            job.compute()
        _replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def open_store(path: str | os.PathLike, *, chunks: dict | str | None = None) -> xr.Dataset:
    """Open a netCDF or zarr trajectory lazily (dask arrays, chunked along ``frame``).

    ``chunks`` defaults to the chunks on disk.  A store that a :class:`TrajectoryWriter` did
    not finish (``<name>.partial``) is opened with a warning, every variable trimmed to the
    frames all of them hold.

    Raises
    ------
    FileFormatError
        An empty or half-written netCDF file; a zarr store that is not readable, lacks a
        variable the schema needs, or whose chunk files are missing (zarr would silently
        read NaN or 0 in their place).
    """
    path = Path(path)
    partial = Path(str(path) + PARTIAL)
    if not path.exists():
        if partial.exists():
            raise FileNotFoundError(
                f"'{path}' does not exist but '{partial}' does: the run writing it did not finish. "
                f"Fix: open the partial store with atomtwin.toolkit.open('{partial}') (every flushed frame "
                "is there), or resume the run."
            )
        raise FileNotFoundError(f"no such file: '{path}'.")
    is_partial = str(path).rstrip("/").endswith(PARTIAL)
    fmt = "zarr" if is_partial else store_format(path)
    if chunks is None:
        chunks = {}  # dask chunks = the on-disk chunks (frame blocks)
    if fmt == "netcdf":
        ds = _open_netcdf(path, chunks)
    elif is_partial:
        ds = _open_partial(path)
    else:
        if not path.is_dir():
            raise FileFormatError(path, "is a file, not a zarr store (a folder).",
                                  "name netCDF files *.nc; a zarr store is a folder *.zarr.")
        check_zarr_chunks(path)
        try:
            ds = xr.open_zarr(path, chunks=chunks, consolidated=None)
        except Exception as err:  # noqa: BLE001 - zarr and its codecs raise many types for a damaged store
            raise FileFormatError(path, f"is not a readable zarr store ({type(err).__name__}: {err}).",
                                  _FIX_STORE) from err
        ds = _checked_reads(ds, path)
    if S.SPECIES in ds.coords:
        ds = ds.assign_coords({S.SPECIES: ds[S.SPECIES].astype(str).load()})
    try:
        return S.validate(ds)
    except S.SchemaError as err:
        raise FileFormatError(path, f"is not a complete atomtwin trajectory: {err}", _FIX_STORE) from err


def _marker(store: Path) -> Path:
    """File beside a partial store that counts its complete frames (zarr lists anything
    inside the store as a member, so the count lives next to it)."""
    return Path(str(store) + ".frames")


def _mark_complete(store: Path, n: int) -> None:
    """Record, atomically, how many frames every variable of the store holds in full."""
    marker = _marker(store)
    tmp = marker.with_name(f".{marker.name}.tmp")
    tmp.write_text(str(int(n)))
    os.replace(tmp, marker)


def _complete_frames(store: Path) -> int:
    try:
        return int(_marker(store).read_text())
    except (FileNotFoundError, ValueError):
        return 0


def truncate_partial(store: str | os.PathLike, n: int) -> None:
    """Cut an unfinished writer store to its first ``n`` frames (e.g. frames a killed run
    wrote after its last checkpoint, which a resumed run writes again)."""
    import zarr

    store = Path(store)
    _mark_complete(store, min(n, _complete_frames(store)))  # first lower the count, then cut
    root = zarr.open_group(str(store), mode="r+")
    for _name, arr in root.arrays():
        dims = arr.attrs.get("_ARRAY_DIMENSIONS", [])
        if dims and dims[0] == S.FRAME and arr.shape[0] > n:
            arr.resize((n, *arr.shape[1:]))
    _mark_complete(store, n)


def _open_partial(path: Path) -> xr.Dataset:
    """Open an unfinished writer store at the zarr level: a writer killed between the
    appends of two variables leaves them one flush apart, which xarray refuses to open,
    so every frame variable is trimmed to the frames all of them hold."""
    import dask.array as da
    import zarr

    root = zarr.open_group(str(path), mode="r")
    # an array whose attributes are not yet written was being created when the writer died
    arrays = {name: arr for name, arr in root.arrays() if "_ARRAY_DIMENSIONS" in arr.attrs}
    if S.POSITIONS not in arrays:
        raise FileNotFoundError(f"'{path}' holds no complete frame yet (killed while creating it).")
    dims = {name: tuple(arr.attrs["_ARRAY_DIMENSIONS"]) for name, arr in arrays.items()}
    lengths = [arr.shape[0] for name, arr in arrays.items() if dims[name][:1] == (S.FRAME,)]
    # zarr grows an array's shape before it writes the new chunk, so only frames counted
    # by the marker (written after every variable of a flush) are known to be complete
    n = min([*lengths, _complete_frames(path)]) if lengths else 0
    if n == 0:
        raise FileNotFoundError(f"'{path}' holds no complete frame yet.")
    damaged = _missing_chunks(arrays.items(), n)
    if damaged:
        raise FileFormatError(path, f"chunk files are missing in {', '.join(damaged)}; zarr would read them "
                              "as NaN or 0.", "resume the run from its checkpoint, or rerun it.")
    warnings.warn(f"'{path}' is an unfinished trajectory store; reading its {n} complete frames.", stacklevel=3)
    coord_names = {S.SPECIES, S.ATOMIC_NUMBER, S.MASS, S.TIME, S.XYZ, "step"}
    data_vars, coords = {}, {}
    for name, arr in arrays.items():
        d = da.from_array(_Checked(arr, path, name), chunks=arr.chunks, lock=False, asarray=True)
        if dims[name][:1] == (S.FRAME,):
            d = d[:n]
        attrs = {k: v for k, v in arr.attrs.items() if not k.startswith("_") and k != "coordinates"}
        target = coords if name in coord_names else data_vars
        target[name] = (dims[name], d, attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=dict(root.attrs))


class TrajectoryWriter:
    """Append frames to a trajectory store; a killed writer loses no flushed frame.

    Parameters
    ----------
    path
        Target ``*.nc`` or ``*.zarr``.  Frames go to ``<path>.partial`` (a zarr store)
        until :meth:`close`, which writes the target atomically and removes the partial.
    species
        Chemical symbols (n_atoms,).
    masses
        amu, default from ASE.
    pbc
        Periodicity flags (3,).
    attrs
        Dataset attributes (provenance: code, parameters...).
    flush_every
        Frames buffered in memory before they are written (1 = every frame durable).
    chunk_frames
        Frames per chunk on disk.
    resume
        Open an existing partial store and append after its last complete frame;
        :attr:`n_frames` says how many it holds.
    overwrite
        Replace an existing target at :meth:`close` (only a store atomtwin wrote, see
        :func:`write`); without it an existing target is refused at once.

    Use as a context manager; on an exception the partial store is kept (flushed) so the
    run can resume, and the target is not created.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        species,
        *,
        masses=None,
        pbc=(True, True, True),
        attrs: dict | None = None,
        flush_every: int = 1,
        chunk_frames: int = 64,
        resume: bool = False,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        self.overwrite = bool(overwrite)
        if (self.path.exists() or self.path.is_symlink()) and not overwrite:
            raise FileExistsError(f"'{self.path}' exists; a TrajectoryWriter does not replace it. Fix: choose "
                                  "another name, or pass overwrite=True to replace a previous atomtwin output.")
        self.format = store_format(self.path)
        self.partial = Path(str(self.path) + PARTIAL)
        self.species = np.asarray([str(s) for s in species])
        self.masses = masses
        self.pbc = pbc
        self.attrs = dict(attrs or {})
        self.flush_every = max(1, int(flush_every))
        self.chunk_frames = int(chunk_frames)
        self._buffer: list[dict] = []
        self._closed = False
        self.n_frames = 0
        if resume and self.partial.exists():
            ds = self._open_partial()
            if ds.sizes[S.ATOM] != self.species.size or list(ds[S.SPECIES].values) != list(self.species):
                raise InputError(
                    f"cannot resume '{self.partial}': it holds {ds.sizes[S.ATOM]} atoms of other species "
                    "than this run. Fix: resume with the same system or write to a new path."
                )
            self.n_frames = int(ds.sizes[S.FRAME])
            self._rewrite_trimmed(ds)
        else:
            if self.partial.exists():
                raise FileExistsError(
                    f"'{self.partial}' exists (an unfinished run). Fix: pass resume=True to continue "
                    "it, or delete it to start over."
                )

    def _open_partial(self) -> xr.Dataset:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return open_store(self.partial)

    def _rewrite_trimmed(self, ds: xr.Dataset) -> None:
        """After a kill, variables may differ in length by one flush: trim them in place."""
        import zarr

        root = zarr.open_group(str(self.partial), mode="r+")
        for name in list(ds.variables):
            if S.FRAME in ds[name].dims and name in root:
                arr = root[name]
                if arr.shape[0] != self.n_frames:
                    arr.resize((self.n_frames, *arr.shape[1:]))

    # -- appending -----------------------------------------------------------------------
    def append(
        self,
        positions,
        *,
        cell=None,
        time: float | None = None,
        **variables,
    ) -> None:
        """Append one frame: positions (n_atoms, 3) Å; cell (3, 3) Å; time ps; schema
        variables by name (``velocities=``, ``forces=``, ``energy=``, ``stress=``...)."""
        if self._closed:
            raise RuntimeError("this TrajectoryWriter is closed.")
        positions = np.asarray(positions, dtype=float)
        if positions.shape != (self.species.size, 3):
            raise InputError(
                f"frame {self.n_frames + len(self._buffer)}: positions have shape {positions.shape}; "
                f"expected ({self.species.size}, 3)."
            )
        frame = {"positions": positions, "cell": cell, "time": time, **variables}
        self._buffer.append(frame)
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write buffered frames to the partial store."""
        if not self._buffer:
            return
        frames = self._buffer
        first = frames[0]
        cell = None if first["cell"] is None else np.stack([np.asarray(f["cell"], float) for f in frames])
        time = None if first["time"] is None else np.array([float(f["time"]) for f in frames])
        extra = {}
        for k in first:
            if k in ("positions", "cell", "time") or first[k] is None:
                continue
            extra[k] = np.stack([np.asarray(f[k]) for f in frames])
        chunk = S.make_dataset(
            np.stack([f["positions"] for f in frames]),
            self.species,
            cell=cell,
            time=time,
            pbc=self.pbc,
            masses=self.masses,
            attrs=self.attrs,
            **extra,
        )
        chunk = netcdf_safe_attrs(chunk)
        chunk.attrs.pop(S.TIMESTEP, None)
        if self.n_frames == 0 and not self.partial.exists():
            enc = _encoding(chunk, "zarr", self.chunk_frames, True)
            for e in enc.values():
                if "chunks" in e:
                    e["chunks"] = (self.chunk_frames, *e["chunks"][1:])
            chunk.to_zarr(self.partial, mode="w", encoding=enc, consolidated=False, zarr_format=2,
                          write_empty_chunks=True)
            self._arrays = None
        else:
            # append through zarr directly: xarray's append re-reads and re-validates the
            # whole store (~0.2 s a call); zarr's append writes the new chunk data and then
            # the new shape, which keeps a killed writer consistent
            import zarr

            if getattr(self, "_arrays", None) is None:
                # every chunk stored, even one equal to the fill value: a missing chunk
                # file then always means damage (the config is read when arrays open)
                with zarr.config.set({"array.write_empty_chunks": True}):
                    root = zarr.open_group(str(self.partial), mode="r+")
                    self._arrays = {name: arr for name, arr in root.arrays()}
            missing = [k for k, v in chunk.variables.items() if S.FRAME in v.dims and k not in self._arrays]
            if missing:
                raise InputError(
                    f"frame {self.n_frames}: variables {missing} were not in the first frame written; a "
                    "trajectory store keeps the same variables in every frame."
                )
            for name, v in chunk.variables.items():
                if S.FRAME in v.dims:
                    arr = self._arrays[name]
                    arr.append(np.asarray(v.values, dtype=arr.dtype), axis=0)
        self.n_frames += len(frames)
        self._buffer = []
        _mark_complete(self.partial, self.n_frames)

    # -- finishing -----------------------------------------------------------------------
    def close(self) -> Path | None:
        """Flush, then write the target atomically and remove the partial store."""
        if self._closed:
            return self.path
        self.flush()
        self._closed = True
        if self.n_frames == 0:
            return None
        ds = self._open_partial()
        t = ds[S.TIME].values if S.TIME in ds.coords else None
        if t is not None and t.size > 1:
            dt = np.diff(t)
            if np.allclose(dt, dt[0], rtol=1e-6):
                ds.attrs[S.TIMESTEP] = float(dt[0])
        write(ds, self.path, chunk_frames=self.chunk_frames, overwrite=self.overwrite)
        shutil.rmtree(self.partial, ignore_errors=True)
        _marker(self.partial).unlink(missing_ok=True)
        return self.path

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # keep what was written, flushed, for a resume
            try:
                self.flush()
            finally:
                self._closed = True
