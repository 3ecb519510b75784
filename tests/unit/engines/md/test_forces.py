"""Force providers and the Verlet list against exact references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.neighborlist import primitive_neighbor_list
from ase.stress import voigt_6_to_full_3x3_stress
from atomtwin.engines.md.forces import (
    ASEForceProvider,
    DifferenceProvider,
    PairForceProvider,
    SumProvider,
)
from atomtwin.engines.md.neighbors import half_pairs
from atomtwin.engines.md.state import state_from_atoms

SIG, EPS = 3.405, 0.0104


def _argon(rep=2, seed=0, shear=0.7):
    a = bulk("Ar", "fcc", a=5.3, cubic=True).repeat((rep, rep, rep))
    a.rattle(0.15, seed=seed)
    a.cell[0, 1] = shear  # triclinic: exercises the image shifts
    return state_from_atoms(a)


def test_pair_lj_matches_ase_forces_and_stress():
    # no switch (r_on = r_cut): the same truncated LJ as ASE's; the forces/stress do not
    # depend on ASE's energy shift, so they must agree to rounding (1e-10 eV/Å)
    s = _argon()
    rc = 2.5 * SIG
    p = PairForceProvider("lj", {"Ar": (EPS, SIG)}, r_cut=rc, r_on=rc)
    r = p.compute(s.positions, s.cell, s.pbc, s.species, stress=True)
    from ase import Atoms

    a = Atoms(s.species, positions=s.positions.numpy(), cell=s.cell.numpy(), pbc=True)
    a.calc = LennardJones(sigma=SIG, epsilon=EPS, rc=rc, smooth=False)
    np.testing.assert_allclose(r.forces.numpy(), a.get_forces(), atol=1e-10)
    np.testing.assert_allclose(r.stress.numpy(), voigt_6_to_full_3x3_stress(a.get_stress()), atol=1e-12)


@pytest.mark.parametrize("kind,params,part", [
    ("lj", {"Ar": (EPS, SIG)}, "full"),
    ("morse", {"Ar": (0.012, 1.3, 3.8)}, "short"),
    ("lj", {"Ar": (EPS, SIG)}, "long"),
])
def test_forces_and_stress_are_energy_derivatives(kind, params, part):
    # central differences, h = 1e-4 Å: truncation error ~h^2 |E'''| ~ 1e-9 eV/Å, far below 1e-6
    s = _argon(seed=3)
    p = PairForceProvider(kind, params, r_cut=8.0, r_on=6.5, part=part, split=(4.0, 5.5))
    r = p.compute(s.positions, s.cell, s.pbc, s.species, stress=True)
    h = 1e-4
    for atom, ax in [(0, 0), (5, 1), (17, 2)]:
        e = []
        for sgn in (1, -1):
            x = s.positions.clone()
            x[atom, ax] += sgn * h
            e.append(p.compute(x, s.cell, s.pbc, s.species).energy)
        assert abs(-(e[0] - e[1]) / (2 * h) - float(r.forces[atom, ax])) < 1e-6
    # stress = (1/V) dE/d(strain), symmetric strain on positions and cell
    vol = float(torch.linalg.det(s.cell))
    for a, b in [(0, 0), (0, 1), (2, 2)]:
        e = []
        for sgn in (1, -1):
            eps = torch.zeros(3, 3, dtype=torch.float64)
            eps[a, b] += sgn * h / 2
            eps[b, a] += sgn * h / 2
            m = torch.eye(3, dtype=torch.float64) + eps
            e.append(p.compute(s.positions @ m, s.cell @ m, s.pbc, s.species).energy)
        assert abs((e[0] - e[1]) / (2 * h) / vol - float(r.stress[a, b])) < 1e-8


def test_short_plus_long_is_full():
    # the split weights S and 1 - S sum to one pair by pair: equal to rounding
    s = _argon(seed=5)
    kw = dict(r_cut=8.0, r_on=6.5, split=(4.0, 5.5))
    parts = {k: PairForceProvider("lj", {"Ar": (EPS, SIG)}, part=k, **kw) for k in ("full", "short", "long")}
    res = {k: p.compute(s.positions, s.cell, s.pbc, s.species) for k, p in parts.items()}
    assert abs(res["short"].energy + res["long"].energy - res["full"].energy) < 1e-12
    torch.testing.assert_close(res["short"].forces + res["long"].forces, res["full"].forces, atol=1e-13, rtol=0)
    d = DifferenceProvider(parts["full"], parts["short"]).compute(s.positions, s.cell, s.pbc, s.species)
    torch.testing.assert_close(d.forces, res["long"].forces, atol=1e-13, rtol=0)
    sp = SumProvider(parts["short"], parts["long"])
    r = sp.compute(s.positions, s.cell, s.pbc, s.species, stress=True)
    full = parts["full"].compute(s.positions, s.cell, s.pbc, s.species, stress=True)
    assert abs(r.energy - full.energy) < 1e-12 and sp.species == ("Ar",)
    torch.testing.assert_close(r.forces, full.forces, atol=1e-13, rtol=0)
    torch.testing.assert_close(r.stress, full.stress, atol=1e-15, rtol=0)


@pytest.mark.parametrize("method", ["dense", "cells"])
def test_half_pairs_match_ase_neighbor_list(method):
    # every unordered pair (with its image) exactly once: ASE's full list has each twice.
    # r = 7 Å exceeds half the 10.6 Å cell: atoms see their own images (i == j pairs)
    s = _argon(seed=7, shear=1.3)
    r = 7.0
    i, j, shift = half_pairs(s.positions + 20.0, s.cell, s.pbc, r, method=method)  # unwrapped
    vec = (s.positions[j] - s.positions[i] + shift @ s.cell).norm(dim=1)
    ii, _, dd = primitive_neighbor_list("ijd", s.pbc, s.cell.numpy(), s.positions.numpy(), r)
    assert len(i) * 2 == len(ii)
    np.testing.assert_allclose(np.sort(np.repeat(vec.numpy(), 2)), np.sort(dd), atol=1e-10)


def test_verlet_list_reuse_is_exact_and_rebuilds_when_needed(rng):
    s = _argon(seed=9)
    p = PairForceProvider("lj", {"Ar": (EPS, SIG)}, r_cut=8.0, skin=0.6)
    p.compute(s.positions, s.cell, s.pbc, s.species)
    moved = s.positions + torch.as_tensor(rng.uniform(-0.1, 0.1, (s.n_atoms, 3)))  # < skin/2
    reused = p.compute(moved, s.cell, s.pbc, s.species)
    fresh = PairForceProvider("lj", {"Ar": (EPS, SIG)}, r_cut=8.0, skin=0.6).compute(moved, s.cell, s.pbc, s.species)
    assert p.nlist.n_builds == 1
    torch.testing.assert_close(reused.forces, fresh.forces, atol=1e-13, rtol=0)
    p.compute(s.positions + 0.35 * torch.eye(3, dtype=torch.float64)[0], s.cell * 1.01, s.pbc, s.species)
    assert p.nlist.n_builds == 2  # displacement + strain beyond the skin: rebuilt


def test_unknown_species_is_a_clear_error():
    s = _argon()
    p = PairForceProvider("lj", {"Ne": (0.003, 2.8)}, r_cut=6.0)
    with pytest.raises(ValueError, match=r"does not know species \['Ar'\]"):
        p.compute(s.positions, s.cell, s.pbc, s.species)


def test_ase_provider_reset_reproduces_bitwise():
    from ase.calculators.emt import EMT

    a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    a.rattle(0.05, seed=1)
    s = state_from_atoms(a)
    p = ASEForceProvider(EMT())
    r1 = p.compute(s.positions, s.cell, s.pbc, s.species, stress=True)
    p.reset()
    r2 = p.compute(s.positions, s.cell, s.pbc, s.species, stress=True)
    assert torch.equal(r1.forces, r2.forces) and r1.energy == r2.energy
    a.calc = EMT()
    np.testing.assert_allclose(r1.forces.numpy(), a.get_forces(), atol=1e-12)
