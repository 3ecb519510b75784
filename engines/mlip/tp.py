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
from typing import NamedTuple

import torch
from atomtwin.toolkit.errors import InputError
from torch import Tensor

Irreps = tuple[tuple[int, int, int], ...]  # ((mul, ell, parity), ...)
Path = tuple[int, int, int]

__all__ = ["Irreps", "Path", "make_paths", "cg_coefficients", "tp_uvu", "tp_uuu", "UVUPlan",
           "uvu_plan", "conv_uvu"]


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
        raise InputError(f"all blocks of the first input need the same multiplicity, got {in1}.")
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
    # Cost model (CPU, eager): every op is a memory pass over (E, mul, 2l+1) numbers, so the
    # paths are specialised to the fewest passes, forward and backward:
    # * ``unbind`` gives each path its weight column as a view whose backward is one
    #   ``stack`` (indexing ``weight[:, p]`` would zero-fill an (E, n_paths, mul) gradient
    #   per path);
    # * l1 = 0 (scalar features): an outer product ``(x * w) ⊗ (Y · C)``, no batched matmul;
    # * l2 = 0 (scalar harmonic): C is ``c000 * identity`` (e3nn's ``wigner_3j(l, 0, l)``),
    #   so the path is a per-edge, per-channel scaling of the features;
    # * otherwise one batched ``(mul, 2l1+1) @ (2l1+1, 2l3+1)`` product per edge.
    ws = weight.unbind(1)
    out: list[Tensor | None] = [None] * n_out
    for p, (i1, i2, k) in enumerate(paths):
        c = cgs[p]
        a, b, cc = c.shape
        w = ws[p]
        if a == 1:
            y = x2[i2] @ c[0]  # (E, 2l3+1)
            t = (x1[i1][:, :, 0] * w).unsqueeze(-1) * y.unsqueeze(1)
        elif b == 1 and a == cc:
            t = x1[i1] * (w * (x2[i2] * c[0, 0, 0])).unsqueeze(-1)
        else:
            # (E, b) x (a, b, c) -> (E, a, c), then (E, u, a) @ (E, a, c)
            y = torch.einsum("eb,abc->eac", x2[i2], c)
            t = torch.bmm(x1[i1], y) * w.unsqueeze(-1)
        out[k] = t if out[k] is None else out[k] + t
    return [o for o in out if o is not None]


class UVUPlan(NamedTuple):
    """Static grouping of :func:`tp_uvu`'s paths for :func:`conv_uvu` (built once at init).

    ``groups[g] = (i1, ((path, row0, n_rows), ...), n_rows_total)`` for each input block with
    ``l1 > 0``: all its paths become one dense coupling ``couplings[g]`` of shape
    ``(dim(in2), n_rows_total * (2l1+1))`` acting on the concatenated ``in2`` blocks, whose
    output rows ``row0 .. row0+2l3+1`` belong to ``path`` (rows of a path are consecutive
    and paths are in order, so the product splits into per-path views).
    """

    groups: tuple[tuple[int, tuple[tuple[int, int, int], ...], int], ...]
    couplings: list[Tensor]


def uvu_plan(paths: tuple[Path, ...], cgs: list[Tensor], in1: Irreps, in2: Irreps) -> UVUPlan:
    """Group the paths of every vector input block (see :class:`UVUPlan`)."""
    off = [0]
    for _, l2, _ in in2:
        off.append(off[-1] + 2 * l2 + 1)
    groups, coups = [], []
    for i1, (_, l1, _) in enumerate(in1):
        ps = [p for p, pa in enumerate(paths) if pa[0] == i1]
        if l1 == 0 or not ps:
            continue
        a = 2 * l1 + 1
        n_rows = sum(cgs[p].shape[2] for p in ps)
        cd = torch.zeros(off[-1], n_rows, a, dtype=cgs[0].dtype)
        rows, r0 = [], 0
        for p in ps:
            i2, cc = paths[p][1], cgs[p].shape[2]
            cd[off[i2]:off[i2 + 1], r0:r0 + cc, :] = cgs[p].permute(1, 2, 0)  # (b, c, a)
            rows.append((p, r0, cc))
            r0 += cc
        groups.append((i1, tuple(rows), n_rows))
        coups.append(cd.reshape(off[-1], n_rows * a))
    return UVUPlan(tuple(groups), coups)


def conv_uvu(
    h: list[Tensor],
    neighbour: Tensor,
    x2: list[Tensor],
    weight: Tensor,
    paths: tuple[Path, ...],
    cgs: list[Tensor],
    n_out: int,
    plan: UVUPlan,
) -> list[Tensor]:
    """:func:`tp_uvu` of gathered node features, in the component-major layout (fast path).

    ``out[k][e, c, u] = sum_{paths -> k} w[e, path, u] sum_{ab} C_abc h[i1][nb[e], a, u] x2[i2][e, b]``:
    the same numbers as ``tp_uvu([b[nb].transpose(1, 2) ...])`` transposed, up to rounding.

    Parameters
    ----------
    h
        Node blocks ``(N, 2l1+1, mul)`` (channels last).
    neighbour
        ``(E,)`` node of each edge whose features enter.
    x2, weight, paths, cgs, n_out
        As in :func:`tp_uvu`.
    plan
        From :func:`uvu_plan` (its tensors on the device and in the dtype of ``h``).

    Returns
    -------
    list of ``n_out`` blocks ``(E, 2l3+1, mul)``.

    Notes
    -----
    Why this layout and grouping (CPU, eager; every op a memory pass): with channels last,
    weights broadcast over ``(E, 1, mul)`` along contiguous rows instead of a size-3 inner
    dimension (3x slower per element in element-wise kernels and their reductions), and
    all paths of a vector block share ONE batched ``(rows, 2l1+1) @ (2l1+1, mul)`` product
    (tiny batched matmuls cost per batch entry, not per flop), split into per-path views.
    Scalar blocks (l1 = 0) take the outer product ``(x w) ⊗ (Y · C)``.
    """
    ws = weight.unbind(1)  # views: backward is one stack, no zero-filled (E, P, mul) per path
    x1 = [b.index_select(0, neighbour) for b in h]
    out: list[Tensor | None] = [None] * n_out
    grouped = {g[0] for g in plan.groups}
    for p, (i1, i2, k) in enumerate(paths):
        if i1 in grouped:
            continue
        y = x2[i2] @ cgs[p][0]  # l1 = 0: (E, 2l3+1)
        t = (x1[i1] * ws[p].unsqueeze(1)) * y.unsqueeze(-1)
        out[k] = t if out[k] is None else out[k] + t
    if plan.groups:
        shc = torch.cat(x2, dim=-1)
        for (i1, rows, n_rows), cd in zip(plan.groups, plan.couplings, strict=True):
            y = (shc @ cd).reshape(shc.shape[0], n_rows, h[i1].shape[1])  # (E, rows, 2l1+1)
            if n_rows == 1:  # a dot product over components: element-wise (a bmm's backward
                t = (y.transpose(1, 2) * x1[i1]).sum(1, keepdim=True)  # would be an outer product)
            else:
                t = torch.bmm(y, x1[i1])
            # split (backward: one cat), not slicing (backward: a zero-filled copy per slice)
            for (p, _, _), s in zip(rows, t.split([r[2] for r in rows], dim=1), strict=True):
                k = paths[p][2]
                s = s * ws[p].unsqueeze(1)
                out[k] = s if out[k] is None else out[k] + s
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
