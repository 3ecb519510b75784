"""``atomtwin convert`` and ``atomtwin info``, and the reader options every command shares."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from atomtwin.toolkit.errors import InputError

#: reader names :func:`atomtwin.toolkit.io.read` dispatches itself (ASE's come on top)
OWN_FORMATS = ("netcdf", "zarr", "lammps-dump", "lammps-data", "dcd", "xtc", "trr", "ncdf",
               "amber-netcdf", "pdb", "gro", "ase")
LAMMPS_DUMP_FORMATS = ("lammps-dump", "lammpstrj", "lammps")
#: first bytes of an HDF5 (netCDF4) file
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def unit_styles() -> tuple[str, ...]:
    """The LAMMPS unit styles the reader knows (``--units`` choices)."""
    from atomtwin.toolkit.io.lammps_units import LAMMPS_UNIT_STYLES

    return tuple(LAMMPS_UNIT_STYLES)


def ase_formats() -> list[str]:
    """ASE's readable format names."""
    from ase.io.formats import ioformats

    return sorted(name for name, f in ioformats.items() if f.can_read)


def check_format(fmt: str | None) -> str | None:
    """``fmt`` lower-cased, or an :class:`InputError` listing the valid names."""
    if fmt is None:
        return None
    low = fmt.lower()
    if low in OWN_FORMATS or low in LAMMPS_DUMP_FORMATS or low in ase_formats():
        return low
    raise InputError(f"unknown --format '{fmt}'. Fix: use one of {', '.join(OWN_FORMATS)}, or an ASE "
                     f"format: {', '.join(ase_formats())}.")


