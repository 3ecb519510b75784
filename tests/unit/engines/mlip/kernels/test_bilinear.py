"""The fused tensor-product op against the plain-torch reference (atomtwin.engines.mlip.tp.tp_uuu).

The Triton kernel runs on CPU through TRITON_INTERPRET=1 (set before the kernel module is
imported); on a GPU the same tests are in tests/gpu/test_kernel_cuda.py.

Tolerance argument (values): each output is a sum of K = A*B products ``C x y``.  Any
summation order has error at most ``gamma_K * sum|C x y|`` with ``gamma_K = K u / (1 - K u)``
(Higham, Thm 3.1; u = 2^-53 or 2^-24), one more rounding for each product.  The kernel
and the reference sum in different orders, so they may differ by twice that bound,
elementwise: ~1e-13 (float64) and ~1e-5 (float32) of ``sum|C x y|`` for K ~ 100.
Gradients are the same map with the coupling transposed (K = B*C or A*C), so the same
bound applies to them with the matching K.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before atomtwin.engines.mlip.kernels.triton_tp is imported

import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from atomtwin.engines.mlip import kernels  # noqa: E402
from atomtwin.engines.mlip.tp import cg_coefficients, make_paths, tp_uuu  # noqa: E402

pytest.importorskip("triton")

UNIT = {torch.float64: 2.0**-53, torch.float32: 2.0**-24}


def _case(lmax_in: int, lmax_env: int, mul: int, parity: bool, all_out: bool, dtype, seed: int):
    ps = (1, -1) if parity else (1,)
    if parity:
        in1 = tuple((mul, ell, p) for ell in range(lmax_in + 1) for p in ps)
    else:
        in1 = tuple((mul, ell, 1) for ell in range(lmax_in + 1))
    in2 = tuple((mul, ell, (-1) ** ell if parity else 1) for ell in range(lmax_env + 1))
    out_ls = tuple((ell, p) for ell in range(max(lmax_in, lmax_env) + 1) for p in ps) if all_out else ((0, 1),)
    paths, out = make_paths(in1, in2, out_ls, parity)
    cgs = [c.to(dtype) for c in cg_coefficients(paths, in1, in2, out)]
    g = torch.Generator().manual_seed(seed)
    e = 7
    x1 = [torch.randn(e, mul, 2 * ell + 1, generator=g, dtype=dtype) for _, ell, _ in in1]
    x2 = [torch.randn(e, mul, 2 * ell + 1, generator=g, dtype=dtype) for _, ell, _ in in2]
    return x1, x2, paths, cgs, len(out)


def _abs_bound(x1, x2, paths, cgs, n_out):
    """``sum|C||x||y|`` per output element (the scale of the rounding error)."""
    return tp_uuu([t.abs() for t in x1], [t.abs() for t in x2], paths, [c.abs() for c in cgs], n_out)


CASES = [  # (lmax_in, lmax_env, mul, parity, all outputs)
    (0, 0, 1, True, True), (1, 1, 3, True, True), (2, 2, 4, True, True), (2, 2, 2, False, True),
    (1, 3, 2, True, True), (3, 3, 1, True, False), (2, 1, 5, False, False),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES)
def test_kernel_values_match_reference(case, dtype):
    x1, x2, paths, cgs, n_out = _case(*case, dtype=dtype, seed=hash(case) % 1000)
    ref = tp_uuu(x1, x2, paths, cgs, n_out)
    bound = _abs_bound(x1, x2, paths, cgs, n_out)
    k = sum(t.shape[-1] for t in x1) * sum(t.shape[-1] for t in x2)
    gamma = (k + 1) * UNIT[dtype] / (1 - (k + 1) * UNIT[dtype])
    with kernels.triton_on_cpu():
        got = kernels.tp_uuu_kernel(x1, x2, paths, cgs, n_out)
    assert len(got) == len(ref)
    for a, b, s in zip(got, ref, bound, strict=True):
        assert a.shape == b.shape and a.dtype == dtype
        assert torch.all((a - b).abs() <= 2 * gamma * s + 1e-300)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES[1:5])
def test_kernel_gradients_match_reference(case, dtype):
    x1, x2, paths, cgs, n_out = _case(*case, dtype=dtype, seed=7)
    g = torch.Generator().manual_seed(3)
    w = [torch.randn(t.shape, generator=g, dtype=dtype) for t in tp_uuu(x1, x2, paths, cgs, n_out)]

    def grads(fn):
        a = [t.clone().requires_grad_(True) for t in x1]
        b = [t.clone().requires_grad_(True) for t in x2]
        out = fn(a, b, paths, cgs, n_out)
        return torch.autograd.grad(sum((o * v).sum() for o, v in zip(out, w, strict=True)), a + b)

    ref = grads(tp_uuu)
    with kernels.triton_on_cpu():
        got = grads(kernels.tp_uuu_kernel)
    # each gradient entry is a sum over <= (sum dims)^2 products; bound relative to the
    # largest entry of that block (random signs make sum|terms| ~ a few times max|grad|)
    k = max(sum(t.shape[-1] for t in x1), sum(t.shape[-1] for t in x2)) ** 2
    tol = 2 * (k + 1) * UNIT[dtype] * 10
    for a, b in zip(got, ref, strict=True):
        assert (a - b).abs().max() <= tol * b.abs().max()


def test_op_passes_gradcheck_and_gradgradcheck():
    """Finite differences of the op itself (Triton forward and backward, float64).  The map
    is bilinear, so central differences are exact up to rounding (~1e-10 with step 1e-6)."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, 4, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    c = torch.randn(4, 3, 6, dtype=torch.float64, generator=g)
    with kernels.triton_on_cpu():
        assert torch.autograd.gradcheck(lambda a, b: kernels.bilinear(a, b, c), (x, y), atol=1e-8, rtol=1e-7)
        assert torch.autograd.gradgradcheck(lambda a, b: kernels.bilinear(a, b, c), (x, y), atol=1e-8, rtol=1e-7)


