"""Static SCHA mechanics, the 1D grid solver and the pulses."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.engines.tdscha import (
    GaussianPulse,
    Grid1D,
    SingleCyclePulse,
    System,
    TDSCHAError,
    UserPulse,
    external_force,
    harmonic_1d,
    polar_lattice,
    quartic_1d,
    scha,
)
from atomtwin.toolkit.units import AMU_A2_PS2_TO_EV, HBAR


def test_ensemble_scha_matches_exact_within_reported_error():
    # The stochastic free energy and its error bar: the ensemble SCHA (reweighted, 400
    # configurations) must agree with the exact-average SCHA within 4 reported sigmas
    # (plus 1e-4 eV for the residual of the stochastic minimisation, << k_B T).
    m = quartic_1d(k=0.6, quartic=0.5)
    s = System.from_model(m)
    ex = scha(s, 300.0, model=m)
    st = scha(s, 300.0, provider=m, n_configs=400, rng=5, tol=1e-3, max_iter=60)
    assert st.free_energy_error > 0
    assert abs(st.free_energy - ex.free_energy) < 4 * st.free_energy_error + 1e-4
    assert st.frequencies[0] == pytest.approx(ex.frequencies[0], rel=0.05)


def test_reweighting_redraws_when_ess_low():
    # Starting far from the solution (phi0 ~17x too stiff) forces the ensemble to be redrawn:
    # more evaluations than one ensemble, and every accepted iterate kept ESS >= threshold.
    m = quartic_1d(k=0.6, quartic=0.5)
    s = System.from_model(m)
    res = scha(s, 0.0, provider=m, n_configs=100, rng=0, phi0=np.array([[1e5]]), tol=1e-3, max_iter=80,
               ess_threshold=0.9)
    assert res.n_evaluations >= 200
    assert min(res.history["ess"]) >= 0.9 * 100 - 1e-9
    assert res.converged


def test_ess_collapse_is_reported():
    # 4 configurations for 20 coupled anharmonic modes: the Kish ESS of a fresh ensemble drops
    # below half even for a step damped 8 times, and the error says how to fix it; 64
    # configurations (same seed, same start) converge.
    from atomtwin.engines.tdscha.scha import _harmonic_phi

    m = polar_lattice(n_cells=10)
    s = System.from_model(m)
    phi0 = _harmonic_phi(s, np.zeros(s.n), m, None)
    with pytest.raises(TDSCHAError, match="effective sample size collapsed.*n_configs"):
        scha(s, 0.0, provider=m, n_configs=4, rng=0, tol=1e-2, max_iter=50, phi0=phi0)
    assert scha(s, 0.0, provider=m, n_configs=64, rng=0, tol=1e-2, max_iter=50, phi0=phi0).converged


def test_scha_result_dataset_units():
    m = harmonic_1d()
    s = System.from_model(m)
    ds = scha(s, 100.0, model=m).to_dataset()
    assert ds.frequency.attrs["units"] == "THz" and ds.position_covariance.attrs["units"] == "Å^2"
    # for a harmonic model, force constants are the model's K (exact)
    assert float(ds.force_constants[0, 0]) == pytest.approx(0.6, rel=1e-12)


def test_grid_harmonic_spectrum():
    # Fourier grid with 128 points over +-2 Å: spectral accuracy, eigenvalues hbar w (n + 1/2)
    # for the first 5 levels to 1e-9 relative.
    k, mass = 0.6, 1.0
    g = Grid1D(lambda x: 0.5 * k * x**2, mass, -2.0, 2.0, 128)
    w = np.sqrt(k / (mass * AMU_A2_PS2_TO_EV))
    E, _ = g.eigen()
    np.testing.assert_allclose(E[:5], HBAR * w * (np.arange(5) + 0.5), rtol=1e-9)


def test_split_operator_coherent_state():
    # A displaced ground-state packet in a harmonic well follows x(t) = x0 cos(w t) exactly
    # (Ehrenfest), and keeps its width; split-operator phase error ~ w (w dt)^2 t / 24 ~ 1e-4.
    k, mass, x0 = 0.6, 1.0, 0.3
    g = Grid1D(lambda x: 0.5 * k * x**2, mass, -2.5, 2.5, 256)
    w = np.sqrt(k / (mass * AMU_A2_PS2_TO_EV))
    var = HBAR / (2 * mass * AMU_A2_PS2_TO_EV * w)
    dt = 2 * np.pi / w / 200
    ds = g.propagate(g.gaussian_wavepacket(x0, var), None, dt, 200)
    np.testing.assert_allclose(ds.x_mean.values, x0 * np.cos(w * ds.time.values), atol=1e-3 * x0)
    np.testing.assert_allclose(ds.x_var.values, var, rtol=1e-3)
    # <H> is conserved up to the Strang-splitting error O((w dt)^2) ~ 1e-3 relative at most
    assert np.ptp(ds.energy.values) < 1e-3 * ds.energy.values[0]


def test_pulses():
    p = SingleCyclePulse(amplitude=0.2, t0=1.0, width=0.1, polarization=(0, 0, 2))
    t = np.linspace(0, 2, 4001)
    ez = np.array([p(ti)[2] for ti in t])
    # peak |E| = amplitude at t0 -+ width; zero net area (a radiated single cycle carries no DC)
    assert np.abs(ez).max() == pytest.approx(0.2, rel=1e-5)
    assert abs(np.trapezoid(ez, t)) < 1e-10
    g = GaussianPulse(amplitude=0.1, frequency=2.0, t0=0.5, width=0.1)
    assert g(0.5)[0] == pytest.approx(0.1) and g(0.5)[1] == 0.0
    u = UserPulse(lambda t: 2 * t)
    np.testing.assert_allclose(u(0.5), [1.0, 0, 0])


def test_screening_and_born_coupling():
    # Force = Z E / eps_inf in eV/Å, mass-scaled by 1/sqrt(m): check the numbers directly.
    m = harmonic_1d(born_charge=2.0, mass=4.0)
    s = System.from_model(m)
    f = external_force(s, lambda t: np.array([0.5, 1.0, 0.0]), screening=5.0)
    assert f(0.0)[0] == pytest.approx(2.0 * 0.5 / 5.0 / np.sqrt(4.0 * AMU_A2_PS2_TO_EV))
    with pytest.raises(ValueError):
        external_force(s, lambda t: np.zeros(3), screening=-1.0)
