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
# # 05 · Infrared spectrum and dielectric function from a learned electric enthalpy
#
# An infrared spectrometer measures how a crystal's **dipole** follows the oscillating field of
# light.  When the atoms vibrate, the cell dipole changes by the **Born effective charges**
# Z*_{a,ij} = ∂P_i/∂R_aj: an ion that drags its electron cloud along carries a dynamic charge
# that can differ much from its formal one.  The modes with a dipole (the transverse-optical,
# TO, phonons at Γ) absorb; the same charges split the longitudinal mode (LO) away from the TO
# one and set the static dielectric constant ε₀ above the electronic one ε∞.
#
# A machine-learned **electric enthalpy** H(R, E) (arXiv:2403.17207) gives all of this from one
# scalar function of the positions R and an applied field E:
#
# | quantity | derivative | unit |
# |---|---|---|
# | forces | −∂H/∂R | eV/Å |
# | polarization (cell dipole) | P = −∂H/∂E | e·Å |
# | Born charges | Z* = −∂²H/∂E∂R | e |
# | electronic polarizability | α = −∂²H/∂E² | e·Å²/V |
#
# Because P, Z* and α are derivatives of one function, P is a conservative field, and because H
# depends only on interatomic vectors (a rigid translation changes nothing), the **acoustic sum
# rule** Σ_a Z*_a = 0 holds exactly.  A molecular dynamics run with this model stores P and Z*
# at every frame, which is what the IR and dielectric analyses need.
#
# **The material.** To be able to check every number we use a *model crystal* whose answers are
# known in closed form: rock-salt "NaCl" with Morse bonds, rigid ions of charge ±1 e plus a
# bond-charge term that raises the Born charge to 1.2 e, and an electronic polarizability
# (`atomtwin.engines.mlip.electric_crystal.RockSaltCrystal`).  An `ElectricPotential` (a
# NequIP-style equivariant network) was trained on its energies, forces, polarizations and Born
# charges by `data/electric/make_model.py`; it ships with atomtwin as
# `atomtwin.data.path("electric", "rocksalt_model.pt")`.  For a real material, replace the model
# crystal with DFT (or DFPT) labels: the rest of the notebook is unchanged.
#
# `ATOMTWIN_SMALL=1` (used in CI) shortens the runs and, for speed, runs the MD with the exact
# model crystal; the full run uses the learned model.
#
# The files this notebook writes go to `tutorial_output/05_ir_dielectric/` in the folder Jupyter runs in
# (or under `$ATOMTWIN_TUTORIAL_OUT`).

# %%
import os
from pathlib import Path

import atomtwin
import numpy as np
import torch
from atomtwin.engines.mlip.data import collate
from atomtwin.engines.mlip.electric import load_electric
from atomtwin.engines.mlip.electric_crystal import RockSaltCrystal, random_frames
from atomtwin.engines.mlip.electric_md import ElectricCalculator, GaussianPulse, run_field_md
from atomtwin.toolkit import units as U
from atomtwin.toolkit.phonons import band_structure, compute_phonons, frequencies_at
from atomtwin.toolkit.plot import PALETTE, axis_label, new_figure, save
from atomtwin.toolkit.plot.phonons import plot_band_structure
from atomtwin.toolkit.plot.spectra import plot_dielectric, plot_ir, plot_vdos
from atomtwin.toolkit.spectra import dielectric_function, ir_spectrum, vdos

SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"  # the test suite's small size
OUT = Path(os.environ.get("ATOMTWIN_TUTORIAL_OUT", "tutorial_output")) / "05_ir_dielectric"
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)

exact = RockSaltCrystal(n_rep=2)                 # 64 atoms, the truth
learned = load_electric(atomtwin.data.path("electric", "rocksalt_model.pt"))
print(f"closed forms: nu_TO = {exact.nu_to():.3f} THz, Z* = {exact.born_charge():.2f} e, "
      f"eps_inf = {exact.eps_inf():.3f}, eps_0 = {exact.eps_static():.3f}, nu_LO = {exact.nu_lo():.3f} THz")


# %% [markdown]
# ## 1 · What the network learned: Born charges and polarizability
#
# Evaluate the learned model and the exact crystal on configurations it has never seen
# (a new random seed, thermal-size displacements and fields up to 0.05 V/Å).  All electric
# outputs come from one call: the model differentiates H twice with respect to E and R.

