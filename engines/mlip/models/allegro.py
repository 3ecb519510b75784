"""Allegro-style strictly local pair model (Musaelian et al., Nat. Commun. 14, 579 (2023)).

Every ordered pair ``(i, j)`` carries a scalar latent ``x_ij`` and an equivariant tensor
track ``V_ij``.  Each layer builds the environment embedding of the centre,
``Γ_i = Σ_k w(x_ik) ⊗ Y(r_ik)``, contracts ``V_ij`` channel-wise with ``Γ_i`` (the tensor
product of :func:`atomtwin.engines.mlip.tp.tp_uuu`), mixes channels, and updates ``x_ij`` from the
scalar outputs.  No features travel between atoms, so the work parallelises over pairs.
The pair energy ``E_ij = MLP(x_ij)`` is summed onto the centre atom.
"""

from __future__ import annotations

import math

import torch
from atomtwin.engines.mlip.nn import MLP, EquivariantLinear, scatter_sum
from atomtwin.engines.mlip.tp import Irreps, cg_coefficients, make_paths, tp_uuu
from torch import Tensor, nn


class AllegroLayer(nn.Module):
    def __init__(
        self, irreps_in: Irreps, out_ls: tuple[tuple[int, int], ...], lmax: int, parity: bool,
        mul: int, latent: int, mlp_hidden: int, avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.mul = mul
        self.irreps_in: Irreps = tuple(irreps_in)
        self.env_irreps: Irreps = tuple((mul, ell, (-1) ** ell if parity else 1) for ell in range(lmax + 1))
        self.env_weights = MLP([latent, mul * (lmax + 1)])
        self.paths, self.tp_out = make_paths(irreps_in, self.env_irreps, out_ls, parity)
        for k, c in enumerate(cg_coefficients(self.paths, irreps_in, self.env_irreps, self.tp_out)):
            self.register_buffer(f"cg{k}", c.to(torch.get_default_dtype()))
        self.n_cg = len(self.paths)
        self.scalar_index = [k for k, (_, ell, p) in enumerate(self.tp_out) if ell == 0 and p == 1][0]
        self.latent_mlp = MLP([latent + mul, mlp_hidden, latent])
        self.norm = 1.0 / math.sqrt(avg_num_neighbors)
        #: the contraction (reference); ``atomtwin.engines.mlip.kernels.use_kernel`` sets
        #: ``sparse_contract`` instead: the sparse op fed with the per-node environment
        self.contract = tp_uuu
        self.sparse_contract = None

    def forward(
        self, x: Tensor, v: list[Tensor], sh: list[Tensor], cutoff: Tensor, centre: Tensor, n: int,
    ) -> tuple[Tensor, list[Tensor]]:
        e = x.shape[0]
        w = self.env_weights(x).reshape(e, len(sh), self.mul)  # (E, lmax+1, mul)
        if self.sparse_contract is not None:  # kernel: the environment stays per node
            env_node = [scatter_sum(w[:, ell, :, None] * y[:, None, :], centre, n) * self.norm
                        for ell, y in enumerate(sh)]
            t = self.sparse_contract(self, v, env_node, centre)
        else:
            env = [
                scatter_sum(w[:, ell, :, None] * y[:, None, :], centre, n)[centre] * self.norm
                for ell, y in enumerate(sh)
            ]
            cgs = [getattr(self, f"cg{k}") for k in range(self.n_cg)]
            t = self.contract(v, env, self.paths, cgs, len(self.tp_out))
        scal = t[self.scalar_index].squeeze(-1)
        x_new = (x + self.latent_mlp(torch.cat([x, scal], dim=-1)) * cutoff[:, None]) / math.sqrt(2.0)
        return x_new, t


class AllegroCore(nn.Module):
    """Atomic energies (before per-species scale/shift) as sums of pair energies."""

    def __init__(
        self, num_species: int, lmax: int = 2, parity: bool = True, num_layers: int = 2,
        mul: int = 32, num_basis: int = 8, latent: int = 64, mlp_hidden: int = 64,
        avg_num_neighbors: float = 10.0,
    ) -> None:
        super().__init__()
        self.lmax, self.mul, self.latent = lmax, mul, latent
        self.num_species = num_species
        self.two_body = MLP([2 * num_species + num_basis, mlp_hidden, latent])
        self.v_init = MLP([latent, mul * (lmax + 1)])
        irreps: Irreps = tuple((mul, ell, (-1) ** ell if parity else 1) for ell in range(lmax + 1))
        ps = (1, -1) if parity else (1,)
        full = tuple((ell, p) for ell in range(lmax + 1) for p in ps)
        layers, mixers = [], []
        for k in range(num_layers):
            last = k == num_layers - 1
            out_ls = ((0, 1),) if last else full
            layer = AllegroLayer(irreps, out_ls, lmax, parity, mul, latent, mlp_hidden, avg_num_neighbors)
            layers.append(layer)
            if not last:
                mixers.append(EquivariantLinear(layer.tp_out, layer.tp_out))
                irreps = layer.tp_out
        self.layers = nn.ModuleList(layers)
        self.mixers = nn.ModuleList(mixers)
        self.edge_energy = MLP([latent, mlp_hidden, 1])
        self.norm = 1.0 / math.sqrt(avg_num_neighbors)

    def forward(
        self, atom_types: Tensor, sh: list[Tensor], basis: Tensor, cutoff: Tensor,
        centre: Tensor, neighbour: Tensor,
    ) -> Tensor:
        """``basis``: (E, num_basis) Bessel basis (without envelope); ``cutoff``: (E,) the
        envelope u(r).  Returns (N,) raw atomic energies."""
        n = atom_types.shape[0]
        oh = nn.functional.one_hot(atom_types, self.num_species).to(basis.dtype)
        x = self.two_body(torch.cat([oh[centre], oh[neighbour], basis], dim=-1)) * cutoff[:, None]
        w = self.v_init(x).reshape(x.shape[0], self.lmax + 1, self.mul)
        v = [w[:, ell, :, None] * y[:, None, :] for ell, y in enumerate(sh)]
        for k, layer in enumerate(self.layers):
            x, v = layer(x, v, sh, cutoff, centre, n)
            if k < len(self.mixers):
                v = self.mixers[k](v)
        e_ij = self.edge_energy(x).squeeze(-1)
        return scatter_sum(e_ij, centre, n) * self.norm
