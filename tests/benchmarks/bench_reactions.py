"""Bond-graph analysis: ours against a plain per-frame neighbour search + connected components.

Same trajectory for all: an argyrodite-like periodic crystal (per 6.3 Å cube: a PS4 unit,
a free S, a Cl and five Li; Li5PS5Cl), every atom displaced by 0.08 Å Gaussian noise per
frame, at ~10k and ~100k atoms.

* ours     -- ``atomtwin.toolkit.reactions.reactions``: vesin cell list within the longest
              r_break, hysteresis, events, coordination histograms, species and lifetimes.
* ase+nx   -- ``ase.neighborlist.neighbor_list`` with per-pair cutoffs and
              ``networkx.connected_components`` on the covalent bonds, formulas counted:
              species per frame only (no events, no coordination, no hysteresis).
* kdtree+cs -- ``scipy.spatial.cKDTree.query_pairs`` (periodic box) within the longest
              cutoff, per-pair filter, ``scipy.sparse.csgraph.connected_components``:
              species per frame only.

The peers use one cutoff per pair, the middle of our hysteresis band (our rule for a frame
without history), so at this noise they find the same species, up to a few Cl...S contacts
(3.0 Å in this crystal, 3.7 sigma from the 2.62 Å cutoff) that dip inside the peers' single
cutoff but never inside our r_form = 2.38 Å: transient contacts that hysteresis ignores.  Each method runs once on a tiny crystal first (imports), then in turn, twice, interleaved; the
table gives the faster wall time, its CPU time (``time.process_time``) and the peak of Python/numpy allocations (``tracemalloc``;
vesin's own C++ buffers are not seen, their numpy copies are).  Run:

    OMP_NUM_THREADS=1 .venv/bin/python tests/benchmarks/bench_reactions.py [--sizes 9 20] [--frames 6 3] [--small]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections import Counter

import numpy as np

A = 6.3  # Å, edge of the cube holding one Li5PS5Cl unit


def crystal(n: int, n_frames: int, seed: int = 7):
    from atomtwin.toolkit.schema import make_dataset

    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    half = (
        np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]])
        * A
        / 2
    )
    unit = np.concatenate([[[0, 0, 0]], tet, half])
    sp_unit = ["P", "S", "S", "S", "S", "S", "Cl", "Li", "Li", "Li", "Li", "Li"]
    g = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * A
    sites = (g[:, None] + unit[None]).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    pos = sites[None] + rng.normal(0, 0.08, (n_frames, *sites.shape))
    L = n * A
    return make_dataset(
        pos % L, sp_unit * len(g), cell=np.eye(3) * L, time=np.arange(n_frames) * 0.01
    )


def ours(ds):
    from atomtwin.toolkit.reactions import reactions

    r = reactions(ds, progress=False)
    return {
        str(f): int(c)
        for f, c in zip(r.species["formula"].values, r.species.isel(frame=-1).values, strict=True)
        if c
    }


def _formulas(labels, species):
    from atomtwin.toolkit.reactions import hill_formula

    comp: dict[int, Counter] = {}
    for a, lab in enumerate(labels):
        comp.setdefault(lab, Counter())[species[a]] += 1
    return Counter(hill_formula(c) for c in comp.values())


def ase_networkx(ds):
    import networkx as nx
    from ase import Atoms
    from ase.neighborlist import neighbor_list
    from atomtwin.toolkit.reactions import bond_cutoffs

    sp = [str(s) for s in ds["species"].values]
    cut = bond_cutoffs(sorted(set(sp)))
    table = {}
    for name, v in cut.table().items():
        a, b = name.split("-")
        table[(a, b)] = table[(b, a)] = 0.5 * (v["r_form"] + v["r_break"])
    cov = {tuple(sorted(k.split("-"))) for k, v in cut.table().items() if v["covalent"]}
    out = None
    for f in range(ds.sizes["frame"]):
        atoms = Atoms(sp, positions=ds["positions"].values[f], cell=ds["cell"].values[f], pbc=True)
        i, j = neighbor_list("ij", atoms, table)
        g = nx.Graph()
        g.add_nodes_from(range(len(sp)))
        g.add_edges_from(
            (a, b)
            for a, b in zip(i.tolist(), j.tolist(), strict=True)
            if a < b and tuple(sorted((sp[a], sp[b]))) in cov
        )
        labels = np.empty(len(sp), int)
        for k, c in enumerate(nx.connected_components(g)):
            labels[list(c)] = k
        out = _formulas(labels, sp)
    return dict(out)


def kdtree_csgraph(ds):
    from atomtwin.toolkit.reactions import bond_cutoffs
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    sp = np.asarray(ds["species"].values).astype(str)
    cut = bond_cutoffs(sorted(set(sp.tolist())))
    codes = np.searchsorted(np.array(cut.species), sp)
    rf = np.where(cut.covalent, 0.5 * (cut.r_form + cut.r_break), 0.0)
    L = float(ds["cell"].values[0, 0, 0])
    out = None
    for f in range(ds.sizes["frame"]):
        x = ds["positions"].values[f] % L
        pairs = cKDTree(x, boxsize=L).query_pairs(rf.max(), output_type="ndarray")
        v = x[pairs[:, 1]] - x[pairs[:, 0]]
        v -= L * np.round(v / L)
        d = np.linalg.norm(v, axis=1)
        ok = d < rf[codes[pairs[:, 0]], codes[pairs[:, 1]]]
        p = pairs[ok]
        g = coo_matrix((np.ones(len(p)), (p[:, 0], p[:, 1])), shape=(len(sp), len(sp)))
        _, labels = connected_components(g, directed=False)
        out = _formulas(labels, sp.tolist())
    return dict(out)


def measure(fn, ds):
    """Wall and CPU seconds of one run, then the allocation peak of a second run (tracemalloc
    slows Python-heavy code several-fold, so it never runs while timing)."""
    w0, c0 = time.perf_counter(), time.process_time()
    res = fn(ds)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    tracemalloc.start()
    fn(ds)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return w, c, peak, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[9, 20], help="cubes per edge")
    ap.add_argument("--frames", type=int, nargs="+", default=[6, 3])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="smoke size: 768 atoms, 2 frames, once")
    args = ap.parse_args()
    if args.small:
        args.sizes, args.frames, args.repeats = [4], [2], 1
    with open("/proc/loadavg") as fh:
        print(f"load average at start: {fh.read().split()[:3]}")
    methods = {"ours": ours, "ase+nx": ase_networkx, "kdtree+cs": kdtree_csgraph}
    print(
        f"{'atoms':>7} {'frames':>6} {'method':<10} {'wall/frame s':>13} {'cpu/frame s':>12} {'peak MiB':>9}"
    )
    warm = crystal(2, 1)
    for fn in methods.values():  # imports and first-call set-up, outside every measurement
        fn(warm)
    for n, nf in zip(args.sizes, args.frames, strict=False):
        ds = crystal(n, nf)
        best: dict[str, tuple] = {}
        results = {}
        for _ in range(args.repeats):
            for name, fn in methods.items():
                w, c, peak, res = measure(fn, ds)
                results[name] = res
                if name not in best or w < best[name][0]:
                    best[name] = (w, c, peak)
        agree = results["ours"] == results["ase+nx"] == results["kdtree+cs"]
        for name, (w, c, peak) in best.items():
            print(
                f"{ds.sizes['atom']:>7} {nf:>6} {name:<10} {w / nf:>13.3f} {c / nf:>12.3f} {peak / 2**20:>9.1f}"
            )
        if agree:
            print(f"        species (last frame, all methods agree): {results['ours']}")
        else:  # expected now and then: a contact inside the peers' one cutoff but never
            # inside our r_form is no bond for us (hysteresis), a transient one for them
            print(f"        species (last frame) differ: {results}")
    with open("/proc/loadavg") as fh:
        print(f"load average at end: {fh.read().split()[:3]}")


if __name__ == "__main__":
    main()
