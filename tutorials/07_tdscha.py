# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Quantum nuclei under a THz pulse: SCHA and TD-SCHA on a SrTiO₃-like lattice
#
# In light-atom crystals or at low temperature the nuclei are not classical points: each
# atom is a wave packet whose zero-point spread can be a sizeable fraction of the distance
# to a neighbouring minimum.  SrTiO₃ is the textbook case.  Its polar (ferroelectric) mode
# softens on cooling as if the crystal were about to become ferroelectric, yet it stays
# paraelectric down to 0 K: the Ti ions' zero-point motion smears them over the shallow
# double well, so no polar order sets in (*quantum paraelectricity*).  Intense THz and
# mid-IR pulses drive this mode far from equilibrium.  The simulations of
# arXiv:2408.12421 and arXiv:2505.22791 show energy flowing from the pumped polar mode into
# other phonons, and quantum fluctuations being *suppressed* by resonant pulses to the
# point of inducing ferroelectric order.
#
# This tutorial follows the same route with the two tools of `atomtwin.engines.tdscha`:
#
# 1. **Static SCHA** (self-consistent harmonic approximation): the best Gaussian density
#    matrix at temperature T.  Its centroid and force constants Φ minimise the variational
#    free energy F[Φ] ≥ F_exact (Gibbs–Bogoliubov).  The frequencies are quantum- and
#    temperature-renormalised, and the *free-energy Hessian* gives the physical static
#    phonons, those that go soft at a displacive transition.
# 2. **TD-SCHA** (time-dependent SCHA, arXiv:2408.00902): the Gaussian wave packet evolves
#    in time.  Its centroid R feels the *average* force ⟨f⟩ over the packet, and its width
#    (position–momentum covariances A, B, C) evolves under the *average* curvature ⟨∂²V⟩.
#    The energy ½|P|² + ½tr B + ⟨V⟩ is conserved, and a field adds exactly the work
#    F·P.  We integrate it with velocity Verlet, which is symplectic with an O(dt³) local
#    error.
#
# The material is a toy with the physics of SrTiO₃: a periodic chain of `n` cells, each
# with a soft polar coordinate u (Ti against O, Born charge 7 e, a shallow double well
# k u²/2 + λu⁴ with k < 0) coupled to its neighbours and, cubically (u²h), to a stiff
# infrared-silent mode h.  Its potential is a polynomial, so every Gaussian average is
# exact (no sampling noise).  For a real crystal, replace the model with an ASE calculator
# or an atomtwin MLIP (`ASEProvider`, `MLIPProvider`); the calls stay the same.
#
# `ATOMTWIN_SMALL=1` shortens the runs (as in CI).
#
# The files this notebook writes go to `tutorial_output/07_tdscha/` in the folder Jupyter runs in
# (or under `$ATOMTWIN_TUTORIAL_OUT`).

# %%
import os
from pathlib import Path

import numpy as np
from atomtwin.engines.tdscha import (
    CallableProvider,
    EnsembleAverager,
    GaussianPulse,
    Modes,
    System,
    grid_for_model,
    polar_lattice,
    quartic_1d,
    run_classical,
    run_tdscha,
    scha,
    scha_temperature_scan,
)
from atomtwin.engines.tdscha.averages import ExactAverager
from atomtwin.toolkit.plot import save
from atomtwin.toolkit.plot import tdscha as tplot
from scipy.optimize import minimize

SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"  # the test suite's small size
OUT = Path(os.environ.get("ATOMTWIN_TUTORIAL_OUT", "tutorial_output")) / "07_tdscha"
OUT.mkdir(parents=True, exist_ok=True)
N_CELLS = 4
model = polar_lattice(n_cells=N_CELLS, k_polar=-0.05, quartic=2.0, coupling_j=0.2, k_hard=6.0, cubic=1.0,
                      mass_polar=47.9, mass_hard=16.0, born_charge=7.0)
system = System.from_model(model)
print(system.names)

