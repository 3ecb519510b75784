"""``atomtwin phase-diagram SPEC.yaml [--cluster ADDRESS] [--json]``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("phase-diagram", help="run a (P, T) ensemble on dask and build the phase diagram")
    p.add_argument("spec", help="YAML spec (see atomtwin.toolkit.phases.spec)")
    p.add_argument("--cluster", metavar="ADDRESS", help="dask.distributed scheduler, e.g. tcp://host:8786")
    p.add_argument("--scheduler", choices=("serial", "threads", "processes"), help="override the spec's local scheduler")
    p.add_argument("--workers", type=int, help="local workers (threads/processes)")
    p.add_argument("--out", help="folder for results.nc and the figure (default: the spec's workdir)")
    p.add_argument("--retry-failed", action="store_true", help="rerun points stored as failed")
    p.add_argument("--no-figure", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=cmd_phase_diagram)


def build_diagram(result, options: dict) -> dict:
    """Classification, boundary, Clapeyron slope and hysteresis from an EnsembleResult."""
    from functools import partial

    from atomtwin.toolkit.phases.classify import (
        classify_phases,
        clausius_clapeyron,
        hysteresis,
        phase_boundary,
    )

    out: dict = {}
    opts = dict(options)
    bopts = opts.pop("boundary", {})
    low, high = opts.pop("low", "solid"), opts.pop("high", "liquid")
    if "criteria" not in opts and "names" not in opts:
        opts.setdefault("names", {"q6_bar": [high, low]})
    grid = result.grid
    if grid is not None and np.isfinite(grid.get("q6_bar", grid[next(iter(grid.data_vars))])).sum() >= 2:
        try:
            phase = classify_phases(grid, **opts)
        except ValueError as err:  # too few usable runs: the results are still written
            out["classification_note"] = str(err)
            return out
        out["phase"] = phase
        if grid.sizes["pressure"] < 2:
            out["boundary_note"] = "a boundary in (P, T) needs at least two pressures"
            return out
        try:
            b = phase_boundary(None, None, phase, **bopts)
            out["boundary"] = b
            out["clausius_clapeyron"] = clausius_clapeyron(b) if b.sizes["pressure"] > 1 else None
        except ValueError as err:
            out["boundary_note"] = str(err)
    if result.ramps:
        out["hysteresis"] = hysteresis(result.ramps, partial(classify_phases, **opts), low=low, high=high)
    return out


def cmd_phase_diagram(args) -> int:
    import dataclasses

    from atomtwin.toolkit.cli import CLIError, emit_json
    from atomtwin.toolkit.cli.io_commands import write_result
    from atomtwin.toolkit.phases.ensemble import run_ensemble
    from atomtwin.toolkit.phases.spec import PhaseSpec

    spec = PhaseSpec.from_yaml(args.spec)
    changes = {}
    if args.cluster:
        changes.update(scheduler="distributed", address=args.cluster)
    elif args.scheduler:
        changes.update(scheduler=args.scheduler)
    if args.workers:
        changes["n_workers"] = args.workers
    if changes:
        spec = dataclasses.replace(spec, **changes)
    try:
        result = run_ensemble(spec, progress=not args.quiet, retry_failed=args.retry_failed)
    except ConnectionError as err:
        raise CLIError(str(err)) from err
    diagram = build_diagram(result, spec.classify)
    out_dir = Path(args.out or spec.workdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    if result.grid is not None:
        grid = result.grid.copy()
        if "phase" in diagram:
            grid["phase"] = diagram["phase"]
        files.append(str(write_result(grid, out_dir / "results.nc", "--out")))
    if "boundary" in diagram:
        files.append(str(write_result(diagram["boundary"], out_dir / "boundary.nc", "--out")))
    if "phase" in diagram and not args.no_figure:
        from atomtwin.toolkit.plot.phases import plot_phase_diagram
        from atomtwin.toolkit.plot.style import save

        fig, _ = plot_phase_diagram(diagram["phase"], diagram.get("boundary"), coexistence=result.coexistence)
        files += [str(p) for p in save(fig, out_dir / "phase_diagram.png", formats=("png", "pdf"))]
    for f in result.failed:
        print(f"[phases] failed point {f['key']}: {f['reason']} (left out)", file=sys.stderr)
    summary = {
        "n_points_run": result.n_run,
        "n_points_reused": result.n_reused,
        "failed": [{k: f[k] for k in ("key", "P", "T", "reason")} for f in result.failed],
        "files": files,
    }
    if "phase" in diagram:
        ph = diagram["phase"]
        summary["phases"] = {
            f"P={float(p):g} GPa": dict(zip([f"{float(t):g}" for t in ph.temperature.values],
                                            ph.sel(pressure=p).values.tolist(), strict=True))
            for p in ph.pressure.values
        }
    if "boundary" in diagram:
        b = diagram["boundary"]
        summary["boundary"] = {"pressure_GPa": b.pressure.values, "temperature_K": b.temperature.values,
                               "lower_K": b.lower.values, "upper_K": b.upper.values,
                               "phases": b.attrs["phases"]}
        summary["clausius_clapeyron"] = diagram.get("clausius_clapeyron")
    if "hysteresis" in diagram:
        h = diagram["hysteresis"]
        summary["hysteresis"] = {"pressure_GPa": h.pressure.values, "T_heating_K": h.T_heating.values,
                                 "T_cooling_K": h.T_cooling.values}
    if result.coexistence is not None:
        c = result.coexistence
        summary["coexistence"] = {k: c[k].values for k in ("temperature", "temperature_sem", "pressure",
                                                           "pressure_sem", "coexisting", "status")}
    if args.json:
        emit_json(summary)
    else:
        print(f"{result.n_run} points run, {result.n_reused} reused, {len(result.failed)} failed; "
              f"wrote {', '.join(files) or 'nothing'}")
    return 0
