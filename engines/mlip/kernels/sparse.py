"""Allegro's contraction over the nonzero Clebsch–Gordan entries only, as one torch op that
``torch.export`` and AOTInductor compile INTO the package (``torch.library.triton_op``).

The op ``torch.ops.atomtwin.tp_sparse(x, y, index, mul, perm, coo, rowptr, val, dims, gather)``
computes, for rows ``r`` (pair x channel) of ``x`` (R, A),

``out[r, k] = sum_{nnz (i, j, k)} val * x[r, i] * y[row(r), j]``,  ``row(r) = index[r // mul] * mul + r % mul``

(``gather``; else ``row(r) = r``): the centre's environment embedding is read per node
(``y``: (N*mul, B)), never materialised per edge.  The coupling is the sparse 3-tensor
``T[a, b, c]`` of the concatenated irrep blocks (a: tensor track, b: environment, c: output),
precomputed ONCE (:func:`sparse_coupling`) in the six role orders the derivatives need
(``perm`` picks one): each order is a CSR over the output role, ``coo[perm]`` (3, nnz) the
(x, y, out) indices sorted by output, ``rowptr[perm]`` the segment starts, ``val[perm]`` the
values.  The backward of order ``(px, py, po)`` is the same op in orders ``(po, py, px)``
(d/dx, same gather) and ``(px, po, py)`` (d/dy, then summed onto the nodes by
``index_add``), so every derivative order runs it (forces, force training).

Implementations, chosen by the device of ``x`` when the op runs or is traced:

* CUDA: the Triton kernel :func:`_tp_sparse_kernel` called through ``wrap_triton``.  Under
  ``torch.export`` the op stays one node; AOTInductor decomposes it into the kernel and
  compiles that into the package (a cubin), so a ``.pt2`` built with it loads with no Python
  import of this module (and from C++);
* CPU: plain torch (gather of the nonzero columns, products, ``index_add`` over outputs),
  which AOTInductor compiles into the package's C++ the same way.  The Triton kernel runs
  on CPU only through ``TRITON_INTERPRET=1`` and :func:`atomtwin.engines.mlip.kernels.triton_on_cpu`
  (tests), never in a package: Inductor's CPU backend does not embed user Triton kernels.

Without Triton installed, the op is a plain custom op with the CPU implementation.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
    from torch.library import triton_op, wrap_triton

    HAVE_TRITON = True
except ImportError:  # CPU-only machines: the op keeps its torch implementation
    HAVE_TRITON = False

__all__ = ["PERMS", "sparse_coupling", "tp_sparse", "HAVE_TRITON"]

#: role orders (axis of T read from x, from y, written to out); PERMS[0] is the forward
PERMS = tuple(itertools.permutations(range(3)))
_FWD = PERMS.index((0, 1, 2))
_STATE = {"triton_on_cpu": False}


def sparse_coupling(paths, cgs: list[Tensor], dims1: list[int], dims2: list[int],
                    dims_out: list[int], tol: float = 1e-12) -> tuple[Tensor, Tensor, Tensor, list[int]]:
    """The nonzero entries of the block coupling, in the six role orders.

    Parameters
    ----------
    paths, cgs
        ``(i1, i2, k)`` block paths and their CG tensors ``(2l1+1, 2l2+1, 2l3+1)``
        (:func:`atomtwin.engines.mlip.tp.cg_coefficients`).
    dims1, dims2, dims_out
        Component counts of the blocks of ``x`` (tensor track), ``y`` (environment), out.

    Returns
    -------
    coo : (6, 3, nnz) int32
        ``coo[p]``: (x index, y index, out index) of every nonzero, sorted by out index.
    rowptr : (6, D + 1) int32
        Segment starts per output index (``D = max(A, B, C)``; unused tail repeats nnz).
    val : (6, nnz) float64
        Values in the same order.
    dims : [A, B, C]
    """
    off = [list(itertools.accumulate([0] + list(d))) for d in (dims1, dims2, dims_out)]
    ent: dict[tuple[int, int, int], float] = {}
    for (i1, i2, k), c in zip(paths, cgs, strict=True):
        c = c.detach().double().cpu()
        for a, b, cc in (c.abs() > tol).nonzero().tolist():
            key = (off[0][i1] + a, off[1][i2] + b, off[2][k] + cc)
            ent[key] = ent.get(key, 0.0) + float(c[a, b, cc])
    keys = sorted(ent)
    t = torch.tensor(keys, dtype=torch.int64).reshape(-1, 3)
    v = torch.tensor([ent[k] for k in keys], dtype=torch.float64)
    dims = [sum(dims1), sum(dims2), sum(dims_out)]
    d = max(dims)
    coos, ptrs, vals = [], [], []
    for px, py, po in PERMS:
        order = torch.argsort(t[:, po] * (d * d) + t[:, px] * d + t[:, py])
        tt = t[order]
        coos.append(torch.stack([tt[:, px], tt[:, py], tt[:, po]]))
        counts = torch.bincount(tt[:, po], minlength=d)
        ptrs.append(torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)]))
        vals.append(v[order])
    return (torch.stack(coos).to(torch.int32), torch.stack(ptrs).to(torch.int32),
            torch.stack(vals), dims)


def _torch_impl(x: Tensor, y: Tensor, index: Tensor, mul: int, perm: int, coo: Tensor,
                rowptr: Tensor, val: Tensor, dims: list[int], gather: bool) -> Tensor:
    c = coo[perm].long()
    yr = y
    if gather:
        rows = (index[:, None] * mul + torch.arange(mul, device=y.device)).reshape(-1)
        yr = y.index_select(0, rows)
    prod = x.index_select(1, c[0]) * yr.index_select(1, c[1]) * val[perm].to(x.dtype)
    out = x.new_zeros((x.shape[0], dims[PERMS[perm][2]]))
    return out.index_add(1, c[2], prod)


if HAVE_TRITON:

    @triton.jit
    def _tp_sparse_kernel(x_ptr, y_ptr, idx_ptr, coo_ptr, ptr_ptr, val_ptr, out_ptr, R,
                          NNZ, A: tl.constexpr, B: tl.constexpr, C: tl.constexpr,
                          MUL: tl.constexpr, GATHER: tl.constexpr, BLOCK_R: tl.constexpr):
        """One program: ``BLOCK_R`` rows; for each output column its CSR segment of nonzeros
        (x col, y col, value), accumulated in registers in the input precision (the exact
        work: R x nnz multiply-adds, nothing for the zeros of the dense CG tensor)."""
        pid = tl.program_id(0)
        rows = (pid * BLOCK_R + tl.arange(0, BLOCK_R)).to(tl.int64)
        ok = rows < R
        if GATHER:
            e = rows // MUL
            node = tl.load(idx_ptr + e, mask=ok, other=0)
            yrow = node * MUL + rows % MUL
        else:
            yrow = rows
        for k in range(C):
            start = tl.load(ptr_ptr + k)
            end = tl.load(ptr_ptr + k + 1)
            # tl.full, not tl.zeros: a builtin, not a standard-library jit function (those are
            # not interpreted when triton was imported before TRITON_INTERPRET was set)
            acc = tl.full([BLOCK_R], 0, dtype=out_ptr.dtype.element_ty)
            for j in range(start, end):
                ia = tl.load(coo_ptr + j)
                ib = tl.load(coo_ptr + NNZ + j)
                v = tl.load(val_ptr + j)
                xv = tl.load(x_ptr + rows * A + ia, mask=ok, other=0.0)
                yv = tl.load(y_ptr + yrow * B + ib, mask=ok, other=0.0)
                acc += v * xv * yv
            tl.store(out_ptr + rows * C + k, acc, mask=ok)

    def _impl(x: Tensor, y: Tensor, index: Tensor, mul: int, perm: int, coo: Tensor,
              rowptr: Tensor, val: Tensor, dims: list[int], gather: bool) -> Tensor:
        if x.device.type != "cuda" and not _STATE["triton_on_cpu"]:
            return _torch_impl(x, y, index, mul, perm, coo, rowptr, val, dims, gather)
        px, py, po = PERMS[perm]
        a, b, c = dims[px], dims[py], dims[po]
        x, y = x.contiguous(), y.contiguous()
        out = torch.empty((x.shape[0], c), dtype=x.dtype, device=x.device)
        nnz = coo.shape[2]
        cp = coo[perm].contiguous()
        vp = val[perm].to(x.dtype).contiguous()
        rp = rowptr[perm].contiguous()
        r = x.shape[0]
        block = 64

        def grid(meta):
            return (triton.cdiv(r, meta["BLOCK_R"]),)

        wrap_triton(_tp_sparse_kernel)[grid](
            x, y, index, cp, rp, vp, out, r, nnz, A=a, B=b, C=c, MUL=mul,
            GATHER=gather, BLOCK_R=block)
        return out

    tp_sparse = triton_op("atomtwin::tp_sparse", _impl, mutates_args=())
else:
    tp_sparse = torch.library.custom_op("atomtwin::tp_sparse", mutates_args=())(_torch_impl)

    @tp_sparse.register_fake
    def _fake(x, y, index, mul, perm, coo, rowptr, val, dims, gather):
        return x.new_empty((x.shape[0], dims[PERMS[perm][2]]))


def _setup(ctx, inputs, output) -> None:
    x, y, index, mul, perm, coo, rowptr, val, dims, gather = inputs
    ctx.save_for_backward(x, y, index, coo, rowptr, val)
    ctx.mul, ctx.perm, ctx.dims, ctx.gather = mul, perm, dims, gather


def _backward(ctx, grad: Tensor):
    x, y, index, coo, rowptr, val = ctx.saved_tensors
    px, py, po = PERMS[ctx.perm]
    gx = gy = None
    if ctx.needs_input_grad[0]:  # d/dx: (g, y) -> x's role, same gather
        gx = tp_sparse(grad, y, index, ctx.mul, PERMS.index((po, py, px)), coo, rowptr, val,
                       ctx.dims, ctx.gather)
    if ctx.needs_input_grad[1]:  # d/dy: (x, g) -> y's role per row, then onto the nodes
        g_rows = tp_sparse(x, grad, index, ctx.mul, PERMS.index((px, po, py)), coo, rowptr, val,
                           ctx.dims, False)
        if ctx.gather:
            rows = (index[:, None] * ctx.mul + torch.arange(ctx.mul, device=y.device)).reshape(-1)
            gy = torch.zeros_like(y).index_add(0, rows, g_rows)
        else:
            gy = g_rows
    return gx, gy, None, None, None, None, None, None, None, None


tp_sparse.register_autograd(_backward, setup_context=_setup)
