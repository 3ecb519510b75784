"""The sparse tensor-product op ``atomtwin::tp_sparse`` against the plain-torch reference.

Both implementations are checked: the Triton kernel (CPU through TRITON_INTERPRET=1, set
before triton is imported; on CUDA in tests/gpu) and the op's plain-torch CPU implementation
(what a CPU package embeds).  Random shapes: irreps up to l = 3, 1-5 channels, parity on/off,
gathered from random centres.

Tolerance (values): each output is a sum of at most K nonzero products ``C x y``; any
summation order is within ``gamma_K * sum|C x y|`` of the exact sum (Higham, Thm 3.1), so
two orders differ by at most twice that, elementwise (bound computed with |C|, |x|, |y|).
Gradients are the same map in another role order: the same argument with their own K,
taken relative to each block's largest entry times a factor 10 for the random-sign sums.
Second derivatives: gradgradcheck (finite differences of a bilinear map are exact up to
rounding, float64).
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported anywhere

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton")

from atomtwin.engines.mlip import kernels  # noqa: E402
from atomtwin.engines.mlip.kernels.sparse import sparse_coupling, tp_sparse  # noqa: E402
from atomtwin.engines.mlip.tp import cg_coefficients, make_paths, tp_uuu  # noqa: E402

UNIT = {torch.float64: 2.0**-53, torch.float32: 2.0**-24}


def _case(seed: int, dtype, lmax: int = 2):
    g = torch.Generator().manual_seed(seed)
    lmax_in, lmax_env = (int(v) for v in torch.randint(0, lmax + 1, (2,), generator=g))
    mul = int(torch.randint(1, 4, (1,), generator=g))
    parity = bool(seed % 2)
    ps = (1, -1) if parity else (1,)
    in1 = tuple((mul, ell, p) for ell in range(lmax_in + 1) for p in ps)
    in2 = tuple((mul, ell, (-1) ** ell if parity else 1) for ell in range(lmax_env + 1))
    out_ls = tuple((ell, p) for ell in range(max(lmax_in, lmax_env) + 1) for p in ps)
    paths, out = make_paths(in1, in2, out_ls, parity)
    cgs = [c.to(dtype) for c in cg_coefficients(paths, in1, in2, out)]
    n_nodes = int(torch.randint(1, 5, (1,), generator=g))
    e = int(torch.randint(1, 5, (1,), generator=g))
    centre = torch.randint(0, n_nodes, (e,), generator=g)
    x1 = [torch.randn(e, mul, 2 * ell + 1, generator=g, dtype=dtype) for _, ell, _ in in1]
    env = [torch.randn(n_nodes, mul, 2 * ell + 1, generator=g, dtype=dtype) for _, ell, _ in in2]
    d1, d2, do = ([2 * ell + 1 for _, ell, _ in irr] for irr in (in1, in2, out))
    coo, rowptr, val, dims = sparse_coupling(paths, cgs, d1, d2, do)
    return x1, env, centre, paths, cgs, len(out), (coo, rowptr, val.to(dtype), dims), do


def _op(x1, env, centre, sp, dims_out):
    coo, rowptr, val, dims = sp
    e, mul = x1[0].shape[:2]
    xa = torch.cat(x1, -1).reshape(e * mul, dims[0])
    yb = torch.cat(env, -1).reshape(-1, dims[1])
    out = tp_sparse(xa, yb, centre, mul, 0, coo, rowptr, val, dims, True)
    return list(out.reshape(e, mul, dims[2]).split(dims_out, -1))


def test_sparse_coupling_is_the_dense_coupling():
    x1, env, centre, paths, cgs, n_out, sp, do = _case(3, torch.float64)
    coo, rowptr, val, dims = sp
    dense = kernels.dense_coupling(paths, cgs, [t.shape[-1] for t in x1], [t.shape[-1] for t in env], do)
    rebuilt = torch.zeros(dims, dtype=torch.float64)
    rebuilt[coo[0, 0].long(), coo[0, 1].long(), coo[0, 2].long()] = val[0]
    assert torch.equal(rebuilt, dense)  # same numbers, exactly (a scatter of the same floats)
    assert coo.shape[2] < dense.numel() / 2  # sparse: most CG entries are zero
    for p in range(6):  # every role order is a CSR over its output index
        out_idx = coo[p, 2].long()
        assert torch.all(out_idx[1:] >= out_idx[:-1])
        d_out = dims[kernels.sparse.PERMS[p][2]]
        assert torch.equal(rowptr[p, : d_out + 1].long(),
                           torch.searchsorted(out_idx, torch.arange(d_out + 1)))


@pytest.mark.parametrize("impl", ["triton", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(4))
def test_values_match_reference(seed, dtype, impl):
    x1, env, centre, paths, cgs, n_out, sp, do = _case(seed, dtype)
    env_e = [b[centre] for b in env]
    ref = tp_uuu(x1, env_e, paths, cgs, n_out)
    bound = tp_uuu([t.abs() for t in x1], [t.abs() for t in env_e], paths, [c.abs() for c in cgs], n_out)
    k = sp[0].shape[2] + 1
    gamma = k * UNIT[dtype] / (1 - k * UNIT[dtype])
    if impl == "triton":
        with kernels.triton_on_cpu():
            got = _op(x1, env, centre, sp, do)
    else:
        got = _op(x1, env, centre, sp, do)
    for a, b, s in zip(got, ref, bound, strict=True):
        assert a.shape == b.shape and a.dtype == dtype
        assert torch.all((a - b).abs() <= 2 * gamma * s + 1e-300)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [1, 2])
def test_first_derivatives_match_reference(seed, dtype):
    x1, env, centre, paths, cgs, n_out, sp, do = _case(seed, dtype)
    g = torch.Generator().manual_seed(99)
    w = [torch.randn(t.shape, generator=g, dtype=dtype) for t in tp_uuu(x1, [b[centre] for b in env], paths, cgs, n_out)]

    def grads(fn):
        a = [t.clone().requires_grad_(True) for t in x1]
        b = [t.clone().requires_grad_(True) for t in env]
        out = fn(a, b)
        return torch.autograd.grad(sum((o * v).sum() for o, v in zip(out, w, strict=True)), a + b)

    ref = grads(lambda a, b: tp_uuu(a, [t[centre] for t in b], paths, cgs, n_out))
    with kernels.triton_on_cpu():
        got = grads(lambda a, b: _op(a, b, centre, sp, do))
    k = sp[0].shape[2] + 1
    for a, r in zip(got, ref, strict=True):
        assert (a - r).abs().max() <= 2 * k * UNIT[dtype] * 10 * (r.abs().max() + 1e-30)


def test_second_derivatives_gradgradcheck_torch_impl():
    """Finite differences of the op's CPU implementation, to second order (float64)."""
    x1, env, centre, paths, cgs, n_out, sp, do = _case(5, torch.float64)
    mul = x1[0].shape[1]
    x = torch.cat(x1, -1).reshape(-1, sp[3][0]).clone().requires_grad_(True)
    y = torch.cat(env, -1).reshape(-1, sp[3][1]).clone().requires_grad_(True)

    def f(a, b):
        return tp_sparse(a, b, centre, mul, 0, *sp[:3], sp[3], True)

    assert torch.autograd.gradcheck(f, (x, y), atol=1e-8, rtol=1e-7)
    assert torch.autograd.gradgradcheck(f, (x, y), atol=1e-8, rtol=1e-7)


