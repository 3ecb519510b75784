"""Neighbour lists side by side: vesin, matscipy and our torch cell list (and scipy's
periodic k-d tree where it applies), same input, same pairs, one process.

Systems: random points at a dense-liquid number density (0.1 Å^-3, water's), cutoff 5 Å
(about 52 neighbours per atom), 1,000 / 10,000 / 100,000 atoms, in four geometries:
orthorhombic periodic, triclinic periodic, orthorhombic slab (periodic in x, y only) and
triclinic slab.  Before timing, every method's full list (ordered pairs ``i, j`` with integer
image shifts ``S``) is checked identical to vesin's; a mismatch stops the benchmark.

Times are the best of ``--repeat`` runs in CPU seconds of this process (every method runs
on one thread: ``OMP_NUM_THREADS=1``, one torch and one vesin thread), robust to other jobs
sharing the machine.  ``ratio`` = method / vesin.

    OMP_NUM_THREADS=1 .venv/bin/python tests/benchmarks/bench_neighbors.py [--small]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

DENSITY = 0.1  # atoms / Å^3
CUTOFF = 5.0  # Å


def system(n: int, geometry: str, seed: int = 0):
    """Positions (n, 3) Å inside the cell, cell (3, 3) rows, pbc (3,)."""
    rng = np.random.default_rng(seed)
    slab = geometry.endswith("slab")
    tric = geometry.startswith("triclinic")
    length = (n / DENSITY) ** (1 / 3)
    cell = np.eye(3) * length
    if tric:
        cell = np.array([[1.0, 0.0, 0.0], [0.3, 0.95, 0.0], [0.2, 0.25, 0.9]]) * length
        cell *= (length**3 / abs(np.linalg.det(cell))) ** (1 / 3)
    frac = rng.random((n, 3))
    pbc = np.array([True, True, not slab])
    if slab:  # atoms fill 80 % of c; the rest is vacuum
        frac[:, 2] *= 0.8
    return frac @ cell, cell, pbc


def run_vesin(pos, cell, pbc, r):
    from vesin import NeighborList

    nl = NeighborList(cutoff=r, full_list=True, n_threads=1)
    i, j, s = nl.compute(pos, cell, pbc, "ijS")
    return i, j, s


def run_matscipy(pos, cell, pbc, r):
    from matscipy.neighbours import neighbour_list

    return neighbour_list("ijS", positions=pos, cell=cell, pbc=pbc, cutoff=r)


def run_torch(pos, cell, pbc, r):
    import torch
    from _torch_cell_list import neighbor_list

    ei, sh = neighbor_list(torch.from_numpy(pos), torch.from_numpy(cell), torch.from_numpy(pbc), r)
    return ei[0].numpy(), ei[1].numpy(), sh.numpy()


def run_kdtree(pos, cell, pbc, r):
    """scipy's periodic k-d tree (orthorhombic, fully periodic only): both directions."""
    from scipy.spatial import cKDTree

    box = np.diag(cell).copy()
    w = np.mod(pos, box)
    w[w >= box] = 0.0
    ij = cKDTree(w, boxsize=box).query_pairs(r, output_type="ndarray")
    i, j = ij[:, 0], ij[:, 1]
    d = w[j] - w[i]
    s = -np.round(d / box)  # image of j that is nearest i
    img = np.floor(pos / box)  # pos = w + img * box
    s = s - img[j] + img[i]
    return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([s, -s])


def run_toolkit(pos, cell, pbc, r):
    from atomtwin.toolkit.neighbors import neighbor_pairs

    p = neighbor_pairs(pos, cell, pbc, r, full=True)
    return p.i, p.j, p.shifts


METHODS = {"vesin": run_vesin, "toolkit": run_toolkit, "matscipy": run_matscipy,
           "torch": run_torch, "kdtree": run_kdtree}


def canonical(i, j, s) -> np.ndarray:
    s = np.rint(np.asarray(s)).astype(np.int64)
    key = np.stack([np.asarray(i, np.int64), np.asarray(j, np.int64), *s.T], axis=1)
    return key[np.lexsort(key.T[::-1])]


def applies(method: str, geometry: str) -> bool:
    return method != "kdtree" or geometry == "orthorhombic"


def best_time(fn, args, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="1,000 and 10,000 atoms only")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    sizes = [1_000, 10_000] if args.small else [1_000, 10_000, 100_000]
    geometries = ["orthorhombic", "triclinic", "orthorhombic slab", "triclinic slab"]
    print(f"cutoff {CUTOFF} Å, density {DENSITY} Å^-3, best of {args.repeat}, one thread; "
          "ratio = time / vesin")
    print(f"{'geometry':<18} {'atoms':>7} {'pairs':>9} " + " ".join(
        f"{m + ' ms':>12} {'ratio':>6}" for m in METHODS))
    for geometry in geometries:
        for n in sizes:
            pos, cell, pbc = system(n, geometry)
            ref = canonical(*run_vesin(pos, cell, pbc, CUTOFF))
            row = f"{geometry:<18} {n:>7} {len(ref):>9} "
            t_ref = None
            for name, fn in METHODS.items():
                if not applies(name, geometry):
                    row += f"{'-':>12} {'-':>6} "
                    continue
                got = canonical(*fn(pos, cell, pbc, CUTOFF))
                if got.shape != ref.shape or not np.array_equal(got, ref):
                    raise SystemExit(f"{name} gives different pairs than vesin for {geometry}, "
                                     f"{n} atoms ({len(got)} vs {len(ref)})")
                t = best_time(fn, (pos, cell, pbc, CUTOFF), args.repeat if n < 100_000 else 2)
                t_ref = t if t_ref is None else t_ref
                row += f"{1e3 * t:>12.1f} {t / t_ref:>6.2f} "
            print(row, flush=True)


if __name__ == "__main__":
    main()
