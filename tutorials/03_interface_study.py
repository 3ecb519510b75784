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
# # 3 · An interface study in depth: phases found by clustering, and the new-phase flag
#
# In a reactive interface simulation nobody labels the atoms for you.  The approach of the
# Li | Li₆PS₅Cl SEI study (arXiv:2506.10944) is to describe every atom by its local environment,
# cluster those environments without supervision, ask which clusters match phases we *know*
# (thermally rattled reference crystals) and flag the ones that match none as candidate new
# phases — then follow where they are and how they grow.
#
# This notebook runs that analysis on atomtwin's default interface, a Pd | Au fcc(100) slab
# with free surfaces simulated with the small Allegro-style potential shipped with atomtwin
# (`atomtwin.data.path("demo", "model.ckpt")`, trained on EMT; `data/demo/make_model.py`
# reproduces it).  `atomtwin demo` runs the same study in one command; here we open every step.
# The files this notebook writes go to `tutorial_output/03_interface_study/` in the folder
# Jupyter runs in (or under `$ATOMTWIN_TUTORIAL_OUT`).

# %%
import json
import os
from pathlib import Path

import atomtwin
import numpy as np
from atomtwin.engines.studies.demo import DemoConfig, build_slab

SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"  # the test suite's small size
OUT = Path(os.environ.get("ATOMTWIN_TUTORIAL_OUT", "tutorial_output")) / "03_interface_study"
OUT.mkdir(parents=True, exist_ok=True)

cfg = DemoConfig.small() if SMALL else DemoConfig()
model = atomtwin.data.path("demo", "model.ckpt")
card = json.loads(atomtwin.data.path("demo", "model.json").read_text())
print(card["val_forces_mae"], "eV/Å validation force MAE")
slab = build_slab(cfg)
slab.write(OUT / "slab.extxyz")
print(slab.get_chemical_formula(), slab.cell.lengths())

# %% [markdown]
# ## The simulation
#
# Langevin MD at the demo's temperature with the trained potential, streamed to netCDF by the MD
# engine (a killed run resumes from its checkpoint; every frame written is kept).

# %%
from atomtwin.engines.md import run

res = run({"structure": str(OUT / "slab.extxyz"),
           "potential": {"kind": "mlip", "model": str(model)},
           "ensemble": "langevin", "temperature": cfg.temperature, "friction": 2.0,
           "timestep": cfg.timestep, "steps": 120 if SMALL else cfg.md_steps, "stride": cfg.stride,
           "output": str(OUT / "interface.nc"), "seed": 1, "progress": False},
          overwrite=True)  # a rerun in the same folder replaces its own scratch run
ds = atomtwin.read(OUT / "interface.nc")
print(ds.sizes["frame"], "frames;", f"{res.ns_per_day:.3f} ns/day")

# %% [markdown]
# ## Environments → clusters
#
# SOAP descriptors of every atom (centre species kept apart), standardised, reduced by PCA,
# clustered by a Gaussian mixture whose number of components is chosen by the Bayesian
# information criterion.  The fit uses a subsample; every environment of every frame is then
# labelled by `predict`, chunk by chunk, so the same code runs on millions of atoms.

# %%
from atomtwin.toolkit.environments import EnvironmentClassifier, identify_phases

n_fit = min(4000, min(16, ds.sizes["frame"]) * ds.sizes["atom"])
clf = EnvironmentClassifier("soap", n_fit=n_fit, max_clusters=6, seed=0).fit(ds)
labels = clf.predict(ds)
bic = np.round(clf.bic_.values, 0) if clf.bic_ is not None else "-"
print("clusters:", clf.n_clusters_, " BIC by number of components:", bic)

# %% [markdown]
# ## Which clusters are known phases?  The new-phase flag
#
# References are bulk fcc Pd and fcc Au at the slab's lattice constant, rattled thermally; a
# cluster is matched when the pipeline puts at least half of a reference's environments into
# it.  Everything else — here the surfaces, the mixed interface layers and any disordered
# region — is flagged `is_new`: a candidate new phase (or an interface) to look at.

# %%
from ase.build import bulk

refs = {"fcc Pd": bulk("Pd", "fcc", a=cfg.a, cubic=True).repeat(3),
        "fcc Au": bulk("Au", "fcc", a=cfg.a, cubic=True).repeat(3)}
table = identify_phases(clf, refs, rattle=0.1)
table[["nearest_reference", "is_new", "centre_species", "distance"]].to_dataframe()

