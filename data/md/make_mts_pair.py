"""Make the co-trained small/large potential pair for multiple-time-step MD tests.

Reference: ASE's EMT copper (Jacobsen, Stoltze & Nørskov, Surf. Sci. 366, 394 (1996)).
Training frames (``cu_frames``): 32-atom cells of hot liquid copper (EMT Langevin MD at
1800-2600 K, liquid density, a frame every 20 fs) plus rattled and strained fcc crystals.

1. ``small``: Allegro-style, 1 layer, lmax 1, 4 channels, r_max 3.3 Å (inside the first
   coordination shell's outer edge) trained on the full EMT labels: cheap, short ranged,
   it carries the stiff, fast-varying repulsion.
2. ``large``: NequIP-style, 2 layers, lmax 1, 8 channels, r_max 5.0 Å trained with
   ``residual_of: small`` on EMT minus small: the smooth remainder, evaluated rarely.

3. ``large_bench`` (``--bench``): NequIP-style, 3 layers, lmax 2, 16 channels, r_max 5 Å,
   the residual of the same small model; about 10x the small model's cost, for
   ``tests/benchmarks/bench_mts.py`` (the tests use the cheap ``large``).

The total potential is small + large.  Run (about 7 minutes on one core; ``--bench``
about 2 more)::

    OMP_NUM_THREADS=1 python data/md/make_mts_pair.py [--out data/md/cu_pair] [--bench]

It writes ``train.extxyz`` (not committed: it is re-made identically from the seed),
``small.ckpt`` and ``large.ckpt`` (training runs under ``work/``, deleted afterwards unless
``--keep``) and prints the validation errors.  With ``--bench`` and an existing
``small.ckpt``, only ``large_bench.ckpt`` is trained; ``--small-only`` trains only
``small.ckpt`` (about 2 minutes: the cheap reproduction check).

The ``.ckpt`` files are model files (``atomtwin.engines.mlip.model.export_model`` of the
best epoch's training checkpoint: EMA weights and metadata, no optimizer state).  Training
is epoch-bounded, seeded and single-threaded, so on the same versions a rerun gives the
same bytes: compare with ``sha256sum`` against ``data/SHA256SUMS``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

#: liquid-copper lattice constant used for the MD frames (fcc 3.61 Å expanded 4 %)
A_LIQUID = 3.75

SMALL = dict(architecture="allegro", r_max=3.3, num_layers=1, lmax=1, mul=4, num_basis=6,
             latent=16, mlp_hidden=16, dtype="float32")
LARGE = dict(architecture="nequip", r_max=5.0, num_layers=2, lmax=1, mul=8, num_basis=8,
             radial_hidden=16, radial_layers=1, dtype="float32")
#: the benchmark's large model (``large_bench.ckpt``, residual of the same small model):
#: 3 layers, lmax 2, 16 channels, about 10x the small model's cost per evaluation
LARGE_BENCH = dict(architecture="nequip", r_max=5.0, num_layers=3, lmax=2, mul=16, num_basis=8,
                   radial_hidden=32, radial_layers=1, dtype="float32")


def cu_frames(n_md: int = 160, n_crystal: int = 40, seed: int = 0):
    """EMT-labelled ``ase.Atoms`` frames (energy, forces, stress) of 32-atom copper cells.

    Parameters
    ----------
    n_md : frames from hot liquid MD (4 runs at 1800, 2100, 2400, 2600 K).
    n_crystal : rattled (0.05-0.2 Å) and strained (±3 %) fcc crystals.
    seed : random seed.
    """
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.units import fs

    rng = np.random.default_rng(seed)
    out = []

    def label(a):
        a.calc = EMT()
        e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress()
        b = a.copy()
        b.calc = SinglePointCalculator(b, energy=e, forces=f, stress=s)
        return b

    temps = (1800.0, 2100.0, 2400.0, 2600.0)
    per = n_md // len(temps)
    for t in temps:
        a = bulk("Cu", "fcc", a=A_LIQUID, cubic=True).repeat((2, 2, 2))
        a.rattle(0.1, seed=int(rng.integers(1 << 30)))
        a.calc = EMT()
        MaxwellBoltzmannDistribution(a, temperature_K=2 * t, rng=rng)
        md = Langevin(a, 2 * fs, temperature_K=t, friction=0.02, fixcm=False, rng=rng)
        md.run(500)  # 1 ps: melts and equilibrates the 32-atom cell
        for _ in range(per):
            md.run(10)
            out.append(label(a))
    for _ in range(n_crystal):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))
        a.set_cell(a.cell[:] @ (0.5 * (strain + strain.T)), scale_atoms=True)
        a.rattle(rng.uniform(0.05, 0.2), seed=int(rng.integers(1 << 30)))
        out.append(label(a))
    return out


def _train(work: Path, data: Path, model: dict, epochs: int, residual_of: Path | None = None):
    from atomtwin.engines.mlip.train import train

    cfg = dict(train_files=[str(data)], val_fraction=0.1, output_dir=str(work), batch_size=4,
               max_epochs=epochs, lr=0.01, schedule="cosine", ema_decay=0.99, energy_weight=1.0,
               force_weight=1.0, stress_weight=0.0, progress=False, seed=0, model=model,
               residual_of=str(residual_of) if residual_of else None)
    return train(cfg, overwrite=True)


#: provenance stored in every model file this script writes (no paths, no times)
PROVENANCE = {"made_by": "data/md/make_mts_pair.py",
              "reference": "ASE EMT copper (Jacobsen, Stoltze & Norskov, Surf. Sci. 366, 394 (1996))",
              "data": "cu_frames(n_md=160, n_crystal=40, seed=0)"}


def _export(run: dict, target: Path, name: str) -> None:
    from atomtwin.engines.mlip.model import export_model

    export_model(run["best_checkpoint"], target, PROVENANCE | {"name": name})


def make_pair(out: Path, epochs_small: int = 60, epochs_large: int = 60, keep: bool = False,
              small_only: bool = False) -> dict:
    """Generate the data and train both models into ``out`` (small.ckpt, large.ckpt)."""
    import torch

    torch.set_num_threads(1)
    data = _data(out)
    work = out / "work"
    rs = _train(work / "small", data, SMALL, epochs_small)
    _export(rs, out / "small.ckpt", "small")
    res = {"small": rs}
    if not small_only:
        rl = _train(work / "large", data, LARGE, epochs_large, residual_of=out / "small.ckpt")
        _export(rl, out / "large.ckpt", "large")
        res["large"] = rl
    if not keep:
        shutil.rmtree(work)
    return res


def _data(out: Path) -> Path:
    from ase.io import write

    out.mkdir(parents=True, exist_ok=True)
    data = out / "train.extxyz"
    if not data.exists():
        write(data, cu_frames())
    return data


def liquid_snapshot(out: Path, temperature: float = 2000.0, ps: float = 1.0, seed: int = 0) -> Path:
    """``cu_liquid_32.extxyz``: 32 Cu atoms (liquid density, ``A_LIQUID``) after ``ps`` of
    Langevin MD (2 fs, friction 5/ps) with small + large at ``temperature``; the
    velocities are stored (ASE units), so tests start NVE from an equilibrated liquid."""
    from ase.build import bulk
    from ase.io import write
    from atomtwin.engines.md import Langevin, SumProvider, make_state
    from atomtwin.engines.md.mlip_provider import MLIPForceProvider
    from atomtwin.toolkit import units as U

    a = bulk("Cu", "fcc", a=A_LIQUID, cubic=True).repeat((2, 2, 2))
    a.rattle(0.1, seed=seed)
    s = make_state(a.positions, a.get_chemical_symbols(), cell=a.cell[:], temperature_K=temperature, seed=seed)
    both = SumProvider(MLIPForceProvider(out / "small.ckpt"), MLIPForceProvider(out / "large.ckpt"))
    integ = Langevin(0.002, temperature, friction=5.0)
    s = integ.init(s, both)
    for _ in range(int(round(ps / 0.002))):
        s = integ.step(s, both)
    a.positions = s.positions.numpy()
    a.set_velocities(s.velocities.numpy() * U.ASE_TIME_TO_PS)
    path = out / "cu_liquid_32.extxyz"
    write(path, a)
    return path


def make_bench_large(out: Path, epochs: int = 10, keep: bool = False) -> dict:
    """Train ``large_bench.ckpt`` on the residual of ``out/small.ckpt``."""
    import torch

    torch.set_num_threads(1)
    data = _data(out)
    r = _train(out / "work" / "large_bench", data, LARGE_BENCH, epochs, residual_of=out / "small.ckpt")
    _export(r, out / "large_bench.ckpt", "large_bench")
    if not keep:
        shutil.rmtree(out / "work" / "large_bench")
    return {"large_bench": r}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).parent / "cu_pair"))
    ap.add_argument("--epochs-small", type=int, default=60)
    ap.add_argument("--epochs-large", type=int, default=60)
    ap.add_argument("--keep", action="store_true", help="keep the training run folders")
    ap.add_argument("--bench", action="store_true", help="also train large_bench.ckpt")
    ap.add_argument("--small-only", action="store_true", help="train small.ckpt only")
    args = ap.parse_args()
    out = Path(args.out)
    res = {}
    if args.small_only:
        res = make_pair(out, args.epochs_small, keep=args.keep, small_only=True)
    elif not (args.bench and (out / "small.ckpt").exists()):
        res = make_pair(out, args.epochs_small, args.epochs_large, args.keep)
        liquid_snapshot(out)
    if args.bench:
        res |= make_bench_large(out, keep=args.keep)
    for name, r in res.items():
        print(f"{name}: {r['epochs']} epochs, val forces MAE {r.get('val_forces_mae', float('nan')):.4f} eV/Å, "
              f"energy MAE {r.get('val_energy_mae', float('nan')):.5f} eV/atom")


if __name__ == "__main__":
    main()
