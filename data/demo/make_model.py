"""Make the potentials the demo ships: ``model.ckpt`` (default sizes) and ``model_small.ckpt``
(the test-suite sizes), with a JSON of their validation metrics beside each.

Exactly the demo's own stages 1-3 (``engines.demo``): the Pd | Au slab, EMT Langevin MD
at the reference temperatures, every ``ref_every``-th frame labelled with EMT energies and
forces, then a time-limited training of the demo's model configuration.

    python data/demo/make_model.py [--seconds 900] [--only small|full]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from engines.demo import DemoConfig, build_slab, emt_frames, train_model

HERE = Path(__file__).resolve().parent


def make(cfg: DemoConfig, name: str, seconds: float) -> dict:
    from ase.io import write

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = emt_frames(build_slab(cfg), cfg, progress=True)
        write(tmp / "reference.extxyz", frames)
        info = train_model(cfg, tmp, [str(tmp / "reference.extxyz")], seconds)
        shutil.copy(tmp / "model" / "best.ckpt", HERE / f"{name}.ckpt")
        shutil.copy(tmp / "model" / "metrics.csv", HERE / f"{name}_metrics.csv")
    info = {k: v for k, v in info.items() if k not in ("best_checkpoint", "last_checkpoint")}
    info.update({"reference_frames": len(frames), "train_seconds": seconds, "config": cfg.__dict__})
    (HERE / f"{name}.json").write_text(json.dumps(info, indent=1, default=float))
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=900.0)
    ap.add_argument("--only", choices=("small", "full"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.only in (None, "small"):
        print(make(DemoConfig.small(), "model_small", args.seconds / 3))
    if args.only in (None, "full"):
        print(make(DemoConfig(), "model", args.seconds))


if __name__ == "__main__":
    main()
