"""Accuracy to convergence: our NequIP-/Allegro-style models trained by our trainer
(``atomtwin train``) against nequip / nequip-allegro trained by nequip's own (``nequip-train``,
Lightning + hydra), at matched capacity, on the same data split.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_mlip_convergence.py --out DIR
    python tests/benchmarks/bench_mlip_convergence.py --small --out DIR     # smoke run

Capacity: the shared builder (``tests/support/peer_models.py``, settings ``ACCURACY``) gives
the architecture and the one knob that brings the parameter counts within 5 % (the peer's
type-embedding width for NequIP, our MLP width for Allegro); here the two stacks build their
models from the same numbers.  Data: EMT-labelled 32-atom fcc Cu cells, rattled (0.03-0.12 Å)
and strained (±2 %), training and validation from different seeds (the generator of
``bench_mlip_accuracy.py``).  Both trainers get the same settings: Adam, learning rate 5e-3
halved on a 10-epoch validation plateau, batches of 5, loss = MSE(energy per atom) + MSE(force
components) (eV, eV/Å), EMA of the weights (decay 0.99) evaluated on validation, early
stopping after ``--patience`` epochs without a better validation loss, float32, one thread,
each stack's own statistics (shift, scale, average neighbour count) from the training set.
What differs is what makes each a trainer: data pipeline, batching, loss normalisation
details, EMA implementation, Lightning's loop.

Output: ``convergence.csv`` (the two learning curves of each architecture: validation force
and energy MAE against epoch and wall time), ``convergence.png`` and a table of the best
validation force MAE, the epoch and time it was reached, and the parameters of each side.
Each run is its own process; two run at once (one per core).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))
sys.path.insert(0, str(HERE))

import peer_models as pm  # noqa: E402

HYPER = pm.ACCURACY
TRAIN = {"lr": 5e-3, "batch": 5, "factor": 0.5, "lr_patience": 10, "ema": 0.99}


def write_data(out: Path, n_train: int, n_val: int) -> tuple[Path, Path]:
    import ase.io
    from bench_mlip_accuracy import make_data

    tr, va = out / "train.extxyz", out / "val.extxyz"
    if not (tr.exists() and va.exists()):
        ase.io.write(tr, make_data(n_train, 1))
        ase.io.write(va, make_data(n_val, 2))
    return tr, va


def matched(arch: str) -> dict:
    """Model numbers both stacks build from, the knob's value and both parameter counts."""
    ours, peer, info = pm.matched_pair(arch, HYPER)
    cfg = ours.config.to_dict()
    cfg["avg_num_neighbors"] = None  # from the training data, as nequip does
    return {"ours_model": cfg, "info": info}


def nequip_config(arch: str, info: dict, tr: Path, va: Path, run: Path, epochs: int,
                  patience: int, minutes: float) -> dict:
    h = HYPER
    transforms = [
        {"_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
         "model_type_names": ["Cu"], "chemical_species_to_atom_type_map": {"Cu": "Cu"}},
        {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": h.r_max},
    ]

    def ds(path):
        return {"_target_": "nequip.data.dataset.ASEDataset", "file_path": str(path),
                "transforms": transforms}

    common = {"seed": 0, "model_dtype": "float32", "type_names": ["Cu"], "r_max": h.r_max,
              "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
              "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
              "per_type_energy_scales": "${training_data_stats:forces_rms}"}
    if arch == "nequip":
        te = info["knob"]["peer type_embed_num_features"]
        model = {"_target_": "nequip.model.NequIPGNNModel", "num_layers": h.nequip_layers,
                 "l_max": h.lmax, "parity": h.parity, "num_features": h.nequip_mul,
                 "radial_mlp_depth": h.radial_layers, "radial_mlp_width": h.radial_hidden,
                 "num_bessels": h.num_basis, "type_embed_num_features": te, **common}
    else:
        model = {"_target_": "allegro.model.AllegroModel", "l_max": h.lmax, "parity": h.parity,
                 "num_layers": h.allegro_layers,
                 "radial_chemical_embed": {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed",
                                           "num_bessels": h.num_basis},
                 "scalar_embed_mlp_hidden_layers_depth": 0, "num_scalar_features": h.latent,
                 "num_tensor_features": h.allegro_mul, "allegro_mlp_hidden_layers_depth": 1,
                 "allegro_mlp_hidden_layers_width": h.mlp_hidden, "tp_path_channel_coupling": False,
                 "readout_mlp_hidden_layers_depth": 1,
                 "readout_mlp_hidden_layers_width": h.mlp_hidden, **common}
    loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": TRAIN["batch"]}
    mon = "val0_epoch/weighted_sum"
    hh, mm = divmod(int(minutes * 60), 3600)
    return {
        "run": ["train"],
        "seed": 0,
        "data": {"_target_": "nequip.data.datamodule.NequIPDataModule", "seed": 0,
                 "train_dataset": ds(tr), "val_dataset": ds(va),
                 "train_dataloader": {**loader, "shuffle": True}, "val_dataloader": loader,
                 "stats_manager": {"_target_": "nequip.data.CommonDataStatisticsManager",
                                   "type_names": ["Cu"]}},
        "trainer": {"_target_": "lightning.Trainer", "max_epochs": epochs,
                    "max_time": f"00:{hh:02d}:{mm // 60:02d}:{mm % 60:02d}",
                    "check_val_every_n_epoch": 1, "enable_progress_bar": False,
                    "logger": False, "enable_checkpointing": False, "accelerator": "cpu",
                    "callbacks": [
                        {"_target_": "lightning.pytorch.callbacks.EarlyStopping",
                         "monitor": mon, "patience": patience, "mode": "min"},
                        {"_target_": "nequip_epoch_log.EpochLog", "path": str(run / "curve.csv")},
                    ]},
        "training_module": {
            "_target_": "nequip.train.EMALightningModule", "ema_decay": TRAIN["ema"],
            "loss": {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True,
                     "coeffs": {"total_energy": 1.0, "forces": 1.0}},
            "val_metrics": {"_target_": "nequip.train.EnergyForceMetrics",
                            "coeffs": {"per_atom_energy_mae": 1.0, "forces_mae": 1.0}},
            "optimizer": {"_target_": "torch.optim.Adam", "lr": TRAIN["lr"]},
            "lr_scheduler": {"scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                                           "factor": TRAIN["factor"],
                                           "patience": TRAIN["lr_patience"]},
                             "monitor": mon, "interval": "epoch", "frequency": 1},
            "model": model,
        },
    }


