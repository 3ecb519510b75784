"""The native MLIP force provider against the ASE route (atomtwin.engines.mlip.Calculator) on the
same model and structure, and the skin-reused neighbour list against fresh builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.stress import voigt_6_to_full_3x3_stress
from atomtwin.engines.md.mlip_provider import MLIPForceProvider
from atomtwin.engines.md.state import state_from_atoms
from atomtwin.engines.mlip import Calculator, ModelConfig, build_model


@pytest.fixture(scope="module")
def model():
    # a float64 NequIP-style model with random weights: equality tests need no training,
    # and float64 makes "equal to rounding" a 1e-10 statement.  Two species, so the
    # species -> atom_types mapping is exercised.
    torch.manual_seed(0)
    cfg = ModelConfig(architecture="nequip", species=("Au", "Pd"), r_max=4.0, num_layers=2,
                      lmax=1, mul=4, num_basis=6, radial_hidden=8, radial_layers=1,
                      avg_num_neighbors=20.0, dtype="float64")
    m = build_model(cfg)
    m.set_statistics(torch.tensor([-3.0, -3.5]), torch.tensor([0.5, 0.7]))
    return m


def _alloy(seed=0, shear=0.4):
    a = bulk("Pd", "fcc", a=3.95, cubic=True).repeat((2, 2, 2))
    rng = np.random.default_rng(seed)
    sym = np.array(a.get_chemical_symbols())
    sym[rng.permutation(len(a))[:12]] = "Au"
    a.set_chemical_symbols(sym.tolist())
    a.rattle(0.1, seed=seed)
    a.cell[0, 1] = shear  # triclinic: image shifts through a sheared cell
    return a


def _reference(model, atoms):
    atoms = atoms.copy()
    atoms.calc = Calculator(model)
    return (atoms.get_potential_energy(), atoms.get_forces(),
            voigt_6_to_full_3x3_stress(atoms.get_stress()))


def _edges_within(atoms, r):
    from ase.neighborlist import neighbor_list

    return len(neighbor_list("i", atoms, r))


def test_provider_equals_ase_calculator(model):
    # the same float64 model on the same graph: energy, forces and stress agree to rounding
    # (summation order of the same edges: |E| ~ 100 eV x 1e-15 per term -> 1e-10 is safe)
    a = _alloy()
    s = state_from_atoms(a)
    p = MLIPForceProvider(model, skin=0.8)
    r = p.compute(s.positions + 7.3, s.cell, s.pbc, s.species, stress=True)  # unwrapped positions
    e, f, st = _reference(model, a)
    assert abs(r.energy - e) < 1e-10
    np.testing.assert_allclose(r.forces.numpy(), f, atol=1e-10)
    np.testing.assert_allclose(r.stress.numpy(), st, atol=1e-12)
    assert r.forces.dtype == torch.float64  # the MD state's dtype


def test_skin_reuse_is_exact_while_pairs_cross_the_cutoff(model, rng):
    # the list built at x0 with r_max + skin stays exact while every atom moved < skin/2;
    # the displacement changes which pairs lie inside r_max (checked), so a list without
    # the skin shell (or a missing r < r_max filter) would give different forces
    a = _alloy(seed=2)
    s = state_from_atoms(a)
    p = MLIPForceProvider(model, skin=0.8)
    p.compute(s.positions, s.cell, s.pbc, s.species)
    u = rng.uniform(-0.2, 0.2, (len(a), 3))  # |u| < 0.35 < skin/2 = 0.4
    b = a.copy()
    b.positions = a.positions + u
    assert _edges_within(b, model.r_max) != _edges_within(a, model.r_max)
    r = p.compute(s.positions + torch.as_tensor(u), s.cell, s.pbc, s.species, stress=True)
    assert p.nlist.n_builds == 1
    e, f, st = _reference(model, b)
    assert abs(r.energy - e) < 1e-10
    np.testing.assert_allclose(r.forces.numpy(), f, atol=1e-10)
    np.testing.assert_allclose(r.stress.numpy(), st, atol=1e-12)
    # beyond skin/2 the list is rebuilt (and the result is still the calculator's)
    u2 = np.zeros_like(u)
    u2[3] = [0.45, 0.0, 0.0]
    r2 = p.compute(s.positions + torch.as_tensor(u2), s.cell, s.pbc, s.species)
    assert p.nlist.n_builds == 2
    c = a.copy()
    c.positions = a.positions + u2
    np.testing.assert_allclose(r2.forces.numpy(), _reference(model, c)[1], atol=1e-10)


def test_forces_are_the_energy_gradient(model):
    # central differences, h = 1e-4 Å: error ~ h^2 |E'''| ~ 1e-8 eV/Å in float64
    a = _alloy(seed=4)
    s = state_from_atoms(a)
    p = MLIPForceProvider(model, skin=0.5)
    f = p.compute(s.positions, s.cell, s.pbc, s.species).forces
    h = 1e-4
    for atom, ax in [(0, 0), (9, 1), (30, 2)]:
        e = []
        for sgn in (1, -1):
            x = s.positions.clone()
            x[atom, ax] += sgn * h
            e.append(p.compute(x, s.cell, s.pbc, s.species).energy)
        assert abs(-(e[0] - e[1]) / (2 * h) - float(f[atom, ax])) < 1e-6


def test_unknown_species_and_checkpoint_path(model, tmp_path):
    from atomtwin.engines.mlip import save_checkpoint

    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    s = state_from_atoms(a)
    save_checkpoint(tmp_path / "m.ckpt", model)
    p = MLIPForceProvider(tmp_path / "m.ckpt")
    assert p.species == ("Au", "Pd") and p.r_max == 4.0
    with pytest.raises(ValueError, match=r"does not know species \['Cu'\]"):
        p.compute(s.positions, s.cell, s.pbc, s.species)
