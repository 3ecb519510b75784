"""Neighbour list: the same pairs and vectors as ASE's on random triclinic cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list
from atomtwin.engines.mlip.neighbors import NeighborListCache, neighbor_list


def _ours(pos, cell, pbc, r):
    ei, sh = neighbor_list(torch.tensor(pos), torch.tensor(cell), torch.tensor(pbc), r)
    return ei.numpy(), sh.numpy()


def _as_set(i, j, s):
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, np.rint(s).astype(int).tolist()), strict=True))


@pytest.mark.parametrize("seed", range(6))
def test_same_pairs_as_ase_random_triclinic(seed):
    # random skewed cells from tiny (several images per direction, thinner than r_max) to
    # several cutoffs wide, random partial periodicity, atoms outside the cell.
    # Integer image shifts must agree exactly, vectors to float64 rounding (1e-12 Å).
    rng = np.random.default_rng(seed)
    for _ in range(12):
        n = int(rng.integers(1, 14))
        cell = rng.normal(size=(3, 3)) * rng.uniform(0.3, 3.0) + np.eye(3) * rng.uniform(0.8, 7.0)
        spacing = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
        if spacing.min() < 0.5:  # near-singular cells make ASE's reference take minutes
            continue
        pbc = rng.random(3) < 0.75
        pos = rng.uniform(-0.6, 1.6, size=(n, 3)) @ cell
        r = float(rng.uniform(1.0, 5.0))
        atoms = Atoms("H" * n, positions=pos, cell=cell, pbc=pbc)
        i, j, s, d = ase_neighbor_list("ijSD", atoms, r)
        ei, sh = _ours(pos, cell, pbc, r)
        assert _as_set(i, j, s) == _as_set(ei[0], ei[1], sh)
        vec = pos[ei[1]] - pos[ei[0]] + sh @ cell
        assert np.all(np.linalg.norm(vec, axis=1) < r)
        order_a = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
        order_b = np.lexsort((sh[:, 2], sh[:, 1], sh[:, 0], ei[1], ei[0]))
        np.testing.assert_allclose(vec[order_b], d[order_a], atol=1e-12)


def test_tiny_cell_many_images():
    # one atom in a 1 Å cube with r_max 2.5 Å: neighbours are all lattice points 0<|S|<2.5,
    # counted exactly (no duplicates): 4/3 pi r^3 estimate is ~65; ASE gives the exact number.
    cell = np.eye(3) * 1.0
    pos = np.zeros((1, 3))
    ei, sh = _ours(pos, cell, np.array([True] * 3), 2.5)
    exact = sum(1 for a in range(-3, 4) for b in range(-3, 4) for c in range(-3, 4)
                if 0 < a * a + b * b + c * c < 6.25)
    assert ei.shape[1] == exact
    assert len({tuple(x) for x in sh.astype(int).tolist()}) == exact


def test_isolated_molecule_and_zero_cell():
    # no cell at all: only the real pairs, as ASE with pbc=False
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 6, size=(20, 3))
    ei, sh = neighbor_list(torch.tensor(pos), None, None, 3.0)
    i, j = ase_neighbor_list("ij", Atoms("H20", positions=pos), 3.0)
    assert _as_set(i, j, np.zeros((len(i), 3))) == _as_set(ei[0].numpy(), ei[1].numpy(), sh.numpy())


def test_slab_with_zero_vacuum_vector():
    # 2D periodic slab whose third cell vector is zero (common in ASE files)
    rng = np.random.default_rng(2)
    cell = np.array([[3.0, 0.0, 0.0], [1.0, 2.8, 0.0], [0.0, 0.0, 0.0]])
    pos = np.c_[rng.uniform(0, 3, 8), rng.uniform(0, 3, 8), rng.uniform(-2, 2, 8)]
    pbc = np.array([True, True, False])
    ei, sh = _ours(pos, cell, pbc, 3.5)
    i, j, s = ase_neighbor_list("ijS", Atoms("H8", positions=pos, cell=cell, pbc=pbc), 3.5)
    assert _as_set(i, j, s) == _as_set(ei[0], ei[1], sh)


def test_periodic_zero_vector_is_an_error():
    with pytest.raises(ValueError, match="pbc"):
        neighbor_list(torch.zeros(2, 3, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64),
                      torch.tensor([True, True, True]), 2.0)


def test_large_cell_linear_scaling_counts():
    # 864-atom fcc Cu (a = 3.61 Å), r_max = 3.0 Å: first shell only, 12 neighbours each
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((6, 6, 6))
    ei, _ = _ours(atoms.positions, atoms.cell.array, atoms.pbc, 3.0)
    assert np.all(np.bincount(ei[0], minlength=len(atoms)) == 12)


def test_skin_cache_reuses_and_rebuilds():
    rng = np.random.default_rng(3)
    cell = np.eye(3) * 6.0
    pos = torch.tensor(rng.uniform(0, 6, size=(30, 3)))
    cache = NeighborListCache(r_max=2.5, skin=0.6)
    ei0, sh0 = cache(pos, torch.tensor(cell), (True, True, True))
    # a displacement below skin/2 keeps the list, and it still contains every true pair
    moved = pos + torch.tensor(rng.normal(size=(30, 3))) * 0.05
    moved = pos + (moved - pos) * (0.25 / (moved - pos).norm(dim=1).max())
    ei1, sh1 = cache(moved, torch.tensor(cell), (True, True, True))
    assert cache.n_builds == 1 and ei1 is ei0
    true_ei, true_sh = neighbor_list(moved, torch.tensor(cell), (True, True, True), 2.5)
    cached = set(_as_set(ei1[0].numpy(), ei1[1].numpy(), sh1.numpy()))
    assert set(_as_set(true_ei[0].numpy(), true_ei[1].numpy(), true_sh.numpy())) <= cached
    # moving one atom by more than skin/2 forces a rebuild
    moved2 = moved.clone()
    moved2[0, 0] += 0.4
    cache(moved2, torch.tensor(cell), (True, True, True))
    assert cache.n_builds == 2