# %%
def evaluate(model, frame):
    b = collate([frame], r_max=model.r_max, species=model.species)
    b["field"] = torch.as_tensor(frame["field"]).reshape(1, 3)
    return {k: v.detach().numpy() for k, v in model(b).items()}

test = random_frames(RockSaltCrystal(1), 6, seed=2024)
z_err, f_err, asr = [], [], []
for fr in test:
    out = evaluate(learned, fr)
    z_err.append(np.abs(out["born_charges"] - fr["born_charges"]).ravel())
    f_err.append(np.abs(out["forces"] - fr["forces"]).ravel())
    asr.append(np.abs(out["born_charges"].sum(0)).max())
z_err, f_err = np.concatenate(z_err), np.concatenate(f_err)
print(f"Born charges: MAE {z_err.mean():.4f} e (of |Z*| = 1.2 e);  forces: MAE {f_err.mean():.4f} eV/Å")
print(f"acoustic sum rule: max |sum_a Z*_a| = {max(asr):.1e} e")

ideal = RockSaltCrystal(1).ideal_structure()
out = evaluate(learned, {"numbers": ideal.numbers, "pos": ideal.positions, "cell": ideal.cell.array,
                         "pbc": np.ones(3, bool), "field": np.zeros(3)})
z_na = out["born_charges"][0]
eps_inf = 1 + np.trace(out["polarizability"][0]) / 3 / (U.EPSILON0 * ideal.get_volume())
print("learned Z*(Na) at the ideal lattice:\n", z_na.round(3))
print(f"learned eps_inf = {eps_inf:.3f} (exact {exact.eps_inf():.3f})")
assert max(asr) < 1e-12                       # exact by construction
assert z_err.mean() < 0.03                    # 2.5 % of Z*: IR intensities (~Z*^2) to 5 %
assert abs(z_na[0, 0] - exact.born_charge()) < 0.03 and abs(eps_inf - exact.eps_inf()) < 0.05 * exact.eps_inf()

# %% [markdown]
# ## 2 · Molecular dynamics that records P and Z*
#
# A Langevin run at 100 K in the 64-atom cell.  The weak friction (2 ps⁻¹) thermalises the
# modes; its only trace in the spectra is a Lorentzian line width γ/2π ≈ 0.3 THz.  Every frame
# stores the velocities, the polarization P and the Born charges Z* (three extra backward
# passes through the network per frame).

# %%
T = 100.0
md_model = exact if SMALL else learned
n_steps = 1000 if SMALL else 20000
LAG = 1.0 if SMALL else 1.5                      # correlation length (ps): resolution 1/LAG THz
traj = run_field_md(md_model, exact.ideal_structure(), dt=0.005, n_steps=n_steps, every=5,
                    temperature=T, friction=2.0, seed=3, path=str(OUT / "md.nc"))
print(traj[["polarization", "born_charges", "velocities"]])
print(f"run: {float(traj.time[-1]):.1f} ps with {type(md_model).__name__}, frames every {float(traj.time[1]):.3f} ps")

# %% [markdown]
# ## 3 · Vibrational density of states
#
# The mass-weighted velocity autocorrelation gives the VDOS, normalised to 3 degrees of freedom
# per atom (with the run's kinetic temperature): every normal mode counts once, dark or bright.  Rock salt has acoustic bands up to
# ~3.5 THz and optical ones between the TO frequency (5 THz) and the top of the spectrum.

# %%
res_v = vdos(traj, max_lag=LAG, n_blocks=4, max_frequency=12.0, unit="THz")
fig, ax = plot_vdos(res_v)
ax.axvline(exact.nu_to(), color="0.5", ls=":", lw=0.8)
save(fig, OUT / "vdos", formats=("png",))
total = np.trapezoid(res_v["vdos_total"].values, res_v["frequency"].values)
print(f"integral of the VDOS: {total:.1f} (3N = {3 * traj.sizes['atom']})")
# normalised by the run's own kinetic temperature (3N degrees of freedom): 3N up to the trapezoid rule
# and the part of the lag-window's leakage beyond 12 THz
assert abs(total - 3 * traj.sizes["atom"]) < 0.03 * 3 * traj.sizes["atom"]

