"""Validation of the shipped Li-P-S-Cl potential against the CHGNet reference runs.

``python -m atomtwin.engines.studies.li_argyrodite.make_model --out data/li_argyrodite
--validate`` measures, and adds to ``model.json`` under ``"validation"``:

* **errors** of the model against CHGNet on every frame of ``chgnet_small_400K.nc`` (the
  reacting 106-atom sandwich; also split in 0-0.7 ps, while the contact PS4 react, and
  0.7-2 ps) and ``chgnet_bulk_400K.nc``: force MAE / RMSE per component (eV/Å), energy MAE
  (eV/atom), with the mean |F| component of CHGNet for scale.  None of these frames was
  used for training or calibration (see :mod:`.make_model`);
* **reaction statistics** of the model's own MD of the same sandwich (the same start and
  thermostat as ``make_reference_run``: 400 K Maxwell-Boltzmann, Langevin 400 K, friction
  20 / ps, 1 fs, 2 ps; ``n_seeds`` seeds), analysed with ``bond_statistics`` (the
  reactions module's defaults), next to CHGNet's; and bulk Li6PS5Cl at 400 K (1 ps);
* **NVE drift** of the conserved energy on the sandwich (1 fs, from 400 K), eV/atom/ps;
* **speed**: steps/s of ``atomtwin.engines.md.run`` (Langevin, potential kind mlip) at 106
  and 212 atoms, wall and CPU, with the load average;
* that the checkpoint loads with :meth:`atomtwin.engines.mlip.Calculator.from_checkpoint`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["validate", "md_run", "bond_table"]

#: amu Å² / ps² in eV
_KE = 1.0364269e-4
TIMES = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0, 1.5, 2.0)


def md_run(
    model: Path,
    atoms,
    *,
    steps: int,
    seed: int,
    ensemble: str = "langevin",
    temperature: float = 400.0,
    stride: int = 10,
    out: Path,
) -> tuple[Any, dict[str, float]]:
    """MD with ``atomtwin.engines.md.run`` (potential kind mlip); returns the trajectory
    Dataset and {wall_s, cpu_s, steps_per_s_wall, steps_per_s_cpu}."""
    import ase.io
    from atomtwin.engines.md import run

    import atomtwin

    start = out.with_suffix(".start.extxyz")
    ase.io.write(start, atoms, format="extxyz")
    cfg = {
        "structure": str(start),
        "potential": {"kind": "mlip", "model": str(model)},
        "ensemble": ensemble,
        "timestep": 0.001,
        "steps": steps,
        "initial_temperature": temperature,
        "friction": 20.0,
        "output": str(out),
        "stride": stride,
        "write": ["positions", "velocities", "energy", "forces"],
        "seed": seed,
        "progress": False,
    }
    if ensemble != "nve":
        cfg["temperature"] = temperature
    c0, t0 = time.process_time(), time.perf_counter()
    res = run(cfg, overwrite=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ds = atomtwin.read(res.output).load()
    perf = {
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_per_s_wall": steps / wall,
        "steps_per_s_cpu": steps / cpu,
    }
    return ds, perf


def _at(stats: dict, t: float, key: str) -> float:
    k = int(np.argmin(np.abs(np.asarray(stats["time_ps"]) - t)))
    return float(stats[key][k])


def bond_table(runs: dict[str, dict]) -> str:
    """Markdown table of P-S bonds and PS4 units at :data:`TIMES` for each run."""
    head = "| run | " + " | ".join(f"{t:g}" for t in TIMES) + " |"
    lines = [head, "|---|" + "---|" * len(TIMES)]
    for name, st in runs.items():
        for key in ("P-S", "PS4"):
            vals = " | ".join(f"{_at(st, t, key):.0f}" for t in TIMES)
            lines.append(f"| {name} {key} | {vals} |")
    return "\n".join(lines)


def _nve_drift(ds) -> dict[str, float]:
    m = np.asarray(ds["mass"].values)
    v = np.asarray(ds["velocities"].values)
    ke = 0.5 * _KE * np.einsum("a,fax->f", m, v**2)
    e = np.asarray(ds["energy"].values) + ke
    t = np.asarray(ds["time"].values)
    n = len(m)
    slope = np.polyfit(t, e, 1)[0]
    return {
        "drift_eV_per_atom_per_ps": float(slope / n),
        "max_deviation_eV_per_atom": float(np.abs(e - e[0]).max() / n),
        "potential_energy_change_eV": float(ds["energy"].values[-1] - ds["energy"].values[0]),
        "duration_ps": float(t[-1] - t[0]),
        "timestep_fs": 1.0,
    }


def validate(
    ckpt: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    n_seeds: int = 3,
    md_steps: int = 2000,
    quick: bool = False,
) -> dict[str, Any]:
    """Measure the model (see the module docstring); writes ``out_dir/model.json``
    ``["validation"]`` (merged into what is there) and returns the dict."""
    import torch
    from atomtwin.engines.mlip import Calculator
    from atomtwin.engines.mlip.data import read_frames
    from atomtwin.engines.mlip.model import load_model
    from atomtwin.engines.studies.li_argyrodite.interface import build_interface, small_interface
    from atomtwin.engines.studies.li_argyrodite.make_model import _data, errors_on
    from atomtwin.engines.studies.li_argyrodite.make_reference_run import bond_statistics
    from atomtwin.engines.studies.li_argyrodite.structures import argyrodite

    import atomtwin

    ckpt, out_dir = Path(ckpt), Path(out_dir)
    DATA = _data()
    res: dict[str, Any] = {"threads": torch.get_num_threads(), "load_start": os.getloadavg()[0]}
    model = load_model(ckpt)
    calc = Calculator.from_checkpoint(ckpt)
    res["calculator_loads"] = calc is not None
    # (a) errors on the reference runs
    fr = read_frames(DATA / "chgnet_small_400K.nc")
    t = np.round(np.arange(len(fr)) * 0.01, 3)
    res["errors"] = {
        "sandwich_0-2ps": errors_on(model, fr),
        "sandwich_0-0.7ps": errors_on(model, [f for f, x in zip(fr, t, strict=True) if x < 0.7]),
        "sandwich_0.7-2ps": errors_on(model, [f for f, x in zip(fr, t, strict=True) if x >= 0.7]),
        "bulk_0-1ps": errors_on(model, read_frames(DATA / "chgnet_bulk_400K.nc")),
    }
    print(json.dumps(res["errors"], indent=1), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sandwich = small_interface("chgnet", gap=2.5).atoms
        del sandwich.arrays["region"]
        # (d) speed at 106 and 212 atoms
        big = build_interface("chgnet", n_cells=2, li_layers=12, gap=2.5).atoms
        del big.arrays["region"]
        speed = {}
        for name, at in (("106", sandwich), ("212", big)):
            _, perf = md_run(ckpt, at, steps=300, seed=1, stride=100, out=tmp / f"speed{name}.nc")
            speed[name] = {k: round(v, 2) for k, v in perf.items()} | {"load": os.getloadavg()[0]}
        res["speed"] = speed
        print(json.dumps(speed), flush=True)
        # (b) reactions: the sandwich at 400 K, n_seeds seeds, next to CHGNet's run
        ref = bond_statistics(atomtwin.read(DATA / "chgnet_small_400K.nc"))
        runs = {"CHGNet": ref}
        steps = 200 if quick else md_steps
        for s in range(n_seeds):
            ds, _ = md_run(ckpt, sandwich, steps=steps, seed=100 + s, out=tmp / f"md{s}.nc")
            runs[f"model seed {100 + s}"] = bond_statistics(ds)
            print(bond_table({f"seed {100 + s}": runs[f"model seed {100 + s}"]}), flush=True)
        res["reaction"] = {
            name: {
                "time_ps": [float(x) for x in st["time_ps"]],
                "P-S": [int(x) for x in st["P-S"]],
                "PS4": [int(x) for x in st["PS4"]],
            }
            for name, st in runs.items()
        }
        res["reaction_table"] = bond_table(runs)
        bulk_ds, _ = md_run(
            ckpt, argyrodite("chgnet"), steps=steps // 2, seed=7, out=tmp / "bulk.nc"
        )
        bst = bond_statistics(bulk_ds)
        res["bulk_400K"] = {
            "duration_ps": float(bst["time_ps"][-1]),
            "P-S_min": int(np.min(bst["P-S"])),
            "P-S_max": int(np.max(bst["P-S"])),
            "PS4_min": int(np.min(bst["PS4"])),
        }
        # (c) NVE drift on the sandwich
        nve, _ = md_run(
            ckpt, sandwich, steps=steps // 2, seed=5, ensemble="nve", stride=5, out=tmp / "nve.nc"
        )
        res["nve"] = _nve_drift(nve)
    res["load_end"] = os.getloadavg()[0]
    print(res["reaction_table"])
    print(json.dumps({k: res[k] for k in ("bulk_400K", "nve")}, indent=1))
    path = out_dir / "model.json"
    meta = json.loads(path.read_text()) if path.exists() else {}
    meta["validation"] = res
    from atomtwin.engines.active.state import atomic_write_text

    atomic_write_text(path, json.dumps(meta, indent=1, default=float))
    return res


def summary_markdown(meta: dict[str, Any]) -> str:
    """The README's results block from ``model.json``'s contents."""
    al, v = meta["active_learning"], meta["validation"]
    e = v["errors"]
    rows = [
        "| held-out frames (CHGNet MD, 400 K) | frames | force MAE | force RMSE | mean abs(F) "
        "| MAE / mean abs(F) | energy MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {
        "sandwich_0-2ps": "reacting sandwich, 0-2 ps",
        "sandwich_0-0.7ps": "  0-0.7 ps (while the PS4 react)",
        "sandwich_0.7-2ps": "  0.7-2 ps",
        "bulk_0-1ps": "bulk Li6PS5Cl, 0-1 ps",
    }
    for k, name in names.items():
        x = e[k]
        rows.append(
            f"| {name} | {x['frames']} | {x['forces_mae']:.3f} eV/Å | {x['forces_rmse']:.3f} eV/Å "
            f"| {x['mean_abs_force_component']:.3f} eV/Å "
            f"| {x['forces_mae'] / x['mean_abs_force_component']:.2f} "
            f"| {1000 * x['energy_mae']:.1f} meV/atom |"
        )
    ps2 = [r["P-S"][-1] for n, r in v["reaction"].items() if n != "CHGNet"]
    sp, nve, b = v["speed"], v["nve"], v["bulk_400K"]
    return "\n".join(
        [
            f"- **Run**: {al['calls']} CHGNet calls ({al['failed_calls']} failed), "
            f"{al['rounds']} rounds, {al['frames']} frames; active learning {al['cpu_s']:.0f} s "
            f"CPU ({al['wall_s']:.0f} s wall), {meta['total_cpu_s']:.0f} s CPU with the final "
            f"fit ({meta['final_fit']['epochs']} epochs), {meta['torch_threads']} torch thread, "
            f"load average {meta['load_at_end']:.1f} on 2 cores shared with other jobs.",
            "",
            *rows,
            "",
            "P-S bonds and PS4 units (reactions module defaults, "
            "`make_reference_run.bond_statistics`) in the model's own MD of the 106-atom "
            "sandwich (same start and thermostat as the CHGNet run: 400 K, Langevin 20/ps, "
            "1 fs; velocity seeds 100-102) next to CHGNet's run, at t (ps):",
            "",
            v["reaction_table"],
            "",
            f"P-S bonds at 2 ps: model {ps2} (mean {np.mean(ps2):.1f} +- {np.std(ps2, ddof=1):.1f}), "
            f"CHGNet {v['reaction']['CHGNet']['P-S'][-1]}.  Bulk Li6PS5Cl at 400 K with the "
            f"model ({b['duration_ps']:.1f} ps): P-S bonds {b['P-S_min']}-{b['P-S_max']}, "
            f"PS4 never below {b['PS4_min']} (no event, as CHGNet).",
            "",
            f"- **NVE** (sandwich, from 400 K, 1 fs, {nve['duration_ps']:.1f} ps, while it "
            f"reacts: potential energy {nve['potential_energy_change_eV']:+.1f} eV): drift "
            f"{nve['drift_eV_per_atom_per_ps']:+.1e} eV/atom/ps, largest deviation "
            f"{nve['max_deviation_eV_per_atom']:.1e} eV/atom.",
            f"- **Speed** (`atomtwin.engines.md.run`, Langevin, potential kind mlip, 1 torch "
            f"thread, 300 steps): 106 atoms {sp['106']['steps_per_s_cpu']:.0f} steps/s per CPU "
            f"second ({sp['106']['steps_per_s_wall']:.0f} wall at load "
            f"{sp['106']['load']:.1f}), 212 atoms {sp['212']['steps_per_s_cpu']:.0f} "
            f"({sp['212']['steps_per_s_wall']:.0f} wall at load {sp['212']['load']:.1f}).",
        ]
    )
