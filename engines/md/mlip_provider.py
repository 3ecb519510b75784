"""The native force provider for ``atomtwin.engines.mlip`` models: torch tensors end to end.

Positions stay on the model's device; the neighbour list (``atomtwin.engines.mlip.neighbors``) is
built with a skin and reused (:class:`atomtwin.engines.md.neighbors.VerletList`), each step only
gathering pair vectors and dropping edges beyond ``r_max``.  No ASE object is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from atomtwin.engines.md.forces import ForceResult, check_species
from atomtwin.engines.md.neighbors import VerletList
from atomtwin.engines.md.state import DTYPE


class MLIPForceProvider:
    """An ``atomtwin.engines.mlip`` potential as an MD force provider.

    Parameters
    ----------
    model
        A module following the ``atomtwin.engines.mlip`` contract, or a checkpoint path.
    device
        Where the model (and the MD state) live.
    skin
        Verlet skin, Å.
    """

    def __init__(self, model, *, device: str | torch.device | None = None, skin: float = 1.0):
        if not isinstance(model, torch.nn.Module):
            from atomtwin.engines.mlip import load_model

            model = load_model(model, device=device or "cpu")
        elif device is not None:
            model = model.to(device)
        self.model = model
        self.species = tuple(model.species)
        self.r_max = float(model.r_max)
        self.dtype = next(model.parameters()).dtype if any(True for _ in model.parameters()) else DTYPE

        def build(pos, cell, pbc, r):
            from atomtwin.engines.mlip.neighbors import neighbor_list

            ei, shift = neighbor_list(pos, cell if any(pbc) else None,
                                      torch.tensor(pbc, device=pos.device), r)
            return ei[0], ei[1], shift

        self.nlist = VerletList(self.r_max, skin, builder=build)
        self.n_calls = 0
        self._types = None

    def reset(self) -> None:
        self.nlist.reset()

    def compute(self, positions, cell, pbc, species: Sequence[str], *, stress=False) -> ForceResult:
        self.n_calls += 1
        if self._types is None or self._types[0] != tuple(species):
            check_species(self, species)
            idx = torch.tensor([self.species.index(s) for s in species], device=positions.device)
            self._types = (tuple(species), idx)
        i, j, vec = self.nlist.pairs(positions, cell, pbc)
        keep = vec.square().sum(1) < self.r_max**2
        shift = self.nlist._list[2][keep]
        n = positions.shape[0]
        data = {
            "pos": positions.to(self.dtype),
            "atom_types": self._types[1],
            "cell": cell.to(self.dtype)[None],
            "pbc": torch.tensor([pbc], device=positions.device),
            "batch": torch.zeros(n, dtype=torch.long, device=positions.device),
            "edge_index": torch.stack([i[keep], j[keep]]),
            "edge_cell_shift": shift.to(self.dtype),
        }
        out = self.model(data)
        f = out["forces"].detach().to(DTYPE)
        s = out["stress"][0].detach().to(DTYPE) if stress else None
        return ForceResult(float(out["energy"].detach().sum()), f, s)
