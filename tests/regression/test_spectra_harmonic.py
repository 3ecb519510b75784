"""Spectra of a harmonic model crystal with known frequencies and charges.

The crystal: two independent periodic diatomic chains along x in one box, Na+/Cl- (Z = 1.1)
and K+/Br- (Z = 0.7), nearest neighbours joined by isotropic springs.  Its normal modes come
from the force-constant matrix built here; the trajectory is the exact analytic solution
u(t) = sum_m e_m / sqrt(m) A_m cos(omega_m t + phi_m) with every mode holding exactly k_B T
(A_m = sqrt(2 k_B T) / omega_m, random phases) and no drift of the zero modes: equipartition
by construction, so every line of the spectra has a known position and a known weight.

Known results used (Γ optical mode of a diatomic chain with springs k, reduced mass mu):
nu_TO = sqrt(2 k / mu) / (2 pi); sum over its three polarizations of |p|^2 = 3 N Z^2 / mu,
p = sum_a Z_a e_a / sqrt(m_a) (the "Z*^2 / m" of the IR intensity); all other modes carry no
dipole.
"""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit import units as U
from atomtwin.toolkit.schema import make_dataset
from atomtwin.toolkit.spectra import dielectric_function, ir_spectrum, vdos

KT_TEMPERATURE = 300.0
N_CELLS = 6
A = 3.0  # Å between neighbours
CHAINS = [  # cation, anion, charge (e), TO frequency (THz)
    ("Na", "Cl", 1.1, 7.0),
    ("K", "Br", 0.7, 11.0),
]


def reduced_mass(a: str, b: str) -> float:
    from ase.data import atomic_masses, atomic_numbers

    ma, mb = atomic_masses[atomic_numbers[a]], atomic_masses[atomic_numbers[b]]
    return ma * mb / (ma + mb)


def model_crystal():
    """Species, masses, charges, reference positions, cell and force constants (3N, 3N) eV/Å^2."""
    from ase.data import atomic_masses, atomic_numbers

    species, charges, pos, bonds = [], [], [], []
    for c, (cat, an, z, nu_to) in enumerate(CHAINS):
        mu = reduced_mass(cat, an)
        k = (2 * np.pi * nu_to) ** 2 * mu / 2 * U.AMU_A2_PS2_TO_EV  # eV/Å^2
        start = len(species)
        for n in range(2 * N_CELLS):
            species.append(cat if n % 2 == 0 else an)
            charges.append(z if n % 2 == 0 else -z)
            pos.append([n * A, 5.0 + 10.0 * c, 5.0])
        for n in range(2 * N_CELLS):
            bonds.append((start + n, start + (n + 1) % (2 * N_CELLS), k))
    n = len(species)
    fc = np.zeros((3 * n, 3 * n))
    for i, j, k in bonds:
        for d in range(3):
            fc[3 * i + d, 3 * i + d] += k
            fc[3 * j + d, 3 * j + d] += k
            fc[3 * i + d, 3 * j + d] -= k
            fc[3 * j + d, 3 * i + d] -= k
    masses = np.array([atomic_masses[atomic_numbers[s]] for s in species])
    cell = np.diag([2 * N_CELLS * A, 20.0, 10.0])
    return species, masses, np.array(charges), np.array(pos), cell, fc


def normal_modes(fc, masses):
    w = 1.0 / np.sqrt(np.repeat(masses, 3))
    ev, vec = np.linalg.eigh(fc * w[:, None] * w[None, :])
    omega = np.sqrt(np.clip(ev * U.EV_A_AMU_TO_A_PS2, 0, None))  # rad/ps
    return omega, vec


