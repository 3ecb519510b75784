"""The free-energy Hessian (physical SCHA phonons) against finite differences of the SCHA force."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.engines.tdscha import System, double_well_1d, free_energy_hessian, polar_lattice, scha
from atomtwin.engines.tdscha.hessian import response_lambda
from atomtwin.engines.tdscha.scha import harmonic_variance


def _fd_hessian(model, system, res, h=1e-3):
    """-d<f>/dx with the covariance re-minimised at each displaced (fixed) centroid, eV/Å².

    dF*/dx = <dV/dx> at the optimum in Phi, so this is an independent route to d²F*/dx²:
    2n further SCHA minimisations instead of the Daleckii-Krein linear response."""
    s, Q, d = system, system.basis, 1.0 / system.sqrt_m
    H = np.zeros((s.n, s.n))
    x0 = s.to_cartesian(res.R)
    for k in range(s.n):
        g = []
        for sign in (1.0, -1.0):
            x = x0.copy()
            x[k] += sign * h
            rk = scha(s, res.temperature, model=model, tol=1e-13, max_iter=5000, R0=s.to_mass_scaled(x),
                      phi0=res.phi, fix_centroid=True)
            A, _ = rk.covariances()
            g.append(model.gaussian_averages(x, d[:, None] * (Q @ A @ Q.T) * d[None, :])[1])
        H[:, k] = (g[0] - g[1]) / (2 * h)
    return H


@pytest.mark.parametrize("case", ["polar_lattice", "double_well_ordered"])
def test_free_energy_hessian_matches_finite_differences(case):
    if case == "polar_lattice":
        # cubic u²h coupling: D3 != 0 at the symmetric centroid, all four terms contribute
        m, T, R0 = polar_lattice(n_cells=2, k_polar=0.3, cubic=1.0), 100.0, None
    else:
        # 10 K in a 20 meV double well: the centroid sits off-centre (D3 = T4 x != 0) and the
        # physical phonon is ~25 % softer than the auxiliary one
        m, T = double_well_1d(barrier=0.02, x_min=0.4, mass=4.0), 10.0
        R0 = System.from_model(m).to_mass_scaled(np.array([0.4]))
    s = System.from_model(m)
    res = scha(s, T, model=m, tol=1e-12, max_iter=3000, R0=R0)
    assert res.converged
    ds = free_energy_hessian(res, m)
    H = ds["hessian"].values
    Hfd = _fd_hessian(m, s, res)
    # central differences with h = 1e-3 Å: error ~ h² V''''' / 6 plus the SCHA tolerance (1e-13)
    # amplified by 1/h: both ~1e-6 of the largest element; 1e-5 leaves a margin of 10
    np.testing.assert_allclose(H, Hfd, atol=1e-5 * np.abs(H).max())
    # the correction 1/2 D3 (Lambda^-1 - D4/2)^-1 D3 is negative semi-definite (Lambda < 0, D4 >= 0
    # for these models): each physical frequency lies at or below the auxiliary one
    assert np.all(ds["frequency"].values <= ds["auxiliary_frequency"].values + 1e-9)
    if case == "double_well_ordered":
        assert ds["frequency"].values[0] < 0.9 * ds["auxiliary_frequency"].values[0]


def test_harmonic_model_hessian_is_the_force_constants():
    # no anharmonicity: D3 = D4 = 0, so d²F/dx² = K exactly and the two frequency sets agree
    m = polar_lattice(n_cells=3, quartic=0.0, cubic=0.0, k_polar=0.4)
    s = System.from_model(m)
    res = scha(s, 300.0, model=m, tol=1e-12)
    ds = free_energy_hessian(res, m)
    np.testing.assert_allclose(ds["hessian"].values, m.K, atol=1e-10)
    np.testing.assert_allclose(ds["frequency"].values, ds["auxiliary_frequency"].values, rtol=1e-10)


@pytest.mark.parametrize("T", [0.0, 50.0, 1000.0])
def test_response_lambda_is_the_derivative_of_the_variance(T):
    # Lambda_ii = da/d(w²): compare with a central difference (rel. step 1e-5, error ~1e-10);
    # a nearly degenerate pair must give the same limit (no 0/0 blow-up)
    w = np.array([3.0, 7.0, 7.0 * (1 + 1e-9)])
    lam = response_lambda(w, T)
    eps = 1e-5
    for i, wi in enumerate(w):
        w2p, w2m = wi**2 * (1 + eps), wi**2 * (1 - eps)
        fd = (harmonic_variance(np.sqrt(w2p), T) - harmonic_variance(np.sqrt(w2m), T)) / (w2p - w2m)
        assert lam[i, i] == pytest.approx(float(fd), rel=1e-7)
    assert lam[1, 2] == pytest.approx(lam[1, 1], rel=1e-7)
    a = harmonic_variance(w, T)
    assert lam[0, 1] == pytest.approx((a[0] - a[1]) / (w[0] ** 2 - w[1] ** 2), rel=1e-12)
    assert np.all(lam < 0)


def test_unconverged_or_mismatched_input_is_refused():
    m = polar_lattice(n_cells=2)
    s = System.from_model(m)
    res = scha(s, 100.0, model=m, max_iter=2, raise_on_failure=False)
    with pytest.raises(ValueError, match="did not converge"):
        free_energy_hessian(res, m)
    with pytest.raises(ValueError, match="coordinates"):
        free_energy_hessian(scha(s, 100.0, model=m), polar_lattice(n_cells=3))
