"""Make the potential the demo ships: ``model.ckpt`` with ``model.json`` (validation metrics,
reference data, configuration) and ``model_metrics.csv`` beside it.

Exactly the demo's own stages 1-3 (``atomtwin.engines.studies.demo``): the Pd | Au slab at both demo sizes
(54 and 160 atoms), EMT Langevin MD at the reference temperatures, every ``ref_every``-th
frame labelled with EMT energies and forces, then a time-limited training of the demo's
model configuration.  The potential is strictly local (r_max 4.5 Å), so one model serves
both slab sizes: their surfaces, interface and bulk-like layers are the same environments.

    python data/demo/make_model.py [--seconds 1200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch
from atomtwin.engines.studies.demo import DemoConfig, build_slab, emt_frames, train_model

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=1200.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    from ase.io import write

    small = replace(DemoConfig.small(), ref_steps=400, ref_every=10)
    full = replace(DemoConfig(), ref_steps=400, ref_every=40)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = emt_frames(build_slab(small), small, progress=True) + emt_frames(build_slab(full), full, progress=True)
        write(tmp / "reference.extxyz", frames)
        info = train_model(full, tmp, [str(tmp / "reference.extxyz")], args.seconds)
        shutil.copy(tmp / "model" / "best.ckpt", HERE / "model.ckpt")
        shutil.copy(tmp / "model" / "metrics.csv", HERE / "model_metrics.csv")
    info = {k: v for k, v in info.items() if k not in ("best_checkpoint", "last_checkpoint")}
    info.update({"reference_frames": len(frames), "train_seconds": args.seconds,
                 "reference": {"small": asdict(small), "full": asdict(full)}})
    (HERE / "model.json").write_text(json.dumps(info, indent=1, default=float))
    print(info)


if __name__ == "__main__":
    main()