# %% [markdown]
# ## 1 · The classical picture: a ferroelectric
#
# The harmonic force constants at the symmetric structure (u = h = 0) have a negative
# eigenvalue, the uniform polar displacement (the Γ-point soft mode).  The classical crystal
# therefore relaxes into a polar minimum.  Around that minimum the harmonic approximation is
# stable, and it gives the frequencies a frozen-phonon calculation would report.

# %%
K_eig = np.linalg.eigvalsh(model.K)
print("harmonic force-constant eigenvalues at u = 0 (eV/Å²):", K_eig.round(3))
assert K_eig.min() < 0          # the symmetric structure is classically unstable



def energy(x):
    """Energy (eV) of one configuration x (Å), shape (n_dof,)."""
    return model.evaluate(x[None])[0][0]


def grad(x):
    """Gradient of the energy (eV/Å); evaluate returns the forces."""
    return -model.evaluate(x[None])[1][0]


x_start = np.r_[np.full(N_CELLS, 0.05), np.zeros(N_CELLS)]
x_ferro = minimize(energy, x_start, jac=grad, method="BFGS", options={"gtol": 1e-12}).x
print(f"classical polar minimum: u = {x_ferro[0]:.4f} Å, h = {x_ferro[N_CELLS]:.5f} Å, "
      f"E = {1e3 * energy(x_ferro) / N_CELLS:.3f} meV per cell below the barrier top")

# %% [markdown]
# ## 2 · Static SCHA: quantum paraelectricity
#
# We minimise the SCHA free energy at each temperature, starting from the classical polar
# minimum.  With exact averages each minimisation takes a few milliseconds.  Three things to
# read off the scan:
#
# * **the centroid returns to u = 0 at every T, even at 0 K**: the zero-point spread of u
#   (≈ 0.09 Å) exceeds the position of the minimum (0.08 Å), so the Gaussian sits across
#   both wells.  This is quantum paraelectricity.  (The stiff mode h is displaced,
#   h = −c⟨u²⟩/k_h: the fluctuations of u alone push it through the u²h coupling, just as
#   zero-point motion expands a real lattice);
# * **the soft mode is real and hardens with temperature**: the anharmonic λu⁴ term,
#   averaged over larger fluctuations, stiffens the mode.  SrTiO₃'s soft mode behaves the
#   same way above its quantum-saturated regime;
# * **free energy**: the SCHA value is a rigorous upper bound on the exact one.  The harmonic
#   crystal about the classical polar minimum gives a *higher* free energy at 0 K, so the
#   quantum paraelectric state wins.  At higher T the harmonic curve falls below SCHA's,
#   because it ignores the anharmonic stiffening and so overestimates the entropy.  The
#   harmonic value is not a bound: the two curves measure how wrong harmonic thermodynamics
#   is, not which phase is stable.
#
# The *physical* phonons (dashed; Hessian of the minimised free energy, which includes the
# cubic u²h coupling through the bubble and the fourth-order term) lie slightly below the
# auxiliary ones.  They are the static response a frozen-phonon experiment at temperature T
# would measure.

# %%
temps = [0.0, 50.0, 100.0, 200.0, 300.0] if SMALL else list(np.arange(0.0, 401.0, 25.0))
scan = scha_temperature_scan(system, temps, model=model, R0=system.to_mass_scaled(x_ferro),
                             harmonic_reference=x_ferro, tol=1e-10)
assert bool(scan.converged.all())
assert np.abs(scan.centroid.values[:, :N_CELLS]).max() < 1e-6    # u = 0: paraelectric at every T
assert scan.physical_frequency.values.min() > 0                   # no soft mode at the SCHA level
assert scan.free_energy.values[0] < scan.harmonic_free_energy.values[0]   # quantum paraelectric wins at 0 K
assert np.all(np.diff(scan.frequency.values[:, 0]) > 0)          # the polar mode hardens with T
print("SCHA Γ polar mode (THz):", scan.frequency.values[:, 0].round(3))
print("physical (free-energy Hessian):", scan.physical_frequency.values[:, 0].round(3))
fig, axes = tplot.plot_scha_temperature(scan, per=N_CELLS)
save(fig, OUT / "scha_vs_T.png", formats=("png",))