def _is_lammps_dump(path: str, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt in LAMMPS_DUMP_FORMATS or fmt == "lammps-dump-text"
    from atomtwin.toolkit.io import LAMMPS_DUMP_SUFFIXES

    low = Path(path).name.lower()
    return low.endswith(LAMMPS_DUMP_SUFFIXES) or ".lammpstrj" in low or ".dump" in low


def parse_frames(text: str | None) -> slice | None:
    """``"a:b"`` or ``"a:b:c"`` (python slice syntax) -> slice; None -> None."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        vals = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise InputError(f"--frames '{text}' is not a:b or a:b:c (python slice syntax, integers).") from None
    if len(vals) == 3 and vals[2] is not None and vals[2] < 1:
        raise InputError(f"--frames '{text}': the step must be >= 1.")
    return slice(*vals)


def _reader_options(args, path: str) -> tuple[str | None, dict]:
    """The format and the reader keywords from the shared reader arguments; options that
    do not apply to the file's format are refused (never silently ignored)."""
    fmt = check_format(getattr(args, "format", None))
    if fmt is None and path.rstrip("/").endswith(".partial"):
        fmt = "zarr"  # an unfinished TrajectoryWriter store (``run.nc.partial``) is zarr
    opts = {}
    lammps = _is_lammps_dump(path, fmt)
    for flag, attr, key in (("--species-map", "species_map", "species_map"),
                            ("--data-file", "data_file", "data_file"),
                            ("--units", "units", "units")):
        value = getattr(args, attr, None)
        if value is None:
            continue
        if not lammps:
            raise InputError(f"{flag} applies to LAMMPS dumps only; '{path}' is not one (it names its "
                             f"species and units itself). Fix: drop {flag}, or give --format lammps-dump "
                             "if the file is a LAMMPS dump.")
        opts[key] = value
    store = fmt in ("netcdf", "zarr") or (fmt is None and _is_store_name(path))
    if getattr(args, "timestep", None) is not None:
        if store:
            raise InputError(f"--timestep does not apply to '{path}': an atomtwin store keeps its own "
                             "times. Fix: drop --timestep.")
        if not args.timestep > 0:
            raise InputError(f"--timestep must be > 0 ps, got {args.timestep}.")
        opts["timestep_ps"] = args.timestep
    if getattr(args, "topology", None):
        if store or lammps:
            raise InputError(f"--topology does not apply to '{path}' (it is for DCD/XTC/TRR/AMBER "
                             "files read through MDAnalysis). Fix: drop --topology.")
        opts["topology"] = args.topology
    return fmt, opts


def _is_store_name(path: str) -> bool:
    from atomtwin.toolkit.io import store_format

    try:
        store_format(path)
    except ValueError:
        return False
    return True


def add_reader_arguments(p) -> None:
    """Options every command that reads a trajectory shares."""
    p.add_argument("--format", help="reader name when the file name does not tell (e.g. lammps-dump, extxyz)")
    p.add_argument("--species-map", help="LAMMPS type to species, e.g. 1=Li,2=S")
    p.add_argument("--data-file", help="LAMMPS data file giving species by Masses")
    p.add_argument("--units", choices=unit_styles(),
                   help="LAMMPS unit style of a dump (default: the style the dump declares with "
                        "dump_modify units yes, else metal); converted to Å, Å/ps, eV/Å, eV")
    p.add_argument("--topology", help="topology for DCD/XTC/TRR/NetCDF (PDB, GRO, PSF, PRMTOP, data)")
    p.add_argument("--timestep", type=float, help="MD time step in ps (LAMMPS dumps store step numbers)")


def open_input(args, lazy: bool = True):
    """The trajectory named on the command line (``args.traj`` or ``args.input``) as a
    schema Dataset, read with the shared reader options."""
    from atomtwin.toolkit.io import read

    path = args.traj if hasattr(args, "traj") else args.input
    fmt, opts = _reader_options(args, str(path))
    return read(path, fmt, lazy=lazy, **opts)


def require_species(ds, **flags) -> None:
    """Refuse species named on the command line that the trajectory lacks, e.g.
    ``require_species(ds, species=["Li"], donor="O")`` (keywords are the flag names)."""
    from atomtwin.toolkit import schema as S

    present = sorted(set(np.asarray(ds[S.SPECIES].values).astype(str).tolist()))
    for name, value in flags.items():
        if value is None:
            continue
        missing = [v for v in ([value] if isinstance(value, str) else value) if v not in present]
        if missing:
            flag = "--" + name.replace("_", "-")
            names = ", ".join(f"'{m}'" for m in missing)
            raise InputError(f"{flag}: {names} {'is' if len(missing) == 1 else 'are'} not in the "
                             f"trajectory (it holds {', '.join(present)}). Fix: choose {flag} among those.")


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a trajectory to netCDF4 or zarr (or any format to the schema)")
    p.add_argument("input")
    p.add_argument("output", help="*.nc or *.zarr")
    add_reader_arguments(p)
    p.add_argument("--stride", type=int, default=1, help="keep every N-th frame")
    p.add_argument("--frames", help="frame range a:b (python slice syntax)")
    p.add_argument("--chunk", type=int, default=64, help="frames per chunk on disk")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output that atomtwin wrote (netCDF file or zarr store)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("info", help="summarise a trajectory (also an unfinished *.partial store)")
    p.add_argument("traj")
    add_reader_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)


def _is_store(path: Path) -> bool:
    """True for a netCDF4 file or a zarr store atomtwin wrote (what ``--force`` may replace)."""
    if path.is_dir():
        from atomtwin.toolkit.io import is_atomtwin_zarr

        return is_atomtwin_zarr(path)
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def check_target(output: Path, inputs: list[str], force: bool) -> None:
    """Refuse a target that would replace the input, or anything atomtwin did not write."""
    if not _is_store_name(str(output)) or output.name.endswith(".partial"):
        raise InputError(f"the output '{output}' must be named *.nc (netCDF4) or *.zarr. "
                         "Fix: e.g. traj.nc.")
    if any(Path(i).resolve() == output.resolve() for i in inputs):
        raise InputError(f"the output '{output}' is the input. Fix: give a new output name.")
    if not output.parent.is_dir():
        raise InputError(f"the folder of the output '{output}' does not exist. Fix: create "
                         f"'{output.parent}' first.")
    if not (output.exists() or output.is_symlink()):
        return
    kind = "folder" if output.is_dir() else "file"
    if not force:
        raise InputError(f"the output '{output}' already exists ({kind}); nothing was written. "
                         "Fix: give a new output name, or --force to replace a previous atomtwin output.")
    if output.is_symlink() or not _is_store(output):
        raise InputError(f"the output '{output}' exists and is not a netCDF/zarr store atomtwin wrote "
                         f"({kind}); --force replaces only those. Fix: move it away or give a new "
                         "output name.")


