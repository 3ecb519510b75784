"""Benchmark: environments end to end (descriptors -> fit on a subsample -> labels for all).

Two settings, each on a dask LocalCluster of 2 worker processes (1 thread each):

* ``heavy``: SOAP n_max 8, l_max 6, r_cut 5 Å + HDBSCAN (the settings of the science);
* ``light``: SOAP n_max 4, l_max 4, r_cut 4.5 Å + Gaussian mixture (the README's old row).

For each: the descriptors alone (same chunks, same workers, nothing kept), then the whole
pipeline (``fit_predict``: the workers project every chunk while this process fits the
clusters, then assign the reduced rows where they are); the ratio pipeline / descriptors (wall), the cores used
(CPU seconds of the workers and of this process / wall seconds) and the peak memory (sum of
the peak RSS of this process and of the workers).  A last row times dscribe's own SOAP
(``n_jobs=2``) over the same frames at the heavy settings: the descriptor-only lower bound.

    python tests/benchmarks/bench_environments.py               # 100 frames x 9,984 atoms ~ 10^6
    python tests/benchmarks/bench_environments.py --frames 8    # a smaller run
    python tests/benchmarks/bench_environments.py --small       # 4 frames x 624 atoms (smoke)
    python tests/benchmarks/bench_environments.py --repeat 3    # 3 alternated pairs (a loaded machine)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def build(n_frames: int, reps: int, seed: int = 0):
    """Li | Li2S slab cell (624 atoms) repeated reps x reps in-plane, rattled per frame."""
    from atomtwin.toolkit import schema as S
    from synthetic_cells import li_li2s_cell

    ds, _ = li_li2s_cell(n_frames=1, seed=seed, thickness=20.0)
    pos0, cell0 = ds.positions.values[0], ds.cell.values[0]
    shifts = np.array([[i, j, 0] for i in range(reps) for j in range(reps)]) @ cell0
    pos = (pos0[None] + shifts[:, None]).reshape(-1, 3)
    cell = cell0 * np.array([reps, reps, 1])[:, None]
    rng = np.random.default_rng(seed)
    frames = pos[None] + rng.normal(0, 0.08, (n_frames, *pos.shape))
    sp = np.tile(ds.species.values, reps * reps)
    return S.make_dataset(frames, sp, cell=cell, time=np.arange(n_frames) * 1.0)


def _rss_peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _descriptor_sum(positions, cells, spec):
    from atomtwin.toolkit.environments._stream import chunk_descriptors

    return float(np.asarray(chunk_descriptors(positions, cells, spec, None)).sum())


def descriptors_only(clf, ds) -> None:
    """Every chunk's descriptors on the workers, as the pipeline computes them, nothing kept."""
    import dask
    from atomtwin.toolkit import schema as S
    from atomtwin.toolkit.environments._stream import run_tasks

    _, spec, chunk = clf._spec(ds)
    spec_d = dask.delayed(spec, pure=True)
    pos, cell = ds[S.POSITIONS].data, ds[S.CELL].data
    n = int(ds.sizes[S.FRAME])
    run_tasks(
        [
            dask.delayed(_descriptor_sum)(pos[a : a + chunk], cell[a : a + chunk], spec_d)
            for a in range(0, n, chunk)
        ],
        "descriptors",
    )


