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
# # 08 · Active learning of a potential against a reference calculator
#
# Every potential in the studies atomtwin serves was built by *active learning*: molecular
# dynamics runs with the current model, the model's own uncertainty decides when a
# configuration is new, only then is the expensive reference (DFT) called, and the model is
# updated.  Here the reference is **CHGNet** (a universal potential whose weights ship inside
# its wheel, so nothing is downloaded), standing in for DFT, and the system is the argyrodite
# solid electrolyte **Li₆PS₅Cl** (52 atoms), the electrolyte of the SEI study.
#
# The loop (`atomtwin.engines.active.learn`, or `atomtwin learn config.yaml` on the command
# line):
#
# 1. a handful of **seed structures** (bare: the reference labels them first);
# 2. **walkers** — MD runs with our engine (NVT Langevin with a temperature ramp, NPT with
#    stochastic cell rescaling) driven by the current model;
# 3. every `check_every` steps the **uncertainty** of the most uncertain atom: here the
#    single-model estimate, the posterior variance of a Bayesian linear readout on the
#    model's last-layer per-atom features (FLARE-style local-energy variance), recalibrated
#    to a force standard deviation in eV/Å on the errors measured before each new frame was
#    added;
# 4. above the threshold the frame goes to the reference, joins the dataset, the model is
#    fine-tuned (warm start; a full retrain every few frames) and the walker resumes from
#    *before* the uncertain step.
#
# Everything is written atomically in `output_dir`: a killed run continues with
# `resume=True` without repeating a reference call.  `ATOMTWIN_SMALL=1` (as in CI) shrinks
# every size.  The files go to `tutorial_output/08_active_learning/` (or under
# `$ATOMTWIN_TUTORIAL_OUT`).

# %%
import os
import time
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase.spacegroup import crystal

SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"
OUT = Path(os.environ.get("ATOMTWIN_TUTORIAL_OUT", "tutorial_output")) / "08_active_learning"
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
print("small run" if SMALL else "full run", "- outputs in", OUT)

# %% [markdown]
# ## The structure and the seeds
#
# Li₆PS₅Cl, space group F-43m (a = 9.86 Å): Cl on 4a, the "free" S on 4c, PS₄ tetrahedra
# around P on 4b (S on 16e), Li on 24g (an ordered stand-in for the half-occupied 48h sites).
# Four rattled copies are the seeds; they carry no labels, so the run's first reference
# calls label them.

# %%
cell = crystal(["Li", "P", "S", "S", "Cl"],
               basis=[(0.02, 0.25, 0.25), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), (0.62, 0.62, 0.62),
                      (0.0, 0.0, 0.0)],
               spacegroup=216, cellpar=[9.86, 9.86, 9.86, 90, 90, 90])
print(cell.get_chemical_formula(), len(cell), "atoms")
seeds = []
for k, amplitude in enumerate((0.03, 0.06, 0.1, 0.14)):  # Å: from 300 K-like to hotter than 600 K
    a = cell.copy()
    a.rattle(amplitude, seed=k)
    seeds.append(a)
ase.io.write(OUT / "seeds.extxyz", seeds)
ase.io.write(OUT / "start.extxyz", cell)

# %% [markdown]
# ## The reference
#
# `make_calculator("chgnet")` loads CHGNet 0.3.0 from the installed wheel and silences the
# warnings it prints on every call.  Any ASE calculator works the same way: `"emt"`,
# `"tblite.ase:TBLite"` with `kwargs: {method: GFN2-xTB}`, a DFT code's calculator.

# %%
from atomtwin.engines.active.references import Reference, make_calculator

chgnet = make_calculator("chgnet")
t0 = time.perf_counter()
lab = Reference(chgnet)(cell)
print(f"one CHGNet call: {time.perf_counter() - t0:.2f} s, E = {lab.energy:.3f} eV, "
      f"max |F| = {np.abs(lab.forces).max():.2f} eV/Å")
assert lab.ok

# %% [markdown]
# ## The run
#
# Two walkers: NVT with a ramp 300 → 600 K, and NPT at 600 K and 0 pressure.  The
# threshold is 0.3 eV/Å on the calibrated force σ of the most uncertain atom.

# %%
from atomtwin.engines.active import learn

steps = 60 if SMALL else 2000
config = {
    "output_dir": str(OUT / "run"),
    "seed_frames": str(OUT / "seeds.extxyz"),
    "model": {"r_max": 4.5, "num_layers": 2, "lmax": 1, "mul": 8 if SMALL else 16,
              "num_basis": 6, "radial_hidden": 16, "radial_layers": 1},
    "uncertainty": {"kind": "gp", "check_every": 10, "threshold": 0.3},
    "fit": {"epochs": 25 if SMALL else 100, "update_epochs": 8 if SMALL else 25,
            "full_retrain_every": 10, "lr": 0.01},
    "reference": {"calculator": "chgnet", "timeout_s": 600, "max_consecutive_failures": 5},
    "walkers": [
        {"structure": str(OUT / "start.extxyz"), "ensemble": "langevin", "temperature": 300,
         "temperature_end": 600, "steps": steps, "timestep": 0.002},
        {"structure": str(OUT / "start.extxyz"), "ensemble": "npt", "temperature": 600,
         "pressure": 0.0, "compressibility": 1.0, "steps": steps, "timestep": 0.002},
    ],
    "max_calls": 7 if SMALL else 80,  # the seeds' 4 calls included
    "seed": 0,
    "progress": False,
}
t0 = time.perf_counter()
res = learn(config, overwrite=True, calculator=chgnet)
print(f"{res.n_calls} reference calls ({res.n_failed} failed) in {res.rounds} rounds, "
      f"{res.n_frames} frames, {time.perf_counter() - t0:.0f} s")
