"""Allegro-style strictly local pair model (Musaelian et al., Nat. Commun. 14, 579 (2023)).

Every ordered pair ``(i, j)`` carries a scalar latent ``x_ij`` and an equivariant tensor
track ``V_ij``.  Each layer builds the environment embedding of the centre,
``Γ_i = Σ_k w(x_ik) ⊗ Y(r_ik)``, contracts ``V_ij`` channel-wise with ``Γ_i`` (the tensor
product of :func:`atomtwin.engines.mlip.tp.tp_uuu`), mixes channels, and updates ``x_ij`` from the
scalar outputs.  No features travel between atoms, so the work parallelises over pairs.
The pair energy ``E_ij = MLP(x_ij)`` is summed onto the centre atom.

Layout (CPU, eager; every op a memory pass): the tensor track is ONE tensor ``(E, D, mul)``
(all irrep components concatenated, channels last), so element-wise work runs along
contiguous rows of ``mul`` channels instead of broadcasting over 2l+1 <= 7 components, the
channel mixing is one matmul batched over the components (:func:`mix_cl`), and the
contraction runs over the nonzero Clebsch–Gordan entries only (:func:`tp_uuu_cl`: one
gather, one product, one ``index_add``; backward the same three), with the centre's
environment gathered and weighted per atom before it is gathered per pair
(:func:`tp_uuu_cl_centre`).  Parameters and buffers are those of the per-block layout, so
checkpoints load unchanged.
"""

from __future__ import annotations

import math

import torch
from atomtwin.engines.mlip.nn import MLP, EquivariantLinear, scatter_sum
from atomtwin.engines.mlip.torch_internals import tracing
from atomtwin.engines.mlip.tp import Irreps, cg_coefficients, make_paths
from torch import Tensor, nn


def _components(irreps: Irreps) -> list[int]:
    return [2 * ell + 1 for _, ell, _ in irreps]


def coupling_entries(paths, cgs: list[Tensor], dims1: list[int], dims2: list[int],
                     dims_out: list[int], tol: float = 1e-12) -> tuple[Tensor, Tensor]:
    """Nonzero entries of the block coupling: ``idx`` (3, nnz) long (component of input 1,
    of input 2, of the output, in concatenated numbering) and ``val`` (nnz,) float64."""
    o1 = [sum(dims1[:i]) for i in range(len(dims1))]
    o2 = [sum(dims2[:i]) for i in range(len(dims2))]
    o3 = [sum(dims_out[:i]) for i in range(len(dims_out))]
    ent: dict[tuple[int, int, int], float] = {}
    for (i1, i2, k), c in zip(paths, cgs, strict=True):
        c = c.detach().double().cpu()
        for a, b, cc in (c.abs() > tol).nonzero().tolist():
            key = (o1[i1] + a, o2[i2] + b, o3[k] + cc)
            ent[key] = ent.get(key, 0.0) + float(c[a, b, cc])
    keys = sorted(ent, key=lambda t: (t[2], t[0], t[1]))
    idx = torch.tensor(keys, dtype=torch.long).reshape(-1, 3).T.contiguous()
    return idx, torch.tensor([ent[k] for k in keys], dtype=torch.float64)


def tp_uuu_cl(x: Tensor, y: Tensor, idx: Tensor, val: Tensor, n_out: int) -> Tensor:
    """Channel-wise product, channels last: ``out[e, k, u] = sum_{nnz (i, j, k)} val x[e, i, u]
    y[e, j, u]`` for ``x`` (E, A, mul), ``y`` (E, B, mul); returns (E, n_out, mul).  The
    same numbers as :func:`atomtwin.engines.mlip.tp.tp_uuu` on the split blocks, up to the
    order of the sums."""
    prod = x.index_select(1, idx[0]) * (y.index_select(1, idx[1]) * val[:, None])
    return x.new_zeros((x.shape[0], n_out, x.shape[2])).index_add(1, idx[2], prod)


def tp_uuu_cl_centre(x: Tensor, y_node: Tensor, centre: Tensor, idx: Tensor, val: Tensor,
                     n_out: int) -> Tensor:
    """:func:`tp_uuu_cl` with ``y`` per centre atom: ``y[e] = y_node[centre[e]]`` (the
    environment embedding is a property of the centre).  The coupling value and the gather
    over the second index run once per atom (N rows) instead of once per pair (E rows, ~40x
    more), and the (E, B, mul) per-pair copy of the environment is never made: two of the
    six per-pair passes of forward and of backward are gone; the same sums in the same
    order, so the numbers are those of :func:`tp_uuu_cl`."""
    y = y_node.index_select(1, idx[1]) * val[:, None]  # (N, nnz, mul)
    prod = x.index_select(1, idx[0]) * y.index_select(0, centre)
    return x.new_zeros((x.shape[0], n_out, x.shape[2])).index_add(1, idx[2], prod)


