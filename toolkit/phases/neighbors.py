"""Periodic neighbour pairs for one frame (the building block of every order parameter).

Orthorhombic cells use a periodic k-d tree (:class:`scipy.spatial.cKDTree` with
``boxsize``); triclinic or partly periodic cells fall back to ASE's
:func:`ase.neighborlist.neighbor_list`.  Both return each unordered pair once as
``(i, j, d_ij)`` with ``d_ij = r_j - r_i`` the minimum-image vector in Å.
"""

from __future__ import annotations

import numpy as np


def _is_orthorhombic(cell: np.ndarray, tol: float = 1e-9) -> bool:
    off = cell - np.diag(np.diag(cell))
    return bool(np.all(np.abs(off) < tol * max(1.0, np.abs(cell).max())))


def pairs(
    positions: np.ndarray,
    cell: np.ndarray | None,
    cutoff: float,
    pbc=(True, True, True),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unordered pairs closer than ``cutoff``.

    Parameters
    ----------
    positions
        (n_atoms, 3) Å.
    cell
        (3, 3) Å, rows are lattice vectors; ``None`` for an isolated system.
    cutoff
        Å.
    pbc
        Periodicity flags (3,).

    Returns
    -------
    i, j : (n_pairs,) int
        Atom indices with i < j.
    d : (n_pairs, 3) float
        Minimum-image vectors r_j - r_i in Å.
    """
    positions = np.asarray(positions, dtype=float)
    pbc = np.asarray(pbc, dtype=bool)
    from scipy.spatial import cKDTree

    if cell is None or not pbc.any():
        tree = cKDTree(positions)
        ij = tree.query_pairs(cutoff, output_type="ndarray")
        i, j = ij[:, 0], ij[:, 1]
        return i, j, positions[j] - positions[i]
    cell = np.asarray(cell, dtype=float)
    if _is_orthorhombic(cell) and pbc.all():
        box = np.diag(cell).copy()
        if cutoff >= 0.5 * box.min():
            raise ValueError(
                f"neighbour cutoff {cutoff:.3g} Å is not below half the shortest box length "
                f"({0.5 * box.min():.3g} Å): pairs would be counted through several images. "
                "Fix: use a smaller cutoff or a larger (replicated) cell."
            )
        wrapped = np.mod(positions, box)
        wrapped[wrapped >= box] = 0.0  # float round-off at the upper edge
        tree = cKDTree(wrapped, boxsize=box)
        ij = tree.query_pairs(cutoff, output_type="ndarray")
        i, j = ij[:, 0], ij[:, 1]
        d = wrapped[j] - wrapped[i]
        d -= box * np.round(d / box)
        return i, j, d
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    atoms = Atoms(positions=positions, cell=cell, pbc=pbc)
    i, j, d = neighbor_list("ijD", atoms, cutoff, self_interaction=False)
    keep = i < j
    i, j, d = i[keep], j[keep], d[keep]
    # a pair may appear once per image when the cell is small; keep all images (correct
    # for RDFs) but that is the caller's choice of cutoff
    return i, j, d


def full_lists(i: np.ndarray, j: np.ndarray, d: np.ndarray, n_atoms: int):
    """Both directions of each pair, sorted by the first index.

    Returns ``(centre, neighbour, vector, counts)`` with ``vector`` = r_neighbour - r_centre
    and ``counts`` (n_atoms,) the number of neighbours of each atom.
    """
    c = np.concatenate([i, j])
    nb = np.concatenate([j, i])
    v = np.concatenate([d, -d])
    order = np.argsort(c, kind="stable")
    c, nb, v = c[order], nb[order], v[order]
    counts = np.bincount(c, minlength=n_atoms)
    return c, nb, v, counts
