"""The model's spherical harmonics (e3nn's public API): normalisation, closed forms, the
rotation law and a finite value at zero length."""

from __future__ import annotations

import math

import torch
from atomtwin.engines.mlip.nn import spherical_harmonics
from e3nn import o3


def test_component_normalisation_and_closed_forms():
    v = torch.randn(500, 3, dtype=torch.float64) * 3.0
    sh = spherical_harmonics(v, 3)
    assert [b.shape for b in sh] == [(500, 2 * ell + 1) for ell in range(4)]
    # "component" normalisation: sum_m Y_lm(u)^2 = 2l + 1 for every unit vector (addition theorem)
    for ell, b in enumerate(sh):
        torch.testing.assert_close(b.square().sum(1), torch.full((500,), 2.0 * ell + 1, dtype=torch.float64),
                                   rtol=1e-12, atol=1e-12)
    # l = 0 is 1; l = 1 is sqrt(3) u in e3nn's Cartesian order (a fixed permutation P of the
    # axes, whichever e3nn version), independent of the length
    u = v / v.norm(dim=1, keepdim=True)
    torch.testing.assert_close(sh[0], torch.ones(500, 1, dtype=torch.float64))
    p = spherical_harmonics(torch.eye(3, dtype=torch.float64), 1)[1] / math.sqrt(3)
    torch.testing.assert_close(p.abs().sum(0), torch.ones(3, dtype=torch.float64))  # a permutation
    torch.testing.assert_close(sh[1], math.sqrt(3) * u @ p, rtol=1e-12, atol=1e-12)


def test_rotation_law_and_zero_vector():
    torch.manual_seed(1)
    v = torch.randn(50, 3, dtype=torch.float64)
    w = torch.randn(50, 3, dtype=torch.float64)
    rot = o3.rand_matrix(dtype=torch.float64)
    sv, sw = spherical_harmonics(v, 3), spherical_harmonics(w, 3)
    rv, rw = spherical_harmonics(v @ rot.T, 3), spherical_harmonics(w @ rot.T, 3)
    # l = 1 rotates with the matrix itself; for every l, sum_m Y_lm(u) Y_lm(u') depends only
    # on u . u' (addition theorem), so it is unchanged when both vectors rotate
    p = spherical_harmonics(torch.eye(3, dtype=torch.float64), 1)[1] / math.sqrt(3)
    torch.testing.assert_close(rv[1], sv[1] @ p.T @ rot.T @ p, rtol=1e-12, atol=1e-12)
    for ell in range(4):
        torch.testing.assert_close((rv[ell] * rw[ell]).sum(1), (sv[ell] * sw[ell]).sum(1),
                                   rtol=1e-10, atol=1e-10)
    # a zero edge vector (normalised to 0, not NaN) gives finite harmonics and gradients
    z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    out = torch.cat(spherical_harmonics(z, 2), 1)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(z.grad).all()
