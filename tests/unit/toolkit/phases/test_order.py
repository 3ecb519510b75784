"""Order parameters against exact values (perfect lattices, constructed trajectories)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from ase.build import bulk
from atomtwin.toolkit import make_dataset
from atomtwin.toolkit import units as U
from atomtwin.toolkit.phases import (
    coordination,
    lindemann,
    rdf,
    self_diffusion,
    species_clusters,
    steinhardt,
    structure_factor,
    temperature,
)


def _lattice(name: str, a: float, size=(4, 4, 4), cubic=True):
    atoms = (
        bulk("Ar", name, a=a, cubic=cubic).repeat(size)
        if name != "hcp"
        else bulk("Ar", "hcp", a=a, c=a * np.sqrt(8 / 3)).repeat(size)
    )
    return make_dataset(
        atoms.positions[None], atoms.get_chemical_symbols(), cell=atoms.cell[:][None]
    )


# Exact Steinhardt values of perfect lattices (12 nearest neighbours for fcc/hcp, 8 for bcc),
# e.g. Steinhardt, Nelson & Ronchetti, PRB 28, 784 (1983); Lechner & Dellago (2008) Table I.
@pytest.mark.parametrize(
    "name,k,q4,q6",
    [
        ("fcc", 12, 0.19094, 0.57452),
        ("hcp", 12, 0.09722, 0.48476),
        ("bcc", 8, 0.50918, 0.62854),
    ],
)
def test_steinhardt_perfect_lattices(name, k, q4, q6):
    ds = _lattice(name, 5.0, size=(4, 4, 4) if name != "hcp" else (5, 5, 3))
    st = steinhardt(ds, cutoff=6.0, n_neighbours=k)
    # every atom of a perfect lattice is equivalent and the averaged q̄ of identical
    # neighbourhoods equals q: 5-digit literature values, so 1e-4
    for var, ref in (("q4", q4), ("q6", q6), ("q4_bar", q4), ("q6_bar", q6)):
        np.testing.assert_allclose(st[var].values, ref, atol=1e-4)


def test_fcc_rdf_peak_and_coordination():
    a = 5.26
    ds = _lattice("fcc", a)
    g = rdf(ds, r_max=9.0, n_bins=450)
    # first shell at a/sqrt(2): the peak bin centre lies within one bin (0.02 Å) of it
    assert abs(float(g.r.values[np.argmax(g.values)]) - a / np.sqrt(2)) <= 0.02
    # between the first (3.72 Å) and second (5.26 Å) shells: exactly 12 neighbours
    np.testing.assert_array_equal(coordination(ds, cutoff=4.5).values, 12)
    # integral of ρ g(r) 4πr² dr over the first shell = 12 exactly (histogram normalisation)
    rho = ds.sizes["atom"] / abs(np.linalg.det(ds.cell.values[0]))
    r, dr = g.r.values, g.r.values[1] - g.r.values[0]
    n1 = np.sum((rho * g * 4 * np.pi * r**2 * dr).values[r < 4.5])
    assert abs(n1 - 12) < 0.05 * 12  # the shell-volume vs r² dr quadrature: < 5 % at 0.02 Å bins


def test_rdf_ideal_gas_is_one(rng):
    n, L, nf = 1500, 30.0, 4
    pos = rng.uniform(0, L, (nf, n, 3))
    ds = make_dataset(pos, ["Ar"] * n, cell=np.eye(3) * L)
    g = rdf(ds, r_max=12.0, n_bins=24)
    # Poisson counts: bin k holds ~ N ρ V_k/2 pairs per frame; relative std 1/sqrt(count).
    # Over 5 std (every bin) a correct normalisation never fails; a wrong one (e.g. N vs N-1,
    # a missing factor 2) is off by >= 1/N... or 100 %.
    r = g.r.values
    counts = nf * n * (n / L**3) * 4 * np.pi * r**2 * (r[1] - r[0]) / 2
    sel = r > 2.0
    assert np.all(np.abs(g.values[sel] - 1) < 5 / np.sqrt(counts[sel]))


def test_structure_factor_of_a_step_gr_is_analytic():
    # g(r) = 0 below σ and 1 above: S(q) = 1 − 4πρ (sin qσ − qσ cos qσ)/q³ exactly
    sigma, rho = 1.0, 0.05
    r = np.arange(0.0005, 10, 0.001)
    g = xr.DataArray((r > sigma).astype(float), dims=("r",), coords={"r": r})
    q = np.linspace(0.5, 10, 40)
    s = structure_factor(g, rho, q=q, lorch=False)
    exact = 1 - 4 * np.pi * rho * (np.sin(q * sigma) - q * sigma * np.cos(q * sigma)) / q**3
    # midpoint quadrature with dr = 1e-3 of a step at σ: error O(dr) * 4πρσ² ~ 1e-3
    np.testing.assert_allclose(s.values, exact, atol=2e-3)


def test_lindemann_of_gaussian_vibrations(rng):
    base = _lattice("fcc", 5.26)
    x0 = base.positions.values[0]
    s = 0.1  # Å per component
    nf = 400
    pos = x0 + rng.normal(0, s, (nf, *x0.shape))
    ds = make_dataset(pos, base.species.values, cell=base.cell.values[0], time=np.arange(nf) * 0.01)
    ind = lindemann(ds, nn_distance=5.26 / np.sqrt(2))
    expected = np.sqrt(3) * s / (5.26 / np.sqrt(2))
    # per atom the variance of 3 x 400 samples has relative std sqrt(2/1200) ~ 4 % (2 % on the
    # ratio); the mean over 256 atoms is then exact to ~0.2 %: test the mean at 1 %, atoms at 10 %
    assert abs(float(ind.mean()) - expected) < 0.01 * expected
    assert np.all(np.abs(ind.values - expected) < 0.1 * expected)


def test_self_diffusion_of_a_random_walk(rng):
    n, nf, dt, D = 500, 200, 0.01, 0.5  # Å^2/ps
    steps = rng.normal(0, np.sqrt(2 * D * dt), (nf - 1, n, 3))
    pos = np.concatenate([np.zeros((1, n, 3)), np.cumsum(steps, axis=0)]) + 50.0
    ds = make_dataset(pos, ["Ar"] * n, cell=np.eye(3) * 1000.0, time=np.arange(nf) * dt)
    # the MSD at time t of N walkers has relative std sqrt(2/(3N)) ≈ 3.7 %; the slope over
    # t > 0.3 t_max inherits about that: 15 % is 4 sigma
    assert abs(self_diffusion(ds) - D) < 0.15 * D
    # a vibrating crystal does not diffuse: D below 1e-3 of the walk's
    base = _lattice("fcc", 5.26)
    vib = base.positions.values[0] + rng.normal(0, 0.1, (nf, base.sizes["atom"], 3))
    ds2 = make_dataset(vib, base.species.values, cell=base.cell.values[0], time=np.arange(nf) * dt)
    # (atomtwin.toolkit.dynamics says so: the MSD of a vibrating crystal has no diffusive regime)
    with pytest.warns(UserWarning, match="no diffusive regime"):
        d_solid = self_diffusion(ds2)
    assert abs(d_solid) < 1e-3 * D


def test_species_clusters_counts_connected_components(rng):
    # three compact C clusters (sizes 10, 6, 3) far apart, two isolated C, in Si
    centres = np.array([[5, 5, 5], [20, 20, 20], [5, 20, 35.0]])
    pos, sp = [], []
    for c, size in zip(centres, (10, 6, 3), strict=True):
        for k in range(size):  # a chain with 1.4 Å bonds: connected at cutoff 1.9 Å
            pos.append(c + [1.4 * k, 0, 0])
            sp.append("C")
    pos += [[35, 5, 20.0], [35, 35, 5.0]]
    sp += ["C", "C"]
    si = rng.uniform(0, 40, (50, 3))
    si = si[np.min(np.linalg.norm(si[:, None] - np.array(pos)[None], axis=2), axis=1) > 2.5]
    pos = np.vstack([pos, si])
    sp += ["Si"] * len(si)
    ds = make_dataset(pos[None], sp, cell=np.eye(3) * 40.0)
    cl = species_clusters(ds, "C", cutoff=1.9, min_size=2)
    assert int(cl.largest_cluster[0]) == 10
    assert int(cl.n_clusters[0]) == 3
    np.testing.assert_allclose(cl.clustered_fraction[0], 19 / 21)
    with pytest.raises(ValueError, match="species 'O'"):
        species_clusters(ds, "O", cutoff=1.9)


def test_temperature_from_velocities(rng):
    n = 1000
    m = 39.948
    T = 300.0
    v = rng.normal(0, np.sqrt(U.KB * T / (m * U.AMU_A2_PS2_TO_EV)), (1, n, 3))
    ds = make_dataset(rng.uniform(0, 20, (1, n, 3)), ["Ar"] * n, cell=np.eye(3) * 20, velocities=v)
    # 3N - 3 = 2997 degrees of freedom: relative std sqrt(2/2997) = 2.6 %; 4 sigma
    assert abs(float(temperature(ds)[0]) - T) < 0.1 * T
    # and exactly the definition
    ke = 0.5 * m * np.sum(v**2) * U.AMU_A2_PS2_TO_EV
    np.testing.assert_allclose(float(temperature(ds)[0]), 2 * ke / ((3 * n - 3) * U.KB), rtol=1e-12)


def test_triclinic_primitive_cell_gives_the_cubic_answers():
    # fcc in its primitive (60° rhombohedral) cell, 5x5x5: the same lattice as the cubic cell,
    # so 12 neighbours at a/sqrt(2), fcc's exact q6, and the nearest distance a/sqrt(2)
    # through periodic images (the cell is only 1.9 nearest distances thick)
    a = 5.26
    atoms = bulk("Ar", "fcc", a=a).repeat((5, 5, 5))
    ds = make_dataset(atoms.positions[None], atoms.get_chemical_symbols(), cell=atoms.cell[:][None])
    np.testing.assert_array_equal(coordination(ds, cutoff=4.5).values, 12)
    st = steinhardt(ds, cutoff=4.5)
    np.testing.assert_allclose(st["q6"].values, 0.57452, atol=1e-4)
    ds2 = make_dataset(
        np.repeat(atoms.positions[None], 2, 0),
        atoms.get_chemical_symbols(),
        cell=atoms.cell[:],
        time=np.array([0.0, 0.01]),
    )
    assert abs(lindemann(ds2).attrs["nn_distance"] - a / np.sqrt(2)) < 1e-9


def test_order_parameter_loops_show_progress(capsys):
    from atomtwin.toolkit import progress as P

    ds = _lattice("fcc", 5.0, size=(2, 2, 2))
    P.enable(True)
    try:
        steinhardt(ds, cutoff=4.0)
        coordination(ds, cutoff=4.0)
    finally:
        P.enable(False)
    err = capsys.readouterr().err
    assert "steinhardt" in err and "coordination" in err


def test_spherical_harmonics_by_recurrence_equal_scipy():
    # the Steinhardt loop builds Y_lm from polynomials in cos(theta) and powers of
    # (x + iy)/r; scipy's sph_harm_y is the independent reference (1e-12: double rounding
    # of a three-term recurrence up to l = 12), including bonds along +-z (the poles)
    from atomtwin.toolkit.phases.order import _ylm_factors
    from scipy.special import sph_harm_y

    v = np.random.default_rng(7).normal(size=(500, 3)) * 2.7
    v[:2] = [[0, 0, 1.3], [0, 0, -0.7]]
    r = np.linalg.norm(v, axis=1)
    theta, phi = np.arccos(v[:, 2] / r), np.arctan2(v[:, 1], v[:, 0])
    for ell in (0, 1, 2, 3, 4, 6, 8, 12):
        got = dict(_ylm_factors(ell, v))
        assert sorted(got) == list(range(ell + 1))
        for m, y in got.items():
            np.testing.assert_allclose(y, sph_harm_y(ell, m, theta, phi), rtol=0, atol=1e-12)
