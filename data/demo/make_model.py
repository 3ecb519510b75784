"""Make the potential the demo ships: ``model.ckpt`` (a model file: EMA weights and metadata,
no optimizer state) with ``model.json`` (validation metrics, reference data, configuration)
and ``model_metrics.csv`` (the training curve) beside it.

Exactly the demo's own stages 1-3 (``atomtwin.engines.studies.demo``): the Pd | Au slab at
both demo sizes (54 and 160 atoms), EMT Langevin MD at the reference temperatures, every
``ref_every``-th frame labelled with EMT energies and forces, then an epoch-bounded training
of the demo's model configuration (cosine schedule over ``--epochs``; no wall-clock limit).
The potential is strictly local (r_max 4.5 Å), so one model serves both slab sizes: their
surfaces, interface and bulk-like layers are the same environments.

Seeded and run on ``--threads`` threads (default 1), the training is deterministic on the
same versions and thread count: a rerun writes the same bytes (``sha256sum model.ckpt``
against ``data/SHA256SUMS``; update the manifest when the model is deliberately remade).

    OMP_NUM_THREADS=1 python data/demo/make_model.py [--epochs 92] [--out data/demo]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch
from atomtwin.engines.mlip.model import export_model
from atomtwin.engines.studies.demo import DemoConfig, build_slab, emt_frames, train_model

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=92)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from ase.io import write

    small = replace(DemoConfig.small(), ref_steps=400, ref_every=10)
    full = replace(DemoConfig(), ref_steps=400, ref_every=40)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = emt_frames(build_slab(small), small, progress=True) + emt_frames(build_slab(full), full, progress=True)
        write(tmp / "reference.extxyz", frames)
        info = train_model(full, tmp, [str(tmp / "reference.extxyz")], args.epochs)
        reference = {"small": asdict(small), "full": asdict(full)}
        export_model(tmp / "model" / "best.ckpt", args.out / "model.ckpt",
                     {"made_by": "data/demo/make_model.py", "epochs": args.epochs,
                      "threads": args.threads, "reference_frames": len(frames), "reference": reference})
        shutil.copy(tmp / "model" / "metrics.csv", args.out / "model_metrics.csv")
    info = {k: v for k, v in info.items() if k not in ("best_checkpoint", "last_checkpoint")}
    info.update({"reference_frames": len(frames), "epochs": args.epochs, "reference": reference})
    (args.out / "model.json").write_text(json.dumps(info, indent=1, default=float))
    print(info)


if __name__ == "__main__":
    main()
