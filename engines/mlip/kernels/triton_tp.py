"""Triton implementation of the channel-wise bilinear contraction (GPU; CPU only through
``TRITON_INTERPRET=1`` for tests).  Imported lazily: nothing on the CPU path imports it.

``out[r, c] = sum_{a, b} C[a, b, c] x[r, a] y[r, b]`` for rows ``r`` (pair x channel).
Each program takes ``BLOCK_R`` rows, forms the outer products ``x[r, a] y[r, b]`` flattened
to ``k = a * B + b`` (padded to a power of two), and multiplies the ``(BLOCK_R, K)`` tile by
the dense Clebsch–Gordan matrix ``(K, C)`` with ``tl.dot`` in IEEE precision (no TF32: the
forces must match the float32 reference to ~1e-6 relative, TF32 would give ~1e-3).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["bilinear_triton"]


@triton.jit
def _bilinear_kernel(
    x_ptr, y_ptr, c_ptr, out_ptr, R,
    A: tl.constexpr, B: tl.constexpr, C: tl.constexpr,
    K_PAD: tl.constexpr, C_PAD: tl.constexpr, BLOCK_R: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    row_ok = rows < R
    k = tl.arange(0, K_PAD)
    k_ok = k < A * B
    a = k // B
    b = k % B
    m = row_ok[:, None] & k_ok[None, :]
    rows64 = rows.to(tl.int64)
    xv = tl.load(x_ptr + rows64[:, None] * A + a[None, :], mask=m, other=0.0)
    yv = tl.load(y_ptr + rows64[:, None] * B + b[None, :], mask=m, other=0.0)
    prod = xv * yv  # (BLOCK_R, K_PAD) outer products, zero in the padding
    cc = tl.arange(0, C_PAD)
    cm = k_ok[:, None] & (cc < C)[None, :]
    coeff = tl.load(c_ptr + k[:, None] * C + cc[None, :], mask=cm, other=0.0)
    acc = tl.dot(prod, coeff, input_precision="ieee")
    om = row_ok[:, None] & (cc < C)[None, :]
    tl.store(out_ptr + rows64[:, None] * C + cc[None, :], acc.to(out_ptr.dtype.element_ty), mask=om)


def _pow2(n: int, least: int = 16) -> int:
    return max(least, 1 << (max(n, 1) - 1).bit_length())


def bilinear_triton(x: Tensor, y: Tensor, coeff: Tensor, block_r: int = 32) -> Tensor:
    """``einsum("ra,rb,abc->rc", x, y, coeff)`` by the Triton kernel.

    Parameters
    ----------
    x, y
        ``(R, A)`` and ``(R, B)``, same dtype (float32 or float64) and device.
    coeff
        ``(A, B, C)`` dense coupling tensor.

    Returns
    -------
    ``(R, C)`` tensor.
    """
    x, y, coeff = x.contiguous(), y.contiguous(), coeff.to(x.dtype).contiguous()
    r, a = x.shape
    b = y.shape[1]
    c = coeff.shape[2]
    out = torch.empty((r, c), dtype=x.dtype, device=x.device)
    if r == 0:
        return out
    grid = (triton.cdiv(r, block_r),)
    _bilinear_kernel[grid](x, y, coeff, out, r, A=a, B=b, C=c, K_PAD=_pow2(a * b),
                           C_PAD=_pow2(c), BLOCK_R=block_r)
    return out
