"""Benchmark: environments end to end (descriptors -> fit on a subsample -> labels for all).

Full size: 100 frames x ~10,000 atoms = ~1,000,000 environments on a dask LocalCluster of 2
worker processes (target < 10 min, < 8 GiB).  ``--small``: 4 frames x ~2,000 atoms.
Reference ("peer") row: dscribe's own SOAP over the same frames with n_jobs=2, the
descriptor-only lower bound of any SOAP-based pipeline.

    python tests/benchmarks/bench_environments.py [--small]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def build(n_frames: int, reps: int, seed: int = 0):
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


def peak_gib() -> float:
    self_ = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (self_ + kids) / 2**20  # ru_maxrss in KiB on Linux (upper bound: sum of peaks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    n_frames, reps = (4, 2) if args.small else (100, 4)
    from atomtwin.toolkit.environments import SOAP, EnvironmentClassifier
    from distributed import Client, LocalCluster

    ds = build(n_frames, reps)
    n_env = ds.sizes["frame"] * ds.sizes["atom"]
    desc = SOAP(r_cut=4.5, n_max=4, l_max=4)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, Client(cl):
        t0 = time.perf_counter()
        clf = EnvironmentClassifier(desc, seed=0, n_fit=min(20000, n_env // 2), fit_frames=8, max_clusters=6,
                                    chunk_frames=2).fit(ds)
        labels = clf.predict(ds)
        t_ours = time.perf_counter() - t0
    from atomtwin.toolkit.environments.descriptors import frame_atoms
    from dscribe.descriptors import SOAP as DSOAP

    d = DSOAP(species=["Li", "S"], periodic=True, r_cut=4.5, n_max=4, l_max=4, sigma=0.5)
    t0 = time.perf_counter()
    for f in range(ds.sizes["frame"]):
        d.create(frame_atoms(ds, f), n_jobs=2)
    t_peer = time.perf_counter() - t0
    mem = peak_gib()
    print(f"environments: {n_env} ({ds.sizes['frame']} frames x {ds.sizes['atom']} atoms), "
          f"{clf.n_clusters_} clusters, labelled {int((labels.values >= 0).sum())}")
    print(f"{'task':40s} {'atomtwin (s)':>13s} {'dscribe SOAP only (s)':>22s} {'ratio':>7s}")
    print(f"{'descriptors+fit+predict, 2 workers':40s} {t_ours:13.1f} {t_peer:22.1f} {t_ours / t_peer:7.2f}")
    print(f"peak memory (sum of process peaks): {mem:.2f} GiB; envs/s: {n_env / t_ours:.0f}")


if __name__ == "__main__":
    main()
