"""Shared (module-scoped) EMT copper data and small trained committees for the active-learning
tests.  Sizes: 32-atom cells, tiny NequIP models (2 layers, lmax 1, 8 channels), tens of
epochs: seconds, not minutes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

torch = pytest.importorskip("torch")

TINY = dict(r_max=4.0, num_layers=2, lmax=1, mul=8, num_basis=6, radial_hidden=16, radial_layers=1)


@pytest.fixture(scope="session")
def cu_data():
    from _emt_data import emt_frames, slab, vacancy

    torch.set_num_threads(1)
    return {
        "crystal": emt_frames(500.0, 28, 10, seed=1),
        "liquid": emt_frames(4000.0, 30, 20, seed=2),
        "slab": emt_frames(500.0, 4, 10, seed=3, atoms=slab()),
        "vacancy": emt_frames(500.0, 4, 10, seed=4, atoms=vacancy()),
    }


@pytest.fixture(scope="session")
def committee(cu_data):
    """Three independently initialised tiny models trained on 20 crystal frames."""
    from atomtwin.engines.active.fit import fit, new_model
    from atomtwin.engines.active.uncertainty import Committee
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.data import to_graph

    mcfg = ModelConfig(**TINY)
    train = cu_data["crystal"][:20]
    models = []
    for s in range(3):
        m = new_model(mcfg, train, seed=s)
        g = [to_graph(f, m.species, m.r_max) for f in train]
        fit(m, g, epochs=40, lr=1e-2, batch_size=4, seed=s)
        models.append(m)
    return Committee(models), g
