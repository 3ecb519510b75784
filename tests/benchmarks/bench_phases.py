"""Benchmark: a 4x4 (P, T) grid of short LJ runs, serial against 2 dask workers.

    python tests/benchmarks/bench_phases.py            # 4x4 grid, 256 atoms, 300 + 300 MD steps a point
    python tests/benchmarks/bench_phases.py --small    # 2x2 grid, 50 + 50 steps a point (smoke run)
    python tests/benchmarks/bench_phases.py --grid 4 --steps 150   # a shorter full grid

CPU seconds are printed next to wall seconds (this process for serial, the reaped worker
processes for dask): on a loaded machine the wall-time efficiency measures the other
users, while CPU(serial) / CPU(parallel, all workers) is the efficiency the ensemble would
reach on idle cores if the points balance (equal points, n_points a multiple of workers).

Each point is an atomtwin.engines.md NPT run (atomtwin.engines.studies.phase_points).  Prints wall times, the speed-up
and the parallel efficiency = speed-up / workers, and the CPUs this process may use (an
efficiency above 1/CPUs needs that many free cores).  Each mode writes to its own fresh
workdir so nothing is reused.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from atomtwin.engines.studies.phase_points import physical  # noqa: E402
from atomtwin.toolkit.phases import PhaseSpec, run_ensemble  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--grid", type=int, help="points per axis (default 4; 2 with --small)")
    ap.add_argument("--steps", type=int, help="equilibration = production MD steps a point")
    args = ap.parse_args()
    n = args.grid or (2 if args.small else 4)
    steps = args.steps or (50 if args.small else 300)
    P = [physical(P_red=p)["P"] for p in np.geomspace(0.5, 4.0, n)]
    T = [physical(T_red=t)["T"] for t in np.geomspace(0.5, 2.0, n)]
    protocol = {
        "cells": [4, 4, 4],
        "equil_steps": steps,
        "steps": steps,
        "sample_every": max(10, steps // 10),
    }
    rows = []
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("serial", "processes"):
            spec = PhaseSpec(
                point_function="atomtwin.engines.studies.phase_points:run_point",
                pressures=P,
                temperatures=T,
                protocol=protocol,
                seed=1,
                workdir=str(Path(tmp) / mode),
                scheduler=mode,
                n_workers=args.workers,
            )
            c0, k0, t0 = time.process_time(), _children_cpu(), time.perf_counter()
            res = run_ensemble(spec, progress=False)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0 + _children_cpu() - k0
            rows.append((mode, wall, cpu, res.n_run, len(res.failed)))
    load1 = os.getloadavg()
    t_serial, c_serial = rows[0][1], rows[0][2]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"grid {n}x{n}, {steps} + {steps} MD steps a point; usable CPUs: {cpus}; "
        f"load average {load0[0]:.1f} -> {load1[0]:.1f} (1 min)"
    )
    print(
        f"{'mode':<22}{'points':>7}{'failed':>7}{'wall (s)':>10}{'CPU (s)':>9}{'speed-up':>10}"
        f"{'efficiency':>11}{'CPU eff.':>9}"
    )
    for mode, wall, cpu, npts, nf in rows:
        workers = 1 if mode == "serial" else args.workers
        sp = t_serial / wall
        label = mode if mode == "serial" else f"dask {mode} x{workers}"
        print(
            f"{label:<22}{npts:>7}{nf:>7}{wall:>10.1f}{cpu:>9.1f}{sp:>10.2f}{sp / workers:>11.2f}"
            f"{c_serial / cpu:>9.2f}"
        )
    print(
        "efficiency = speed-up / workers (wall, depends on the load); CPU eff. = CPU(serial) / "
        "CPU(mode): the efficiency on idle cores when the points balance over the workers"
    )


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


if __name__ == "__main__":
    main()