# %% [markdown]
# ## 3 · A THz pulse: TD-SCHA beside classical MD
#
# We start from the 0 K SCHA state (a pure Gaussian: A B − C² = ħ²/4 per mode) and shine a
# Gaussian-enveloped pulse resonant with the SCHA soft mode, polarised along the polar
# coordinate.  Its peak field is 0.6 MV/cm, typical of intense THz sources.  The field
# couples through the Born charges: the force on u_i is Z E(t).  Energies are projected on
# the SCHA phonons at t = 0, so the energy of each mode (½p² + ½ω²q² of the centroid plus
# ½⟨δp²⟩ + ½ω²⟨δq²⟩ of the fluctuations) can be followed in time.
#
# The classical run starts from the same mean position, at rest, under the same pulse.

# %%
res0 = scha(system, 0.0, model=model, tol=1e-10)
modes = Modes.from_kappa(res0.phi, res0.R)
f_soft = float(res0.frequencies.min())
pulse = GaussianPulse(amplitude=0.006, frequency=f_soft, t0=1.0, width=0.3)    # V/Å, THz, ps, ps
dt, n_steps = 2e-3, (1500 if SMALL else 3000)
td = run_tdscha(system, res0.state(), ExactAverager(model, system), dt, n_steps, pulse=pulse,
                modes=modes, output_every=10, covariances="diagonal")
cl = run_classical(system, model, dt, n_steps, pulse=pulse, modes=modes, output_every=10)
print(f"pulse carrier {f_soft:.3f} THz; absorbed: TD-SCHA {1e3 * td.work.values[-1]:.2f} meV, "
      f"classical {1e3 * cl.work.values[-1]:.2f} meV")
# energy balance dE/dt = F.P: the conserved-energy drift is second order in dt (here ~1e-6 eV)
balance = abs(td.energy.values[-1] - td.energy.values[0] - td.work.values[-1])
assert balance < 1e-3 * td.work.values[-1], balance
fig, ax = tplot.plot_pulse(td)
save(fig, OUT / "pulse.png", formats=("png",))

# %% [markdown]
# ### Energy flow between modes
#
# The uniform field couples only to the Γ polar mode (mode 0).  Classically the energy stays
# there: every cell moves in phase, so the other polar modes (finite wave vector) are never
# excited.  In TD-SCHA the large centroid motion changes the *average curvature* felt by all
# polar modes, ⟨∂²V/∂u²⟩ = k + 12λ(u² + ⟨δu²⟩).  This modulation at twice the drive
# frequency parametrically pumps their zero-point fluctuations, so energy flows from the
# pumped mode into the finite-wave-vector modes, through their quantum fluctuations alone.
# This is the mechanism behind the upconversion and the energy flow described in
# arXiv:2408.12421.  We plot the energy each mode *gained* (the zero-point energy
# subtracted).

# %%
gain_td = td.mode_energy.values - td.mode_energy.values[:1]
gain_cl = cl.mode_energy.values - cl.mode_energy.values[:1]
zb = N_CELLS - 1            # modes are ordered by frequency: index 3 is the zone-boundary polar mode
print("TD-SCHA energy gained per mode (meV):", (1e3 * gain_td[-1]).round(2))
print("classical energy gained per mode (meV):", (1e3 * gain_cl[-1]).round(2))
# the zone-boundary mode gains more than half of its zero-point energy (it keeps growing later)
assert gain_td[:, zb].max() > 0.5 * td.mode_energy.values[0, zb]
assert np.abs(gain_cl[:, 1:N_CELLS]).max() < 1e-12                # classically it stays empty
fig, ax = tplot.plot_mode_energies(td, modes=range(N_CELLS), subtract_initial=True, total=False)
tplot.plot_mode_energies(cl, modes=[0], subtract_initial=True, total=False, ax=ax, linestyle="--",
                         label_suffix=" classical")
