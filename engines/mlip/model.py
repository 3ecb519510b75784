"""The potential: graph in, energies / forces / stress out (the contract in
:mod:`atomtwin.engines.mlip`), plus building from a config and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.models.allegro import AllegroCore
from atomtwin.engines.mlip.models.nequip import NequIPCore
from atomtwin.engines.mlip.nn import (
    ZBL,
    BesselBasis,
    polynomial_cutoff,
    scatter_sum,
    spherical_harmonics,
)
from torch import Tensor, nn

__all__ = ["Potential", "build_model", "save_checkpoint", "load_model", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

CHECKPOINT_FORMAT = "atomtwin-mlip"
CHECKPOINT_VERSION = 1


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


class Potential(nn.Module):
    """Energy model with forces and stress by automatic differentiation.

    ``E = sum_i [scale_{s_i} * e_i + shift_{s_i}] (+ ZBL)``; forces ``-dE/dpos``; stress
    ``(1/V) dE/dε`` for a homogeneous strain ``ε`` applied to positions and cell (ASE's
    sign: negative under compression).  See :mod:`atomtwin.engines.mlip` for the input/output keys.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.species:
            raise ValueError("model.species is empty. Fix: list the chemical symbols, or "
                             "build the model through training, which fills them from the data.")
        self.config = config
        self.species: list[str] = list(config.species)
        self.r_max: float = float(config.r_max)
        s = len(self.species)
        avg = float(config.avg_num_neighbors or 10.0)
        self.lmax = config.lmax
        self.cutoff_p = float(config.cutoff_p)
        self.basis = BesselBasis(config.r_max, config.num_basis)
        if config.architecture == "nequip":
            self.core = NequIPCore(s, config.lmax, config.parity, config.num_layers, config.mul,
                                   config.num_basis, config.radial_hidden, config.radial_layers, avg)
        else:
            self.core = AllegroCore(s, config.lmax, config.parity, config.num_layers, config.mul,
                                    config.num_basis, config.latent, config.mlp_hidden, avg)
        self.is_allegro = config.architecture == "allegro"
        self.register_buffer("shift", torch.zeros(s))
        self.register_buffer("scale", torch.ones(s))
        if config.zbl:
            from ase.data import atomic_numbers

            self.zbl: ZBL | None = ZBL([atomic_numbers[x] for x in self.species], config.r_max)
        else:
            self.zbl = None

    @torch.no_grad()
    def set_statistics(self, shift: Tensor, scale: Tensor) -> None:
        """Per-species energy shift (eV) and scale (eV) from the training data."""
        self.shift.copy_(torch.as_tensor(shift, dtype=self.shift.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype))

    def atom_energies(self, pos: Tensor, cell: Tensor, data: dict[str, Tensor]) -> Tensor:
        """Per-atom energies (N,) eV for given (possibly strained) positions and cells."""
        types = data["atom_types"]
        batch = data["batch"]
        ei = data["edge_index"]
        centre, neighbour = ei[0], ei[1]
        shift = data["edge_cell_shift"].to(pos.dtype)
        vec = pos[neighbour] - pos[centre] + torch.einsum("ek,ekx->ex", shift, cell[batch[centre]])
        r = vec.norm(dim=-1)
        sh = spherical_harmonics(vec, self.lmax)
        basis = self.basis(r)
        u = polynomial_cutoff(r, self.r_max, self.cutoff_p)
        if self.is_allegro:
            e = self.core(types, sh, basis, u, centre, neighbour)
        else:
            e = self.core(types, sh, basis * u[:, None], centre, neighbour)
        e = e * self.scale[types] + self.shift[types]
        if self.zbl is not None:
            e = e + scatter_sum(self.zbl(r, types[centre], types[neighbour]), centre, types.shape[0])
        return e

    def forward(self, data: dict[str, Tensor]) -> dict[str, Tensor]:
        dtype = self.shift.dtype
        types = data["atom_types"]
        if types.numel() and (int(types.min()) < 0 or int(types.max()) >= len(self.species)):
            raise ValueError(
                f"atom_types out of range 0..{len(self.species) - 1}; the model knows species "
                f"{self.species}. Fix: map symbols with model.species.index(symbol)."
            )
        pos = data["pos"].to(dtype)
        cell = data["cell"].to(dtype).reshape(-1, 3, 3)
        batch = data["batch"]
        nb = cell.shape[0]
        strain = torch.zeros(nb, 3, 3, dtype=dtype, device=pos.device, requires_grad=True)
        # keep the graph (higher derivatives, e.g. Hessians or force training) in training
        # mode or when the caller's positions require grad; otherwise return plain tensors
        keep_graph = self.training or data["pos"].requires_grad
        with torch.enable_grad():
            sym = 0.5 * (strain + strain.transpose(1, 2))
            if not pos.requires_grad:
                pos = pos.detach().requires_grad_(True)
            pos_s = pos + torch.einsum("nx,nxy->ny", pos, sym[batch])
            cell_s = cell + torch.bmm(cell, sym)
            atom_e = self.atom_energies(pos_s, cell_s, data)
            energy = scatter_sum(atom_e, batch, nb)
            grads = torch.autograd.grad(
                energy.sum(), [pos, strain], create_graph=keep_graph, allow_unused=True
            )
        dpos = grads[0] if grads[0] is not None else torch.zeros_like(pos)
        dstrain = grads[1] if grads[1] is not None else torch.zeros_like(strain)
        vol = torch.linalg.det(cell).abs()
        has_vol = vol > 1e-12
        stress = torch.where(has_vol[:, None, None], dstrain / torch.where(has_vol, vol, 1.0)[:, None, None],
                             torch.zeros_like(dstrain))
        if not keep_graph:
            energy, atom_e = energy.detach(), atom_e.detach()
        return {
            "energy": energy,
            "atom_energy": atom_e,
            "forces": -dpos,
            "virial": -dstrain,
            "stress": stress,
        }


