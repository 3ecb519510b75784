"""LAMMPS + ``pair_style atomtwin`` against our Python MD engine with the same package.

Fcc Cu at 300 K, NVE, 1 fs; per size and architecture:

* LAMMPS on 1 and 2 MPI ranks (one OpenMP thread each, each rank bound to its own core as
  :func:`atomtwin.engines.lammps.run.run_lammps` does): steps/s from LAMMPS' own loop time
  (setup excluded), CPU use as LAMMPS reports it, peak RSS of the largest rank; each case
  ``--repeats`` times, 1 and 2 ranks alternated;
* our engine (``atomtwin.engines.md`` velocity Verlet, Verlet list with the same 1 Å skin)
  calling the *same* ``.pt2`` through a thin adapter (edge vectors in, dE/d(edge vector)
  out, forces scattered in torch), one thread bound to the 1-rank run's core: steps/s (wall
  and CPU) and peak RSS;
* the same glibc malloc settings everywhere (``MALLOC_MMAP_MAX_=0``,
  ``MALLOC_TRIM_THRESHOLD_=2**40``, as ``atomtwin.engines.lammps.build.lammps_env`` sets);
* 2-rank parallel efficiency = (steps/s at 2 ranks) / (2 x steps/s at 1 rank).

Models: the shipped Cu models of ``data/md/cu_pair`` -- Allegro-style ``small.ckpt`` (r_max
3.3 Å, 1 layer) and NequIP-style ``large.ckpt`` (r_max 5 Å, 2 layers: a ghost shell of 10 Å
per rank), both float32.  Each case runs in its own process (peak memory is per process).
The machine is shared: the load average is printed with the table; compare the columns of one
run, not runs of different times.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_lammps.py            # 1k and 10k atoms
    OMP_NUM_THREADS=1 python tests/benchmarks/bench_lammps.py --small    # 1k atoms, few steps
    OMP_NUM_THREADS=1 python tests/benchmarks/bench_lammps.py --sizes 1000 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from atomtwin.engines.lammps.build import MALLOC_ENV

MODELS = {"allegro": "small.ckpt", "nequip": "large.ckpt"}



def _cells(n_atoms: int) -> tuple[int, int, int]:
    """Repeats of the 4-atom fcc cell giving about ``n_atoms`` atoms."""
    k = max(1, round((n_atoms / 4) ** (1 / 3)))
    best = min(
        (
            (a, b, c)
            for a in (k - 1, k, k + 1)
            for b in (k - 1, k, k + 1)
            for c in (k - 1, k, k + 1)
            if min(a, b, c) > 0
        ),
        key=lambda t: abs(4 * t[0] * t[1] * t[2] - n_atoms),
    )
    return best


def _structure(n_atoms: int):
    from ase.build import bulk

    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(_cells(n_atoms))


def packages(cache: Path) -> dict[str, Path]:
    """The LAMMPS packages of both Cu models, compiled once into ``cache``."""
    import atomtwin.data
    from atomtwin.engines.lammps.testing import compile_cached
    from atomtwin.engines.mlip.model import load_model

    out = {}
    for arch, name in MODELS.items():
        m = load_model(atomtwin.data.path("md", "cu_pair", name))
        out[arch], _ = compile_cached(m, cache, f"cu-{arch}-f32")
    return out


# -- one case per process --------------------------------------------------------------------


def run_lammps_case(pkg: str, n_atoms: int, steps: int, nprocs: int, work: str) -> dict:
    from atomtwin.engines.lammps.build import build_plugin
    from atomtwin.engines.lammps.inputs import MDSettings, lammps_frame, md_input, write_data
    from atomtwin.engines.lammps.run import run_lammps
    from atomtwin.engines.mlip.compiled import read_metadata

    meta = read_metadata(pkg)
    a = _structure(n_atoms)
    cell, pos, _ = lammps_frame(a.cell[:], a.positions)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    write_data(work / "data.lmp", pos, cell, np.ones(len(a), int), [63.546], ["Cu"])
    md = MDSettings(
        ensemble="nve",
        timestep=0.001,
        steps=steps,
        temperature=300.0,
        stride=10**6,
        restart_every=10**7,
        seed=3,
        init_velocities=True,
    )
    text = md_input(build_plugin(), pkg, ["Cu"], meta["ghost_cutoff"], md)
    text = text.replace("write_restart restart.*\n", "")
    r = run_lammps(text, work, nprocs)
    loop = re.search(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps", r.stdout)
    cpu = re.search(r"([\d.]+)% CPU use with", r.stdout)
    t, s = float(loop.group(1)), int(loop.group(3))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "steps_per_s": s / t,
        "cpu_s_per_step": t * float(cpu.group(1)) / 100 * nprocs / s,
        "peak_mib": peak,
        "atoms": len(a),
    }


def run_ours_case(pkg: str, n_atoms: int, steps: int) -> dict:
    import torch
    from atomtwin.engines.lammps.export import layer_inputs, pad_dummy
    from atomtwin.engines.md import VelocityVerlet, state_from_atoms
    from atomtwin.engines.md.mlip_provider import MLIPForceProvider
    from atomtwin.engines.mlip import torch_internals as TI
    from atomtwin.engines.mlip.compiled import read_metadata

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):  # the core a 1-rank LAMMPS run is bound to (-bind-to core)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    meta = read_metadata(pkg)
    runner = TI.aoti_load_package(str(pkg), device_index=-1)
    dtype = getattr(torch, meta["dtype"])
    extra = layer_inputs(meta["architecture"], meta["num_layers"])  # every edge, every layer

    class SamePackage(torch.nn.Module):
        """The LAMMPS package with the eager model's call contract (energy, forces)."""

        species, r_max = list(meta["species"]), float(meta["r_max"])

        def forward(self, data):
            pos, ei = data["pos"], data["edge_index"]
            cell = data["cell"][0]
            vec = (pos[ei[1]] - pos[ei[0]] + data["edge_cell_shift"] @ cell).to(dtype)
            n = pos.shape[0]
            w = torch.ones(n, dtype=dtype)
            energy, _, g = runner(*pad_dummy(vec, data["atom_types"], ei, w, self.r_max, extra))
            g = g[:-2].to(pos.dtype)
            f = torch.zeros_like(pos).index_add_(0, ei[0], g).index_add_(0, ei[1], -g)
            return {"energy": energy.to(pos.dtype), "forces": f, "stress": torch.zeros(1, 3, 3)}

    prov = MLIPForceProvider(SamePackage(), skin=1.0)
    s = state_from_atoms(_structure(n_atoms), temperature_K=300.0, seed=0)
    integ = VelocityVerlet(0.001)
    s = integ.init(s, prov)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        s = integ.step(s, prov)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "steps_per_s": steps / wall,
        "cpu_s_per_step": cpu / steps,
        "peak_mib": peak,
        "atoms": s.n_atoms,
    }


