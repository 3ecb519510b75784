"""ASE calculator around a trained potential."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import all_changes
from atomtwin.engines.mlip.data import collate, frame_from_atoms, to_graph
from atomtwin.engines.mlip.model import Potential, load_model
from atomtwin.toolkit.errors import InputError

__all__ = ["Calculator"]


class Calculator(_AseCalculator):
    """ASE calculator: ``energy``, ``free_energy`` (= energy), ``forces``, ``stress``
    (3×3 → Voigt, eV/Å³, ASE sign) and ``energies`` (per atom).

    Parameters
    ----------
    model
        A :class:`~atomtwin.engines.mlip.model.Potential` (e.g. from :func:`atomtwin.engines.mlip.load_model`).
    device
        Torch device for evaluation.

    Examples
    --------
    >>> calc = Calculator.from_checkpoint("run/best.ckpt")   # doctest: +SKIP
    >>> atoms.calc = calc; atoms.get_potential_energy()       # doctest: +SKIP
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]
    #: closest approach (Å) accepted without ZBL; nearer pairs raise (the network was never
    #: trained there and its energy would be meaningless)
    min_distance = 0.5

    def __init__(self, model: Potential, device: str | torch.device = "cpu", **kwargs) -> None:
        super().__init__(**kwargs)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Calculator:
        """Load ``path`` (a training checkpoint) onto ``device``."""
        return cls(load_model(path, device=device), device=device)

    @staticmethod
    def from_compiled(path: str | Path, device: str | torch.device | None = None):
        """An ASE calculator on an AOTInductor package made by ``atomtwin compile``
        (loaded without the training code; see :mod:`atomtwin.engines.mlip.compiled`)."""
        from atomtwin.engines.mlip.compiled import CompiledCalculator

        return CompiledCalculator(path, device)

    def _check_contacts(self, g: dict) -> None:
        if self.model.zbl is not None or g["edge_index"].shape[1] == 0:
            return
        i, j = g["edge_index"]
        r = (g["pos"][j] - g["pos"][i] + g["edge_cell_shift"] @ g["cell"]).norm(dim=1)
        k = int(torch.argmin(r))
        if float(r[k]) < self.min_distance:
            raise InputError(
                f"atoms {int(i[k])} and {int(j[k])} are {float(r[k]):.3f} Å apart, closer than "
                f"{self.min_distance} Å. Fix: check the structure, or use a model trained with "
                "zbl: true for short-range collisions."
            )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        fr = frame_from_atoms(self.atoms, source="atoms")
        for key in ("energy", "forces", "stress"):
            fr.pop(key, None)
        g = to_graph(fr, self.model.species, self.model.r_max)
        self._check_contacts(g)
        batch = {k: v.to(self.device) for k, v in collate([g]).items()}
        out = self.model(batch)
        e = float(out["energy"][0])
        self.results = {
            "energy": e,
            "free_energy": e,
            "forces": out["forces"].detach().cpu().double().numpy(),
            "energies": out["atom_energy"].detach().cpu().double().numpy(),
        }
        if np.all(self.atoms.pbc):
            s = out["stress"][0].detach().cpu().double().numpy()
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            raise InputError("stress needs a periodic cell in all three directions (pbc=True). "
                             "Fix: set atoms.pbc = True with a cell, or do not ask for stress.")