def exact_trajectory(n_frames: int, dt: float, seed: int):
    species, masses, charges, r0, cell, fc = model_crystal()
    omega, vec = normal_modes(fc, masses)
    rng = np.random.default_rng(seed)
    kt = U.KB * KT_TEMPERATURE / U.AMU_A2_PS2_TO_EV  # amu Å^2/ps^2
    live = omega > 1e-3
    amp = np.where(live, np.sqrt(2 * kt) / np.where(live, omega, 1.0), 0.0)
    phase = rng.uniform(0, 2 * np.pi, omega.size)
    t = np.arange(n_frames) * dt
    arg = omega[None, :] * t[:, None] + phase[None, :]
    w = 1.0 / np.sqrt(np.repeat(masses, 3))
    u = (amp * np.cos(arg)) @ (vec.T * w[None, :])
    v = (-amp * omega * np.sin(arg)) @ (vec.T * w[None, :])
    n = len(species)
    u, v = u.reshape(n_frames, n, 3), v.reshape(n_frames, n, 3)
    dipole = np.einsum("a,fai->fi", charges, u)
    born = np.broadcast_to(charges[None, :, None, None] * np.eye(3), (n_frames, n, 3, 3))
    ds = make_dataset(r0 + u, species, cell=cell, time=t, masses=masses, velocities=v,
                      polarization=dipole, born_charges=born)
    p = np.einsum("a,mai->mi", charges / np.sqrt(masses), vec.T.reshape(-1, n, 3))  # mode effective charge
    return ds, omega / (2 * np.pi), p, cell


@pytest.fixture(scope="module")
def crystal():
    # 4 fs frames (Nyquist 125 THz, far above the 11 THz top mode); 64 ps = 8 blocks of 8 ps
    return exact_trajectory(16000, 0.004, seed=7)


def distinct(freqs, tol=1e-6):
    out = []
    for f in np.sort(freqs):
        if out and abs(f - out[-1][0]) < tol:
            out[-1][1] += 1
        else:
            out.append([f, 1])
    return out


def test_vdos_lines_at_mode_frequencies_with_unit_weight(crystal):
    ds, nu_modes, _, _ = crystal
    res = vdos(ds, max_lag=4.0, n_blocks=8, temperature=KT_TEMPERATURE, max_frequency=20.0)
    nu = res["frequency"].values
    g = res["vdos_total"].values
    dnu = nu[1] - nu[0]
    # total weight: 3N - 6 live modes (6 zero modes carry no motion); the Hann lag window keeps
    # w(0) = 1, so the integral of the one-sided spectrum is C(0)/kT exactly up to the trapezoid rule
    # and the tail beyond 20 THz (none here)
    assert np.trapezoid(g, nu) == pytest.approx(3 * ds.sizes["atom"] - 6, rel=2e-3)
    # lines: the Hann-windowed line of a 4 ps correlation has its main lobe within +-1/T = 0.25 THz;
    # isolated lines (no other mode within 0.6 THz) hold their degeneracy (each mode exactly k_B T)
    # up to the few per cent of the window's side lobes that fall outside +-0.3 THz
    lines = distinct(nu_modes[nu_modes > 0.5], tol=1e-4)
    checked = 0
    for f0, deg in lines:
        others = [f for f, _ in lines if f != f0]
        if min(abs(np.array(others) - f0)) < 0.6:
            continue
        sel = np.abs(nu - f0) < 0.3
        weight = np.trapezoid(g[sel], nu[sel])
        assert weight == pytest.approx(deg, rel=0.05), (f0, deg, weight)
        peak = nu[sel][np.argmax(g[sel])]
        assert abs(peak - f0) <= dnu, (f0, peak)
        checked += 1
    assert checked >= 6
    # species resolved VDOS: each sums to its own 3 N_s degrees of freedom minus its share of the
    # zero modes (the translation of each chain, weighted by the mass fraction of the species)
    for sp in ("Na", "Cl", "K", "Br"):
        n_s = int((ds["species"].values == sp).sum())
        pair = next(c for c in CHAINS if sp in c[:2])
        m = ds["mass"].values
        chain_mask = np.isin(ds["species"].values, pair[:2])
        frac = m[ds["species"].values == sp].sum() / m[chain_mask].sum()
        assert np.trapezoid(res["vdos"].sel(species=sp).values, nu) == pytest.approx(3 * n_s - 3 * frac, rel=5e-3)


