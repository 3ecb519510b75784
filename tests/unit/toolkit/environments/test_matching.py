"""Neighbour statistics of environment clusters on lattices with known shells; progress bars
of the pipeline's long loops."""

from __future__ import annotations

import numpy as np
import xarray as xr
from ase.build import bulk
from atomtwin.toolkit import progress as P
from atomtwin.toolkit.environments import (
    EnvironmentClassifier,
    neighbour_composition,
    representative_environments,
)
from atomtwin.toolkit.schema import make_dataset


def _rocksalt(primitive: bool):
    a = 5.64  # NaCl: Na-Cl 2.82 Å, Na-Na / Cl-Cl 3.99 Å
    atoms = bulk("NaCl", "rocksalt", a=a, cubic=not primitive).repeat(
        (3, 3, 3) if primitive else (2, 2, 2)
    )
    pos = np.repeat(atoms.positions[None], 2, axis=0)
    return make_dataset(
        pos, atoms.get_chemical_symbols(), cell=atoms.cell[:], time=np.array([0.0, 0.1])
    )


def test_neighbour_composition_of_rocksalt_in_any_cell():
    # label Na as cluster 0 and Cl as cluster 1: within 3.2 Å every Na has exactly 6 Cl and no
    # Na, and vice versa; the primitive (triclinic, 60°) cell needs periodic images
    for primitive in (False, True):
        ds = _rocksalt(primitive)
        lab = (ds.species.values == "Cl").astype(int)
        labels = xr.DataArray(np.repeat(lab[None], 2, 0), dims=("frame", "atom"))
        comp = neighbour_composition(ds, labels, r_cut=3.2)
        assert list(comp.neighbour_species.values) == ["Cl", "Na"]
        np.testing.assert_array_equal(comp.values, [[6.0, 0.0], [0.0, 6.0]])
        # second shell (3.99 Å) added: 12 like neighbours
        np.testing.assert_array_equal(
            neighbour_composition(ds, labels, r_cut=4.2).values, [[6.0, 12.0], [12.0, 6.0]]
        )


def _coordination(atoms):  # per-atom features: neighbours within 3.2 Å (6 in rocksalt)
    from atomtwin.toolkit.neighbors import neighbor_pairs

    p = neighbor_pairs(atoms.positions, atoms.cell.array, atoms.pbc, 3.2, full=True)
    return np.bincount(p.i, minlength=len(atoms))[:, None].astype(float)


def test_representative_environments_are_the_first_shell(capsys):
    ds = _rocksalt(primitive=True)
    clf = EnvironmentClassifier(_coordination, method="kmeans", n_clusters=1, seed=0)
    P.enable(True)
    try:
        lab = clf.fit_predict(ds)
    finally:
        P.enable(False)
    assert "environments" in capsys.readouterr().err  # the bar went to stderr
    assert set(np.unique(lab.values)) == {0}
    envs = representative_environments(ds, clf, n_per_cluster=2, r_cut=3.2)
    assert len(envs) == 2
    for env in envs:
        # the centre at the origin and its 6 unlike neighbours at 2.82 Å (octahedron)
        assert len(env) == 7 and set(env.get_chemical_symbols()[1:]) == (
            {"Na", "Cl"} - {env[0].symbol}
        )
        np.testing.assert_allclose(np.linalg.norm(env.positions[1:], axis=1), 5.64 / 2, atol=1e-9)
        np.testing.assert_allclose(env.positions[1:].sum(0), 0.0, atol=1e-9)
