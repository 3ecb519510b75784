"""Fused tensor-product kernels for Allegro's contraction.

:func:`use_kernel` switches a model's Allegro layers to ``torch.ops.atomtwin.tp_sparse``
(:mod:`atomtwin.engines.mlip.kernels.sparse`): the contraction over the nonzero
Clebsch–Gordan entries only (CSR, precomputed once per layer), reading the centre's
environment embedding per node (the per-edge gather is fused into the kernel).  It is a
``torch.library.triton_op``: ``torch.export`` keeps it as one node and AOTInductor compiles
its implementation into the package (the Triton kernel on CUDA, plain torch on CPU), so a
package built with ``--kernel`` loads without importing this module.

The older dense op ``torch.ops.atomtwin.bilinear(x, y, coeff)`` (``out[r, c] = sum_{a,b}
coeff[a, b, c] x[r, a] y[r, b]`` with a dense coupling, :func:`tp_uuu_kernel`) is kept for
callers of its API; it is an opaque custom op (a package using it would need this module).

* Backward of both ops is the same op with the coupling transposed, so every derivative
  order (forces, force training = double backward) runs the kernel.
* On CPU the ops run plain torch; Triton runs on CPU only in tests, through
  ``TRITON_INTERPRET=1`` and :func:`triton_on_cpu`.

Switching on is explicit and per model instance: :func:`use_kernel` / :func:`restore_reference`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["bilinear", "bilinear_reference", "dense_coupling", "tp_uuu_kernel", "tp_uuu_sparse",
           "prepare_sparse", "use_kernel", "restore_reference", "kernel_enabled", "triton_on_cpu"]

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


def prepare_sparse(layer: nn.Module) -> None:
    """Precompute ``layer``'s sparse coupling (non-persistent buffers ``tp_coo``,
    ``tp_rowptr``, ``tp_val``: they move with ``.to()`` and stay out of the state dict, so
    checkpoints and model hashes do not change)."""
    from atomtwin.engines.mlip.kernels.sparse import sparse_coupling

    dims1 = [2 * ell + 1 for _, ell, _ in layer.irreps_in]
    dims2 = [2 * ell + 1 for _, ell, _ in layer.env_irreps]
    dims_out = [2 * ell + 1 for _, ell, _ in layer.tp_out]
    cgs = [getattr(layer, f"cg{k}") for k in range(layer.n_cg)]
    coo, rowptr, val, dims = sparse_coupling(layer.paths, cgs, dims1, dims2, dims_out)
    dev = cgs[0].device
    layer.register_buffer("tp_coo", coo.to(dev), persistent=False)
    layer.register_buffer("tp_rowptr", rowptr.to(dev), persistent=False)
    layer.register_buffer("tp_val", val.to(dev, cgs[0].dtype), persistent=False)
    layer.tp_dims = dims
    layer.tp_dims_out = dims_out


def tp_uuu_sparse(layer: nn.Module, v: Tensor, env_node: Tensor, centre: Tensor) -> Tensor:
    """The Allegro contraction of the channels-last track ``v`` (E, A, mul) with the centre's
    environment ``env_node`` (N, B, mul) per NODE (not gathered to edges), through the
    sparse op; returns (E, C, mul) (see ``models.allegro.tp_uuu_cl``, the reference).

    The op works on rows ``r = e * mul + u``: the track and the node environment are
    transposed to channel-major rows (the node one is N-sized, cheap), the output back.
    """
    from atomtwin.engines.mlip.kernels.sparse import tp_sparse

    e, a, mul = v.shape
    _, b, c = layer.tp_dims
    xa = v.transpose(1, 2).contiguous().reshape(e * mul, a)
    yb = env_node.to(xa.dtype).transpose(1, 2).contiguous().reshape(-1, b)
    out = tp_sparse(xa, yb, centre, mul, 0, layer.tp_coo, layer.tp_rowptr, layer.tp_val,
                    layer.tp_dims, True)
    return out.reshape(e, mul, c).transpose(1, 2)


def _allegro_layers(model: nn.Module) -> list[nn.Module]:
    from atomtwin.engines.mlip.models.allegro import AllegroLayer

    return [m for m in model.modules() if isinstance(m, AllegroLayer)]


def use_kernel(model: nn.Module, allow_cpu: bool = False) -> bool:
    """Switch the Allegro contractions of ``model`` (in place) to the sparse op.

    Parameters
    ----------
    model
        A :class:`atomtwin.engines.mlip.model.Potential` (or any module holding Allegro layers).
    allow_cpu
        Route through the op even when the model is not on CUDA (the op then runs its
        plain-torch implementation; used to export and test the op path).  Without it a
        CPU model keeps the reference with a warning: the Triton kernel is a CUDA kernel.

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
        prepare_sparse(layer)
        layer.sparse_contract = tp_uuu_sparse
    return True


def restore_reference(model: nn.Module) -> None:
    """Undo :func:`use_kernel` on ``model``."""
    for layer in _allegro_layers(model):
        layer.sparse_contract = None


def kernel_enabled(model: nn.Module) -> bool:
    """Whether :func:`use_kernel` is active on ``model``."""
    return any(getattr(layer, "sparse_contract", None) is not None for layer in _allegro_layers(model))


@contextlib.contextmanager
def triton_on_cpu() -> Iterator[None]:
    """Tests only: run the ops' CPU calls through the Triton kernels (needs
    ``TRITON_INTERPRET=1`` set before Triton is first imported)."""
    global _TRITON_ON_CPU
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("triton_on_cpu needs TRITON_INTERPRET=1 in the environment before "
                           "triton (and atomtwin.engines.mlip.kernels) is imported.")
    from atomtwin.engines.mlip.kernels.sparse import _STATE

    old, _TRITON_ON_CPU = _TRITON_ON_CPU, True
    old_s, _STATE["triton_on_cpu"] = _STATE["triton_on_cpu"], True
    try:
        yield
    finally:
        _TRITON_ON_CPU = old
        _STATE["triton_on_cpu"] = old_s
