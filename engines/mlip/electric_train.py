"""Training the electric-enthalpy model on energies, forces, polarizations and Born charges.

Loss (mean squared errors, each weighted):

    L = w_E <(dH/N)^2> + w_F <dF^2> + w_P <(dP/N)^2> + w_Z <dZ*^2> (+ w_A <(d alpha/N)^2>)

with H per atom (eV), force components (eV/Å), the cell dipole per atom (e Å; P is extensive),
Born-charge components (e) and the polarizability per atom (e Å^2/V).  The Born-charge term
differentiates through the second derivative -d2H/dE dR (double backward through the
network), so the model learns the charges themselves, not only their integral P.  Frames
carry their field E: polarizations at nonzero fields teach alpha (P = P0 + alpha E) even
without polarizability labels.  AdamW, cosine learning rate, an exponential moving average
of the weights (the returned model), the same machinery as :mod:`atomtwin.engines.mlip.train` for
energy/force models, here on dict frames (see :func:`atomtwin.engines.mlip.electric_crystal.random_frames`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.data import collate, species_of, to_graph
from atomtwin.engines.mlip.electric import ElectricPotential, EnthalpyModel, build_electric_model
from atomtwin.toolkit.errors import InputError

__all__ = ["electric_graph", "collate_electric", "electric_loss_terms", "evaluate_electric", "train_electric"]

#: per-frame labels beyond energy/forces, with how they batch
EXTRA = {"field": "structure", "polarization": "structure", "polarizability": "structure",
         "born_charges": "atom"}
QUANTITIES = ("energy", "forces", "polarization", "born_charges", "polarizability")


def electric_graph(frame: dict[str, Any], species: Sequence[str], r_max: float) -> dict[str, torch.Tensor]:
    """Graph of one frame (:func:`atomtwin.engines.mlip.data.to_graph`) with the field and the
    electric labels as float64 tensors."""
    g = to_graph(frame, species, r_max)
    for key in EXTRA:
        if key in frame:
            g[key] = torch.as_tensor(np.asarray(frame[key], dtype=float))
    return g


def collate_electric(graphs: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """:func:`atomtwin.engines.mlip.data.collate` plus ``field`` (B, 3) (zero where a frame has none)
    and, when every graph has them, ``ref_polarization`` (B, 3), ``ref_polarizability``
    (B, 3, 3), ``ref_born_charges`` (N, 3, 3)."""
    b = collate(graphs)
    b["field"] = torch.stack([g["field"].reshape(3) if "field" in g else torch.zeros(3, dtype=torch.float64)
                              for g in graphs])
    for key, kind in EXTRA.items():
        if key != "field" and all(key in g for g in graphs):
            b["ref_" + key] = (torch.stack if kind == "structure" else torch.cat)([g[key] for g in graphs])
    return b


def electric_loss_terms(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{quantity: (sum of squares, sum of |errors|, count)}`` for the labels present."""
    terms = {}
    nat = batch["num_atoms"].to(out["energy"])
    for q in QUANTITIES:
        if "ref_" + q not in batch or q not in out:
            continue
        d = out[q] - batch["ref_" + q].to(out[q])
        if q in ("energy", "polarization", "polarizability"):  # extensive: per atom
            d = d / nat.reshape((-1,) + (1,) * (d.dim() - 1))
        terms[q] = torch.stack([(d * d).sum(), d.abs().sum().detach(), d.new_tensor(d.numel())])
    return terms


@torch.no_grad()
def _statistics(graphs, species) -> dict[str, Any]:
    s = len(species)
    counts = np.array([[int((g["atom_types"] == k).sum()) for k in range(s)] for g in graphs], float)
    stats: dict[str, Any] = {"shift": np.zeros(s), "scale": np.ones(s), "p_scale": 1.0,
                             "alpha_shift": np.zeros(s), "alpha_scale": 1.0}
    if all("energy" in g for g in graphs):
        stats["shift"] = np.linalg.lstsq(counts, np.array([float(g["energy"]) for g in graphs]), rcond=None)[0]
    if all("forces" in g for g in graphs):
        stats["scale"] = np.full(s, float(torch.cat([g["forces"].reshape(-1) for g in graphs]).square().mean().sqrt()))
    if all("born_charges" in g for g in graphs):
        z = torch.cat([g["born_charges"] for g in graphs])
        stats["p_scale"] = float(z.diagonal(dim1=1, dim2=2).square().mean().sqrt())
    if all("polarizability" in g for g in graphs):
        tr = np.array([float(torch.trace(g["polarizability"])) / 3 for g in graphs])
        stats["alpha_shift"] = np.linalg.lstsq(counts, tr, rcond=None)[0]
        stats["alpha_scale"] = max(0.1 * float(np.abs(stats["alpha_shift"]).mean()), 1e-3)
    return stats


