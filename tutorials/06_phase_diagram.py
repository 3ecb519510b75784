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
# # 06 · A pressure–temperature phase diagram from an ensemble of MD runs
#
# A phase diagram is built from many simulations: one per state point (P, T), each reduced
# to a few **order parameters** that tell a crystal from a liquid; the runs are then
# **classified** into phases, a **boundary** is drawn between them with an honest
# uncertainty band, and its slope is the **Clausius–Clapeyron** dT/dP = T Δv/Δh.
#
# Here the material is the Lennard-Jones (LJ) model of argon (σ = 3.405 Å, ε/k_B = 119.8 K),
# small enough to run a whole grid in seconds, with a well-known melting line to compare with.
# The same steps apply to your own runs: `atomtwin.engines.studies.phase_points:run_point` is only the default
# *point function*; any `f(P, T, protocol, seed) -> trajectory` can take its place.
#
# `ATOMTWIN_SMALL=1` shrinks the grid and the runs (as in CI).
#
# The files this notebook writes go to `tutorial_output/06_phase_diagram/` in the folder Jupyter runs in
# (or under `$ATOMTWIN_TUTORIAL_OUT`).

# %%
import os
from pathlib import Path

import numpy as np
from atomtwin.engines.studies.phase_points import physical, reduced
from atomtwin.toolkit.phases import (
    PhaseSpec,
    classify_phases,
    clausius_clapeyron,
    phase_boundary,
    run_ensemble,
)

SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"  # the test suite's small size
OUT = Path(os.environ.get("ATOMTWIN_TUTORIAL_OUT", "tutorial_output")) / "06_phase_diagram"
OUT.mkdir(parents=True, exist_ok=True)
P_red = [1.0, 4.0] if SMALL else [1.0, 2.5, 4.0, 6.0]
T_red = [0.5, 0.8, 1.1, 1.4, 1.8] if SMALL else [0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.8]
pressures = [physical(P_red=p)["P"] for p in P_red]        # GPa
temperatures = [physical(T_red=t)["T"] for t in T_red]     # K
print("pressures (GPa):", np.round(pressures, 4))
print("temperatures (K):", np.round(temperatures, 1))

# %% [markdown]
# ## 1 · The ensemble
#
# A `PhaseSpec` lists the state points and how to run each one: an fcc crystal is
# equilibrated and sampled in NPT (stochastic cell rescaling with a Langevin thermostat,
# `atomtwin.engines.md`).  The driver runs the points with dask (here on local processes; a
# `dask.distributed` address works the same), stores each finished point on disk — so a
# killed ensemble resumes without rerunning anything — and gathers the order parameters
# into one Dataset indexed by pressure and temperature.

# %%
protocol = {"cells": [3, 3, 3] if SMALL else [4, 4, 4],
            "equil_steps": 150 if SMALL else 600, "steps": 150 if SMALL else 1000, "sample_every": 10}
spec = PhaseSpec(point_function="atomtwin.engines.studies.phase_points:run_point", pressures=pressures,
                 temperatures=temperatures, protocol=protocol, seed=1,
                 workdir=str(OUT / "runs"), scheduler="processes", n_workers=2)
result = run_ensemble(spec, progress=False)
grid = result.grid
print(f"{result.n_run} points run, {len(result.failed)} failed")
grid[["q6_bar", "diffusion", "lindemann", "number_density"]]

# %% [markdown]
# ## 2 · Order parameters
#
# Per run, over the second half of its frames:
#
# * **q̄6** — Steinhardt bond order averaged over neighbours (Lechner & Dellago 2008):
#   ≈ 0.35–0.5 in a hot fcc crystal, ≈ 0.15–0.25 in a liquid;
# * **D** — self-diffusion from the mean-squared displacement (`atomtwin.toolkit.dynamics`):
#   zero in a crystal, ~0.1–1 Å²/ps in a liquid near melting;
# * **Lindemann ratio** — vibration amplitude over the neighbour distance: ≲ 0.1 in a crystal.
#
# A resumed run is free: running the same spec again reuses every stored point.

# %%
again = run_ensemble(spec, progress=False)
assert again.n_run == 0 and again.n_reused == len(pressures) * len(temperatures)
q6, D = grid.q6_bar.values, grid.diffusion.values
# physics checks: the coldest runs are crystals (q̄6 high, D a small fraction of the
# liquid's: a sub-ps window still sees the vibrations' MSD rise), the hottest are liquids
assert np.all(q6[:, 0] > 0.3) and np.all(np.abs(D[:, 0]) < 0.25 * D[:, -1])
assert np.all(q6[:, -1] < 0.3) and np.all(D[:, -1] > 0.1)
print(np.round(q6, 3))

