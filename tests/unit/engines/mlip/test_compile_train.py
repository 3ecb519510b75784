"""torch.compile of a full force-matching training step (forward, force backward and the
double backward for the weight gradients) is ONE graph and gives the eager loss and
gradients.

CI runs the dynamo + aot_autograd trace with the ``aot_eager`` backend (seconds); the
inductor backend (a cold compile of the double-backward graph takes minutes on 2 cores)
is checked by ``measure_speedup`` in tests/benchmarks/bench_inference.py --train, which
reports the gradient difference next to the speedup.

Tolerance: float64; the traced graph runs decomposed ops in possibly another order:
1e-10 relative to the largest entry (rounding ~1e-14; a missing term would be O(1)).
"""

from __future__ import annotations

import torch
from atomtwin.engines.mlip.compile import example_graph
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.model import build_model
from atomtwin.engines.mlip.train_compile import make_train_step


def test_compiled_train_step_is_one_graph_and_equals_eager():
    torch.manual_seed(0)
    # one layer, minimal widths: the traced graph (what dynamo/aot_autograd spend their time
    # on) still holds the pair track, the tensor contraction and the double backward
    m = build_model(ModelConfig(architecture="allegro", species=("Si", "O"), r_max=3.0, num_layers=1,
                                lmax=1, mul=2, latent=4, mlp_hidden=4, num_basis=2, dtype="float64"))
    batches = []
    for n, seed in ((9, 1), (14, 2)):  # two sizes: the dynamic graph is reused
        b = example_graph(m, n, seed=seed, n_struct=2)
        g = torch.Generator().manual_seed(seed)
        b["ref_energy"] = torch.randn(2, generator=g, dtype=torch.float64)
        b["ref_forces"] = torch.randn(b["pos"].shape, generator=g, dtype=torch.float64)
        batches.append(b)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = make_train_step(m, compile=False)
    comp = make_train_step(m, compile=True, backend="aot_eager")
    for b in batches:
        (le, ge), (lc, gc) = eager(b), comp(b)
        assert abs(float(le - lc)) <= 1e-10 * abs(float(le))
        n_grads = 0
        for a, c in zip(ge, gc, strict=True):
            if a is not None:
                assert (a - c).abs().max() <= 1e-10 * a.abs().max()
                n_grads += 1
        assert n_grads == len(list(m.parameters()))  # every weight got a gradient
    counters = torch._dynamo.utils.counters
    assert sum(counters["graph_break"].values()) == 0, dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1  # one graph for both sizes