def ours_config(m: dict, tr: Path, va: Path, run: Path, epochs: int, patience: int,
                minutes: float) -> dict:
    return {"model": m["ours_model"], "train_files": [str(tr)], "val_files": [str(va)],
            "output_dir": str(run), "seed": 0, "batch_size": TRAIN["batch"],
            "max_epochs": epochs, "max_time_s": minutes * 60, "lr": TRAIN["lr"],
            "schedule": "plateau", "lr_factor": TRAIN["factor"], "lr_patience": TRAIN["lr_patience"],
            "ema_decay": TRAIN["ema"], "early_stopping_patience": patience,
            "energy_weight": 1.0, "force_weight": 1.0, "progress": False}


def launch(stack: str, arch: str, cfg: dict, run: Path) -> subprocess.Popen:
    import yaml

    run.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent / "support"),
                                          os.environ.get("PYTHONPATH", "")])}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    bindir = Path(sys.executable).parent
    if stack == "peer":
        cmd = [str(bindir / "nequip-train"), "-cp", str(run), "-cn", "config",
               f"hydra.run.dir={run / 'hydra'}"]
    else:
        cmd = [str(bindir / "atomtwin"), "train", str(run / "config.yaml"), "--force"]
    log = open(run / "log.txt", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=run)


def read_curve(stack: str, run: Path) -> list[dict]:
    path = run / ("curve.csv" if stack == "peer" else "metrics.csv")
    if not path.exists():
        return []
    rows = list(csv.DictReader(open(path)))
    out = []
    for r in rows:
        if stack == "peer":
            f = r.get("val0_epoch/forces_mae")
            e = r.get("val0_epoch/per_atom_energy_mae")
        else:
            f, e = r.get("val_forces_mae"), r.get("val_energy_mae")
        out.append({"epoch": int(float(r["epoch"])), "wall_s": float(r["wall_s"]),
                    "force_mae": float(f), "energy_mae_mev": 1e3 * float(e) if e else float("nan")})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--archs", nargs="+", default=["nequip", "allegro"])
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--patience", type=int, default=40)
    ap.add_argument("--minutes", type=float, default=25.0, help="wall-time cap per run")
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--val", type=int, default=25)
    args = ap.parse_args(argv)
    if args.small:
        args.epochs, args.train, args.val, args.minutes = 3, 10, 5, 5.0
    rows = compare(Path(args.out), args.archs, args.epochs, args.patience, args.minutes,
                   args.train, args.val, verbose=True)
    for arch in args.archs:
        o = next((r for r in rows if r["arch"] == arch and r["stack"] == "ours" and "error" not in r), None)
        p = next((r for r in rows if r["arch"] == arch and r["stack"] == "peer" and "error" not in r), None)
        if o and p:
            print(f"{arch}: best force MAE ours / peer = {o['best_force_mae'] / p['best_force_mae']:.2f}")
    return 0


