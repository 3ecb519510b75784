"""Peer comparison of accuracy: after the same optimisation, our NequIP- and Allegro-style
models are within 20 % of nequip 0.19 / nequip-allegro (validation force MAE).

Same EMT Cu data (16 training, 8 validation 32-atom frames), same hyperparameters, same
minimal training loop for both (Adam 5e-3, MSE(E/atom) + MSE(F), the same batches of 4,
150 steps, float32), same per-species shift/scale and neighbour normalisation: see
tests/benchmarks/bench_mlip_accuracy.py (which prints the full table at 300 steps).
nequip's own trainer (Lightning + hydra) is not used, so the comparison is between the
models, not between training stacks.

Criterion (the issue's): ours <= 1.2 x the peer's force MAE.  Training is deterministic
(fixed seeds, CPU); measured on this machine: 0.59x (NequIP) and 0.53x (Allegro), so the
bound is not at the edge of the noise from thread counts or platform rounding.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("nequip")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.peer
@pytest.mark.slow
def test_accuracy_within_20_percent_of_nequip_and_allegro():
    pytest.importorskip("allegro")
    import bench_mlip_accuracy as bench

    rows = bench.compare(steps=150, n_train=16, n_val=8)
    for r in rows:
        # both learned: the zero-force predictor has an MAE of 0.52 eV/Å on these frames
        assert r["ours"]["force_mae"] < 0.2 and r["peer"]["force_mae"] < 0.2, r
        assert r["ratio"] <= 1.2, r