def test_ir_peaks_at_to_frequencies_with_intensity_z2_over_mu(crystal):
    ds, _, p, cell = crystal
    vol = abs(np.linalg.det(cell))
    res = ir_spectrum(ds, temperature=KT_TEMPERATURE, max_lag=2.0, n_blocks=8, unit="THz",
                      max_frequency=20.0)
    assert res.attrs["source"] == "born_charges"  # exact current sum Z*.v preferred
    nu, a = res["frequency"].values, res["absorption"].values
    dnu = nu[1] - nu[0]
    integrals = []
    for cat, an, z, nu_to in CHAINS:
        sel = np.abs(nu - nu_to) < 1.0
        assert abs(nu[sel][np.argmax(a[sel])] - nu_to) <= dnu
        integrals.append(np.trapezoid(a[sel], nu[sel]))
        # Z*^2/m law: integrated absorption = beta/(6 c V eps0) * <|J|^2>/2 with <|J|^2> = 3 N Z^2 k_B T / mu,
        # i.e. 3 N Z^2 / (12 mu c V eps0) in 1/Å THz (k_B T cancels): exact here, since each mode holds
        # exactly k_B T; 1 % for the Hann side lobes outside +-1 THz
        # (beta k_B T = 1 / AMU_A2_PS2_TO_EV with k_B T in amu Å^2/ps^2; 1e8: 1/Å -> 1/cm)
        expect = 3 * N_CELLS * z**2 / reduced_mass(cat, an) / (
            12 * U.SPEED_OF_LIGHT * vol * U.EPSILON0 * U.AMU_A2_PS2_TO_EV) * 1e8
        assert integrals[-1] == pytest.approx(expect, rel=0.01)
    # same check written from the computed mode effective charges, independent of the closed form
    total_p2 = (p**2).sum()
    expect_all = total_p2 / (12 * U.SPEED_OF_LIGHT * vol * U.EPSILON0 * U.AMU_A2_PS2_TO_EV) * 1e8
    assert sum(integrals) == pytest.approx(expect_all, rel=0.01)
    # nothing but the two TO lines absorbs: outside them the spectrum is side-lobe level
    outside = (np.abs(nu - 7.0) > 1.0) & (np.abs(nu - 11.0) > 1.0)
    assert a[outside].max() < 0.01 * a.max()


def test_ir_from_dipole_differences_matches_born_current(crystal):
    ds, _, _, _ = crystal
    kw = dict(temperature=KT_TEMPERATURE, max_lag=2.0, n_blocks=8, unit="THz", max_frequency=20.0)
    born = ir_spectrum(ds, source="born_charges", **kw)
    dip = ir_spectrum(ds, source="polarization", **kw)
    assert dip.attrs["source"] == "polarization"
    # the forward difference at the midpoints has transfer function sinc(pi nu dt), divided out;
    # what remains is the half-frame shift of the blocks (one frame fewer): 0.5 % on the peaks
    scale = born["absorption"].values.max()
    assert np.abs(dip["absorption"].values - born["absorption"].values).max() < 5e-3 * scale


