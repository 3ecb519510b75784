"""Read anything into the trajectory schema; write and open netCDF4 / zarr.

``read(path, format=None, **options)`` picks the reader from ``format`` or the file name:

============================  ==========================  ==============================
format                        files                        through
============================  ==========================  ==============================
``netcdf`` / ``zarr``         ``*.nc``, ``*.zarr``         atomtwin (our own stores)
``lammps-dump``               ``*.lammpstrj``, ``*.dump``  atomtwin (:mod:`.lammps`)
``lammps-data``               ``*.data``, ``*.lmp``        MDAnalysis
``dcd``, ``xtc``, ``trr``,    as named                     MDAnalysis (``topology=``)
``ncdf`` (AMBER), ``pdb``,
``gro``
anything ASE reads            ``*.xyz``, ``*.extxyz``,     ASE
                              ``*.traj``, XDATCAR,
                              vasprun.xml, OUTCAR, CIF,
                              POSCAR/CONTCAR ...
============================  ==========================  ==============================
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr
from atomtwin.toolkit.errors import FileFormatError, InputError
from atomtwin.toolkit.io.lammps_units import LAMMPS_UNIT_STYLES
from atomtwin.toolkit.io.store import (
    PARTIAL,
    TrajectoryWriter,
    clean_stale_temporaries,
    open_store,
    store_format,
    write,
)
from atomtwin.toolkit.io.targets import is_atomtwin_zarr

LAMMPS_DUMP_SUFFIXES = (".lammpstrj", ".dump", ".lammpsdump")
MDA_FORMATS = {
    ".dcd": "DCD", ".xtc": "XTC", ".trr": "TRR", ".ncdf": "NCDF", ".nc": None,
    ".pdb": "PDB", ".gro": "GRO", ".data": "DATA", ".lmp": "DATA",
}
ASE_NAMES = ("XDATCAR", "OUTCAR", "POSCAR", "CONTCAR", "vasprun.xml")
ASE_SUFFIXES = (".xyz", ".extxyz", ".traj", ".cif", ".vasp", ".xml", ".json", ".db", ".res", ".pwo", ".out", ".castep", ".xsf", ".cfg")


def _guess_format(path: Path) -> str:
    name = path.name
    low = name.lower()
    if low.endswith(PARTIAL):  # an unfinished TrajectoryWriter store: always zarr
        try:
            store_format(low)
        except ValueError:
            pass
        else:
            return "zarr"
    if low.endswith(".zarr"):
        return "zarr"
    if low.endswith((".nc", ".nc4", ".h5", ".hdf5")):
        return "netcdf"
    if low.endswith(LAMMPS_DUMP_SUFFIXES) or ".lammpstrj" in low or ".dump" in low:
        return "lammps-dump"
    if any(name.startswith(n) or name.endswith(n) for n in ASE_NAMES):
        return "ase"
    for suf, fmt in MDA_FORMATS.items():
        if low.endswith(suf) and fmt:
            return fmt.lower() if fmt != "DATA" else "lammps-data"
    if low.endswith(ASE_SUFFIXES):
        return "ase"
    raise InputError(
        f"cannot tell the format of '{path}' from its name. Fix: pass format= one of "
        "'lammps-dump', 'lammps-data', 'dcd', 'xtc', 'trr', 'ncdf', 'pdb', 'gro', 'netcdf', 'zarr', "
        "or any ASE format name (e.g. 'extxyz', 'vasp-xdatcar', 'vasp-out')."
    )


def read(path: str | os.PathLike, format: str | None = None, *, lazy: bool = False, **options) -> xr.Dataset:
    """Read a trajectory or structure file into a schema Dataset.

    Parameters
    ----------
    path
        File to read.
    format
        Reader name (see module docstring); guessed from the name when omitted.
    lazy
        Return dask-backed arrays where the reader supports it (our stores, LAMMPS dumps).
    options
        Passed to the reader: ``species_map``/``data_file``/``timestep_ps``/``units`` (one
        of :data:`LAMMPS_UNIT_STYLES`) for LAMMPS dumps, ``topology``/``species`` for
        MDAnalysis formats, ``index``/``timestep_ps``/``missing`` for ASE formats.  An
        option the format cannot honour (``species_map`` for extxyz, any option for our
        stores) is an :class:`~atomtwin.toolkit.errors.InputError`, never ignored.

    Raises
    ------
    FileFormatError
        A damaged file; the message names the file and the place (frame, line, variable).
    """
    path = Path(path)
    if not path.exists() and not Path(str(path) + PARTIAL).exists():
        raise FileNotFoundError(f"no such file: '{path}'.")
    fmt = (format or _guess_format(path)).lower()
    if fmt in ("netcdf", "zarr"):
        _no_options(path, options)
        ds = open_store(path)
        return ds if lazy else _load(ds, path)
    if fmt in ("lammps-dump", "lammpstrj", "lammps"):
        from atomtwin.toolkit.io.lammps import read_lammps_dump

        return read_lammps_dump(path, lazy=lazy, **options)
    if fmt in ("lammps-data", "dcd", "xtc", "trr", "ncdf", "pdb", "gro", "amber-netcdf"):
        _no_options(path, {k: options.get(k) for k in ("units", "data_file")},
                    "MDAnalysis converts its formats' units itself; species come from topology=, "
                    "species= or species_map=")
    if fmt in ("lammps-data",):
        from atomtwin.toolkit.io.mda_io import read_mda

        options.setdefault("atom_style", options.pop("atom_style", "atomic"))
        return read_mda(path, format="DATA", **options)
    if fmt in ("dcd", "xtc", "trr", "ncdf", "pdb", "gro", "amber-netcdf"):
        from atomtwin.toolkit.io.mda_io import read_mda

        mfmt = {"amber-netcdf": "NCDF"}.get(fmt, fmt.upper())
        return read_mda(path, format=mfmt, **options)
    from atomtwin.toolkit.io.ase_io import read_ase

    return read_ase(path, format=None if fmt == "ase" else fmt, **options)


def _no_options(path: Path, options: dict,
                why: str = "an atomtwin store holds its own species, units and times") -> None:
    """Refuse reader options the format cannot honour (never ignore them silently)."""
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise InputError(f"option(s) {', '.join(f'{k}=' for k in given)} do not apply to '{path}': "
                         f"{why}. Fix: drop them.")


def _load(ds: xr.Dataset, path: Path) -> xr.Dataset:
    try:
        return ds.load()
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        if isinstance(err, InputError):
            raise
        raise FileFormatError(path, f"its data cannot be read ({type(err).__name__}: {err}); the file is "
                              "damaged.", "write it again from the source, or restore it.") from err


def open(path: str | os.PathLike, **options) -> xr.Dataset:  # noqa: A001 - mirrors xarray.open_dataset
    """Open a trajectory lazily (dask): our netCDF/zarr stores (also an unfinished
    ``*.partial`` one), or any readable file (LAMMPS dumps lazily through their frame
    index, others read eagerly then chunked).  ``chunks=`` applies to stores only."""
    path = Path(path)
    fmt = options.get("format")
    if fmt is None:
        try:
            fmt = store_format(path)
        except ValueError:
            fmt = None
    if fmt in ("netcdf", "zarr"):
        options.pop("format", None)
        chunks = options.pop("chunks", None)
        _no_options(path, options)
        return open_store(path, chunks=chunks)
    return read(path, lazy=True, **options)


__all__ = ["LAMMPS_UNIT_STYLES", "TrajectoryWriter", "clean_stale_temporaries", "is_atomtwin_zarr", "open",
           "open_store", "read", "write"]