def _entry_matrix(rows: Tensor, n_rows: int, values: Tensor) -> Tensor:
    """``(n_rows, nnz)`` with ``values[n]`` at ``(rows[n], n)``: a sum over the entries that
    share a row, as one small matrix product."""
    m = values.new_zeros((n_rows, rows.shape[0]))
    m[rows, torch.arange(rows.shape[0], device=rows.device)] = values
    return m


def _pair_coupling(idx: Tensor, val: Tensor, n_out: int, n_y: int) -> tuple[Tensor, Tensor]:
    """The coupling over distinct component pairs ``(i, j)``: ``pairs`` (2, P) and ``r``
    (n_out, P) with ``out[k] = sum_P r[k, P] x[i_P] y[j_P]``.  At lmax 1 every pair feeds one
    output (P = nnz, 16 in the first layer); at lmax 2 pairs feed up to ~2 (P = 81 < nnz = 137),
    so the per-pair products are 1.7x fewer than the per-entry ones."""
    key = idx[0] * n_y + idx[1]
    uniq, inv = torch.unique(key, return_inverse=True)
    pairs = torch.stack([uniq // n_y, uniq % n_y])
    r = val.new_zeros((n_out, uniq.shape[0])).index_put_((idx[2], inv), val, accumulate=True)
    return pairs, r


def _gather_rows(t: Tensor, index: Tensor) -> Tensor:
    """``t.index_select(0, index)`` for a contiguous (N, ...) ``t``, through its 2-d view
    (the row copy of a 2-d ``index_select`` is ~1.4x faster on CPU than the 3-d one)."""
    row = math.prod(t.shape[1:])
    return t.reshape(t.shape[0], row).index_select(0, index).view((index.shape[0],) + t.shape[1:])


class _CentreContraction(torch.autograd.Function):
    """:func:`tp_uuu_cl_centre` that keeps for backward only its inputs: the pair track
    ``x`` (E, A, mul) and the per-atom environment (N, B, mul), not the two (E, nnz, mul)
    gathers that autograd saves for the product (at 4,096 Cu atoms, 2 x 180 MB in the first
    layer, alive from the forward to the end of the backward).  The backward gathers again,
    in return for a smaller peak.  The sums over entries that share an output component
    (forward) or an input component of ``x`` (backward) are small matrix products with the
    coupling values folded in, ``(n_out, nnz) @ (E, nnz, mul)`` and ``(A, nnz) @ (E, nnz,
    mul)``: ~2x faster on CPU than an ``index_add`` along the component dimension (the
    values enter per atom on the way back).  The formulas are torch ops on the saved inputs, so they are differentiated in turn (force
    training's double backward)."""

    @staticmethod
    def forward(ctx, x, y_node, centre, idx, val, n_out):
        pairs, r = _pair_coupling(idx, val, n_out, y_node.shape[1])
        ctx.pairs, ctx.r = pairs, r  # constants of the layer: the backward reuses them
        ctx.save_for_backward(x, y_node, centre)
        # no autograd here: the product is written into the first gather, so two
        # (E, pairs, mul) buffers are alive at once instead of three
        prod = x.index_select(1, pairs[0])
        prod.mul_(_gather_rows(y_node.index_select(1, pairs[1]), centre))
        return torch.matmul(r, prod)

    @staticmethod
    def backward(ctx, grad):
        x, y_node, centre = ctx.saved_tensors
        pairs, r = ctx.pairs, ctx.r
        single = bool(((r != 0).sum(0) == 1).all())  # each pair feeds one output component
        if single:
            # (E, pairs, mul): the output's gradient at each pair; its value is applied per
            # atom below (a transposed broadcast product here runs as E tiny matrix products)
            k_of = (r != 0).to(torch.int8).argmax(0)
            pval = r.gather(0, k_of[None]).squeeze(0)
            gp = grad.index_select(1, k_of)
        else:  # pairs feed several outputs (lmax >= 2): the transposed coupling, values in it
            pval = None
            gp = torch.matmul(r.T, grad)
        # a first-order backward (forces at inference) runs without grad mode: products go
        # into the fresh gathers; with create_graph they stay out of place
        inplace = not torch.is_grad_enabled()
        gx = gy = None
        if ctx.needs_input_grad[0]:
            yv = y_node.index_select(1, pairs[1])
            y = _gather_rows(yv * pval[:, None] if single else yv, centre)
            y = y.mul_(gp) if inplace else y * gp
            gx = torch.matmul(_entry_matrix(pairs[0], x.shape[1], torch.ones_like(r[0])), y)
            del y
        if ctx.needs_input_grad[1]:
            q = x.index_select(1, pairs[0])
            q = q.mul_(gp) if inplace else q * gp
            del gp
            n, npair = y_node.shape[0], pairs.shape[1]
            row = npair * x.shape[2]
            per_atom = q.new_zeros((n, row)).index_add(0, centre, q.reshape(q.shape[0], row))
            del q
            per_atom = per_atom.view(n, npair, x.shape[2])
            if single:
                per_atom = per_atom * pval[:, None]
            gy = y_node.new_zeros(y_node.shape).index_add(1, pairs[1], per_atom)
        return gx, gy, None, None, None, None


#: per-entry elements (edges x CG entries x channels) from which :func:`contract_centre`
#: takes the lean backward: below, the Function's fixed Python cost outweighs what it saves
#: (measured, float32 CPU, 16 channels: 1.18x slower at 8 atoms / 86k elements, 1.06x at
#: 344k, 0.97x at 688k, 0.88x at 2.8M), and the buffers it avoids are small anyway
LEAN_MIN_ELEMENTS = 2**19


def contract_centre(x: Tensor, y_node: Tensor, centre: Tensor, idx: Tensor, val: Tensor,
                    n_out: int) -> Tensor:
    """:func:`tp_uuu_cl_centre` with the smaller backward footprint of
    :class:`_CentreContraction` in eager mode from :data:`LEAN_MIN_ELEMENTS` on; under
    ``torch.compile``, ``torch.export`` or ``make_fx`` tracing the plain ops (the compiler
    plans its own buffers; traced, the lean form measured 0.82-0.88x in our AOTI package)."""
    if (x.shape[0] * idx.shape[1] * x.shape[2] < LEAN_MIN_ELEMENTS or tracing()
            or not (x.requires_grad or y_node.requires_grad)):
        return tp_uuu_cl_centre(x, y_node, centre, idx, val, n_out)
    return _CentreContraction.apply(x, y_node, centre, idx, val, n_out)


def mix_cl(mixer: EquivariantLinear, v: Tensor) -> Tensor:
    """:class:`EquivariantLinear` (no bias, same irreps in and out) on a channels-last
    ``(E, D, mul)`` track.  Each component carries its irrep's weight (zero where the irrep
    has no partner), and ONE matmul batched over the D components mixes the channels:
    (D, E, mul) @ (D, mul, mul).  Per irrep block, ``block @ W`` on the split (non-viewable)
    slices runs as E tiny matrix products forward and backward, 3-5x slower."""
    dims = _components(mixer.irreps_in)
    muls = {m for m, _, _ in mixer.irreps_in} | {m for m, _, _ in mixer.irreps_out}
    if mixer.irreps_in != mixer.irreps_out or muls != {v.shape[2]} or any(
        i != k for i, k in mixer.pairs
    ):
        return _mix_cl_blocks(mixer, v)
    mul = v.shape[2]
    per: list[Tensor] = []
    j = 0
    for k, d in enumerate(dims):
        if j < len(mixer.pairs) and mixer.pairs[j][1] == k:
            w = mixer.weights[j]
            w = w / math.sqrt(w.shape[0])
            j += 1
        else:
            w = v.new_zeros((mul, mul))
        per.append(w.expand(d, mul, mul))
    return torch.bmm(v.transpose(0, 1), torch.cat(per)).transpose(0, 1)


def _mix_cl_blocks(mixer: EquivariantLinear, v: Tensor) -> Tensor:
    """:func:`mix_cl` one irrep block at a time (any irreps; the reference)."""
    dims = _components(mixer.irreps_in)
    blocks = v.split(dims, dim=1)
    out = []
    j = 0
    for k, (m, ell, _) in enumerate(mixer.irreps_out):
        if j < len(mixer.pairs) and mixer.pairs[j][1] == k:
            w = mixer.weights[j]
            out.append(blocks[mixer.pairs[j][0]] @ (w / math.sqrt(w.shape[0])))
            j += 1
        else:
            out.append(v.new_zeros((v.shape[0], 2 * ell + 1, m)))
    return torch.cat(out, dim=1)


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
        cgs = cg_coefficients(self.paths, irreps_in, self.env_irreps, self.tp_out)
        for k, c in enumerate(cgs):
            self.register_buffer(f"cg{k}", c.to(torch.get_default_dtype()))
        self.n_cg = len(self.paths)
        self.dims_out = _components(self.tp_out)
        idx, val = coupling_entries(self.paths, cgs, _components(self.irreps_in),
                                    _components(self.env_irreps), self.dims_out)
        # derived from the CG buffers: not saved (checkpoints keep the per-path tensors)
        self.register_buffer("cl_idx", idx, persistent=False)
        self.register_buffer("cl_val", val.to(torch.get_default_dtype()), persistent=False)
        self.n_out = sum(self.dims_out)
        # the l = 0 even output is a single component: its offset in the concatenated output
        k0 = [k for k, (_, ell, p) in enumerate(self.tp_out) if ell == 0 and p == 1][0]
        self.scalar_index = k0
        self.scalar_component = sum(self.dims_out[:k0])
        self.latent_mlp = MLP([latent + mul, mlp_hidden, latent])
        self.norm = 1.0 / math.sqrt(avg_num_neighbors)
        #: ``atomtwin.engines.mlip.kernels.use_kernel`` sets this to the sparse op's contraction
        self.sparse_contract = None

    def forward(
        self, x: Tensor, v: Tensor, sh_w: Tensor, sh_cat: Tensor, cutoff: Tensor,
        centre: Tensor, n: int,
    ) -> tuple[Tensor, Tensor]:
        """``x`` (E, latent); ``v`` (E, A, mul) tensor track; ``sh_cat`` (E, B) the spherical
        harmonics concatenated, ``sh_w`` (B,) the index of each component's ``l``.  Returns
        the new latent and the contraction (E, n_out, mul)."""
        e = x.shape[0]
        w = self.env_weights(x).reshape(e, len(self.env_irreps), self.mul)  # (E, lmax+1, mul)
        env_e = sh_cat[:, :, None] * w.index_select(1, sh_w)  # (E, B, mul)
        env_node = scatter_sum(env_e, centre, n) * self.norm
        if self.sparse_contract is not None:  # kernel: the environment stays per node
            t = self.sparse_contract(self, v, env_node, centre)
        else:
            # lean backward at inference (forces of large systems); in training (a force loss
            # differentiates the backward again, small batches) autograd's own is 1.15x faster
            contract = tp_uuu_cl_centre if self.training else contract_centre
            t = contract(v, env_node, centre, self.cl_idx, self.cl_val, self.n_out)
        scal = t[:, self.scalar_component, :]
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
        # l of each spherical-harmonic component (0, 1, 1, 1, 2, ...): weights per l -> per component
        self.register_buffer("sh_l", torch.tensor([ell for ell in range(lmax + 1) for _ in range(2 * ell + 1)]),
                             persistent=False)

    def forward(
        self, atom_types: Tensor, sh: list[Tensor], basis: Tensor, cutoff: Tensor,
        centre: Tensor, neighbour: Tensor,
    ) -> Tensor:
        """``basis``: (E, num_basis) Bessel basis (without envelope); ``cutoff``: (E,) the
        envelope u(r).  Returns (N,) raw atomic energies."""
        n = atom_types.shape[0]
        oh = nn.functional.one_hot(atom_types, self.num_species).to(basis.dtype)
        x = self.two_body(torch.cat([oh[centre], oh[neighbour], basis], dim=-1)) * cutoff[:, None]
        sh_cat = torch.cat(sh, dim=-1)
        w = self.v_init(x).reshape(x.shape[0], self.lmax + 1, self.mul)
        v = sh_cat[:, :, None] * w.index_select(1, self.sh_l)  # (E, B, mul)
        for k, layer in enumerate(self.layers):
            x, v = layer(x, v, self.sh_l, sh_cat, cutoff, centre, n)
            if k < len(self.mixers):
                v = mix_cl(self.mixers[k], v)
        e_ij = self.edge_energy(x).squeeze(-1)
        return scatter_sum(e_ij, centre, n) * self.norm
