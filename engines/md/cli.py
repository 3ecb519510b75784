"""``atomtwin md config.yaml [--resume | --force]``: a thin wrapper over :func:`atomtwin.engines.md.run`."""

from __future__ import annotations


def _run(args) -> int:
    import dataclasses
    import sys

    from atomtwin.engines.md.config import MDConfig
    from atomtwin.engines.md.runner import MDBlowUp, run
    from atomtwin.toolkit.cli import CLIError

    cfg = MDConfig.from_yaml(args.config)
    if args.no_progress:
        cfg = dataclasses.replace(cfg, progress=False)
    if cfg.engine == "lammps":
        return _run_lammps(cfg, args)
    try:
        res = run(cfg, resume=args.resume, overwrite=args.force, steps=args.steps)
    except MDBlowUp as err:  # a physical outcome of the user's settings: one line, exit 2
        raise CLIError(str(err)) from err
    summary = {
        "output": str(res.output), "frames": res.n_frames, "steps": res.steps,
        "final_step": res.state.step, "time_ps": res.state.time, "wall_s": res.wall_s,
        "ns_per_day": res.ns_per_day, "atom_steps_per_s": res.atom_steps_per_s,
    }
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        print(f"wrote {res.n_frames} frames to {res.output} ({res.ns_per_day:.3g} ns/day)", file=sys.stderr)
    return 0


def _run_lammps(cfg, args) -> int:
    import sys

    from atomtwin.engines.lammps.md import run_md

    res = run_md(cfg, resume=args.resume, overwrite=args.force, steps=args.steps)
    summary = {"output": str(res.output), "frames": res.n_frames, "steps": res.steps,
               "final_step": res.final_step, "wall_s": res.wall_s, "ns_per_day": res.ns_per_day,
               "engine": "lammps", "nprocs": cfg.lammps.nprocs}
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        print(f"wrote {res.n_frames} frames to {res.output} (LAMMPS, {cfg.lammps.nprocs} ranks, "
              f"{res.ns_per_day:.3g} ns/day)", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("md", help="run molecular dynamics from a YAML config",
                       description="Run MD from a YAML config (atomtwin.engines.md.config.MDConfig); "
                                   "`engine: lammps` runs it in LAMMPS on `lammps.nprocs` MPI ranks "
                                   "with pair_style atomtwin and converts the dump.")
    p.add_argument("config", help="YAML config (see atomtwin.engines.md.config)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue from the config's checkpoint; without one (a run stopped before "
                            "its first checkpoint) discard its partial trajectory and start from step 0")
    again.add_argument("--force", action="store_true",
                       help="delete an earlier run's trajectory, partial store and checkpoint, and start over")
    p.add_argument("--steps", type=int, help="override the total number of steps (>= 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run)
