"""O–H reorientations, the charge MSD on its own, density-maximum sites on thermal
hoppers in a periodic orthorhombic cell, and the stretched / automatic relaxation fits."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.dynamics import (
    assign_hydrogens,
    charge_msd,
    find_sites,
    fit_relaxation,
    oh_reorientations,
    proton_transfers,
)
from atomtwin.toolkit.schema import make_dataset
from scipy import special

TET = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)


def test_oh_reorientations_are_the_constructed_jumps_and_not_transfers():
    # 4 O atoms 2.6 Å apart in pairs; each H sits 1.0 Å from its O along one of the four
    # tetrahedral directions and jumps to another direction at known frames (109.47°);
    # H 0 additionally transfers to the neighbouring O at frame 150 (a donor change that
    # must NOT be reported as a reorientation)
    F, dt = 300, 0.01
    rng = np.random.default_rng(3)
    oxy = np.array([[0.0, 0, 0], [2.6, 0, 0], [10.0, 0, 0], [10.0, 6.0, 0]])
    jumps = {0: [60], 1: [40, 120, 220], 2: [], 3: [90, 200]}  # H h starts on O h
    pos = np.zeros((F, 8, 3))
    pos[:, :4] = oxy
    for h, frames in jumps.items():
        arm = np.zeros(F, int)
        for k, f in enumerate(frames):
            arm[f:] = (k + 1) % 4
        donor = np.full(F, h)
        if h == 0:
            donor[150:] = 1  # transfer; on O 1 it points along TET[0] (the O 0 -> O 1 axis is x)
            arm[150:] = 0
        pos[:, 4 + h] = oxy[donor] + TET[arm] * 1.0 + rng.normal(0, 0.02, (F, 3))  # libration noise
    ds = make_dataset(
        pos, ["O"] * 4 + ["H"] * 4, cell=np.diag([20.0, 20.0, 20.0]), time=np.arange(F) * dt
    )
    own = assign_hydrogens(ds, "H", "O")
    ev = oh_reorientations(ds, own, threshold_deg=60.0, smooth=5)
    got = sorted(zip(ev["hydrogen"].values.tolist(), ev["frame"].values.tolist(), strict=True))
    want = sorted((4 + h, f) for h, frames in jumps.items() for f in frames)
    assert [g[0] for g in got] == [w[0] for w in want]
    # the centred 5-frame running mean crosses 60° at most 2 frames from the jump (half the window)
    assert np.all(np.abs(np.array([g[1] for g in got]) - np.array([w[1] for w in want])) <= 2)
    # the tetrahedral angle between settled directions (each jump counted once), blurred only
    # by the 0.02 Å libration noise (~1° per frame, less after smoothing)
    np.testing.assert_allclose(ev["angle"].values, np.degrees(np.arccos(-1 / 3)), atol=3.0)
    tr = proton_transfers(own)
    assert tr.sizes["event"] == 1
    assert tr["frame"].values.tolist() == [150] and tr["to_donor"].values.tolist() == [1]
    assert 150 not in ev["frame"].values


def test_charge_msd_is_the_msd_of_the_summed_charge_displacement():
    rng = np.random.default_rng(5)
    F, n = 200, 12
    x = np.cumsum(rng.normal(0, 0.2, (F, n, 3)), axis=0)
    sp = ["Li"] * 6 + ["Cl"] * 6
    ds = make_dataset(x, sp, time=np.arange(F) * 0.1)
    q = np.array([1.0] * 6 + [-1.0] * 6)
    P = np.einsum("fai,a->fi", x, q)  # collective charge displacement path (e Å)
    direct = np.array([np.mean(np.sum((P[m:] - P[: F - m]) ** 2, -1)) for m in range(F)])
    got = charge_msd(ds, {"Li": 1, "Cl": -1}, remove_drift=False, unwrap=False)
    # the same all-origins estimator: float64 round-off
    np.testing.assert_allclose(got.values, direct, rtol=1e-9, atol=1e-9)
    assert got.attrs["units"] == "e^2*Å^2" and got.attrs["n_atoms"] == 1
    # ion pairs that move rigidly together carry no current: exactly zero charge MSD
    pair = np.concatenate([x[:, :6], x[:, :6] + 2.5], axis=1)
    zero = charge_msd(
        make_dataset(pair, sp, time=np.arange(F) * 0.1),
        {"Li": 1, "Cl": -1},
        remove_drift=False,
        unwrap=False,
    )
    assert np.max(np.abs(zero.values)) < 1e-9 * np.max(direct)
    # drift removal: the charge path of x_i - d(t), d the mass-weighted centre of mass of all
    # atoms; a net charge (Li only) makes the drift term count
    mass = ds["mass"].values
    y = x - (np.einsum("fai,a->fi", x, mass) / mass.sum())[:, None, :]
    Py = y[:, :6].sum(axis=1)
    want = np.array([np.mean(np.sum((Py[m:] - Py[: F - m]) ** 2, -1)) for m in range(F)])
    got_d = charge_msd(ds, {"Li": 1}, remove_drift=True, unwrap=False, atom_chunk=5)
    np.testing.assert_allclose(got_d.values, want, rtol=1e-9, atol=1e-9)
    # directional: the xy charge MSD plus the z one is the total
    xy = charge_msd(ds, {"Li": 1, "Cl": -1}, axes="xy", remove_drift=False, unwrap=False)
    z = charge_msd(ds, {"Li": 1, "Cl": -1}, axes="z", remove_drift=False, unwrap=False)
    np.testing.assert_allclose(xy.values + z.values, direct, rtol=1e-9, atol=1e-9)


def test_density_maximum_sites_of_thermal_hoppers_in_a_periodic_cell():
    # 16 sites of a bcc-like arrangement in an orthorhombic 8 x 9 x 10 Å cell, including
    # sites ON the cell faces (their density wraps around the boundary); atoms vibrate
    # with sigma = 0.25 Å around their site and hop to a random site every ~40 frames
    rng = np.random.default_rng(8)
    L = np.array([8.0, 9.0, 10.0])
    frac = np.array(
        [[i, j, k] for i in (0, 0.5) for j in (0, 0.5) for k in (0, 0.5)]
        + [[i + 0.25, j + 0.25, k + 0.25] for i in (0, 0.5) for j in (0, 0.5) for k in (0, 0.5)]
    )
    sites = frac * L
    F, n = 2000, 8
    where = rng.integers(0, 16, n)
    pos = np.empty((F, n, 3))
    for f in range(F):
        hop = rng.random(n) < 1 / 40
        where[hop] = rng.integers(0, 16, hop.sum())
        pos[f] = sites[where] + rng.normal(0, 0.25, (n, 3))
    ds = make_dataset(np.mod(pos, L), ["Li"] * n, cell=np.diag(L), time=np.arange(F) * 0.01)
    found = find_sites(
        ds, "Li", grid_spacing=0.2, smoothing=0.3, min_separation=1.5, min_occupancy=0.2
    )
    assert found.sizes["site"] == 16  # every site, no spurious maxima
    d = found.values[:, None, :] - sites[None, :, :]
    d -= np.round(d / L) * L
    r = np.linalg.norm(d, axis=-1)
    # one-to-one, each within ~0.2 Å: half a grid bin along each axis (0.1 * sqrt(3) = 0.17 Å)
    # plus the statistical error of a peak of ~1000 samples of sigma 0.25 Å (0.01 Å)
    assert sorted(np.argmin(r, axis=1).tolist()) == list(range(16))
    assert np.max(np.min(r, axis=1)) < 0.2


def test_stretched_exponential_fit_recovers_tau_beta_and_mean_time():
    t = np.arange(400) * 0.05
    tau, beta = 2.0, 0.6
    import xarray as xr

    c = xr.DataArray(np.exp(-((t / tau) ** beta)), dims="lag", coords={"lag": t})
    f = fit_relaxation(c, model="stretched", t_max=20.0, c_min=0.01)
    # noise-free KWW data: recovered to the optimizer's tolerance
    assert float(f.tau) == pytest.approx(tau, rel=1e-4) and float(f.beta) == pytest.approx(
        beta, rel=1e-4
    )
    # mean time = integral_0^inf exp(-(t/tau)^beta) dt = tau/beta Gamma(1/beta) (2.218 tau here)
    assert float(f.mean_tau) == pytest.approx(tau / beta * special.gamma(1 / beta), rel=1e-4)
    assert f.attrs["model"] == "stretched"


def test_auto_fit_keeps_a_second_rate_only_when_the_data_have_one():
    import xarray as xr

    rng = np.random.default_rng(11)
    t = np.arange(1, 600) * 0.05
    noise = 0.002  # ~ the scatter of a C_l(t) averaged over ~10^5 bond-vector origins
    one = np.exp(-t / 3.0) + rng.normal(0, noise, t.size)
    two = 0.5 * np.exp(-t / 0.5) + 0.5 * np.exp(-t / 8.0) + rng.normal(0, noise, t.size)
    f1 = fit_relaxation(
        xr.DataArray(one, dims="lag", coords={"lag": t}), model="auto", t_max=25, c_min=0.01
    )
    f2 = fit_relaxation(
        xr.DataArray(two, dims="lag", coords={"lag": t}), model="auto", t_max=25, c_min=0.01
    )
    assert f1.attrs["model"] == "exp"
    # ~500 points of noise 0.002: the single time is determined to ~0.1%; 2% is > 10 sigma
    assert float(f1.tau) == pytest.approx(3.0, rel=0.02)
    assert f2.attrs["model"] == "biexp"
    # two rates 16x apart with equal weights: each time and the weight to ~1% (curve_fit's
    # standard errors here are 0.3-0.6%); 5% is a safe multiple
    assert float(f2.tau) == pytest.approx(0.5, rel=0.05)
    assert float(f2.tau2) == pytest.approx(8.0, rel=0.05)
    assert float(f2.weight) == pytest.approx(0.5, abs=0.025)
    # the mean time of a bi-exponential is the weighted mean of the two
    assert float(f2.mean_tau) == pytest.approx(
        float(f2.weight) * float(f2.tau) + (1 - float(f2.weight)) * float(f2.tau2), rel=1e-12
    )


@pytest.mark.parametrize(
    "cell", [np.diag([7.0, 8.0, 9.5]), np.array([[7.0, 0, 0], [1.5, 8.0, 0], [-1.0, 2.0, 9.5]])]
)
def test_assignment_equals_brute_force_over_images(cell):
    # the neighbour-layer assignment (cell lists) against the nearest O over 5^3 images of
    # every O by brute force, for H across the cell faces and slightly outside the cell
    rng = np.random.default_rng(2)
    pos = rng.uniform(-0.5, 1.05, (6, 40, 3)) @ cell
    ds = make_dataset(pos, ["O"] * 25 + ["H"] * 15, cell=cell, time=np.arange(6) * 0.1)
    got = assign_hydrogens(ds, "H", "O", frame_chunk=4)
    img = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3) @ cell
    d = np.linalg.norm(pos[:, None, :25, None] + img - pos[:, 25:, None, None], axis=-1).min(-1)
    np.testing.assert_array_equal(got.values, d.argmin(-1))
    np.testing.assert_allclose(got["distance"].values, d.min(-1), rtol=0, atol=1e-12)