save(fig, OUT / "mode_energies.png", formats=("png",))

# %% [markdown]
# ### Quantum fluctuations squeezed by light
#
# The same parametric mechanism reshapes the *width* of the wave packet.  After the pulse
# the position variance of each polar coordinate, ⟨δu²⟩ (the quantum uncertainty of where
# the Ti ion is), oscillates at about twice the mode frequency.  In its dips it falls to a
# fraction of the zero-point value: the ion is then better localised than in the ground
# state, while its momentum spread grows (A B − C² stays ħ²/4 per mode: a *squeezed*
# state).  Here the squeezing is periodic and the centroid comes back to zero: a pulse
# resonant with the *soft* mode only shakes the paraelectric state.  Section 4 shows the
# route of arXiv:2505.22791, a resonant mid-IR pulse on a *hard* mode, turning the
# paraelectric state into a polar one.  A classical point particle has no width variable
# at all.

# %%
var_u = td.position_variance.values[:, 0]
t = td.time.values
after = t > pulse.t0 + 2 * pulse.width
print(f"<du²>: ground state {var_u[0]:.5f} Å², after the pulse min {var_u[after].min():.5f}, "
      f"mean {var_u[after].mean():.5f} Å²")
assert var_u[after].min() < 0.5 * var_u[0]      # squeezed below half the zero-point variance
fig, axes = tplot.plot_centroid_and_variance(td, classical=cl, dof="u0")
save(fig, OUT / "lattice_u0.png", formats=("png",))

# %% [markdown]
# ## 4 · Light-induced polar order: pumping a hard mode
#
# arXiv:2505.22791 shows that in SrTiO₃ a resonant mid-IR pulse on a *hard* polar mode
# (the Ti–O stretching near 17–20 THz), coupled nonlinearly to the soft mode, can suppress
# the soft mode's quantum fluctuations enough to localise the ions in a ferroelectric well:
# a polar state that quantum paraelectricity forbids at equilibrium.  We reproduce this
# mechanism on a model lattice (`atomtwin.engines.tdscha.light_order`): a chain of 4 cells,
# each with a soft polar coordinate s (along z) and a hard IR-active coordinate h (along x),
#
#     V = Σᵢ [ a sᵢ²/2 + b sᵢ⁴ + J (sᵢ − sᵢ₊₁)²/2 + k_h hᵢ²/2 + b_h hᵢ⁴ + g sᵢ² hᵢ² ]
#
# with a = −1 eV/Å², b = 18 eV/Å⁴ (classical minima at ±0.118 Å, barrier 3.5 meV per
# cell), J = 0.5 eV/Å², k_h = 18 eV/Å², b_h = 300 eV/Å⁴, g = −100 eV/Å⁴ (allowed by cubic
# symmetry between a z- and an x-polarised mode; g² < 4 b b_h keeps V bounded), masses
# 30 and 16 amu, and a Born charge of 6 e on h.  The pulse is polarised along x: it drives
# h only and keeps the s → −s symmetry.
#
# **Ground state.**  At T = 0 the SCHA Gaussian sits at s = 0: the soft branch's zero-point
# energy (6.0 meV per cell) exceeds the barrier, and the fluctuation term 12 b ⟨δs²⟩ makes
# the soft curvature positive (Γ frequency 1.25 THz).  The hard mode is at 18.6 THz.  The
# symmetric state is the SCHA *minimum*, not a metastable one: relaxing the Gaussian at a
# uniform polar centroid always costs energy (`energy_profile`).  This needs checking,
# because the SCHA of a double well has a first-order polar transition: with b = 15 eV/Å⁴
# the same lattice has a polar SCHA minimum 0.16 meV per cell below the symmetric state.
#
# **Seed.**  A centroid exactly at s = 0 stays there by symmetry (we check it to the last
# bit), so every run starts with a tiny uniform displacement, 10⁻³ Å; the mirror seed gives
# the mirror state, and seeds 10× and 100× smaller the same final state within 0.01 Å.
#
# **The classical comparison.**  A classical crystal at T = 0 sits in a polar minimum
# already, so "classical MD from rest" shows order without any pulse (checked below: from
# rest at the seed it swings between 0.001 and 0.17 Å, inside the positive well): it is
# no comparison.  We run classical MD of the same lattice, under the same pulse, from the same
# initial distribution: 512 trajectories drawn from the Wigner function of the SCHA
# Gaussian (same mean, same fluctuations, same energy), so only the equations of motion
# differ.  Its ensemble mean is the classical counterpart of the TD-SCHA centroid.

