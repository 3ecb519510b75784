"""Benchmark: LAMMPS dump -> netCDF conversion and random frame access.

Side by side in one run, each contender in its own subprocess (peak RSS from
``resource.getrusage``):

- ``atomtwin convert``: lazy dump index -> dask -> compressed netCDF4 (h5netcdf);
- ``MDAnalysis`` read loop: ``for ts in u.trajectory: ts.positions`` over the same file
  (reading only; it writes nothing, so the comparison favours MDAnalysis);
- random access to one frame in the middle: our byte-offset index against
  ``u.trajectory[k]`` (MDAnalysis also builds an offset index on open; both timed cold).

Usage::

    python tests/benchmarks/bench_io.py            # 2,000 frames x 10,000 atoms (~1.2 GB dump)
    python tests/benchmarks/bench_io.py --small    # 100 frames x 2,000 atoms (smoke)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np


def make_dump(path: Path, n_frames: int, n_atoms: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    L = (n_atoms / 0.05) ** (1 / 3)
    x = rng.random((n_atoms, 3)) * L
    ids = np.arange(1, n_atoms + 1)
    types = 1 + (ids % 2)
    with open(path, "w") as fh:
        for f in range(n_frames):
            x = (x + rng.normal(scale=0.05, size=x.shape)) % L
            fh.write(f"ITEM: TIMESTEP\n{f * 100}\nITEM: NUMBER OF ATOMS\n{n_atoms}\n")
            fh.write(f"ITEM: BOX BOUNDS pp pp pp\n0 {L}\n0 {L}\n0 {L}\nITEM: ATOMS id type x y z\n")
            block = np.column_stack([ids, types, x])
            fh.write("\n".join(f"{int(a)} {int(b)} {c:.5f} {d:.5f} {e:.5f}" for a, b, c, d, e in block))
            fh.write("\n")


RUNNER = textwrap.dedent(
    """
    import json, resource, sys, time, warnings
    warnings.simplefilter("ignore")
    task, dump, out = sys.argv[1], sys.argv[2], sys.argv[3]
    t0 = time.perf_counter()
    if task == "atomtwin-convert":
        from atomtwin.toolkit.cli import main
        main(["convert", dump, out, "--species-map", "1=Li,2=S", "--no-progress", "--chunk", "50"])
    elif task == "mda-loop":
        import MDAnalysis as mda
        u = mda.Universe(dump, format="LAMMPSDUMP")
        s = 0.0
        for ts in u.trajectory:
            s += float(ts.positions[0, 0])
    elif task == "atomtwin-random":
        from atomtwin.toolkit.io.lammps import LammpsDump
        d = LammpsDump(dump, species_map="1=Li,2=S")
        t1 = time.perf_counter()
        d.frames(d.n_frames // 2, d.n_frames // 2 + 1)
        t_access = time.perf_counter() - t1
    elif task == "mda-random":
        import MDAnalysis as mda
        u = mda.Universe(dump, format="LAMMPSDUMP")
        t1 = time.perf_counter()
        u.trajectory[len(u.trajectory) // 2]
        t_access = time.perf_counter() - t1
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"time_s": dt, "peak_MiB": rss, "access_s": locals().get("t_access")}))
    """
)


def run(task: str, dump: Path, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    res = subprocess.run([sys.executable, "-c", RUNNER, task, str(dump), str(out)], capture_output=True,
                         text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--frames", type=int)
    ap.add_argument("--atoms", type=int)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    nf = args.frames or (100 if args.small else 2000)
    na = args.atoms or (2000 if args.small else 10000)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        dump = tmp / "bench.lammpstrj"
        t = time.perf_counter()
        make_dump(dump, nf, na)
        size = dump.stat().st_size / 2**20
        print(f"# dump: {nf} frames x {na} atoms, {size:.0f} MiB (written in {time.perf_counter() - t:.0f} s)")
        rows = {
            "atomtwin convert -> netCDF": run("atomtwin-convert", dump, tmp / "out.nc"),
            "MDAnalysis read loop": run("mda-loop", dump, tmp / "none"),
            "atomtwin random frame": run("atomtwin-random", dump, tmp / "none"),
            "MDAnalysis random frame": run("mda-random", dump, tmp / "none"),
        }
        out_mib = (tmp / "out.nc").stat().st_size / 2**20
    print(f"# netCDF output {out_mib:.0f} MiB")
    print(f"{'case':32s} {'time (s)':>10s} {'peak RSS (MiB)':>15s} {'frame access (ms)':>18s}")
    for k, v in rows.items():
        acc = f"{1e3 * v['access_s']:.1f}" if v["access_s"] is not None else "-"
        print(f"{k:32s} {v['time_s']:10.2f} {v['peak_MiB']:15.0f} {acc:>18s}")
    a, m = rows["atomtwin convert -> netCDF"], rows["MDAnalysis read loop"]
    print(f"ratio convert/MDAnalysis-read: time {a['time_s'] / m['time_s']:.2f}x, "
          f"peak memory {a['peak_MiB'] / m['peak_MiB']:.2f}x")
    ra, rm = rows["atomtwin random frame"], rows["MDAnalysis random frame"]
    print(f"ratio random access (index build + one frame): {ra['time_s'] / rm['time_s']:.2f}x total, "
          f"{ra['access_s'] / rm['access_s']:.2f}x frame only")


if __name__ == "__main__":
    main()
