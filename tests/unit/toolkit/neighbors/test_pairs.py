"""The one neighbour-list layer: ASE's pairs exactly, a canonical half list, pairs between
sets, exact nearest neighbours, and named errors for wrong input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import nearest_neighbors, neighbor_pairs, pairs_between


def _keys(i, j, s):
    k = np.stack([i, j, *np.rint(s).astype(np.int64).T], axis=1)
    return k[np.lexsort(k.T[::-1])]


def _random_structure(rng):
    n = int(rng.integers(1, 14))
    while True:  # skewed cells from thinner than the cutoff to several cutoffs wide
        cell = rng.normal(size=(3, 3)) * rng.uniform(0.3, 3.0) + np.eye(3) * rng.uniform(0.8, 7.0)
        if (1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)).min() > 0.5:
            break
    pbc = rng.random(3) < 0.75
    pos = rng.uniform(-0.6, 1.6, size=(n, 3)) @ cell  # atoms outside the cell too
    return pos, cell, pbc, float(rng.uniform(1.0, 5.0))


@pytest.mark.parametrize("seed", range(4))
def test_full_list_is_ases(seed):
    # integer shifts identical, vectors to float64 rounding (1e-12 Å)
    rng = np.random.default_rng(seed)
    for _ in range(12):
        pos, cell, pbc, r = _random_structure(rng)
        i, j, s, d = ase_neighbor_list(
            "ijSD", Atoms("H" * len(pos), positions=pos, cell=cell, pbc=pbc), r
        )
        p = neighbor_pairs(pos, cell, pbc, r, full=True, sort=True)
        np.testing.assert_array_equal(_keys(p.i, p.j, p.shifts), _keys(i, j, s))
        np.testing.assert_allclose(p.vectors, pos[p.j] - pos[p.i] + p.shifts @ cell, atol=1e-12)
        assert np.all(p.distances < r)
        assert np.all(np.diff(p.i * len(pos) + p.j) >= 0)  # sorted by i then j


@pytest.mark.parametrize("seed", range(3))
def test_half_list_is_each_pair_once_canonical(seed):
    rng = np.random.default_rng(10 + seed)
    for _ in range(12):
        pos, cell, pbc, r = _random_structure(rng)
        full = neighbor_pairs(pos, cell, pbc, r, full=True)
        half = neighbor_pairs(pos, cell, pbc, r)
        assert 2 * half.i.size == full.i.size
        s = half.shifts
        first = np.where(s[:, 0] != 0, s[:, 0], np.where(s[:, 1] != 0, s[:, 1], s[:, 2]))
        assert np.all((half.i < half.j) | ((half.i == half.j) & (first > 0)))
        both = _keys(np.r_[half.i, half.j], np.r_[half.j, half.i], np.r_[s, -s])
        np.testing.assert_array_equal(both, _keys(full.i, full.j, full.shifts))
        np.testing.assert_allclose(half.vectors, pos[half.j] - pos[half.i] + s @ cell, atol=1e-12)


def test_tiny_cell_counts_every_image_once():
    # one atom in a 1 Å cube, cutoff 2.5 Å: neighbours are the lattice points 0 < |S| < 2.5
    p = neighbor_pairs(np.zeros((1, 3)), np.eye(3), True, 2.5, full=True)
    exact = sum(
        1
        for a in range(-3, 4)
        for b in range(-3, 4)
        for c in range(-3, 4)
        if 0 < a * a + b * b + c * c < 6.25
    )
    assert p.i.size == exact == len({tuple(x) for x in p.shifts.tolist()})


def test_isolated_and_zero_vectors_of_open_directions():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 6, size=(30, 3))
    ref = _keys(*ase_neighbor_list("ijS", Atoms("H30", positions=pos), 2.0))
    for cell, pbc in (
        (None, None),
        (np.zeros((3, 3)), False),
        (np.diag([6.0, 6.0, 0.0]), (1, 1, 0)),
    ):
        p = neighbor_pairs(pos, cell, pbc, 2.0, full=True)
        if cell is not None and np.any(pbc):
            atoms = Atoms("H30", positions=pos, cell=np.diag([6.0, 6.0, 1.0]), pbc=(1, 1, 0))
            ref_ = _keys(*ase_neighbor_list("ijS", atoms, 2.0))
        else:
            ref_ = ref
        np.testing.assert_array_equal(_keys(p.i, p.j, p.shifts), ref_)


def test_pairs_between_and_nearest_are_exact():
    rng = np.random.default_rng(4)
    cell = np.array([[7.0, 0, 0], [2.0, 6.5, 0], [1.0, 1.5, 6.0]])
    pos = rng.random((60, 3)) @ cell
    a, b = np.arange(0, 60, 3), np.setdiff1d(np.arange(60), np.arange(0, 60, 3))
    full = neighbor_pairs(pos, cell, True, 3.0, full=True)
    keep = np.isin(full.i, a) & np.isin(full.j, b)
    p = pairs_between(pos, cell, True, 3.0, a, b)
    np.testing.assert_array_equal(
        _keys(p.i, p.j, p.shifts), _keys(full.i[keep], full.j[keep], full.shifts[keep])
    )
    # nearest by brute force over 7^3 images (enough: the cell is wider than 2 * nearest distance)
    img = np.stack(np.meshgrid(*[np.arange(-3, 4)] * 3, indexing="ij"), -1).reshape(-1, 3) @ cell
    d = np.linalg.norm(
        pos[b][None, :, None] + img[None, None] - pos[a][:, None, None], axis=-1
    ).min(-1)
    idx, dist = nearest_neighbors(pos, cell, True, a, b, start=0.3)  # forced to grow several times
    np.testing.assert_array_equal(idx, b[d.argmin(1)])
    np.testing.assert_allclose(dist, d.min(1), atol=1e-12)
    # same set: an atom is not its own nearest neighbour
    idx, dist = nearest_neighbors(pos, None, None, a, a)
    dd = np.linalg.norm(pos[a][:, None] - pos[a][None], axis=-1) + np.diag(np.full(a.size, np.inf))
    np.testing.assert_array_equal(idx, a[dd.argmin(1)])
    np.testing.assert_allclose(dist, dd.min(1), atol=1e-12)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((4, 2)), None, None, 2.0), "shape \\(n_atoms, 3\\)"),
        ((np.full((4, 3), np.nan), None, None, 2.0), "non-finite positions"),
        ((np.zeros((4, 3)), None, None, -1.0), "positive finite"),
        ((np.zeros((4, 3)), np.diag([5.0, 5.0, 0.0]), True, 2.0), "cell vector 2 is zero"),
        (
            (np.zeros((4, 3)), np.array([[5.0, 0, 0], [0, 5, 0], [5, 5, 0]]), True, 2.0),
            "linearly dependent",
        ),
        ((np.zeros((4, 3)), np.eye(2), True, 2.0), "cell must have shape"),
    ],
)
def test_wrong_input_is_named(args, match):
    with pytest.raises(InputError, match=match):
        neighbor_pairs(*args)


def test_nearest_without_candidates_is_named():
    with pytest.raises(InputError, match="candidate neighbour"):
        nearest_neighbors(np.zeros((2, 3)), None, None, [0, 1], [1])
    with pytest.raises(InputError, match="candidate neighbour"):
        nearest_neighbors(np.eye(3), None, None, [0], [0, 1, 2], k=3)
    with pytest.raises(InputError, match="candidate neighbour"):  # periodic: no image helps
        nearest_neighbors(np.eye(3), np.eye(3) * 4, True, [0], np.zeros(0, int))


def test_k_nearest_are_the_k_closest_images():
    rng = np.random.default_rng(6)
    cell = np.array([[6.0, 0, 0], [1.0, 6.5, 0], [0.5, -1.0, 7.0]])
    pos = rng.random((40, 3)) @ cell
    a, b = np.arange(8), np.arange(8, 40)
    img = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3) @ cell
    d = np.linalg.norm(
        pos[b][None, :, None] + img[None, None] - pos[a][:, None, None], axis=-1
    ).min(-1)
    idx, dist = nearest_neighbors(pos, cell, True, a, b, k=4)
    assert idx.shape == dist.shape == (8, 4)
    np.testing.assert_array_equal(idx, b[np.argsort(d, axis=1)[:, :4]])
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :4], atol=1e-12)


def test_toolkit_layer_works_without_torch():
    # an analysis-only install has no torch: block it and search pairs (vesin itself only
    # uses torch opportunistically when it is installed)
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "from atomtwin.toolkit.neighbors import neighbor_pairs\n"
        "p = neighbor_pairs(np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.eye(3) * 3, True, 1.5)\n"
        "print(p.i.size, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "False"]
