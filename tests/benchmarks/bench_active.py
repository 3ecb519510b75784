"""Reference calls needed to reach a validation force error: active learning vs random
selection vs a fixed schedule, on EMT copper heated through melting.

    python tests/benchmarks/bench_active.py                 # 3 seeds, one process each
    python tests/benchmarks/bench_active.py --small         # a smoke run (minutes)
    python tests/benchmarks/bench_active.py --scenario campaign --grid 4 8 16 32 48 64
    python tests/benchmarks/bench_active.py --scenario production --grid 4 8 16 32 48 64
    python tests/benchmarks/bench_active.py --merge DIR1 DIR2 --out DIR   # seeds together

System (``--scenario ramp``, the default): two walkers, a 2x2x2 fcc cell with a vacancy (31
atoms) ramped 300 -> 2500 K (through melting) and a 2x2x6 (001) slab (24 atoms, 6 Å vacuum)
ramped 300 -> 1500 K, Langevin, 4 fs, ``--steps`` steps each.  ``--scenario campaign``: four
walkers as in a production campaign -- the perfect 32-atom crystal 300 -> 900 K, the vacancy
cell 300 -> 1200 K, the slab 300 -> 1500 K and the vacancy cell 300 -> 2500 K (the only one
that melts) -- so most MD time is spent where the model has already learnt.
``--scenario production``: the same four walkers, the three that stay solid running ``HOLD``
(4) times as long (ramps 4x slower), as a production campaign spends most of its MD in
states learnt early; the liquid is ~2.5 % of the pool.  Three seed frames (EMT, 300 K) start
every method.

Validation, fixed before any result (seeds 900-903, true EMT MD, 40 frames per phase):
crystal (perfect 32-atom cell, 300 -> 1200 K), vacancy (31 atoms, 300 -> 1200 K), liquid
(31 atoms melted at 3000 K, then 2500 -> 1800 K) and surface (the slab, 300 -> 1500 K).
The score is the *phase-balanced* force RMSE: the mean over the four phases of each
phase's force-component RMSE (eV/Å), so that no phase counts more because it has more
frames or atoms; the pooled RMSE over all 160 frames and the per-phase values are printed
too.

Methods (every dataset refitted from fresh weights with the same budget and scored alike):

* active: ``atomtwin.engines.active.learn``, last-layer GP uncertainty (features of every
  layer), trigger ``threshold_train`` times the model's own median uncertainty on its
  training frames (each as if left out of the fit), at most one call per walker every
  ``min_gap`` steps, atoms closer than ``MIN_DISTANCE`` a blow-up; run until both walkers
  finished their ramps.  Two trigger settings give two points (calls, error).
* random / fixed schedule from **the same MD** (the fair baseline): the frames the active
  walkers visited (every check, ``check_every`` steps), N drawn uniformly / N evenly
  spaced in time (every k-th check of each walker); only the N drawn frames are labelled.
* random from a **true-EMT MD of the same schedule** (other seed; an oracle pool: making it
  costs one reference call per MD step, which is not counted here).

Why learning curves of *whole runs*: the walkers follow a temperature ramp, so the first N
calls of an active run come from the start of the ramp only, while N frames drawn from a
finished trajectory cover all of it; comparing an active run's first N calls with random
draws from the finished pool measures the ramp's order, not the selection.  Each active
point is therefore a complete run (its total calls, its final dataset).
"""

from __future__ import annotations

import argparse
import json
import os
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
PHASES = ("crystal", "vacancy", "liquid", "surface")
# (threshold_train, min_gap steps).  The walkers' frames of "active" are the same-MD pool.
SETTINGS = {"active": (2.0, 50), "active-strict": (3.0, 100)}
# Å: a walker check with two atoms closer is a blow-up (0.7 x the 2.55 Å nearest-neighbour
# distance; EMT liquid frames at 2500 K come no closer than ~2.0 Å).  Without it, a model
# that has not learnt the repulsion lets atoms collapse (0.7-1.4 Å) while its own forces stay
# moderate, and the reference labels collapsed frames with forces of 50-500 eV/Å.
MIN_DISTANCE = 1.8


def _cu():
    from ase.build import bulk

    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)


