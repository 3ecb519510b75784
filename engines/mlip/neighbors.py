"""Neighbour lists for the model graph: the pairs come from the shared layer
(:mod:`atomtwin.toolkit.neighbors`, vesin's cell list) without gradients, and the model
computes the edge vectors from them in torch, so they stay differentiable in the positions
and the cell.  :class:`NeighborListCache` reuses a list built with a skin during MD.

Convention (the model contract): an edge ``(i, j)`` with integer image shift ``S`` means

    r_ij = pos[j] - pos[i] + S @ cell

where ``cell`` holds the lattice vectors as rows.  Pairs ``0 < |r_ij| < r_max`` are listed
in both directions; an atom is its own neighbour only through a non-zero image shift,
exactly as :func:`ase.neighborlist.neighbor_list`.
"""

from __future__ import annotations

import numpy as np
import torch
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import neighbor_pairs
from torch import Tensor

__all__ = ["neighbor_list", "NeighborListCache"]


def neighbor_list(
    pos: Tensor, cell: Tensor | None, pbc: Tensor | tuple[bool, bool, bool] | None, r_max: float
) -> tuple[Tensor, Tensor]:
    """All ordered pairs closer than ``r_max`` in one structure.

    Parameters
    ----------
    pos
        (N, 3) Cartesian positions, Å (need not be wrapped into the cell).
    cell
        (3, 3) lattice vectors as rows, Å; ``None`` for an isolated structure.
    pbc
        (3,) periodicity per lattice vector; ``None`` means no periodicity.
    r_max
        Cutoff radius, Å; pairs with ``0 < |r_ij| < r_max`` are returned.

    Returns
    -------
    edge_index
        (2, E) long on ``pos.device``, ``edge_index[0]`` the centre ``i``, ``edge_index[1]``
        the neighbour ``j``, sorted by centre then neighbour.
    edge_cell_shift
        (E, 3) integer image shifts (in ``pos.dtype``) with
        ``r_ij = pos[j] - pos[i] + edge_cell_shift @ cell``.

    Notes
    -----
    The search runs on the CPU in float64 (:func:`atomtwin.toolkit.neighbors.neighbor_pairs`,
    linear cost, any triclinic cell, cells thinner than the cutoff); only integers come back,
    so no gradient flows through it.  Wrong input (zero periodic lattice vector, non-finite
    positions) raises :class:`atomtwin.toolkit.errors.InputError`.
    """
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError(f"pos must have shape (N, 3), got {tuple(pos.shape)}.")
    device, dtype = pos.device, pos.dtype
    p64 = pos.detach().to("cpu", torch.float64).numpy()
    c64 = None if cell is None else torch.as_tensor(cell).detach().to("cpu", torch.float64).reshape(3, 3).numpy()
    per = None if pbc is None else torch.as_tensor(pbc).detach().cpu().numpy().astype(bool).reshape(3)
    p = neighbor_pairs(p64, c64, per, float(r_max), full=True, sort=True)
    edge_index = torch.from_numpy(np.stack([p.i, p.j])).to(device)
    shift = torch.from_numpy(p.shifts).to(device=device, dtype=dtype)
    return edge_index, shift


class NeighborListCache:
    """Reuse a neighbour list while atoms move less than half a skin.

    The list is built with cutoff ``r_max + skin``; pairs beyond ``r_max`` contribute
    exactly zero to the model (its radial cutoff vanishes there), so the stale list is exact
    until some atom has moved by more than ``skin / 2`` (or the cell changed).  Do not wrap
    positions between calls without expecting a rebuild: wrapping moves an atom by a lattice
    vector, which is detected as a large displacement.

    Parameters
    ----------
    r_max
        Model cutoff, Å.
    skin
        Extra shell, Å (e.g. 0.5–1.0 for MD at room temperature).
    """

    def __init__(self, r_max: float, skin: float = 1.0) -> None:
        if skin < 0:
            raise InputError(f"skin must be >= 0, got {skin}.")
        self.r_max = float(r_max)
        self.skin = float(skin)
        self._pos: Tensor | None = None
        self._cell: Tensor | None = None
        self._pbc: Tensor | None = None
        self._edges: tuple[Tensor, Tensor] | None = None
        self.n_builds = 0

    def needs_rebuild(self, pos: Tensor, cell: Tensor | None, pbc) -> bool:
        """True when the cached list may have become wrong for these coordinates."""
        if self._pos is None or self._pos.shape != pos.shape:
            return True
        pbc_t = torch.as_tensor(pbc if pbc is not None else [False] * 3, dtype=torch.bool).reshape(3)
        if not torch.equal(pbc_t, self._pbc):
            return True
        c = torch.zeros(3, 3, dtype=pos.dtype) if cell is None else torch.as_tensor(cell).reshape(3, 3)
        if not torch.allclose(c.detach().to(self._cell), self._cell, rtol=0, atol=1e-10):
            return True
        disp = (pos.detach() - self._pos).norm(dim=-1).max()
        return bool(disp > 0.5 * self.skin)

    def __call__(self, pos: Tensor, cell: Tensor | None, pbc) -> tuple[Tensor, Tensor]:
        """Return ``(edge_index, edge_cell_shift)`` valid for ``pos`` (see :func:`neighbor_list`)."""
        if self.needs_rebuild(pos, cell, pbc):
            self._edges = neighbor_list(pos, cell, pbc, self.r_max + self.skin)
            self._pos = pos.detach().clone()
            self._cell = (
                torch.zeros(3, 3, dtype=pos.dtype) if cell is None else torch.as_tensor(cell).detach().reshape(3, 3).clone()
            )
            self._pbc = torch.as_tensor(pbc if pbc is not None else [False] * 3, dtype=torch.bool).reshape(3)
            self.n_builds += 1
        assert self._edges is not None
        return self._edges
