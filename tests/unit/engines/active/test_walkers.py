"""Walkers: linear temperature / pressure ramps over the run, one integrator per ensemble."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from atomtwin.engines.active.config import WalkerConfig  # noqa: E402
from atomtwin.engines.active.walkers import integrator_at  # noqa: E402
from atomtwin.engines.md import Langevin, NoseHooverChain, StochasticCellRescaling  # noqa: E402


def test_ramps_are_linear_in_the_step():
    wc = WalkerConfig(
        structure="s.xyz",
        ensemble="npt",
        temperature=300,
        temperature_end=1500,
        pressure=0.0,
        pressure_end=0.01,
        steps=1000,
    )
    for step, t, p in ((0, 300, 0.0), (500, 900, 0.005), (1000, 1500, 0.01), (1200, 1500, 0.01)):
        integ = integrator_at(wc, step)
        assert isinstance(integ, StochasticCellRescaling)
        assert integ.temperature == pytest.approx(t) and integ.pressure == pytest.approx(p)


def test_ensembles():
    base = {"structure": "s.xyz", "temperature": 500}
    assert isinstance(integrator_at(WalkerConfig(**base), 0), Langevin)
    nhc = integrator_at(WalkerConfig(**base, ensemble="nhc", temperature_end=700, steps=10), 5)
    assert isinstance(nhc, NoseHooverChain) and nhc.temperature == pytest.approx(600)


class _Fixed:
    """An estimator whose raw per-atom uncertainty is always 1 (the MD runs with a model)."""

    kind = "fixed"

    def __init__(self, model):
        self.models = [model]
        self.model = model

    def evaluate(self, graphs):
        import numpy as np
        from atomtwin.engines.active.uncertainty import Prediction

        return [
            Prediction(0.0, np.zeros((len(g["pos"]), 3)), np.ones(len(g["pos"]))) for g in graphs
        ]


def test_min_gap_holds_uncertainty_triggers_back_and_the_observer_sees_every_check():
    """sigma (1 eV/Å) is above the threshold at every check: without a quiet period the
    first check (step 5) triggers; with ``quiet_until=12`` the checks at 5 and 10 pass and
    step 15 triggers, the walker continuing from step 10 (the last check it passed)."""
    import torch
    from ase.build import bulk
    from atomtwin.engines.active.walkers import advance
    from atomtwin.engines.md.state import state_from_atoms
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.model import build_model

    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            r_max=3.0,
            num_layers=1,
            lmax=1,
            mul=2,
            num_basis=2,
            radial_hidden=4,
            radial_layers=1,
            species=["Cu"],
        )
    )
    wc = WalkerConfig(structure="s.xyz", temperature=300, steps=40, timestep=0.001)
    st = state_from_atoms(bulk("Cu", "fcc", a=3.61, cubic=True), temperature_K=300, seed=0)
    est, cal = _Fixed(model), (lambda s: s)
    seen = []
    obs = lambda w, step, fr, sigma: seen.append((step, sigma))  # noqa: E731
    safe, trig, _ = advance(0, wc, st, est, cal, 0.5, 5, 50.0, observer=obs)
    assert trig.step == 5 and safe.step == 0 and seen == [(5, 1.0)]
    seen.clear()
    safe, trig, _ = advance(0, wc, st, est, cal, 0.5, 5, 50.0, quiet_until=12, observer=obs)
    assert trig.step == 15 and safe.step == 10 and [s for s, _ in seen] == [5, 10, 15]


def test_atoms_closer_than_min_distance_are_a_blow_up():
    """The closest pair is measured through periodic images (equal to ASE's minimum-image
    distance), and a check that finds a pair closer than ``min_distance`` returns a
    "too close" trigger and the last safe state."""
    import numpy as np
    import torch
    from ase.build import bulk
    from atomtwin.engines.active.walkers import _closest, advance, state_frame
    from atomtwin.engines.md.state import state_from_atoms
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.data import to_graph
    from atomtwin.engines.mlip.model import build_model

    a = bulk("Cu", "fcc", a=3.61, cubic=True)
    a.positions[0] -= [0.4, 0.3, 0.2]  # towards its periodic neighbours across the cell
    a.wrap()
    d = a.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    st = state_from_atoms(a, temperature_K=300, seed=0)
    g = to_graph(state_frame(st), ["Cu"], 3.0)
    assert abs(_closest(g) - d.min()) < 1e-9
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            r_max=3.0,
            num_layers=1,
            lmax=1,
            mul=2,
            num_basis=2,
            radial_hidden=4,
            radial_layers=1,
            species=["Cu"],
        )
    )
    wc = WalkerConfig(structure="s.xyz", temperature=300, steps=40, timestep=0.0001)
    safe, trig, _ = advance(
        0, wc, st, _Fixed(model), lambda s: s, 5.0, 5, 50.0, min_distance=d.min() + 0.2
    )
    assert trig.reason == "too close" and trig.step == 5 and safe.step == 0
    _, trig, _ = advance(
        0, wc, st, _Fixed(model), lambda s: s, 5.0, 5, 50.0, min_distance=d.min() - 0.2
    )
    assert trig is None  # sigma 1 < 5 everywhere: the walker finishes