def _vacancy():
    a = _cu()
    del a[5]
    return a


def _slab():
    from ase.build import fcc100

    s = fcc100("Cu", (2, 2, 6), a=3.61, vacuum=6.0, periodic=True)
    s.info.pop("adsorbate_info", None)  # not storable in extxyz
    return s


# Walker sets (structure, start K, end K); the first three frames of walkers 0-2 hold the
# seed frames.  "ramp": the two ramps above.  "campaign": a production-like set of four --
# the perfect crystal 300 -> 900 K, the vacancy cell 300 -> 1200 K, the slab 300 -> 1500 K and
# the vacancy cell heated through melting 300 -> 2500 K -- where, as in a real campaign, most
# MD time is spent in configurations that are already learnt and the liquid is ~10 % of it.
SCENARIOS = {
    "ramp": lambda: [(_vacancy(), 300.0, 2500.0), (_slab(), 300.0, 1500.0)],
    "campaign": lambda: [
        (_cu(), 300.0, 900.0),
        (_vacancy(), 300.0, 1200.0),
        (_slab(), 300.0, 1500.0),
        (_vacancy(), 300.0, 2500.0),
    ],
}
# "production": the campaign's walkers, but the three that stay solid run ``HOLD`` times as
# long (their ramps 4x slower) while the melting walker keeps its length: long MD in states
# the model has learnt early, as in a production run, and the liquid ~2.5 % of the pool
SCENARIOS["production"] = SCENARIOS["campaign"]
HOLD = 4
#: MD length of each walker in units of ``--steps``
LENGTHS = {"ramp": [1, 1], "campaign": [1, 1, 1, 1], "production": [HOLD, HOLD, HOLD, 1]}
SEEDS = {
    "ramp": [(0, 0), (0, 2), (1, 0)],
    "campaign": [(0, 0), (1, 0), (2, 0)],
    "production": [(0, 0), (1, 0), (2, 0)],
}


def walkers(scenario: str = "ramp"):
    return SCENARIOS[scenario]()


def emt_md(atoms, temps, every, seed, equil=0):
    """EMT-labelled frames (atomtwin frame dicts) of Langevin MD (4 fs) following the
    temperatures ``temps`` (K, one per block of ``every`` steps), after ``equil`` steps at
    ``temps[0]``."""
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
        rng = np.random.default_rng(seed)
        MaxwellBoltzmannDistribution(at, temperature_K=temps[0], rng=rng)
        dyn = Langevin(at, 4 * units.fs, temperature_K=temps[0], friction=0.02, rng=rng)
        if equil:
            dyn.run(equil)
        for t in temps:
            dyn.set_temperature(temperature_K=t)
            dyn.run(every)
            c = at.copy()
            c.calc = EMT()
            c.get_forces()
            out.append(frame_from_atoms(c))
    return out


def validation(n=40):
    """The phase-labelled validation set (fixed seeds, chosen before any result)."""
    ramp = list(np.linspace(300, 1200, n))
    return {
        "crystal": emt_md(_cu(), ramp, 25, 900, equil=100),
        "vacancy": emt_md(_vacancy(), ramp, 25, 901, equil=100),
        "liquid": emt_md(
            _vacancy(), [3000.0] + list(np.linspace(2500, 1800, n)), 25, 902, equil=500
        )[1:],
        "surface": emt_md(_slab(), list(np.linspace(300, 1500, n)), 25, 903, equil=100),
    }


def label(frames):
    """EMT labels for unlabelled walker frames."""
    from ase import Atoms
    from ase.calculators.emt import EMT
    from atomtwin.engines.mlip.data import frame_from_atoms

    out = []
    for fr in frames:
        a = Atoms(numbers=fr["numbers"], positions=fr["pos"], cell=fr["cell"], pbc=fr["pbc"])
        a.calc = EMT()
        a.get_forces()
        out.append(frame_from_atoms(a))
    return out