def _subprocess(kind: str, *args) -> dict:
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import bench_lammps as b; "
        f"print('RESULT', json.dumps(b.{kind}(*json.loads(sys.argv[1]))))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args))],
        capture_output=True,
        text=True,
        # the glibc settings lammps_env gives LAMMPS' ranks, for our engine's process too
        env={**os.environ, **MALLOC_ENV, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if not line:
        raise RuntimeError(f"{kind}{args} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--small", action="store_true", help="1k atoms, few steps (smoke test)")
    p.add_argument("--archs", nargs="+", default=list(MODELS))
    p.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="about this many seconds of stepping per case (steps chosen from a probe)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="alternated 1-rank / 2-rank runs of each LAMMPS case (best and paired efficiency)",
    )
    p.add_argument(
        "--cache",
        default=os.environ.get(
            "ATOMTWIN_TEST_CACHE", str(Path(tempfile.gettempdir()) / "atomtwin-bench-lammps")
        ),
    )
    args = p.parse_args(argv)
    sizes = [1000] if args.small else args.sizes
    budget = 3.0 if args.small else args.budget
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ATOMTWIN_LAMMPS_CACHE", str(cache / "plugin"))
    from atomtwin.engines.lammps.build import build_plugin

    build_plugin()
    pkgs = packages(cache)
    load0 = open("/proc/loadavg").read().split()[:3]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            for n in sizes:
                pkg = str(pkgs[arch])
                probe = _subprocess("run_lammps_case", pkg, n, 3, 1, f"{tmp}/probe-{arch}-{n}")
                steps = int(max(3, min(500, budget * probe["steps_per_s"])))
                ones, twos = [], []
                for r in range(args.repeats):  # alternated: slow spells hit both alike
                    ones.append(_subprocess("run_lammps_case", pkg, n, steps, 1, f"{tmp}/{arch}-{n}-1-{r}"))
                    twos.append(_subprocess("run_lammps_case", pkg, n, steps, 2, f"{tmp}/{arch}-{n}-2-{r}"))
                ours = _subprocess("run_ours_case", pkg, n, steps)
                rows.append((arch, ones[0]["atoms"], steps, ones, twos, ours))
                print(f"{arch} {ones[0]['atoms']} done", file=sys.stderr, flush=True)
    load1 = open("/proc/loadavg").read().split()[:3]
    print(
        f"\nload average before {' '.join(load0)}, after {' '.join(load1)}; "
        f"{os.cpu_count()} cores; one OpenMP thread per rank / process\n"
    )
    print(
        f"{args.repeats} alternated repeats of each LAMMPS case: steps/s is the best repeat (the "
        "machine's noise only slows a run down), efficiency = best 2-rank / (2 x best 1-rank); "
        "'paired' is the median and range of the per-repeat efficiencies\n"
    )
    print(
        "| model | atoms | steps | LAMMPS 1 rank (steps/s) | LAMMPS 2 ranks (steps/s) | 2-rank efficiency "
        "| paired efficiency, median (min-max) | ours, same package (steps/s) | LAMMPS 1 rank / ours "
        "| CPU s/step LAMMPS 1 / ours | peak MiB LAMMPS 1 rank / 2 ranks (largest rank) / ours |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arch, n, steps, ones, twos, ours in rows:
        one = max(ones, key=lambda r: r["steps_per_s"])
        two = max(twos, key=lambda r: r["steps_per_s"])
        eff = two["steps_per_s"] / (2 * one["steps_per_s"])
        paired = [b["steps_per_s"] / (2 * a["steps_per_s"]) for a, b in zip(ones, twos, strict=True)]
        print(
            f"| {arch} | {n:,} | {steps} | {one['steps_per_s']:.3g} | {two['steps_per_s']:.3g} | {eff:.2f} "
            f"| {np.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f}) "
            f"| {ours['steps_per_s']:.3g} | {one['steps_per_s'] / ours['steps_per_s']:.2f} "
            f"| {one['cpu_s_per_step']:.3g} / {ours['cpu_s_per_step']:.3g} "
            f"| {max(r['peak_mib'] for r in ones):.0f} / {max(r['peak_mib'] for r in twos):.0f} / {ours['peak_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