print("model:", res.model, "\ndataset:", res.dataset)

# %% [markdown]
# ## The learning curve
#
# `calls.csv` holds one row per reference call: the walker, the MD step, the uncertainty
# that triggered it and the model's force error on that frame *before* it was added — the
# honest measure of how the model does on what it has not seen.

# %%
import csv

from atomtwin.toolkit.plot import PALETTE, axis_label, new_figure, save

rows = list(csv.DictReader(open(res.calls_csv)))
call = np.array([int(r["call"]) for r in rows])
err = np.array([float(r["error_before_forces_rmse"]) for r in rows])
sig = np.array([float(r["sigma"]) for r in rows])
fig, ax = new_figure("single", aspect=0.7)
ok = np.isfinite(err)
ax.plot(call[ok] + 1, err[ok], "o", ms=4, color=PALETTE[1], label="error before adding")
fin = np.isfinite(sig)
ax.plot(call[fin] + 1, sig[fin], "^", ms=4, mfc="none", color=PALETTE[0], label="trigger σ")
ax.axhline(config["uncertainty"]["threshold"], color="0.5", lw=0.8, ls="--", label="threshold")
ax.set_xlabel("reference calls")
ax.set_ylabel(axis_label("force error, σ", "eV/Å"))
ax.set_yscale("log")
ax.legend(fontsize="small", frameon=False)
save(fig, OUT / "learning_curve.png")
fig

# %% [markdown]
# ## Does the learned model run stable MD at the target temperature?
#
# 600 K Langevin MD with the final model through `atomtwin.engines.md`, then its forces
# against CHGNet.  Checks: the run stays finite with the kinetic temperature near 600 K
# (52 atoms: one frame fluctuates by √(2/3N) ≈ 11 %, the mean over the second half of the
# run by a few %; ±25 % allows for the thermostat's approach), and the model explains most
# of the force variance (RMSE below 0.7 × the RMS CHGNet force).  The full run checks the
# forces on frames of the model's own MD; the small run (7 reference calls, a model that
# is far from converged) checks them on a fresh rattled crystal like its seeds and only
# that its short MD stays finite and thermostatted (±35 %).

# %%
from atomtwin.engines.md import Langevin, MLIPForceProvider, state_from_atoms, temperature
from atomtwin.engines.mlip import load_model

model = load_model(res.model)
provider = MLIPForceProvider(model)
integ = Langevin(0.002, 600.0, 5.0)
state = integ.init(state_from_atoms(cell, temperature_K=600.0, seed=1), provider)
temps, frames = [], []
n_md = 100 if SMALL else 2000
for k in range(n_md):
    state = integ.step(state, provider)
    temps.append(temperature(state))
    if (k + 1) % (n_md // 2) == 0:
        a = cell.copy()
        a.positions = state.positions.numpy()
        frames.append(a)
t_mean = float(np.mean(temps[n_md // 2 :]))
print(f"mean T over the second half: {t_mean:.0f} K")
assert np.isfinite(state.positions.numpy()).all()
assert (390 if SMALL else 450) < t_mean < (810 if SMALL else 750)
if SMALL:  # fresh rattled crystals (other seeds than the training ones)
    frames = []
    for k in range(1):
        a = cell.copy()
        a.rattle(0.08, seed=100 + k)
        frames.append(a)
ref_f = np.concatenate([Reference(chgnet)(a).forces for a in frames])
ours = np.concatenate([provider.compute(torch.as_tensor(a.positions), torch.as_tensor(a.cell[:]),
                                        (True,) * 3, tuple(a.get_chemical_symbols())).forces.numpy()
                       for a in frames])
rmse = float(np.sqrt(((ours - ref_f) ** 2).mean()))
rms = float(np.sqrt((ref_f**2).mean()))
print(f"force RMSE vs CHGNet: {rmse:.3f} eV/Å (RMS force {rms:.3f} eV/Å)")
assert rmse < 0.7 * rms

# %% [markdown]
# ## Next
#
# * Resume or extend a run: `learn(config, resume=True)` (or `atomtwin learn config.yaml
#   --resume`) after raising `max_calls` or adding walkers' steps.
# * `model.ckpt` is a training checkpoint: `atomtwin compile run/model.ckpt model.pt2`.
# * Offline selection from an existing trajectory: `atomtwin.engines.active.select_frames`.
# * Committee uncertainty instead of the single-model estimate: `uncertainty: {kind:
#   committee, n_models: 3}` (three models trained, three forward passes per check).
