"""Building blocks shared by the NequIP- and Allegro-style models.

Equivariant features are lists of blocks ``(n, mul, 2l+1)`` described by a static tuple
of irreps ``((mul, ell, parity), ...)`` (see :mod:`atomtwin.engines.mlip.tp`).  Everything here is
plain torch in the forward pass.
"""

from __future__ import annotations

import math

import torch
from atomtwin.engines.mlip.tp import Irreps
from e3nn import o3
from torch import Tensor, nn

__all__ = [
    "spherical_harmonics", "BesselBasis", "polynomial_cutoff", "MLP", "EquivariantLinear",
    "SpeciesLinear", "Gate", "ZBL", "scatter_sum",
]


def scatter_sum(src: Tensor, index: Tensor, n: int) -> Tensor:
    """Sum rows of ``src`` (E, ...) into ``n`` rows by ``index`` (E,)."""
    out = torch.zeros((n,) + src.shape[1:], dtype=src.dtype, device=src.device)
    return out.index_add(0, index, src)


#: e3nn's spherical-harmonics modules for lmax = 0..8, built once at import (a microsecond
#: each).  Built inside a traced forward (``o3.spherical_harmonics`` makes one per call), their
#: ``Irreps`` would be traced too, and a dynamo recompile that turns ``lmax`` into a symbolic
#: integer then fails inside e3nn (seen in CI); indexing this tuple specialises ``lmax``.
_SH_MODULES = tuple(o3.SphericalHarmonics(list(range(ell + 1)), normalize=True, normalization="component")
                    for ell in range(9))


def spherical_harmonics(vec: Tensor, lmax: int) -> list[Tensor]:
    """Real spherical harmonics of the unit vectors of ``vec`` (E, 3), e3nn basis and
    "component" normalisation (``|Y_l|^2 = 2l+1``); blocks ``(E, 2l+1)`` for ``ell <= lmax``
    (``lmax <= 8``)."""
    if not 0 <= lmax < len(_SH_MODULES):
        raise ValueError(f"lmax = {lmax}: spherical harmonics are built for lmax 0..{len(_SH_MODULES) - 1}.")
    sh = _SH_MODULES[lmax](vec)
    return [sh[:, ell * ell:(ell + 1) * (ell + 1)] for ell in range(lmax + 1)]


def polynomial_cutoff(r: Tensor, r_max: float, p: float = 6.0) -> Tensor:
    """Smooth envelope ``u(r)`` (Klicpera et al.): 1 at 0, zero value, slope and curvature
    at ``r_max`` for ``p = 6``, exactly 0 beyond."""
    x = r / r_max
    u = (
        1.0
        - (p + 1.0) * (p + 2.0) / 2.0 * x**p
        + p * (p + 2.0) * x ** (p + 1.0)
        - p * (p + 1.0) / 2.0 * x ** (p + 2.0)
    )
    return u * (x < 1.0)



def irrep_pairs(irreps_in: Irreps, irreps_out: Irreps) -> tuple[tuple[int, int], ...]:
    """``(i_in, k_out)`` block pairs of equal ``(l, p)``: the blocks a linear map may connect."""
    lp_in = [(ell, p) for _, ell, p in irreps_in]
    return tuple((lp_in.index((ell, p)), k) for k, (_, ell, p) in enumerate(irreps_out) if (ell, p) in lp_in)

class BesselBasis(nn.Module):
    """``b_n(r) = sqrt(2/r_max) sin(n pi r / r_max) / r``, ``n = 1..num_basis`` (E, num_basis)."""

    def __init__(self, r_max: float, num_basis: int = 8, trainable: bool = True) -> None:
        super().__init__()
        self.r_max = float(r_max)
        self.prefactor = math.sqrt(2.0 / r_max)
        w = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / r_max
        if trainable:
            self.freq = nn.Parameter(w)
        else:
            self.register_buffer("freq", w)

    def forward(self, r: Tensor) -> Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.freq * r) / r


class MLP(nn.Module):
    """Bias-free perceptron ``dims[0] -> ... -> dims[-1]`` with SiLU between layers.

    No biases, and SiLU(0) = 0, so ``MLP(0) = 0``: a radial input that vanishes at the
    cutoff gives an output that vanishes there too (smoothness of the potential).
    """

    def __init__(self, dims: list[int] | tuple[int, ...], last_act: bool = False) -> None:
        super().__init__()
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(a, b)) for a, b in zip(dims[:-1], dims[1:], strict=True)]
        )
        self.last_act = last_act

    def forward(self, x: Tensor) -> Tensor:
        # SiLU x 1.679 keeps the second moment at one; the factor is folded into the next
        # layer's (small) weight instead of multiplying the (rows, width) activation, which
        # saves one pass over it forward and one backward per hidden layer
        n = len(self.weights)
        scale = 1.0
        for k, w in enumerate(self.weights):
            x = x @ (w * (scale / math.sqrt(w.shape[0])))
            if k < n - 1:
                x = nn.functional.silu(x)
                scale = 1.679
            elif self.last_act:
                x = nn.functional.silu(x) * 1.679
        return x


