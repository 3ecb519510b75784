"""Harmonic references: SCHA is exact, and TD-SCHA of a driven oscillator is the analytic solution.

Sources: quantum harmonic oscillator, <x²> = hbar/(2 m w) coth(hbar w / 2kT) and
F = hbar w/2 + kT ln(1 - exp(-hbar w/kT)); driven oscillator x(t) = int_0^t sin(w(t-s))/w F(s)/m ds.
"""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.engines.tdscha import (
    ExactAverager,
    GaussianPulse,
    System,
    TDSCHAState,
    harmonic_1d,
    polar_lattice,
    run_tdscha,
    scha,
)
from atomtwin.toolkit.units import AMU_A2_PS2_TO_EV, HBAR, KB
from scipy.integrate import quad

K, MASS = 0.6, 2.0
W = np.sqrt(K / (MASS * AMU_A2_PS2_TO_EV))


@pytest.mark.parametrize("T", [0.0, 10.0, 300.0, 3000.0])
def test_harmonic_scha_exact(T):
    m = harmonic_1d(k=K, mass=MASS)
    s = System.from_model(m)
    res = scha(s, T, model=m)
    x2 = HBAR / (2 * MASS * AMU_A2_PS2_TO_EV * W) * (1 / np.tanh(HBAR * W / (2 * KB * T)) if T else 1.0)
    F = HBAR * W / 2 + (KB * T * np.log1p(-np.exp(-HBAR * W / (KB * T))) if T else 0.0)
    # closed forms: only rounding separates them (1e-12 relative)
    assert res.converged
    assert res.free_energy == pytest.approx(F, rel=1e-12, abs=1e-15)
    assert float(res.to_dataset().position_covariance[0, 0]) == pytest.approx(x2, rel=1e-12)


def test_harmonic_lattice_scha_exact():
    # a coupled harmonic lattice: F = sum over normal modes (exact to rounding)
    m = polar_lattice(n_cells=3, quartic=0.0, cubic=0.0)
    s = System.from_model(m)
    T = 200.0
    w = np.sqrt(np.linalg.eigvalsh(m.K / np.sqrt(np.outer(m.masses, m.masses)) / AMU_A2_PS2_TO_EV))
    F = np.sum(HBAR * w / 2 + KB * T * np.log1p(-np.exp(-HBAR * w / (KB * T))))
    assert scha(s, T, model=m).free_energy == pytest.approx(F, rel=1e-10)


def test_driven_harmonic_tdscha_is_analytic():
    m = harmonic_1d(k=K, mass=MASS, born_charge=1.5)
    s = System.from_model(m)
    pulse = GaussianPulse(amplitude=0.2, frequency=W / (2 * np.pi) * 1.1, t0=0.15, width=0.05)
    T = 300.0
    st = scha(s, T, model=m).state()
    dt = 2 * np.pi / W / 400
    ds = run_tdscha(s, st, ExactAverager(m, s), dt, round(0.4 / dt), pulse=pulse, output_every=20)
    mm = MASS * AMU_A2_PS2_TO_EV

    def x_exact(t):
        f = lambda u: np.sin(W * (t - u)) / W * 1.5 * pulse(u)[0] / mm  # noqa: E731
        return quad(f, 0.0, t, limit=400, points=[0.15])[0]

    xe = np.array([x_exact(t) for t in ds.time.values])
    # Verlet phase error w (w dt)^2 t / 24 ~ 1e-4 rad over 0.4 ps: 1e-3 of the amplitude
    assert np.abs(xe).max() > 0.05  # a real response
    np.testing.assert_allclose(ds.centroid.values[:, 0], xe, atol=1e-3 * np.abs(xe).max())
    # a harmonic drive does not touch the fluctuations: A stays thermal up to the O((w dt)^2)
    # breathing of the Verlet shadow orbit ((w dt)^2/4 ~ 6e-5 relative)
    np.testing.assert_allclose(ds.A.values[:, 0, 0], ds.A.values[0, 0, 0], rtol=1e-4)


def test_squeezed_state_breathes_analytically():
    # A squeezed pure state, A0 != hbar/(2w): A(t) = A0 cos^2 wt + B0/w^2 sin^2 wt (exact
    # linear flow); Verlet error (w dt)^2 ~ 2.5e-4 relative
    m = harmonic_1d(k=K, mass=MASS)
    s = System.from_model(m)
    a0 = HBAR / (2 * W) * 0.3
    st = TDSCHAState.from_covariances([0.0], None, [[a0]], [[HBAR**2 / (4 * a0)]])
    dt = 2 * np.pi / W / 400
    ds = run_tdscha(s, st, ExactAverager(m, s), dt, 600, modes=None)
    t = ds.time.values
    ref = a0 * np.cos(W * t) ** 2 + HBAR**2 / (4 * a0) / W**2 * np.sin(W * t) ** 2
    np.testing.assert_allclose(ds.A.values[:, 0, 0], ref, rtol=5e-4)
