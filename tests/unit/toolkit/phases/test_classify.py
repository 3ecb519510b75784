"""Classification and boundaries on synthetic order-parameter data with a known boundary."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import xarray as xr
from atomtwin.toolkit import units as U
from atomtwin.toolkit.phases import (
    clapeyron_slope,
    classify_phases,
    clausius_clapeyron,
    hysteresis,
    phase_boundary,
)

T0, SLOPE = 100.0, 200.0  # known boundary T_b(P) = T0 + SLOPE * P  (K, K/GPa)


def _synthetic_grid(rng, n_p=9, n_t=15, noise=0.03):
    """Order parameters on a (P, T) grid: solid (q̄6 ≈ 0.45, D ≈ 0) below T_b(P), liquid above."""
    P = np.linspace(0.0, 1.0, n_p)
    T = np.linspace(60.0, 360.0, n_t)
    solid = T[None, :] < (T0 + SLOPE * P[:, None])
    q6 = np.where(solid, 0.45, 0.15) + rng.normal(0, noise, solid.shape)
    dif = np.where(solid, 0.0, 0.3) + rng.normal(0, noise, solid.shape)
    ds = xr.Dataset({"q6_bar": (("pressure", "temperature"), q6), "diffusion": (("pressure", "temperature"), dif)},
                    coords={"pressure": P, "temperature": T})
    return ds, solid


def test_kmeans_recovers_phases_and_names(rng):
    ds, solid = _synthetic_grid(rng)
    ds["q6_bar"][0, 0] = np.nan  # a failed run: no label, never a phase
    lab = classify_phases(ds, method="kmeans", names={"q6_bar": ["liquid", "solid"]})
    assert lab.dims == ("pressure", "temperature")
    assert lab.values[0, 0] == ""
    # clusters 0.3 apart with noise 0.03 (10 sigma): every other run is labelled right
    ok = lab.values != ""
    np.testing.assert_array_equal(lab.values[ok] == "solid", solid[ok])
    gm = classify_phases(ds, method="gmm", names={"q6_bar": ["liquid", "solid"]})
    np.testing.assert_array_equal(gm.values[ok] == "solid", solid[ok])


def test_criteria_classification_is_exact(rng):
    ds, solid = _synthetic_grid(rng)
    lab = classify_phases(ds, criteria={"solid": "q6_bar > 0.3 and diffusion < 0.15", "liquid": "q6_bar <= 0.3"})
    np.testing.assert_array_equal(lab.values == "solid", solid)
    with pytest.raises(ValueError, match="not a feature"):
        classify_phases(ds, criteria={"solid": "q9 > 0.3"})


def test_boundary_recovered_within_band_and_clapeyron_slope():
    # Calibration over seeds: random (P, T) samples labelled by the known line (with a 5 %
    # label noise near it).  The 95 % bootstrap band must contain the true boundary at
    # >= 85 % of pressures on average (pointwise 95 % nominal; the bootstrap of a
    # logistic fit is slightly anticonservative at the grid edges), and the
    # Clausius-Clapeyron slope must lie within 3 of its errors of SLOPE.
    cover, z = [], []
    for seed in range(4):
        r = np.random.default_rng(seed)
        P = r.uniform(0, 1, 160)
        T = r.uniform(60, 360, 160)
        tb = T0 + SLOPE * P
        p_solid = 1 / (1 + np.exp((T - tb) / 6.0))  # a smooth transition 6 K wide
        lab = np.where(r.uniform(size=P.size) < p_solid, "solid", "liquid")
        b = phase_boundary(P, T, lab, phases=("solid", "liquid"), n_boot=100, seed=seed,
                           p_grid=np.linspace(0.1, 0.9, 9))
        true = T0 + SLOPE * b.pressure.values
        cover.append(np.mean((b.lower.values <= true) & (true <= b.upper.values)))
        cc = clausius_clapeyron(b)
        z.append((cc["dT_dP"] - SLOPE) / cc["error"])
        # the band is informative: narrower than 1/10 of the sampled T range
        assert np.all(b.upper.values - b.lower.values < 30.0)
    assert np.mean(cover) >= 0.85
    assert np.all(np.abs(z) < 3.0)


def test_boundary_needs_two_phases():
    with pytest.raises(ValueError, match="no boundary"):
        phase_boundary([0, 1], [100, 200], ["solid", "solid"], phases=("solid", "liquid"))


def test_clapeyron_slope_units():
    # water-like numbers: T = 273 K, Δv = −1.63 cm^3/mol, Δh = 6.01 kJ/mol -> dT/dP = −0.0741 K/MPa
    NA = 6.02214076e23
    dv = -1.63e-6 / NA * 1e30  # Å^3 per molecule
    dh = 6010.0 / NA / 1.602176634e-19  # eV per molecule
    assert abs(clapeyron_slope(273.15, dv, dh) - (-74.1)) < 0.5  # K/GPa, textbook value
    assert U.GPA_TO_EV_A3 > 0


def test_hysteresis_of_synthetic_ramps():
    T = np.arange(100.0, 201.0, 10.0)

    def ramp(direction, t_switch):
        temps = T if direction == "heating" else T[::-1]
        solid = temps < t_switch if direction == "heating" else temps <= t_switch
        ds = xr.Dataset({"q6_bar": (("step",), np.where(solid, 0.45, 0.15))},
                        coords={"temperature": ("step", temps), "step": np.arange(T.size)},
                        attrs={"pressure": 0.1, "direction": direction})
        ds["status"] = ("step", ["ok"] * T.size)
        return ds

    # superheated to 175 K on heating (first liquid at 180), undercooled to 125 K on cooling
    ramps = {"h": ramp("heating", 175.0), "c": ramp("cooling", 125.0)}
    h = hysteresis(ramps, partial(classify_phases, criteria={"solid": "q6_bar > 0.3", "liquid": "q6_bar <= 0.3"}))
    assert float(h.T_heating[0]) == 175.0  # midpoint of 170 (solid) and 180 (liquid)
    assert float(h.T_cooling[0]) == 125.0  # midpoint of 130 (liquid) and 120 (solid)
    assert float(h.width[0]) == 50.0
