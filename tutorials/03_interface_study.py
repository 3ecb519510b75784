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
# # 3 · The Li | Li₆PS₅Cl interface in depth: reactions, phases found without labels, the new-phase flag
#
# Lithium metal against the argyrodite solid electrolyte Li₆PS₅Cl is not stable: at contact
# the PS₄³⁻ units are reduced and an interphase grows, in the family of Li₂S, Li₃P and LiCl
# (as experiments report) — plus environments that match no known crystal.  The SEI study this
# toolkit is built around (arXiv:2506.10944) found them by describing every atom by its local
# environment, clustering those environments without supervision, asking which clusters match
# phases we *know* (reference crystals at the run's temperature) and flagging the rest as new.
#
# `atomtwin demo` runs this study in one command (under 2 minutes on two cores).  This
# notebook opens every step and says why each choice was made, and shows how to run the same
# analysis on **your own LAMMPS dump**.  Files go to `tutorial_output/03_interface_study/` in
# the folder Jupyter runs in (or under `$ATOMTWIN_TUTORIAL_OUT`); `ATOMTWIN_SMALL=1` (as in the
# tests) shortens everything.

# %%
import os
from pathlib import Path

import atomtwin
import numpy as np
from atomtwin.engines.studies.li_argyrodite.study import StudyConfig, build_structure

SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"  # the test suite's small size
OUT = Path(os.environ.get("ATOMTWIN_TUTORIAL_OUT", "tutorial_output")) / "03_interface_study"
OUT.mkdir(parents=True, exist_ok=True)
cfg = StudyConfig.small() if SMALL else StudyConfig()

# %% [markdown]
# ## The structure, and why it looks like this
#
# * An **ordered Li₆PS₅Cl cell** from the published F-43m Wyckoff positions (Deiseroth et al.
#   2008, Kraft et al. 2017): PS₄ on 4b, free S²⁻ on 4c, Cl on 4a, one Li of each 48h pair.
# * A **bcc Li(100)** slab on a Li₆PS₅Cl(100) slab cut between whole PS₄ units (no P–S bond is
#   cut; the slab keeps the bulk composition and no charge), periodic along z: two contacts.
# * **CHGNet's lattice constants** (10.00 and 3.408 Å): the potential was learned against
#   CHGNet, so both bulks start unstrained for it; the 2.2 % misfit of the 3×3 Li cell is split.
# * A **2.5 Å gap** at each contact and **no relaxation of the joined sandwich**: relaxing it at
#   0 K already starts the reaction.  At 2.5 Å the largest force is below 1 eV/Å.

# %%
it = build_structure(cfg)
atoms = it.atoms
region = atoms.arrays["region"]  # 0: metal, 1: electrolyte (at the start)
print(atoms.get_chemical_formula(), len(atoms), "atoms; cell", np.round(atoms.cell.lengths(), 2))
print(f"Li cell {it.li_cell}, misfit {it.misfit_percent:.2f} %, strain", it.strain_percent)
start = atoms.copy()
del start.arrays["region"]
start.write(OUT / "start.extxyz")

# %% [markdown]
# ## The potential, and how much to trust it
#
# The shipped potential was learned by atomtwin's active learning against CHGNet 0.3.0
# (`python -m atomtwin.engines.studies.li_argyrodite.make_model` reproduces it; `atomtwin demo
# --retrain` reruns it).  Its training included reacting interface configurations: a model
# trained on bulk phases alone does not reproduce the reaction.  A first check needs no CHGNet
# at all: the shipped CHGNet run of the reacting 106-atom sandwich carries CHGNet's forces, so
# the model's force error on it, relative to the mean force, tells how well it knows the
# reaction.  (The demo's `check` stage also recomputes frames of the model's *own* trajectory
# with CHGNet.)

# %%
from atomtwin.engines.mlip import Calculator
from atomtwin.toolkit.io.ase_io import dataset_to_atoms

model = atomtwin.data.path("li_argyrodite", "model.ckpt")
calc = Calculator.from_checkpoint(str(model))
ref = atomtwin.read(atomtwin.data.path("li_argyrodite", "chgnet_small_400K.nc"))
err, scale = [], []
for f in np.linspace(0, ref.sizes["frame"] - 1, 3 if SMALL else 8).round().astype(int):
    a = dataset_to_atoms(ref, int(f))
    f_chgnet = ref.forces.isel(frame=int(f)).values
    a.calc = calc
    err.append(np.abs(a.get_forces() - f_chgnet).mean())
    scale.append(np.abs(f_chgnet).mean())