# %% [markdown]
# ## 4 · Infrared absorption, with quantum corrections
#
# The absorption α(ν)n(ν) is the spectrum of the dipole current J = Σ_a Z*_a·v_a (exact at each
# frame from the stored Born charges and velocities: no finite differences of P).  Only the TO
# mode carries a dipole, so only it absorbs.
#
# Classical MD gives the classical line shape.  **Quantum correction factors** restore
# detailed balance; for a harmonic crystal the "harmonic" factor makes the classical formula
# exact, the "standard" and "Schofield" factors are common alternatives for anharmonic systems.
# At 100 K and 5 THz (hν/k_BT = 2.4) they differ visibly in intensity, never in position.

# %%
fig, ax = new_figure()
spectra = {}
for i, qc in enumerate(("harmonic", "standard", "schofield")):
    spectra[qc] = ir_spectrum(traj, temperature=T, max_lag=LAG, n_blocks=4, unit="THz",
                              max_frequency=12.0, quantum_correction=qc)
    plot_ir(spectra[qc], ax=ax, label=qc, color=PALETTE[i])
ax.axvline(exact.nu_to(), color="0.5", ls=":", lw=0.8)
ax.legend(frameon=False)
save(fig, OUT / "ir", formats=("png",))
ir = spectra["harmonic"]
nu = ir["frequency"].values
peak = nu[np.argmax(ir["absorption"].values)]
print(f"IR peak {peak:.2f} THz = {peak * U.THZ_TO_INV_CM:.0f} cm^-1; TO {exact.nu_to():.2f} THz; "
      f"resolution {ir.attrs['resolution_thz']:.2f} THz; source: {ir.attrs['source']}")
assert ir.attrs["source"] == "born_charges"
# within the resolution 1/LAG of the correlation (the anharmonic shift at 100 K is far smaller)
assert abs(peak - exact.nu_to()) < ir.attrs["resolution_thz"]

# %% [markdown]
# ## 5 · Dielectric function ε(ω)
#
# In conducting (tin-foil) boundary conditions, the fluctuations of the cell dipole give the
# susceptibility (fluctuation–dissipation theorem):
# ε(ω) = ε∞ + β/(3Vε₀) [⟨δP²⟩ + iω ∫₀^∞ ⟨δP(0)·δP(t)⟩ e^{iωt} dt].
# ε∞ comes from the learned polarizability α.  For a crystal with one polar mode the result is a
# **Lorentz oscillator**, ε(ω) = ε∞ + (ε₀ − ε∞) ω_TO²/(ω_TO² − ω² − iγω): ε'' peaks at ω_TO,
# ε' crosses zero at ω_LO, and the static limit is ε₀ = ε∞ + Z*²/(ε₀ V μ ω_TO²).

# %%
eps = dielectric_function(traj, eps_inf=eps_inf, temperature=T, max_lag=LAG, n_blocks=4,
                          max_frequency=12.0)
nu_e = eps["frequency"].values
w, w_to = 2 * np.pi * nu_e, 2 * np.pi * exact.nu_to()
gamma = 2.0                                      # the thermostat friction, 1/ps
lorentz = exact.eps_inf() + (exact.eps_static() - exact.eps_inf()) * w_to**2 / (w_to**2 - w**2 - 1j * gamma * w)
fig, axes = plot_dielectric(eps)
axes[0].plot(nu_e, lorentz.real, color="0.3", ls="--", lw=0.8, label="Lorentz oscillator")
axes[1].plot(nu_e, lorentz.imag, color="0.3", ls="--", lw=0.8)
axes[0].set_ylim(-15, 25)
axes[0].legend(frameon=False)
save(fig, OUT / "dielectric", formats=("png",))
e0, e0_err = float(eps["eps_static"]), float(eps["eps_static_std_err"])
print(f"static eps from fluctuations: {e0:.2f} +- {e0_err:.2f};  Lorentz oscillator: {exact.eps_static():.2f}")
# sampling error of a short run (block standard error) plus 10 % for the anharmonic softening at 100 K
assert abs(e0 - exact.eps_static()) < 3 * e0_err + 0.1 * exact.eps_static()

# %% [markdown]
# ## 6 · Phonons at Γ and the LO–TO splitting
#
# The same learned model is an ASE calculator (`ElectricCalculator`), so phonopy computes its
# force constants by finite displacements (`atomtwin.toolkit.phonons.compute_phonons`).  A short-range
# model has no macroscopic field, so its Γ optical modes are all TO.  The **non-analytic
# correction** with the learned Born charges and ε∞ restores the long-range Coulomb field of a
# longitudinal wave and lifts the LO mode: near Γ, ω_LO² = ω_TO² + Z*²/(ε₀ ε∞ V μ), the
# Lyddane–Sachs–Teller relation.

