"""NequIP-style message passing (Batzner et al., Nat. Commun. 13, 2453 (2022)).

Per layer: self-interaction (linear), equivariant convolution ``h_j ⊗ Y(r_ij)`` weighted by a
radial network of the Bessel × cutoff basis, sum over neighbours, linear, species-dependent
self-connection, gate.  The output head maps the final even scalars to an atomic energy.
"""

from __future__ import annotations

import math

import torch
from atomtwin.engines.mlip.nn import MLP, EquivariantLinear, Gate, SpeciesLinear, scatter_sum
from atomtwin.engines.mlip.tp import (
    Irreps,
    UVUPlan,
    cg_coefficients,
    conv_uvu,
    make_paths,
    uvu_plan,
)
from atomtwin.toolkit.errors import InputError
from torch import Tensor, nn


def hidden_irreps(mul: int, lmax: int, parity: bool) -> Irreps:
    """``mul`` channels of every ``(ell, p)`` with ``ell <= lmax`` (both parities if ``parity``)."""
    ps = (1, -1) if parity else (1,)
    return tuple((mul, ell, p) for ell in range(lmax + 1) for p in ps)


def sh_irreps(lmax: int, parity: bool) -> Irreps:
    return tuple((1, ell, (-1) ** ell if parity else 1) for ell in range(lmax + 1))


