"""``atomtwin convert`` and ``atomtwin info``."""

from __future__ import annotations

import sys

import numpy as np


def parse_frames(text: str | None) -> slice | None:
    """``"a:b"`` or ``"a:b:c"`` (python slice syntax) -> slice; None -> None."""
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"--frames '{text}' is not a:b or a:b:c (python slice syntax).")
    vals = [int(p) if p.strip() else None for p in parts]
    return slice(*vals)


def _reader_options(args) -> dict:
    opts = {}
    if getattr(args, "species_map", None):
        opts["species_map"] = args.species_map
    if getattr(args, "data_file", None):
        opts["data_file"] = args.data_file
    if getattr(args, "timestep", None) is not None:
        opts["timestep_ps"] = args.timestep
    if getattr(args, "topology", None):
        opts["topology"] = args.topology
    if getattr(args, "format", None):
        opts["format"] = args.format
    return opts


def add_reader_arguments(p) -> None:
    """Options every command that reads a trajectory shares."""
    p.add_argument("--format", help="reader name when the file name does not tell (e.g. lammps-dump, extxyz)")
    p.add_argument("--species-map", help="LAMMPS type to species, e.g. 1=Li,2=S")
    p.add_argument("--data-file", help="LAMMPS data file giving species by Masses")
    p.add_argument("--topology", help="topology for DCD/XTC/TRR/NetCDF (PDB, GRO, PSF, PRMTOP, data)")
    p.add_argument("--timestep", type=float, help="MD time step in ps (LAMMPS dumps store step numbers)")


def open_input(args, lazy: bool = True):
    from atomtwin.toolkit.io import read

    opts = _reader_options(args)
    fmt = opts.pop("format", None)
    return read(args.traj if hasattr(args, "traj") else args.input, fmt, lazy=lazy, **opts)


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a trajectory to netCDF4 or zarr (or any format to the schema)")
    p.add_argument("input")
    p.add_argument("output", help="*.nc or *.zarr")
    add_reader_arguments(p)
    p.add_argument("--stride", type=int, default=1, help="keep every N-th frame")
    p.add_argument("--frames", help="frame range a:b (python slice syntax)")
    p.add_argument("--chunk", type=int, default=64, help="frames per chunk on disk")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("info", help="summarise a trajectory")
    p.add_argument("traj")
    add_reader_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)


def cmd_convert(args) -> int:
    from atomtwin.toolkit import schema as S
    from atomtwin.toolkit.io import write

    if args.stride < 1:
        raise ValueError(f"--stride must be >= 1, got {args.stride}.")
    ds = open_input(args, lazy=True)
    sel = parse_frames(args.frames) or slice(None)
    idx = np.arange(ds.sizes[S.FRAME])[sel][:: args.stride]
    if idx.size == 0:
        raise ValueError(f"--frames {args.frames} with --stride {args.stride} selects no frame of {ds.sizes[S.FRAME]}.")
    if idx.size != ds.sizes[S.FRAME]:
        ds = ds.isel({S.FRAME: idx})
    out = write(ds, args.output, chunk_frames=args.chunk, progress=not (args.no_progress or args.json))
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
        print(f"  time:        {info['time_ps'][0]:g} .. {info['time_ps'][1]:g} ps (spacing {info.get('frame_spacing_ps', '-')})")
    if "volume_A3" in info:
        print(f"  volume:      {info['volume_A3'][0]:.3f} .. {info['volume_A3'][1]:.3f} Å^3")
    return 0