# %% [markdown]
# ## 3 · Classification
#
# Unsupervised: k-means on the standardised (q̄6, D) vectors finds two clusters; `names`
# orders them by q̄6.  (The Lindemann ratio is left out here: in runs this short it grows
# smoothly with T in both phases, and so does the apparent D of a hot crystal, whose MSD
# has not yet reached its vibrational plateau within a sub-picosecond window — longer runs
# sharpen both.)  With user criteria instead (`q6_bar > 0.3`) the labels
# agree wherever a run is clearly one phase — two routes to the same phases.

# %%
phase = classify_phases(grid, method="kmeans", n_phases=2, features=["q6_bar", "diffusion"],
                        names={"q6_bar": ["liquid", "solid"]})
by_rule = classify_phases(grid, criteria={"solid": "q6_bar > 0.3", "liquid": "q6_bar <= 0.3"})
# the two agree on every run not within 0.05 of the criterion (a run caught melting in its
# short window can sit near q̄6 = 0.3, where a threshold and a cluster may differ)
clear = np.abs(grid.q6_bar.values - 0.3) > 0.05
assert (phase.values == by_rule.values)[clear].all()
phase.to_pandas()

# %% [markdown]
# ## 4 · Boundary, band and Clausius–Clapeyron slope
#
# A logistic regression in (P, T) gives the probability of "liquid"; the boundary is where it
# is ½, and the 95 % band comes from refitting on runs resampled with replacement (it is as
# wide as the grid spacing allows).  Its slope dT/dP is the Clausius–Clapeyron slope, with
# the bootstrap spread as error.
#
# What this boundary is: a crystal heated in a short NPT run **superheats** — it stays
# crystalline above the true melting point until a liquid nucleates — so a grid of
# single-phase runs bounds the melting line from above.  The reference line below (full LJ
# potential, Mastny & de Pablo, J. Chem. Phys. 127, 104504 (2007)) lies at or below it; the
# exact melting point comes from solid–liquid coexistence runs (protocol `"coexistence"`,
# tested in `tests/regression/test_phases_lj_melting.py`).

# %%
b = phase_boundary(None, None, phase, phases=("solid", "liquid"), n_boot=100, seed=0)
cc = clausius_clapeyron(b)
print(f"dT/dP = {cc['dT_dP']:.0f} ± {cc['error']:.0f} K/GPa")


def T_melt_ref(P):
    """Melting temperature (reduced units) of the full LJ potential at reduced pressure P
    (Mastny & de Pablo 2007), written in beta = 1/T."""
    from scipy.optimize import brentq

    def p_melt(t):
        beta = 1 / t
        return beta**-1.25 * np.exp(-0.4759 * beta**0.5) * (16.89 - 8.2269 * beta - 2.398 * beta**2)

    return brentq(lambda t: p_melt(t) - P, 0.7, 5.0)



Tref = np.array([physical(T_red=T_melt_ref(reduced(P_GPa=p)["P"]))["T"] for p in b.pressure.values])
solid_max = [grid.temperature.values[(phase.values[i] == "solid")].max() for i in range(len(pressures))]
liquid_min = [grid.temperature.values[(phase.values[i] == "liquid")].min() for i in range(len(pressures))]
# the boundary runs between the hottest crystal and the coldest liquid at each pressure
Tb = b.temperature.interp(pressure=pressures).values
assert np.all((Tb > np.array(solid_max) - 1) & (Tb < np.array(liquid_min) + 1))
# LJ melts with expansion (Δv > 0, Δh > 0): the line rises with pressure, as the reference does
assert cc["dT_dP"] > 0
ref_slope = np.polyfit(b.pressure.values, Tref, 1)[0]
print(f"reference melting-line slope: {ref_slope:.0f} K/GPa")

# %% [markdown]
# ## 5 · The figure
#
# Phase regions (nearest run), the runs coloured by phase, the boundary with its band, and the
# reference melting line.

# %%
from atomtwin.toolkit.plot import save
from atomtwin.toolkit.plot.phases import plot_phase_diagram

fig, ax = plot_phase_diagram(phase, b)
ax.plot(Tref, b.pressure.values, "--", color="0.3", lw=1, label="LJ melting (Mastny & de Pablo)")
ax.legend(loc="best", fontsize=6, frameon=False)
files = save(fig, OUT / "phase_diagram.png", formats=("png",))
assert all(f.stat().st_size > 0 for f in files)

# %% [markdown]
# ## Where next
#
# * Heating and cooling **ramps** (`ramps:` in the spec) give the hysteresis
#   (`atomtwin.toolkit.phases.hysteresis`) — the superheating and undercooling limits bracketing the line.
# * **Coexistence** runs (`coexistence:`) pin the melting point itself.
# * The CLI does all of this from a YAML file:
#   `atomtwin phase-diagram spec.yaml [--cluster tcp://host:8786] --json`.
