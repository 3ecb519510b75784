"""Learned electric enthalpy H(R, E): polarization, Born charges and polarizability by
differentiation (after Falletta et al., arXiv:2403.17207).

The model
---------
The field E (V/Å = eV/(e Å), one vector per structure) is an input of the model, which
returns the electric enthalpy to second order in the field (linear dielectric response)

    H(R, E) = sum_i [ e_i(R) - E . p_i(R) - 1/2 E . a_i(R) . E ]            (eV)

with per-atom outputs of one NequIP-style network (:class:`~atomtwin.engines.mlip.models.nequip.NequIPCore`,
its last layer asked for even scalars, one odd vector block and one even l=2 block): an energy
``e_i`` (scalar head), a polar vector ``p_i`` (linear map of the odd l=1 features, e Å) and a
symmetric polarizability ``a_i = c_i I + T(d_i)`` (scalar plus the traceless tensor built from
the l=2 features, e Å^2/V).  Everything else is automatic differentiation of H:

=====================  ================================  =========================
``energy``             H                                 eV, (B,)
``forces``             -dH/dR                            eV/Å, (N, 3)
``polarization``       P = -dH/dE                        e Å (cell dipole), (B, 3)
``born_charges``       Z*_{a,ij} = -d2H/dE_i dR_aj       e, (N, 3, 3) [a, i, j] = dP_i/dR_aj
``polarizability``     alpha_ij = -d2H/dE_i dE_j         e Å^2/V, (B, 3, 3)
=====================  ================================  =========================

Exact properties by construction (tested in ``tests/unit/engines/mlip/test_electric.py``):

* **Conservative.**  P, Z* and alpha are derivatives of one scalar, so P is a conservative
  field, Z*_{a,ij} = dF_aj/dE_i (the force on an atom is linear in E through Z*) and MD in a
  static field conserves H + kinetic energy.
* **Acoustic sum rule.**  H depends on positions only through edge vectors
  ``r_ij = R_j - R_i + S.cell``: a rigid translation R -> R + t leaves H(R, E) unchanged for
  every E, so ``sum_a dH/dR_a = 0`` identically in E and hence ``sum_a Z*_a = 0``.  In the
  autograd graph each edge gradient g enters atom j as +g and atom i as -g, so the sum vanishes
  to floating-point rounding for any structure and field (the paper's local formulation: P is
  a sum of translation-invariant local terms, never of absolute positions, which are
  ill-defined in a periodic cell).
* **Equivariance.**  e_i is a scalar, p_i an odd (polar) vector and a_i a rank-2 tensor of
  the equivariant features, so under a rotation Q of positions, cell and field P -> Q P,
  Z*_a -> Q Z*_a Q^T, alpha -> Q alpha Q^T and H is unchanged.

The electronic part of the response (alpha, hence eps_inf) is a function of R; the ionic part
(Z*) gives the IR spectrum and the static dielectric constant through MD.  The model has no
long-range Coulomb term: it describes the short-range response in conducting boundary
conditions (zero macroscopic field besides the applied one), the setting of the modern theory
of polarization and of :mod:`atomtwin.toolkit.spectra.dielectric`.

Training: :mod:`atomtwin.engines.mlip.electric_train`; MD under a field, ASE calculator and force
provider: :mod:`atomtwin.engines.mlip.electric_md`; an exact model crystal (data and reference):
:mod:`atomtwin.engines.mlip.electric_crystal`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.models.nequip import NequIPCore
from atomtwin.engines.mlip.nn import (
    MLP,
    BesselBasis,
    EquivariantLinear,
    polynomial_cutoff,
    scatter_sum,
    spherical_harmonics,
)
from atomtwin.toolkit.errors import InputError
from torch import Tensor, nn

__all__ = [
    "EnthalpyModel", "ElectricPotential", "build_electric_model", "save_electric", "load_electric",
    "CHECKPOINT_FORMAT", "edge_vectors", "l2_to_matrix",
]

CHECKPOINT_FORMAT = "atomtwin-electric"
CHECKPOINT_VERSION = 1


def edge_vectors(pos: Tensor, cell: Tensor, data: dict[str, Tensor]) -> Tensor:
    """Edge vectors ``r_ij = pos[j] - pos[i] + S @ cell[batch[i]]`` (E, 3), Å."""
    centre, neighbour = data["edge_index"][0], data["edge_index"][1]
    shift = data["edge_cell_shift"].to(pos.dtype)
    return pos[neighbour] - pos[centre] + torch.einsum("ek,ekx->ex", shift, cell[data["batch"][centre]])


class EnthalpyModel(nn.Module):
    """Base of electric-enthalpy models: derivatives of :meth:`enthalpy_terms` by autograd.

    Subclasses implement ``enthalpy_terms(pos, cell, data) -> (e (N,), p (N, 3), a (N, 3, 3))``
    (per-atom energy eV, polar vector e Å, polarizability e Å^2/V) as functions of the edge
    vectors, and set ``species`` (list of symbols), ``r_max`` (Å) and ``dtype``.

    ``forward(data)`` takes the batch dict of :mod:`atomtwin.engines.mlip` (``pos``, ``atom_types``,
    ``cell``, ``batch``, ``edge_index``, ``edge_cell_shift``) plus an optional ``field``
    (B, 3) in V/Å (zero if absent) and flags ``born_charges`` / ``polarizability`` (bool
    tensors or Python bools, default True) and returns the table of the module docstring
    plus ``atom_energy`` (N,) eV (H split over atoms).
    """

    species: list[str]
    r_max: float

    def enthalpy_terms(self, pos: Tensor, cell: Tensor, data: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.buffers())).dtype

    def forward(self, data: dict[str, Any]) -> dict[str, Tensor]:
        dtype = self.dtype
        types = data["atom_types"]
        if types.numel() and (int(types.min()) < 0 or int(types.max()) >= len(self.species)):
            raise InputError(f"atom_types out of range 0..{len(self.species) - 1}; the model knows "
                             f"{self.species}. Fix: map symbols with model.species.index(symbol).")
        pos = data["pos"].to(dtype)
        cell = data["cell"].to(dtype).reshape(-1, 3, 3)
        batch = data["batch"]
        nb = cell.shape[0]
        field = data.get("field")
        field = torch.zeros(nb, 3, dtype=dtype, device=pos.device) if field is None else field.to(dtype).reshape(nb, 3)
        want_z = bool(data.get("born_charges", True))
        want_a = bool(data.get("polarizability", True))
        keep = self.training or data["pos"].requires_grad
        with torch.enable_grad():
            if not pos.requires_grad:
                pos = pos.detach().requires_grad_(True)
            if not field.requires_grad:
                field = field.detach().requires_grad_(True)
            e, p, a = self.enthalpy_terms(pos, cell, data)
            fa = field[batch]
            h_atom = e - (fa * p).sum(-1) - 0.5 * torch.einsum("ni,nij,nj->n", fa, a, fa)
            h = scatter_sum(h_atom, batch, nb)
            need2 = keep or want_z or want_a
            dpos, dfield = torch.autograd.grad(h.sum(), [pos, field], create_graph=need2)
            pol = -dfield
            z = a_tot = None
            if want_z or want_a:
                zs, als = [], []
                for i in range(3):
                    gi = torch.autograd.grad(pol[:, i].sum(), [pos, field], create_graph=keep,
                                             retain_graph=True, allow_unused=True)
                    zs.append(gi[0] if gi[0] is not None else torch.zeros_like(pos))
                    als.append(gi[1] if gi[1] is not None else torch.zeros_like(field))
                z = torch.stack(zs, dim=1)  # (N, i, j) = dP_i / dR_aj
                a_tot = torch.stack(als, dim=1)  # (B, i, j) = dP_i / dE_j
        out = {"energy": h, "atom_energy": h_atom, "forces": -dpos, "polarization": pol}
        if want_z:
            out["born_charges"] = z
        if want_a:
            out["polarizability"] = a_tot
        if not keep:
            out = {k: v.detach() for k, v in out.items()}
        return out


def l2_to_matrix(d: Tensor) -> Tensor:
    """Symmetric traceless 3x3 matrices (..., 3, 3) from l=2 blocks (..., 5) in the basis of
    :func:`atomtwin.engines.mlip.nn.spherical_harmonics` (whose l=1 block is x, y, z), with
    ``|M|_F = |d|``: the Clebsch–Gordan map 1 x 1 -> 2, equivariant (M -> Q M Q^T)."""
    return torch.einsum("...c,abc->...ab", d, _cg112(d.dtype, d.device))


_CG_CACHE: dict[tuple, Tensor] = {}


def _cg112(dtype: torch.dtype, device) -> Tensor:
    key = (dtype, str(device))
    if key not in _CG_CACHE:
        from e3nn import o3

        c = o3.wigner_3j(1, 1, 2, dtype=torch.float64)
        c = c / c[:, :, 0].norm()  # each basis matrix of unit Frobenius norm
        _CG_CACHE[key] = c.to(dtype=dtype, device=device)
    return _CG_CACHE[key]


class ElectricPotential(EnthalpyModel):
    """Learned electric enthalpy on a NequIP-style network (see the module docstring).

    Parameters
    ----------
    config
        :class:`~atomtwin.engines.mlip.config.ModelConfig` with ``architecture="nequip"`` (the
        network must carry l=1 features: ``lmax >= 2`` for the polarizability's l=2 part,
        ``lmax >= 1`` at least) and ``species`` set.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.architecture != "nequip":
            raise InputError(f"the electric model is built on the NequIP-style network, got architecture "
                             f"'{config.architecture}'. Fix: architecture: nequip.")
        if config.lmax < 1:
            raise InputError("the electric model needs vector features (lmax >= 1). Fix: lmax: 2.")
        if not config.species:
            raise InputError("model.species is empty. Fix: list the chemical symbols.")
        self.config = config
        self.species = list(config.species)
        self.r_max = float(config.r_max)
        self.cutoff_p = float(config.cutoff_p)
        self.lmax = config.lmax
        s, mul = len(self.species), config.mul
        p1 = -1 if config.parity else 1  # polar vector: odd under inversion
        final = [(mul, 0, 1), (mul, 1, p1)] + ([(mul, 2, 1)] if config.lmax >= 2 else [])
        self.has_l2 = config.lmax >= 2
        self.basis = BesselBasis(config.r_max, config.num_basis)
        self.core = NequIPCore(s, config.lmax, config.parity, config.num_layers, mul, config.num_basis,
                               config.radial_hidden, config.radial_layers,
                               float(config.avg_num_neighbors or 10.0), final_irreps=tuple(final))
        self.vector_head = EquivariantLinear(((mul, 1, p1),), ((1, 1, p1),))
        self.alpha_head = MLP([mul, max(mul // 2, 1), 1])
        if self.has_l2:
            self.tensor_head = EquivariantLinear(((mul, 2, 1),), ((1, 2, 1),))
        self.register_buffer("shift", torch.zeros(s))  # eV per species
        self.register_buffer("scale", torch.ones(s))  # eV
        self.register_buffer("p_scale", torch.ones(()))  # e Å
        self.register_buffer("alpha_shift", torch.zeros(s))  # e Å^2/V per species
        self.register_buffer("alpha_scale", torch.ones(()))  # e Å^2/V

    @torch.no_grad()
    def set_statistics(self, shift, scale, p_scale: float = 1.0, alpha_shift=None, alpha_scale: float = 1.0) -> None:
        """Per-species energy shift/scale (eV), polar-vector scale (e Å), per-species
        polarizability shift and scale (e Å^2/V): the output normalisation."""
        self.shift.copy_(torch.as_tensor(shift, dtype=self.shift.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.shift.dtype))
        self.p_scale.fill_(float(p_scale))
        if alpha_shift is not None:
            self.alpha_shift.copy_(torch.as_tensor(alpha_shift, dtype=self.shift.dtype))
        self.alpha_scale.fill_(float(alpha_scale))

    def enthalpy_terms(self, pos: Tensor, cell: Tensor, data: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        types = data["atom_types"]
        centre, neighbour = data["edge_index"][0], data["edge_index"][1]
        vec = edge_vectors(pos, cell, data)
        r = vec.norm(dim=-1)
        sh = spherical_harmonics(vec, self.lmax)
        radial = self.basis(r) * polynomial_cutoff(r, self.r_max, self.cutoff_p)[:, None]
        x = self.core.features(types, sh, radial, centre, neighbour)
        scal = x[0].squeeze(-1)
        e = self.core.head(scal).squeeze(-1) * self.scale[types] + self.shift[types]
        p = self.vector_head([x[1]])[0][:, 0, :] * self.p_scale
        c = self.alpha_head(scal).squeeze(-1) * self.alpha_scale + self.alpha_shift[types]
        eye = torch.eye(3, dtype=pos.dtype, device=pos.device)
        a = c[:, None, None] * eye
        if self.has_l2:
            a = a + l2_to_matrix(self.tensor_head([x[2]])[0][:, 0, :]) * self.alpha_scale
        return e, p, a


def build_electric_model(config: ModelConfig | dict[str, Any]) -> ElectricPotential:
    """A freshly initialised :class:`ElectricPotential` in ``config.dtype``, eval mode."""
    cfg = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(dict(config))
    old = torch.get_default_dtype()
    torch.set_default_dtype({"float32": torch.float32, "float64": torch.float64}[cfg.dtype])
    try:
        return ElectricPotential(cfg).eval()
    finally:
        torch.set_default_dtype(old)


def save_electric(path: str | Path, model: ElectricPotential, extra: dict[str, Any] | None = None) -> None:
    """Write the model (config, weights) and plain ``extra`` metadata (metrics, history:
    dicts, lists, strings, numbers) atomically; no optimizer state.

    The bytes depend only on the content (built in memory, so the file name does not enter
    them): the same weights and metadata give the same SHA-256.
    """
    import io

    from atomtwin.engines.mlip.model import plain_metadata

    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
               "model_config": plain_metadata(model.config.to_dict()),
               "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
               **plain_metadata(extra or {}, "extra")}
    buf = io.BytesIO()
    torch.save(payload, buf)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def load_electric(path: str | Path, device: str | torch.device = "cpu") -> ElectricPotential:
    """Load a model written by :func:`save_electric` (eval mode), through
    ``torch.load(weights_only=True)``."""
    from atomtwin.toolkit.errors import FileFormatError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"electric model '{path}' does not exist.")
    fix = "pass a file written by atomtwin.engines.mlip.electric.save_electric / train_electric."
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many types for a damaged file)
        raise FileFormatError(path, f"is not a readable electric-enthalpy model "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]}).", fix) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(path, "is not an atomtwin electric-enthalpy model.", fix)
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise FileFormatError(path, f"has format version {ckpt.get('version')}; this atomtwin reads "
                              f"{CHECKPOINT_VERSION}.", "retrain.")
    model = build_electric_model(ModelConfig.from_dict(ckpt["model_config"]))
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        raise FileFormatError(path, f"does not match the model its config describes "
                              f"({str(err).splitlines()[0]}).", "retrain.") from err
    model.metrics = ckpt.get("metrics", {})
    return model.to(device).eval()
