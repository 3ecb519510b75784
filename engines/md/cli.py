"""``atomtwin md config.yaml``: a thin wrapper over :func:`atomtwin.engines.md.run`."""

from __future__ import annotations


def _run(args) -> int:
    from atomtwin.engines.md.config import MDConfig
    from atomtwin.engines.md.runner import run

    cfg = MDConfig.from_yaml(args.config)
    if args.no_progress:
        import dataclasses

        cfg = dataclasses.replace(cfg, progress=False)
    res = run(cfg, resume=True if args.resume else None, steps=args.steps)
    summary = {
        "output": str(res.output), "frames": res.n_frames, "steps": res.steps,
        "final_step": res.state.step, "time_ps": res.state.time, "wall_s": res.wall_s,
        "ns_per_day": res.ns_per_day, "atom_steps_per_s": res.atom_steps_per_s,
    }
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        import sys

        print(f"wrote {res.n_frames} frames to {res.output} ({res.ns_per_day:.3g} ns/day)", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("md", help="run molecular dynamics from a YAML config")
    p.add_argument("config", help="YAML config (see atomtwin.engines.md.config)")
    p.add_argument("--resume", action="store_true", help="continue from the config's checkpoint")
    p.add_argument("--steps", type=int, help="override the total number of steps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run)
