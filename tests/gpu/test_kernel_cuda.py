"""The Triton tensor-product kernel on a real GPU (skipped without CUDA).

Same facts as tests/unit/engines/mlip/kernels/test_bilinear.py, on CUDA and at a size
where many programs run: values within twice the summation bound gamma_K * sum|C x y|
(float64 and float32: the kernel uses IEEE dot, no TF32), and a whole Allegro model with
the kernel giving the reference energies and forces.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu

UNIT = {torch.float64: 2.0**-53, torch.float32: 2.0**-24}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cuda_kernel_matches_reference(dtype):
    from atomtwin.engines.mlip.kernels import bilinear, bilinear_reference

    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(100_003, 18, device="cuda", dtype=dtype, generator=g)
    y = torch.randn(100_003, 9, device="cuda", dtype=dtype, generator=g)
    c = torch.randn(18, 9, 18, device="cuda", dtype=dtype, generator=g)
    got = bilinear(x, y, c)
    ref = bilinear_reference(x.double(), y.double(), c.double())
    bound = bilinear_reference(x.abs().double(), y.abs().double(), c.abs().double())
    k = 18 * 9 + 1
    assert torch.all((got.double() - ref).abs() <= 2 * k * UNIT[dtype] * bound + 1e-300)


def test_cuda_model_with_kernel_matches_reference():
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