def timed(client, fn):
    """(result, wall s, CPU s of this process + workers) of ``fn()``."""
    cpu_w0 = sum(client.run(time.process_time).values())
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0 + sum(client.run(time.process_time).values()) - cpu_w0
    return out, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="4 frames x 624 atoms (smoke run)")
    ap.add_argument("--frames", type=int, help="frames (default 100; 4 with --small)")
    ap.add_argument(
        "--reps",
        type=int,
        help="in-plane repeats of the 624-atom cell (default 4; 1 with --small)",
    )
    ap.add_argument("--settings", nargs="+", default=["heavy", "light"], choices=("heavy", "light"))
    ap.add_argument("--n-fit", type=int, default=20000)
    ap.add_argument("--no-peer", action="store_true", help="skip dscribe's own SOAP row")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="descriptors-alone / pipeline pairs per setting, alternated (the table shows the "
        "pair with the median ratio)",
    )
    args = ap.parse_args()
    reps = args.reps or (1 if args.small else 4)  # 4: 9,984 atoms
    n_frames = args.frames or (4 if args.small else 100)  # 100 x 9,984 = 998,400 environments
    from atomtwin.toolkit.environments import SOAP, EnvironmentClassifier
    from distributed import Client, LocalCluster

    ds = build(n_frames, reps)
    n_env = ds.sizes["frame"] * ds.sizes["atom"]
    settings = {
        "heavy": (SOAP(r_cut=5.0, n_max=8, l_max=6), {"method": "hdbscan"}),
        "light": (SOAP(r_cut=4.5, n_max=4, l_max=4), {"method": "gmm", "max_clusters": 6}),
    }
    load0 = os.getloadavg()
    rows = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cl,
        Client(cl) as client,
    ):
        warm = EnvironmentClassifier(SOAP(r_cut=4.0, n_max=2, l_max=2), chunk_frames=1)
        descriptors_only(warm, ds.isel(frame=slice(0, 2)))  # imports on the workers, not timed
        for name in args.settings:
            desc, opts = settings[name]
            clf = EnvironmentClassifier(
                desc,
                seed=0,
                n_fit=min(args.n_fit, n_env // 2),
                fit_frames=16,
                chunk_frames=1,
                **opts,
            )
            pairs = []
            for r in range(args.repeat):  # alternated: a load that drifts hits both alike
                _, t_desc, c_desc = timed(client, lambda clf=clf: descriptors_only(clf, ds))
                c_main = time.process_time()
                labels, t_pipe, c_pipe = timed(client, lambda clf=clf: clf.fit_predict(ds))
                c_main = time.process_time() - c_main
                print(
                    f"{name} #{r + 1}: pipeline {t_pipe:.1f} s wall / {c_pipe:.1f} s CPU "
                    f"({c_main:.1f} s of it in this process: sample, PCA, cluster fit, "
                    f"assigner), descriptors alone {t_desc:.1f} s wall / {c_desc:.1f} s CPU; "
                    f"ratio {t_pipe / t_desc:.2f} wall, {c_pipe / c_desc:.2f} CPU; "
                    f"loadavg {open('/proc/loadavg').read().split()[0]}",
                    flush=True,
                )
                pairs.append((t_pipe / t_desc, t_desc, c_desc, t_pipe, c_pipe))
            # the repeat with the median wall ratio
            _, t_desc, c_desc, t_pipe, c_pipe = sorted(pairs)[len(pairs) // 2]
            rows.append(
                (
                    name,
                    desc,
                    clf,
                    t_desc,
                    c_desc,
                    t_pipe,
                    c_pipe,
                    float((labels.values == -1).mean()),
                )
            )
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    mem = _rss_peak_gib() + sum(peaks.values())
    t_peer = None
    if not args.no_peer:
        from atomtwin.toolkit.environments.descriptors import frame_atoms
        from dscribe.descriptors import SOAP as DSOAP

        d = DSOAP(species=["Li", "S"], periodic=True, r_cut=5.0, n_max=8, l_max=6, sigma=0.5)
        w0 = time.perf_counter()
        for f in range(ds.sizes["frame"]):
            d.create(frame_atoms(ds, f), n_jobs=2)
        t_peer = time.perf_counter() - w0
    load1 = os.getloadavg()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"environments: {n_env:,} ({ds.sizes['frame']} frames x {ds.sizes['atom']} atoms); "
        f"2 worker processes; usable CPUs {cpus}; load average {load0[0]:.1f} -> {load1[0]:.1f}"
    )
    print(
        f"{'settings':44s} {'desc (s)':>9s} {'pipeline (s)':>13s} {'ratio':>6s} "
        f"{'cores desc':>10s} {'cores pipe':>10s} {'clusters':>8s} {'noise':>6s}"
    )
    for name, desc, clf, t_d, c_d, t_p, c_p, noise in rows:
        label = f"{name}: n_max {desc.n_max}, l_max {desc.l_max}, r_cut {desc.r_cut}, {clf.method}"
        print(
            f"{label:44s} {t_d:9.1f} {t_p:13.1f} {t_p / t_d:6.2f} {c_d / t_d:10.2f} "
            f"{c_p / t_p:10.2f} {clf.n_clusters_:8d} {noise:6.3f}"
        )
    if t_peer is not None:
        print(f"dscribe SOAP alone (n_max 8, l_max 6, r_cut 5, n_jobs=2): {t_peer:.1f} s")
    print(f"peak memory (sum of the process peaks, whole run): {mem:.2f} GiB")
    print(
        "ratio = fit_predict / descriptors alone, wall; cores = CPU s (workers + this "
        "process) / wall s; with --repeat, the pair with the median ratio"
    )


if __name__ == "__main__":
    main()
