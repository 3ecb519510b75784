"""Run a compiled potential (``atomtwin compile`` package) without the training code.

:func:`load_compiled` reads the package's metadata from the archive *before* loading its
shared library and refuses, with the fix in the message, a package that is not an atomtwin
potential, was written by another atomtwin version, or was compiled for another device
type.  :class:`CompiledPotential` has the call contract of the eager model
(``pot(data) -> dict`` with ``energy``, ``atom_energy``, ``forces``, ``stress``, ``virial``)
and :class:`CompiledCalculator` is the ASE route.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from atomtwin.engines.mlip import torch_internals as TI
from atomtwin.toolkit.errors import InputError
from torch import Tensor

__all__ = ["load_compiled", "read_metadata", "CompiledPotential", "CompiledCalculator"]

_FORMAT = "atomtwin-mlip-aoti/1"  # = atomtwin.engines.mlip.compile.PACKAGE_FORMAT (not imported: no export code here)
_OUTPUTS = ("energy", "atom_energy", "forces", "stress", "virial")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The atomtwin metadata of a package, read from the archive (the library is not loaded).

    Raises
    ------
    FileNotFoundError, InputError (a ValueError)
        Missing file; not a ``.pt2`` archive; not written by ``atomtwin compile``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"compiled potential '{path}' does not exist.")
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("wrapper_metadata.json")]
            raw = json.loads(z.read(names[0])) if names else {}
    except (zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise InputError(f"'{path}' is not an AOTInductor package ({err}). Fix: pass the .pt2 "
                         "file written by `atomtwin compile`.") from err
    if "atomtwin" not in raw:
        raise InputError(f"'{path}' is not an atomtwin potential package (no atomtwin metadata). "
                         "Fix: export it with `atomtwin compile CHECKPOINT OUT.pt2`.")
    meta = json.loads(raw["atomtwin"])
    meta["aoti_device_key"] = raw.get("AOTI_DEVICE_KEY", "")
    return meta


def load_compiled(path: str | Path, device: str | torch.device | None = None) -> CompiledPotential:
    """Load a package written by ``atomtwin compile``.

    Parameters
    ----------
    path
        The ``.pt2`` file.
    device
        Where to run; default: the device type the package was compiled for.  Another device
        type is refused (an AOTInductor library holds code for one device type only).

    Raises
    ------
    InputError (a ValueError)
        Other atomtwin version, other device type, a kernel package on a machine without
        CUDA, or not an atomtwin package.
    """
    import atomtwin
    meta = read_metadata(path)
    if meta.get("format") != _FORMAT:
        raise InputError(f"'{path}' has package format {meta.get('format')!r}; this atomtwin reads "
                         f"{_FORMAT!r}. Fix: recompile the checkpoint with this version.")
    if meta.get("atomtwin_version") != atomtwin.engines.__version__:
        raise InputError(
            f"'{path}' was compiled by atomtwin {meta.get('atomtwin_version')}, this is atomtwin "
            f"{atomtwin.engines.__version__}; compiled code is tied to the version that wrote it. Fix: "
            f"recompile: `atomtwin compile CHECKPOINT {Path(path).name}`.")
    dev = torch.device(device if device is not None else meta["device"])
    if dev.type != meta["device"]:
        raise InputError(
            f"'{path}' was compiled for '{meta['device']}' and cannot run on '{dev.type}'. Fix: "
            f"recompile on the target machine with `atomtwin compile CHECKPOINT OUT.pt2 --device {dev.type}`.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"'{path}' is a CUDA package and this machine has no CUDA device. "
                         "Fix: compile a CPU package (`--device cpu`).")
    # a kernel package needs nothing imported: AOTInductor compiled the op into it
    if meta.get("torch_version") != torch.__version__:
        import warnings

        warnings.warn(f"'{path}' was compiled with torch {meta.get('torch_version')}, running with "
                      f"torch {torch.__version__}; recompile if loading fails.", stacklevel=2)
    idx = dev.index if dev.type == "cuda" and dev.index is not None else -1
    runner = TI.aoti_load_package(str(path), device_index=idx)
    return CompiledPotential(runner, meta, dev)


class CompiledPotential:
    """A loaded package with the eager model's call contract.

    Attributes
    ----------
    species : list[str]
        Chemical symbols; ``atom_types`` index into it.
    r_max : float
        Cutoff, Å.
    metadata : dict
        Everything ``atomtwin compile`` recorded (model hash, versions, units, ...).
    """

    def __init__(self, runner, metadata: dict[str, Any], device: torch.device) -> None:
        self.runner = runner
        self.metadata = metadata
        self.device = device
        self.species: list[str] = list(metadata["species"])
        self.r_max: float = float(metadata["r_max"])
        self.dtype: torch.dtype = getattr(torch, metadata["dtype"])

    def __call__(self, data: dict[str, Tensor]) -> dict[str, Tensor]:
        """``data``: the model inputs (see :mod:`atomtwin.engines.mlip`); returns ``energy`` (B,) eV,
        ``atom_energy`` (N,) eV, ``forces`` (N,3) eV/Å, ``stress`` (B,3,3) eV/Å³, ``virial``
        (B,3,3) eV."""
        types = data["atom_types"].to(self.device)
        n = types.shape[0]
        if n < 2:
            raise InputError(f"a compiled potential needs at least 2 atoms, got {n}. "
                             "Fix: use the eager model for single atoms.")
        if int(types.min()) < 0 or int(types.max()) >= len(self.species):
            raise InputError(f"atom_types out of range 0..{len(self.species) - 1}; the model knows "
                             f"species {self.species}. Fix: map symbols with species.index(symbol).")
        ei = data["edge_index"].to(self.device)
        shift = data["edge_cell_shift"].to(self.device, self.dtype)
        if ei.shape[1] < 2:  # the package is traced for >= 2 edges: pad with zero-weight pairs
            raise InputError(f"a compiled potential needs at least 2 edges, got {ei.shape[1]}. "
                             "Fix: use the eager model for (nearly) isolated atoms.")
        cell = data["cell"].to(self.device, self.dtype).reshape(-1, 3, 3)
        batch = data.get("batch")
        batch = torch.zeros(n, dtype=torch.long, device=self.device) if batch is None else batch.to(self.device)
        pos = data["pos"].to(self.device, self.dtype).contiguous()
        out = self.runner(pos, types.contiguous(), cell.contiguous(), batch.contiguous(),
                          ei.contiguous(), shift.contiguous())
        return dict(zip(_OUTPUTS, out, strict=True))


def _ase_base():
    from ase.calculators.calculator import Calculator

    return Calculator


class CompiledCalculator(_ase_base()):
    """ASE calculator around a compiled package: ``energy``, ``free_energy``, ``forces``,
    ``stress`` (Voigt, eV/Å³, ASE sign; periodic cells) and ``energies`` (per atom).

    Examples
    --------
    >>> atoms.calc = CompiledCalculator("model.pt2")   # doctest: +SKIP
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: str | Path | CompiledPotential, device: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.potential = model if isinstance(model, CompiledPotential) else load_compiled(model, device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=None) -> None:
        from ase.calculators.calculator import all_changes
        from atomtwin.engines.mlip.neighbors import neighbor_list

        super().calculate(atoms, properties, system_changes or all_changes)
        pot = self.potential
        a = self.atoms
        lookup = {s: k for k, s in enumerate(pot.species)}
        unknown = sorted(set(a.get_chemical_symbols()) - set(lookup))
        if unknown:
            raise InputError(f"species {unknown} are unknown to the model, which knows {pot.species}. "
                             "Fix: use a potential trained on these species.")
        pos = torch.as_tensor(a.positions, dtype=torch.float64)
        cell = torch.as_tensor(np.asarray(a.cell), dtype=torch.float64)
        pbc = torch.as_tensor(a.pbc, dtype=torch.bool)
        ei, shift = neighbor_list(pos, cell, pbc, pot.r_max)
        data = {"pos": pos, "cell": cell[None], "edge_index": ei, "edge_cell_shift": shift,
                "atom_types": torch.tensor([lookup[s] for s in a.get_chemical_symbols()]),
                "batch": torch.zeros(len(a), dtype=torch.long)}
        out = pot(data)
        e = float(out["energy"][0])
        self.results = {"energy": e, "free_energy": e,
                        "forces": out["forces"].detach().cpu().double().numpy(),
                        "energies": out["atom_energy"].detach().cpu().double().numpy()}
        if np.all(a.pbc):
            s = out["stress"][0].detach().cpu().double().numpy()
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            raise InputError("stress needs a periodic cell in all three directions (pbc=True). "
                             "Fix: give the atoms a cell with pbc=True, or do not ask for stress.")