class Interaction(nn.Module):
    """One NequIP interaction block: features ``irreps_in`` -> ``irreps_out`` (gated)."""

    def __init__(
        self, irreps_in: Irreps, irreps_out: Irreps, lmax: int, parity: bool, num_species: int,
        num_basis: int, radial_hidden: int, radial_layers: int, avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.gate = Gate(irreps_out)
        pre = self.gate.irreps_in
        self.linear_1 = EquivariantLinear(irreps_in, irreps_in)
        sh = sh_irreps(lmax, parity)
        out_ls = tuple((ell, p) for _, ell, p in irreps_out)
        self.paths, self.tp_out = make_paths(irreps_in, sh, out_ls, parity)
        cgs = cg_coefficients(self.paths, irreps_in, sh, self.tp_out)
        for k, c in enumerate(cgs):
            self.register_buffer(f"cg{k}", c.to(torch.get_default_dtype()))
        self.n_cg = len(self.paths)
        # grouped couplings of the fast convolution: derived from the CG buffers, not saved
        plan = uvu_plan(self.paths, cgs, irreps_in, sh)
        self.plan_groups = plan.groups
        for g, cd in enumerate(plan.couplings):
            self.register_buffer(f"plan_c{g}", cd.to(torch.get_default_dtype()), persistent=False)
        self.mul = irreps_in[0][0]
        self.radial = MLP([num_basis] + [radial_hidden] * radial_layers + [len(self.paths) * self.mul])
        self.linear_2 = EquivariantLinear(self.tp_out, pre)
        self.self_connection = SpeciesLinear(irreps_in, pre, num_species)
        self.norm = 1.0 / math.sqrt(avg_num_neighbors)
        #: eager backward that keeps less (see :func:`atomtwin.engines.mlip.tp.conv_uvu`);
        #: a run-time choice, not saved: :meth:`atomtwin.engines.mlip.model.Potential.set_lean_memory`
        self.lean_memory = False

    def forward(
        self, x: list[Tensor], atom_types: Tensor, sh: list[Tensor], radial: Tensor,
        centre: Tensor, neighbour: Tensor,
    ) -> list[Tensor]:
        n = x[0].shape[0]
        sc = self.self_connection(x, atom_types)
        h = self.linear_1(x)
        w = self.radial(radial).reshape(radial.shape[0], self.n_cg, self.mul)
        cgs = [getattr(self, f"cg{k}") for k in range(self.n_cg)]
        ng = len(self.plan_groups)
        plan = UVUPlan(self.plan_groups, [getattr(self, f"plan_c{g}") for g in range(ng)])
        # channels-last edge messages (see tp.conv_uvu); node-level transposes are cheap
        msg = conv_uvu([b.transpose(1, 2).contiguous() for b in h], neighbour, sh, w, self.paths,
                       cgs, len(self.tp_out), plan, lean=self.lean_memory)
        agg = [(scatter_sum(m, centre, n) * self.norm).transpose(1, 2) for m in msg]
        y = self.linear_2(agg)
        return self.gate([a + b for a, b in zip(y, sc, strict=True)])


class NequIPCore(nn.Module):
    """Atomic energies (before per-species scale/shift) from a graph.

    Parameters
    ----------
    num_species, r_max, lmax, parity, num_layers, mul, num_basis, radial_hidden,
    radial_layers, avg_num_neighbors
        Architecture (see :class:`atomtwin.engines.mlip.config.ModelConfig`).
    final_irreps
        Irreps of the last layer's output (default: ``mul`` even scalars, all the energy head
        reads).  Models with tensor outputs (e.g. :mod:`atomtwin.engines.mlip.electric`) ask for
        vectors and rank-2 blocks too and read them with :meth:`features`; the first block
        must stay ``(mul, 0, 1)``.
    """

    def __init__(
        self, num_species: int, lmax: int = 2, parity: bool = True, num_layers: int = 3,
        mul: int = 32, num_basis: int = 8, radial_hidden: int = 64, radial_layers: int = 2,
        avg_num_neighbors: float = 10.0, final_irreps: Irreps | None = None,
    ) -> None:
        super().__init__()
        self.lmax = lmax
        last: Irreps = tuple(final_irreps) if final_irreps else ((mul, 0, 1),)
        if last[0] != (mul, 0, 1):
            raise InputError(f"final_irreps must start with ({mul}, 0, 1) (the energy head's scalars), got {last}.")
        self.embed = nn.Parameter(torch.randn(num_species, mul))
        irreps: Irreps = ((mul, 0, 1),)
        hidden = hidden_irreps(mul, lmax, parity)
        layers = []
        for k in range(num_layers):
            out = hidden if k < num_layers - 1 else last
            layers.append(Interaction(irreps, out, lmax, parity, num_species, num_basis,
                                      radial_hidden, radial_layers, avg_num_neighbors))
            irreps = layers[-1].gate.irreps_out
        self.layers = nn.ModuleList(layers)
        self.head = MLP([mul, max(mul // 2, 1), 1])

    def forward(
        self, atom_types: Tensor, sh: list[Tensor], radial: Tensor, centre: Tensor,
        neighbour: Tensor, layer_edges: list[int] | None = None,
    ) -> Tensor:
        """``sh``: SH blocks (E, 2l+1); ``radial``: (E, num_basis) basis × cutoff.
        Returns (N,) raw atomic energies.  ``layer_edges``: see :meth:`features`."""
        x = self.features(atom_types, sh, radial, centre, neighbour, layer_edges)
        return self.head(x[0].squeeze(-1)).squeeze(-1)

    def features(
        self, atom_types: Tensor, sh: list[Tensor], radial: Tensor, centre: Tensor,
        neighbour: Tensor, layer_edges: list[int] | None = None,
    ) -> list[Tensor]:
        """The last layer's node features: blocks ``(N, mul, 2l+1)`` of ``final_irreps``.

        ``layer_edges`` (optional, ``num_layers - 1`` counts): layer ``k + 2`` passes messages
        along the first ``layer_edges[k]`` edges only (the first layer along all).  A domain
        decomposition (LAMMPS' plugin) orders its edges by the hop count ``c`` of their centre
        from the rank's own atoms (edges ``r < r_max``): a node ``c`` hops away needs its
        layer-``k`` features only if ``c <= L - k``, so later layers skip the outer ghosts (the
        features of skipped centres are then wrong, and unused: their energy weight is 0 and
        they feed no kept centre)."""
        x = [self.embed[atom_types].unsqueeze(-1)]
        for k, layer in enumerate(self.layers):
            if k and layer_edges is not None:
                m = layer_edges[k - 1]
                x = layer(x, atom_types, [b[:m] for b in sh], radial[:m], centre[:m],
                          neighbour[:m])
            else:
                x = layer(x, atom_types, sh, radial, centre, neighbour)
        return x