def evaluate_electric(model: EnthalpyModel, graphs: Sequence[dict[str, torch.Tensor]],
                      batch_size: int = 8) -> dict[str, float]:
    """MAE and RMSE per quantity (``born_charges_rmse`` etc., units as in the loss)."""
    acc: dict[str, torch.Tensor] = {}
    was = model.training
    model.eval()
    for s in range(0, len(graphs), batch_size):
        b = collate_electric(graphs[s:s + batch_size])
        for q, t in electric_loss_terms(model(b), b).items():
            acc[q] = acc.get(q, torch.zeros(3, dtype=torch.float64)) + t.detach().double()
    model.train(was)
    res = {}
    for q, a in acc.items():
        res[f"{q}_mae"] = float(a[1] / a[2])
        res[f"{q}_rmse"] = float(torch.sqrt(a[0] / a[2]))
    return res


def train_electric(
    frames: Sequence[dict[str, Any]], model: ModelConfig | dict[str, Any] | ElectricPotential, *,
    val_frames: Sequence[dict[str, Any]] = (), epochs: int = 100, batch_size: int = 4, lr: float = 5e-3,
    weights: dict[str, float] | None = None, ema_decay: float = 0.99, seed: int = 0,
    max_time_s: float | None = None, progress: bool = False,
) -> tuple[ElectricPotential, dict[str, Any]]:
    """Train an :class:`~atomtwin.engines.mlip.electric.ElectricPotential`.

    Parameters
    ----------
    frames, val_frames
        Frame dicts (``numbers``, ``pos``, ``cell``, ``pbc``, ``field`` V/Å and labels
        ``energy``, ``forces``, ``polarization``, ``born_charges``, ``polarizability``; any
        subset of labels, but the same in every frame).
    model
        A config (species and avg_num_neighbors filled from the data when empty) or a model
        to continue training.
    epochs, batch_size, lr, ema_decay, seed, max_time_s
        AdamW with a cosine schedule to 0 at ``epochs``; weight EMA; shuffling from ``seed``.
    weights
        Loss weights; default ``{"energy": 1, "forces": 1, "polarization": 1,
        "born_charges": 1, "polarizability": 1}``.

    Returns
    -------
    (model, info)
        The EMA model in eval mode; ``info`` with ``history`` (per-epoch train loss and
        validation metrics), ``val_metrics`` and ``wall_s``.
    """
    if not frames:
        raise InputError("train_electric got no frames. Fix: pass labelled frames (e.g. random_frames()).")
    w = {"energy": 1.0, "forces": 1.0, "polarization": 1.0, "born_charges": 1.0, "polarizability": 1.0}
    unknown = sorted(set(weights or {}) - set(w))
    if unknown:
        raise InputError(f"unknown loss weight(s) {unknown}. Fix: use keys from {sorted(w)}.")
    w.update(weights or {})
    torch.manual_seed(seed)
    if isinstance(model, ElectricPotential):
        net = model
    else:
        cfg = model if isinstance(model, ModelConfig) else ModelConfig.from_dict(dict(model))
        species = list(cfg.species) or species_of(list(frames) + list(val_frames))
        probe = [electric_graph(f, species, cfg.r_max) for f in frames[:50]]
        avg = cfg.avg_num_neighbors or float(np.mean([g["edge_index"].shape[1] / g["pos"].shape[0] for g in probe]))
        cfg = ModelConfig.from_dict(cfg.to_dict() | {"species": species, "avg_num_neighbors": avg})
        net = build_electric_model(cfg)
        st = _statistics([electric_graph(f, species, cfg.r_max) for f in frames], species)
        net.set_statistics(st["shift"], st["scale"], st["p_scale"], st["alpha_shift"], st["alpha_scale"])
    graphs = [electric_graph(f, net.species, net.r_max) for f in frames]
    val = [electric_graph(f, net.species, net.r_max) for f in val_frames]
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    ema = copy.deepcopy(net).eval()
    n_upd = 0
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(len(graphs), generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
        loss_sum = 0.0
        for s in range(0, len(perm), batch_size):
            b = collate_electric([graphs[i] for i in perm[s:s + batch_size]])
            terms = electric_loss_terms(net(b), b)
            loss = sum(w[q] * t[0] / t[2] for q, t in terms.items() if w[q] > 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n_upd += 1
            d = min(ema_decay, (1 + n_upd) / (10 + n_upd))
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                    pe.mul_(d).add_(p.detach(), alpha=1 - d)
            loss_sum += float(loss.detach())
        sched.step()
        row = {"epoch": epoch + 1, "train_loss": loss_sum / math.ceil(len(perm) / batch_size),
               "wall_s": time.perf_counter() - t0}
        if val:
            row |= {f"val_{k}": v for k, v in evaluate_electric(ema, val).items()}
        history.append(row)
        if progress:
            print(row)
        if max_time_s is not None and time.perf_counter() - t0 > max_time_s:
            break
    ema.eval()
    info = {"history": history, "wall_s": time.perf_counter() - t0, "epochs": len(history),
            "val_metrics": {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")}}
    return ema, info