def test_static_dielectric_constant_equals_lorentz_oscillators(crystal):
    ds, nu_modes, p, cell = crystal
    vol = abs(np.linalg.det(cell))
    eps_inf = 2.5
    res = dielectric_function(ds, eps_inf=eps_inf, temperature=KT_TEMPERATURE, max_lag=2.0,
                              n_blocks=8, max_frequency=20.0)
    omega = 2 * np.pi * nu_modes
    live = omega > 1e-3
    # eps(0) = eps_inf + sum_m |p_m|^2 / (3 V eps0 omega_m^2) (mass-weighted Lorentz oscillators)
    # with p_m in e/sqrt(amu), omega in rad/ps: beta <dM^2> = sum |p|^2 / omega^2 / AMU_A2_PS2_TO_EV
    expect = eps_inf + ((p[live] ** 2).sum(axis=1) / omega[live] ** 2).sum() / (
        3 * vol * U.EPSILON0 * U.AMU_A2_PS2_TO_EV)
    # exact time averages of cos^2 over 32 ps of 7 and 11 THz lines: the cross term between the two
    # TO lines decays as 1/(2 pi 4 THz 32 ps) ~ 1e-3
    assert float(res["eps_static"]) == pytest.approx(expect, rel=5e-3)
    assert res["eps_real"].values[0] == pytest.approx(float(res["eps_static"]), rel=1e-9)
    # above both TO lines eps' falls below eps_inf (the Lorentz oscillators' negative tail), and
    # eps'' is positive at the lines
    nu = res["frequency"].values
    assert res["eps_real"].values[np.argmin(np.abs(nu - 15.0))] < eps_inf
    assert res["eps_imag"].values[np.argmin(np.abs(nu - 7.0))] > 0


def test_dielectric_from_integrated_born_current_matches_polarization(crystal):
    ds, _, _, _ = crystal
    kw = dict(eps_inf=2.5, temperature=KT_TEMPERATURE, max_lag=2.0, n_blocks=8, max_frequency=15.0)
    ref = dielectric_function(ds, **kw)
    born = dielectric_function(ds.drop_vars("polarization"), **kw)
    # M(t) rebuilt as the trapezoid integral of sum Z*.v: amplitude error (omega dt)^2/12 = 0.6 % at
    # 11 THz with 4 fs frames, so 1 % of the ionic part and of the eps'' peak
    chi = float(ref["eps_static"]) - 2.5
    assert float(born["eps_static"]) - 2.5 == pytest.approx(chi, rel=0.01)
    assert np.abs(born["eps_imag"] - ref["eps_imag"]).max() < 0.01 * float(ref["eps_imag"].max())


def test_vdos_from_wrapped_positions_equals_vdos_from_velocities(crystal):
    from atomtwin.toolkit.geometry import wrap

    ds, _, _, _ = crystal
    # atoms at x = 0 oscillate across the cell boundary: wrapped positions jump by a cell length,
    # which the minimum-imaged forward differences must undo
    wrapped = wrap(ds.isel(frame=slice(0, 4000))).drop_vars(["velocities", "image"])
    assert (wrapped["positions"].values[..., 0] > 30).any()
    kw = dict(max_lag=2.0, n_blocks=2, temperature=KT_TEMPERATURE, max_frequency=20.0)
    a = vdos(ds.isel(frame=slice(0, 4000)), **kw)
    b = vdos(wrapped, **kw)
    # the sinc transfer of the midpoint difference is divided out; the rest is the half-frame shift
    # at the block edges: 1 % of the tallest line
    assert np.abs(a["vdos_total"].values - b["vdos_total"].values).max() < 0.01 * a["vdos_total"].values.max()


def test_vacf_at_zero_lag_is_equipartition(crystal):
    from atomtwin.toolkit.spectra import vacf

    ds, _, _, _ = crystal
    res = vacf(ds, max_lag=1.0, n_blocks=8)
    n = ds.sizes["atom"]
    # <m v.v> per atom = (3N - 6) k_B T / N: every live mode holds k_B T, half of it kinetic on
    # average (so m v^2 sums to k_B T per mode); cross terms between modes of different frequency
    # average out over 8 ps blocks to ~1/(2 pi 0.2 THz 8 ps) of one mode's share, i.e. < 1e-3 in total
    expect = (3 * n - 6) / n * U.KB * KT_TEMPERATURE
    assert float(res["vacf_total"][0]) == pytest.approx(expect, rel=2e-3)
    assert res["vacf"].attrs["units"] == "eV" and res["lag"].attrs["units"] == "ps"
