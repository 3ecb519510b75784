"""Bulk structures of the Li | Li6PS5Cl study: compositions, space groups, distances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from ase.units import _amu, _hbar, _k
from atomtwin.engines.studies.li_argyrodite.structures import (
    argyrodite,
    bcc_li,
    einstein_sigma,
    li2s,
    li3p,
    licl,
    min_distances,
    rattle,
    reference_phases,
)
from atomtwin.toolkit.errors import InputError

OXIDATION = {"Li": 1, "P": 5, "S": -2, "Cl": -1}


def _spacegroup(atoms, symprec=1e-3):
    spglib = pytest.importorskip("spglib")
    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():  # spglib 2.x: DeprecationWarning on error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        return spglib.get_symmetry_dataset(cell, symprec=symprec).number


def _charge(atoms):
    """Formal charge: P is P(V) in thiophosphates, phosphide P(-III) without S."""
    sym = atoms.get_chemical_symbols()
    ox = dict(OXIDATION, P=5 if "S" in sym else -3)
    return sum(ox[s] for s in sym)


def test_argyrodite_composition_charge_and_framework_symmetry():
    at = argyrodite()
    assert len(at) == 52
    assert at.symbols.formula.count() == {"Li": 24, "P": 4, "S": 20, "Cl": 4}
    assert _charge(at) == 0  # Li6 P(V) S5 Cl: 6 + 5 - 10 - 1
    # the anion framework (P, S, Cl) keeps F-43m; only the Li half-occupation lowers it
    frame = at[[s != "Li" for s in at.get_chemical_symbols()]]
    assert _spacegroup(frame) == 216
    np.testing.assert_allclose(at.cell.lengths(), 9.85)


def test_argyrodite_distances():
    at = argyrodite()
    sym = np.array(at.get_chemical_symbols())
    i, j, d = neighbor_list("ijd", at, 2.6)
    ps = (sym[i] == "P") & (sym[j] == "S")
    # every P has exactly four S at a*sqrt(3)*(0.62-0.5) = 2.047 Å (PS4; measured 2.03-2.05)
    assert np.bincount(i[ps], minlength=len(at))[sym == "P"].tolist() == [4, 4, 4, 4]
    np.testing.assert_allclose(d[ps], 9.85 * np.sqrt(3) * 0.12, atol=1e-6)
    md = min_distances(at)
    # Li-S >= 2.3 Å and Li-Cl >= 2.5 Å (sums of ionic radii: 0.59 + 1.84, 0.59 + 1.81 Å,
    # less a 0.15 Å tolerance for the rounded Wyckoff parameters)
    assert md["Li-S"] >= 2.3
    assert md["Cl-Li"] >= 2.5
    # one Li per 48h pair: the pair partners sit 1.77 Å apart, the next Li-Li distance in
    # the cage is 2.29 Å; a doubly occupied pair would show up below 2.0 Å
    assert md["Li-Li"] > 2.0
    # no Li inside a PS4: P's nearest Li is beyond the S shell
    assert md["Li-P"] > 3.0
    # each 48h site is a tetrahedron of 3 S + 1 Cl (2.42-2.60 Å, next anion > 3.5 Å), so
    # every Li has 4 anions within 2.9 Å, one of them Cl: 24 Li-Cl contacts, 6 per Cl
    i, j, d = neighbor_list("ijd", at, 2.9)
    li_anion = (sym[i] == "Li") & np.isin(sym[j], ["S", "Cl"])
    assert set(np.bincount(i[li_anion], minlength=len(at))[sym == "Li"]) == {4}
    li_cl = (sym[i] == "Cl") & (sym[j] == "Li")
    assert np.bincount(i[li_cl], minlength=len(at))[sym == "Cl"].sum() == 24


def test_argyrodite_deterministic_and_scaled():
    a1, a2 = argyrodite(seed=3), argyrodite(seed=3)
    np.testing.assert_array_equal(a1.positions, a2.positions)
    big = argyrodite("chgnet")
    np.testing.assert_allclose(big.cell.lengths(), 10.0)
    with pytest.raises(InputError):
        argyrodite("nonsense")


@pytest.mark.parametrize(
    ("builder", "number", "formula", "pair", "nn"),
    [
        # nearest neighbours from the lattice: bcc a*sqrt3/2, antifluorite a*sqrt3/4,
        # rocksalt a/2, Na3As-type Li(2b)-P in the basal plane a/sqrt3
        (bcc_li, 229, {"Li": 2}, "Li-Li", 3.51 * np.sqrt(3) / 2),
        (li2s, 225, {"Li": 8, "S": 4}, "Li-S", 5.71 * np.sqrt(3) / 4),
        (licl, 225, {"Li": 4, "Cl": 4}, "Cl-Li", 5.13 / 2),
        (li3p, 194, {"Li": 6, "P": 2}, "Li-P", 4.27 / np.sqrt(3)),
    ],
)
def test_reference_phases(builder, number, formula, pair, nn):
    at = builder()
    assert _spacegroup(at) == number
    assert at.symbols.formula.count() == formula
    if len(set(at.get_chemical_symbols())) > 1:
        assert _charge(at) == 0
    assert min_distances(at)[pair] == pytest.approx(nn, abs=1e-6)


def test_reference_phases_are_large_enough():
    ph = reference_phases(min_atoms=50)
    assert set(ph) == {"Li", "Li6PS5Cl", "Li2S", "Li3P", "LiCl"}
    for name, at in ph.items():
        assert len(at) >= 50, name
        if name != "Li":
            assert _charge(at) == 0, name


def test_einstein_sigma_limits():
    m, theta = 6.94, 300.0
    omega = _k * theta / _hbar
    classical = np.sqrt(_k * 3000.0 / (m * _amu * omega**2)) * 1e10
    zero_point = np.sqrt(_hbar / (2 * m * _amu * omega)) * 1e10
    # coth(x) = 1/x + x/3 + ...: at T = 10 theta the quantum amplitude exceeds the
    # classical one by (1 + x^2/3)^(1/2) - 1 ~ 0.04 % (x = 0.05)
    assert einstein_sigma(m, 3000.0, theta) == pytest.approx(classical, rel=1e-3)
    assert einstein_sigma(m, 0.0, theta) == pytest.approx(zero_point, rel=1e-12)
    with pytest.raises(InputError):
        einstein_sigma(m, -1.0)


def test_rattle_amplitude_and_seed():
    at = li2s().repeat(6)  # 2592 atoms
    r1 = rattle(at, 400.0, seed=7)
    r2 = rattle(at, 400.0, seed=7)
    np.testing.assert_array_equal(r1.positions, r2.positions)
    u = r1.positions - at.positions
    for el in ("Li", "S"):
        sel = np.array(at.get_chemical_symbols()) == el
        want = einstein_sigma(6.94 if el == "Li" else 32.06, 400.0)
        got = np.sqrt(np.mean(u[sel] ** 2))
        # relative standard error of an RMS from n Gaussian samples ~ 1/sqrt(2n):
        # n >= 2592 -> 1.4 %; 5 % is > 3.5 sigma (masses from ASE differ by < 0.1 %)
        assert got == pytest.approx(want, rel=0.05), el
    assert not np.allclose(rattle(at, 400.0, seed=8).positions, r1.positions)