# %%
from atomtwin.engines.tdscha.light_order import (
    SoftHardLattice,
    energy_profile,
    ground_state,
    is_polar,
    late_polarization,
    pump_classical,
    pump_tdscha,
    scan_pulses,
)
from atomtwin.engines.tdscha.light_order_plot import plot_light_order, plot_pulse_map

lattice = SoftHardLattice()
gs = ground_state(lattice)
print(f"SCHA soft (Gamma) {gs.soft_thz:.3f} THz, hard {gs.hard_thz:.2f} THz; sqrt<ds²> = "
      f"{np.sqrt(gs.var_soft):.3f} Å vs classical minimum {lattice.classical_minimum:.3f} Å; "
      f"soft zero-point energy {1e3 * gs.soft_zpe:.1f} meV > barrier {1e3 * lattice.barrier:.1f} meV")
assert gs.kappa_soft > 0 and lattice.barrier < gs.soft_zpe     # quantum paraelectric at T = 0
profile = energy_profile(lattice, np.linspace(0.01, 1.3 * lattice.classical_minimum, 12), ground=gs)
print("SCHA energy at a uniform polar centroid, meV per cell above s = 0:", (1e3 * profile).round(3))
assert np.all(profile > 0)                                       # no polar SCHA minimum

amps = [0.003, 0.01, 0.05]            # V/Å: 0.3, 1 and 5 MV/cm peak field, Gaussian envelope 0.3 ps
n_traj = 128 if SMALL else 512
quantum = [pump_tdscha(lattice, a, duration=10.0, seed=1e-3, ground=gs) for a in amps]
classical = [pump_classical(lattice, a, duration=10.0, seed=1e-3, n_traj=n_traj, ground=gs) for a in amps]
for a, q, c in zip(amps, quantum, classical, strict=True):
    print(f"{100 * a:4.2g} MV/cm: late <s> TD-SCHA {late_polarization(q):+.3f} Å "
          f"(polar: {is_polar(q, lattice)}), classical {late_polarization(c):+.4f} Å; absorbed "
          f"{1e3 * q.work.values[-1] / lattice.n_cells:.1f} meV/cell")
assert is_polar(quantum[1], lattice)                                    # 1 MV/cm: polar state
assert not is_polar(quantum[0], lattice) and not is_polar(quantum[2], lattice)  # too weak / too hot
assert not any(is_polar(c, lattice) for c in classical)                 # classical: never
# why classical MD "from rest" is no comparison: at T = 0 the classical lattice is polar anyway
lat_model = lattice.model()
x_seed = np.r_[np.full(lattice.n_cells, 1e-3), np.zeros(lattice.n_cells)]
rest = run_classical(System.from_model(lat_model), lat_model, 2e-3, 5000, x_init=x_seed, output_every=10)
s_rest = rest.centroid.values[:, : lattice.n_cells].mean(1)
print(f"classical from rest at the seed, no pulse: <s> swings between {s_rest.min():.4f} and "
      f"{s_rest.max():.3f} Å (mean {s_rest.mean():.3f} Å): one well, without any pulse")