# %%
known = [int(c) for c in table.cluster.values[~table.is_new.values]]
new = [int(c) for c in table.cluster.values[table.is_new.values]]


def reference_of(cluster: int) -> str:
    return str(table.nearest_reference.sel(cluster=cluster).values)


# the bulk of each metal must be recognised as its own reference
assert any(reference_of(c).startswith("fcc Pd") for c in known)
assert any(reference_of(c).startswith("fcc Au") for c in known)
print("known:", known, " new:", new)

# %% [markdown]
# ## What the new clusters are made of
#
# Mean neighbour counts per species (within 3.3 Å, between the first and second fcc shells):
# bulk fcc has 12; surface atoms fewer; interface atoms a Pd/Au mixture.  Representative
# environments (the sampled atoms nearest each cluster centre) go to an extxyz file to open in
# OVITO or ASE's viewer.

# %%
from atomtwin.toolkit.environments import (
    bootstrap_stability,
    neighbour_composition,
    representative_environments,
)

comp = neighbour_composition(ds, labels, r_cut=3.3)
print(comp.to_pandas().round(2))
reps = representative_environments(ds, clf, n_per_cluster=2,
                                   path=OUT / "representatives.extxyz")
ari = bootstrap_stability(clf, n_boot=3 if SMALL else 10, seed=1)
print(f"bootstrap adjusted Rand index {ari.attrs['mean']:.2f} ± {ari.attrs['std']:.2f}")
for c in known:  # bulk environments keep (close to) 12 neighbours
    assert comp.sel(cluster=c).sum() > 10, comp.sel(cluster=c)

# %% [markdown]
# ## Where they are and how they evolve
#
# Fractions of each cluster against time, the profile of each cluster along the interface
# normal, and the thickness of the region the non-bulk clusters occupy, with a growth-law fit
# h ∝ tⁿ (n = ½: diffusion-limited; n = 1: interface-reaction-limited).

# %%
from atomtwin.toolkit.environments import (
    fit_growth_law,
    interphase_thickness,
    phase_fractions,
    spatial_profiles,
)

frac = phase_fractions(labels)
prof = spatial_profiles(ds, labels, axis="z", n_bins=40)
h = interphase_thickness(prof, new, n_interfaces=1)
print(f"non-bulk thickness: {float(h[0]):.1f} -> {float(h[-1]):.1f} Å")
try:
    g = fit_growth_law(h.isel(frame=slice(1, None)))
    print(f"growth exponent n = {float(g['n']):.2f} ± {float(g['n_err']):.2f}")
except ValueError as err:
    print("no growth fit:", err)
# every classified atom is in exactly one cluster
np.testing.assert_allclose(frac.sum("cluster"), 1.0, atol=1e-9)

# %% [markdown]
# ## Mobility along the interface against across it
#
# MSD restricted to a slab around the Pd/Au interface (an atom's pair of frames counts only while
# it stays in the slab), in the plane (xy) and along the normal (z), per dimension.  Motion along
# the interface that exceeds motion through it is the creep mechanism of the SEI study.

# %%
from atomtwin.toolkit.dynamics import msd

z = ds.positions.isel(frame=0).values[:, 2]
sp = ds.species.values
z_if = 0.5 * (z[sp == "Pd"].max() + z[sp == "Au"].min())
region = f"z={z_if - 3:.2f}:{z_if + 3:.2f}"
for s in ("Pd", "Au"):
    m_xy = msd(ds, s, axes="xy", region=region) / 2
    m_z = msd(ds, s, axes="z", region=region)
    k = m_xy.sizes["lag"] // 3
    print(f"{s} near the interface, MSD per dimension at {float(m_xy.lag[k]):.2f} ps: "
          f"in plane {float(m_xy[k]):.3f} Å², across {float(m_z[k]):.3f} Å²")

# %% [markdown]
# ## Figures

# %%
from atomtwin.toolkit.plot import new_figure, save
from atomtwin.toolkit.plot.environments import (
    plot_phase_fractions,
    plot_profile_heatmap,
    plot_reduced_map,
)

fig, axes = new_figure("double", aspect=0.33, ncols=3)
plot_reduced_map(clf.sample_reduced_, clf.sample_labels_, ax=axes[0])
plot_phase_fractions(frac, ax=axes[1])
plot_profile_heatmap(prof, new[0] if new else known[0], ax=axes[2])
save(fig, OUT / "interface_clusters", formats=("png", "pdf"))
