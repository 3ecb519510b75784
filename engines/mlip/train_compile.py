"""Train-time compilation: ``torch.compile`` of a full training step with force loss.

A force-matching step differentiates twice: forces are ``-dE/dpos`` (first backward, with
``create_graph``), and the loss on them is differentiated with respect to the weights
(second backward).  :func:`make_train_step` returns a step whose loss *and* weight
gradients come from one compiled function: ``torch.autograd.grad`` calls are traced by
dynamo (``torch._dynamo.config.trace_autograd_ops``), so the forward, the force backward
and the double backward are optimised together; the optimiser update stays eager.
:func:`measure_speedup` times it against the same step in eager mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from atomtwin.engines.mlip import torch_internals as TI
from torch import Tensor, nn

__all__ = ["force_matching_loss", "make_train_step", "measure_speedup"]


def force_matching_loss(out: dict[str, Tensor], batch: dict[str, Tensor], energy_weight: float = 1.0,
                        force_weight: float = 10.0) -> Tensor:
    """``w_E * mean((ΔE/N)^2) + w_F * mean(ΔF^2)`` in (eV/atom)² and (eV/Å)²."""
    n = batch["num_atoms"].to(out["energy"].dtype)
    de = (out["energy"] - batch["ref_energy"].to(out["energy"].dtype)) / n
    df = out["forces"] - batch["ref_forces"].to(out["forces"].dtype)
    return energy_weight * (de * de).mean() + force_weight * (df * df).mean()


def make_train_step(model: nn.Module, compile: bool = True, energy_weight: float = 1.0,
                    force_weight: float = 10.0, dynamic: bool = True, backend: str = "inductor") -> Callable:
    """A function ``step(batch) -> (loss, grads)`` (no optimiser update).

    Parameters
    ----------
    model
        A :class:`~atomtwin.engines.mlip.model.Potential`; put in ``train()`` mode (keeps the graph
        of the forces for the double backward).
    compile
        ``torch.compile`` the loss and the weight gradients as one function (default), or
        run eagerly (the baseline).
    dynamic
        Compile for varying atom/edge counts (no recompilation per batch size).
    backend
        ``torch.compile`` backend: ``"inductor"`` (fused code, the point) or ``"aot_eager"``
        (same traced graph run op by op: a cheap check of the tracing).

    Returns
    -------
    ``step(batch) -> (loss (), grads tuple aligned with trainable parameters)``; use
    :func:`apply_grads` or set ``p.grad`` yourself before ``optimizer.step()``.
    """
    from atomtwin.engines.mlip.compile import OUTPUT_NAMES, EnergyAndGradients, _inputs

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    # the flat forward without Potential.forward's data-dependent input check, which
    # would break the graph (and aot_autograd cannot double-backward across a break)
    flat = EnergyAndGradients(model, create_graph=True)

    dtype = model.shift.dtype

    def loss_and_grads(batch: dict[str, Tensor], pos: Tensor, strain: Tensor):
        x = _inputs(batch, dtype)
        out = dict(zip(OUTPUT_NAMES, flat(pos, *x[1:], strain=strain), strict=True))
        loss = force_matching_loss(out, batch, energy_weight, force_weight)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return loss.detach(), grads

    def leaves(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        pos = batch["pos"].detach().to(dtype).requires_grad_(True)
        nb = batch["cell"].reshape(-1, 3, 3).shape[0]
        return pos, torch.zeros(nb, 3, 3, dtype=dtype, device=pos.device, requires_grad=True)

    if not compile:
        return lambda batch: loss_and_grads(batch, *leaves(batch))
    compiled = torch.compile(loss_and_grads, dynamic=dynamic, backend=backend)

    def step(batch: dict[str, Tensor]):
        # specialize_float: Python-float hyperparameters (cutoff exponent) stay constants;
        # as symbolic floats inductor fails to lower ``x ** p`` (torch 2.13)
        # donated_buffer off: the force backward runs with create_graph=True
        with TI.dynamo_config(trace_autograd_ops=True, specialize_float=True), \
                TI.functorch_config(donated_buffer=False):
            return compiled(batch, *leaves(batch))

    return step


def apply_grads(model: nn.Module, grads) -> None:
    """Store ``grads`` (from a step) in ``p.grad`` of the trainable parameters."""
    for p, g in zip([p for p in model.parameters() if p.requires_grad], grads, strict=True):
        p.grad = None if g is None else g.detach()


def measure_speedup(model: nn.Module, batches: list[dict[str, Tensor]], repeats: int = 5) -> dict[str, float]:
    """Seconds per training step (loss + weight gradients) eager vs compiled.

    The first compiled call (compilation) is timed separately; each timing is the median
    over ``repeats`` passes through ``batches``.  Also returns the largest relative
    difference of the weight gradients between the two (a correctness check).

    Returns
    -------
    dict with ``eager_s``, ``compiled_s``, ``speedup``, ``compile_s``, ``grad_rel_diff``,
    ``graph_breaks`` (from ``torch._dynamo`` counters).
    """
    import statistics

    eager = make_train_step(model, compile=False)
    comp = make_train_step(model, compile=True)
    TI.dynamo_counters().clear()
    t0 = time.perf_counter()
    lc, gc = comp(batches[0])
    compile_s = time.perf_counter() - t0
    le, ge = eager(batches[0])
    diff = 0.0
    for a, b in zip(ge, gc, strict=True):
        if a is not None and b is not None:
            diff = max(diff, float((a - b).abs().max() / (a.abs().max() + 1e-30)))
    for b in batches[1:]:  # warm the dynamic-shape graphs
        comp(b)

    def timed(fn) -> float:
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            for b in batches:
                fn(b)
            ts.append((time.perf_counter() - t) / len(batches))
        return statistics.median(ts)

    te, tc = timed(eager), timed(comp)
    breaks = sum(TI.dynamo_counters()["graph_break"].values())
    return {"eager_s": te, "compiled_s": tc, "speedup": te / tc, "compile_s": compile_s,
            "grad_rel_diff": diff, "loss_diff": float((le - lc).abs()), "graph_breaks": float(breaks)}