assert s_rest.min() > 0 and s_rest.max() > lattice.classical_minimum
zero = pump_tdscha(lattice, 0.01, duration=4.0, seed=0.0, ground=gs)
assert np.abs(zero.polarization.values).max() == 0.0                    # symmetry: no seed, no order
seeds = [1e-4, 1e-3, -1e-3] if SMALL else [1e-5, 1e-4, 1e-3, -1e-3]
late = {s: late_polarization(pump_tdscha(lattice, 0.01, duration=10.0, seed=s, ground=gs)) for s in seeds}
print("1 MV/cm, late <s> (Å) for seeds", {f"{s:g} Å": round(v, 3) for s, v in late.items()})
assert abs(late[1e-4] - late[1e-3]) < 0.02 and late[-1e-3] == -late[1e-3]   # the seed only starts it
note = (f"{lattice.describe()}\nSCHA: soft {gs.soft_thz:.2f} THz, hard {gs.hard_thz:.2f} THz; pulse at "
        f"{gs.hard_thz:.2f} THz, Gaussian envelope 0.3 ps; seed 0.001 Å; classical: {n_traj} Wigner-sampled "
        "trajectories")
fig, axes = plot_light_order(quantum, classical, x_min=lattice.classical_minimum, note=note)
save(fig, OUT / "light_order.png", formats=("png",))

# %% [markdown]
# Read the three columns from left to right:
#
# * **0.3 MV/cm**: too weak.  The pump deposits 13 meV per cell, the soft curvature stays
#   positive and the centroid stays at the seed.
# * **1 MV/cm**: the pump puts 49 meV per cell into the hard mode.  Through g < 0 its
#   coherent oscillation lowers the soft curvature at s = 0,
#   ⟨∂²V/∂s²⟩ = a + 12 b (⟨s⟩² + ⟨δs²⟩) + 2 g (⟨h⟩² + ⟨δh²⟩), below zero for a few hundred
#   femtoseconds.  The seeded centroid grows exponentially, and as it leaves zero the soft
#   mode's spread falls from 0.084 Å (its zero-point value, dotted) to 0.069 Å on average
#   (the variance drops by a third).  The fluctuation stiffening 12 b ⟨δs²⟩ that kept the
#   lattice paraelectric is reduced accordingly, and the centroid stays in one well,
#   oscillating inside it (between 0.03 and 0.15 Å), long after the pulse; in a 40 ps run
#   it is still there, its oscillation settled to 0.08–0.14 Å.  Which well depends on the phase of the
#   seed's small soft-mode oscillation when the curvature turns negative, not on the
#   seed's size.  This is the metastable polar state: the static SCHA has no polar minimum
#   at all, it exists only with the energy the pulse left in the lattice.
# * **5 MV/cm**: too strong.  The hard mode, stiffened by its own amplitude, detunes from
#   the carrier (it keeps 32 meV per cell), but during the pulse it drives the soft
#   curvature so far below zero that the centroid overshoots the well (to −0.17 Å at
#   1.5 ps) and then swings between the wells: no order.

# Classical MD tells a different story at every amplitude.  From the same initial
# distribution, the classical trajectories at once roll into the wells (their spread jumps
# from 0.084 to 0.12 Å within 0.2 ps, at every amplitude): each one ends polar, with a
# random sign (the mean |cell-averaged s| of a trajectory is 0.08–0.12 Å), so the ensemble
# mean stays at zero and the pulse does not change that.  The
# quantum Gaussian, in contrast, moves as a whole.  Two caveats: TD-SCHA's Gaussian is a
# mean-field description, and in a large crystal the symmetry would be broken by a field or
# strain (our seed), or domains of both signs would form; and the undamped model keeps the
# hard mode's energy, which a real crystal would pass on to other phonons (the
# metastability then rests on the reduced fluctuations, as in arXiv:2505.22791).
#
# ### Where it happens: a map over pulse parameters
#
# The final (last 3 ps) mean centroid over peak field and carrier frequency; dots mark runs
# that ended in one well.  The full map (11 × 11 runs) takes a few minutes; the small size
# runs 3 × 3.

