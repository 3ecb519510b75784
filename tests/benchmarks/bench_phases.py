"""Benchmark: a 4x4 (P, T) grid of short LJ runs, serial against 2 dask workers.

    python tests/benchmarks/bench_phases.py            # 4x4 grid, 256 atoms, 300 + 300 MD steps a point
    python tests/benchmarks/bench_phases.py --small    # 2x2 grid, 50 + 50 steps a point (smoke run)

Each point is an atomtwin.engines.md NPT run (atomtwin.engines.studies.phase_points).  Prints wall times, the speed-up
and the parallel efficiency = speed-up / workers, and the CPUs this process may use (an
efficiency above 1/CPUs needs that many free cores).  Each mode writes to its own fresh
workdir so nothing is reused.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from atomtwin.engines.studies.phase_points import physical  # noqa: E402
from atomtwin.toolkit.phases import PhaseSpec, run_ensemble  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    n = 2 if args.small else 4
    steps = 50 if args.small else 300
    P = [physical(P_red=p)["P"] for p in (0.5, 1.0, 2.0, 4.0)[:n]]
    T = [physical(T_red=t)["T"] for t in (0.5, 0.8, 1.2, 2.0)[:n]]
    protocol = {"cells": [4, 4, 4], "equil_steps": steps, "steps": steps, "sample_every": max(10, steps // 10)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("serial", "processes"):
            spec = PhaseSpec(point_function="atomtwin.engines.studies.phase_points:run_point", pressures=P, temperatures=T,
                             protocol=protocol, seed=1, workdir=str(Path(tmp) / mode), scheduler=mode,
                             n_workers=args.workers)
            t0 = time.perf_counter()
            res = run_ensemble(spec, progress=False)
            rows.append((mode, time.perf_counter() - t0, res.n_run, len(res.failed)))
    t_serial = rows[0][1]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"usable CPUs: {cpus}; load average: {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<22}{'points':>7}{'failed':>7}{'wall (s)':>10}{'speed-up':>10}{'efficiency':>11}")
    for mode, wall, npts, nf in rows:
        workers = 1 if mode == "serial" else args.workers
        sp = t_serial / wall
        label = mode if mode == "serial" else f"dask {mode} x{workers}"
        print(f"{label:<22}{npts:>7}{nf:>7}{wall:>10.1f}{sp:>10.2f}{sp / workers:>11.2f}")


if __name__ == "__main__":
    main()
