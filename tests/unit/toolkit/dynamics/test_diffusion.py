"""Diffusion coefficients: the exact MSD covariance, calibration of the error bars over
many seeds, blocks, Arrhenius, conductivity and Haven ratio."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit import units as U
from atomtwin.toolkit.dynamics import (
    arrhenius,
    conductivity,
    diffusion,
    fit_diffusion,
    msd,
    msd_covariance,
)
from atomtwin.toolkit.schema import make_dataset


def test_covariance_matches_monte_carlo():
    # 40000 independent 1-D walks with vibrational noise: the sampling error of a (co)variance
    # is ~sqrt(2/40000) ~ 0.7% (Gaussian), a little more for the fourth moments here: 5% is
    # >5 standard errors, while a wrong overlap count is off by 20-100%.
    rng = np.random.default_rng(1)
    F, lags, sig, s = 60, [1, 3, 7, 15, 30], 1.0, 0.7
    x = np.cumsum(rng.normal(0, sig, (F, 40000)), axis=0) + rng.normal(0, s, (F, 40000))
    M = np.array([np.mean((x[m:] - x[:F - m]) ** 2, axis=0) for m in lags])
    emp = np.cov(M)
    th = msd_covariance(F, lags, sig**2, s**2, 1, 1)
    np.testing.assert_allclose(emp / th, 1.0, atol=0.05)


def test_error_bars_cover_truth_at_nominal_rate():
    # calibration over 300 seeds: the fraction of |D - D_true| < k sigma must be the normal
    # 68.3% (k=1) and 95.4% (k=2).  With 300 trials the binomial standard deviation of the
    # fraction is 0.027 (k=1) and 0.012 (k=2): we allow 3 of them.
    D, dt, z = 0.5, 0.1, []
    for seed in range(300):
        r = np.random.default_rng(seed)
        pos = np.cumsum(r.normal(0, np.sqrt(2 * D * dt), (100, 8, 3)), axis=0)
        ds = make_dataset(pos, ["Li"] * 8, time=np.arange(100) * dt)
        f = fit_diffusion(msd(ds, "Li", remove_drift=False, unwrap=False))
        z.append((float(f.D) - D) / float(f.D_err))
    z = np.abs(np.array(z))
    assert abs(np.mean(z < 1) - 0.683) < 3 * 0.027
    assert abs(np.mean(z < 2) - 0.954) < 3 * 0.012


def test_ols_error_would_fail_calibration():
    # the reason for GLS: a naive OLS standard error on the same fits is several times too
    # small (the coverage check above would fail for it)
    D, dt, ratio = 0.5, 0.1, []
    for seed in range(20):
        r = np.random.default_rng(seed)
        pos = np.cumsum(r.normal(0, np.sqrt(2 * D * dt), (100, 8, 3)), axis=0)
        m = msd(make_dataset(pos, ["Li"] * 8, time=np.arange(100) * dt), "Li", remove_drift=False)
        f = fit_diffusion(m)
        sel = (m.lag >= f.fit_start) & (m.lag <= f.fit_stop)
        _, cov = np.polyfit(m.lag[sel], m[sel], 1, cov=True)
        ratio.append(float(f.D_err) / (np.sqrt(cov[0, 0]) / 6))
    assert np.median(ratio) > 2.0


def test_blocks_and_gls_agree_and_window_rule():
    rng = np.random.default_rng(3)
    D, dt = 0.2, 0.05
    # a vibrational offset (s = 0.3 Å) makes the MSD linear with an intercept: the rule
    # still starts at the first lag (beta close to 1 there is not required for a random
    # walk plus noise, which the GLS model includes)
    pos = np.cumsum(rng.normal(0, np.sqrt(2 * D * dt), (400, 30, 3)), axis=0) + rng.normal(0, 0.3, (400, 30, 3))
    ds = make_dataset(pos, ["Li"] * 30, time=np.arange(400) * dt)
    g = diffusion(ds, "Li")
    b = diffusion(ds, "Li", method="blocks", n_blocks=5)
    # both unbiased estimators of D = 0.2: within 4 combined standard errors of the truth
    for f in (g, b):
        assert abs(float(f.D) - D) < 4 * float(f.D_err)
    assert abs(float(g.intercept) - 6 * 0.3**2) < 4 * float(g.intercept_err)
    assert g.D.attrs["units"] == "Å^2/ps"
    with pytest.raises(ValueError, match="too few frames"):
        fit_diffusion(msd(ds.isel(frame=slice(0, 8)), "Li"))


def test_arrhenius_recovers_activation_energy_with_calibrated_error():
    # exact data give Ea and the prefactor to round-off; noisy data (known errors) must
    # cover the truth at ~68% over many seeds (binomial sd 0.033 at 200 seeds; 3 sd allowed)
    T = np.array([300.0, 400, 500, 600, 800])
    Ea, A = 0.35, 12.0
    v = A * np.exp(-Ea / (U.KB * T))
    f = arrhenius(T, v, 0.05 * v)
    assert abs(float(f.Ea) - Ea) < 1e-10 and abs(float(f.prefactor) - A) < 1e-8
    rng = np.random.default_rng(5)
    hits = []
    for _ in range(200):
        err = 0.1 * v
        g = arrhenius(T, v + rng.normal(0, err), err)
        hits.append(abs(float(g.Ea) - Ea) < float(g.Ea_err))
    assert abs(np.mean(hits) - 0.683) < 3 * 0.033
    with pytest.raises(ValueError, match="distinct temperatures"):
        arrhenius([300, 300], [1, 2], [0.1, 0.1])


def test_conductivity_uncorrelated_ions_haven_ratio_one():
    # independent walkers: the collective charge MSD equals sum q^2 MSD_i in expectation,
    # so sigma = sigma_NE and H = 1 within the propagated error (4 sigma allowed)
    rng = np.random.default_rng(11)
    nf, na, dt, D = 300, 40, 0.1, 0.3
    pos = np.cumsum(rng.normal(0, np.sqrt(2 * D * dt), (nf, na, 3)), axis=0) + 50.0
    ds = make_dataset(pos, ["Li"] * 20 + ["Cl"] * 20, cell=np.eye(3) * 100.0, time=np.arange(nf) * dt)
    c = conductivity(ds, {"Li": 1, "Cl": -1}, 500.0, remove_drift=False, unwrap=False)
    assert abs(float(c.haven_ratio) - 1.0) < 4 * float(c.haven_ratio_err)
    # Nernst–Einstein by hand from the fitted D's
    V = 100.0**3
    ne = (20 * float(c.D[0]) + 20 * float(c.D[1])) / (V * U.KB * 500.0) * U.E2_EV_A_PS_TO_S_CM
    np.testing.assert_allclose(float(c.sigma_ne), ne, rtol=1e-12)
    assert c.sigma.attrs["units"] == "S/cm"