# %%
if SMALL:
    map_amps, map_freqs = [0.001, 0.01, 0.08], [15.0, round(gs.hard_thz, 2), 22.0]
else:
    map_amps = [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.08]
    map_freqs = [14.0, 15.0, 16.0, 17.0, 18.0, round(gs.hard_thz, 2), 19.0, 20.0, 21.0, 22.0, 23.0]
pmap = scan_pulses(lattice, map_amps, map_freqs, duration=10.0)
pmap.to_netcdf(OUT / "light_order_map.nc")
print(pmap.polar.to_pandas())
res_col = map_freqs.index(round(gs.hard_thz, 2))
assert bool(pmap.polar.values[map_amps.index(0.01), res_col])          # resonant, 1 MV/cm: polar
assert not pmap.polar.values[map_amps.index(0.001)].any()             # 0.1 MV/cm: nowhere
assert not pmap.polar.values[:, 0].any()                              # 14-15 THz: off resonance
fig, ax = plot_pulse_map(pmap)
save(fig, OUT / "light_order_map.png", formats=("png",))

# %% [markdown]
# The polar state needs the carrier within about half a THz above the hard mode
# (18.6–19 THz from 0.5 to 1 MV/cm) and at least ~20 meV per cell absorbed: at 0.3 MV/cm
# or below nothing happens at any frequency.  At stronger fields the window moves to
# higher carriers (19–20 THz at 2 MV/cm, 18–21 THz at 3 MV/cm), because the hard mode
# stiffens with its amplitude (the b_h h⁴ term).  Above ~3 MV/cm the outcome becomes
# irregular from cell to cell: there the dynamics is chaotic, and whether a run ends in a
# well can change with the time step (at 8 MV/cm, resonant, it does between dt = 2 and
# 1 fs), so read single cells there as samples, not as converged results.  Bright cells
# without a dot are hot runs whose centroid swings between the wells with a bias; the
# criterion (one sign over the last 3 ps, mean beyond half the classical minimum) rejects
# them.  Off resonance (14–17 and 22–23 THz at every field, 18 THz below 3 MV/cm) the
# pulse deposits little energy and the lattice stays paraelectric.
#
# The envelope matters too (resonant runs, not shown): longer pulses lower the threshold
# field (0.3 MV/cm suffices with a 0.5 ps envelope, 1 MV/cm is needed at 0.1 ps).  What
# counts is the energy the hard mode keeps: a pulse that first pumps it and then, with the
# mode detuned by its own amplitude, takes the energy back (1 MV/cm with a 0.5 ps
# envelope keeps 0.1 meV per cell) leaves the lattice paraelectric.

# %% [markdown]
# ## 5 · How good is the Gaussian? An exact quantum reference in 1D
#
# TD-SCHA is an approximation: the wave packet is forced to stay Gaussian.  In one
# dimension the Schrödinger equation can be solved exactly on a grid (`exact1d.Grid1D`,
# split-operator propagation), so we compare the three levels of theory for a single polar
# unit (same double well, mass and Born charge), driven by a pulse at its SCHA frequency:
#
# * **exact** quantum dynamics of the 0 K ground state;
# * **TD-SCHA** from the 0 K SCHA state (its free energy lies above the exact ground-state
#   energy, as the variational principle requires);
# * **classical** MD from rest at the same centroid.
#
# During and shortly after the pulse TD-SCHA tracks the exact centroid far better than
# classical MD, because the classical particle does not feel the zero-point-averaged
# (stiffer) potential.  Later the exact wave packet splits between the two wells and
# tunnels (its variance grows), which no Gaussian can describe.  Take TD-SCHA as reliable on
# the picosecond scale of the pump, not for the long-time tunnelling dynamics.

