"""The potential: graph in, energies / forces / stress out (the contract in
:mod:`atomtwin.engines.mlip`), plus building from a config, and its two file formats.

Two formats, kept apart:

* a **training checkpoint** (``format = "atomtwin-mlip"``; ``last.ckpt`` / ``best.ckpt`` of
  ``atomtwin train``): config, raw and EMA weights *and* optimizer, scheduler and
  bookkeeping state, so that a run resumes bit for bit.  Written by :func:`save_checkpoint`,
  read for resuming by :func:`read_checkpoint` (which takes only this format);
* a **model file** (``format = "atomtwin-mlip-model"``; the shipped models in
  :mod:`atomtwin.data`): config, one set of weights (the EMA weights of the checkpoint it was
  exported from) and plain metadata (metrics, provenance), no optimizer state.  Written by
  :func:`save_model` / :func:`export_model`; its bytes depend only on its content (not on
  its file name), so a deterministic training reproduces it bit for bit.

:func:`load_model` takes either and returns the potential.  Every read goes through
``torch.load(weights_only=True)``: no file is unpickled into arbitrary objects.
"""

from __future__ import annotations

import io
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
from atomtwin.toolkit.errors import FileFormatError, InputError
from torch import Tensor, nn

__all__ = ["Potential", "build_model", "save_checkpoint", "read_checkpoint", "save_model",
           "export_model", "read_model_file", "load_model", "plain_metadata", "CHECKPOINT_FORMAT",
           "CHECKPOINT_VERSION", "MODEL_FORMAT", "MODEL_VERSION"]

