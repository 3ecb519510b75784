"""A Lightning callback for nequip's trainer (``nequip-train``): one CSV row per validation
epoch with the wall time since training started and every ``val0_epoch/*`` metric, so that
its learning curve can be drawn against ours (``metrics.csv`` of ``atomtwin train``) on the
same axes.  Used by ``tests/benchmarks/bench_mlip_convergence.py`` (hydra instantiates it by
name; ``tests/support`` is on the path)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class EpochLog(Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.t0: float | None = None
        self.keys: list[str] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # after the epoch's validation loop and the module's own metric logging
        if trainer.sanity_checking or self.t0 is None:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val0_epoch/")}
        row = {"epoch": trainer.current_epoch + 1, "wall_s": time.perf_counter() - self.t0,
               "lr": trainer.optimizers[0].param_groups[0]["lr"], **m}
        new = self.keys is None
        if new:
            self.keys = list(row)
        with open(self.path, "a" if not new else "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.keys, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
