"""SCHA that converges or says why not: minimiser, starts, multi-start, named failure, CLI, config."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atomtwin.engines.tdscha import ReducedUnits, SCHANotConverged, System, scha
from atomtwin.engines.tdscha.models import PolynomialModel
from atomtwin.engines.tdscha.scha_ensemble import SCHAEnsemble
from atomtwin.toolkit.cli import main
from atomtwin.toolkit.units import KB


def _dw(barrier, x_min, mass):
    k, q = -4 * barrier / x_min**2, barrier / x_min**4
    return PolynomialModel(K=[[k]], T4=[[[[24 * q]]]], v0=barrier, masses=[mass])


# 10 meV barrier, mass 10: at 0 K the damped fixed point (mixing 0.5) oscillated for 20000
# iterations and stopped 6 % above the optimum; 200 meV: it stayed on the saddle
SHALLOW, DEEP = _dw(0.01, 0.3, 10.0), _dw(0.2, 0.4, 10.0)


@pytest.mark.parametrize("model", [SHALLOW, DEEP], ids=["shallow", "deep"])
@pytest.mark.parametrize("f0", [0.05, 50.0])
def test_any_start_reaches_the_same_minimum(model, f0):
    # starting frequencies 30x too soft or too stiff, symmetric centroid: the descent with
    # line search converges, and to the same free energy as the automatic start
    s = System.from_model(model)
    ref = scha(s, 0.0, model=model, scan_centroid=False)
    res = scha(s, 0.0, model=model, frequencies0=f0, scan_centroid=False)
    assert res.converged and len(res.history["free_energy"]) < 100
    assert res.free_energy == pytest.approx(ref.free_energy, abs=1e-10)
    # a descent method: F never increases along the way (round-off allowance only)
    assert np.all(np.diff(res.history["free_energy"]) <= 1e-12)


def test_symmetric_start_of_a_deep_well_finds_the_broken_minimum():
    s = System.from_model(DEEP)
    res = scha(s, 0.0, model=DEEP)  # default start: the symmetric point, V''(0) < 0
    sym = scha(s, 0.0, model=DEEP, scan_centroid=False)
    assert abs(s.to_cartesian(res.R)[0]) > 0.3 and abs(s.to_cartesian(sym.R)[0]) < 1e-9
    assert res.free_energy < sym.free_energy - 0.05
    # every minimum is listed, lowest first; the symmetric one among them
    F = [m["free_energy"] for m in res.minima]
    assert F == sorted(F) and F[0] == res.free_energy
    assert any(abs(m["centroid"][0]) < 1e-9 for m in res.minima)


def test_near_degenerate_minima_are_all_reported():
    # shallow well at 0 K: symmetric minimum 0.23 meV below the two broken ones
    res = scha(System.from_model(SHALLOW), 0.0, model=SHALLOW)
    assert len(res.minima) == 3
    assert abs(res.R[0]) < 1e-12
    assert res.minima[1]["free_energy"] - res.minima[0]["free_energy"] == pytest.approx(2.3e-4, abs=2e-5)


def test_not_converged_is_a_named_error_with_the_fix():
    s = System.from_model(DEEP)
    kw = {"R0": s.to_mass_scaled(np.array([0.3])), "scan_centroid": False, "max_iter": 2}
    with pytest.raises(SCHANotConverged, match="max_iter=2 reached.*Fix: raise max_iter") as err:
        scha(s, 300.0, model=DEEP, **kw)
    assert err.value.result is not None and not err.value.result.converged
    assert not scha(s, 300.0, model=DEEP, raise_on_failure=False, **kw).converged
    # tol = 0: a fixed number of iterations, no convergence check, no error
    assert len(scha(s, 300.0, model=DEEP, tol=0.0, **kw).history["free_energy"]) == 2


@pytest.mark.parametrize("model", [PolynomialModel(K=[[0.0]], T4=[[[[24.0]]]], masses=[1.0]), DEEP],
                         ids=["zero_curvature", "negative_curvature"])
def test_ensemble_starts_on_soft_and_unstable_modes(model):
    # the clipped harmonic start (0.1 THz) made the ESS collapse at iteration 0; the one-mode
    # SCHA start is positive definite and close, so the ensemble run converges, within 4
    # reported sigma (for n_configs=400 noise) of the exact-average SCHA
    s = System.from_model(model)
    ex = scha(s, 100.0, model=model)
    st = scha(s, 100.0, provider=model, n_configs=400, rng=1)
    assert st.converged
    assert abs(st.free_energy - ex.free_energy) < 4 * st.free_energy_error
    assert abs(st.frequencies[0] - ex.frequencies[0]) < 4 * st.frequency_error[0]


def test_pair_error_treats_mirrored_pairs_as_one_sample():
    # an odd integrand (V = x) cancels exactly within each antithetic pair: its mean is exact
    # and the pair error is zero, where a member-independent error would report ~sd/sqrt(S)
    m = PolynomialModel(K=[[0.0]], g=[1.0], masses=[1.0])
    s = System.from_model(m)
    ens = SCHAEnsemble(s, m, np.zeros(1), np.array([[0.05]]), 100, np.random.default_rng(0))
    w = np.full(100, 0.01)
    assert ens.pair_error(w, ens.e) < 1e-14 < ens.e.std() / 10
    # for uniform weights it is std(pair means)/sqrt(pairs)
    y = np.random.default_rng(1).normal(size=100)
    pm = 0.5 * (y[:50] + y[50:])
    assert ens.pair_error(w, y) == pytest.approx(pm.std(ddof=1) / np.sqrt(50), rel=1e-12)


def test_fixed_centroid_pattern_stays_fixed():
    from atomtwin.engines.tdscha.lattice_models import soft_mode_chain

    m = soft_mode_chain(n_cells=2, k_soft=-1.0)
    s = System.from_model(m)
    res = scha(s, 10.0, model=m, fix_centroid=np.eye(4)[:2])
    x = s.to_cartesian(res.R)
    assert np.all(x[:2] == 0.0) and np.all(x[2:] < -1e-3)  # soft fixed, hard relaxed by u²h


def test_reduced_units_round_trip():
    u = ReducedUnits.from_hbar(0.5, energy=0.1, length=0.5)
    assert u.hbar == pytest.approx(0.5, rel=1e-12)
    assert u.temperature(1.0) == pytest.approx(0.1 / KB, rel=1e-12)
    m = u.polynomial(k=-4.0, quartic=1.0, v0=1.0)  # (y² - 1)²: minima at x = ±l0, barrier E0
    assert m.evaluate(np.array([[0.5]]))[0][0] == pytest.approx(0.0, abs=1e-15)
    assert m.evaluate(np.array([[0.0]]))[0][0] == pytest.approx(0.1, rel=1e-12)
    r = u.reduced(scha(System.from_model(m), u.temperature(0.05), model=m))
    assert r["temperature"] == pytest.approx(0.05) and abs(r["centroid"][0]) < 1.0


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def test_cli_double_well_converges_to_the_lowest_minimum(tmp_path, capsys):
    cfg = _write(tmp_path, "model: {kind: double_well, barrier: 0.2, x_min: 0.4, mass: 10.0}\n"
                           "temperature: 0\n")
    assert main(["scha", cfg, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and abs(abs(out["centroid_A"][0]) - 0.387) < 1e-3
    assert out["free_energy_eV"] == pytest.approx(min(m["free_energy_eV"] for m in out["minima"]))
    # the same from a user-given start, and with the scan asked for explicitly
    cfg2 = _write(tmp_path, "model: {kind: double_well, barrier: 0.2, x_min: 0.4, mass: 10.0}\n"
                            "scha: {start_centroid: [0.35], start_frequencies: 12.0, scan_centroid: false}\n")
    assert main(["scha", cfg2, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["free_energy_eV"] == pytest.approx(out["free_energy_eV"], abs=1e-9)
    assert main(["scha", cfg2, "--scan-centroid"]) == 0
    err = capsys.readouterr().err
    assert "minima found" in err and "converged" in err


def test_cli_not_converged_exits_nonzero_with_one_line(tmp_path, capsys):
    cfg = _write(tmp_path, "model: {kind: double_well, barrier: 0.2, x_min: 0.4, mass: 10.0}\n"
                           "temperature: 300\nscha: {max_iter: 2, start_centroid: [0.3], scan_centroid: false}\n")
    assert main(["scha", cfg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not converge" in err[0] and "Fix:" in err[0]


def test_config_start_checks(tmp_path, capsys):
    cfg = _write(tmp_path, "model: {kind: quartic}\nscha: {start_centroid: [0.1, 0.2]}\n")
    assert main(["scha", cfg]) == 2
    assert "start_centroid has 2 values" in capsys.readouterr().err
    cfg = _write(tmp_path, "model: {kind: quartic}\nscha: {start_force_constants: [[-1.0]]}\n")
    assert main(["scha", cfg]) == 2
    assert "not positive definite" in capsys.readouterr().err
    np.save(tmp_path / "fc.npy", np.array([[5.0]]))
    cfg = _write(tmp_path, "model: {kind: quartic}\nscha: {start_force_constants: fc.npy}\n")
    assert main(["scha", cfg, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["converged"]