def test_empty_rows():
    with kernels.triton_on_cpu():
        out = kernels.bilinear(torch.zeros(0, 3), torch.zeros(0, 2), torch.ones(3, 2, 4))
    assert out.shape == (0, 4)


def _allegro(dtype: str = "float64"):
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.model import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(architecture="allegro", species=("Si", "O"), r_max=3.0, num_layers=2, lmax=2,
                      mul=4, latent=8, mlp_hidden=8, num_basis=4, dtype=dtype)
    return build_model(cfg)


def _batch(model):
    from atomtwin.engines.mlip.compile import example_graph

    return example_graph(model, 10, seed=4)


def test_model_with_kernel_gives_reference_energy_forces_and_training_gradients():
    """Whole Allegro model: energies, forces (first backward through the op) and the
    weight gradients of a force loss (double backward) with the kernel equal the
    reference to float64 rounding (1e-10 relative; sums over <= 100 edges per atom)."""
    model = _allegro()
    b = _batch(model)

    def run():
        model.train()
        model.zero_grad()
        out = model(b)
        loss = (out["forces"] ** 2).sum() + out["energy"].sum()
        loss.backward()
        return out, [p.grad.clone() if p.grad is not None else None for p in model.parameters()]

    ref_out, ref_g = run()
    assert kernels.use_kernel(model, allow_cpu=True) and kernels.kernel_enabled(model)
    with kernels.triton_on_cpu():
        out, g = run()
    for key in ("energy", "forces", "stress"):
        scale = ref_out[key].abs().max()
        assert (out[key] - ref_out[key]).abs().max() <= 1e-10 * scale
    for a, r in zip(g, ref_g, strict=True):
        if r is not None:
            assert (a - r).abs().max() <= 1e-10 * (r.abs().max() + 1e-30)
    kernels.restore_reference(model)
    assert not kernels.kernel_enabled(model)


def test_use_kernel_on_cpu_warns_and_keeps_reference():
    model = _allegro()
    with pytest.warns(UserWarning, match="needs CUDA"):
        assert kernels.use_kernel(model) is False
    assert not kernels.kernel_enabled(model)


def test_use_kernel_on_nequip_is_a_noop_with_warning():
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.model import build_model

    model = build_model(ModelConfig(architecture="nequip", species=("Si",), num_layers=1, lmax=1, mul=2))
    with pytest.warns(UserWarning, match="no Allegro layer"):
        assert kernels.use_kernel(model, allow_cpu=True) is False


def test_cpu_path_never_imports_triton():
    """With Triton made unimportable (as on a machine without it) the op path runs and the
    kernel module is never loaded.  (torch._dynamo imports triton by itself when present,
    so "not in sys.modules" would test torch, not us.)"""
    code = (
        "import sys\n"
        "sys.modules['triton'] = None  # any 'import triton' now raises ImportError\n"
        "import torch\n"
        "from atomtwin.engines.mlip.config import ModelConfig\n"
        "from atomtwin.engines.mlip.model import build_model\n"
        "from atomtwin.engines.mlip import kernels\n"
        "from atomtwin.engines.mlip.compile import example_graph\n"
        "m = build_model(ModelConfig(architecture='allegro', species=('Si',), r_max=3.0, num_layers=1,"
        " lmax=1, mul=2, latent=4, mlp_hidden=4, num_basis=2))\n"
        "kernels.use_kernel(m, allow_cpu=True)\n"
        "m(example_graph(m, 6))\n"
        "assert 'atomtwin.engines.mlip.kernels.triton_tp' not in sys.modules\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