def write_result(res, output, flag: str) -> Path:
    """Write an analysis result (a Dataset) to netCDF under a temporary name, then rename:
    never half a file, and an existing folder at ``output`` is refused, not replaced."""
    import os

    path = Path(output)
    if path.is_dir():
        raise InputError(f"{flag} '{path}' is a folder. Fix: give a file name (*.nc).")
    if not path.parent.is_dir():
        raise InputError(f"the folder of {flag} '{path}' does not exist. Fix: create '{path.parent}' first.")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        res.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write(ds, output: Path, chunk: int, force: bool, show: bool) -> Path:
    from atomtwin.toolkit.io import write

    kw = {"chunk_frames": chunk, "progress": False, "overwrite": force}
    if not show:
        return write(ds, output, **kw)
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr, minimum=1.0):  # dask prints on stdout by default
        return write(ds, output, **kw)


def cmd_convert(args) -> int:
    from atomtwin.toolkit import progress
    from atomtwin.toolkit import schema as S

    if args.stride < 1:
        raise InputError(f"--stride must be >= 1, got {args.stride}.")
    if args.chunk < 1:
        raise InputError(f"--chunk must be >= 1 frame, got {args.chunk}.")
    sel = parse_frames(args.frames) or slice(None)
    output = Path(args.output)
    check_target(output, [args.input], args.force)
    ds = open_input(args, lazy=True)
    idx = np.arange(ds.sizes[S.FRAME])[sel][:: args.stride]
    if idx.size == 0:
        raise InputError(f"--frames {args.frames} with --stride {args.stride} selects no frame of "
                         f"{ds.sizes[S.FRAME]}.")
    if idx.size != ds.sizes[S.FRAME]:
        ds = ds.isel({S.FRAME: idx})
    out = _write(ds, output, args.chunk, args.force, progress.enabled() and not args.no_progress)
    summary = {"input": str(args.input), "output": str(out), "frames": int(ds.sizes[S.FRAME]),
               "atoms": int(ds.sizes[S.ATOM])}
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        print(f"wrote {summary['frames']} frames x {summary['atoms']} atoms to {out}", file=sys.stderr)
    return 0


def summarize(ds) -> dict:
    """A JSON-able summary of a trajectory."""
    from atomtwin.toolkit import schema as S

    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    names, counts = np.unique(sp, return_counts=True)
    info = {
        "frames": int(ds.sizes[S.FRAME]),
        "atoms": int(ds.sizes[S.ATOM]),
        "composition": {str(n): int(c) for n, c in zip(names, counts, strict=True)},
        "variables": sorted(k for k in ds.data_vars),
        "periodic": [bool(x) for x in S.pbc_of(ds)],
        "source": str(ds.attrs.get(S.SOURCE, "")),
    }
    if S.TIME in ds.coords:
        t = np.asarray(ds[S.TIME].values)
        info["time_ps"] = [float(t[0]), float(t[-1])]
        if t.size > 1:
            dt = np.diff(t)
            info["frame_spacing_ps"] = float(dt[0]) if np.allclose(dt, dt[0]) else "uneven"
    if S.CELL in ds:
        c0 = np.asarray(ds[S.CELL].isel({S.FRAME: 0}).values)
        c1 = np.asarray(ds[S.CELL].isel({S.FRAME: -1}).values)
        info["volume_A3"] = [float(abs(np.linalg.det(c0))), float(abs(np.linalg.det(c1)))]
    return info


def cmd_info(args) -> int:
    ds = open_input(args, lazy=True)
    info = summarize(ds)
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(info)
        return 0
    print(f"{args.traj}: {info['frames']} frames x {info['atoms']} atoms")
    print("  composition: " + ", ".join(f"{k}{v}" for k, v in info["composition"].items()))
    print("  variables:   " + ", ".join(info["variables"]))
    print(f"  periodic:    {info['periodic']}")
    if "time_ps" in info:
        print(f"  time:        {info['time_ps'][0]:g} .. {info['time_ps'][1]:g} ps "
              f"(spacing {info.get('frame_spacing_ps', '-')})")
    if "volume_A3" in info:
        print(f"  volume:      {info['volume_A3'][0]:.3f} .. {info['volume_A3'][1]:.3f} Å^3")
    return 0
