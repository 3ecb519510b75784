"""Accuracy after the same optimisation: our NequIP-/Allegro-style models vs nequip 0.19 /
nequip-allegro at matched capacity (tests/support/peer_models.py), same data, batches,
optimiser and loss.

    python tests/benchmarks/bench_mlip_accuracy.py           # 300 steps
    python tests/benchmarks/bench_mlip_accuracy.py --small   # 60 steps (smoke run)

nequip trains through Lightning + hydra configs; to compare the models and not two
training stacks, both models run in ONE minimal loop here (stated in the table header):
Adam (lr 5e-3), loss = MSE(energy per atom) + MSE(force components) (weights 1, 1 in
eV and eV/Å), the same shuffled batches of 4 structures, float32.  Per-species energy
shift (least squares per-atom energy) and scale (force RMS) and the average neighbour
count come from the training data, and are given to both.  Data: 32-atom fcc Cu cells,
EMT-labelled, rattled (0.03-0.12 Å), strained (±2 %), different seeds for training and
validation.  Reported: validation force MAE (eV/Å) and energy MAE (meV/atom); the
criterion is ours <= 1.2 x the peer's force MAE.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import peer_models as pm  # noqa: E402

HYPER = pm.ACCURACY
LR, BATCH = 5e-3, 4


def make_data(n: int, seed: int) -> list:
    """EMT-labelled Cu frames (32 atoms): rattled, strained."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        eps = rng.normal(scale=0.02, size=(3, 3))
        a.set_cell(a.cell.array @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
        a.positions += rng.normal(scale=rng.uniform(0.03, 0.12), size=a.positions.shape)
        a.calc = EMT()
        a.get_potential_energy()
        out.append(a)
    return out


def _graphs(atoms_list, r_max):
    from atomtwin.engines.mlip.data import to_graph

    return [to_graph(a, ["Cu"], r_max) for a in atoms_list]


def _batch(graphs, idx):

    from atomtwin.engines.mlip.data import collate

    b = collate([graphs[i] for i in idx])
    return {k: (v.float() if v.is_floating_point() else v) for k, v in b.items()}


def build(impl: str, arch: str, shift: float, scale: float, avg: float, match: str = "params"):
    """A callable ``f(batch) -> (energy (B,), forces (N,3))`` and its parameters, from the
    shared capacity-matched builder (tests/support/peer_models.py)."""
    ours, peer, _ = pm.matched_pair(arch, HYPER, match=match, avg=avg, shift=shift, scale=scale)
    if impl == "ours":
        return pm.ours_energy_forces(ours.train()), ours
    return pm.peer_energy_forces(peer.train()), peer


def train_and_validate(impl: str, arch: str, train_atoms, val_atoms, steps: int, seed: int = 0) -> dict:
    import torch
    from atomtwin.engines.mlip.data import FrameDataset, statistics

    gtr, gva = _graphs(train_atoms, HYPER.r_max), _graphs(val_atoms, HYPER.r_max)
    st = statistics(FrameDataset([{"numbers": a.numbers, "pos": a.positions, "cell": a.cell.array,
                                   "pbc": a.pbc, "energy": a.get_potential_energy(),
                                   "forces": a.get_forces(), "source": "emt", "index": k}
                                  for k, a in enumerate(train_atoms)], ["Cu"], HYPER.r_max))
    run, model = build(impl, arch, float(st["shift"][0]), float(st["force_rms"]), float(st["avg_num_neighbors"]))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    rng = np.random.default_rng(seed)  # the same batches for every model
    order: list[int] = []
    t0 = time.perf_counter()
    for _ in range(steps):
        if len(order) < BATCH:
            order += list(rng.permutation(len(gtr)))
        idx, order = order[:BATCH], order[BATCH:]
        b = _batch(gtr, idx)
        e, f = run(b)
        n = b["num_atoms"].to(e.dtype)
        loss = (((e - b["ref_energy"].to(e.dtype)) / n) ** 2).mean() + ((f - b["ref_forces"].to(f.dtype)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    wall = time.perf_counter() - t0
    fe, ee, nf, ne = 0.0, 0.0, 0, 0
    for s in range(0, len(gva), BATCH):
        b = _batch(gva, range(s, min(s + BATCH, len(gva))))
        e, f = run(b)
        fe += float((f.detach() - b["ref_forces"].float()).abs().sum())
        nf += f.numel()
        ee += float(((e.detach() - b["ref_energy"].float()) / b["num_atoms"].float()).abs().sum())
        ne += e.numel()
    return {"force_mae": fe / nf, "energy_mae_mev": 1e3 * ee / ne, "train_s": wall}


def compare(steps: int, n_train: int, n_val: int, archs=("nequip", "allegro")) -> list[dict]:
    tr, va = make_data(n_train, 1), make_data(n_val, 2)
    rows = []
    for arch in archs:
        ours = train_and_validate("ours", arch, tr, va, steps)
        peer = train_and_validate("peer", arch, tr, va, steps)
        rows.append({"arch": arch, "ours": ours, "peer": peer,
                     "ratio": ours["force_mae"] / peer["force_mae"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="60 steps, 16 training frames")
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    steps = args.steps or (60 if args.small else 300)
    n_train, n_val = (16, 8) if args.small else (40, 20)
    print(f"# same minimal loop for both (Adam lr {LR}, batch {BATCH}, loss MSE(E/atom)+MSE(F), float32), "
          f"{steps} steps, {n_train} train / {n_val} validation EMT Cu frames (32 atoms)")
    print(f"# hyperparameters: {HYPER} (capacity-matched pairs, tests/support/peer_models.py)")
    print(f"{'model':8} {'ours F-MAE':>11} {'peer F-MAE':>11} {'ratio':>6} {'ours E meV/at':>14} "
          f"{'peer E meV/at':>14} {'ours s':>7} {'peer s':>7}")
    for r in compare(steps, n_train, n_val):
        o, p = r["ours"], r["peer"]
        print(f"{r['arch']:8} {o['force_mae']:11.4f} {p['force_mae']:11.4f} {r['ratio']:6.2f} "
              f"{o['energy_mae_mev']:14.2f} {p['energy_mae_mev']:14.2f} {o['train_s']:7.1f} {p['train_s']:7.1f}",
              flush=True)


if __name__ == "__main__":
    main()