def score(frames, val, epochs, seed=0, model=None):
    """Fresh model fitted on ``frames``; force RMSE (eV/Å) per phase, balanced, pooled."""
    from atomtwin.engines.active.fit import fit, new_model, predict
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.data import to_graph

    m = new_model(ModelConfig(**(model or MODEL)), frames, seed=seed)
    fit(
        m,
        [to_graph(f, m.species, m.r_max) for f in frames],
        epochs=epochs,
        lr=1e-2,
        batch_size=4,
        seed=seed,
    )
    res, sq, n = {}, 0.0, 0
    for ph in PHASES:
        g = [to_graph(f, m.species, m.r_max) for f in val[ph]]
        d = np.concatenate(
            [p["forces"] - x["forces"].numpy() for p, x in zip(predict(m, g), g, strict=True)]
        )
        res[ph] = float(np.sqrt((d**2).mean()))
        sq, n = sq + float((d**2).sum()), n + d.size
    res["balanced"] = float(np.mean([res[ph] for ph in PHASES]))
    res["pooled"] = float(np.sqrt(sq / n))
    return res


def _write(path, frames):
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for fr in frames:
        a = Atoms(numbers=fr["numbers"], positions=fr["pos"], cell=fr["cell"], pbc=fr["pbc"])
        a.calc = SinglePointCalculator(a, energy=fr["energy"], forces=fr["forces"])
        out.append(a)
    ase.io.write(path, out)


