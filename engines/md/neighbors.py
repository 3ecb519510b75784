"""A Verlet neighbour list in torch, rebuilt only when atoms (or the cell) moved enough.

Builds: :func:`half_pairs` takes the pairs from the shared layer
(:func:`atomtwin.toolkit.neighbors.neighbor_pairs`, vesin's linear-cost cell list, on the
CPU); ``method="dense"`` keeps an all-pairs distance matrix in torch (on the positions'
device), an independent check and an option for small systems on a GPU.

The list holds every pair within ``r_cut + skin`` at the last build.  Between builds a pair
distance can change by at most ``2 max|u| + |E| (r_cut + skin)``, with ``u`` the atomic
displacements at fixed cell and ``E = C0^-1 C - 1`` the cell strain since the build; the
list stays exact (holds every pair within ``r_cut``) while that bound is below ``skin``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import torch
from atomtwin.toolkit.errors import InputError


def plane_spacings(cell: torch.Tensor) -> torch.Tensor:
    """Distances between lattice planes (3,), Å."""
    vol = torch.abs(torch.linalg.det(cell))
    a, b, c = cell
    cross = torch.stack([torch.linalg.cross(b, c), torch.linalg.cross(c, a), torch.linalg.cross(a, b)])
    return vol / cross.norm(dim=1)


def cell_list_half_pairs(positions: torch.Tensor, cell: torch.Tensor, pbc, r: float):
    """:func:`half_pairs` through the shared neighbour layer (vesin's cell list, CPU).

    Each unordered pair appears once: ``i < j``, or for an atom's own periodic images
    (``i == j``) the shifts whose first non-zero component is positive.
    """
    from atomtwin.toolkit.neighbors import neighbor_pairs

    per = np.asarray([bool(x) for x in pbc])
    cell_np = cell.detach().to("cpu", torch.float64).numpy() if per.any() else None
    p = neighbor_pairs(positions.detach().to("cpu", torch.float64).numpy(), cell_np, per, float(r),
                       sort=True)
    dev = positions.device
    return (torch.from_numpy(p.i).to(dev), torch.from_numpy(p.j).to(dev),
            torch.from_numpy(p.shifts).to(device=dev, dtype=positions.dtype))


def half_pairs(positions: torch.Tensor, cell: torch.Tensor, pbc, r: float, max_pairs: int = 2_000_000,
               method: str = "auto"):
    """All pairs i<j (and each periodic image once) closer than ``r``.

    Returns ``(i, j, shift)`` with ``positions[j] - positions[i] + shift @ cell`` the pair
    vector; ``shift`` (n_pairs, 3) integer-valued floats.  Positions may be unwrapped.
    ``method``: ``"dense"`` (all-pairs distances in torch, in chunks of ``max_pairs``),
    ``"cells"`` or ``"auto"`` (both :func:`cell_list_half_pairs`, linear cost).
    """
    n = positions.shape[0]
    if method not in ("auto", "dense", "cells"):
        raise InputError(f"method must be 'auto', 'dense' or 'cells', not '{method}'.")
    if method in ("cells", "auto"):
        return cell_list_half_pairs(positions, cell, pbc, r)
    dev, dt = positions.device, positions.dtype
    periodic = any(pbc)
    if periodic:
        inv = torch.linalg.inv(cell)
        frac = positions @ inv
        img = torch.zeros_like(frac)
        for a in range(3):
            if pbc[a]:
                img[:, a] = torch.floor(frac[:, a])
        wrapped = positions - img @ cell
        spacing = plane_spacings(cell)
        reach = [math.ceil(r / float(spacing[a])) if pbc[a] else 0 for a in range(3)]
    else:
        img = torch.zeros_like(positions)
        wrapped = positions
        reach = [0, 0, 0]
    shifts = [s for s in itertools.product(*[range(-k, k + 1) for k in reach]) if s >= (0, 0, 0)]
    rows = max(1, max_pairs // max(n, 1))
    out_i, out_j, out_s = [], [], []
    ar = torch.arange(n, device=dev)
    for s in shifts:
        sv = torch.tensor(s, dtype=dt, device=dev)
        off = sv @ cell if periodic else torch.zeros(3, dtype=dt, device=dev)
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            d = torch.cdist(wrapped[start:stop], wrapped + off,
                            compute_mode="use_mm_for_euclid_dist")
            mask = d < r  # candidate selection only: exact vectors are computed per step
            if s == (0, 0, 0):
                mask &= ar[None, :] > ar[start:stop, None]
            ii, jj = torch.nonzero(mask, as_tuple=True)
            out_i.append(ii + start)
            out_j.append(jj)
            out_s.append(sv.expand(ii.shape[0], 3))
    i = torch.cat(out_i)
    j = torch.cat(out_j)
    shift = torch.cat(out_s) - img[j] + img[i]
    return i, j, shift


class VerletList:
    """Pairs within ``r_cut`` from a list built with ``r_cut + skin`` and reused.

    Parameters
    ----------
    r_cut
        Cutoff the caller needs (Å).
    skin
        Extra shell (Å); larger = rarer rebuilds, more pairs per step.
    builder
        ``builder(positions, cell, pbc, r) -> (i, j, shift)``; default :func:`half_pairs`.
    """

    def __init__(self, r_cut: float, skin: float = 0.5, builder: Callable | None = None):
        self.r_cut, self.skin = float(r_cut), float(skin)
        self.builder = builder or half_pairs
        self.n_builds = 0
        self.reset()

    def reset(self) -> None:
        self._ref = None

    def _stale(self, positions, cell) -> bool:
        if self._ref is None:
            return True
        pos0, cell0, inv0, n = self._ref
        if positions.shape[0] != n:
            return True
        if torch.equal(cell, cell0):
            disp = (positions - pos0).norm(dim=1).max()
            strain = 0.0
        else:
            e = inv0 @ cell - torch.eye(3, dtype=cell.dtype, device=cell.device)
            strain = float(torch.linalg.matrix_norm(e, ord=2))
            u = (positions @ torch.linalg.inv(cell) - pos0 @ inv0) @ cell0
            disp = u.norm(dim=1).max()
        return 2 * float(disp) + strain * (self.r_cut + self.skin) > self.skin

    def pairs(self, positions: torch.Tensor, cell: torch.Tensor, pbc):
        """``(i, j, vec)``: candidate pairs and their vectors (Å); filter by ``|vec| < r_cut``."""
        if self._stale(positions, cell):
            i, j, shift = self.builder(positions, cell, pbc, self.r_cut + self.skin)
            periodic = any(pbc)
            inv = torch.linalg.inv(cell) if periodic else torch.eye(3, dtype=cell.dtype, device=cell.device)
            self._ref = (positions.clone(), cell.clone(), inv, positions.shape[0])
            self._list = (i, j, shift.to(positions.dtype))
            self.n_builds += 1
        i, j, shift = self._list
        vec = positions[j] - positions[i]
        if any(pbc):
            vec = vec + shift @ cell
        return i, j, vec

    def edges(self, positions, cell, pbc):
        """``(i, j, shift)`` of the current list (after a staleness check)."""
        self.pairs(positions, cell, pbc)
        return self._list
