"""Event and structure analyses at the size of real trajectories, ours against the peers on
the same input: hydrogen bonds (MDAnalysis' HydrogenBondAnalysis), RDF (freud's
``density.RDF`` and MDAnalysis' ``InterRDF``), Steinhardt q4/q6 with the neighbour average
(freud's ``order.Steinhardt(average=True)``), site hops and polyanion rotations (no peer
implements them: ours alone, for time and memory).

Systems:

- water: MDAnalysisTests' TIP3P box (125 waters, strongly triclinic, tip125_tric_C36)
  replicated 3x3x3 (10,125 atoms) and 7x7x6 (110,250 atoms), its first frames;
- Li conductor: an fcc anion framework ("S", 4 per cubic cell, a = 5.7 Å) with Li on half
  of the tetrahedral sites, hopping between neighbouring tetrahedral sites by kinetic Monte
  Carlo, thermal noise 0.25 Å: 11^3 cells (10,648 atoms) and 24^3 cells (110,592 atoms).

Every measurement runs in its own child process (``--child``), in the order ours, peers,
ours, peers (interleaved, so a change of the machine's load hits both), and reports
its CPU time (``time.process_time``: robust to other jobs on a shared machine), wall time,
and peak memory (``ru_maxrss`` of the child: the trajectory, the interpreter and the
analysis; ``extra`` is the growth during the analysis).  Times are the best of
``--repeat``; ``ratio`` = ours / peer (below 1: ours faster).  The load (``/proc/loadavg``)
is printed before and after.

    OMP_NUM_THREADS=1 .venv/bin/python tests/benchmarks/bench_events.py [--small] [--repeat 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

SIZES = {"10k": {"water": (3, 3, 3), "li": 11}, "100k": {"water": (7, 7, 6), "li": 24}}
FRAMES = {"hbonds": 5, "rdf": 5, "steinhardt": 3, "hops": 40, "rotations": 40}
R_MAX, N_BINS = 6.0, 240  # RDF range (Å) and bins
Q_CUT = 3.4  # Steinhardt neighbour cutoff (Å): O-O first shell and its O-H / H-H bonds
PEERS = {
    "hbonds": ["mdanalysis"],
    "rdf": ["freud", "mdanalysis"],
    "steinhardt": ["freud"],
    "hops": [],
    "rotations": [],
}


# --------------------------------------------------------------------------- systems
def water_box(reps, n_frames: int):
    """Positions (F, n, 3) Å, species, cells (F, 3, 3) of the replicated TIP3P box."""
    import MDAnalysis as mda
    from MDAnalysis.lib.mdamath import triclinic_vectors
    from MDAnalysisTests.datafiles import DCD_TRICLINIC, PSF_TRICLINIC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(PSF_TRICLINIC, DCD_TRICLINIC)
    pos, cells = [], []
    for ts in u.trajectory:
        pos.append(u.atoms.positions.astype(float))
        cells.append(triclinic_vectors(ts.dimensions).astype(float))
    idx = np.arange(n_frames) % len(pos)  # the DCD has 10 frames; cycle beyond
    pos, cells = np.array(pos)[idx], np.array(cells)[idx]
    shifts = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    big = pos[:, None] + np.einsum("sk,fkx->fsx", shifts.astype(float), cells)[:, :, None]
    species = ["O" if n.startswith("O") else "H" for n in u.atoms.names] * len(shifts)
    return big.reshape(n_frames, -1, 3), species, cells * np.asarray(reps, float)[None, :, None]


def li_conductor(n_cells: int, n_frames: int, seed: int = 0, a: float = 5.7):
    """Lattice-gas Li conductor: positions (F, n, 3) Å, species, cells (F, 3, 3), Li sites."""
    rng = np.random.default_rng(seed)
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    tet = np.array([[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])
    grid = np.stack(np.meshgrid(*[np.arange(n_cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    anions = ((grid[:, None] + fcc[None]).reshape(-1, 3)) * a
    sites_f = (grid[:, None] + tet[None]).reshape(-1, 3)  # fractional in units of a
    n_sites = sites_f.shape[0]
    # tetrahedral sites form a simple cubic lattice of spacing a/2: index them on it
    m = 2 * n_cells
    ijk = np.rint(sites_f * 2 - 0.5).astype(int) % m
    lin = (ijk[:, 0] * m + ijk[:, 1]) * m + ijk[:, 2]
    site_of = np.empty(m**3, int)
    site_of[lin] = np.arange(n_sites)
    steps = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    occ = np.zeros(n_sites, bool)
    li_site = rng.choice(n_sites, n_sites // 2, replace=False)
    occ[li_site] = True
    L = n_cells * a
    pos = np.empty((n_frames, anions.shape[0] + li_site.size, 3))
    for f in range(n_frames):
        # each Li tries one hop per frame with probability 0.05 to an empty neighbour site
        for k in np.flatnonzero(rng.random(li_site.size) < 0.05):
            s = li_site[k]
            nb = site_of[(((ijk[s] + steps[rng.integers(6)]) % m) * [m * m, m, 1]).sum()]
            if not occ[nb]:
                occ[s], occ[nb], li_site[k] = False, True, nb
        pos[f, : anions.shape[0]] = anions + rng.normal(0, 0.25, anions.shape)
        pos[f, anions.shape[0] :] = sites_f[li_site] * a + rng.normal(0, 0.25, (li_site.size, 3))
    species = ["S"] * anions.shape[0] + ["Li"] * li_site.size
    return pos, species, np.broadcast_to(np.eye(3) * L, (n_frames, 3, 3)).copy(), sites_f * a


def dataset(pos, species, cells):
    from atomtwin.toolkit.schema import make_dataset

    return make_dataset(pos, species, cell=cells, time=np.arange(len(pos)) * 0.01)


def universe(pos, species, cells):
    """An MDAnalysis Universe over the same float32 coordinates (MDAnalysis' precision)."""
    import MDAnalysis as mda
    from MDAnalysis.lib.mdamath import triclinic_box

    n = pos.shape[1]
    u = mda.Universe.empty(n, n_residues=n // 3, atom_resindex=np.arange(n) // 3, trajectory=True)
    u.add_TopologyAttr("name", species)
    u.add_TopologyAttr("type", species)
    dims = np.array([triclinic_box(*c) for c in cells])
    u.load_new(pos.astype(np.float32), format=mda.coordinates.memory.MemoryReader, dimensions=dims)
    return u


# --------------------------------------------------------------------------- one measurement
def build(case: str, size: str):
    n_frames = FRAMES[case]
    if case == "hops":
        pos, species, cells, sites = li_conductor(SIZES[size]["li"], n_frames)
        return pos.astype(np.float32).astype(float), species, cells, sites
    pos, species, cells = water_box(SIZES[size]["water"], n_frames)
    return pos.astype(np.float32).astype(float), species, cells, None


def prepare(case, tool, pos, species, cells, sites):
    """The input each tool reads (not timed): our Dataset, an MDAnalysis Universe, or frames."""
    if tool == "ours":
        return dataset(pos, species, cells), sites
    if tool == "mdanalysis":
        return universe(pos, species, cells), sites
    import freud  # freud needs positions inside its box: wrapped here, outside the timing

    boxes = [freud.box.Box.from_matrix(c.T) for c in cells]
    return [(b, b.wrap(p.astype(np.float32))) for b, p in zip(boxes, pos, strict=True)], sites


def run_ours(case, ds, sites):
    if case == "hbonds":
        from atomtwin.toolkit.dynamics.hbonds import hydrogen_bonds

        return int(hydrogen_bonds(ds, "O", "H", "O", d_da=3.0, angle=150.0, d_dh=1.2).sizes["bond"])
    if case == "rdf":
        from atomtwin.toolkit.phases.order import rdf

        g = rdf(ds, r_max=R_MAX, n_bins=N_BINS)
        return float(g.values[np.argmax(g.values)])
    if case == "steinhardt":
        from atomtwin.toolkit.phases.order import steinhardt

        q = steinhardt(ds, degrees=(4, 6), cutoff=Q_CUT)
        return float(q["q6_bar"].mean())
    if case == "hops":
        from atomtwin.toolkit.dynamics.hops import assign_sites, hops

        return int(hops(assign_sites(ds, "Li", sites)).sizes["event"])
    if case == "rotations":
        from atomtwin.toolkit.dynamics.rotations import (
            orientational_correlation,
            reorientation_events,
        )

        c = orientational_correlation(ds, "O", "H", n_ligands=2)
        ev = reorientation_events(ds, "O", "H", n_ligands=2)
        return float(c.values[0, -1]) + ev.sizes["event"]
    raise ValueError(case)


def run_peer(case, peer, data, sites):
    if peer == "mdanalysis":
        u = data
        if case == "hbonds":
            from MDAnalysis.analysis.hydrogenbonds import HydrogenBondAnalysis

            h = HydrogenBondAnalysis(
                u,
                donors_sel="name O",
                hydrogens_sel="name H",
                acceptors_sel="name O",
                d_h_cutoff=1.2,
                d_a_cutoff=3.0,
                d_h_a_angle_cutoff=150,
                update_selections=False,
            )
            return int(len(h.run().results.hbonds))
        if case == "rdf":
            from MDAnalysis.analysis.rdf import InterRDF

            # exclusion_block (1, 1): no atom pairs with itself, as ours (all distinct pairs)
            r = InterRDF(u.atoms, u.atoms, nbins=N_BINS, range=(0.0, R_MAX), exclusion_block=(1, 1))
            g = r.run().results.rdf
            return float(g.max())
    if peer == "freud":
        import freud

        if case == "rdf":
            rdf = freud.density.RDF(bins=N_BINS, r_max=R_MAX)
            for system in data:
                rdf.compute(system=system, reset=False)
            return float(rdf.rdf.max())
        if case == "steinhardt":
            st = freud.order.Steinhardt(l=[4, 6], average=True)
            out = []
            for system in data:
                st.compute(system=system, neighbors={"r_max": Q_CUT, "exclude_ii": True})
                out.append(st.particle_order[:, 1].mean())
            return float(np.mean(out))
    raise ValueError((case, peer))


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(case: str, tool: str, size: str) -> None:
    raw = build(case, size)
    n_atoms = len(raw[1])
    data = prepare(case, tool, *raw)
    del raw
    # import the tool before measuring (imports are not the analysis)
    if tool == "ours":
        import atomtwin.toolkit.dynamics  # noqa: F401
        import atomtwin.toolkit.phases.order  # noqa: F401
        import vesin  # noqa: F401
    elif tool == "freud":
        import freud  # noqa: F401
    else:
        import MDAnalysis.analysis.hydrogenbonds  # noqa: F401
        import MDAnalysis.analysis.rdf  # noqa: F401
    before = rss_mb()
    t0, w0 = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        val = run_ours(case, *data) if tool == "ours" else run_peer(case, tool, *data)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "cpu": cpu,
                "wall": wall,
                "peak_mb": peak,
                "extra_mb": peak - before,
                "value": val,
                "n_atoms": n_atoms,
            }
        )
    )


