"""torch.compile of a full force-matching training step (forward, force backward and the
double backward for the weight gradients) gives the eager loss and gradients.

Tolerance: float64, same operations reassociated by inductor: 1e-9 relative to the
largest gradient entry (rounding is ~1e-14; a missing double-backward term would be O(1)).
"""

from __future__ import annotations

import pytest
import torch

from engines.mlip.compile import example_graph
from engines.mlip.config import ModelConfig
from engines.mlip.model import build_model
from engines.mlip.train_compile import make_train_step


@pytest.mark.slow
def test_compiled_train_step_equals_eager():
    torch.manual_seed(0)
    m = build_model(ModelConfig(architecture="allegro", species=("Si", "O"), r_max=3.0, num_layers=1,
                                lmax=1, mul=4, latent=8, mlp_hidden=8, num_basis=4, dtype="float64"))
    batches = []
    for n, seed in ((9, 1),):
        b = example_graph(m, n, seed=seed, n_struct=2)
        g = torch.Generator().manual_seed(seed)
        b["ref_energy"] = torch.randn(2, generator=g, dtype=torch.float64)
        b["ref_forces"] = torch.randn(b["pos"].shape, generator=g, dtype=torch.float64)
        batches.append(b)
    eager, comp = make_train_step(m, compile=False), make_train_step(m, compile=True)
    for b in batches:
        (le, ge), (lc, gc) = eager(b), comp(b)
        assert abs(float(le - lc)) <= 1e-12 * abs(float(le))
        for a, c in zip(ge, gc, strict=True):
            if a is not None:
                assert (a - c).abs().max() <= 1e-9 * a.abs().max()
