"""Multiple time steps with a co-trained small/large MLIP pair, measured honestly.

The pair (``data/md/cu_pair``, made by ``data/md/make_mts_pair.py --bench``): a small
Allegro-style model (1 layer, lmax 1) trained on EMT copper, and a large NequIP-style model
(3 layers, lmax 2, ``large_bench.ckpt``) trained on the residual (EMT - small).  The potential is small + large.  On hot liquid copper (2000 K, liquid
density, NVE from one Langevin-equilibrated state) this script runs

* the reference: velocity Verlet with small + large at the short step ``dt``;
* RESPA for k = 1, 2, 3, 4, 6: small every step ``dt``, the large model every ``k dt``;

and reports, per run: large-model evaluations, CPU time of the loop (process time: robust to
other jobs on a shared machine; single-threaded it equals the wall time of an idle one)
and the time inside the two models, energy drift (eV/atom/ps, slope of the conserved energy with its standard error),
the RMS energy fluctuation, the RDF deviation from the reference (max |Δg| over r, in units
of the reference's block standard error), and the self-diffusion coefficient
(``atomtwin.toolkit.dynamics.diffusion``, GLS fit with its error).  It also measures the cost ratio
of the two models (time per evaluation at this size).

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_mts.py [--small] [--ps 4] [--dt 0.001]

Measured (default run: 108 atoms, 1.5 ps NVE per run, 1 CPU thread; cost ratio 18.2):

==========  ========  =========  =======  ==========  ======  ==============  ============
run         large ev  ev ratio   speedup  dE rms      D z     RDF max|dg|/σ   drift
==========  ========  =========  =======  ==========  ======  ==============  ============
reference   1500      1          1        6.7e-6 eV   0       0               2.3±1.1e-6
RESPA k=3   500       3.0        2.91     7.5e-6 eV   -0.9    1.50            0.5±1.2e-6
RESPA k=4   375       4.0        3.88     8.8e-6 eV   -0.6    1.29            0.5±0.8e-6
RESPA k=6   250       6.0        5.47     1.26e-5 eV  -2.7    2.04            1.1±1.0e-6
==========  ========  =========  =======  ==========  ======  ==============  ============

(dE rms per atom; drift eV/atom/ps; D_ref = 0.667 ± 0.020 Å²/ps.)  Up to k = 4 the
observables agree with the reference within errors; at k = 6 D departs by 2.7 σ.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from atomtwin.data import path as data_path
from atomtwin.engines.md import Langevin, SumProvider, VelocityVerlet, kinetic_energy, make_state
from atomtwin.engines.md.mlip_provider import MLIPForceProvider
from atomtwin.engines.md.mts import RESPA
from atomtwin.toolkit import units as U

PAIR = data_path("md", "cu_pair")
A_LIQUID = 3.75  # Å, the density of the training MD


class Timed:
    """A provider wrapper that accumulates the seconds spent inside ``compute``."""

    def __init__(self, p):
        self.p, self.spent = p, 0.0
        self.species, self.n_calls = p.species, 0

    def reset(self):
        self.p.reset()

    def compute(self, *a, **k):
        t = time.process_time()
        r = self.p.compute(*a, **k)
        self.spent += time.process_time() - t
        self.n_calls += 1
        return r


def liquid_copper(n_cells: int, temperature: float, seed: int = 0):
    from ase.build import bulk

    a = bulk("Cu", "fcc", a=A_LIQUID, cubic=True).repeat((n_cells,) * 3)
    a.rattle(0.1, seed=seed)
    return make_state(a.positions, a.get_chemical_symbols(), cell=a.cell[:], pbc=True,
                      temperature_K=temperature, seed=seed)


def equilibrate(state, small, large, dt, temperature, ps):
    """Langevin (small + large): melt at 2 T for ps/2 (a periodic crystal superheats), then
    ps at T."""
    both = SumProvider(small, large)
    s = state
    for t, length in ((2 * temperature, 0.5 * ps), (temperature, ps)):
        integ = Langevin(dt, t, friction=5.0)
        s = integ.init(s, both)
        for _ in range(int(round(length / dt))):
            s = integ.step(s, both)
    return s.replace(step=0, time=0.0, aux={})


def cost_ratio(state, pair, n=20):
    """Seconds per evaluation of the small and the large model (neighbour list reused)."""
    out = []
    for path in pair:
        p = MLIPForceProvider(path, skin=1.0)
        p.compute(state.positions, state.cell, state.pbc, state.species)
        t = time.process_time()
        for _ in range(n):
            p.compute(state.positions + 1e-4, state.cell, state.pbc, state.species)
        out.append((time.process_time() - t) / n)
    return out


def run(state, pair, dt, k, n_steps, frame_every):
    """NVE from ``state``; k = 0: the reference (velocity Verlet, small + large)."""
    small = Timed(MLIPForceProvider(pair[0], skin=1.0))
    large = Timed(MLIPForceProvider(pair[1], skin=1.0))
    if k == 0:
        integ, prov, per = VelocityVerlet(dt), SumProvider(small, large), 1
    else:
        integ, prov, per = RESPA(dt, k, large), small, k
    s = integ.init(state, prov)
    large.n_calls = small.n_calls = 0
    e, t_e, frames = [], [], [s.positions.numpy().copy()]
    t0 = time.process_time()  # CPU seconds: robust to other processes sharing the cores
    for _ in range(n_steps // per):
        s = integ.step(s, prov)
        e.append(integ.conserved_energy(s))
        t_e.append(s.time)
        if s.step % frame_every == 0:
            frames.append(s.positions.numpy().copy())
    wall = time.process_time() - t0
    return dict(e=np.array(e), t=np.array(t_e), frames=np.array(frames), wall=wall,
                n_large=large.n_calls, n_small=small.n_calls, t_large=large.spent, t_small=small.spent,
                kin=kinetic_energy(s))


def drift(t, e, n_atoms):
    """Slope of e(t) per atom (eV/atom/ps) and its standard error (block-corrected)."""
    a = np.vstack([t, np.ones_like(t)]).T
    coef, *_ = np.linalg.lstsq(a, e, rcond=None)
    # error from 8 block slopes (the residuals are correlated)
    slopes = [np.polyfit(tb, eb, 1)[0] for tb, eb in zip(np.array_split(t, 8), np.array_split(e, 8), strict=True)]
    err = np.std(slopes, ddof=1) / 8**1.5  # a slope error scales as length^-1.5
    return coef[0] / n_atoms, err / n_atoms


def observables(res, state, frame_dt):
    from atomtwin.toolkit.dynamics.diffusion import diffusion
    from atomtwin.toolkit.phases.order import rdf
    from atomtwin.toolkit.schema import make_dataset

    frames = res["frames"]
    cell = np.broadcast_to(state.cell.numpy(), (len(frames), 3, 3))
    ds = make_dataset(frames, list(state.species), cell=cell, time=np.arange(len(frames)) * frame_dt)
    d = diffusion(ds, "Cu")
    half = 0.5 * float(state.cell[0, 0])
    blocks = [rdf(ds.isel(frame=slice(b[0], b[-1] + 1)), r_max=min(5.0, 0.99 * half), n_bins=50)
              for b in np.array_split(np.arange(len(frames)), 4)]
    g = np.mean([b.values for b in blocks], 0)
    g_err = np.std([b.values for b in blocks], 0, ddof=1) / 2.0
    return float(d["D"]), float(d["D_err"]), g, g_err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="32 atoms, 0.5 ps, k = 1, 3")
    ap.add_argument("--ps", type=float, default=None, help="NVE length per run, ps")
    ap.add_argument("--dt", type=float, default=0.001, help="inner (reference) time step, ps")
    ap.add_argument("--ks", default=None, help="comma-separated k values")
    ap.add_argument("--cells", type=int, default=None, help="fcc cells per edge (4 atoms each)")
    ap.add_argument("--temperature", type=float, default=2000.0)
    ap.add_argument("--pair", default=str(PAIR))
    ap.add_argument("--large", default="large_bench.ckpt", help="large model file in --pair (large.ckpt: the tests' cheap one)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    n_cells = args.cells or (2 if args.small else 3)
    ps = args.ps or (0.5 if args.small else 1.5)
    ks = [int(k) for k in (args.ks or ("1,3" if args.small else "2,3,4,6")).split(",")]
    pair = (Path(args.pair) / "small.ckpt", Path(args.pair) / args.large)
    dt = args.dt
    frame_every = 12 if all(12 % k == 0 for k in ks) else math.lcm(*ks)
    n_steps = int(round(ps / dt)) // frame_every * frame_every
    s0 = liquid_copper(n_cells, args.temperature)
    s0 = equilibrate(s0, MLIPForceProvider(pair[0]), MLIPForceProvider(pair[1]), dt, args.temperature,
                     0.2 if args.small else 0.5)
    c_small, c_large = cost_ratio(s0, pair)
    print(f"# {s0.n_atoms} Cu atoms, liquid at {args.temperature:g} K, NVE {n_steps * dt:g} ps per run, "
          f"inner dt {dt * 1e3:g} fs, frames every {frame_every * dt * 1e3:g} fs")
    print(f"# cost per evaluation: small {c_small * 1e3:.2f} ms, large {c_large * 1e3:.2f} ms, "
          f"large/small = {c_large / c_small:.2f}")
    runs = {0: run(s0, pair, dt, 0, n_steps, frame_every)}
    for k in ks:
        runs[k] = run(s0, pair, dt, k, n_steps, frame_every)
    ref = runs[0]
    d_ref, derr_ref, g_ref, gerr_ref = observables(ref, s0, frame_every * dt)
    if d_ref < 5 * derr_ref:
        print(f"# WARNING: D_ref = {d_ref:.3g} ± {derr_ref:.2g} Å²/ps: the system is not a liquid; "
              "equilibrate longer or hotter")
    c = c_large / c_small
    print(f"{'run':>10} {'outer fs':>8} {'large ev':>8} {'ev ratio':>8} {'CPU s':>7} {'speedup':>7} {'ideal':>5} "
          f"{'model s':>7} {'drift meV/at/ps':>16} {'dE rms meV/at':>13} {'D A2/ps':>14} {'D z':>5} "
          f"{'RDF max|dg|/err':>15}")
    for k, r in runs.items():
        n = s0.n_atoms
        dr, dr_err = drift(r["t"], r["e"], n)
        fluct = np.std(r["e"] - np.polyval(np.polyfit(r["t"], r["e"], 1), r["t"])) / n
        D, D_err, g, g_err = observables(r, s0, frame_every * dt) if k else (d_ref, derr_ref, g_ref, gerr_ref)
        z = (D - d_ref) / math.hypot(D_err, derr_ref) if k else 0.0
        dg = np.max(np.abs(g - g_ref) / np.maximum(np.hypot(g_err, gerr_ref), 1e-3)) if k else 0.0
        name = "reference" if k == 0 else f"RESPA k={k}"
        print(f"{name:>10} {max(k, 1) * dt * 1e3:>8.1f} {r['n_large']:>8d} {ref['n_large'] / r['n_large']:>8.2f} "
              f"{r['wall']:>7.1f} {ref['wall'] / r['wall']:>7.2f} {(1 + c) / (1 + c / max(k, 1)):>5.2f} "
              f"{r['t_small'] + r['t_large']:>7.1f} "
              f"{1e3 * dr:>9.4f}±{1e3 * dr_err:<6.4f} {1e3 * fluct:>13.4f} {D:>7.3f}±{D_err:<6.3f} {z:>5.1f} "
              f"{dg:>15.2f}")
    print(f"# drift bound (1 K/ns heating): {1e3 * 1.5 * U.KB / 1000:.4f} meV/atom/ps; CPU s = process time "
          "of the NVE loop; ideal = (1 + c)/(1 + c/k) with c the cost ratio; D z = (D - D_ref)/combined error")


if __name__ == "__main__":
    main()