# %%
q1 = quartic_1d(k=-0.05, quartic=2.0, mass=47.9, born_charge=7.0)
s1 = System.from_model(q1)
r1 = scha(s1, 0.0, model=q1, tol=1e-12)
grid = grid_for_model(q1, -1.0, 1.0, 128)
E0, psi0 = grid.ground_state()
print(f"SCHA free energy {1e3 * r1.free_energy:.4f} meV >= exact ground state {1e3 * E0:.4f} meV")
assert r1.free_energy >= E0
p1 = GaussianPulse(amplitude=0.006, frequency=float(r1.frequencies[0]), t0=1.0, width=0.3)
n1 = 1250 if SMALL else 2500
ex = grid.propagate(psi0, None, dt, n1, output_every=10, force=lambda t: float(q1.born_charges[0] @ p1(t)))
td1 = run_tdscha(s1, r1.state(), ExactAverager(q1, s1), dt, n1, pulse=p1, output_every=10)
cl1 = run_classical(s1, q1, dt, n1, pulse=p1, output_every=10)
early = td1.time.values <= 1.5
err_td = np.abs(td1.centroid.values[early, 0] - ex.x_mean.values[early]).max()
err_cl = np.abs(cl1.centroid.values[early, 0] - ex.x_mean.values[early]).max()
print(f"max centroid error up to 1.5 ps: TD-SCHA {err_td:.3f} Å, classical {err_cl:.3f} Å")
assert err_td < 0.6 * err_cl
fig, axes = tplot.plot_centroid_and_variance(td1, exact=ex, classical=cl1)
save(fig, OUT / "exact_1d.png", formats=("png",))

# %% [markdown]
# ## 6 · From exact averages to an ensemble (what a real crystal uses)
#
# For an ASE calculator or an MLIP, the averages ⟨V⟩, ⟨f⟩ and ⟨∂²V⟩ come from an ensemble
# of configurations drawn from the Gaussian, evaluated in one batched call per step.  The
# random vectors are drawn once, in antithetic pairs, and reused at every step (*correlated
# sampling*).  The stochastic equations are then themselves Hamiltonian and conserve energy,
# and the curvature comes from the same forces by Gaussian integration by parts.  Here the
# polynomial model stands in for the calculator.  The stochastic centroid follows the
# exact-average one.  Its error shrinks as 1/√N: with 64 configurations it is a few per cent
# of the amplitude, with 1024 a fraction of a per cent (the 1/√N law is measured in
# `tests/regression/test_tdscha_stochastic.py`).

# %%
prov = CallableProvider(model.evaluate)                      # any batched (S, n) -> energies, forces
n_ens = 64 if SMALL else 1024
n_short = 750
avg = EnsembleAverager(prov, system, n_ens, rng=0, phi_ref=res0.phi)
td_ens = run_tdscha(system, res0.state(), avg, dt, n_short, pulse=pulse, modes=modes, output_every=10,
                    covariances="none")
ref = td.isel(frame=slice(0, td_ens.sizes["frame"]))
dev = np.abs(td_ens.centroid.values[:, 0] - ref.centroid.values[:, 0]).max()
amp = np.abs(ref.centroid.values[:, 0]).max()
print(f"ensemble of {n_ens}: max centroid deviation {dev:.4f} Å for an amplitude of {amp:.3f} Å")
assert dev < 0.2 * amp

# %% [markdown]
# ## Where next
#
# * A real crystal: `System.from_atoms(atoms, born_charges)` with `ASEProvider(atoms, calc)`
#   (one calculator copy per ensemble member keeps neighbour lists warm) or
#   `MLIPProvider(model, atoms)` (the whole ensemble in one network call).
# * The same runs from the command line: `atomtwin scha config.yaml` and
#   `atomtwin tdscha config.yaml` (with `classical: true` for the MD comparison) write
#   netCDF results that `atomtwin.toolkit.plot.tdscha` plots directly.
# * Screening of the field inside the crystal: `run_tdscha(..., screening=eps_inf)`.
