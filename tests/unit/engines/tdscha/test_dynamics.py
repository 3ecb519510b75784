"""TD-SCHA integrator: invariants, energy balance under a field, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.engines.tdscha import (
    CallableProvider,
    EnsembleAverager,
    ExactAverager,
    GaussianPulse,
    System,
    TDSCHAError,
    TDSCHAState,
    polar_lattice,
    quartic_1d,
    run_tdscha,
    scha,
)
from atomtwin.toolkit.units import HBAR


def _quartic():
    m = quartic_1d(k=0.6, quartic=0.5)
    return m, System.from_model(m)


PULSE = GaussianPulse(amplitude=0.3, frequency=12.0, t0=0.06, width=0.02)


def test_invariant_ab_minus_c2_conserved_1d():
    # Each Verlet covariance update is a symplectic linear map on (X, Y), so
    # det Sigma = A B - C^2 is preserved to rounding (1e-12 relative) even with a strong pulse.
    m, s = _quartic()
    st = scha(s, 200.0, model=m).state()
    ds = run_tdscha(s, st, ExactAverager(m, s), 5e-4, 300, pulse=PULSE, modes=None)
    inv = (ds.A * ds.B - ds.C**2).values[:, 0, 0]
    assert ds.A.values.std() > 1e-3 * ds.A.values.mean()  # the covariance really moves
    np.testing.assert_allclose(inv, inv[0], rtol=1e-12)
    assert inv[0] >= HBAR**2 / 4  # a thermal state is above the pure-state bound


def test_symplectic_invariants_conserved_multid():
    # In n dimensions the symplectic eigenvalues of Sigma (|eig(i J Sigma)|) are the
    # invariants; they are kept to rounding by the symplectic covariance update.
    m = polar_lattice(n_cells=2)
    s = System.from_model(m)
    st = scha(s, 100.0, model=m).state()
    ds = run_tdscha(s, st, EnsembleAverager(m, s, 32, rng=0), 2e-4, 200, pulse=GaussianPulse(
        amplitude=0.05, frequency=3.0, t0=0.02, width=0.01), modes=None)
    n = s.n
    J = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])

    def symp(i):
        sig = np.block([[ds.A.values[i], ds.C.values[i]], [ds.C.values[i].T, ds.B.values[i]]])
        return np.sort(np.abs(np.linalg.eigvals(1j * J @ sig)))

    np.testing.assert_allclose(symp(-1), symp(0), rtol=1e-9)


def test_energy_balance_with_field_is_second_order():
    # E(t) - E(0) = W(t) = int F.P dt holds for the continuous dynamics; the Verlet residual
    # is O(dt^2): halving dt must divide it by ~4 (between 3 and 5).
    m, s = _quartic()
    st = scha(s, 0.0, model=m).state()
    res = []
    for dt in (1e-3, 5e-4):
        ds = run_tdscha(s, st, ExactAverager(m, s), dt, round(0.12 / dt), pulse=PULSE, modes=None)
        assert ds.work.values[-1] > 0.01  # the pulse pumps energy in
        res.append(np.abs(ds.energy.values - ds.work.values - ds.energy.values[0]).max())
    assert 3.0 < res[0] / res[1] < 5.0


def test_bad_covariances_rejected():
    with pytest.raises(ValueError, match="not positive definite"):
        TDSCHAState.from_covariances([0.0], None, [[-1e-6]], [[1.0]])
    with pytest.raises(ValueError, match="uncertainty"):
        TDSCHAState.from_covariances([0.0], None, [[1e-6]], [[1e-6]])


def test_timestep_too_large_is_reported():
    m, s = _quartic()
    st = scha(s, 0.0, model=m).state()
    with pytest.raises(TDSCHAError, match="too large for the fastest mode.*Fix: use dt <="):
        run_tdscha(s, st, ExactAverager(m, s), 0.05, 10)


def test_calculator_failure_keeps_trajectory(tmp_path):
    # A provider failing at step 7 (as a calculator failing on a configuration would): the
    # error names the step, and the 7 frames before (t = 0..6 dt) are returned and written.
    m, s = _quartic()
    st = scha(s, 0.0, model=m).state()
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] == 8:  # call 1 is the initial state, call k+1 is step k
            raise RuntimeError("SCF did not converge")
        return m.evaluate(x)

    out = tmp_path / "run.nc"
    with pytest.raises(TDSCHAError, match="step 7") as info:
        run_tdscha(s, st, EnsembleAverager(CallableProvider(flaky), s, 8, rng=0), 5e-4, 20, output=out)
    part = info.value.partial
    assert info.value.step == 7 and part.sizes["frame"] == 7
    import xarray as xr

    with xr.open_dataset(out, engine="h5netcdf") as saved:
        assert saved.sizes["frame"] == 7 and "stopped at step 7" in saved.attrs["status"]


def test_nan_forces_reported():
    m, s = _quartic()
    st = scha(s, 0.0, model=m).state()
    bad = CallableProvider(lambda x: (np.full(len(x), np.nan), np.zeros_like(x)))
    with pytest.raises(TDSCHAError, match="NaN"):
        run_tdscha(s, st, EnsembleAverager(bad, s, 4, rng=0), 5e-4, 3)


def test_mode_occupation_thermal():
    # A thermal SCHA state of the harmonic part has Bose occupations per reference mode:
    # with exact averages of a harmonic model n = 1/(exp(hbar w/kT) - 1) to rounding.
    m = polar_lattice(n_cells=2, quartic=0.0, cubic=0.0)
    s = System.from_model(m)
    T = 300.0
    ds = run_tdscha(s, scha(s, T, model=m).state(), ExactAverager(m, s), 2e-4, 2)
    w = 2 * np.pi * ds.mode_frequency.values
    from atomtwin.toolkit.units import KB

    np.testing.assert_allclose(ds.mode_occupation.values[0], 1 / np.expm1(HBAR * w / (KB * T)), rtol=1e-9)
