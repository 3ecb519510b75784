"""``atomtwin phonons STRUCTURE --calculator emt|lj|module:factory``."""

from __future__ import annotations

import sys
from importlib import import_module

import numpy as np
from atomtwin.toolkit.errors import FileFormatError, InputError

BUILTIN = ("emt", "lj", "morse")


def make_calculator(spec: str):
    """An ASE calculator from a name (``emt``, ``lj``, ``morse``) or ``package.module:factory``.

    The factory is called without arguments and must return an ASE calculator; this is how a
    learned potential's calculator is used without the toolkit importing any engine.
    """
    key = spec.lower()
    if key == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if key == "lj":
        from ase.calculators.lj import LennardJones

        return LennardJones()
    if key == "morse":
        from ase.calculators.morse import MorsePotential

        return MorsePotential()
    if ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            factory = getattr(import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise InputError(f"cannot load calculator factory '{spec}': {err}. Fix: give an importable "
                             "'package.module:function' returning an ASE calculator.") from err
        return factory()
    raise InputError(f"unknown calculator '{spec}'. Fix: use one of {BUILTIN} or 'package.module:factory'.")


def register(sub) -> None:
    p = sub.add_parser("phonons", help="phonons (phonopy) of a structure with an ASE calculator")
    p.add_argument("structure", help="any file ASE reads (POSCAR, CIF, extxyz, ...)")
    p.add_argument("--calculator", default="emt", help=f"{', '.join(BUILTIN)} or package.module:factory")
    p.add_argument("--compare", help="a second calculator: compare the two dispersions")
    p.add_argument("--supercell", type=int, nargs=3, default=(2, 2, 2), metavar=("N1", "N2", "N3"))
    p.add_argument("--mesh", type=int, nargs=3, default=(12, 12, 12), metavar=("M1", "M2", "M3"))
    p.add_argument("--displacement", type=float, default=0.01, help="Å")
    p.add_argument("--force-threshold", type=float, default=1e-2, help="eV/Å: warn above (unrelaxed)")
    p.add_argument("--band-points", type=int, default=101)
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 100.0, 300.0, 600.0, 1000.0])
    p.add_argument("--plot", help="save the band structure + DOS figure (png/pdf by suffix)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_phonons)


def check_arguments(args) -> None:
    """Refuse impossible option values before any force is computed."""
    from pathlib import Path

    if not Path(args.structure).is_file():
        raise InputError(f"no such file: '{args.structure}'.")
    for flag, values in (("--supercell", args.supercell), ("--mesh", args.mesh)):
        if min(values) < 1:
            raise InputError(f"{flag} must be three integers >= 1, got {list(values)}.")
    if not args.displacement > 0:
        raise InputError(f"--displacement must be > 0 Å, got {args.displacement}.")
    if args.band_points < 2:
        raise InputError(f"--band-points must be >= 2, got {args.band_points}.")
    if min(args.temperatures) < 0:
        raise InputError(f"--temperatures must be >= 0 K, got {args.temperatures}.")


def cmd_phonons(args) -> int:
    import warnings

    from ase.io import read
    from ase.io.formats import UnknownFileTypeError
    from atomtwin.toolkit import phonons as P

    check_arguments(args)
    calc = make_calculator(args.calculator)
    if args.compare:
        make_calculator(args.compare)  # a wrong second name fails now, not after the first run
    try:
        atoms = read(args.structure)
    except UnknownFileTypeError as err:
        raise FileFormatError(args.structure, f"not a structure format ASE reads ({err}).",
                              "give a POSCAR, CIF, extxyz or another ASE format.") from err
    except (ValueError, IndexError, KeyError, StopIteration) as err:  # ASE's parse errors
        raise FileFormatError(args.structure, f"ASE cannot read it: {type(err).__name__}: {err}",
                              "check that the file is complete and of the format its name says.") from err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", P.UnrelaxedStructureWarning)
        ph = P.compute_phonons(atoms, calc, supercell=args.supercell, displacement=args.displacement,
                               force_threshold=args.force_threshold)
    notes = [str(w.message) for w in caught if issubclass(w.category, P.UnrelaxedStructureWarning)]
    for n in notes:
        print(f"atomtwin phonons: warning: {n}", file=sys.stderr)
    bands = P.band_structure(ph, npoints=args.band_points)
    dos = P.phonon_dos(ph, mesh=args.mesh)
    thermo = P.thermal_properties(ph, args.temperatures, mesh=args.mesh)
    labels = bands.attrs["labels"]
    xl = np.asarray(bands.attrs["label_distances"])
    x = bands["distance"].values
    at_labels = {f"{lab}@{i}": bands["frequency"].values[int(np.argmin(np.abs(x - d)))].tolist()
                 for i, (lab, d) in enumerate(zip(labels, xl, strict=True))}
    summary = {
        "structure": str(args.structure), "calculator": args.calculator,
        "primitive_atoms": len(ph.primitive), "supercell": list(args.supercell),
        "residual_max_force_eV_A": ph.residual_max_force, "warnings": notes,
        "path": bands.attrs["path"], "frequencies_at_labels_THz": at_labels,
        "min_frequency_THz": float(bands["frequency"].min()), "max_frequency_THz": float(bands["frequency"].max()),
        "thermal": {"temperature_K": thermo["temperature"].values, "free_energy_eV": thermo["free_energy"].values,
                    "entropy_kB": thermo["entropy"].values, "heat_capacity_kB": thermo["heat_capacity"].values},
    }
    comparison = None
    if args.compare:
        comparison = P.compare_phonons(atoms, calc, make_calculator(args.compare),
                                       labels=(args.calculator, args.compare if args.compare != args.calculator
                                               else f"{args.compare} (2)"), supercell=args.supercell,
                                       npoints=args.band_points, mesh=args.mesh)
        summary["comparison"] = {k: comparison.attrs[k] for k in
                                 ("rms_difference_thz", "max_abs_difference_thz", "mesh_rms_difference_thz")}
    if args.plot:
        from atomtwin.toolkit.plot import save
        from atomtwin.toolkit.plot.phonons import plot_band_structure

        fig, _ = plot_band_structure(bands, dos=dos, comparison=comparison)
        save(fig, args.plot)
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        print(f"phonons of {args.structure} ({args.calculator}): {summary['min_frequency_THz']:.3f} .. "
              f"{summary['max_frequency_THz']:.3f} THz along {summary['path']}")
        for t, f, c in zip(thermo["temperature"].values, thermo["free_energy"].values,
                           thermo["heat_capacity"].values, strict=True):
            print(f"  T = {t:6.1f} K   F = {f:+.5f} eV/cell   C_v = {c:.4f} k_B/cell")
        if "comparison" in summary:
            print(f"  vs {args.compare}: rms difference {summary['comparison']['rms_difference_thz']:.4f} THz")
    return 0
