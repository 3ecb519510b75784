"""The one neighbour-list layer: every pair of atoms closer than a cutoff, in any cell.

Every analysis (order parameters, RDFs, hydrogen bonds, environments) and every engine
(the MLIP's graphs, the MD Verlet lists) finds its pairs here.  The search is vesin's
linear-cost cell list (C++, no torch), the fastest of the candidates measured in
``tests/benchmarks/bench_neighbors.py`` (vesin, matscipy, our former torch cell list and
scipy's periodic k-d tree).  It handles any triclinic cell, cells thinner than the cutoff
(an atom then meets several images of the same neighbour, and itself through non-zero
shifts) and partial periodicity; positions need not be wrapped.

Convention: a pair ``(i, j)`` with integer image shift ``S`` has the vector

    r_ij = positions[j] - positions[i] + S @ cell      (cell rows are lattice vectors)

and ``0 < |r_ij| < cutoff``, exactly as :func:`ase.neighborlist.neighbor_list`.  The toolkit
never imports torch: the MLIP, whose edge vectors must stay differentiable, takes the
integer list from here and computes the vectors in torch.
"""

from __future__ import annotations

from atomtwin.toolkit.neighbors.pairs import (
    NeighborPairs,
    full_lists,
    nearest_neighbors,
    neighbor_pairs,
    pair_arrays,
    pairs_between,
)

__all__ = [
    "NeighborPairs",
    "neighbor_pairs",
    "pairs_between",
    "nearest_neighbors",
    "full_lists",
    "pair_arrays",
]
