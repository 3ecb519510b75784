"""Ensembles against statistical mechanics: NVE energy conservation, canonical kinetic-energy
distributions (Langevin, Nosé–Hoover chain), NPT pressure and compressibility.

System: Lennard-Jones argon (ε = 0.0104 eV, σ = 3.405 Å, Rahman 1964), 32 atoms, and EMT
copper.  Statistical errors come from block averages of the run itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from atomtwin.engines.md import (
    Langevin,
    NoseHooverChain,
    StochasticCellRescaling,
    VelocityVerlet,
    kinetic_energy,
    lj_argon,
    pressure,
    state_from_atoms,
    volume,
)
from atomtwin.engines.md.forces import ASEForceProvider
from atomtwin.toolkit import units as U


class _LangevinP(Langevin):
    needs_stress = True  # NVT that also evaluates the virial, for the pressure


def _run(integ, state, provider, n, every=1, f=None):
    state = integ.init(state, provider)
    out = []
    for i in range(n):
        state = integ.step(state, provider)
        if i % every == 0:
            out.append(f(state) if f else integ.conserved_energy(state))
    return state, np.array(out)


def _block_error(x, n_blocks=20):
    """Standard error of the mean of a correlated series from block averages."""
    b = np.array_split(np.asarray(x), n_blocks)
    return np.std([bb.mean() for bb in b], ddof=1) / np.sqrt(n_blocks)


def _liquid_argon(seed=1, t=120.0):
    a = bulk("Ar", "fcc", a=5.9, cubic=True).repeat((2, 2, 2))
    return state_from_atoms(a, temperature_K=t, seed=seed)


# 1 K of heating per ns: 1.5 k_B x 1 K per atom per 1000 ps.  A drift below this is
# invisible in any production observable; a wrong integrator (non-symplectic, a force
# inconsistent with the energy, a discontinuous cutoff) drifts orders of magnitude more.
DRIFT_BOUND = 1.5 * U.KB * 1.0 / 1000.0  # eV / atom / ps


def _drift(e, dt_out, n_atoms):
    t = np.arange(len(e)) * dt_out
    return abs(np.polyfit(t, e, 1)[0]) / n_atoms


def test_nve_lj_drift_and_second_order_fluctuations():
    s0 = _liquid_argon()
    res = {}
    for dt in (0.01, 0.005):
        _, e = _run(VelocityVerlet(dt), s0, lj_argon(), int(10.0 / dt))  # 10 ps
        res[dt] = e
        assert _drift(e, dt, s0.n_atoms) < DRIFT_BOUND, dt
    # velocity Verlet conserves a shadow Hamiltonian H + O(dt^2): halving dt divides the
    # energy fluctuation by 4.  Finite-sample scatter of the two std's is ~10%: allow 3-5.3.
    ratio = res[0.01].std() / res[0.005].std()
    assert 3.0 < ratio < 5.3, ratio


def test_nve_emt_matches_ase_velocity_verlet():
    # the same algorithm on the same calculator: trajectories agree to rounding growth
    # (Lyapunov amplification over 100 steps of a 32-atom solid stays below 1e-8 Å)
    from ase.calculators.emt import EMT
    from ase.md.verlet import VelocityVerlet as AseVV

    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    s0 = state_from_atoms(a, temperature_K=600.0, seed=2)
    dt = 0.004
    s, _ = _run(VelocityVerlet(dt), s0, ASEForceProvider(EMT()), 100)
    b = a.copy()
    b.set_velocities(s0.velocities.numpy() * U.ASE_TIME_TO_PS)
    b.calc = EMT()
    AseVV(b, timestep=dt * U.PS_TO_ASE_TIME).run(100)
    np.testing.assert_allclose(s.positions.numpy(), b.positions, atol=1e-8)


def test_nve_emt_error_is_the_integrators_dt2_not_emts_cutoff():
    # ASE's EMT multiplies every pair term by a Fermi function w(r) that is cut off at
    # rc_list = rc + 0.5 Å where w = 6.6e-6: the energy jumps when a pair crosses rc_list.
    # Measured: 1.6e-5 eV per crossing for a Cu dimer.  If those jumps caused the NVE
    # energy error it would not depend on dt (dt^0); velocity Verlet's shadow-energy error
    # goes as dt^2.  The measured error (fluctuation and drift) falls 4x per halving of dt
    # (1 ps of 32-atom Cu at 600 K, where the 5th/6th-neighbour gap around rc_list is
    # rarely crossed): the integrator, not EMT's cutoff, sets it.  The 2-3e-6 eV/atom/ps
    # seen at dt = 4 fs is this dt^2 error, not a defect: the honest assertion is the dt^2
    # law of both the fluctuation and the fitted drift.
    from ase import Atoms
    from ase.calculators.emt import EMT

    calc = EMT()
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    a.calc = calc
    a.get_potential_energy()
    e = []
    for r in (calc.rc_list - 1e-7, calc.rc_list + 1e-7):
        d = Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]], cell=[30, 30, 30])
        d.calc = EMT()
        e.append(d.get_potential_energy())
    jump = abs(e[0] - e[1])
    assert 1e-6 < jump < 5e-5, jump  # a real but tiny discontinuity
    s0 = state_from_atoms(a, temperature_K=600.0, seed=2)
    res = {}
    for dt in (0.002, 0.001):
        _, en = _run(VelocityVerlet(dt), s0, ASEForceProvider(EMT()), int(round(1.0 / dt)))
        res[dt] = en
    # from the perfect lattice the shadow-energy offset (~ dt^2 <F^2>) settles within
    # ~0.2 ps as the potential energy thermalises: measure on the last 0.75 ps
    tail = {dt: en[int(round(0.25 / dt)):] for dt, en in res.items()}
    ratio = tail[0.002].std() / tail[0.001].std()
    assert 3.0 < ratio < 5.3, ratio  # dt^2 (a cutoff-jump dominated error: ratio ~ 1)
    # the fitted slope falls 4x too (dt^2; a jump-driven random walk would not care about
    # dt): it is the slow part of the bounded shadow-energy fluctuation seen through a
    # 0.75 ps window (measured 2.7e-7 eV/atom/ps at 1 fs, 1.1e-6 at 2 fs; reaching the
    # 1 K/ns DRIFT_BOUND takes dt = 0.5 fs or a far longer fit window)
    drifts = {dt: _drift(en, dt, s0.n_atoms) for dt, en in tail.items()}
    assert 2.5 < drifts[0.002] / drifts[0.001] < 6.5, drifts


@pytest.mark.parametrize("integ", [
    Langevin(0.01, 120.0, friction=10.0),
    NoseHooverChain(0.01, 120.0, tdamp=0.1, chain=3),
], ids=["langevin", "nhc"])
def test_canonical_kinetic_energy_distribution(integ):
    # canonical K = Gamma(dof/2, kT): mean dof kT/2, variance dof (kT)^2 / 2.
    s0 = _liquid_argon(seed=4)
    s, k = _run(integ, s0, lj_argon(), 6000, f=kinetic_energy)
    k = k[500:]  # equilibration: 5 ps >> 1/γ, tdamp
    dof = 3 * s.n_atoms if isinstance(integ, Langevin) else s.dof  # Langevin also moves the COM
    kt = U.KB * 120.0
    mean, var = dof * kt / 2, dof * kt * kt / 2
    # 4 standard errors (block averages capture the correlation time)
    assert abs(k.mean() - mean) < 4 * _block_error(k), (k.mean(), mean)
    dev = (k - k.mean()) ** 2
    assert abs(dev.mean() - var) < 4 * _block_error(dev), (dev.mean(), var)


@pytest.mark.slow
@pytest.mark.parametrize("aniso", [False, True], ids=["isotropic", "anisotropic"])
def test_npt_pressure_and_compressibility(aniso):
    # solid argon at 40 K; target pressure 0.05 GPa
    t, p0 = 40.0, 0.05 * U.GPA_TO_EV_A3
    a = bulk("Ar", "fcc", a=5.30, cubic=True).repeat((2, 2, 2))
    s0 = state_from_atoms(a, temperature_K=t, seed=8)
    integ = StochasticCellRescaling(0.02, t, p0, compressibility=50.0, tau_p=0.3, friction=5.0,
                                    anisotropic=aniso)

    def observe(st):
        from atomtwin.engines.md.state import kinetic_tensor

        ptens = torch.diagonal(kinetic_tensor(st) / volume(st) - st.stress)
        return (pressure(st), volume(st), *ptens.tolist(), *torch.diagonal(st.cell).tolist())

    s, obs = _run(integ, s0, lj_argon(), 4000, f=observe)
    obs = obs[500:]
    pr, vol = obs[:, 0], obs[:, 1]
    assert abs(pr.mean() - p0) < 4 * _block_error(pr), (pr.mean() / U.GPA_TO_EV_A3)
    if aniso:
        # each diagonal component of the pressure tensor is driven to the target on its own
        for c in range(3):
            pc = obs[:, 2 + c]
            assert abs(pc.mean() - p0) < 4 * _block_error(pc), (c, pc.mean() / U.GPA_TO_EV_A3)
        # the three lengths fluctuate independently: their log-fluctuations are not locked
        # together (isotropic scaling gives correlation exactly 1) but anti-correlated, as
        # the elastic compliance of a cubic solid demands: corr(eps_x, eps_y) = S12/S11
        # = -C12/(C11 + C12) < 0 (Poisson effect; about -0.35 for solid LJ argon)
        eps = np.log(obs[:, 5:8])
        cc = np.corrcoef(eps.T)
        corr = np.array([cc[0, 1], cc[0, 2], cc[1, 2]])
        assert np.all(corr < 0.0) and corr.mean() > -0.9, corr
    else:
        eps = np.log(obs[:, 5:8])
        np.testing.assert_allclose(eps - eps[:, :1], 0.0, atol=1e-12)  # locked: one length
    kt = U.KB * t
    beta_fluct = vol.var() / (kt * vol.mean())
    # independent: -(1/V) dV/dP from NVT mean pressures at ±1.5% around the NPT volume
    v_mean = vol.mean()
    ps = []
    for f in (0.985, 1.015):
        cell = s0.cell * (v_mean * f / volume(s0)) ** (1 / 3)
        st = s0.replace(positions=s0.positions * (cell[0, 0] / s0.cell[0, 0]), cell=cell)
        _, pp = _run(_LangevinP(0.02, t, friction=5.0), st, lj_argon(), 600,
                     f=lambda st: pressure(st))
        ps.append(pp[100:].mean())
    beta_nvt = -(0.03) / (ps[1] - ps[0])
    # the variance of 3500 volume samples correlated over ~tau_p = 15 steps is known to
    # ~sqrt(2/230) ~ 10%; allow 35% (3.5 sigma).  A flexible (anisotropic) cell samples the
    # same volume distribution: var(V) = kT V beta_T holds for either barostat.
    assert abs(beta_fluct / beta_nvt - 1) < 0.35, (beta_fluct, beta_nvt)
