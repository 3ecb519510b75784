"""Reference calls needed to reach a validation force error: active learning vs random
selection vs a fixed schedule, on EMT copper heated through melting.

    python tests/benchmarks/bench_active.py           # the full size
    python tests/benchmarks/bench_active.py --small   # a smoke run (minutes on one core)

System: two walkers, a 2x2x2 fcc cell with a vacancy (31 atoms) and a 2x2x6 (001) slab
(24 atoms, 6 Å vacuum), Langevin ramps 300 -> 2500 K (bulk; through melting) and
300 -> 1500 K (slab).  The "same MD" for the passive samplers is EMT-driven MD of these
two ramps (ASE Langevin, 4 fs): the pool.  Validation: frames of two further EMT ramps
(other seeds) from every phase the walkers visit (crystal, defects, surface, liquid).

* active: ``atomtwin.engines.active.learn`` with the single-model last-layer GP
  uncertainty (threshold on the calibrated force sigma of the most uncertain atom);
* random: N frames drawn uniformly from the pool;
* fixed schedule: N frames evenly spaced in time along the pool (every k-th step).

To compare datasets and not training histories, every dataset (the active one's first N
calls, the random and the scheduled N frames, each with the same 3 seed frames) is fitted
from fresh weights with the same budget (epochs, lr, batch) and scored on the validation
set.  Reported: validation force RMSE (eV/Å) against N, and the N each method needs to
reach the target (the active dataset's final error x 1.1).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

MODEL = {
    "r_max": 4.0,
    "num_layers": 2,
    "lmax": 1,
    "mul": 8,
    "num_basis": 6,
    "radial_hidden": 16,
    "radial_layers": 1,
}


def systems():
    from ase.build import bulk, fcc100

    b = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    del b[5]
    s = fcc100("Cu", (2, 2, 6), a=3.61, vacuum=6.0, periodic=True)
    s.info.pop("adsorbate_info", None)  # not storable in extxyz
    return [(b, 300.0, 2500.0), (s, 300.0, 1500.0)]


def emt_ramp(atoms, t0, t1, steps, every, seed):
    """Frames (atomtwin frame dicts, EMT-labelled) every ``every`` steps of a Langevin ramp."""
    from ase import units
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from atomtwin.engines.mlip.data import frame_from_atoms

    at = atoms.copy()
    at.calc = EMT()
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MaxwellBoltzmannDistribution(at, temperature_K=t0, rng=np.random.default_rng(seed))
        dyn = Langevin(
            at, 4 * units.fs, temperature_K=t0, friction=0.02, rng=np.random.default_rng(seed)
        )
        for k in range(0, steps, every):
            dyn.set_temperature(temperature_K=t0 + (t1 - t0) * k / steps)
            dyn.run(every)
            c = at.copy()
            c.calc = EMT()
            c.get_forces()
            out.append(frame_from_atoms(c))
    return out


def fit_score(frames, val_graphs, epochs, seed=0):
    from atomtwin.engines.active.fit import fit, force_errors, new_model
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.data import to_graph

    m = new_model(ModelConfig(**MODEL), frames, seed=seed)
    g = [to_graph(f, m.species, m.r_max) for f in frames]
    fit(m, g, epochs=epochs, lr=1e-2, batch_size=4, seed=seed)
    vg = [to_graph(f, m.species, m.r_max) for f in val_graphs]
    return force_errors(m, vg)["forces_rmse"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--out", default=None, help="folder for the figure and table")
    ap.add_argument("--threshold", type=float, default=0.4, help="trigger, eV/Å (default 0.4)")
    ap.add_argument("--max-calls", type=int, default=None, help="default 24 (--small) / 60")
    args = ap.parse_args(argv)
    import ase.io
    import torch

    torch.set_num_threads(1)
    steps = 1500 if args.small else 4000
    max_calls = args.max_calls or (24 if args.small else 60)
    grid = [4, 8, 16, 24] if args.small else [4, 8, 16, 24, 32, 48, 60]
    epochs = 40 if args.small else 80
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_active_"))
    out.mkdir(parents=True, exist_ok=True)

    sysl = systems()
    pool = [
        fr for k, (a, t0, t1) in enumerate(sysl) for fr in emt_ramp(a, t0, t1, steps, 10, 10 + k)
    ]
    val = [
        fr for k, (a, t0, t1) in enumerate(sysl) for fr in emt_ramp(a, t0, t1, steps, 50, 20 + k)
    ]
    seeds = [pool[0], pool[2], pool[len(pool) // 2]]  # crystal-like starts of both systems
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    def to_atoms(fr):
        a = Atoms(numbers=fr["numbers"], positions=fr["pos"], cell=fr["cell"], pbc=fr["pbc"])
        a.calc = SinglePointCalculator(a, energy=fr["energy"], forces=fr["forces"])
        return a

    ase.io.write(out / "seed.extxyz", [to_atoms(f) for f in seeds])
    ase.io.write(out / "val.extxyz", [to_atoms(f) for f in val])
    walkers = []
    for k, (a, t0, t1) in enumerate(sysl):
        ase.io.write(out / f"start{k}.xyz", a)
        walkers.append(
            {
                "structure": str(out / f"start{k}.xyz"),
                "temperature": t0,
                "temperature_end": t1,
                "steps": steps,
                "timestep": 0.004,
                "friction": 5.0,
            }
        )
    from atomtwin.engines.active import learn

    cfg = {
        "output_dir": str(out / "run"),
        "seed_frames": str(out / "seed.extxyz"),
        "validation_files": str(out / "val.extxyz"),
        "model": MODEL,
        "progress": False,
        "uncertainty": {"kind": "gp", "check_every": 20, "threshold": args.threshold},
        "fit": {"epochs": epochs, "update_epochs": 15, "full_retrain_every": 8, "lr": 0.01},
        "walkers": walkers,
        "max_calls": max_calls,
        "seed": 0,
    }
    t0 = time.process_time()
    res = learn(cfg, overwrite=True)
    t_active = time.process_time() - t0
    data = ase.io.read(res.dataset, ":")
    from atomtwin.engines.mlip.data import frame_from_atoms

    active = [frame_from_atoms(a) for a in data]
    n_active = len(active) - len(seeds)
    rng = np.random.default_rng(0)
    rows = []
    for n in [x for x in grid if x <= n_active] or [n_active]:
        r_act = fit_score(active[: len(seeds) + n], val, epochs)
        rnd = [
            fit_score(
                seeds + [pool[i] for i in rng.choice(len(pool), n, replace=False)],
                val,
                epochs,
                seed=s,
            )
            for s in range(2)
        ]
        sched = [pool[int(i)] for i in np.linspace(0, len(pool) - 1, n)]
        r_fix = fit_score(seeds + sched, val, epochs)
        rows.append((n, r_act, float(np.mean(rnd)), r_fix))
        print(
            f"N={n:3d}  active {r_act:.4f}  random {np.mean(rnd):.4f} (+-{np.std(rnd):.4f})  "
            f"fixed {r_fix:.4f}  eV/Å",
            flush=True,
        )
    target = rows[-1][1] * 1.1

    def need(col):
        hit = [r[0] for r in rows if r[col] <= target]
        return hit[0] if hit else None

    print(
        f"\nactive run: {res.n_calls} calls, {res.rounds} rounds, CPU {t_active:.1f} s; "
        f"pool {len(pool)} frames, validation {len(val)} frames"
    )
    print(f"target = 1.1 x active final = {target:.4f} eV/Å")
    print("| method | calls to reach target |\n|---|---|")
    for name, col in (("active (GP)", 1), ("random", 2), ("fixed schedule", 3)):
        n = need(col)
        print(f"| {name} | {n if n is not None else f'> {rows[-1][0]}'} |")
    _figure(rows, target, out / "bench_active.png")
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"
    print(f"\nwall {wall:.0f} s, CPU {cpu:.0f} s, max RSS {ru:.0f} MB, load {load}; files in {out}")
    return 0


def _figure(rows, target, path):
    from atomtwin.toolkit.plot import PALETTE, axis_label, new_figure, save

    fig, ax = new_figure("single", aspect=0.75)
    n = [r[0] for r in rows]
    for col, name, c, m in (
        (1, "active (GP)", PALETTE[0], "o"),
        (2, "random", PALETTE[1], "s"),
        (3, "fixed schedule", PALETTE[2], "^"),
    ):
        ax.plot(n, [r[col] for r in rows], marker=m, ms=4, color=c, label=name)
    ax.axhline(target, color="0.5", lw=0.8, ls="--", label="target")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("reference calls")
    ax.set_ylabel(axis_label("validation force RMSE", "eV/Å"))
    ax.set_yscale("log")
    ax.legend(fontsize="small", frameon=False)
    save(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
