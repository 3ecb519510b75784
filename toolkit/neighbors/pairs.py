"""Pair search (vesin's cell list) with input checks, a canonical half list, pairs between
two sets of atoms and nearest neighbours.  See the package docstring for the convention."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from atomtwin.toolkit.errors import InputError

__all__ = [
    "NeighborPairs",
    "neighbor_pairs",
    "pairs_between",
    "nearest_neighbors",
    "full_lists",
    "pair_arrays",
]


class NeighborPairs(NamedTuple):
    """Pairs closer than the cutoff.

    Attributes
    ----------
    i, j : (n_pairs,) int64
        Centre and neighbour atom indices.
    shifts : (n_pairs, 3) int64
        Integer image shifts ``S`` with ``vectors = positions[j] - positions[i] + S @ cell``.
    vectors : (n_pairs, 3) float64
        Pair vectors ``r_j - r_i`` (nearest image within the cutoff), Å.
    """

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    vectors: np.ndarray

    @property
    def distances(self) -> np.ndarray:
        """(n_pairs,) pair distances, Å."""
        return np.sqrt(np.einsum("pk,pk->p", self.vectors, self.vectors))


def _checked(positions, cell, pbc, cutoff) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError(
            f"positions must have shape (n_atoms, 3), got {pos.shape}. "
            "Fix: pass one frame's Cartesian positions in Å."
        )
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} atom(s) have non-finite positions (first: atom "
            f"{int(np.flatnonzero(bad)[0])}). Fix: remove or repair those frames."
        )
    try:
        r = float(cutoff)
    except (TypeError, ValueError):
        raise InputError(f"cutoff must be a number in Å, got {cutoff!r}.") from None
    if not (np.isfinite(r) and r > 0):
        raise InputError(f"cutoff must be a positive finite distance in Å, got {cutoff!r}.")
    per = np.zeros(3, bool) if pbc is None else np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    if box.shape != (3, 3):
        raise InputError(
            f"cell must have shape (3, 3) (lattice vectors as rows, Å), got {box.shape}."
        )
    if not np.isfinite(box).all():
        raise InputError("the cell holds non-finite values. Fix: repair the cell of this frame.")
    if per.any():
        norms = np.linalg.norm(box, axis=1)
        for k in np.flatnonzero(per):
            if norms[k] <= 1e-12 * max(1.0, norms.max()):
                raise InputError(
                    f"cell vector {k} is zero but the structure is periodic along it. "
                    "Fix: give a non-zero lattice vector there or set that pbc to False."
                )
        v = box[per]
        gram = np.linalg.det(v @ v.T)  # squared volume of the periodic vectors
        if gram <= 1e-12 * np.prod(norms[per] ** 2):
            raise InputError(
                "the periodic lattice vectors are linearly dependent (singular cell). "
                "Fix: give independent lattice vectors."
            )
    return pos, box, per.copy(), r


def _search(pos: np.ndarray, box: np.ndarray, per: np.ndarray, r: float, full: bool):
    from vesin import NeighborList

    # one thread: the pair order, and every sum over pairs downstream, is then reproducible
    nl = NeighborList(cutoff=r, full_list=full, n_threads=1)
    i, j, s, d = nl.compute(pos, box, per, "ijSD", copy=False)
    return (
        i.astype(np.int64),
        j.astype(np.int64),
        s.astype(np.int64),
        np.array(d, dtype=np.float64),
    )


def neighbor_pairs(
    positions, cell, pbc, cutoff: float, *, full: bool = False, sort: bool = False
) -> NeighborPairs:
    """All pairs closer than ``cutoff`` in one structure.

    Parameters
    ----------
    positions
        (n_atoms, 3) Cartesian positions, Å (need not be wrapped into the cell).
    cell
        (3, 3) lattice vectors as rows, Å; ``None`` for an isolated structure.  Vectors of
        non-periodic directions may be zero.
    pbc
        (3,) periodicity per lattice vector, or one bool; ``None`` means not periodic.
    cutoff
        Å; pairs with ``0 < |r_ij| < cutoff`` are returned (every image of a neighbour
        within the cutoff, so a cell thinner than ``2 * cutoff`` is fine).
    full
        ``True``: both directions ``(i, j, S)`` and ``(j, i, -S)`` of every pair.
        ``False`` (default): each pair once, with ``i < j``, or ``i == j`` (an atom and its
        own image) with the first non-zero component of ``S`` positive.
    sort
        Sort the pairs by ``i`` then ``j`` (costs about as much as the search at 10,000
        atoms).  Unsorted, the order is still reproducible (one search thread).

    Returns
    -------
    NeighborPairs
        ``i, j, shifts, vectors``.

    Raises
    ------
    InputError
        Wrong shapes, non-finite positions, a non-positive cutoff, or a periodic direction
        whose lattice vector is zero or dependent on the others.
    """
    pos, box, per, r = _checked(positions, cell, pbc, cutoff)
    n = pos.shape[0]
    if n == 0:
        return NeighborPairs(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, 3), np.int64),
            np.zeros((0, 3)),
        )
    i, j, s, d = _search(pos, box, per, r, full)
    if not full:  # vesin's half list has no fixed orientation: make it canonical
        first = np.where(s[:, 0] != 0, s[:, 0], np.where(s[:, 1] != 0, s[:, 1], s[:, 2]))
        flip = (i > j) | ((i == j) & (first < 0))
        i, j = np.where(flip, j, i), np.where(flip, i, j)
        s = np.where(flip[:, None], -s, s)
        d = np.where(flip[:, None], -d, d)
    if sort:
        order = np.argsort(i * n + j, kind="stable")
        i, j, s, d = i[order], j[order], s[order], d[order]
    return NeighborPairs(i, j, s, d)


def pair_arrays(
    positions, cell, pbc, cutoff: float, quantities: str = "ijd", *, full: bool = False
) -> list[np.ndarray]:
    """The raw pair arrays of one structure, for per-frame loops that need speed.

    The same search and checks as :func:`neighbor_pairs`, without the canonical orientation,
    the integer conversion and the copies: vesin's arrays as computed (``i``, ``j``
    as vesin's unsigned integers, ``d`` distances in Å, ``D`` vectors ``r_j - r_i + S @ cell``
    in Å, ``S`` shifts).  In a half list (``full=False``) each pair appears once in an
    unspecified orientation; an atom's own periodic images (``i == j``) are included.
    Used by the RDF and Steinhardt loops, where only distances or vectors per pair matter.

    Parameters
    ----------
    positions, cell, pbc, cutoff
        As :func:`neighbor_pairs`.
    quantities
        Letters of vesin's ``compute``: any of ``i j d D S``.
    full
        Both directions of every pair.

    Returns
    -------
    list of arrays, one per letter of ``quantities``: (n_pairs,) for ``i j d``,
    (n_pairs, 3) for ``D S``.
    """
    from vesin import NeighborList

    pos, box, per, r = _checked(positions, cell, pbc, cutoff)
    if pos.shape[0] == 0:
        return [np.zeros((0, 3) if q in "DS" else 0) for q in quantities]
    nl = NeighborList(cutoff=r, full_list=full, n_threads=1)
    return nl.compute(pos, box, per, quantities, copy=True)


def pairs_between(positions, cell, pbc, cutoff: float, centres, neighbours) -> NeighborPairs:
    """Pairs (centre, neighbour) closer than ``cutoff`` between two sets of atoms.

    Parameters
    ----------
    positions, cell, pbc, cutoff
        As :func:`neighbor_pairs`.
    centres, neighbours
        Global atom indices (1-D int) of the two sets; they may overlap (an atom is never
        its own neighbour except through a non-zero image shift).

    Returns
    -------
    NeighborPairs
        Global indices ``i`` (in ``centres``) and ``j`` (in ``neighbours``), every image
        within the cutoff (unsorted).
    """
    pos, box, per, r = _checked(positions, cell, pbc, cutoff)
    a = _indices(centres, pos.shape[0], "centres")
    b = _indices(neighbours, pos.shape[0], "neighbours")
    sub = np.union1d(a, b)
    p = neighbor_pairs(pos[sub], box, per, r)  # each pair once: keep the orientations asked for
    gi, gj = sub[p.i], sub[p.j]
    fwd = np.isin(gi, a) & np.isin(gj, b)
    rev = np.isin(gj, a) & np.isin(gi, b)
    return NeighborPairs(
        np.concatenate([gi[fwd], gj[rev]]),
        np.concatenate([gj[fwd], gi[rev]]),
        np.concatenate([p.shifts[fwd], -p.shifts[rev]]),
        np.concatenate([p.vectors[fwd], -p.vectors[rev]]),
    )


def _indices(idx, n: int, name: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise InputError(
            f"{name} must be a 1-D array of atom indices, got shape {idx.shape} "
            f"and dtype {idx.dtype}."
        )
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InputError(
            f"{name} holds atom indices outside 0..{n - 1}. Fix: index the atoms of this structure."
        )
    return idx.astype(np.int64)


def nearest_neighbors(
    positions, cell, pbc, centres, neighbours, *, k: int | None = None, start: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest atom(s) of ``neighbours`` (over all periodic images) of every atom in ``centres``.

    The search radius starts at ``start`` (Å; default the mean spacing of the ``neighbours``
    times ``k**(1/3)``) and grows by 1.5x for the centres not yet served, so
    the answer is exact for any distance.  An atom in both sets is not its own neighbour
    (its periodic images are).

    Parameters
    ----------
    positions, cell, pbc
        As :func:`neighbor_pairs`.
    centres, neighbours
        Global atom indices (1-D int).
    k
        ``None``: the nearest one; an int: the ``k`` nearest, closest first (in a cell
        smaller than twice their distance, two images of one atom may both count).

    Returns
    -------
    index : (n_centres,) or (n_centres, k) int64
        Global indices of the nearest neighbour(s).
    distance : (n_centres,) or (n_centres, k) float64
        Their distances, Å.
    """
    pos, box, per, _ = _checked(positions, cell, pbc, 1.0)
    a = _indices(centres, pos.shape[0], "centres")
    b = _indices(neighbours, pos.shape[0], "neighbours")
    kk = 1 if k is None else int(k)
    if kk < 1:
        raise InputError(f"k must be a positive number of neighbours, got {k!r}.")
    if a.size and (
        b.size == 0 or (not per.any() and np.unique(b).size - bool(np.isin(a, b).any()) < kk)
    ):
        raise InputError(
            f"nearest_neighbors: fewer than {kk} candidate neighbour atom(s) besides "
            "the centre. Fix: select more neighbour atoms (or a smaller k)."
        )
    index = np.full((a.size, kk), -1, np.int64)
    dist = np.full((a.size, kk), np.inf)
    if start is None:
        if per.all():
            vol = abs(np.linalg.det(box))
        else:
            ext = np.ptp(pos[b], axis=0) if b.size > 1 else np.ones(3)
            vol = float(np.prod(np.maximum(ext, 1.0)))
        start = (kk * vol / max(b.size, 1)) ** (1 / 3)
    r = float(start)
    todo = np.arange(a.size)
    while todo.size:
        p = pairs_between(pos, box, per, r, a[todo], b)
        d = p.distances
        o = np.lexsort((d, p.i))
        ci, nj, dd = p.i[o], p.j[o], d[o]
        first = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1]]) if ci.size else np.zeros(0, int)
        count = np.diff(np.r_[first, ci.size])
        ok = count >= kk
        got, at = ci[first[ok]], first[ok]
        # every position in ``a`` of a served centre (an index may repeat in ``a``)
        loc = todo[np.isin(a[todo], got)]
        rows = at[np.searchsorted(got, a[loc])][:, None] + np.arange(kk)
        index[loc], dist[loc] = nj[rows], dd[rows]
        todo = todo[index[todo, 0] < 0]
        r *= 1.5
    if k is None:
        return index[:, 0], dist[:, 0]
    return index, dist


def full_lists(i: np.ndarray, j: np.ndarray, d: np.ndarray, n_atoms: int):
    """Both directions of each pair of a half list, sorted by the first index.

    Returns ``(centre, neighbour, vector, counts)`` with ``vector = r_neighbour - r_centre``
    (Å) and ``counts`` (n_atoms,) the number of neighbours of each atom.
    """
    c = np.concatenate([i, j])
    nb = np.concatenate([j, i])
    v = np.concatenate([d, -d])
    order = np.argsort(c, kind="stable")
    c, nb, v = c[order], nb[order], v[order]
    return c, nb, v, np.bincount(c, minlength=n_atoms)
