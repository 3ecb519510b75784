"""Reference tensor products (plain torch): the one place a fast kernel may replace.

Equivariant features are lists of blocks, one per irrep ``(mul, ell, p)`` (``p`` = +1 even,
-1 odd), each block a tensor of shape ``(..., mul, 2l+1)`` in e3nn's real basis.  The
structure of a product is a static tuple of *paths* ``(i1, i2, i_out)`` of block indices
plus one Clebsch–Gordan tensor per path (e3nn's ``wigner_3j``, computed at construction).
No e3nn object is touched in the forward functions: only tensors, ints and tuples, so
``torch.compile`` / ``torch.export`` trace them, and a kernel with the same signature can
be swapped in (``engines/mlip/kernels``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

Irreps = tuple[tuple[int, int, int], ...]  # ((mul, ell, parity), ...)
Path = tuple[int, int, int]

__all__ = ["Irreps", "Path", "make_paths", "cg_coefficients", "tp_uvu", "tp_uuu"]


def irreps_dim(irreps: Irreps) -> int:
    """Total dimension ``sum(mul * (2l+1))``."""
    return sum(m * (2 * ell + 1) for m, ell, _ in irreps)


def make_paths(
    in1: Irreps, in2: Irreps, out_ls: tuple[tuple[int, int], ...], parity: bool
) -> tuple[tuple[Path, ...], Irreps]:
    """All allowed couplings ``in1[i1] x in2[i2] -> (ell, p)`` with ``(ell, p)`` in ``out_ls``.

    Parameters
    ----------
    in1, in2
        Input irreps ``((mul, ell, p), ...)``; the output multiplicity is ``in1``'s.
    out_ls
        Allowed output ``(ell, p)`` pairs (the order of the output blocks).
    parity
        Enforce parity selection ``p_out = p1 * p2``; without it all parities are +1.

    Returns
    -------
    paths
        ``(i1, i2, i_out)`` with ``i_out`` indexing the returned output irreps.
    out_irreps
        Only the output blocks that some path reaches, multiplicity of ``in1``.
    """
    muls = {m for m, _, _ in in1}
    if len(muls) != 1:
        raise ValueError(f"all blocks of the first input need the same multiplicity, got {in1}.")
    mul = muls.pop()
    raw = []
    for i1, (_, l1, p1) in enumerate(in1):
        for i2, (_, l2, p2) in enumerate(in2):
            for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                p3 = p1 * p2 if parity else 1
                if (l3, p3) in out_ls:
                    raw.append((i1, i2, (l3, p3)))
    outs = [lp for lp in out_ls if any(r[2] == lp for r in raw)]
    paths = tuple((i1, i2, outs.index(o)) for i1, i2, o in raw)
    outs = [(mul, ell, p) for ell, p in outs]
    return paths, tuple(outs)


def cg_coefficients(paths: tuple[Path, ...], in1: Irreps, in2: Irreps, out: Irreps) -> list[Tensor]:
    """Clebsch–Gordan tensors ``(2l1+1, 2l2+1, 2l3+1)`` per path, normalised per output.

    Each path is scaled by ``sqrt((2 l3 + 1) / n_paths(out))`` so that, for unit-variance
    inputs, every output component has unit variance (e3nn's "component" normalisation).
    """
    from e3nn import o3  # construction time only

    n_into = [sum(1 for p in paths if p[2] == k) for k in range(len(out))]
    cgs = []
    for i1, i2, k in paths:
        l1, l2, l3 = in1[i1][1], in2[i2][1], out[k][1]
        c = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt((2 * l3 + 1) / n_into[k])
        cgs.append(c)
    return cgs


def tp_uvu(
    x1: list[Tensor],
    x2: list[Tensor],
    weight: Tensor,
    paths: tuple[Path, ...],
    cgs: list[Tensor],
    n_out: int,
) -> list[Tensor]:
    """Weighted product of multi-channel features with single-channel ones (convolution).

    ``out[k][e, u, c] = sum_{paths -> k} w[e, path, u] sum_{ab} C_abc x1[i1][e, u, a] x2[i2][e, b]``

    Parameters
    ----------
    x1
        Blocks ``(E, mul, 2l1+1)``.
    x2
        Blocks ``(E, 2l2+1)`` (e.g. spherical harmonics of the edge vectors).
    weight
        ``(E, n_paths, mul)`` per-edge path weights (from the radial network).
    paths, cgs, n_out
        From :func:`make_paths` / :func:`cg_coefficients`.

    Returns
    -------
    list of ``n_out`` blocks ``(E, mul, 2l3+1)``.
    """
    out: list[Tensor | None] = [None] * n_out
    for p, (i1, i2, k) in enumerate(paths):
        c = cgs[p]
        # (E, b) x (a, b, c) -> (E, a, c), then (E, u, a) @ (E, a, c)
        y = torch.einsum("eb,abc->eac", x2[i2], c)
        t = torch.bmm(x1[i1], y) * weight[:, p, :, None]
        out[k] = t if out[k] is None else out[k] + t
    return [o for o in out if o is not None]


def tp_uuu(
    x1: list[Tensor],
    x2: list[Tensor],
    paths: tuple[Path, ...],
    cgs: list[Tensor],
    n_out: int,
) -> list[Tensor]:
    """Channel-wise product of two multi-channel features (Allegro's contraction).

    ``out[k][e, u, c] = sum_{paths -> k} sum_{ab} C_abc x1[i1][e, u, a] x2[i2][e, u, b]``
    with blocks ``(E, mul, 2l+1)`` on both inputs (same ``mul``).  Path weights are left to
    the following linear layer, so this is a pure bilinear map.
    """
    out: list[Tensor | None] = [None] * n_out
    for p, (i1, i2, k) in enumerate(paths):
        c = cgs[p]
        a, b, cc = c.shape
        if a == 1:  # scalar x anything: a scaled copy
            t = x1[i1] * (x2[i2] @ c[0])
        elif b == 1:
            t = x2[i2] * (x1[i1] @ c[:, 0, :])
        else:
            # (E, u, a, 1) * (E, u, 1, b) -> (E, u, a*b) @ (a*b, c)
            t = (x1[i1].unsqueeze(-1) * x2[i2].unsqueeze(-2)).flatten(-2) @ c.reshape(a * b, cc)
        out[k] = t if out[k] is None else out[k] + t
    return [o for o in out if o is not None]