def test_second_derivatives_triton_match_reference():
    """d/dx of (d/dx <w, f> . v) through the Triton kernel (interpreter) equals the
    reference's: a second-order chain through three role orders of the coupling."""
    x1, env, centre, paths, cgs, n_out, sp, do = _case(6, torch.float64, lmax=1)
    g = torch.Generator().manual_seed(5)
    w = [torch.randn(t.shape, generator=g, dtype=torch.float64)
         for t in tp_uuu(x1, [b[centre] for b in env], paths, cgs, n_out)]
    v = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in x1]

    def second(fn):
        a = [t.clone().requires_grad_(True) for t in x1]
        b = [t.clone().requires_grad_(True) for t in env]
        out = fn(a, b)
        ga = torch.autograd.grad(sum((o * u).sum() for o, u in zip(out, w, strict=True)), a,
                                 create_graph=True)
        return torch.autograd.grad(sum((q * u).sum() for q, u in zip(ga, v, strict=True)), b)

    ref = second(lambda a, b: tp_uuu(a, [t[centre] for t in b], paths, cgs, n_out))
    with kernels.triton_on_cpu():
        got = second(lambda a, b: _op(a, b, centre, sp, do))
    for a, r in zip(got, ref, strict=True):
        assert (a - r).abs().max() <= 1e-12 * (r.abs().max() + 1e-30)


def _allegro():
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.model import build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(architecture="allegro", species=("Si", "O"), r_max=3.0,
                                   num_layers=2, lmax=1, mul=3, latent=8, mlp_hidden=8,
                                   num_basis=4, dtype="float64"))


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_model_with_sparse_op_gives_reference_forces_and_training_gradients(impl):
    """Whole Allegro model: energies, forces (first backward through the op) and weight
    gradients of a force loss (double backward) equal the reference to float64 rounding
    (1e-10 relative; sums over <= 100 terms)."""
    from atomtwin.engines.mlip.compile import example_graph

    model = _allegro().train()
    b = example_graph(model, 8, seed=4)

    def run():
        model.zero_grad()
        out = model(b)
        ((out["forces"] ** 2).sum() + out["energy"].sum()).backward()
        return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    ref_out, ref_g = run()
    assert kernels.use_kernel(model, allow_cpu=True) and kernels.kernel_enabled(model)
    assert not any(k.startswith("core.layers") and "tp_" in k for k in model.state_dict())
    if impl == "triton":
        with kernels.triton_on_cpu():
            out, g = run()
    else:
        out, g = run()
    for key in ("energy", "forces", "stress"):
        assert (out[key] - ref_out[key]).abs().max() <= 1e-10 * ref_out[key].abs().max()
    for name in set(ref_g) | set(g):  # a weight the reference leaves None gets a zero grad
        r = ref_g.get(name, torch.zeros(()))
        a = g.get(name, torch.zeros(()))
        assert (a - r).abs().max() <= 1e-10 * (r.abs().max() + 1e-30), name
    kernels.restore_reference(model)
    assert not kernels.kernel_enabled(model)