def compare(out: Path, archs, epochs: int, patience: int, minutes: float, n_train: int,
            n_val: int, verbose: bool = False) -> list[dict]:
    """Run the four trainings (two at a time) and return one row per (arch, stack)."""
    out.mkdir(parents=True, exist_ok=True)
    tr, va = write_data(out, n_train, n_val)
    jobs = []
    info = {}
    for arch in archs:
        m = matched(arch)
        info[arch] = m["info"]
        for stack in ("ours", "peer"):
            run = out / f"{arch}-{stack}"
            cfg = (ours_config(m, tr, va, run, epochs, patience, minutes)
                   if stack == "ours" else
                   nequip_config(arch, m["info"], tr, va, run, epochs, patience, minutes))
            jobs.append((stack, arch, cfg, run))
    t0 = time.perf_counter()
    running: list = []
    pending = list(jobs)
    while pending or running:  # two at a time: one per core
        while pending and len(running) < 2:
            stack, arch, cfg, run = pending.pop(0)
            running.append((launch(stack, arch, cfg, run), stack, arch, run))
        time.sleep(2)
        for item in list(running):
            p, stack, arch, run = item
            if p.poll() is not None:
                running.remove(item)
                if verbose:
                    print(f"{arch} {stack}: exit {p.returncode} after "
                          f"{time.perf_counter() - t0:.0f} s", flush=True)
    rows, curves = [], {}
    for stack, arch, _, run in jobs:
        c = read_curve(stack, run)
        curves[f"{arch}-{stack}"] = c
        if not c:
            rows.append({"arch": arch, "stack": stack, "error": f"no curve: see {run / 'log.txt'}"})
            continue
        best = min(c, key=lambda r: r["force_mae"])
        rows.append({"arch": arch, "stack": stack, "epochs": c[-1]["epoch"],
                     "wall_s": c[-1]["wall_s"], "best_force_mae": best["force_mae"],
                     "best_epoch": best["epoch"], "best_wall_s": best["wall_s"],
                     "energy_mae_mev_at_best": best["energy_mae_mev"],
                     "params": info[arch]["params_ours" if stack == "ours" else "params_peer"]})
    with open(out / "convergence.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "epoch", "wall_s", "val_force_mae", "val_energy_mae_mev_per_atom"])
        for k, c in curves.items():
            for r in c:
                w.writerow([k, r["epoch"], f"{r['wall_s']:.2f}", f"{r['force_mae']:.6f}",
                            f"{r['energy_mae_mev']:.4f}"])
    settings = {**TRAIN, "epochs": epochs, "patience": patience, "minutes": minutes,
                "n_train": n_train, "n_val": n_val}
    (out / "summary.json").write_text(json.dumps({"rows": rows, "info": info,
                                                  "settings": settings}, indent=1))
    figure(curves, out / "convergence.png")
    if not verbose:
        return rows
    print("\n| model | stack | parameters | epochs run | best val force MAE (eV/Å) | at epoch | "
          "at wall (s) | energy MAE there (meV/atom) |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['arch']} | {r['stack']} | {r['error']} |")
            continue
        print(f"| {r['arch']} | {'ours (atomtwin train)' if r['stack'] == 'ours' else 'peer (nequip-train)'} "
              f"| {r['params']:,} | {r['epochs']} | {r['best_force_mae']:.4f} | {r['best_epoch']} | "
              f"{r['best_wall_s']:.0f} | {r['energy_mae_mev_at_best']:.2f} |")
    return rows


def figure(curves: dict, path: Path) -> None:
    from atomtwin.toolkit.plot import PALETTE, axis_label, new_figure, save

    fig, axes = new_figure("double", ncols=2, aspect=0.38)
    style = {"nequip": "-", "allegro": "--"}
    colour = {"ours": PALETTE[0], "peer": PALETTE[1]}
    peer = {"nequip": "nequip", "allegro": "nequip-allegro"}
    lo = []
    for key, c in curves.items():
        if not c:
            continue
        arch, stack = key.split("-")
        lab = (f"{'NequIP' if arch == 'nequip' else 'Allegro'}-style, ours (atomtwin train)"
               if stack == "ours" else f"{peer[arch]} (nequip-train)")
        y = [r["force_mae"] for r in c]
        lo.append(min(y))
        axes[0].plot([r["epoch"] for r in c], y, style[arch], color=colour[stack], lw=1, label=lab)
        axes[1].plot([r["wall_s"] / 60 for r in c], y, style[arch], color=colour[stack], lw=1)
    from matplotlib.ticker import FuncFormatter, LogLocator

    for ax in axes:  # the converging part; the first epochs start near 0.3 eV/Å
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        if lo:
            ax.set_ylim(0.8 * min(lo), 0.05)
        ax.set_ylabel(axis_label("validation force MAE", "eV/Å"))
    axes[0].set_xlabel("epoch")
    axes[1].set_xlabel(axis_label("wall time, one core", "min"))
    axes[0].legend(fontsize="x-small", frameon=False)
    save(fig, path)


def replot(out: Path) -> None:
    """The figure again from a finished run's ``convergence.csv``."""
    curves: dict = {}
    for r in csv.DictReader(open(Path(out) / "convergence.csv")):
        curves.setdefault(r["run"], []).append(
            {"epoch": int(r["epoch"]), "wall_s": float(r["wall_s"]),
             "force_mae": float(r["val_force_mae"])})
    figure(curves, Path(out) / "convergence.png")


if __name__ == "__main__":
    raise SystemExit(main())