#: training checkpoint (weights + optimizer/scheduler/EMA state; resumable)
CHECKPOINT_FORMAT = "atomtwin-mlip"
CHECKPOINT_VERSION = 1
#: model file (weights + plain metadata only; what atomtwin ships)
MODEL_FORMAT = "atomtwin-mlip-model"
MODEL_VERSION = 1


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
            raise InputError("model.species is empty. Fix: list the chemical symbols, or "
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

    def set_lean_memory(self, on: bool = True) -> Potential:
        """Trade eager speed for peak memory in the NequIP-style convolution (a run-time
        choice, not part of the checkpoint): its backward then forms the per-edge gathers
        and coupling products again instead of keeping them from the forward.  Measured at
        4,096 Cu atoms (lmax 1, 32 channels, 3 layers, ~43 neighbours, float32, CPU): peak
        RSS 3.4 -> 2.4 GB, 11-15 % more time per energy + forces call.  Same numbers (the
        same sums; float64 gradients and second derivatives equal to 1e-12).  The
        Allegro-style contraction runs lean at inference (no measurable cost), and compiled
        models plan their own buffers, so this changes nothing there."""
        from atomtwin.engines.mlip.models.nequip import Interaction

        for m in self.modules():
            if isinstance(m, Interaction):
                m.lean_memory = bool(on)
        return self

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
        return self.energies_from_edges(vec, types, centre, neighbour)

    def energies_from_edges(self, vec: Tensor, types: Tensor, centre: Tensor, neighbour: Tensor,
                            layer_edges: list[int] | None = None) -> Tensor:
        """Per-atom energies (N,) eV from edge vectors ``vec`` (E, 3) Å, pointing from
        ``centre`` (E,) to ``neighbour`` (E,), for atoms of species index ``types`` (N,).
        The one place the model's energy is computed (training, MD, and the LAMMPS export).

        ``layer_edges`` (NequIP-style only, ``num_layers - 1`` counts): layer ``k + 2`` uses
        the first ``layer_edges[k]`` edges only (LAMMPS' ghost shells; see
        :meth:`atomtwin.engines.mlip.models.nequip.NequIPCore.features`)."""
        r = vec.norm(dim=-1)
        sh = spherical_harmonics(vec, self.lmax)
        basis = self.basis(r)
        u = polynomial_cutoff(r, self.r_max, self.cutoff_p)
        if self.is_allegro:
            if layer_edges is not None:
                raise InputError("layer_edges is for message-passing (NequIP-style) models; "
                                 "an Allegro-style model is strictly local. Fix: pass None.")
            e = self.core(types, sh, basis, u, centre, neighbour)
        else:
            e = self.core(types, sh, basis * u[:, None], centre, neighbour, layer_edges)
        e = e * self.scale[types] + self.shift[types]
        if self.zbl is not None:
            e = e + scatter_sum(self.zbl(r, types[centre], types[neighbour]), centre, types.shape[0])
        return e

    def forward(self, data: dict[str, Tensor]) -> dict[str, Tensor]:
        dtype = self.shift.dtype
        types = data["atom_types"]
        if types.numel() and (int(types.min()) < 0 or int(types.max()) >= len(self.species)):
            raise InputError(
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
    """Write a **training checkpoint**: ``model`` (config, species, weights) plus ``extra``
    training state (optimizer, scheduler, EMA weights, epoch...), atomically.

    Read back for resuming by :func:`read_checkpoint`; :func:`export_model` turns it into a
    model file without the training state.
    """
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


def _load_file(path: str | Path, what: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of ``path`` with a named error for anything else."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} '{path}' does not exist.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many types for a damaged file)
        raise FileFormatError(
            path, f"not a readable {what} ({type(err).__name__}: {str(err).splitlines()[0][:200]}).",
            "pass a file written by `atomtwin train` (best.ckpt / last.ckpt) or a model file "
            "written by atomtwin.engines.mlip.model.save_model.") from err
    if not isinstance(obj, dict) or obj.get("format") not in (CHECKPOINT_FORMAT, MODEL_FORMAT):
        raise FileFormatError(
            path, "is not an atomtwin MLIP checkpoint or model file.",
            "pass a file written by `atomtwin train` (last.ckpt / best.ckpt) or by save_model.")
    want = CHECKPOINT_VERSION if obj["format"] == CHECKPOINT_FORMAT else MODEL_VERSION
    if obj.get("version") != want:
        raise FileFormatError(
            path, f"has format version {obj.get('version')}, this atomtwin reads version {want}.",
            "retrain, or load it with the atomtwin that wrote it.")
    return obj


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a **training checkpoint** (for resuming) and check its header.

    A model file (no optimizer state) is refused with an error that says so.
    """
    ckpt = _load_file(path, "checkpoint")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise FileFormatError(
            path, "is a model file (weights and metadata only, no optimizer state), not a "
            "training checkpoint, so training cannot resume from it.",
            "resume from the run's last.ckpt, or start a new training.")
    return ckpt


def read_model_file(path: str | Path) -> dict[str, Any]:
    """Load a **model file** (format ``atomtwin-mlip-model``) and check its header.

    Returns the dict with ``model_config``, ``species``, ``r_max``, ``state_dict`` and
    ``metadata``.  A training checkpoint is refused (see :func:`export_model`).
    """
    obj = _load_file(path, "model file")
    if obj["format"] != MODEL_FORMAT:
        raise FileFormatError(
            path, "is a training checkpoint, not a model file.",
            "export it with atomtwin.engines.mlip.model.export_model(checkpoint, model_file).")
    return obj


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "<checkpoint>", weights: str = "ema") -> Potential:
    """Rebuild the model of a loaded checkpoint or model file (a checkpoint's EMA weights
    when present and ``weights == "ema"``; its raw weights with ``weights="raw"``)."""
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError, KeyError) as err:
        raise FileFormatError(path, f"holds a model config this version cannot build: {err}",
                              "retrain with this version.") from err
    model = build_model(config)
    state = ckpt.get("ema_state_dict") if weights == "ema" and ckpt.get("ema_state_dict") else ckpt["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise FileFormatError(
            path, f"does not match the model its config describes ({str(err).splitlines()[0]}).",
            "the file was written by an incompatible version or edited; retrain.") from err
    return model


def plain_metadata(value: Any, where: str = "metadata") -> Any:
    """``value`` as plain JSON-like data (dict/list/str/int/float/bool/None) that
    ``torch.load(weights_only=True)`` reads; tuples become lists, numpy scalars Python ones."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): plain_metadata(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_metadata(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalar
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{where} is a {type(value).__name__}; model-file metadata holds only "
                    "dicts, lists, strings, numbers, booleans and None.")


def save_model(path: str | Path, model: Potential, metadata: dict[str, Any] | None = None) -> Path:
    """Write a **model file**: config, the model's current weights and plain ``metadata``
    (metrics, provenance), no optimizer state; atomically.

    The bytes depend only on the content (the archive is built in memory, so the file
    name does not enter it): the same weights and metadata give the same SHA-256.
    Load it with :func:`load_model` (``torch.load(weights_only=True)``).
    """
    path = Path(path)
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "model_config": plain_metadata(model.config.to_dict()),
        "species": list(model.species),
        "r_max": float(model.r_max),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
        "metadata": plain_metadata(metadata or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def export_model(checkpoint: str | Path, path: str | Path, metadata: dict[str, Any] | None = None,
                 weights: str = "ema") -> Path:
    """Turn a training checkpoint into a model file (:func:`save_model`).

    The model file keeps the checkpoint's EMA weights (``weights="raw"``: the raw ones), its
    epoch, best validation loss and validation metrics, and the training settings without
    file paths (``residual_of`` as a file name only), plus ``metadata``; it drops the
    optimizer, scheduler and EMA bookkeeping.
    """
    ckpt = read_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, checkpoint, weights)
    train_cfg = {k: v for k, v in (ckpt.get("train_config") or {}).items()
                 if k not in ("train_files", "val_files", "output_dir", "residual_of", "model", "progress")}
    meta: dict[str, Any] = {
        "epoch": ckpt.get("epoch"),
        "best_val_loss": ckpt.get("best_val_loss"),
        "val_metrics": ckpt.get("val_metrics") or {},
        "weights": weights,
        "train_config": train_cfg,
        "residual_of": Path(ckpt["residual_of"]).name if ckpt.get("residual_of") else None,
    }
    meta.update(metadata or {})
    return save_model(path, model, meta)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Potential:
    """Load a trained potential in evaluation mode from a model file or a training
    checkpoint (its EMA weights); see :mod:`atomtwin.engines.mlip` for its contract."""
    model = model_from_checkpoint(_load_file(path, "checkpoint"), path)
    return model.to(device).eval()
