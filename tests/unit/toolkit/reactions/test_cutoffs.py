"""Bond criteria: the covalent-radii table, defaults, overrides, and refusals of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.reactions import (
    BREAK_FACTOR,
    COVALENT_RADII,
    FORM_FACTOR,
    bond_cutoffs,
    hill_formula,
)
from atomtwin.toolkit.reactions.cutoffs import parse_cutoffs

LPSC = ["Li", "P", "S", "Cl"]


def test_radii_match_cordero_as_tabulated_by_ase():
    # ASE's covalent_radii are Cordero et al. 2008 too (sp3 C, low-spin Mn/Fe/Co): our typed
    # table must agree to the 0.01 Å the paper gives
    from ase.data import atomic_numbers, covalent_radii

    for sym, r in COVALENT_RADII.items():
        assert r == pytest.approx(covalent_radii[atomic_numbers[sym]], abs=5e-3), sym


def _get(c, a, b):
    i, j = c.species.index(a), c.species.index(b)
    return c.r_form[i, j], c.r_break[i, j], c.covalent[i, j]


def test_defaults_for_argyrodite_and_organic_pairs():
    c = bond_cutoffs(LPSC + ["C", "H", "O", "N"])
    f, b, cov = _get(c, "P", "S")
    assert f == pytest.approx(FORM_FACTOR * 2.12) and b == pytest.approx(BREAK_FACTOR * 2.12)
    assert cov
    # the PS4 bond (2.05 Å) is inside r_form, the S...S edge of the tetrahedron (3.35 Å) beyond r_break
    assert f > 2.05 and b < 3.3
    # ionic contacts count for coordination, not for species; Li-Li is no bond at all
    for pair in (("Li", "S"), ("Li", "Cl"), ("Li", "P")):
        f, b, cov = _get(c, *pair)
        assert f > 0 and not cov
    assert _get(c, "Li", "Li")[0] == 0
    for pair in (("C", "H"), ("C", "O"), ("O", "H"), ("C", "N"), ("C", "Cl"), ("S", "S")):
        f, b, cov = _get(c, *pair)
        assert cov and 0 < f < b
    # a hydrogen bond H...O (about 1.8 Å) is never a bond
    assert _get(c, "H", "O")[1] < 1.8
    assert c.max_cutoff == pytest.approx(c.r_break.max())
    assert c.r_form.T.tolist() == c.r_form.tolist()


def test_overrides_pairs_covalent_and_no_hysteresis():
    c = bond_cutoffs(LPSC, cutoffs="P-S=2.4,S-Li=2.9:3.3")
    assert _get(c, "P", "S")[:2] == pytest.approx((2.4, 2.4 * BREAK_FACTOR / FORM_FACTOR))
    assert _get(c, "Li", "S")[:2] == pytest.approx((2.9, 3.3))
    c = bond_cutoffs(LPSC, cutoffs={"P-S": (2.3, 2.7)}, pairs="P-S,S-S", covalent=["S-P"])
    assert c.pairs() == ["P-S", "S-S"]
    assert _get(c, "P", "S")[2] and not _get(c, "S", "S")[2]
    assert _get(c, "Li", "S")[0] == 0
    c = bond_cutoffs(LPSC, hysteresis=False, cutoffs={"Li-S": (2.9, 3.3)})
    assert np.array_equal(c.r_form, c.r_break)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"cutoffs": "P-N=2.0"}, "'N'"),
        ({"cutoffs": "P-S=-1"}, "positive"),
        ({"cutoffs": {"P-S": 0}}, "positive"),
        ({"cutoffs": "P-S=2.4:2.0"}, "r_break"),
        ({"cutoffs": "P-S"}, "no value"),
        ({"cutoffs": "PS=2"}, "pair"),
        ({"cutoffs": "P-S=abc"}, "not a distance"),
        ({"pairs": "P-Xx"}, "'Xx'"),
        ({"covalent": "Li-S", "pairs": "P-S"}, "not among"),
        ({"form_factor": 1.3, "break_factor": 1.2}, "break_factor"),
    ],
)
def test_bad_input_names_the_problem_and_the_fix(kwargs, words):
    with pytest.raises(InputError) as err:
        bond_cutoffs(LPSC, **kwargs)
    assert words in str(err.value) and "Fix:" in str(err.value)


def test_element_without_radius_asks_for_a_cutoff():
    with pytest.raises(InputError, match="Fix: give its cutoff"):
        bond_cutoffs(["Ce", "O"])
    c = bond_cutoffs(["Ce", "O"], cutoffs={"Ce-O": 2.7, "Ce-Ce": 4.0}, pairs="Ce-O,Ce-Ce,O-O")
    assert _get(c, "Ce", "O")[0] == 2.7


def test_parse_cutoffs_forms():
    assert parse_cutoffs("S-P=2.4, Li-S=2.9:3.3") == {"P-S": (2.4, None), "Li-S": (2.9, 3.3)}
    assert parse_cutoffs(None) == {}


@pytest.mark.parametrize(
    "counts, formula",
    [
        ({"P": 1, "S": 4}, "PS4"),
        ({"P": 2, "S": 7}, "P2S7"),
        ({"C": 2, "H": 6, "O": 2}, "C2H6O2"),
        ({"N": 1, "C": 5, "H": 14, "O": 1}, "C5H14NO"),
        ({"Cl": 1, "C": 1, "H": 3}, "CH3Cl"),
        ({"H": 2, "O": 1}, "H2O"),
        ({"Cl": 1, "H": 1}, "ClH"),
        ({"S": 1}, "S"),
    ],
)
def test_hill_formula(counts, formula):
    assert hill_formula(counts) == formula