def measure(case, tool, size) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, tool, size],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="10k atoms only")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cases", nargs="+", default=list(FRAMES))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = ["10k"] if args.small else ["10k", "100k"]
    load0 = open("/proc/loadavg").read().split()[:3]
    print(
        f"load before: {' '.join(load0)} (on {os.cpu_count()} cores); one thread each; "
        f"best of {args.repeat}; frames {FRAMES}"
    )
    head = (
        f"{'analysis':<11} {'size':>5} {'atoms':>7} {'tool':<11} {'cpu s':>8} {'wall s':>8} "
        f"{'peak MB':>8} {'extra MB':>8} {'ratio cpu':>9} {'value':>10}"
    )
    print(head)
    for case in args.cases:
        for size in sizes:
            tools = ["ours", *PEERS[case]]
            runs: dict[str, list[dict]] = {t: [] for t in tools}
            for _ in range(args.repeat):
                for t in tools:
                    runs[t].append(measure(case, t, size))
            best = {}
            for t in tools:
                ok = [r for r in runs[t] if "error" not in r]
                if not ok:
                    print(f"{case:<11} {size:>5} {'':>7} {t:<11} error: {runs[t][0]['error']}")
                    continue
                best[t] = {k: min(r[k] for r in ok) for k in ("cpu", "wall", "peak_mb", "extra_mb")}
                best[t].update(value=ok[0]["value"], n_atoms=ok[0]["n_atoms"])
            for t, b in best.items():
                ratio = (
                    ""
                    if t == "ours" or "ours" not in best
                    else f"{best['ours']['cpu'] / b['cpu']:.2f}"
                )
                print(
                    f"{case:<11} {size:>5} {b['n_atoms']:>7} {t:<11} {b['cpu']:>8.2f} "
                    f"{b['wall']:>8.2f} {b['peak_mb']:>8.0f} {b['extra_mb']:>8.0f} {ratio:>9} "
                    f"{b['value']:>10.4g}",
                    flush=True,
                )
    load1 = open("/proc/loadavg").read().split()[:3]
    print(f"load after: {' '.join(load1)}")


if __name__ == "__main__":
    main()
