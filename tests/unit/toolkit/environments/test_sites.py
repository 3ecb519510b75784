"""Matching clusters to the *sites* of a reference crystal (``site_species``): a crystal
with two kinds of one species is two references, not one mixture.

Li6PS5Cl holds two kinds of S: 16 of its 20 S per cell are bonded to P (PS4 units), 4 are
free S2- among Li only.  Matched against the whole crystal, the free-S cluster receives only
a fifth of the reference's S environments, so no reference claims it and it is flagged new;
split into sites, each cluster is claimed by the site of its own first shell.
"""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.environments import SOAP, EnvironmentClassifier, identify_phases
from atomtwin.toolkit.schema import make_dataset


@pytest.fixture(scope="module")
def fitted():
    from atomtwin.engines.studies.li_argyrodite.structures import argyrodite

    atoms = argyrodite(10.0)
    rng = np.random.default_rng(0)
    pos = np.stack([atoms.positions + rng.normal(0, 0.05, atoms.positions.shape) for _ in range(6)])
    ds = make_dataset(pos, atoms.get_chemical_symbols(), cell=atoms.cell[:], time=np.arange(6.0))
    clf = EnvironmentClassifier(
        SOAP(r_cut=3.5, n_max=4, l_max=4, sigma=0.5), species=["S"], seed=0, max_clusters=4
    )
    labels = clf.fit_predict(ds)
    return atoms, ds, clf, labels


def _p_neighbours(atoms):
    from ase.neighborlist import neighbor_list

    sym = np.asarray(atoms.get_chemical_symbols())
    i, j = neighbor_list("ij", atoms, 3.0)
    return np.array([np.sum((i == k) & (sym[j] == "P")) for k in range(len(atoms))])


def test_each_cluster_is_claimed_by_the_site_of_its_first_shell(fitted):
    atoms, ds, clf, labels = fitted
    n_p = _p_neighbours(atoms)
    s_atoms = np.flatnonzero(ds.species.values == "S")
    lab = labels.values[:, s_atoms]
    assert len(np.unique(lab)) == 2, np.unique(lab)  # PS4 S and free S apart

    ph = identify_phases(clf, {"Li6PS5Cl": atoms}, rattle=0.05, seed=1, site_species=("P",))
    assert sorted(ph["reference"].values.tolist()) == ["Li6PS5Cl[P0]", "Li6PS5Cl[P1]"]
    for k in np.unique(lab):
        members = s_atoms[np.any(lab == k, axis=0)]
        (p_count,) = np.unique(n_p[members])  # a cluster holds one kind of S
        row = ph.sel(cluster=k)
        assert str(row["nearest_reference"].values) == f"Li6PS5Cl[P{p_count}]"
        assert not bool(row["is_new"].values)
        assert float(row["distance"].values) < 1.0

    # the same crystal as one reference: the free S (a fifth of its S) is claimed by nothing
    whole = identify_phases(clf, {"Li6PS5Cl": atoms}, rattle=0.05, seed=1)
    free = [k for k in np.unique(lab) if n_p[s_atoms[np.any(lab == k, axis=0)]][0] == 0]
    assert bool(whole.sel(cluster=free[0])["is_new"].values)


def test_small_sites_merge_into_the_largest(fitted):
    # a site holding less than min_site_fraction of its species' environments (a count
    # that only thermal fluctuations give) joins the largest site: the free S are 20 % of S
    from atomtwin.toolkit.environments.matching import reference_descriptors

    atoms, _, clf, _ = fitted
    for frac, expected in ((0.1, {"X[P0]", "X[P1]"}), (0.5, {"X[P1]"})):
        _, sp, names = reference_descriptors(
            clf, {"X": atoms}, rattle=0.0, n_rattle=1, site_species=("P",), min_site_fraction=frac
        )
        assert set(names[sp == "S"]) == expected
        assert np.sum(names == "X[P1]") == (16 if frac == 0.1 else 20)  # of 20 S per cell
