"""``atomtwin spectrum TRAJ --kind vdos|ir|dielectric``."""

from __future__ import annotations

import sys

import numpy as np

KINDS = ("vdos", "ir", "dielectric")
#: spellings of the frequency units (``--unit``)
FREQUENCY_UNITS = ("thz", "cm-1", "cm^-1", "1/cm", "invcm")


def register(sub) -> None:
    from atomtwin.toolkit.cli.io_commands import add_reader_arguments

    p = sub.add_parser("spectrum", help="VDOS, IR absorption or dielectric function of a trajectory")
    p.add_argument("traj")
    p.add_argument("--kind", choices=KINDS, default="vdos")
    add_reader_arguments(p)
    p.add_argument("--max-lag", type=float, help="correlation length in ps (resolution ~ 1/max_lag)")
    p.add_argument("--blocks", type=int, default=4, help="blocks for standard errors (default 4)")
    p.add_argument("--window", default="hann", help="lag window: hann, blackman, gaussian, none")
    p.add_argument("--unit", default=None, help="frequency unit: THz or cm-1 (default: cm-1 for ir, else THz)")
    p.add_argument("--max-frequency", type=float, help="highest frequency, in --unit")
    p.add_argument("--resolution", type=float,
                   help="finest feature width to resolve, in --unit (refused, with the trajectory length "
                        "needed, when the run is too short for it)")
    p.add_argument("--temperature", type=float, help="K (default: kinetic temperature of the velocities)")
    p.add_argument("--volume", type=float, help="Å^3 (default: mean cell volume)")
    p.add_argument("--quantum-correction", default="harmonic",
                   help="ir: harmonic (classical), standard, schofield or none")
    p.add_argument("--source", default="auto", help="ir/dielectric: auto, born_charges, polarization, dipole")
    p.add_argument("--eps-inf", type=float, default=1.0, help="dielectric: electronic eps_inf (default 1)")
    p.add_argument("--output", help="write the spectrum as netCDF (*.nc)")
    p.add_argument("--plot", help="save a figure (png/pdf by suffix)")
    p.add_argument("--json", action="store_true", help="print the spectrum as JSON")
    p.set_defaults(func=cmd_spectrum)


def check_arguments(args) -> None:
    """Refuse impossible option values before the trajectory is read (one line each)."""
    from atomtwin.toolkit.errors import InputError
    from atomtwin.toolkit.spectra.correlation import WINDOWS
    from atomtwin.toolkit.spectra.ir import QUANTUM_CORRECTIONS, SOURCES

    if args.window.lower() not in WINDOWS:
        raise InputError(f"unknown --window '{args.window}'. Fix: use one of {', '.join(sorted(WINDOWS))}.")
    if args.unit is not None and args.unit.lower().replace(" ", "") not in FREQUENCY_UNITS:
        raise InputError(f"unknown --unit '{args.unit}'. Fix: use THz or cm-1.")
    if args.quantum_correction.lower() not in QUANTUM_CORRECTIONS:
        raise InputError(f"unknown --quantum-correction '{args.quantum_correction}'. "
                         f"Fix: use one of {', '.join(QUANTUM_CORRECTIONS)}.")
    if args.source not in SOURCES:
        raise InputError(f"unknown --source '{args.source}'. Fix: use one of {', '.join(SOURCES)}.")
    if args.blocks < 1:
        raise InputError(f"--blocks must be >= 1, got {args.blocks}.")
    for flag, value, unit in (("--max-lag", args.max_lag, "ps"), ("--max-frequency", args.max_frequency, ""),
                              ("--resolution", args.resolution, ""),
                              ("--temperature", args.temperature, "K"), ("--volume", args.volume, "Å^3")):
        if value is not None and not value > 0:
            raise InputError(f"{flag} must be > 0{' ' + unit if unit else ''}, got {value}.")
    if args.output and not args.output.lower().endswith((".nc", ".nc4")):
        raise InputError(f"--output '{args.output}' must be a netCDF file name (*.nc).")


def compute(ds, args):
    from atomtwin.toolkit import spectra

    common = dict(max_lag=args.max_lag, n_blocks=args.blocks, window=args.window,
                  max_frequency=args.max_frequency, resolution=args.resolution)
    if args.kind == "vdos":
        return spectra.vdos(ds, unit=args.unit or "THz", temperature=args.temperature, **common)
    if args.kind == "ir":
        return spectra.ir_spectrum(ds, unit=args.unit or "cm-1", temperature=args.temperature,
                                   volume=args.volume, quantum_correction=args.quantum_correction,
                                   source=args.source, **common)
    return spectra.dielectric_function(ds, unit=args.unit or "THz", eps_inf=args.eps_inf, source=args.source,
                                       temperature=args.temperature, volume=args.volume, **common)


def summarize(res, kind: str) -> dict:
    """JSON-able result: frequencies, values, errors, the strongest peaks and the attrs."""
    main = {"vdos": "vdos_total", "ir": "absorption", "dielectric": "eps_imag"}[kind]
    nu = res["frequency"].values
    y = res[main].values
    inner = np.flatnonzero((y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:])) + 1
    peaks = inner[np.argsort(y[inner])[::-1][:5]]
    out = {"kind": kind, "frequency_unit": res["frequency"].attrs["units"],
           "peaks": [float(nu[i]) for i in sorted(peaks)],
           "attrs": {k: v for k, v in res.attrs.items()},
           "frequency": nu, "variables": {}}
    for name, da in res.data_vars.items():
        out["variables"][name] = {"units": da.attrs.get("units", ""), "dims": list(da.dims),
                                  "values": da.values.tolist()}
    if "species" in res.coords:
        out["species"] = [str(s) for s in res["species"].values]
    return out


def cmd_spectrum(args) -> int:
    from atomtwin.toolkit.cli.io_commands import open_input

    check_arguments(args)
    ds = open_input(args, lazy=True)
    res = compute(ds, args)
    if args.output:
        from atomtwin.toolkit.cli.io_commands import write_result

        write_result(res, args.output, "--output")
    if args.plot:
        from atomtwin.toolkit.plot import save
        from atomtwin.toolkit.plot.spectra import plot_spectrum

        fig, _ = plot_spectrum(res)
        save(fig, args.plot)
    summary = summarize(res, args.kind)
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        peaks = summary["peaks"]
        print(f"{args.kind} of {args.traj}: "
              + ("peaks at " + ", ".join(f"{p:.4g}" for p in peaks) + f" {summary['frequency_unit']}"
                 if peaks else "no peak inside the band"))
        if args.kind == "dielectric":
            print(f"  static eps = {float(res['eps_static']):.4g} +- {float(res['eps_static_std_err']):.2g}"
                  f" (eps_inf {res.attrs['eps_inf']:g}, conducting boundary conditions)")
        print(f"  resolution {res.attrs['resolution_thz']:.3g} THz, {res.attrs['n_blocks']} blocks", file=sys.stderr)
    return 0
