"""Generate tutorials/03_interface_study.ipynb (outputs stripped).  Run: python tutorials/_make_03.py"""

from pathlib import Path

import nbformat as nbf

cells = []
md = lambda s: cells.append(nbf.v4.new_markdown_cell(s.strip()))  # noqa: E731
code = lambda s: cells.append(nbf.v4.new_code_cell(s.strip()))  # noqa: E731

md("""
# 3 · An interface study in depth: phases found by clustering, and the new-phase flag

In a reactive interface simulation nobody labels the atoms for you.  The approach of the
Li | Li₆PS₅Cl SEI study (arXiv:2506.10944) is to describe every atom by its local environment,
cluster those environments without supervision, ask which clusters match phases we *know*
(thermally rattled reference crystals) and flag the ones that match none as candidate new
phases — then follow where they are and how they grow.

This notebook runs that analysis on atomtwin's default interface, a Pd | Au fcc(100) slab
with free surfaces simulated with the small Allegro-style potential shipped in `data/demo/`
(trained on EMT; `data/demo/make_model.py` reproduces it).  `atomtwin demo` runs the same
study in one command; here we open every step.
""")
code("""
import os, json
from pathlib import Path
import numpy as np
import atomtwin
DATA = Path(os.environ.get("ATOMTWIN_DATA", "../data"))
SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"
from atomtwin.engines.studies.demo import DemoConfig, build_slab
cfg = DemoConfig.small() if SMALL else DemoConfig()
model = DATA / "demo" / "model.ckpt"
print(json.loads(model.with_suffix(".json").read_text())["val_forces_mae"], "eV/Å validation force MAE")
slab = build_slab(cfg)
slab.write("slab.extxyz")
print(slab.get_chemical_formula(), slab.cell.lengths())
""")
md("""
## The simulation

Langevin MD at the demo's temperature with the trained potential, streamed to netCDF by the MD
engine (a killed run resumes from its checkpoint; every frame written is kept).
""")
code("""
from atomtwin.engines.md import run
res = run({"structure": "slab.extxyz", "potential": {"kind": "mlip", "model": str(model)},
           "ensemble": "langevin", "temperature": cfg.temperature, "friction": 2.0,
           "timestep": cfg.timestep, "steps": 120 if SMALL else cfg.md_steps, "stride": cfg.stride,
           "output": "interface.nc", "seed": 1, "progress": False})
ds = atomtwin.toolkit.read("interface.nc")
print(ds.sizes["frame"], "frames;", f"{res.ns_per_day:.3f} ns/day")
""")
md("""
## Environments → clusters

SOAP descriptors of every atom (centre species kept apart), standardised, reduced by PCA,
clustered by a Gaussian mixture whose number of components is chosen by the Bayesian
information criterion.  The fit uses a subsample; every environment of every frame is then
labelled by `predict`, chunk by chunk, so the same code runs on millions of atoms.
""")
code("""
from atomtwin.toolkit.environments import EnvironmentClassifier, identify_phases
n_fit = min(4000, min(16, ds.sizes["frame"]) * ds.sizes["atom"])
clf = EnvironmentClassifier("soap", n_fit=n_fit, max_clusters=6, seed=0).fit(ds)
labels = clf.predict(ds)
print("clusters:", clf.n_clusters_, " BIC by number of components:", np.round(clf.bic_.values, 0) if clf.bic_ is not None else "-")
""")
md("""
## Which clusters are known phases?  The new-phase flag

References are bulk fcc Pd and fcc Au at the slab's lattice constant, rattled thermally; a
cluster is matched when the pipeline puts at least half of a reference's environments into
it.  Everything else — here the surfaces, the mixed interface layers and any disordered
region — is flagged `is_new`: a candidate new phase (or an interface) to look at.
""")
code("""
from ase.build import bulk
refs = {"fcc Pd": bulk("Pd", "fcc", a=cfg.a, cubic=True).repeat(3),
        "fcc Au": bulk("Au", "fcc", a=cfg.a, cubic=True).repeat(3)}
table = identify_phases(clf, refs, rattle=0.1)
table[["nearest_reference", "is_new", "centre_species", "distance"]].to_dataframe()
""")
code("""
known = [int(c) for c in table.cluster.values[~table.is_new.values]]
new = [int(c) for c in table.cluster.values[table.is_new.values]]
# the bulk of each metal must be recognised as its own reference
assert any(str(table.nearest_reference.sel(cluster=c).values).startswith("fcc Pd") for c in known)
assert any(str(table.nearest_reference.sel(cluster=c).values).startswith("fcc Au") for c in known)
print("known:", known, " new:", new)
""")
md("""
## What the new clusters are made of

Mean neighbour counts per species (within 3.3 Å, between the first and second fcc shells):
bulk fcc has 12; surface atoms fewer; interface atoms a Pd/Au mixture.  Representative
environments (the sampled atoms nearest each cluster centre) go to an extxyz file to open in
OVITO or ASE's viewer.
""")
code("""
from atomtwin.toolkit.environments import neighbour_composition, representative_environments, bootstrap_stability
comp = neighbour_composition(ds, labels, r_cut=3.3)
print(comp.to_pandas().round(2))
reps = representative_environments(ds, clf, n_per_cluster=2, path="representatives.extxyz")
ari = bootstrap_stability(clf, n_boot=3 if SMALL else 10, seed=1)
print(f"bootstrap adjusted Rand index {ari.attrs['mean']:.2f} ± {ari.attrs['std']:.2f}")
for c in known:   # bulk environments keep (close to) 12 neighbours
    assert comp.sel(cluster=c).sum() > 10, comp.sel(cluster=c)
""")
md("""
## Where they are and how they evolve

Fractions of each cluster against time, the profile of each cluster along the interface
normal, and the thickness of the region the non-bulk clusters occupy, with a growth-law fit
h ∝ tⁿ (n = ½: diffusion-limited; n = 1: interface-reaction-limited).
""")
code("""
from atomtwin.toolkit.environments import phase_fractions, spatial_profiles, interphase_thickness, fit_growth_law
frac = phase_fractions(labels)
prof = spatial_profiles(ds, labels, axis="z", n_bins=40)
h = interphase_thickness(prof, new, n_interfaces=1)
print("non-bulk thickness: %.1f -> %.1f Å" % (float(h[0]), float(h[-1])))
try:
    g = fit_growth_law(h.isel(frame=slice(1, None)))
    print(f"growth exponent n = {float(g['n']):.2f} ± {float(g['n_err']):.2f}")
except ValueError as err:
    print("no growth fit:", err)
np.testing.assert_allclose(frac.sum("cluster"), 1.0, atol=1e-9)   # every classified atom in one cluster
""")
md("""
## Mobility along the interface against across it

MSD restricted to a slab around the Pd/Au interface (an atom's pair of frames counts only while
it stays in the slab), in the plane (xy) and along the normal (z), per dimension.  Motion along
the interface that exceeds motion through it is the creep mechanism of the SEI study.
""")
code("""
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
""")
md("""
## Figures
""")
code("""
from atomtwin.toolkit.plot import new_figure, save
from atomtwin.toolkit.plot.environments import plot_phase_fractions, plot_profile_heatmap, plot_reduced_map
fig, axes = new_figure("double", aspect=0.33, ncols=3)
plot_reduced_map(clf.sample_reduced_, clf.sample_labels_, ax=axes[0])
plot_phase_fractions(frac, ax=axes[1])
plot_profile_heatmap(prof, new[0] if new else known[0], ax=axes[2])
save(fig, "interface_clusters", formats=("png", "pdf"))
""")

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
Path(__file__).with_name("03_interface_study.ipynb").write_text(nbf.writes(nb))
