"""Peer comparison of accuracy, each stack trained by its own trainer: our NequIP- and
Allegro-style models by ``atomtwin train``, nequip / nequip-allegro by ``nequip-train``
(Lightning + hydra), at matched capacity (parameters within 1 %), on the same EMT Cu split
and with the same settings (see tests/benchmarks/bench_mlip_convergence.py).

This is the benchmark at a CI size: 30 training and 10 validation frames, at most 150 epochs
(about 80 s on two cores).  Trained to convergence (100 / 25 frames, early stopping, README
Performance section) the best validation force MAE of ours is 0.95x (NequIP) and 0.98x
(Allegro) the peers'; at this size it was 0.64x and 0.80x on this machine.  Criterion: ours
<= 1.2x the peer's best validation force MAE, and both far below the 0.52 eV/Å of a
zero-force predictor.  A model or trainer that learnt worse than the peer by 20 % fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("nequip")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.peer
@pytest.mark.slow
def test_accuracy_within_20_percent_of_nequip_trained_by_its_own_trainer(tmp_path):
    pytest.importorskip("allegro")
    import bench_mlip_convergence as bench

    rows = bench.compare(tmp_path, ["nequip", "allegro"], epochs=150, patience=30,
                         minutes=10.0, n_train=30, n_val=10)
    by = {(r["arch"], r["stack"]): r for r in rows}
    for arch in ("nequip", "allegro"):
        ours, peer = by[(arch, "ours")], by[(arch, "peer")]
        assert "error" not in ours and "error" not in peer, (ours, peer)
        assert abs(ours["params"] / peer["params"] - 1) <= 0.05
        assert ours["best_force_mae"] < 0.05 and peer["best_force_mae"] < 0.05, (ours, peer)
        assert ours["best_force_mae"] <= 1.2 * peer["best_force_mae"], (ours, peer)
