"""The actively learned Li-P-S-Cl potential of the Li | Li6PS5Cl study (issue 18).

Reproduces ``data/li_argyrodite/model.ckpt`` (with ``dataset.extxyz``, ``model.json``,
``learning_curve.csv/png``)::

    OMP_NUM_THREADS=1 python -m atomtwin.engines.studies.li_argyrodite.make_model \\
        --out data/li_argyrodite

:func:`learn_potential` runs the active-learning engine (:func:`atomtwin.engines.active.learn`)
against CHGNet 0.3.0 (weights in the chgnet wheel, no download):

* **seed frames** (bare; CHGNet labels them first): the five reference phases (bcc Li,
  Li6PS5Cl, Li2S, Li3P, LiCl; :func:`reference_phases`) rattled at 300 and 500 K, and the
  106-atom sandwich (:func:`small_interface`) at gaps 2.0 / 2.5 / 3.0 Å rattled at 400 K
  (the 212-atom one of :func:`build_interface` too, in the full run);
* **walkers** (Langevin, 1 fs, friction 20 / ps as the CHGNet reference run): four on
  the 106-atom sandwich, where the reaction happens (400 K, a 300 -> 500 K ramp, a 2.0 Å
  gap at 450 K, each 2 ps long, and 500 K for 1.5 ps), so that the walkers go through the
  reaction (CHGNet reduces every contact PS4 within ~0.7 ps at 400 K); the 212-atom
  sandwich of the demo at 400 K for 2.5 ps (full run); bulk Li6PS5Cl 400 -> 500 K, bulk Li
  300 -> 450 K and the product phases Li2S, Li3P, LiCl at 400 K;
* single-model uncertainty (``gp``: the last-layer posterior variance), recalibrated;
* a NequIP-style model, float32, species Cl Li P S, r_max 4.5 Å, 2 layers, lmax 1
  (``MODEL``; why these: :data:`MODEL` below);
* after the loop, the final model is the loop's model fine-tuned on the whole dataset for
  ``final_epochs`` more epochs (the loop only ever fine-tunes for a few epochs per round).

The learning curve is measured *outside* the loop: the run is advanced ``rounds_per_point``
rounds at a time (``learn(..., resume=True, max_rounds=...)``, which continues exactly as
an uninterrupted run would) and the model is evaluated between chunks on held-out CHGNet
frames (``chgnet_small_400K.nc``, ``chgnet_bulk_400K.nc``), which therefore never influence
the run: no reference trajectory frame is used for training or calibration.

:func:`validate` (``--validate``) measures what ``model.json`` and the README report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MODEL",
    "MODEL_SMALL",
    "learn_config",
    "learn_potential",
    "held_out_frames",
    "errors_on",
    "main",
]


def _data() -> Path:
    """The shipped ``data/li_argyrodite`` folder (after any install)."""
    from atomtwin.data import path

    return path("li_argyrodite")


#: The potential.  r_max 4.5 Å: the first shells that decide the chemistry (P-S 2.05 Å,
#: Li-S 2.4-2.6, Li-Cl 2.4, Li-Li 2.95 and 3.41 in bcc Li, S-S 3.35 inside a PS4) with
#: room for thermal motion; two interaction layers give a 9 Å receptive field.  lmax 1 and
#: 16 channels: the size at which the 212-atom sandwich runs ~170 steps/s on one core
#: (measured; the target is 15), so the model can be trained in minutes on two cores.
MODEL = {
    "architecture": "nequip",
    "species": ["Cl", "Li", "P", "S"],
    "r_max": 4.5,
    "num_layers": 2,
    "lmax": 1,
    "mul": 16,
    "num_basis": 8,
    "radial_hidden": 32,
    "radial_layers": 1,
    "dtype": "float32",
}
#: the same architecture, thinner, for ``small=True`` (the demo's ``--retrain --small``)
MODEL_SMALL = MODEL | {"mul": 8, "radial_hidden": 16, "num_basis": 6}


def _phase_structures(small: bool) -> dict[str, Any]:
    from atomtwin.engines.studies.li_argyrodite.structures import reference_phases

    return reference_phases("chgnet", min_atoms=1 if small else 50)


def _sandwich(gap: float, big: bool = False):
    from atomtwin.engines.studies.li_argyrodite.interface import build_interface, small_interface

    it = (
        build_interface("chgnet", n_cells=2, li_layers=12, gap=gap)
        if big
        else small_interface("chgnet", gap=gap)
    )
    atoms = it.atoms
    del atoms.arrays["region"]
    atoms.info.clear()
    return atoms


def _write(path: Path, images) -> str:
    import ase.io

    ase.io.write(path, images, format="extxyz")
    return str(path)


def learn_config(work: Path, *, small: bool = False, seed: int = 0) -> dict[str, Any]:
    """The active-learning config (a dict for :func:`atomtwin.engines.active.learn`); the
    seed and walker structures are written into ``work``."""
    from atomtwin.engines.studies.li_argyrodite.structures import rattle

    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence([18, seed]))
    phases = _phase_structures(small)
    seeds = []
    for at in phases.values():
        for temp in (300.0,) if small else (300.0, 500.0):
            seeds.append(rattle(at, temp, rng))
    gaps = (2.5,) if small else (2.0, 2.5, 3.0)
    for gap in gaps:
        seeds.append(rattle(_sandwich(gap), 400.0, rng))
    if not small:
        seeds.append(rattle(_sandwich(2.5, big=True), 400.0, rng))
    for a in seeds:
        a.info.clear()
    files = {"seeds": _write(work / "seeds.extxyz", seeds)}
    for name, at in phases.items():
        files[name] = _write(work / f"start_{name}.extxyz", at)
    files["sandwich"] = _write(work / "start_sandwich.extxyz", _sandwich(2.5))
    files["sandwich_gap2"] = _write(work / "start_sandwich_gap2.extxyz", _sandwich(2.0))
    if not small:
        files["sandwich212"] = _write(work / "start_sandwich212.extxyz", _sandwich(2.5, big=True))

    def walker(name, temp, steps, temp_end=None):
        w = {
            "structure": files[name],
            "ensemble": "langevin",
            "temperature": temp,
            "steps": steps,
            "timestep": 0.001,
            "friction": 20.0,
        }
        if temp_end is not None:
            w["temperature_end"] = temp_end
        return w

    if small:
        walkers = [walker("sandwich", 400.0, 40), walker("Li6PS5Cl", 400.0, 40)]
        return {
            "output_dir": str(work / "run"),
            "seed_frames": files["seeds"],
            "model": MODEL_SMALL,
            "uncertainty": {"kind": "gp", "check_every": 10, "threshold": 0.3},
            "fit": {"epochs": 15, "update_epochs": 4, "full_retrain_every": 0, "lr": 0.01},
            "reference": {"calculator": "chgnet", "max_consecutive_failures": 5},
            "walkers": walkers,
            "max_calls": len(seeds) + 3,
            "seed": seed,
            "progress": False,
        }
    walkers = [
        walker("sandwich", 400.0, 2000),
        walker("sandwich", 300.0, 2000, 500.0),
        walker("sandwich_gap2", 450.0, 2000),
        walker("sandwich", 500.0, 1500),
        walker("sandwich212", 400.0, 2500),
        walker("Li6PS5Cl", 400.0, 1000, 500.0),
        walker("Li", 300.0, 1000, 450.0),
        walker("Li2S", 400.0, 500),
        walker("Li3P", 400.0, 500),
        walker("LiCl", 400.0, 500),
    ]
    return {
        "output_dir": str(work / "run"),
        "seed_frames": files["seeds"],
        "model": MODEL,
        "uncertainty": {"kind": "gp", "check_every": 10, "threshold": 0.4},
        "fit": {"epochs": 40, "update_epochs": 5, "full_retrain_every": 80, "lr": 0.01},
        "reference": {"calculator": "chgnet", "max_consecutive_failures": 5},
        "walkers": walkers,
        "max_calls": 420,
        "seed": seed,
        "progress": True,
    }


def held_out_frames(every: int = 10) -> dict[str, list]:
    """Every ``every``-th frame of the CHGNet reference runs (the reacting sandwich and the
    bulk control) as labelled frame dicts: never used for training or calibration."""
    from atomtwin.engines.mlip.data import read_frames

    out = {}
    for key, name in (("sandwich", "chgnet_small_400K.nc"), ("bulk", "chgnet_bulk_400K.nc")):
        fr = read_frames(_data() / name)
        out[key] = fr[::every]
    return out


def errors_on(model, frames) -> dict[str, float]:
    """Force MAE / RMSE (eV/Å, per component), energy MAE (eV/atom) and the mean |F|
    (component, eV/Å) of the reference, for scale."""
    from atomtwin.engines.active.fit import force_errors
    from atomtwin.engines.mlip.data import to_graph

    graphs = [to_graph(f, model.species, model.r_max) for f in frames]
    e = force_errors(model, graphs)
    f = np.concatenate([np.asarray(fr["forces"]) for fr in frames])
    e["mean_abs_force_component"] = float(np.abs(f).mean())
    e["frames"] = len(frames)
    return e


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("atomtwin", "torch", "e3nn", "chgnet", "ase", "numpy"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "absent"
    return out


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def learn_potential(
    out_dir: str | os.PathLike,
    *,
    small: bool = False,
    seed: int = 0,
    progress: bool = True,
    rounds_per_point: int | None = None,
    final_epochs: int | None = None,
    work: str | os.PathLike | None = None,
) -> Path:
    """Actively learn the Li-P-S-Cl potential against CHGNet; returns the checkpoint.

    Parameters
    ----------
    out_dir
        Receives ``model.ckpt``, ``dataset.extxyz``, ``learning_curve.csv`` and ``.png``,
        ``calls.csv`` and ``model.json`` (written last).
    small
        The seconds-to-a-minute version (small cells, two short walkers, a few calls):
        the demo's ``--retrain --small`` and the tests.  Not a usable model.
    seed
        Seed of the rattles, walkers and initialisations.
    progress
        Progress bar of the loop on stderr.
    rounds_per_point
        Rounds between two held-out evaluations of the learning curve (default 4; the
        small run: a single point at the end).
    final_epochs
        Fine-tuning epochs of the final model on the whole dataset (default 100; small: 0).
    work
        Folder of the run's state (default ``out_dir/active_run``); a run there is resumed.
    """
    import torch
    from atomtwin.engines.active import learn
    from atomtwin.engines.active.fit import fit
    from atomtwin.engines.active.references import chgnet_calculator
    from atomtwin.engines.active.state import atomic_write_text
    from atomtwin.engines.mlip.data import read_frames, to_graph
    from atomtwin.engines.mlip.model import load_model, save_checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work) if work is not None else out / "active_run"
    cfg = learn_config(work, small=small, seed=seed)
    cfg["progress"] = progress
    rpp = rounds_per_point or (10**6 if small else 4)
    final_epochs = (0 if small else 100) if final_epochs is None else final_epochs
    held = None if small else held_out_frames()
    calc = chgnet_calculator()
    t0, c0 = time.perf_counter(), _cpu_s()
    resume = (Path(cfg["output_dir"]) / "state.pt").exists()
    points = []
    if resume and (work / "curve_points.json").exists():
        points = json.loads((work / "curve_points.json").read_text())
    while True:
        res = learn(cfg, resume=resume, overwrite=not resume, max_rounds=rpp, calculator=calc)
        resume = True
        if held is not None:
            m = load_model(res.model)
            pt = {"calls": res.n_calls, "frames": res.n_frames, "round": res.rounds}
            for k, fr in held.items():
                e = errors_on(m, fr)
                pt |= {f"{k}_{n}": e[n] for n in ("forces_mae", "forces_rmse", "energy_mae")}
            points.append(pt)
            atomic_write_text(work / "curve_points.json", json.dumps(points))
            if progress:
                print(f"[make_model] {pt}", flush=True)
        if res.finished:
            break
    al_wall, al_cpu = time.perf_counter() - t0, _cpu_s() - c0
    model = load_model(res.model)
    frames = read_frames(res.dataset)
    if final_epochs:
        graphs = [to_graph(f, model.species, model.r_max) for f in frames]
        model.train()
        fit(model, graphs, epochs=final_epochs, lr=0.005, batch_size=4, seed=seed + 7)
        if held is not None:
            pt = {"calls": res.n_calls, "frames": res.n_frames, "round": res.rounds, "final": 1}
            for k, fr in held.items():
                e = errors_on(model, fr)
                pt |= {f"{k}_{n}": e[n] for n in ("forces_mae", "forces_rmse", "energy_mae")}
            points.append(pt)
    total_wall, total_cpu = time.perf_counter() - t0, _cpu_s() - c0
    meta = {
        "command": "OMP_NUM_THREADS=1 python -m atomtwin.engines.studies.li_argyrodite."
        f"make_model --out {out}" + (" --small" if small else "") + f" --seed {seed}",
        "seed": seed,
        "small": small,
        "torch_threads": torch.get_num_threads(),
        "reference": "CHGNet 0.3.0 (weights of the chgnet wheel), CPU",
        "model": dict(cfg["model"]),
        "active_learning": {
            "calls": res.n_calls,
            "failed_calls": res.n_failed,
            "frames": res.n_frames,
            "rounds": res.rounds,
            "uncertainty": cfg["uncertainty"],
            "fit": cfg["fit"],
            "walkers": [
                {k: (Path(v).name if k == "structure" else v) for k, v in w.items()}
                for w in cfg["walkers"]
            ],
            "wall_s": round(al_wall, 1),
            "cpu_s": round(al_cpu, 1),
        },
        "final_fit": {"epochs": final_epochs, "lr": 0.005},
        "total_wall_s": round(total_wall, 1),
        "total_cpu_s": round(total_cpu, 1),
        "versions": _versions(),
        "load_at_end": os.getloadavg()[0],
    }
    ckpt = out / "model.ckpt"
    tmp = out / ".model.ckpt.tmp"
    save_checkpoint(tmp, model, {"li_argyrodite": {k: meta[k] for k in ("command", "seed")}})
    os.replace(tmp, ckpt)
    shutil.copyfile(res.dataset, out / ".dataset.tmp")
    os.replace(out / ".dataset.tmp", out / "dataset.extxyz")
    shutil.copyfile(res.calls_csv, out / "calls.csv")
    if points:
        _write_curve(out, points)
    else:  # the small run: the loop's own curve (error before adding vs calls)
        for name in ("learning_curve.csv", "learning_curve.png"):
            if (res.learning_curve_csv.parent / name).exists():
                shutil.copyfile(res.learning_curve_csv.parent / name, out / name)
    old = json.loads((out / "model.json").read_text()) if (out / "model.json").exists() else {}
    meta = old | meta  # keep validation results of an earlier --validate
    atomic_write_text(out / "model.json", json.dumps(meta, indent=1, default=float))
    return ckpt


def _write_curve(out: Path, points: list[dict[str, Any]]) -> None:
    from atomtwin.engines.active.state import atomic_write_text
    from atomtwin.toolkit.plot import PALETTE, axis_label, new_figure, save

    cols = sorted({k for p in points for k in p}, key=lambda k: (k not in ("calls", "frames"), k))
    lines = [",".join(cols)] + [",".join(str(p.get(c, "")) for c in cols) for p in points]
    atomic_write_text(out / "learning_curve.csv", "\n".join(lines) + "\n")
    loop = [p for p in points if not p.get("final")]
    fin = [p for p in points if p.get("final")]
    fig, ax = new_figure("single", aspect=0.75)
    for k, (key, lab) in enumerate(
        (("sandwich", "reacting sandwich, 0-2 ps"), ("bulk", "bulk Li$_6$PS$_5$Cl, 0-1 ps"))
    ):
        x = [p["calls"] for p in loop]
        ax.plot(x, [p[f"{key}_forces_mae"] for p in loop], "o-", ms=3, color=PALETTE[k], label=lab)
        if fin:  # drawn just right of the last loop point, which it would otherwise hide
            xf = fin[-1]["calls"] + 0.03 * (max(x) - min(x))
            ax.plot([xf], [fin[-1][f"{key}_forces_mae"]], "*", ms=9, color=PALETTE[k])
    if fin:
        ax.plot([], [], "*", ms=9, color="0.4", label="final model (fine-tuned)")
    ax.set_xlabel("CHGNet calls")
    ax.set_ylabel(axis_label("held-out force MAE", "eV/Å"))
    ax.set_yscale("log")
    ax.legend(fontsize="small", frameon=False, title="CHGNet MD at 400 K", title_fontsize="small")
    save(fig, out / "learning_curve.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("li_argyrodite_model"))
    p.add_argument("--small", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--final-epochs", type=int, default=None)
    p.add_argument("--validate", action="store_true", help="only validate out/model.ckpt")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.validate:
        from atomtwin.engines.studies.li_argyrodite.validate_model import validate

        validate(a.out / "model.ckpt", a.out)
        return 0
    ckpt = learn_potential(
        a.out,
        small=a.small,
        seed=a.seed,
        progress=not a.quiet,
        work=a.work,
        final_epochs=a.final_epochs,
    )
    print(f"model: {ckpt}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
