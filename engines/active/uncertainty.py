"""Uncertainty of our potentials, per atom and per structure.

Two estimators with one interface, ``estimator.evaluate(graphs) -> list[Prediction]``:

* :class:`Committee` — a deep ensemble of independently initialised models trained on the
  same data.  The prediction is member 0's (the model that runs the MD and is exported);
  the raw per-atom uncertainty is the spread of the members' forces,
  ``s_i = sqrt(mean_c var_m F_ic)`` (eV/Å, per component).  Cost: M forward passes.
* :class:`LastLayerGP` — a single model.  Per-atom features (by default the invariants of
  every NequIP interaction layer's output; or the input of the energy head; for Allegro the
  pair latents summed on the centre atom) are captured with forward hooks; a Bayesian linear model of the local energy on these
  features (one per species, standardised, prior precision ``reg``) has the posterior
  local-energy variance ``s_i^2 = phi_i^T (Phi^T Phi + reg n I)^-1 phi_i`` — the FLARE-style
  local-energy variance of a Gaussian process with a linear kernel on learned features.
  It is dimensionless (a leverage); recalibration (:mod:`.calibration`) maps it to eV/Å.
  Cost: one forward pass (the features come with the energy) and a d×d solve.

Raw values are *not* calibrated: :class:`~atomtwin.engines.active.calibration.Calibration`
turns them into a per-component force standard deviation (eV/Å) fitted on held-out data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from atomtwin.engines.active.fit import _cast, predict
from atomtwin.engines.mlip.data import collate
from atomtwin.engines.mlip.model import Potential
from atomtwin.toolkit.errors import InputError

__all__ = ["Prediction", "Committee", "LastLayerGP", "atom_features"]


@dataclass
class Prediction:
    """One structure's prediction.

    Attributes
    ----------
    energy : float, eV.   forces : (N, 3) eV/Å (member 0 / the single model).
    sigma : (N,) raw per-atom uncertainty (uncalibrated; see the estimator).
    """

    energy: float
    forces: np.ndarray
    sigma: np.ndarray

    @property
    def sigma_max(self) -> float:
        """Structure uncertainty: the largest per-atom value (what triggers a call)."""
        return float(np.max(self.sigma)) if self.sigma.size else 0.0

    @property
    def sigma_mean(self) -> float:
        return float(np.mean(self.sigma)) if self.sigma.size else 0.0


class Committee:
    """Deep ensemble of potentials (member 0 is the one that runs MD and is exported).

    Parameters
    ----------
    models
        At least two independently initialised :class:`Potential` on the same species.
    """

    kind = "committee"

    def __init__(self, models: Sequence[Potential]) -> None:
        if len(models) < 2:
            raise InputError(
                f"a committee needs at least 2 models, got {len(models)}. "
                "Fix: set uncertainty.n_models >= 2, or kind: gp for one model."
            )
        self.models = list(models)

    @property
    def model(self) -> Potential:
        return self.models[0]

    def fit_features(self, graphs: Sequence[dict[str, torch.Tensor]]) -> None:
        """Nothing to refit: the spread comes from the members themselves."""

    def evaluate(self, graphs: Sequence[dict[str, torch.Tensor]]) -> list[Prediction]:
        per = [predict(m, graphs) for m in self.models]
        out = []
        for k in range(len(graphs)):
            f = np.stack([p[k]["forces"] for p in per])  # (M, N, 3)
            s = np.sqrt(f.var(axis=0, ddof=1).mean(axis=1))
            out.append(Prediction(per[0][k]["energy"], per[0][k]["forces"], s))
        return out


def _invariants(blocks: list[torch.Tensor], irreps) -> torch.Tensor:
    """Rotation- and inversion-invariant parts (N, d) of equivariant blocks (N, mul, 2l+1):
    even scalars as they are, odd scalars by their absolute value, l >= 1 by their norm."""
    parts = []
    for b, (_mul, ell, p) in zip(blocks, irreps, strict=True):
        if ell == 0:
            parts.append(b[:, :, 0] if p == 1 else b[:, :, 0].abs())
        else:
            parts.append(b.norm(dim=-1))
    return torch.cat(parts, dim=1)


def atom_features(
    model: Potential,
    graphs: Sequence[dict[str, torch.Tensor]],
    batch_size: int = 8,
    layers: str = "last",
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Per-atom readout features (N, d) of each graph and the model's predictions.

    Captured with forward hooks (the model is not modified): ``layers="last"`` reads the
    input of ``core.head`` (NequIP: the last layer's even scalars, d = mul) or of
    ``core.edge_energy`` (Allegro: pair latents, summed onto the centre atom);
    ``layers="all"`` (NequIP) concatenates the invariants of every interaction layer's
    output (even scalars, |odd scalars|, norms of the l >= 1 channels): a richer descriptor
    of the local environment than the few channels the energy head reads (Allegro: the
    same as ``"last"``).
    """
    core = model.core
    got: dict[Any, Any] = {}
    hooks = []
    if layers == "all" and hasattr(core, "head") and hasattr(core, "layers"):
        for k, layer in enumerate(core.layers):
            hooks.append(
                layer.register_forward_hook(
                    lambda _m, _a, out, k=k: got.__setitem__(("layer", k), out)
                )
            )
    elif hasattr(core, "head"):
        hooks.append(
            core.head.register_forward_pre_hook(
                lambda _m, args: got.__setitem__("x", args[0].detach())
            )
        )
    elif hasattr(core, "edge_energy"):
        hooks.append(
            core.register_forward_pre_hook(
                lambda _m, args: got.__setitem__("centre", args[4].detach())
            )
        )
        hooks.append(
            core.edge_energy.register_forward_pre_hook(
                lambda _m, args: got.__setitem__("edge", args[0].detach())
            )
        )
    else:
        raise InputError(
            f"{type(core).__name__} has no readout module (head / edge_energy) to read "
            "features from. Fix: use uncertainty kind: committee with this model."
        )
    dtype = model.shift.dtype
    feats: list[np.ndarray] = []
    preds: list[dict[str, Any]] = []
    model.eval()
    try:
        for s in range(0, len(graphs), batch_size):
            chunk = graphs[s : s + batch_size]
            b = _cast(collate(chunk), dtype)
            out = model(b)
            if ("layer", 0) in got:
                x = torch.cat(
                    [
                        _invariants(got[("layer", k)], layer.gate.irreps_out)
                        for k, layer in enumerate(core.layers)
                    ],
                    dim=1,
                ).detach()
            elif "x" in got:
                x = got["x"]
            else:
                n = b["pos"].shape[0]
                x = torch.zeros(n, got["edge"].shape[1], dtype=got["edge"].dtype)
                x.index_add_(0, got["centre"], got["edge"])
            x = x.double().numpy()
            f = out["forces"].detach().double().numpy()
            e = out["energy"].detach().double().numpy()
            o = 0
            for k, g in enumerate(chunk):
                n = g["pos"].shape[0]
                feats.append(x[o : o + n])
                preds.append({"energy": float(e[k]), "forces": f[o : o + n]})
                o += n
    finally:
        for h in hooks:
            h.remove()
    return feats, preds