# %%
from ase.build import bulk

prim = bulk("NaCl", "rocksalt", a=2 * exact.d0)
calc = ElectricCalculator(learned)
prim.calc = calc
prim.get_potential_energy()
z_prim = calc.results["born_charges"]
phonon = compute_phonons(prim, ElectricCalculator(learned), supercell=(3, 3, 3), primitive_matrix=None,
                         born_charges=z_prim, epsilon_inf=eps_inf * np.eye(3))
bands = band_structure(phonon, npoints=41 if SMALL else 101)
fig, axes = plot_band_structure(bands)
save(fig, OUT / "phonons", formats=("png",))
f_near = np.sort(frequencies_at(phonon, [[1e-3, 0, 0]])[0])
nu_to_ph, nu_lo_ph = f_near[3], f_near[5]
lst = nu_to_ph * np.sqrt(1 + z_prim[0, 0, 0] ** 2 / (U.EPSILON0 * eps_inf * prim.get_volume() * exact.reduced_mass
                                                     * (2 * np.pi * nu_to_ph) ** 2 * U.AMU_A2_PS2_TO_EV))
print(f"learned phonons at Γ: TO {nu_to_ph:.3f} THz (exact {exact.nu_to():.3f}); LO {nu_lo_ph:.3f} THz "
      f"(LST with the learned Z*, eps_inf: {lst:.3f}; exact {exact.nu_lo():.3f})")
assert abs(nu_to_ph - exact.nu_to()) < 0.05 * exact.nu_to()
assert abs(nu_lo_ph - lst) < 0.02 * lst

# %% [markdown]
# ## 7 · Driving the polar mode with a THz pulse
#
# The field is an input of the model, so MD under a time-dependent field needs nothing new:
# the force is −∂H/∂R at E(t), i.e. F₀ + Z*ᵀE.  A Gaussian pulse resonant with the TO mode
# (5 THz, a 0.12 ps rms envelope, 0.02 V/Å = 2 MV/cm) sets the whole ionic sublattice ringing; the
# polarization oscillates at ν_TO and keeps ringing after the pulse (no friction here).

# %%
pulse = GaussianPulse((0.02, 0.0, 0.0), t0=0.4, width=0.12, frequency=exact.nu_to())
drive = run_field_md(exact, exact.ideal_structure(), field=pulse, dt=0.005, n_steps=320 if SMALL else 800,
                     every=2, temperature=None, born_every=0)
t = drive["time"].values
fig, ax = new_figure()
ax.plot(t, drive["polarization"].values[:, 0], color=PALETTE[0], label="P_x")
ax2 = ax.twinx()
ax2.plot(t, drive["electric_field"].values[:, 0], color=PALETTE[1], lw=0.7, label="E_x")
ax.set_xlabel(axis_label("Time", "ps"))
ax.set_ylabel(axis_label("P_x", "e Å"))
ax2.set_ylabel(axis_label("E_x", "V/Å"))
save(fig, OUT / "pulse", formats=("png",))
after = t > pulse.t0 + 3 * pulse.width           # the field is off (< 1 % of its peak)
px = drive["polarization"].values[after, 0]
spec = np.abs(np.fft.rfft(px - px.mean(), 4096))
f_ring = np.fft.rfftfreq(4096, t[1] - t[0])[np.argmax(spec)]
print(f"after the pulse P rings at {f_ring:.2f} THz (TO {exact.nu_to():.2f} THz)")
assert abs(f_ring - exact.nu_to()) < 1.0 / (t[after][-1] - t[after][0])   # the resolution of the window

# %% [markdown]
# ## Take-aways
#
# * One learned scalar H(R, E) gives forces, P, Z* and α consistently; the acoustic sum rule
#   and the equivariance of P and Z* hold by construction, not by training.
# * An MD run that stores Z* and velocities gives the IR spectrum without finite differences;
#   the polarization fluctuations give ε(ω), whose static limit reproduces the Lorentz
#   oscillator and whose zero crossing is the LO frequency.
# * phonopy with the learned calculator and Born charges gives the LO–TO splitting; it agrees
#   with the Lyddane–Sachs–Teller relation, the same physics seen from the harmonic side.
