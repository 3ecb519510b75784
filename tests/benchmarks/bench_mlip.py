"""Energy+forces throughput of our NequIP-/Allegro-style models vs nequip 0.19 /
nequip-allegro at equal capacity (tests/support/peer_models.py), eager, torch.compile and
AOTInductor for both sides, CPU (or CUDA with ``--device cuda``).

    python tests/benchmarks/bench_mlip.py --malloc-tuned              # 64, 512, 4096 atoms
    python tests/benchmarks/bench_mlip.py --small                     # 64 atoms, eager only
    python tests/benchmarks/bench_mlip.py --modes eager aoti --match params widths

Pairs come from THE shared builder: ``--match params`` (default) sets one knob so the
parameter counts agree within 5 % (printed with both counts and the FLOPs per edge from
torch.utils.flop_counter's formulas); ``--match widths`` is the other setting of the
differences no switch removes (printed as ``# unmatched``).

Modes: ``eager``; ``compile`` (torch.compile of energy + forces as one graph, dynamic
shapes; ours: ``EnergyAndGradients``; the peer: its ``GraphModel``); ``aoti`` (ours:
``atomtwin.engines.mlip.compile.compile_model``; the peer: nequip's own AOTInductor export,
``nequip.utils.aot.aot_export_model`` with the ``ase`` target — what ``nequip-compile --mode
aotinductor`` runs after loading a checkpoint, which a bare model does not have — loaded
through nequip's ``load_compiled_model``); ``aoti_kernel`` (CUDA only: ours with
``--kernel``, the peer with its ``enable_TritonContracter`` modifier).  Packages are built
once per (side, architecture) in the parent, timed in a fresh subprocess per (side, mode,
size), ours and the peer interleaved.  Every subprocess inherits the same environment
(threads, ``MALLOC_*``; ``--malloc-tuned``: ``MALLOC_MMAP_MAX_=0``,
``MALLOC_TRIM_THRESHOLD_=2**40`` for both — large eager tensors otherwise page-fault
through glibc's mmap path on every call).  Throughput = atoms x evaluations / s after two
warm-up calls, in wall time and in CPU time of the process; peak RSS per process (CPU) or
peak CUDA memory.  Inputs: fcc Cu, a = 3.61 Å, rattled 0.05 Å (r_max = 5 Å, ~43
neighbours per atom); the neighbour list is built once, not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import peer_models as pm  # noqa: E402

H = pm.BENCH
REPS = {64: (2, 2, 4), 512: (4, 4, 8), 4096: (8, 8, 16)}


def _structure(n_atoms: int):
    import numpy as np
    from ase.build import bulk

    reps = REPS.get(n_atoms)
    if reps is None:  # any other size: a near-cubic block of cubic cells
        k = max(1, round((n_atoms / 4) ** (1 / 3)))
        reps = (k, k, max(1, n_atoms // (4 * k * k)))
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
    a.positions += np.random.default_rng(0).normal(scale=0.05, size=a.positions.shape)
    return a


def batch(n_atoms: int, device: str = "cpu"):
    from atomtwin.engines.mlip.data import collate

    b = collate([_structure(n_atoms)], r_max=H.r_max, species=["Cu"])
    b = {k: (v.float() if v.is_floating_point() else v).to(device) for k, v in b.items()}
    return b, b["edge_index"].shape[1] / b["pos"].shape[0]


def pair(arch: str, match: str, avg: float, device: str):
    ours, peer, info = pm.matched_pair(arch, H, match=match, avg=avg)
    return ours.to(device).eval(), peer.to(device).eval(), info


def build_packages(arch: str, match: str, avg: float, modes, device: str, out: Path) -> dict:
    """Compile the AOTI packages of both sides once; returns {(side, mode): path or error}."""
    import warnings

    import torch

    ours, peer, _ = pair(arch, match, avg, device)
    res = {}
    for mode in [m for m in modes if m.startswith("aoti")]:
        kern = mode == "aoti_kernel"
        if kern and device != "cuda":
            continue
        p = out / f"ours_{arch}_{match}_{mode}.pt2"
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from atomtwin.engines.mlip.compile import compile_model

                compile_model(ours, p, device=device, kernel=kern, check_sizes=(7,))
            res[("ours", mode)] = str(p)
        except Exception as e:  # noqa: BLE001 - reported in the table
            res[("ours", mode)] = f"error: {type(e).__name__}: {str(e)[:120]}"
        print(f"# built ours {arch} {mode} in {time.perf_counter() - t0:.0f} s", flush=True)
        if kern and arch != "allegro":
            continue
        p = out / f"peer_{arch}_{match}_{mode}.nequip.pt2"
        t0 = time.perf_counter()
        try:
            _peer_aoti(peer, p, device, triton=kern)
            res[("peer", mode)] = str(p)
        except Exception as e:  # noqa: BLE001
            res[("peer", mode)] = f"error: {type(e).__name__}: {str(e)[:120]}"
        print(f"# built peer {arch} {mode} in {time.perf_counter() - t0:.0f} s", flush=True)
        torch._dynamo.reset()
    return res


def _peer_aoti(model, path: Path, device: str, triton: bool) -> None:
    """nequip's AOTInductor route (the body of ``nequip-compile --mode aotinductor --target
    ase``), from a model object instead of a training checkpoint."""
    from nequip.model.modify_utils import modify
    from nequip.scripts._compile_utils import COMPILE_TARGET_DICT
    from nequip.utils.aot import aot_export_model

    if triton:
        model = modify(model, [{"modifier": "enable_TritonContracter"}])
    tdict = COMPILE_TARGET_DICT["ase"]
    import torch

    b, _ = batch(64, device)
    data = {k: b[k] for k in pm.PEER_KEYS}
    dims = {"graph": torch.export.Dim("num_frames", min=1),
            "node": torch.export.Dim("num_nodes", min=2),
            "edge": torch.export.Dim("num_edges", min=2)}
    aot_export_model(model=model, device=device, input_fields=tdict["input"],
                     output_fields=tdict["output"], data=tdict["data_settings"](data),
                     batch_map=tdict["batch_map_settings"](dims), output_path=str(path),
                     inductor_configs={}, seed=0)


def load_peer_package(path: str):
    """nequip's AOTI loading steps (``nequip.model.inference_models.aotinductor``: custom-op
    libraries, ``aoti_load_package``, ``DictInputOutputWrapper``) without its metadata parsing
    (a package exported from a model object has no training metadata such as r_max)."""
    import torch
    from nequip.nn.compile import DictInputOutputWrapper
    from nequip.scripts._compile_utils import COMPILE_TARGET_DICT
    from nequip.utils.aoti_metadata import import_custom_ops_libs

    import_custom_ops_libs(path)
    t = COMPILE_TARGET_DICT["ase"]
    return DictInputOutputWrapper(torch._inductor.aoti_load_package(path), t["input"], t["output"])


def worker(side: str, arch: str, mode: str, n_atoms: int, match: str, budget_s: float,
           device: str, package: str | None, lean: bool = False) -> dict:
    import resource

    import torch

    b, avg = batch(n_atoms, device)
    ours, peer, info = pair(arch, match, avg, device)
    for p in list(ours.parameters()) + list(peer.parameters()):
        p.requires_grad_(False)
    ours.set_lean_memory(lean)
    if mode == "eager":
        run = pm.ours_energy_forces(ours) if side == "ours" else pm.peer_energy_forces(peer)
    elif mode == "compile":
        if side == "ours":
            from atomtwin.engines.mlip.compile import EnergyAndGradients, _inputs

            f = torch.compile(EnergyAndGradients(ours), dynamic=True)
            x = _inputs(b, ours.shift.dtype)

            def run(_b, f=f, x=x):
                return f(*x)[:3:2]
        else:
            f = torch.compile(peer, dynamic=True)

            def run(_b, f=f):
                out = f({k: _b[k] for k in pm.PEER_KEYS})
                return out["total_energy"], out["forces"]
    else:
        if package is None or package.startswith("error"):
            return {"error": package or "no package"}
        if side == "ours":
            from atomtwin.engines.mlip.compiled import load_compiled

            pot = load_compiled(package, device=device)

            def run(_b, pot=pot):
                out = pot(_b)
                return out["energy"], out["forces"]
        else:
            m = load_peer_package(package)
            run = pm.peer_energy_forces(m)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        for _ in range(2):
            run(b)
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            run(b)
            sync()
            n += 1
            dt = time.perf_counter() - t0
            if dt > budget_s or n >= 200:
                break
    dc = time.process_time() - c0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"side": side, "arch": arch, "mode": mode, "atoms": n_atoms, "evals": n,
            "atoms_per_s": n_atoms * n / dt, "atoms_per_cpu_s": n_atoms * n / dc, "peak_mb": peak,
            "neighbors": avg, "load": os.getloadavg()[0]}


def flops(arch: str, match: str) -> tuple[float, float, dict]:
    b, avg = batch(64)
    ours, peer, info = pair(arch, match, avg, "cpu")
    return (pm.flops_per_edge(pm.ours_energy_forces(ours), b),
            pm.flops_per_edge(pm.peer_energy_forces(peer), b), info)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="64 atoms, eager only (smoke run)")
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of timing per case")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="atom counts")
    ap.add_argument("--arch", nargs="+", default=["nequip", "allegro"], choices=("nequip", "allegro"))
    ap.add_argument("--modes", nargs="+", default=["eager", "compile", "aoti"],
                    choices=("eager", "compile", "aoti", "aoti_kernel"))
    ap.add_argument("--match", nargs="+", default=["params"], choices=("params", "widths"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None, help="also write every row here")
    ap.add_argument("--malloc-tuned", action="store_true",
                    help="MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2**40 for every case")
    ap.add_argument("--lean", action="store_true",
                    help="ours with set_lean_memory(True) (NequIP-style eager: less memory, more time)")
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        side, arch, mode, n, match, package = args.worker
        r = worker(side, arch, mode, int(n), match, args.budget, args.device,
                   None if package == "-" else package, lean=args.lean)
        print(json.dumps(r))
        return
    sizes = [64] if args.small else (args.sizes or [64, 512, 4096])
    modes = ["eager"] if args.small else args.modes
    env = dict(os.environ)
    if args.malloc_tuned:
        env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(2**40))
    malloc = {k: v for k, v in env.items() if k.startswith("MALLOC_")}
    print(f"# {os.cpu_count()} CPUs, load average (1, 5, 15 min) at start: {os.getloadavg()}")
    print(f"# device {args.device}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}, "
          f"MALLOC_* = {malloc or '(none set: glibc defaults)'}, same for every case")
    print(f"# shared hyperparameters: {H}")
    print(f"# ours: set_lean_memory({args.lean})")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_mlip_"))
    for arch in args.arch:
        for match in args.match:
            fo, fp, info = flops(arch, match)
            print(f"# {arch} match={match}: parameters ours {info['params_ours']:,} / peer "
                  f"{info['params_peer']:,} (ratio {info['params_ratio']:.3f}; {info['knob']}); "
                  f"FLOPs/edge (energy+forces, matmul-class) ours {fo:,.0f} / peer {fp:,.0f}")
            for u in info["unmatched"]:
                print(f"#   unmatched: {u}")
            _, avg = batch(64)
            pk = build_packages(arch, match, avg, modes, args.device, tmp) if any(
                m.startswith("aoti") for m in modes) else {}
            print(f"{'model':8} {'mode':12} {'atoms':>6} {'ours /s':>9} {'peer /s':>9} {'ratio':>6} "
                  f"{'ours /cpu-s':>11} {'peer /cpu-s':>11} {'cpu ratio':>9} {'ours MB':>8} "
                  f"{'peer MB':>8} {'load':>5}")
            for mode in modes:
                if mode == "aoti_kernel" and args.device != "cuda":
                    print(f"{arch:8} {mode:12} {'n/a: the Triton kernel path needs CUDA':>40}")
                    continue
                for n in sizes:
                    res = {}
                    for side in ("ours", "peer"):  # interleaved, same environment
                        pkg = pk.get((side, mode), "-")
                        cmd = [sys.executable, __file__, "--worker", side, arch, mode, str(n), match,
                               pkg, "--budget", str(args.budget), "--device", args.device]
                        cmd += ["--lean"] if args.lean else []
                        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
                        try:
                            res[side] = json.loads(p.stdout.strip().splitlines()[-1])
                        except (IndexError, json.JSONDecodeError):
                            res[side] = {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:150]}
                    o, q = res["ours"], res["peer"]
                    for side, r in res.items():
                        if "error" in r:
                            print(f"# {side} {arch} {mode} {n}: {r['error']}", file=sys.stderr)
                    ok_o, ok_q = "error" not in o, "error" not in q
                    def g(r, k, ok):
                        return r[k] if ok else float("nan")

                    ratio = g(o, "atoms_per_s", ok_o) / g(q, "atoms_per_s", ok_q)
                    cratio = g(o, "atoms_per_cpu_s", ok_o) / g(q, "atoms_per_cpu_s", ok_q)
                    load = max(g(o, "load", ok_o), g(q, "load", ok_q))
                    print(f"{arch:8} {mode:12} {n:6d} {g(o, 'atoms_per_s', ok_o):9.0f} "
                          f"{g(q, 'atoms_per_s', ok_q):9.0f} {ratio:6.2f} "
                          f"{g(o, 'atoms_per_cpu_s', ok_o):11.0f} {g(q, 'atoms_per_cpu_s', ok_q):11.0f} "
                          f"{cratio:9.2f} {g(o, 'peak_mb', ok_o):8.0f} {g(q, 'peak_mb', ok_q):8.0f} "
                          f"{load:5.1f}", flush=True)
                    rows.append({"arch": arch, "match": match, "mode": mode, "atoms": n, "ours": o,
                                 "peer": q, "params": [info["params_ours"], info["params_peer"]],
                                 "flops_per_edge": [fo, fp]})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