class LastLayerGP:
    """Single-model uncertainty: posterior local-energy variance of a Bayesian linear
    readout on the model's last-layer per-atom features (one per species).

    Parameters
    ----------
    model
        The potential.
    reg
        Prior precision relative to the number of training atoms of a species (ridge
        ``reg * n_s``); smaller = sharper contrast between seen and unseen environments.
    features
        ``"last"`` (the energy head's input) or ``"all"`` (invariants of every layer; see
        :func:`atom_features`).
    """

    kind = "gp"

    def __init__(self, model: Potential, reg: float = 1e-3, features: str = "all") -> None:
        if features not in ("last", "all"):
            raise InputError(f"features {features!r} is unknown. Fix: 'last' or 'all'.")
        self.models = [model]
        self.reg = float(reg)
        self.features = features
        self.params: dict[int, dict[str, np.ndarray]] = {}

    @property
    def model(self) -> Potential:
        return self.models[0]

    def fit_features(self, graphs: Sequence[dict[str, torch.Tensor]]) -> None:
        """The posterior from the training graphs' features (call after each model update)."""
        feats, _ = atom_features(self.model, graphs, layers=self.features)
        x = np.concatenate(feats)
        types = np.concatenate([g["atom_types"].numpy() for g in graphs])
        self.params = {}
        for t in np.unique(types):
            xs = x[types == t]
            mu = xs.mean(0)
            sd = xs.std(0) + 1e-8 * (np.abs(xs).max() + 1e-30)
            z = (xs - mu) / sd
            d = z.shape[1]
            a = z.T @ z + self.reg * max(len(z), 1) * np.eye(d)
            self.params[int(t)] = {"mu": mu, "sd": sd, "ainv": np.linalg.inv(a)}

    def heldout_sigma(self, graphs: Sequence[dict[str, torch.Tensor]]) -> list[np.ndarray]:
        """Raw per-atom sigma (N,) of each *training* graph as if that graph had been left
        out of the fit: the leverage of an atom inside the fit is biased low (most with few
        frames and many features), so a level set by the training frames uses this.

        Exact for the linear posterior (Woodbury): with ``H = Z A^-1 Z^T`` over the graph's
        atoms of one species, the left-out leverages are ``diag(H (I - H)^-1)``.
        """
        feats, _ = atom_features(self.model, graphs, layers=self.features)
        out = []
        for g, x in zip(graphs, feats, strict=True):
            types = g["atom_types"].numpy()
            s2 = np.zeros(len(x))
            for t in np.unique(types):
                m = types == t
                par = self.params.get(int(t))
                if par is None:
                    s2[m] = np.inf
                    continue
                z = (x[m] - par["mu"]) / par["sd"]
                h = z @ par["ainv"] @ z.T
                k = np.eye(len(h)) - h
                s2[m] = np.diag(h @ np.linalg.solve(k, np.eye(len(h))))
            out.append(np.sqrt(np.maximum(s2, 0.0)))
        return out

    def evaluate(self, graphs: Sequence[dict[str, torch.Tensor]]) -> list[Prediction]:
        if not self.params:
            raise InputError(
                "LastLayerGP has not been fitted. Fix: call fit_features(training graphs)."
            )
        feats, preds = atom_features(self.model, graphs, layers=self.features)
        out = []
        for g, x, p in zip(graphs, feats, preds, strict=True):
            types = g["atom_types"].numpy()
            s2 = np.zeros(len(x))
            for t in np.unique(types):
                m = types == t
                par = self.params.get(int(t))
                if par is None:  # a species never seen: maximally uncertain
                    s2[m] = np.inf
                    continue
                z = (x[m] - par["mu"]) / par["sd"]
                s2[m] = np.einsum("nd,de,ne->n", z, par["ainv"], z)
            out.append(Prediction(p["energy"], p["forces"], np.sqrt(np.maximum(s2, 0.0))))
        return out
