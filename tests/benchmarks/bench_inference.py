"""MD-step throughput of the potential: eager vs torch.compile vs AOTInductor (vs +kernel on GPU).

One MD step's model work = energy + forces + stress for a fixed neighbour list (the list
is built once, outside the timing, as an MD engine with a skin does).  Random periodic
structures at ~1 atom / 12 Å^3 (about 20 neighbours within 4 Å).  Prints a table with
time per step, atom-steps per second and the ratio to eager.

    python tests/benchmarks/bench_inference.py            # 250, 1000, 4000 atoms
    python tests/benchmarks/bench_inference.py --small    # one small size, tiny model

The peer is nequip-allegro's model from the shared capacity-matched builder
(tests/support/peer_models.py), eager here; its AOTInductor route is timed beside ours in
bench_mlip.py (``--modes aoti``) and, on a GPU, tests/gpu/device_bench.py.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import peer_models as pm  # noqa: E402
import torch  # noqa: E402
from atomtwin.engines.mlip.compile import EnergyAndGradients, _inputs, compile_model, example_graph  # noqa: E402
from atomtwin.engines.mlip.compiled import load_compiled  # noqa: E402
from atomtwin.engines.mlip.model import build_model  # noqa: E402


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, allocator)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _peer_input(b: dict, device: str):
    import ase
    from nequip.data import compute_neighborlist_, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper

    at = ase.Atoms(numbers=[14 if t == 0 else 8 for t in b["atom_types"].tolist()],
                   positions=b["pos"].cpu().numpy(), cell=b["cell"][0].cpu().numpy(), pbc=True)
    d = compute_neighborlist_(from_ase(at), r_max=4.0)
    d = ChemicalSpeciesToAtomTypeMapper(model_type_names=["Si", "O"],
                                        chemical_species_to_atom_type_map={"Si": "Si", "O": "O"})(d)
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in d.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="one small size, tiny model (smoke run)")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--train", action="store_true",
                    help="also time a compiled training step (forces + double backward) vs eager")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    if args.small:
        sizes = args.sizes or [64]
        hp = dict(num_layers=2, lmax=1, mul=4, latent=16, mlp_hidden=16, num_basis=4)
    else:
        sizes = args.sizes or [250, 1000, 4000]
        hp = dict(num_layers=2, lmax=2, mul=16, latent=64, mlp_hidden=64, num_basis=8)
    h = pm.Hyper(r_max=4.0, lmax=hp["lmax"], allegro_layers=hp["num_layers"], allegro_mul=hp["mul"],
                 latent=hp["latent"], mlp_hidden=hp["mlp_hidden"], num_basis=hp["num_basis"])
    peer = None
    if pm.peers_available():  # the shared capacity-matched pair (tests/support/peer_models.py)
        model, peer, info = pm.matched_pair("allegro", h, species=("Si", "O"), avg=20.0, dtype=args.dtype)
        peer = peer.to(args.device)
        hp = {**hp, "mlp_hidden": info["knob"]["ours mlp_hidden"]}
    else:
        model = pm.build_ours("allegro", h, species=("Si", "O"), avg=20.0, dtype=args.dtype)
    model = model.to(args.device)
    cfg = model.config
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
    if peer is not None:
        print(f"# parameters: ours {sum(p.numel() for p in model.parameters())}, nequip-allegro "
              f"{sum(p.numel() for p in peer.parameters())}")
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
        if peer is not None:
            pd = _peer_input(b, args.device)
            paths["nequip-allegro eager"] = lambda pd=pd: peer(dict(pd))
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
    if args.train:
        from atomtwin.engines.mlip.train_compile import measure_speedup

        tm = build_model(cfg).to(args.device)
        batches = []
        for k, n in enumerate((sizes[0], sizes[0] + 4)):
            b = example_graph(tm, n, seed=10 + k, n_struct=2, device=args.device)
            b["ref_energy"] = torch.zeros(2, dtype=torch.float64, device=args.device)
            b["ref_forces"] = torch.zeros(b["pos"].shape, dtype=torch.float64, device=args.device)
            batches.append(b)
        r = measure_speedup(tm, batches, repeats=args.repeats)
        print(f"# training step, 2 x ~{sizes[0]} atoms: eager {1e3 * r['eager_s']:.1f} ms, compiled "
              f"{1e3 * r['compiled_s']:.1f} ms, speedup {r['speedup']:.2f}x (compile {r['compile_s']:.0f} s, "
              f"graph breaks {r['graph_breaks']:.0f}, max relative gradient difference {r['grad_rel_diff']:.1e})")
    print("# peer: nequip-allegro eager only; its own compile path (nequip-compile, AOTI) "
          "is not run here")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
