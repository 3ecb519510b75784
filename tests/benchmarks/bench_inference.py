"""MD-step throughput of the potential: eager vs torch.compile vs AOTInductor (vs +kernel on GPU).

One MD step's model work = energy + forces + stress for a fixed neighbour list (the list
is built once, outside the timing, as an MD engine with a skin does).  Random periodic
structures at ~1 atom / 12 Å^3 (about 20 neighbours within 4 Å).  Prints a table with
time per step, atom-steps per second and the ratio to eager.

    python tests/benchmarks/bench_inference.py            # 250, 1000, 4000 atoms
    python tests/benchmarks/bench_inference.py --small    # one small size, tiny model

The peer (nequip-allegro with its own compile path) is reported as not run: see the note
printed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from engines.mlip.compile import EnergyAndGradients, _inputs, compile_model, example_graph  # noqa: E402
from engines.mlip.compiled import load_compiled  # noqa: E402
from engines.mlip.config import ModelConfig  # noqa: E402
from engines.mlip.model import build_model  # noqa: E402


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, allocator)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="one small size, tiny model (smoke run)")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    if args.small:
        sizes = args.sizes or [64]
        hp = dict(num_layers=2, lmax=1, mul=4, latent=16, mlp_hidden=16, num_basis=4)
    else:
        sizes = args.sizes or [250, 1000, 4000]
        hp = dict(num_layers=2, lmax=2, mul=16, latent=64, mlp_hidden=64, num_basis=8)
    cfg = ModelConfig(architecture="allegro", species=("Si", "O"), r_max=4.0, dtype=args.dtype,
                      avg_num_neighbors=20.0, **hp)
    model = build_model(cfg).to(args.device)
    for p in model.parameters():
        p.requires_grad_(False)
    dtype = model.shift.dtype
    wrapper = EnergyAndGradients(model)
    print(f"# device: {args.device} ({torch.get_num_threads()} threads); torch {torch.__version__}; "
          f"Allegro {hp}, {args.dtype}")
    t0 = time.perf_counter()
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        compiled = torch.compile(wrapper, dynamic=True)
        compiled(*_inputs(example_graph(model, 12, seed=1, device=args.device), dtype))
    print(f"# torch.compile: {time.perf_counter() - t0:.1f} s")
    tmp = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    compile_model(model, tmp / "m.pt2", device=args.device, check_sizes=(7,))
    aoti = load_compiled(tmp / "m.pt2", device=args.device)
    print(f"# AOTInductor export+compile+self-check: {time.perf_counter() - t0:.1f} s")
    aoti_k = None
    if args.device == "cuda":
        with warnings.catch_warnings():
            compile_model(model, tmp / "mk.pt2", device="cuda", kernel=True, check_sizes=(7,))
        aoti_k = load_compiled(tmp / "mk.pt2", device="cuda")
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    header = f"{'atoms':>6} {'edges':>8} {'path':<22} {'ms/step':>10} {'atom-steps/s':>13} {'vs eager':>9}"
    print(header)
    print("-" * len(header))
    for n in sizes:
        b = example_graph(model, n, seed=2, device=args.device)
        x = _inputs(b, dtype)
        paths = {
            "eager": lambda b=b: model(b),
            "torch.compile": lambda x=x: compiled(*x),
            "AOTInductor": lambda b=b: aoti(b),
        }
        if aoti_k is not None:
            paths["AOTInductor+kernel"] = lambda b=b: aoti_k(b)
        base = None
        for name, fn in paths.items():
            def run(fn=fn):
                with torch._dynamo.config.patch(trace_autograd_ops=True):
                    fn()
                sync()
            t = _time(run, args.repeats)
            base = base or t
            print(f"{n:>6} {b['edge_index'].shape[1]:>8} {name:<22} {1e3 * t:>10.2f} {n / t:>13.3g} "
                  f"{base / t:>8.2f}x", flush=True)
        if aoti_k is None:
            print(f"{n:>6} {'':>8} {'AOTInductor+kernel':<22} {'n/a (needs CUDA)':>34}")
    print("# peer nequip-allegro: not run (see README: building the peer at identical "
          "hyperparameters is left open)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