print(f"force MAE {np.mean(err):.3f} eV/Å = {100 * np.mean(err) / np.mean(scale):.0f} % "
      f"of the mean |F| ({np.mean(scale):.3f} eV/Å) on the reacting contact")
assert np.mean(err) < 0.35 * np.mean(scale)  # a model that learned nothing sits near 100 %

# %% [markdown]
# ## The simulation: 400 K, a strong thermostat
#
# * **400 K**: below the melting point of Li (453.7 K), so the metal stays a bcc crystal we can
#   recognise, while the contact still reacts within a picosecond.
# * **Langevin, friction 20 ps⁻¹**: the reduction releases ~0.23 eV per atom within ~1 ps; a
#   thermostat removes excess heat at a rate ~3 k_B ΔT γ per atom, so γ = 20 ps⁻¹ keeps the run
#   ~45 K above the set point, below melting (γ = 2 ps⁻¹ would run hundreds of K hot).
# * **1 fs** steps (Li is light).

# %%
from atomtwin.engines.md import run

steps = cfg.md_steps  # 2.5 ps (small: 1 ps)
res = run({"structure": str(OUT / "start.extxyz"),
           "potential": {"kind": "mlip", "model": str(model)},
           "ensemble": "langevin", "temperature": cfg.temperature,
           "initial_temperature": cfg.temperature, "friction": cfg.friction,
           "timestep": cfg.timestep, "steps": steps, "stride": cfg.stride,
           "output": str(OUT / "md.nc"), "seed": cfg.seed, "progress": False},
          overwrite=True)  # a rerun in the same folder replaces its own run
print(f"{steps} steps, {res.wall_s:.0f} s, {steps / res.wall_s:.0f} steps/s")

# %% [markdown]
# ## Your own run: a LAMMPS dump
#
# Nothing below depends on atomtwin having run the MD.  To show it, the trajectory is written
# as the dump LAMMPS writes with `dump 1 all custom 10 traj.lammpstrj id type x y z`, and read
# back with `atomtwin.read` — for your own dump, pass its path, its type → element map and
# the time between dumped steps.  The analysis needs positions, the cell and the species only.

# %%
md = atomtwin.read(OUT / "md.nc")
types = {"Cl": 1, "Li": 2, "P": 3, "S": 4}
species = md.species.values.astype(str)
with open(OUT / "traj.lammpstrj", "w") as fh:
    for f in range(md.sizes["frame"]):
        cell = md.cell.isel(frame=f).values
        fh.write(f"ITEM: TIMESTEP\n{f * cfg.stride}\nITEM: NUMBER OF ATOMS\n{len(species)}\n"
                 "ITEM: BOX BOUNDS pp pp pp\n"
                 + "".join(f"0.0 {cell[k, k]:.6f}\n" for k in range(3))
                 + "ITEM: ATOMS id type x y z\n")
        for i, (s, r) in enumerate(zip(species, md.positions.isel(frame=f).values, strict=True)):
            fh.write(f"{i + 1} {types[s]} {r[0]:.5f} {r[1]:.5f} {r[2]:.5f}\n")

ds = atomtwin.read(OUT / "traj.lammpstrj", species_map="1=Cl,2=Li,3=P,4=S",
                   timestep_ps=cfg.timestep)
print(ds.sizes["frame"], "frames,", ds.sizes["atom"], "atoms, t =",
      f"{float(ds.time[0]):.2f}-{float(ds.time[-1]):.2f} ps")

# %% [markdown]
# ## Reactions: which bonds break, which species form
#
# `atomtwin.toolkit.reactions` builds a bond graph per frame from covalent-radius cutoffs with
# **hysteresis** (a bond forms below one distance and breaks above a larger one, so a
# vibration is not a reaction), follows the connected components (PS₄, PS₃, isolated S, ...)
# and counts the bond events with error bars.

# %%
from atomtwin.toolkit.reactions import reactions

