"""GPU timing for tests/gpu/device_check.sh: eager / torch.compile / AOTI / AOTI + kernel of
our NequIP- and Allegro-style models against nequip-allegro's AOTI (+ its Triton
``enable_TritonContracter`` modifier) on the same inputs, capacity-matched pairs from
tests/support/peer_models.py, energy + forces, float32.

    python tests/gpu/device_bench.py --out results/           # CUDA: 1k, 10k, 100k atoms
    python tests/gpu/device_bench.py --dry-run --out /tmp/x   # CPU, 32/64 atoms, no kernel

Writes ``device_bench.json`` (every case: atoms, edges, ms per evaluation, atoms x evals / s,
peak GPU memory in MiB, or the error) and ``device_bench.txt`` (the table).  A wall-clock
budget (``--budget-s``) stops starting new cases when spent; skipped cases are recorded as
such, never silently dropped.  Inputs: fcc Cu (a = 3.61 Å, rattled 0.05 Å, r_max 5 Å,
~43 neighbours per atom), the neighbour list built once and not timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "support"))
sys.path.insert(0, str(HERE.parents[0] / "benchmarks"))

import bench_mlip as bm  # noqa: E402
import peer_models as pm  # noqa: E402
import torch  # noqa: E402


def _timeit(fn, sync, reps: int, min_s: float = 0.5) -> float:
    for _ in range(2):
        fn()
    sync()
    n, t0 = 0, time.perf_counter()
    while n < reps or time.perf_counter() - t0 < min_s:
        fn()
        sync()
        n += 1
        if n >= 50:
            break
    return (time.perf_counter() - t0) / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (tests the script)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--arch", nargs="+", default=["allegro", "nequip"])
    # the key comparison first (our AOTI + kernel vs nequip-allegro's AOTI + Triton),
    # so a spent budget skips the less important cases
    ap.add_argument("--modes", nargs="+", default=["eager", "aoti_kernel", "peer_aoti_triton", "aoti",
                                                   "peer_aoti", "compile"])
    ap.add_argument("--budget-s", type=float, default=300.0)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("device_bench: no CUDA device (use --dry-run on CPU)", file=sys.stderr)
        return 2
    sizes = args.sizes or ([32, 64] if args.dry_run else [1000, 10000, 100000])
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="device_bench_"))
    rows: list[dict] = []
    header = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)",
              "torch": torch.__version__, "dtype": "float32", "hyper": str(pm.BENCH)}

    def left() -> float:
        return args.budget_s - (time.perf_counter() - t_start)

    for arch in args.arch:
        _, avg = bm.batch(sizes[0], device)
        ours, peer, info = bm.pair(arch, "params", avg, device)
        for p in list(ours.parameters()) + list(peer.parameters()):
            p.requires_grad_(False)
        header[f"{arch}_params"] = [info["params_ours"], info["params_peer"]]
        paths: dict[str, object] = {}
        build_s: dict[str, float] = {}
        for mode in args.modes:
            if left() < 30:
                rows.append({"arch": arch, "mode": mode, "skipped": "time budget spent"})
                continue
            if mode.startswith("peer") and arch != "allegro":
                continue  # the peer path: nequip-allegro's AOTI (+ Triton)
            if mode in ("aoti_kernel", "peer_aoti_triton") and (device != "cuda" or arch != "allegro"):
                continue
            t0 = time.perf_counter()
            try:
                if mode == "eager":
                    paths[mode] = lambda b, m=ours: m(b)
                elif mode == "compile":
                    from atomtwin.engines.mlip.compile import EnergyAndGradients, _inputs

                    f = torch.compile(EnergyAndGradients(ours), dynamic=True)
                    paths[mode] = lambda b, f=f: f(*_inputs(b, torch.float32))
                elif mode in ("aoti", "aoti_kernel"):
                    from atomtwin.engines.mlip.compile import compile_model
                    from atomtwin.engines.mlip.compiled import load_compiled

                    p = tmp / f"{arch}_{mode}.pt2"
                    compile_model(ours, p, device=device, kernel=mode == "aoti_kernel", check_sizes=(7,))
                    pot = load_compiled(p, device=device)
                    paths[mode] = lambda b, pot=pot: pot(b)
                else:
                    p = tmp / f"peer_{arch}_{mode}.nequip.pt2"
                    bm._peer_aoti(peer, p, device, triton=mode == "peer_aoti_triton")
                    m = bm.load_peer_package(str(p))
                    paths[mode] = pm.peer_energy_forces(m)
            except Exception as e:  # noqa: BLE001 - recorded
                rows.append({"arch": arch, "mode": mode, "error": f"build: {type(e).__name__}: {e}"[:300]})
                traceback.print_exc()
            build_s[mode] = time.perf_counter() - t0
        header[f"{arch}_build_s"] = build_s
        for n in sizes:
            b, _ = bm.batch(n, device)
            for mode, fn in paths.items():
                row = {"arch": arch, "mode": mode, "atoms": b["pos"].shape[0],
                       "edges": int(b["edge_index"].shape[1])}
                if left() < 10:
                    rows.append({**row, "skipped": "time budget spent"})
                    continue
                try:
                    if device == "cuda":
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                    with torch._dynamo.config.patch(trace_autograd_ops=True):
                        dt = _timeit(lambda fn=fn, b=b: fn(b), sync, args.reps)
                    row.update(ms=1e3 * dt, atoms_per_s=row["atoms"] / dt)
                    if device == "cuda":
                        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
                except Exception as e:  # noqa: BLE001 - e.g. out of memory at 100k atoms
                    row["error"] = f"{type(e).__name__}: {e}"[:300]
                rows.append(row)
                print(json.dumps(row), flush=True)
            del b
    lines = [f"# {header}", f"{'arch':8} {'mode':17} {'atoms':>7} {'edges':>9} {'ms':>9} "
             f"{'atoms/s':>10} {'peak MiB':>9}"]
    for r in rows:
        if "ms" in r:
            lines.append(f"{r['arch']:8} {r['mode']:17} {r['atoms']:7d} {r['edges']:9d} {r['ms']:9.2f} "
                         f"{r['atoms_per_s']:10.3g} {r.get('peak_mib', float('nan')):9.0f}")
        else:
            lines.append(f"{r['arch']:8} {r['mode']:17} {r.get('atoms', ''):>7} "
                         f"{r.get('error') or r.get('skipped')}")
    (args.out / "device_bench.json").write_text(json.dumps({"header": header, "rows": rows}, indent=1))
    (args.out / "device_bench.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
