"""Polynomial models: exact Gaussian averages and the ensemble estimators' derivatives."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.engines.tdscha import (
    EnsembleAverager,
    ExactAverager,
    PolynomialModel,
    System,
    cholesky_backward,
    double_well_1d,
    polar_lattice,
    quartic_1d,
)


def test_quartic_1d_moments_closed_form():
    # <x^2> = s + mu^2, <x^4> = 3 s^2 + 6 mu^2 s + mu^4 for x ~ N(mu, s): exact identities,
    # so the only error is rounding (1e-12 relative).
    k, g, mu, s = 0.7, 0.3, 0.2, 0.05
    m = quartic_1d(k=k, quartic=g)
    v, grad, hess = m.gaussian_averages([mu], [[s]])
    assert v == pytest.approx(0.5 * k * (s + mu**2) + g * (3 * s**2 + 6 * mu**2 * s + mu**4), rel=1e-12)
    # <V'> = k mu + 4 g <x^3> = k mu + 4 g (mu^3 + 3 mu s);  <V''> = k + 12 g (s + mu^2)
    assert grad[0] == pytest.approx(k * mu + 4 * g * (mu**3 + 3 * mu * s), rel=1e-12)
    assert hess[0, 0] == pytest.approx(k + 12 * g * (s + mu**2), rel=1e-12)


def test_double_well_shape():
    m = double_well_1d(barrier=0.05, x_min=0.3)
    e, f, _ = m.evaluate(np.array([[0.0], [0.3], [-0.3]]))
    # barrier height at 0, minima (zero energy and force) at +-x_min: exact polynomial values
    np.testing.assert_allclose(e, [0.05, 0.0, 0.0], atol=1e-14)
    np.testing.assert_allclose(f[1:], 0.0, atol=1e-13)


def test_polar_lattice_gradients_are_derivatives_of_averages():
    # Exact Gaussian averages must satisfy d<V>/dmu = <grad V> and 2 d<V>/dS = <H>;
    # central differences with h = 1e-5 have truncation error ~h^2 * (4th derivative) ~ 1e-9.
    m = polar_lattice(n_cells=3)
    rng = np.random.default_rng(0)
    mu = 0.05 * rng.standard_normal(m.n)
    G = 0.05 * rng.standard_normal((m.n, m.n))
    S = G @ G.T + 0.002 * np.eye(m.n)
    v, grad, hess = m.gaussian_averages(mu, S)
    h = 1e-5
    for i in range(m.n):
        d = np.zeros(m.n)
        d[i] = h
        fd = (m.gaussian_averages(mu + d, S)[0] - m.gaussian_averages(mu - d, S)[0]) / (2 * h)
        assert fd == pytest.approx(grad[i], abs=1e-8)
    for i, j in [(0, 0), (0, 1), (2, 5), (4, 4)]:
        E = np.zeros((m.n, m.n))
        E[i, j] = E[j, i] = h
        fd = (m.gaussian_averages(mu, S + E)[0] - m.gaussian_averages(mu, S - E)[0]) / (2 * h)
        expect = hess[i, j] if i == j else 2 * hess[i, j]
        assert fd == pytest.approx(0.5 * expect, abs=1e-8)
    # point forces are -grad of the point energy
    e0, f0, _ = m.evaluate(mu[None])
    for i in range(m.n):
        d = np.zeros(m.n)
        d[i] = h
        fd = (m.evaluate((mu + d)[None])[0][0] - m.evaluate((mu - d)[None])[0][0]) / (2 * h)
        assert fd == pytest.approx(-f0[0, i], abs=1e-8)


def test_model_rejects_bad_input():
    with pytest.raises(ValueError, match="unbounded"):
        quartic_1d(quartic=-1.0)
    with pytest.raises(ValueError, match="square"):
        PolynomialModel(K=np.zeros((2, 3)), masses=[1.0, 1.0])


def test_cholesky_backward_matches_finite_differences():
    # U(L) = sum(W * L) restricted to the lower triangle, A = L L^T; dU/dA from
    # cholesky_backward must reproduce finite differences of U(chol(A)) (1e-7: FD error).
    rng = np.random.default_rng(1)
    n = 4
    G = rng.standard_normal((n, n))
    A = G @ G.T + n * np.eye(n)
    W = rng.standard_normal((n, n))

    def U(A):
        return float(np.sum(np.tril(W) * np.linalg.cholesky(A)))

    gA = cholesky_backward(np.linalg.cholesky(A), W)
    h = 1e-6
    for i in range(n):
        for j in range(i + 1):
            E = np.zeros((n, n))
            E[i, j] = E[j, i] = h
            fd = (U(A + E) - U(A - E)) / (2 * h)
            assert fd == pytest.approx(gA[i, j] * (1 if i == j else 2), abs=1e-7)


def test_ensemble_curvature_is_exact_gradient_of_sample_mean():
    # The correlated estimator is built so that kappa = 2 dU/dA and force = -dU/dR for the
    # sample mean U of the fixed ensemble: check by finite differences (1e-6 relative).
    m = polar_lattice(n_cells=2)
    s = System.from_model(m)
    av = EnsembleAverager(m, s, n_configs=16, rng=3)
    rng = np.random.default_rng(2)
    R = 0.01 * rng.standard_normal(s.n)
    G = 0.01 * rng.standard_normal((s.n, s.n))
    A = G @ G.T + 1e-3 * np.eye(s.n)
    res = av(R, np.linalg.cholesky(A))

    def U(R, A):
        return av(R, np.linalg.cholesky(A)).energy

    h = 1e-7
    for i in range(s.n):
        d = np.zeros(s.n)
        d[i] = h
        assert (U(R + d, A) - U(R - d, A)) / (2 * h) == pytest.approx(-res.force[i], rel=1e-5, abs=1e-9)
    for i, j in [(0, 0), (1, 0), (3, 2)]:
        hA = 1e-7 * A[i, i]
        E = np.zeros_like(A)
        E[i, j] = E[j, i] = hA
        fd = (U(R, A + E) - U(R, A - E)) / (2 * hA)
        assert fd == pytest.approx(0.5 * res.kappa[i, j] * (1 if i == j else 2), rel=1e-4)


def test_ensemble_averages_unbiased():
    # E[U] = <V> and E[kappa] = <V''> for any ensemble size: the mean over 200 independent
    # 8-configuration ensembles must agree with the exact averages within 4 standard errors.
    m = quartic_1d(k=0.6, quartic=0.5)
    s = System.from_model(m)
    L = np.array([[0.2]])
    R = np.array([0.01])
    exact = ExactAverager(m, s)(R, L)
    vals = np.array([[a.energy, a.force[0], a.kappa[0, 0]]
                     for a in (EnsembleAverager(m, s, 8, rng=seed)(R, L) for seed in range(200))])
    mean, se = vals.mean(0), vals.std(0, ddof=1) / np.sqrt(len(vals))
    ref = np.array([exact.energy, exact.force[0], exact.kappa[0, 0]])
    assert np.all(np.abs(mean - ref) < 4 * se + 1e-12)


def test_soft_hard_lattice_energy_matches_its_formula():
    # the tensors of the light-order lattice reproduce V written out term by term (rounding
    # only), and an unbounded choice of g is refused with the bound in the message
    from atomtwin.engines.tdscha.light_order import SoftHardLattice, soft_hard_lattice
    from atomtwin.toolkit.errors import InputError

    lat = SoftHardLattice(n_cells=3)
    m = lat.model()
    x = np.random.default_rng(3).normal(scale=0.1, size=(5, m.n))
    s, h = x[:, :3], x[:, 3:]
    ref = (0.5 * lat.a * s**2 + lat.b * s**4 + 0.5 * lat.k_hard * h**2 + lat.b_hard * h**4
           + lat.g * s**2 * h**2 + 0.5 * lat.J * (s - np.roll(s, -1, axis=1)) ** 2).sum(1)
    np.testing.assert_allclose(m.evaluate(x)[0], ref, rtol=1e-12, atol=1e-15)
    assert m.born_charges[3:, 0].tolist() == [lat.z_hard] * 3 and not m.born_charges[:3, 0].any()
    with pytest.raises(InputError, match="b_hard above"):
        soft_hard_lattice(g=-200.0, b=15.0, b_hard=100.0)


def test_classical_ensemble_starts_from_the_quantum_distribution():
    # the Wigner sample (antithetic pairs) has exactly the seed as its mean and the SCHA
    # variance within sampling error: relative error of a variance from n = 4000 pairs
    # (8000 samples) is sqrt(2/4000) = 2.2 %, so 10 % is > 4 sigma
    from atomtwin.engines.tdscha.light_order import SoftHardLattice, ground_state, pump_classical

    lat = SoftHardLattice(n_cells=2)
    gs = ground_state(lat)
    ds = pump_classical(lat, 0.0, duration=0.002, dt=0.002, output_every=1, n_traj=8000, seed=0.01, ground=gs)
    assert ds.polarization.values[0] == pytest.approx(0.01, abs=1e-12)
    assert ds.soft_variance.values[0] == pytest.approx(gs.var_soft, rel=0.1)