rx = reactions(ds, progress=False, contact_events=False)
summary = rx.summary()
print("P-S bonds:", summary["bonds"]["P-S"])
print("species (first -> last):",
      {k: (v["first"], v["last"]) for k, v in summary["species"].items()})
print("reactions:", summary.get("reactions", {}))
print("P by S / P by Li:", summary["coordination"]["P by S"], summary["coordination"].get("P by Li"))

# %% [markdown]
# ## Environments, references, and the new-phase flag
#
# Each centre species gets its own classifier (SOAP with r_cut 3.5 Å — the first coordination
# shells, since the products are only a few Å across; PCA; a Gaussian mixture whose size BIC
# chooses), so the few P atoms are not outvoted by the many Li.  The references are bcc Li,
# Li₆PS₅Cl, Li₂S, Li₃P and LiCl, each a bulk cell of at least 200 atoms run for 0.5 ps with
# the same potential at the run's temperature (`thermal_references`).  Why not rattle the
# crystals with Einstein-model amplitudes (`reference_environments`, the toolkit's default
# for a user without a potential)?  Rattling is harmonic and keeps every Li on its site, but
# the argyrodite's Li sublattice disorders within ~0.2 ps at 400 K (CHGNet's own bulk run:
# each P gains 0.25-1.25 Li within 3 Å in the first picosecond; none in a rattled crystal),
# and a rattled reference then calls the intact bulk electrolyte's PS₄ "new".  A cluster is
# **matched** to its nearest reference when their means are closer than the combined spread
# (normalised distance ≤ 1), or to a reference that "claims" it (half of that reference's
# environments fall into the cluster) within 1.5 spreads.  Otherwise it is **new**.
#
# How to read a new-phase flag: look at (1) its centre species and how many atoms it holds
# over time (noise is small and flickers; a phase grows), (2) its neighbour composition (a
# Li₂S-like S with P or Cl nearby, a P with one S and five Li: an intermediate of the
# reduction), (3) its nearest reference and distance (1.1 is "almost", 2 is "nothing like
# it"), (4) where it sits (the profile below) and (5) its representative environments,
# written to extxyz to open in OVITO or ASE's viewer.

# %%
from atomtwin.engines.studies.li_argyrodite.analysis import analyse
from atomtwin.engines.studies.li_argyrodite.references import thermal_references

refs = thermal_references(model, cfg.temperature, OUT / "references",
                          steps=200 if SMALL else 500, seed=cfg.seed, lattice=cfg.lattice)
info = analyse(ds, OUT, cfg, region, seed=cfg.seed, references=refs)
for c in info["clusters"]:
    if c["atoms_first"] or c["atoms_last"]:
        print(f"cluster {c['cluster']:2d} {c['centre_species']:2s} {c['phase']:9s} "
              f"(nearest {c['nearest_reference'].split(':')[0]}, d = {c['distance']:.2f}) "
              f"atoms {c['atoms_first']:3d} -> {c['atoms_last']:3d}  "
              f"neighbours within 3 Å {c['neighbours_3A']}")
print("new clusters:", info["new_clusters"], "-> representatives in new_environments.extxyz")

# %% [markdown]
# ### Reading one flag
#
# The largest new cluster at the end of the run, read the five ways listed above.  Its
# representative environments (centre first, neighbours within 4 Å) are in
# `new_environments.extxyz`; `ase.io.read(path, index=":")` gives them as `Atoms` with
# `info["cluster"]`.

# %%
import ase.io
import xarray as xr
from atomtwin.engines.studies.li_argyrodite.study import contact_planes, signed_distance

results = xr.open_dataset(OUT / "results.nc", engine="h5netcdf").load()
new = [c for c in info["clusters"] if c["phase"] == "new"]
if new:
    c = max(new, key=lambda c: c["atoms_last"])
    k = c["cluster"]
    count = (results.labels == k).sum("atom").values
    cell_z = float(ds.cell.values[0, 2, 2])
    planes = contact_planes(ds.positions.values[0, :, 2], region, cell_z)
    s_end = signed_distance(ds.positions.values[-1, :, 2], planes, cell_z)
    where = s_end[results.labels.values[-1] == k]
    print(f"cluster {k}: {c['centre_species']} centres, {count[0]} -> {count[-1]} atoms "
          f"(max {count.max()}); first shell {c['neighbours_3A']}")
    print(f"nearest reference {c['nearest_reference']} at d = {c['distance']:.2f}"
          f"{'' if c['same_first_shell'] else ' (but another first-shell chemistry)'}")
    print("its atoms at the end sit at", np.round(np.sort(where), 1), "Å from the contact")
    reps = [a for a in ase.io.read(OUT / "new_environments.extxyz", index=":")
            if a.info["cluster"] == k]
    print(len(reps), "representative environments, e.g.", reps[0].get_chemical_formula()
          if reps else "-")

