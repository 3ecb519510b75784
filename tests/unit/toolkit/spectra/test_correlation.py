"""Correlation machinery: estimators, transforms and correction factors against exact results."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit import units as U
from atomtwin.toolkit.spectra import QUANTUM_CORRECTIONS, autocorrelation, quantum_correction_factor
from atomtwin.toolkit.spectra.correlation import (
    correlation_spectrum,
    difference_correction,
    one_sided_transform,
)


def test_autocorrelation_equals_direct_sum_and_tidynamics(rng):
    x = rng.normal(size=(500, 3))
    c = autocorrelation(x, 50)
    direct = np.array([(x[: 500 - k] * x[k:]).sum(axis=0) / (500 - k) for k in range(50)])
    assert c == pytest.approx(direct, rel=1e-10, abs=1e-12)
    tidynamics = pytest.importorskip("tidynamics")  # peer: same unbiased estimator
    assert c[:, 0] == pytest.approx(tidynamics.acf(x[:, 0])[:50], rel=1e-10, abs=1e-12)


def test_spectrum_of_exponential_is_lorentzian():
    # C(t) = exp(-|t|/tau) has S(nu) = 2 tau / (1 + (2 pi nu tau)^2); with no window and lags to
    # 40 tau the truncation is e^-40; the trapezoid-like sum has relative error (dt/tau)^2/12 ~ 1e-5
    tau, dt = 0.1, 0.001
    t = np.arange(4001) * dt
    nu, s = correlation_spectrum(np.exp(-t / tau), dt, window="none")
    exact = 2 * tau / (1 + (2 * np.pi * nu * tau) ** 2)
    sel = nu < 20
    assert s[sel] == pytest.approx(exact[sel], rel=2e-3, abs=1e-6)
    # two-sided integral equals C(0) (the transform pair's normalisation)
    assert 2 * np.trapezoid(s, nu) == pytest.approx(1.0, rel=1e-3)


def test_one_sided_transform_exact_at_high_frequency():
    # int_0^inf exp(-t/tau) exp(i omega t) dt = tau / (1 - i omega tau); Filon weights keep it
    # accurate even where omega dt ~ 1 (plain trapezoid would be off by (omega dt)^2/12 ~ 8 %)
    tau, dt = 0.2, 0.01
    t = np.arange(3000) * dt
    nu = np.array([0.0, 1.0, 5.0, 15.0])
    got = one_sided_transform(np.exp(-t / tau), dt, nu, window="none")
    w = 2 * np.pi * nu
    exact = tau / (1 - 1j * w * tau)
    # the remaining error is the linear interpolation of a curved exp: (dt/tau)^2/8 ~ 3e-4 of tau
    assert np.abs(got - exact).max() < 1e-3 * tau


def test_difference_correction_restores_derivative_power():
    # x = sin(2 pi nu0 t): the forward difference has amplitude sinc(pi nu0 dt) * 2 pi nu0
    dt, nu0 = 0.01, 20.0
    t = np.arange(2001) * dt
    fd = np.diff(np.sin(2 * np.pi * nu0 * t)) / dt
    ratio = (fd**2).mean() / (0.5 * (2 * np.pi * nu0) ** 2)
    assert ratio * difference_correction(np.array([nu0]), dt)[0] == pytest.approx(1.0, rel=2e-3)


@pytest.mark.parametrize("kind", QUANTUM_CORRECTIONS)
def test_quantum_corrections_obey_detailed_balance_and_classical_limit(kind):
    # F = Q (1 - e^-x) / x; the underlying Q of every scheme satisfies Q(x)/Q(-x) = e^x (detailed
    # balance of the quantum lineshape) except 'none' (Q = 1), and F -> 1 when h nu << k_B T
    temp = 300.0
    nu = np.array([0.5, 5.0, 20.0, 60.0])
    x = U.H_PLANCK * nu / (U.KB * temp)

    def q_of(sign):
        f = quantum_correction_factor(sign * nu, temp, kind)
        xs = sign * x
        return f * xs / -np.expm1(-xs)

    if kind != "none":
        assert q_of(1) / q_of(-1) == pytest.approx(np.exp(x), rel=1e-10)
    assert quantum_correction_factor(np.array([1e-4]), temp, kind)[0] == pytest.approx(1.0, abs=1e-5)
    if kind == "harmonic":
        assert quantum_correction_factor(nu, temp, kind) == pytest.approx(1.0)
    if kind == "standard":
        assert quantum_correction_factor(nu, temp, kind) == pytest.approx(np.tanh(x / 2) / (x / 2))


def test_unknown_quantum_correction_names_the_choices():
    with pytest.raises(ValueError, match="harmonic"):
        quantum_correction_factor(np.array([1.0]), 300.0, "kubo")
