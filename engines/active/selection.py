"""Offline selection: which frames of an existing trajectory to label.

For users who already have trajectories: the structure uncertainty (largest per-atom
value) ranks the pool; among the ``candidates * n`` most uncertain frames a greedy
farthest-point pass in the model's feature space (per-structure mean and spread of the
last-layer per-atom features, standardised) picks frames that are uncertain *and* unlike
the ones already picked, so that a burst of near-identical uncertain frames is not labelled
many times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from atomtwin.engines.active.uncertainty import atom_features
from atomtwin.engines.mlip.data import frame_from_atoms, to_graph
from atomtwin.toolkit.errors import InputError

__all__ = ["Selection", "select_frames"]


@dataclass
class Selection:
    """``indices`` into the pool in the order picked; ``sigma`` (n_pool,) the structure
    uncertainty of every frame (calibrated when a calibration was given)."""

    indices: list[int]
    sigma: np.ndarray


def _descriptors(model, graphs) -> np.ndarray:
    feats, _ = atom_features(model, graphs)
    d = np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in feats])
    sd = d.std(0)
    return (d - d.mean(0)) / np.where(sd > 0, sd, 1.0)


def select_frames(
    estimator,
    pool: Sequence[Any],
    n: int,
    *,
    calibration=None,
    diversity: bool = True,
    candidates: int = 4,
) -> Selection:
    """Pick ``n`` frames of ``pool`` to label.

    Parameters
    ----------
    estimator
        :class:`~atomtwin.engines.active.uncertainty.Committee` or ``LastLayerGP``.
    pool
        Frame dicts (:func:`atomtwin.engines.mlip.data.read_frames`) or ``ase.Atoms``.
    n
        How many to pick (at most the pool size).
    calibration
        A :class:`~atomtwin.engines.active.calibration.Calibration` (ranks are the same
        without it for a scale factor).
    diversity
        Farthest-point diversity among the ``candidates * n`` most uncertain frames; without
        it, simply the ``n`` most uncertain.
    """
    if n < 1:
        raise InputError(f"n = {n}: select at least one frame.")
    model = estimator.model
    frames = [fr if isinstance(fr, dict) else frame_from_atoms(fr) for fr in pool]
    if not frames:
        raise InputError("the pool is empty. Fix: give frames to select from.")
    graphs = [to_graph(fr, model.species, model.r_max) for fr in frames]
    preds = estimator.evaluate(graphs)
    sig = np.array(
        [np.max(calibration(p.sigma)) if calibration is not None else p.sigma_max for p in preds]
    )
    n = min(n, len(frames))
    order = np.argsort(-sig, kind="stable")
    if not diversity:
        return Selection([int(i) for i in order[:n]], sig)
    cand = order[: min(len(order), max(n, candidates * n))]
    desc = _descriptors(model, [graphs[i] for i in cand])
    s = sig[cand] / max(float(np.max(sig[cand])), 1e-300)
    chosen = [0]
    dmin = np.linalg.norm(desc - desc[0], axis=1)
    while len(chosen) < n:
        score = s * dmin
        score[chosen] = -np.inf
        k = int(np.argmax(score))
        chosen.append(k)
        dmin = np.minimum(dmin, np.linalg.norm(desc - desc[k], axis=1))
    return Selection([int(cand[k]) for k in chosen], sig)
