"""Fused tensor-product kernel for Allegro's contraction, as a torch custom op.

The op ``torch.ops.atomtwin.bilinear(x, y, coeff)`` computes
``out[r, c] = sum_{a,b} coeff[a, b, c] x[r, a] y[r, b]`` over rows ``r`` (pair x channel).
Allegro's channel-wise product :func:`atomtwin.engines.mlip.tp.tp_uuu` is exactly this map once the
irrep blocks are concatenated (``a`` over all components of ``x1``, ``b`` over ``x2``) and
the per-path Clebsch–Gordan tensors are scattered into one dense ``coeff`` (``A, B, C``):
:func:`tp_uuu_kernel` does that and has ``tp_uuu``'s signature, so it can replace it.

* On CUDA the op runs the Triton kernel (:mod:`atomtwin.engines.mlip.kernels.triton_tp`, imported on
  first use); on every other device it runs the plain-torch reference.  The CPU path never
  imports Triton.
* Backward is the same op with the coupling tensor transposed
  (``dx = bilinear(y, g, coeff^{(b,c,a)})``, ``dy = bilinear(x, g, coeff^{(a,c,b)})``), so
  every derivative order (forces, force training = double backward) runs the kernel.
* ``torch.export`` / AOTInductor keep the op as a call: a package compiled with the kernel
  needs ``import atomtwin.engines.mlip.kernels`` before loading (:func:`atomtwin.engines.mlip.compiled.load_compiled`
  does it).

Switching on is explicit and per model instance: :func:`use_kernel` / :func:`restore_reference`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["bilinear", "bilinear_reference", "dense_coupling", "tp_uuu_kernel", "use_kernel",
           "restore_reference", "kernel_enabled", "triton_on_cpu"]

_TRITON_ON_CPU = False  # tests only: route CPU calls to Triton under TRITON_INTERPRET=1


def bilinear_reference(x: Tensor, y: Tensor, coeff: Tensor) -> Tensor:
    """Plain-torch ``einsum("ra,rb,abc->rc")`` (the CPU implementation and the test oracle)."""
    a, b, c = coeff.shape
    return (x.unsqueeze(-1) * y.unsqueeze(-2)).reshape(x.shape[0], a * b) @ coeff.reshape(a * b, c).to(x.dtype)


@torch.library.custom_op("atomtwin::bilinear", mutates_args=())
def bilinear(x: Tensor, y: Tensor, coeff: Tensor) -> Tensor:
    """Channel-wise bilinear map ``(R, A) x (R, B) -> (R, C)`` with a dense ``(A, B, C)`` coupling."""
    if _TRITON_ON_CPU:
        from atomtwin.engines.mlip.kernels.triton_tp import bilinear_triton

        return bilinear_triton(x, y, coeff)
    return bilinear_reference(x, y, coeff)


@bilinear.register_kernel("cuda")
def _bilinear_cuda(x: Tensor, y: Tensor, coeff: Tensor) -> Tensor:
    from atomtwin.engines.mlip.kernels.triton_tp import bilinear_triton

    return bilinear_triton(x, y, coeff)


@bilinear.register_fake
def _bilinear_fake(x: Tensor, y: Tensor, coeff: Tensor) -> Tensor:
    return x.new_empty((x.shape[0], coeff.shape[2]))


def _setup(ctx, inputs, output) -> None:
    x, y, coeff = inputs
    ctx.save_for_backward(x, y, coeff)


def _backward(ctx, grad: Tensor):
    x, y, coeff = ctx.saved_tensors
    gx = gy = None
    if ctx.needs_input_grad[0]:
        gx = bilinear(y, grad, coeff.permute(1, 2, 0).contiguous())
    if ctx.needs_input_grad[1]:
        gy = bilinear(x, grad, coeff.permute(0, 2, 1).contiguous())
    return gx, gy, None  # the coupling is a constant (Clebsch–Gordan buffers)


bilinear.register_autograd(_backward, setup_context=_setup)


def dense_coupling(paths, cgs: list[Tensor], dims1: list[int], dims2: list[int], dims_out: list[int]) -> Tensor:
    """Scatter per-path CG tensors into one ``(sum dims1, sum dims2, sum dims_out)`` tensor."""
    o1 = [sum(dims1[:i]) for i in range(len(dims1))]
    o2 = [sum(dims2[:i]) for i in range(len(dims2))]
    o3 = [sum(dims_out[:i]) for i in range(len(dims_out))]
    ref = cgs[0]
    coeff = torch.zeros(sum(dims1), sum(dims2), sum(dims_out), dtype=ref.dtype, device=ref.device)
    for (i1, i2, k), c in zip(paths, cgs, strict=True):
        a, b, cc = c.shape
        coeff[o1[i1]:o1[i1] + a, o2[i2]:o2[i2] + b, o3[k]:o3[k] + cc] += c
    return coeff


def tp_uuu_kernel(x1: list[Tensor], x2: list[Tensor], paths, cgs: list[Tensor], n_out: int) -> list[Tensor]:
    """Drop-in for :func:`atomtwin.engines.mlip.tp.tp_uuu` through the fused op (same arguments/result).

    ``x1``/``x2`` blocks ``(E, mul, 2l+1)``; returns ``n_out`` blocks ``(E, mul, 2l3+1)``.
    """
    dims1 = [t.shape[-1] for t in x1]
    dims2 = [t.shape[-1] for t in x2]
    dims_out = [0] * n_out
    for (_, _, k), c in zip(paths, cgs, strict=True):
        dims_out[k] = c.shape[2]
    coeff = dense_coupling(paths, cgs, dims1, dims2, dims_out)
    e, mul = x1[0].shape[0], x1[0].shape[1]
    xa = torch.cat(x1, dim=-1).reshape(e * mul, sum(dims1))
    xb = torch.cat(x2, dim=-1).to(xa.dtype).reshape(e * mul, sum(dims2))
    out = bilinear(xa, xb, coeff.to(xa.dtype)).reshape(e, mul, sum(dims_out))
    return list(torch.split(out, dims_out, dim=-1))


def _allegro_layers(model: nn.Module) -> list[nn.Module]:
    from atomtwin.engines.mlip.models.allegro import AllegroLayer

    return [m for m in model.modules() if isinstance(m, AllegroLayer)]


def use_kernel(model: nn.Module, allow_cpu: bool = False) -> bool:
    """Switch the Allegro contractions of ``model`` (in place) to the fused op.

    Parameters
    ----------
    model
        A :class:`atomtwin.engines.mlip.model.Potential` (or any module holding Allegro layers).
    allow_cpu
        Route through the op even when the model is not on CUDA (the op then runs the
        reference; used to export/test the op path).  Without it a CPU model keeps the
        reference with a warning: the Triton kernel is a CUDA kernel.

    Returns
    -------
    True if switched.  NequIP models have no Allegro layer: a warning, nothing changes.
    """
    layers = _allegro_layers(model)
    if not layers:
        warnings.warn("use_kernel: the model has no Allegro layer (the kernel fuses Allegro's "
                      "tensor product); it keeps the reference implementation.", stacklevel=2)
        return False
    dev = next(model.buffers(), torch.empty(0)).device
    if dev.type != "cuda" and not allow_cpu:
        warnings.warn(f"use_kernel: the model is on '{dev.type}', the Triton kernel needs CUDA; "
                      "falling back to the reference tensor product (same numbers).", stacklevel=2)
        return False
    for layer in layers:
        layer.contract = tp_uuu_kernel
    return True


def restore_reference(model: nn.Module) -> None:
    """Undo :func:`use_kernel` on ``model``."""
    from atomtwin.engines.mlip.tp import tp_uuu

    for layer in _allegro_layers(model):
        layer.contract = tp_uuu


def kernel_enabled(model: nn.Module) -> bool:
    """Whether :func:`use_kernel` is active on ``model``."""
    return any(getattr(layer, "contract", None) is tp_uuu_kernel or "forward" in layer.__dict__
               for layer in _allegro_layers(model))


@contextlib.contextmanager
def triton_on_cpu() -> Iterator[None]:
    """Tests only: run the op's CPU calls through the Triton kernel (needs ``TRITON_INTERPRET=1``
    set before the kernel module is first imported)."""
    global _TRITON_ON_CPU
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("triton_on_cpu needs TRITON_INTERPRET=1 in the environment before "
                           "atomtwin.engines.mlip.kernels.triton_tp is imported.")
    old, _TRITON_ON_CPU = _TRITON_ON_CPU, True
    try:
        yield
    finally:
        _TRITON_ON_CPU = old
