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