class EquivariantLinear(nn.Module):
    """Channel mixing within each ``(ell, p)``: ``out[k] = in[k'] @ W_k / sqrt(mul_in)``.

    Output blocks whose ``(ell, p)`` is absent from the input are zero.  An optional bias on
    even scalars only (a bias on anything else would break equivariance).
    """

    def __init__(self, irreps_in: Irreps, irreps_out: Irreps, bias: bool = False) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = tuple(irreps_in), tuple(irreps_out)
        self.pairs: tuple[tuple[int, int], ...] = irrep_pairs(self.irreps_in, self.irreps_out)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(self.irreps_in[i][0], self.irreps_out[k][0])) for i, k in self.pairs]
        )
        self.bias_index = next(
            (k for k, (_, ell, p) in enumerate(self.irreps_out) if ell == 0 and p == 1), -1
        ) if bias else -1
        if self.bias_index >= 0:
            self.bias = nn.Parameter(torch.zeros(self.irreps_out[self.bias_index][0]))

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        n = x[0].shape[0]
        ref = x[0]
        out: list[Tensor] = []
        j = 0
        for k, (m, ell, _) in enumerate(self.irreps_out):
            if j < len(self.pairs) and self.pairs[j][1] == k:
                i = self.pairs[j][0]
                w = self.weights[j]
                y = torch.einsum("nud,uv->nvd", x[i], w) / math.sqrt(w.shape[0])
                j += 1
            else:
                y = ref.new_zeros((n, m, 2 * ell + 1))
            if k == self.bias_index:
                y = y + self.bias[:, None]
            out.append(y)
        return out


class SpeciesLinear(nn.Module):
    """Self-connection: a channel-mixing linear layer whose weights depend on the species
    of the atom (NequIP's tensor product with the one-hot species)."""

    def __init__(self, irreps_in: Irreps, irreps_out: Irreps, num_species: int) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = tuple(irreps_in), tuple(irreps_out)
        self.pairs: tuple[tuple[int, int], ...] = irrep_pairs(self.irreps_in, self.irreps_out)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(num_species, self.irreps_in[i][0], self.irreps_out[k][0]))
             for i, k in self.pairs]
        )

    def forward(self, x: list[Tensor], atom_types: Tensor) -> list[Tensor]:
        n = x[0].shape[0]
        out: list[Tensor] = []
        j = 0
        for k, (m, ell, _) in enumerate(self.irreps_out):
            if j < len(self.pairs) and self.pairs[j][1] == k:
                i = self.pairs[j][0]
                w = self.weights[j]
                # all species' outputs, then pick each atom's: S small, no (N, u, v) gather
                ys = torch.einsum("nud,suv->snvd", x[i], w) / math.sqrt(w.shape[1])
                y = ys[0] if w.shape[0] == 1 else ys[atom_types, torch.arange(n, device=ys.device)]
                j += 1
            else:
                y = x[0].new_zeros((n, m, 2 * ell + 1))
            out.append(y)
        return out


class Gate(nn.Module):
    """Gated nonlinearity.

    Input blocks: ``[(n_even + n_gates, 0, +1), (n_odd, 0, -1)?, gated blocks...]``; even
    scalars pass through SiLU, odd scalars through tanh (odd function: keeps parity), and
    each gated block (mul, ell>0) is multiplied channel-wise by ``sigmoid`` of its gates.
    """

    def __init__(self, irreps_out: Irreps) -> None:
        super().__init__()
        self.irreps_out = tuple(irreps_out)
        self.n_even = sum(m for m, ell, p in irreps_out if ell == 0 and p == 1)
        self.has_odd = any(ell == 0 and p == -1 for _, ell, p in irreps_out)
        self.gated_muls = tuple(m for m, ell, _ in irreps_out if ell > 0)
        self.irreps_in: Irreps = (
            ((self.n_even + sum(self.gated_muls), 0, 1),)
            + tuple(ir for ir in irreps_out if ir[1] == 0 and ir[2] == -1)
            + tuple(ir for ir in irreps_out if ir[1] > 0)
        )

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        s = x[0]
        out = [nn.functional.silu(s[:, : self.n_even])]
        k = 1
        if self.has_odd:
            out.append(torch.tanh(x[1]))
            k = 2
        g = torch.sigmoid(s[:, self.n_even:])
        start = 0
        for m in self.gated_muls:
            out.append(x[k] * g[:, start:start + m])
            start += m
            k += 1
        return out


class ZBL(nn.Module):
    """Ziegler–Biersack–Littmark universal screened nuclear repulsion, smoothly switched
    off at ``r_max`` by the polynomial envelope.

    ``E_pair = k_e Z_i Z_j / r * phi(r / a) * u(r)``, ``a = 0.46850 / (Z_i^0.23 + Z_j^0.23)`` Å,
    ``k_e = 14.399645`` eV·Å.  Each directed edge carries half the pair energy.
    """

    KE = 14.399645478425668  # e^2 / (4 pi eps0) in eV*Å
    C = (0.18175, 0.50986, 0.28022, 0.02817)
    D = (3.19980, 0.94229, 0.40290, 0.20162)

    def __init__(self, atomic_numbers: list[int], r_max: float) -> None:
        super().__init__()
        self.r_max = float(r_max)
        self.register_buffer("z", torch.tensor(atomic_numbers, dtype=torch.get_default_dtype()))

    def forward(self, r: Tensor, ti: Tensor, tj: Tensor) -> Tensor:
        zi, zj = self.z[ti], self.z[tj]
        a = 0.46850 / (zi**0.23 + zj**0.23)
        x = r / a
        phi = sum(c * torch.exp(-d * x) for c, d in zip(self.C, self.D, strict=True))
        return 0.5 * self.KE * zi * zj / r * phi * polynomial_cutoff(r, self.r_max)
