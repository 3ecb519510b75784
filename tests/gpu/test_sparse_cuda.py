"""The sparse tensor-product op's Triton kernel on CUDA (skipped without CUDA).

Same facts as tests/unit/engines/mlip/kernels/test_sparse.py, on a real GPU with many
programs: values within twice the summation bound ``gamma_K sum|C x y|`` (no TF32: the kernel
multiplies in the input precision), first and second derivatives against the reference
(1e-12 relative in float64, 1e-4 in float32: sums of <= a few hundred terms), random shapes;
the whole Allegro model with the kernel; and a CUDA AOTI package built with the kernel
that runs in a process never importing ``atomtwin.engines.mlip.kernels``.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

UNIT = {torch.float64: 2.0**-53, torch.float32: 2.0**-24}


def _case(seed: int, dtype, lmax: int = 3, edges: int = 20_000, nodes: int = 500):
    from atomtwin.engines.mlip.kernels.sparse import sparse_coupling
    from atomtwin.engines.mlip.tp import cg_coefficients, make_paths

    g = torch.Generator().manual_seed(seed)
    lmax_in, lmax_env = (int(v) for v in torch.randint(1, lmax + 1, (2,), generator=g))
    mul = int(torch.randint(1, 33, (1,), generator=g))
    parity = bool(seed % 2)
    ps = (1, -1) if parity else (1,)
    in1 = tuple((mul, ell, p) for ell in range(lmax_in + 1) for p in ps)
    in2 = tuple((mul, ell, (-1) ** ell if parity else 1) for ell in range(lmax_env + 1))
    out_ls = tuple((ell, p) for ell in range(max(lmax_in, lmax_env) + 1) for p in ps)
    paths, out = make_paths(in1, in2, out_ls, parity)
    cgs = [c.to(dtype).cuda() for c in cg_coefficients(paths, in1, in2, out)]
    centre = torch.randint(0, nodes, (edges,), generator=g).cuda()
    x1 = [torch.randn(edges, mul, 2 * ell + 1, generator=g, dtype=dtype).cuda() for _, ell, _ in in1]
    env = [torch.randn(nodes, mul, 2 * ell + 1, generator=g, dtype=dtype).cuda() for _, ell, _ in in2]
    d1, d2, do = ([2 * ell + 1 for _, ell, _ in irr] for irr in (in1, in2, out))
    coo, rowptr, val, dims = sparse_coupling(paths, cgs, d1, d2, do)
    sp = (coo.cuda(), rowptr.cuda(), val.to(dtype).cuda(), dims)
    return x1, env, centre, paths, cgs, len(out), sp, do


def _op(x1, env, centre, sp, dims_out):
    from atomtwin.engines.mlip.kernels.sparse import tp_sparse

    coo, rowptr, val, dims = sp
    e, mul = x1[0].shape[:2]
    out = tp_sparse(torch.cat(x1, -1).reshape(e * mul, dims[0]), torch.cat(env, -1).reshape(-1, dims[1]),
                    centre, mul, 0, coo, rowptr, val, dims, True)
    return list(out.reshape(e, mul, dims[2]).split(dims_out, -1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(4))
def test_cuda_values_match_reference(seed, dtype):
    from atomtwin.engines.mlip.tp import tp_uuu

    x1, env, centre, paths, cgs, n_out, sp, do = _case(seed, dtype)
    env_e = [b[centre] for b in env]
    ref = tp_uuu([t.double() for t in x1], [t.double() for t in env_e], paths, [c.double() for c in cgs], n_out)
    bound = tp_uuu([t.abs().double() for t in x1], [t.abs().double() for t in env_e], paths,
                   [c.abs().double() for c in cgs], n_out)
    k = sp[0].shape[2] + 1
    got = _op(x1, env, centre, sp, do)
    for a, b, s in zip(got, ref, bound, strict=True):
        assert torch.all((a.double() - b).abs() <= 2 * k * UNIT[dtype] * s + 1e-300)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [1, 2])
def test_cuda_first_and_second_derivatives_match_reference(seed, dtype):
    from atomtwin.engines.mlip.tp import tp_uuu

    x1, env, centre, paths, cgs, n_out, sp, do = _case(seed, dtype, lmax=2, edges=3000, nodes=100)
    g = torch.Generator().manual_seed(5)
    w = [torch.randn(t.shape, generator=g, dtype=dtype).cuda()
         for t in tp_uuu(x1, [b[centre] for b in env], paths, cgs, n_out)]
    v = [torch.randn(t.shape, generator=g, dtype=dtype).cuda() for t in x1]

    def derivs(fn):
        a = [t.clone().requires_grad_(True) for t in x1]
        b = [t.clone().requires_grad_(True) for t in env]
        out = fn(a, b)
        first = torch.autograd.grad(sum((o * u).sum() for o, u in zip(out, w, strict=True)), a + b,
                                    create_graph=True)
        second = torch.autograd.grad(sum((q * u).sum() for q, u in zip(first[: len(a)], v, strict=True)), b)
        return [t.detach() for t in first] + list(second)

    ref = derivs(lambda a, b: tp_uuu(a, [t[centre] for t in b], paths, cgs, n_out))
    got = derivs(lambda a, b: _op(a, b, centre, sp, do))
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    for a, r in zip(got, ref, strict=True):
        assert (a - r).abs().max() <= tol * (r.abs().max() + 1e-30)


def test_cuda_model_with_sparse_kernel_matches_reference():
    from atomtwin.engines.mlip.compile import example_graph
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.kernels import use_kernel
    from atomtwin.engines.mlip.model import build_model

    torch.manual_seed(0)
    m = build_model(ModelConfig(architecture="allegro", species=("Si", "O"), r_max=4.0, lmax=2,
                                mul=8, latent=16, mlp_hidden=16, dtype="float64")).cuda()
    b = example_graph(m, 200, seed=1, device="cuda")
    ref = m(b)
    assert use_kernel(m)
    out = m(b)
    for key in ("energy", "forces", "stress"):
        assert (out[key] - ref[key]).abs().max() <= 1e-10 * ref[key].abs().max()


def test_cuda_kernel_package_runs_without_importing_the_kernels(tmp_path):
    import subprocess
    import sys

    from atomtwin.engines.mlip.compile import compile_model, example_graph
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.model import build_model

    torch.manual_seed(0)
    m = build_model(ModelConfig(architecture="allegro", species=("Si", "O"), r_max=3.0, num_layers=1,
                                lmax=1, mul=4, latent=8, mlp_hidden=8, dtype="float64")).cuda()
    info = compile_model(m, tmp_path / "k.pt2", device="cuda", kernel=True, check_sizes=(7,))
    assert info["kernel"] and info["kernel_impl"] == "triton"
    b = example_graph(m, 40, seed=3, device="cuda")
    torch.save({"b": {k: v.cpu() for k, v in b.items()}, "f": m(b)["forces"].detach().cpu()},
               tmp_path / "ref.pt")
    code = ("import sys, torch\nfrom atomtwin.engines.mlip.compiled import load_compiled\n"
            f"pot = load_compiled({str(tmp_path / 'k.pt2')!r})\n"
            f"d = torch.load({str(tmp_path / 'ref.pt')!r})\n"
            "f = pot({k: v.cuda() for k, v in d['b'].items()})['forces'].cpu()\n"
            "assert not [k for k in sys.modules if '.kernels' in k]\n"
            "print(float((f - d['f']).abs().max() / d['f'].abs().max()))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout.strip().splitlines()[-1]) <= 1e-9
