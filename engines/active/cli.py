"""``atomtwin learn config.yaml [--resume | --force] [--cluster ADDRESS]``: a thin wrapper
over :func:`atomtwin.engines.active.learn`."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    import sys

    from atomtwin.engines.active.config import load_config
    from atomtwin.engines.active.loop import learn
    from atomtwin.engines.active.references import ReferenceFailures
    from atomtwin.toolkit.cli import CLIError

    cfg = load_config(args.config)
    try:
        res = learn(
            cfg,
            resume=args.resume,
            overwrite=args.force,
            cluster=args.cluster,
            progress=False if (args.no_progress or args.json) else None,
        )
    except ReferenceFailures as err:  # the reference's outcome, not a bug: one line, exit 2
        raise CLIError(f"ReferenceFailures: {err}") from err
    summary = {
        "model": str(res.model),
        "dataset": str(res.dataset),
        "calls": res.n_calls,
        "failed_calls": res.n_failed,
        "frames": res.n_frames,
        "rounds": res.rounds,
        "reused_calls": res.reused_calls,
        "finished": res.finished,
        "learning_curve": str(res.learning_curve_csv),
        "figure": str(res.figure) if res.figure else None,
    }
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        print(
            f"{res.n_calls} reference calls ({res.n_failed} failed), {res.n_frames} frames; "
            f"model {res.model}, dataset {res.dataset}",
            file=sys.stderr,
        )
    return 0


def register(sub) -> None:
    """Add ``atomtwin learn``."""
    p = sub.add_parser(
        "learn",
        help="active learning of a potential against a reference calculator",
        description="On-the-fly active learning (keys: atomtwin.engines.active.config.LearnConfig): MD "
        "walkers run with the current model, an uncertain frame is labelled by the "
        "reference (any ASE calculator), the model is updated and the walker resumes. "
        "Writes model.ckpt, dataset.extxyz, calls.csv, learning_curve.csv/.png and "
        "state.pt in output_dir; a killed run continues with --resume.",
    )
    p.add_argument("config", help="YAML file with the active-learning config")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in output_dir")
    again.add_argument(
        "--force", action="store_true", help="delete a previous run in output_dir and start over"
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="dask scheduler address: reference calls of a round run there in parallel",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run)