def build_model(config: ModelConfig) -> Potential:
    """A freshly initialised :class:`Potential` in ``config.dtype``, in eval mode (outputs
    without autograd graph unless ``data["pos"].requires_grad``; training switches to
    ``train()``, which keeps the graph for force/stress losses)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(_dtype(config.dtype))
    try:
        return Potential(config).eval()
    finally:
        torch.set_default_dtype(old)


def save_checkpoint(path: str | Path, model: Potential, extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` (config, species, weights) plus ``extra`` training state atomically."""
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "species": list(model.species),
        "r_max": model.r_max,
        "state_dict": model.state_dict(),
        **(extra or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint file's header (format, version)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"'{path}' is not a readable torch checkpoint ({err}).") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"'{path}' is not an atomtwin MLIP checkpoint. Fix: pass a file "
                         "written by `atomtwin train` (last.ckpt / best.ckpt).")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint '{path}' has format version {ckpt.get('version')}, this atomtwin reads "
            f"version {CHECKPOINT_VERSION}. Fix: retrain, or load it with the atomtwin that wrote it."
        )
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "<checkpoint>", weights: str = "ema") -> Potential:
    """Rebuild the model of a loaded checkpoint (EMA weights when present)."""
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint '{path}' holds a model config this version cannot build: {err}") from err
    model = build_model(config)
    state = ckpt.get("ema_state_dict") if weights == "ema" and ckpt.get("ema_state_dict") else ckpt["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint '{path}' does not match the model its config describes ({err}). "
            "Fix: the file was written by an incompatible version or edited; retrain."
        ) from err
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Potential:
    """Load a trained potential in evaluation mode (see :mod:`atomtwin.engines.mlip` for its contract)."""
    model = model_from_checkpoint(read_checkpoint(path), path)
    return model.to(device).eval()
