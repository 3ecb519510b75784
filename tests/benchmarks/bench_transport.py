"""MSD benchmark: atomtwin vs MDAnalysis EinsteinMSD(fft=True) and freud MSD(mode="window")
on the same random-walk positions; then an out-of-core run with dask on a trajectory four
times larger than a memory budget.

    .venv/bin/python tests/benchmarks/bench_transport.py            # 10,000 atoms x 10,000 frames
    .venv/bin/python tests/benchmarks/bench_transport.py --small    # 1,000 x 1,000 smoke run

Peak memory is the largest traced allocation (tracemalloc: numpy buffers included) on top
of the positions array every program is given, reported as (positions + peak) / positions.
"x ours" is each program's wall time over atomtwin's single-threaded one, "CPU x ours" the
same for process CPU time (robust on a shared, loaded machine; for threaded runs it sums
the threads); MDAnalysis runs on one
thread (numpy FFT), freud both on every core (its default) and on one.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


CPU = {}


def measure(fn):
    """(result, wall seconds, peak traced bytes); the process CPU seconds go to CPU[fn]."""
    gc.collect()
    tracemalloc.start()
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    dt = time.perf_counter() - t
    CPU["last"] = time.process_time() - c
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, dt, peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small", action="store_true", help="1,000 atoms x 1,000 frames")
    ap.add_argument("--atoms", type=int)
    ap.add_argument("--frames", type=int)
    ap.add_argument("--budget-mb", type=float, help="memory budget of the out-of-core run (MB)")
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    na = args.atoms or (1000 if args.small else 10_000)
    nf = args.frames or (1000 if args.small else 10_000)
    budget = (args.budget_mb or (16 if args.small else 256)) * 1e6

    from atomtwin.toolkit.dynamics import msd
    from atomtwin.toolkit.schema import make_dataset

    rng = np.random.default_rng(0)
    pos = np.cumsum(rng.normal(0, 0.1, (nf, na, 3)), axis=0)
    nbytes = pos.nbytes
    ds = make_dataset(pos, ["Li"] * na, time=np.arange(nf) * 0.01)
    rows = []
    ours, t_ours, m_ours = measure(lambda ds=ds: msd(ds, "Li", remove_drift=False, unwrap=False).values)
    rows.append(("atomtwin msd (1 thread)", t_ours, m_ours, 0.0, CPU["last"]))
    c_ours = CPU["last"]
    ncpu = os.cpu_count() or 1

    def fft_floor(pos=pos, chunk=256):
        # the forward real FFTs alone (zero-padded to >= 2F - 1, float64, contiguous rows):
        # every exact all-origins FFT MSD must do at least this much work
        import scipy.fft as sfft

        n = sfft.next_fast_len(2 * nf - 1, real=True)
        work = np.zeros((3 * chunk, n))
        for a in range(0, na, chunk):
            k = min(chunk, na - a)
            sfft.rfft(work[: 3 * k], axis=1)
        return None

    _, t_fft, m_fft = measure(fft_floor)
    rows.append(("forward FFTs alone (floor)", t_fft, m_fft, 0.0, CPU["last"]))
    if ncpu > 1:
        par, t, m = measure(lambda ds=ds: msd(ds, "Li", remove_drift=False, unwrap=False, workers=-1).values)
        rows.append((f"atomtwin msd ({ncpu} threads)", t, m, float(np.max(np.abs(par[1:] - ours[1:]) / ours[1:])),
                     CPU["last"]))

    if not args.skip_peers:
        try:
            import MDAnalysis as mda
            from MDAnalysis.analysis.msd import EinsteinMSD

            u = mda.Universe.empty(na, trajectory=True)
            u.load_new(pos, format=mda.coordinates.memory.MemoryReader)  # float32 copy, as MDAnalysis stores it

            def run_mda():
                return EinsteinMSD(u, select="all", msd_type="xyz", fft=True).run().results.timeseries

            ref, t, m = measure(run_mda)
            rows.append(("MDAnalysis EinsteinMSD(fft)", t, m, float(np.max(np.abs(ref[1:] - ours[1:]) / ours[1:])),
                         CPU["last"]))
            del u
        except ImportError as err:
            print(f"MDAnalysis not available: {err}", file=sys.stderr)
        try:
            import freud

            def run_freud(pos=pos):
                return freud.msd.MSD(mode="window").compute(pos).msd

            for threads in ([0, 1] if ncpu > 1 else [1]):  # 0: freud's default, every core (TBB)
                freud.parallel.set_num_threads(threads)
                ref, t, m = measure(run_freud)
                label = f"freud MSD(window) ({ncpu if threads == 0 else threads} thr)"
                rows.append((label, t, m, float(np.max(np.abs(ref[1:] - ours[1:]) / ours[1:])), CPU["last"]))
            freud.parallel.set_num_threads(0)
        except ImportError as err:
            print(f"freud not available: {err}", file=sys.stderr)

    print(f"\nMSD of {na} atoms x {nf} frames (positions {nbytes / 1e9:.2f} GB float64), "
          f"threads OMP={os.environ.get('OMP_NUM_THREADS', '-')}")
    print(f"load average (1 min) at start {load0:.2f}, now {os.getloadavg()[0]:.2f}, on {ncpu} cores")
    print(f"{'program':32s} {'wall (s)':>9s} {'x ours':>8s} {'CPU (s)':>9s} {'CPU x ours':>11s} "
          f"{'peak/positions':>15s} {'max rel diff':>13s}")
    for name, t, m, diff, c in rows:
        print(f"{name:32s} {t:9.2f} {t / t_ours:8.2f} {c:9.2f} {c / c_ours:11.2f} "
              f"{(nbytes + m) / nbytes:15.2f} {diff:13.1e}")

    # out of core: a store 4x the budget, analysed through dask in atom chunks
    from atomtwin.toolkit.io import open as topen
    from atomtwin.toolkit.io import write

    del ds, pos
    gc.collect()
    n_big_atoms = int(4 * budget / (nf * 3 * 8)) + 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.nc"
        big = np.cumsum(rng.normal(0, 0.1, (nf, n_big_atoms, 3)), axis=0)
        write(make_dataset(big, ["Li"] * n_big_atoms, time=np.arange(nf) * 0.01), path, progress=False)
        size = big.nbytes
        ref = msd(make_dataset(big[:, :64], ["Li"] * 64, time=np.arange(nf) * 0.01), "Li",
                  remove_drift=False, unwrap=False).values
        del big
        gc.collect()
        lazy = topen(path)
        chunk = max(1, int(budget / 8 / (nf * 3 * 8)))  # chunk + scratch frame block + FFT work space ~ 6x chunk
        res, t, m = measure(lambda: msd(lazy, "Li", remove_drift=False, unwrap=False, atom_chunk=chunk).values)
        sub, _, _ = measure(lambda: msd(lazy.isel(atom=slice(0, 64)), "Li", remove_drift=False, unwrap=False).values)
        print(f"\nout of core: {size / 1e6:.0f} MB trajectory ({size / budget:.1f}x the {budget / 1e6:.0f} MB budget), "
              f"atom_chunk={chunk}: {t:.2f} s, peak traced memory {m / 1e6:.0f} MB ({m / budget:.2f}x budget); "
              f"first 64 atoms vs in-memory max rel diff {np.max(np.abs(sub[1:] - ref[1:]) / ref[1:]):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
