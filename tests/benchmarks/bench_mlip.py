"""Energy+forces throughput of our NequIP-/Allegro-style models vs nequip 0.19 /
nequip-allegro, same hyperparameters, eager mode, CPU.

    python tests/benchmarks/bench_mlip.py            # 64, 512, 4096 atoms
    python tests/benchmarks/bench_mlip.py --small    # 64 atoms only (smoke run)

Each (implementation, size) runs in a fresh subprocess so that peak memory (max RSS) is
per case; every subprocess inherits the same environment (threads, MALLOC_* settings,
printed in the header; ``--malloc-tuned`` sets ``MALLOC_MMAP_MAX_=0`` and
``MALLOC_TRIM_THRESHOLD_=2**40`` for both, so large tensors are recycled from the heap
instead of being mmap'ed, page-faulted and zeroed by the kernel on every call).
Throughput = atoms x evaluations / s of energy + forces (one forward and one gradient),
after two warm-up calls, in wall time and in CPU time of the process (``cpu`` columns:
robust on a shared machine, where wall time also counts other users' processes; the
load average is printed in the header).  Inputs (fcc Cu, a = 3.61 Å,
rattled 0.05 Å, r_max = 5 Å, ~78 neighbours per atom) and the neighbour list are the
same for both; building the list is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HYPER = dict(r_max=5.0, lmax=1, parity=True, num_layers=3, mul=32, num_basis=8,
             radial_hidden=64, radial_layers=2, allegro_layers=2, allegro_mul=16, latent=64)


def _structure(n_atoms: int):
    import numpy as np
    from ase.build import bulk

    reps = {64: (2, 2, 4), 512: (4, 4, 8), 4096: (8, 8, 16)}[n_atoms]
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
    a.positions += np.random.default_rng(0).normal(scale=0.05, size=a.positions.shape)
    return a


def _batch(n_atoms: int):
    import torch
    from atomtwin.engines.mlip.data import collate

    b = collate([_structure(n_atoms)], r_max=HYPER["r_max"], species=["Cu"])
    return {k: (v.float() if v.is_floating_point() else v) for k, v in b.items()}, b["edge_index"].shape[1] / n_atoms, torch


def _ours(arch: str, avg: float):
    from atomtwin.engines.mlip import ModelConfig, build_model

    h = HYPER
    if arch == "nequip":
        cfg = ModelConfig(architecture="nequip", species=("Cu",), r_max=h["r_max"], lmax=h["lmax"],
                          parity=h["parity"], num_layers=h["num_layers"], mul=h["mul"],
                          num_basis=h["num_basis"], radial_hidden=h["radial_hidden"],
                          radial_layers=h["radial_layers"], avg_num_neighbors=avg)
    else:
        cfg = ModelConfig(architecture="allegro", species=("Cu",), r_max=h["r_max"], lmax=h["lmax"],
                          parity=h["parity"], num_layers=h["allegro_layers"], mul=h["allegro_mul"],
                          num_basis=h["num_basis"], latent=h["latent"], mlp_hidden=h["latent"],
                          avg_num_neighbors=avg)
    m = build_model(cfg)

    def run(b):
        out = m(b)
        return out["energy"], out["forces"]

    return run


def _peer(arch: str, avg: float):
    from nequip.utils.global_state import set_global_state

    set_global_state()  # nequip requires it before building (sets its default dtype)
    h = HYPER
    common = dict(seed=0, model_dtype="float32", type_names=["Cu"], r_max=h["r_max"],
                  avg_num_neighbors=avg, per_type_energy_scales=1.0, per_type_energy_shifts=0.0)
    if arch == "nequip":
        from nequip.model import NequIPGNNModel

        m = NequIPGNNModel(num_layers=h["num_layers"], l_max=h["lmax"], parity=h["parity"],
                           num_features=h["mul"], radial_mlp_depth=h["radial_layers"],
                           radial_mlp_width=h["radial_hidden"], num_bessels=h["num_basis"], **common)
    else:
        from allegro.model import AllegroModel

        m = AllegroModel(
            l_max=h["lmax"], parity=h["parity"], num_layers=h["allegro_layers"],
            radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed",
                                   "num_bessels": h["num_basis"]},
            num_scalar_features=h["latent"], num_tensor_features=h["allegro_mul"],
            allegro_mlp_hidden_layers_depth=1, allegro_mlp_hidden_layers_width=h["latent"],
            readout_mlp_hidden_layers_depth=1, readout_mlp_hidden_layers_width=h["latent"], **common,
        )
    m.eval()

    def run(b):
        import torch

        d = {"pos": b["pos"], "atom_types": b["atom_types"], "cell": b["cell"], "pbc": b["pbc"],
             "edge_index": b["edge_index"], "edge_cell_shift": b["edge_cell_shift"],
             "batch": b["batch"], "num_atoms": b["num_atoms"]}
        out = m(d)
        return out["total_energy"], out["forces"].detach() if torch.is_tensor(out["forces"]) else None

    return run


def worker(impl: str, arch: str, n_atoms: int, budget_s: float) -> dict:
    import resource

    b, avg, torch = _batch(n_atoms)
    run = (_ours if impl == "ours" else _peer)(arch, avg)
    for _ in range(2):
        run(b)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        run(b)
        n += 1
        dt = time.perf_counter() - t0
        if dt > budget_s or n >= 200:
            break
    dc = time.process_time() - c0
    return {"impl": impl, "arch": arch, "atoms": n_atoms, "evals": n, "seconds": dt,
            "atoms_per_s": n_atoms * n / dt, "ms_per_eval": 1e3 * dt / n,
            "atoms_per_cpu_s": n_atoms * n / dc,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "neighbors": avg, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="64 atoms only")
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of timing per case")
    ap.add_argument("--sizes", type=int, nargs="+", choices=(64, 512, 4096), help="atom counts")
    ap.add_argument("--arch", nargs="+", default=["nequip", "allegro"], choices=("nequip", "allegro"))
    ap.add_argument("--malloc-tuned", action="store_true",
                    help="MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2**40 for every case")
    ap.add_argument("--worker", nargs=3, metavar=("IMPL", "ARCH", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], int(args.worker[2]), args.budget)))
        return
    sizes = [64] if args.small else (args.sizes or [64, 512, 4096])
    env = dict(os.environ)
    if args.malloc_tuned:
        env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(2**40))
    malloc = {k: v for k, v in env.items() if k.startswith("MALLOC_")}
    print(f"# {os.cpu_count()} CPUs, load average (1, 5, 15 min) at start: {os.getloadavg()}")
    print(f"# threads OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
          f"MALLOC_* = {malloc or '(none set: glibc defaults)'}, same for every case")
    print(f"# hyperparameters: {HYPER}")
    print(f"{'model':8} {'atoms':>6} {'ours atoms/s':>13} {'peer atoms/s':>13} {'ratio':>6} "
          f"{'ours /cpu-s':>12} {'peer /cpu-s':>12} {'cpu ratio':>9} {'ours MB':>8} {'peer MB':>8}")
    for arch in args.arch:
        for n in sizes:
            res = {}
            for impl in ("ours", "peer"):
                cmd = [sys.executable, __file__, "--worker", impl, arch, str(n), "--budget", str(args.budget)]
                p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if p.returncode != 0:
                    res[impl] = None
                    print(f"# {impl} {arch} {n}: failed: {p.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                else:
                    res[impl] = json.loads(p.stdout.strip().splitlines()[-1])
            o, q = res["ours"], res["peer"]
            ratio = f"{o['atoms_per_s'] / q['atoms_per_s']:.2f}" if o and q else "n/a"
            cratio = f"{o['atoms_per_cpu_s'] / q['atoms_per_cpu_s']:.2f}" if o and q else "n/a"
            nan = float("nan")
            print(f"{arch:8} {n:6d} {o['atoms_per_s'] if o else nan:13.0f} "
                  f"{q['atoms_per_s'] if q else nan:13.0f} {ratio:>6} "
                  f"{o['atoms_per_cpu_s'] if o else nan:12.0f} {q['atoms_per_cpu_s'] if q else nan:12.0f} "
                  f"{cratio:>9} "
                  f"{o['peak_rss_mb'] if o else float('nan'):8.0f} {q['peak_rss_mb'] if q else float('nan'):8.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
