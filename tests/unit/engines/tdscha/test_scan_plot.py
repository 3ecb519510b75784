"""SCHA temperature scans and the TD-SCHA figure functions (atomtwin.toolkit.plot.tdscha)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from atomtwin.engines.tdscha import (  # noqa: E402
    GaussianPulse,
    System,
    grid_for_model,
    harmonic_1d,
    quartic_1d,
    run_classical,
    run_tdscha,
    scha,
)
from atomtwin.engines.tdscha.averages import ExactAverager  # noqa: E402
from atomtwin.engines.tdscha.scan import scha_temperature_scan  # noqa: E402
from atomtwin.toolkit.plot import tdscha as P  # noqa: E402

TEMPS = [0.0, 100.0, 400.0]


def test_harmonic_scan_is_exact_and_anharmonic_scan_bounds_the_exact_free_energy():
    m = harmonic_1d(k=0.6, mass=2.0)
    grid = grid_for_model(m, -1.5, 1.5, 128)
    scan = scha_temperature_scan(System.from_model(m), TEMPS, model=m, exact_1d=grid, tol=1e-12)
    # harmonic: SCHA = harmonic crystal = exact.  The grid: spectral error < 1e-10 eV at 128
    # points; the box edge (±1.5 Å) lies at 6 standard deviations at 400 K, which truncates
    # <x²> by ~1e-7 relative: 1e-8 eV and rtol 1e-6 are the argued tolerances
    np.testing.assert_allclose(scan["free_energy"], scan["harmonic_free_energy"], atol=1e-10)
    np.testing.assert_allclose(scan["free_energy"], scan["exact_free_energy"], atol=1e-8)
    np.testing.assert_allclose(scan["position_variance"][:, 0], scan["exact_x2"], rtol=1e-6)
    np.testing.assert_allclose(scan["physical_frequency"], scan["frequency"], rtol=1e-10)
    q = quartic_1d(k=0.2, quartic=2.0, mass=2.0)
    sq = scha_temperature_scan(System.from_model(q), TEMPS, model=q, exact_1d=grid_for_model(q, -1.5, 1.5, 128),
                               tol=1e-12)
    # Gibbs-Bogoliubov: F_SCHA >= F_exact; the quartic stiffens the mode, so the SCHA phonon
    # hardens with T and the harmonic crystal (k only) underestimates the free energy
    assert np.all(sq["free_energy"].values >= sq["exact_free_energy"].values - 1e-10)
    assert np.all(np.diff(sq["frequency"].values[:, 0]) > 0)
    assert np.all(sq["free_energy"].values > sq["harmonic_free_energy"].values)
    assert sq.attrs["averages"] == "exact" and bool(sq["converged"].all())


@pytest.fixture(scope="module")
def runs():
    m = quartic_1d(k=0.6, quartic=0.5, mass=2.0)
    s = System.from_model(m)
    pulse = GaussianPulse(amplitude=0.3, frequency=2.0, t0=0.3, width=0.1)
    st = scha(s, 0.0, model=m).state()
    td = run_tdscha(s, st, ExactAverager(m, s), 2e-3, 300, pulse=pulse, output_every=5)
    cl = run_classical(s, m, 2e-3, 300, pulse=pulse, output_every=5)
    grid = grid_for_model(m, -2.0, 2.0, 128)
    ex = grid.propagate(grid.ground_state()[1], None, 2e-3, 300, output_every=5,
                        force=lambda t: float(m.born_charges[0] @ pulse(t)))
    return td, cl, ex


def test_centroid_variance_figure_draws_the_three_dynamics(runs):
    td, cl, ex = runs
    fig, axes = P.plot_centroid_and_variance(td, exact=ex, classical=cl)
    labels = [ln.get_label() for ln in axes[0].lines]
    assert labels == ["exact quantum", "TD-SCHA", "classical"]
    np.testing.assert_array_equal(axes[0].lines[1].get_ydata(), td["centroid"].values[:, 0])
    np.testing.assert_array_equal(axes[1].lines[0].get_ydata(), ex["x_var"].values)
    # physics sanity of what is drawn: the pulse moved the centroid, and the TD-SCHA centroid
    # follows the exact one far better than it deviates from rest (short, weakly anharmonic)
    amp = np.abs(ex["x_mean"].values).max()
    assert amp > 0.02
    assert np.abs(td["centroid"].values[:, 0] - ex["x_mean"].values).max() < 0.1 * amp
    with pytest.raises(ValueError, match="dof"):
        P.plot_centroid_and_variance(td, dof="nope")
    matplotlib.pyplot.close("all")


def test_mode_energy_and_pulse_figures(runs):
    td, _, _ = runs
    fig, ax = P.plot_mode_energies(td)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), td["mode_energy"].values[:, 0])
    fig, ax = P.plot_mode_energies(td, occupation=True)
    # at T = 0 the SCHA ground state has zero occupation before the pulse (to the SCHA tolerance)
    assert abs(ax.lines[0].get_ydata()[0]) < 1e-6
    fig, ax = P.plot_pulse(td)
    # the field is drawn in MV/cm: 1 V/Å = 100 MV/cm
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 100.0 * td["field"].values[:, 0])
    with pytest.raises(ValueError, match="mode_occupation"):
        P.plot_mode_energies(td.drop_vars("mode_occupation"), occupation=True)
    matplotlib.pyplot.close("all")


def test_scha_temperature_figure():
    m = quartic_1d(k=0.2, quartic=2.0, mass=2.0)
    scan = scha_temperature_scan(System.from_model(m), TEMPS, model=m, tol=1e-10)
    fig, axes = P.plot_scha_temperature(scan)
    by_label = {ln.get_label(): ln for ln in axes[0].lines}
    np.testing.assert_allclose(by_label["SCHA"].get_ydata(), scan["free_energy"].values)
    np.testing.assert_allclose(by_label["harmonic"].get_ydata(), scan["harmonic_free_energy"].values)
    assert {ln.get_label() for ln in axes[1].lines} >= {"SCHA auxiliary", "physical (Hessian)"}
    matplotlib.pyplot.close("all")


def test_classical_mode_energies_sum_to_the_energy_of_a_harmonic_lattice():
    # V = x.K.x/2 exactly, and the modes diagonalise the mass-scaled K: the sum of the mode
    # energies p²/2 + w² q²/2 is the classical energy itself, to rounding (1e-12 eV)
    from atomtwin.engines.tdscha import Modes, polar_lattice

    m = polar_lattice(n_cells=3, quartic=0.0, cubic=0.0, k_polar=0.4)
    s = System.from_model(m)
    kappa = m.K / np.outer(s.sqrt_m, s.sqrt_m)
    cl = run_classical(s, m, 2e-3, 200, pulse=GaussianPulse(0.01, 1.5, 0.2, 0.1), modes=Modes.from_kappa(kappa, np.zeros(s.n)),
                       output_every=20)
    np.testing.assert_allclose(cl["mode_energy"].sum("mode"), cl["energy"], atol=1e-12)
    assert cl["energy"].values[-1] > 1e-4  # the pulse did pump the lattice
