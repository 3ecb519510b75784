"""Building and (re)fitting the potentials an active-learning run updates.

A compact, deterministic training loop over frames held in memory (the active-learning
dataset is small: tens to a few thousand frames), reusing the loss of
:mod:`atomtwin.engines.mlip.train` and the model of :mod:`atomtwin.engines.mlip.model`:

* :func:`new_model` builds a freshly initialised potential (its own seed: a committee is a
  set of *independently initialised* models) with the data's energy shift / force scale;
* :func:`fit` trains it for a number of epochs (a warm start when the model was trained
  before: fine-tuning on the grown dataset; a *full retrain* is :func:`new_model` +
  :func:`fit` with more epochs).

Everything depends on explicit seeds only, so a resumed run refits bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.data import FrameDataset, collate, species_of, statistics
from atomtwin.engines.mlip.model import Potential, build_model
from atomtwin.engines.mlip.train import loss_terms
from atomtwin.toolkit.errors import InputError

__all__ = ["new_model", "fit", "predict", "force_errors"]


def _cast(batch: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in batch.items()}


def new_model(mcfg: ModelConfig, frames: Sequence[dict[str, Any]], seed: int) -> Potential:
    """A freshly initialised potential for ``frames`` (species, neighbour count, per-species
    energy shift and force scale from the frames).

    Parameters
    ----------
    mcfg
        Architecture; empty ``species`` are taken from the frames.
    frames
        Labelled frame dicts (:func:`atomtwin.engines.mlip.data.read_frames` format).
    seed
        Initialisation seed (members of a committee get different ones).
    """
    if not frames:
        raise InputError("no labelled frame to build a model from. Fix: give seed frames.")
    species = list(mcfg.species) or species_of(frames)
    ds = FrameDataset(frames, species, mcfg.r_max)
    stats = statistics(ds)
    cfg = ModelConfig.from_dict(
        mcfg.to_dict()
        | {
            "species": species,
            "avg_num_neighbors": mcfg.avg_num_neighbors or float(stats["avg_num_neighbors"]) or 1.0,
        }
    )
    torch.manual_seed(int(seed))
    model = build_model(cfg)
    model.set_statistics(torch.as_tensor(stats["shift"]), torch.as_tensor(stats["scale"]))
    return model


def fit(
    model: Potential,
    graphs: Sequence[dict[str, torch.Tensor]],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    energy_weight: float = 1.0,
    force_weight: float = 1.0,
    weights: Sequence[float] | None = None,
) -> dict[str, float]:
    """Train ``model`` in place on ``graphs`` (from :func:`atomtwin.engines.mlip.data.to_graph`).

    Adam with a cosine decay of the learning rate to 10 % over ``epochs``; the shuffle of
    epoch ``k`` is drawn from ``seed`` and ``k`` only (deterministic).

    Returns
    -------
    dict with ``loss`` (last epoch, weighted MSE of energy/atom (eV²) and force components
    (eV²/Å²)) and ``epochs``.
    """
    if not graphs:
        raise InputError("no training frame. Fix: give labelled seed frames.")
    dtype = model.shift.dtype
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(graphs)
    model.train()
    loss_val = math.nan
    for ep in range(epochs):
        for g in opt.param_groups:
            g["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * ep / max(epochs, 1))))
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + ep)
        perm = torch.randperm(n, generator=gen).tolist()
        tot = 0.0
        for s in range(0, n, batch_size):
            b = _cast(collate([graphs[i] for i in perm[s : s + batch_size]]), dtype)
            out = model(b)
            t = loss_terms(out, b)
            loss = 0.0
            if "energy" in t and energy_weight > 0:
                loss = loss + energy_weight * t["energy"][0] / t["energy"][2]
            if "forces" in t and force_weight > 0:
                loss = loss + force_weight * t["forces"][0] / t["forces"][2]
            if not torch.is_tensor(loss):
                raise InputError("the frames carry neither energy nor forces. Fix: label them.")
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(perm[s : s + batch_size])
        loss_val = tot / n
    model.eval()
    return {"loss": loss_val, "epochs": epochs}


def predict(
    model: Potential, graphs: Sequence[dict[str, torch.Tensor]], batch_size: int = 8
) -> list[dict[str, np.ndarray]]:
    """Energy (eV), per-atom energies (N,) eV and forces (N, 3) eV/Å of each graph."""
    dtype = model.shift.dtype
    model.eval()
    res = []
    for s in range(0, len(graphs), batch_size):
        chunk = graphs[s : s + batch_size]
        b = _cast(collate(chunk), dtype)
        out = model(b)
        f = out["forces"].detach().double().numpy()
        ae = out["atom_energy"].detach().double().numpy()
        e = out["energy"].detach().double().numpy()
        o = 0
        for k, g in enumerate(chunk):
            n = g["pos"].shape[0]
            res.append(
                {"energy": float(e[k]), "atom_energy": ae[o : o + n], "forces": f[o : o + n]}
            )
            o += n
    return res


def force_errors(model: Potential, graphs: Sequence[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Force MAE and RMSE (eV/Å, per component) and energy MAE (eV/atom) of ``model``."""
    pred = predict(model, graphs)
    df = np.concatenate(
        [p["forces"] - g["forces"].numpy() for p, g in zip(pred, graphs, strict=True)]
    )
    de = [
        abs(p["energy"] - float(g["energy"])) / g["pos"].shape[0]
        for p, g in zip(pred, graphs, strict=True)
        if "energy" in g
    ]
    return {
        "forces_mae": float(np.abs(df).mean()),
        "forces_rmse": float(np.sqrt((df**2).mean())),
        "energy_mae": float(np.mean(de)) if de else math.nan,
    }