# %% [markdown]
# A flag whose atoms sit deep in a bulk region, with that bulk's first shell (a Li with three
# S in the electrolyte), is the thermal tail of the bulk's own environments, not a new
# phase.  A flag to study grows with time, at the contact, with a first shell no reference
# has: for example an S among six or seven Li with a P nearby (Li₂S-like, P substituted), or
# a P with one or two S and five Li (a reduction intermediate on the way to Li₃P).

# %% [markdown]
# ## Where the phases are, and how fast the interphase grows
#
# Profiles use the signed distance from the initial contact plane (metal < 0), both contacts
# folded together.  The interphase growth per contact is the integral of the local fraction
# of environments that are no longer those of the bulk their atom started in (product-like,
# unmatched, or the other bulk's: a metal Li that gained S neighbours matches an argyrodite
# Li site -- lithium turned into a sulfide) minus its value at the start.  It leaves out an S
# reduced out of a PS₄ unit: among six or seven Li only, it matches the argyrodite's own free
# S²⁻ better than crystalline Li₂S (eight Li); the reactions module counts those.  The error
# bar is the spread of the two contacts, and a growth law h = A tⁿ is fitted (n = ½:
# diffusion-limited, n = 1: reaction-limited).  Li mobility is measured by the region each Li
# starts in, in plane against across.

# %%
print("phase fractions first:", {k: round(v, 3) for k, v in info["phase_fraction_first"].items()})
print("phase fractions last: ", {k: round(v, 3) for k, v in info["phase_fraction_last"].items()})
print("interphase growth (Å):", np.round(info["interphase_growth_A"], 2), "growth law:",
      info["growth_law"])
mob = info["mobility"]
for r in ("bulk Li", "interface", "bulk electrolyte"):
    a, b = mob[f"{r} in plane"], mob[f"{r} across"]
    print(f"{r:17s} D_eff in plane {a['D_eff']:.3f} ± {a['D_eff_err']:.3f}, "
          f"across {b['D_eff']:.3f} ± {b['D_eff_err']:.3f} Å²/ps")
np.testing.assert_allclose(results.phase_fraction.sum("phase"), 1.0, atol=1e-9)

# %% [markdown]
# ## A figure: the interphase grows
#
# The growth per contact against time, the band spanning the two contacts, and the fitted
# growth law.  `atomtwin demo` writes this figure and seven more (fractions, profiles,
# reactions, coordination, Li mobility, the model checks) with the same colours for the same
# phase in every one (`figures.PHASE_COLOURS`).

# %%
from atomtwin.engines.studies.li_argyrodite.figures import PHASE_COLOURS
from atomtwin.toolkit.plot import axis_label, new_figure, save

fig, ax = new_figure("single", aspect=0.75)
t = results.time.values - results.time.values[0]
h, e = results.interphase_thickness.values, results.interphase_thickness_err.values
ax.fill_between(t, h - e, h + e, color=PHASE_COLOURS["new"], alpha=0.25, lw=0,
                label="spread of the two contacts")
ax.plot(t, h, color=PHASE_COLOURS["new"], label="mean of the two contacts")
g = info["growth_law"]
if "n" in g:
    ax.plot(t, results.interphase_fit.values, "k--", lw=0.8,
            label=f"$h = A t^n$, n = {g['n']:.2f} ± {g['n_err']:.2f}")
ax.set_xlabel(axis_label("time", "ps"))
ax.set_ylabel(axis_label("interphase growth", "Å"))
fig.legend(loc="outside lower center", ncol=2, frameon=False, fontsize=7)
save(fig, OUT / "interphase_growth", formats=("png", "pdf"))
