"""Reference calls: every kind of failure becomes a logged outcome; repeated ones a named error."""

from __future__ import annotations

import time

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from atomtwin.engines.active.references import (
    Label,
    Reference,
    ReferenceFailures,
    label_many,
    make_calculator,
)
from atomtwin.toolkit.errors import InputError


class _Bad(Calculator):
    """Fails the way a DFT code does: raises (no SCF convergence), NaN forces, or hangs."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.mode == "raise":
            raise RuntimeError("SCF not converged after 100 iterations")
        if self.mode == "sleep":
            time.sleep(5)
        n = len(self.atoms)
        self.results = {
            "energy": 0.0,
            "forces": np.full((n, 3), np.nan if self.mode == "nan" else 0.0),
        }


@pytest.fixture
def cu():
    return bulk("Cu", "fcc", a=3.61, cubic=True)


def test_a_good_call_labels(cu):
    lab = Reference(EMT())(cu)
    assert lab.ok and lab.forces.shape == (4, 3) and np.isfinite(lab.energy)
    assert Label.from_dict(lab.to_dict()).energy == lab.energy


@pytest.mark.parametrize("mode, text", [("raise", "SCF not converged"), ("nan", "non-finite")])
def test_failures_are_outcomes(cu, mode, text):
    lab = Reference(_Bad(mode))(cu)
    assert not lab.ok and text in lab.error


def test_wall_time_limit(cu):
    t0 = time.perf_counter()
    lab = Reference(_Bad("sleep"), timeout_s=0.3)(cu)
    assert not lab.ok and "ReferenceTimeout" in lab.error
    assert time.perf_counter() - t0 < 3  # interrupted, not waited out


def test_repeated_failures_are_a_named_error(cu):
    ref = Reference(_Bad("raise"), max_consecutive_failures=3)
    ref.record(ref(cu), "a")
    ref.record(Reference(EMT())(cu), "b")  # a success resets the count
    ref.record(ref(cu), "c")
    ref.record(ref(cu), "d")
    with pytest.raises(ReferenceFailures, match="3 times in a row"):
        ref.record(ref(cu), "e")


def test_make_calculator_names_the_problem():
    assert isinstance(make_calculator("emt"), EMT)
    with pytest.raises(InputError, match="module:Class"):
        make_calculator("nonsense")
    with pytest.raises(InputError, match="cannot be imported"):
        make_calculator("no_such_module_xyz:Calc")


def test_label_many_on_a_dask_cluster_keeps_the_order(cu):
    distributed = pytest.importorskip("distributed")
    frames = []
    for k in range(3):
        a = cu.repeat(2)
        a.rattle(0.05, seed=k)
        frames.append(a)
    serial = label_many(Reference(EMT()), frames)
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        par = label_many(Reference(EMT()), frames, client)
    for s, p in zip(serial, par, strict=True):
        # a calculator reused across frames (serial) or fresh (cluster): same forces up to
        # round-off of EMT's neighbour-list bookkeeping
        assert p.ok and np.allclose(s.forces, p.forces, rtol=0, atol=1e-10)