def worker(seed: int, out: Path, size: dict) -> dict:
    """Everything for one seed; returns (and writes) its results."""
    import ase.io
    import torch
    from atomtwin.engines.active import learn
    from atomtwin.engines.mlip.data import frame_from_atoms

    torch.set_num_threads(1)
    t_cpu = time.process_time()
    out.mkdir(parents=True, exist_ok=True)
    steps, every, epochs = size["steps"], size["check_every"], size["epochs"]
    val = validation(size["n_val"])
    scenario = size.get("scenario", "ramp")
    model = size.get("model", MODEL)
    wl = walkers(scenario)
    nw = len(wl)
    # the oracle pool: true-EMT MD of the walkers' schedule (another seed), every check
    lengths = [steps * f for f in LENGTHS[scenario]]
    truth = [
        emt_md(a, list(np.linspace(t0, t1, n // every)), every, 100 + 10 * seed + k)
        for k, ((a, t0, t1), n) in enumerate(zip(wl, lengths, strict=True))
    ]
    seeds = [truth[w][i] for w, i in SEEDS[scenario]]  # 300 K frames
    _write(out / "seed.extxyz", seeds)
    wcfg = []
    for k, (a, t0, t1) in enumerate(wl):
        ase.io.write(out / f"start{k}.xyz", a)
        wcfg.append(
            {
                "structure": str(out / f"start{k}.xyz"),
                "temperature": t0,
                "temperature_end": t1,
                "steps": lengths[k],
                "timestep": 0.004,
                "friction": 5.0,
            }
        )
    res = {"seed": seed, "active": {}, "curves": {}}
    visited: list[list[dict]] = [[] for _ in range(nw)]
    for name, (rel, gap) in SETTINGS.items():
        seen: list[list[dict]] = [[] for _ in range(nw)]

        def observer(w, step, fr, sigma, seen=seen):
            seen[w].append(fr)

        cfg = {
            "output_dir": str(out / name),
            "seed_frames": str(out / "seed.extxyz"),
            "model": model,
            "progress": False,
            "uncertainty": {
                "kind": "gp",
                "features": "all",
                "check_every": every,
                "threshold_train": rel,
                "floor": size.get("floor", "pooled"),
                "min_gap": gap,
            },
            "fit": {"epochs": epochs, "update_epochs": 15, "full_retrain_every": 8, "lr": 0.01},
            "walkers": wcfg,
            "max_calls": size["max_calls"],
            "min_distance": MIN_DISTANCE,
            "seed": seed,
        }
        t0 = time.process_time()
        r = learn(cfg, overwrite=True, observer=observer)
        data = [frame_from_atoms(a) for a in ase.io.read(r.dataset, ":")]
        calls = len(data) - len(seeds)
        sc = score(data, val, epochs, seed=seed, model=model)
        steps_done = [int(s) for s in _walker_steps(out / name / "calls.csv")]
        res["active"][name] = {
            "calls": calls,
            "finished": r.finished,
            "cpu_s": time.process_time() - t0,
            "score": sc,
            "call_steps": steps_done,
        }
        print(
            f"[seed {seed}] {name}: {calls} calls, finished {r.finished}, "
            f"balanced {sc['balanced']:.4f} eV/Å",
            flush=True,
        )
        if name == "active":
            visited = seen
    rng = np.random.default_rng(seed)
    pools = {"same MD": visited, "true-EMT MD": [t[3:] for t in truth]}  # seeds left out
    for pool_name, pool in pools.items():
        flat = [(w, i) for w in range(nw) for i in range(len(pool[w]))]
        for n in size["grid"]:
            pick = [flat[i] for i in rng.choice(len(flat), min(n, len(flat)), replace=False)]
            fr = [pool[w][i] for w, i in pick]
            fr = fr if pool_name == "true-EMT MD" else label(fr)
            res["curves"].setdefault(f"random ({pool_name})", []).append(
                (n, score(seeds + fr, val, epochs, seed=seed, model=model))
            )
            if pool_name == "same MD":
                sched = []
                for w in range(nw):  # every k-th check of each walker
                    k = n // nw + (w < n % nw)
                    idx = np.linspace(0, len(pool[w]) - 1, k + 2)[1:-1].round().astype(int)
                    sched += [pool[w][i] for i in idx]
                res["curves"][f"fixed schedule ({pool_name})"] = res["curves"].get(
                    f"fixed schedule ({pool_name})", []
                ) + [(n, score(seeds + label(sched), val, epochs, seed=seed, model=model))]
            print(f"[seed {seed}] {pool_name} N={n} done", flush=True)
    res["pool_sizes"] = {k: [len(w) for w in p] for k, p in pools.items()}
    res["scenario"] = scenario
    res["floor"] = size.get("floor", "pooled")
    res["cpu_s"] = time.process_time() - t_cpu
    (out / "result.json").write_text(json.dumps(res))
    return res


def _walker_steps(path):
    import csv

    return [r["step"] for r in csv.DictReader(open(path))]


def _run_worker(args):
    seed, out, size = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return worker(seed, Path(out), size)


def interp_calls(curve, target):
    """Calls a (median) curve [(n, err)] needs to reach ``target``: linear in log(err)
    between grid points; None when it never does."""
    for (n0, e0), (n1, e1) in zip(curve, curve[1:], strict=False):
        if e0 <= target:
            return float(n0)
        if e1 <= target:
            f = (np.log(e0) - np.log(target)) / (np.log(e0) - np.log(e1))
            return float(n0 + f * (n1 - n0))
    return float(curve[0][0]) if curve and curve[0][1] <= target else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--out", default=None, help="folder for the figure, table and runs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=3, help="seeds run in parallel processes")
    ap.add_argument("--steps", type=int, default=None, help="MD steps per walker (1500)")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="ramp",
                    help="walker set: 'ramp' (2 ramps), 'campaign' (4 walkers) or 'production' "
                    "(the campaign, solid walkers 4x longer); see SCENARIOS")
    ap.add_argument("--mul", type=int, default=None,
                    help="channels of the model (8); --radial-hidden follows as 2 x mul")
    ap.add_argument("--grid", type=int, nargs="+", default=None,
                    help="calls of the random / fixed-schedule curves (4 8 16 32 48)")
    ap.add_argument("--floor", choices=["pooled", "walker"], default="pooled",
                    help="the active runs' trigger level: the median over all training "
                    "frames (pooled) or one per walker (walker); see UncertaintyConfig")
    ap.add_argument("--merge", nargs="+", metavar="DIR", default=None,
                    help="no runs: the table and figure of the seeds in these finished "
                    "--out folders together, written to --out")
    args = ap.parse_args(argv)
    if args.merge:
        res = [
            json.loads(p.read_text())
            for d in args.merge
            for p in sorted(Path(d).glob("seed*/result.json"))
        ]
        out = Path(args.out or tempfile.mkdtemp(prefix="bench_active_"))
        out.mkdir(parents=True, exist_ok=True)
        print(f"{len(res)} seeds: {sorted(r['seed'] for r in res)}")
        report(res, out)
        return 0
    size = {
        "steps": 1500,
        "check_every": 10,
        "epochs": 40,
        "n_val": 40,
        "max_calls": 80,
        "grid": [4, 8, 16, 32, 48],
    }
    if args.small:
        size = {
            "steps": 200,
            "check_every": 10,
            "epochs": 8,
            "n_val": 4,
            "max_calls": 12,
            "grid": [4, 8],
        }
    if args.steps:
        size["steps"] = args.steps
    if args.grid:
        size["grid"] = sorted(args.grid)
    size["scenario"] = args.scenario
    size["floor"] = args.floor
    if args.mul:
        size["model"] = {**MODEL, "mul": args.mul, "radial_hidden": 2 * args.mul}
    t_wall = time.perf_counter()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_active_"))
    out.mkdir(parents=True, exist_ok=True)
    load0 = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"
    jobs = [(s, str(out / f"seed{s}"), size) for s in args.seeds]
    if args.jobs > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(
            min(args.jobs, len(jobs)), mp_context=mp.get_context("spawn")
        ) as ex:
            results = list(ex.map(_run_worker, jobs))
    else:
        results = [_run_worker(j) for j in jobs]
    report(results, out)
    wall = time.perf_counter() - t_wall
    cpu = sum(r["cpu_s"] for r in results)
    ru = max(
        resource.getrusage(who).ru_maxrss / 1024
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    load1 = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "?"
    print(
        f"\nwall {wall:.0f} s, CPU {cpu:.0f} s (all seeds), max RSS {ru:.0f} MB, "
        f"load {load0} -> {load1}; files in {out}"
    )
    return 0


def report(results, out: Path, key="balanced"):
    """Median/spread table over seeds, calls-to-target ratios, figure."""
    curves = {}
    for r in results:
        for name, pts in r["curves"].items():
            for n, sc in pts:
                curves.setdefault(name, {}).setdefault(n, []).append(sc[key])
    print(
        f"\nvalidation force RMSE ({key} over {', '.join(PHASES)}), eV/Å: median [min, max] "
        f"over {len(results)} seeds"
    )
    print("| method | calls | error |\n|---|---|---|")
    for name, d in curves.items():
        for n in sorted(d):
            v = np.array(d[n])
            print(f"| {name} | {n} | {np.median(v):.4f} [{v.min():.4f}, {v.max():.4f}] |")
    act = {}
    for r in results:
        for name, a in r["active"].items():
            act.setdefault(name, []).append((a["calls"], a["score"][key], a["finished"]))
    for name, pts in act.items():
        c = np.array([p[0] for p in pts])
        e = np.array([p[1] for p in pts])
        print(
            f"| {name} (whole runs) | {np.median(c):.0f} [{c.min()}, {c.max()}] | "
            f"{np.median(e):.4f} [{e.min():.4f}, {e.max():.4f}] |"
        )
    print(
        "\ncalls each baseline needs (median curve, interpolated) to reach the active "
        "runs' median error; ratio = baseline calls / active calls"
    )
    print("| active setting | its calls | its error | " + " | ".join(curves) + " |")
    print("|---" * (3 + len(curves)) + "|")
    for name, pts in act.items():
        c = float(np.median([p[0] for p in pts]))
        e = float(np.median([p[1] for p in pts]))
        cells = []
        for d in curves.values():
            med = [(n, float(np.median(d[n]))) for n in sorted(d)]
            need = interp_calls(med, e)
            cells.append(
                f"> {med[-1][0]} (> {med[-1][0] / c:.1f}x)"
                if need is None
                else f"{need:.0f} ({need / c:.2f}x)"
            )
        print(f"| {name} | {c:.0f} | {e:.4f} | " + " | ".join(cells) + " |")
    print(
        "\nthe same ratios resampled over seeds (bootstrap, 2000 draws of the seeds with "
        "replacement, every curve and active run of a seed drawn together): median [16th, "
        "84th percentile]; a draw whose baseline never reaches the error counts as its last "
        "grid point"
    )
    print("| active setting | " + " | ".join(curves) + " |")
    print("|---" * (1 + len(curves)) + "|")
    for name, (mid, lo, hi) in bootstrap_ratios(results, key).items():
        print(
            f"| {name} | "
            + " | ".join(f"{m:.2f} [{a:.2f}, {b:.2f}]" for m, a, b in zip(mid, lo, hi, strict=True))
            + " |"
        )
    print("\nper-phase force RMSE (eV/Å), median over seeds")
    print("| dataset | " + " | ".join(PHASES) + " |\n|---" * 1 + "|---" * len(PHASES) + "|")
    for name in act:
        v = {ph: np.median([r["active"][name]["score"][ph] for r in results]) for ph in PHASES}
        print(f"| {name} | " + " | ".join(f"{v[ph]:.3f}" for ph in PHASES) + " |")
    for cname in next(iter(results))["curves"]:
        n = max(x[0] for x in results[0]["curves"][cname])
        v = {
            ph: np.median([dict((m, s) for m, s in r["curves"][cname])[n][ph] for r in results])
            for ph in PHASES
        }
        print(f"| {cname}, N={n} | " + " | ".join(f"{v[ph]:.3f}" for ph in PHASES) + " |")
    _figure(curves, act, out / "bench_active.png", key)
    (out / "summary.json").write_text(
        json.dumps(
            {
                "curves": {k: {str(n): v for n, v in d.items()} for k, d in curves.items()},
                "active": act,
            }
        )
    )


def bootstrap_ratios(results, key="balanced", n_boot=2000, seed=0):
    """Per active setting, (median, 16th, 84th percentile) of the calls ratio to each
    baseline (same order as the results' curves) over seed resamples."""
    rng = np.random.default_rng(seed)
    names = list(results[0]["curves"])
    settings = list(results[0]["active"])
    out = {}
    for a in settings:
        ratios = []
        for _ in range(n_boot):
            pick = [results[i] for i in rng.integers(0, len(results), len(results))]
            c = float(np.median([r["active"][a]["calls"] for r in pick]))
            e = float(np.median([r["active"][a]["score"][key] for r in pick]))
            row = []
            for name in names:
                grid = [n for n, _ in pick[0]["curves"][name]]
                med = [
                    (n, float(np.median([dict(r["curves"][name])[n][key] for r in pick])))
                    for n in grid
                ]
                need = interp_calls(med, e)
                row.append((grid[-1] if need is None else need) / c)
            ratios.append(row)
        q = np.percentile(np.array(ratios), [50, 16, 84], axis=0)
        out[a] = tuple(q[k].tolist() for k in range(3))
    return out


def replot(out: Path, key="balanced"):
    """The figure again from a finished run's ``summary.json``."""
    d = json.loads((Path(out) / "summary.json").read_text())
    curves = {k: {int(n): v for n, v in c.items()} for k, c in d["curves"].items()}
    _figure(curves, d["active"], Path(out) / "bench_active.png", key)


def _figure(curves, act, path, key):
    from atomtwin.toolkit.plot import PALETTE, axis_label, new_figure, save

    fig, ax = new_figure("single", aspect=0.75)
    marks = ["s", "^", "v", "D"]
    for k, (name, d) in enumerate(curves.items()):
        n = sorted(d)
        med = [np.median(d[x]) for x in n]
        lo = [np.min(d[x]) for x in n]
        hi = [np.max(d[x]) for x in n]
        c = PALETTE[1 + k]
        ax.plot(n, med, marker=marks[k % 4], ms=3.5, color=c, lw=1, label=name)
        ax.fill_between(n, lo, hi, color=c, alpha=0.15, lw=0)
    amarks = ["o", "D", "h", "p"]
    for k, (name, pts) in enumerate(act.items()):
        c = np.array([p[0] for p in pts])
        e = np.array([p[1] for p in pts])
        m = amarks[k % 4]
        ax.plot(c, e, m, ms=3, color=PALETTE[0], mfc="none", alpha=0.7)
        ax.plot(
            np.median(c),
            np.median(e),
            m,
            ms=6.5,
            color=PALETTE[0],
            label=f"{name} (median; small: seeds)",
        )
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xlabel("reference calls")
    ax.set_ylabel(axis_label("phase-balanced force RMSE", "eV/Å"))
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.legend(fontsize="x-small", frameon=False)
    save(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
