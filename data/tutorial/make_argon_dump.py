"""Make ``argon_liquid.lammpstrj.gz``: a LAMMPS-format text dump of liquid argon.

Liquid Lennard-Jones argon (ε = 0.0104 eV, σ = 3.405 Å, cut at 2.5σ; Rahman, Phys. Rev.
136, A405 (1964)) at 94.4 K and 1.374 g/cm³ — Rahman's state point — run with atomtwin's
MD engine (Langevin BAOAB, 5 fs, 20 ps of equilibration), then 200 frames every 50 fs in
NVE.  Written the way LAMMPS writes ``dump custom id type x y z ix iy iz vx vy vz`` in
``units metal``: wrapped coordinates with image flags, velocities in Å/ps, atoms in a
different order every frame (as a parallel run writes them).

    python data/tutorial/make_argon_dump.py     # ~1 min on 2 cores
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from atomtwin.engines.md import Langevin, VelocityVerlet, lj_argon, make_state

N_CELLS = 4  # 4^3 fcc cells = 256 atoms
DENSITY = 1.374  # g/cm^3 (Rahman 1964)
T = 94.4  # K
OUT = Path(__file__).with_name("argon_liquid.lammpstrj.gz")


def main(seed: int = 1964) -> None:
    n = 4 * N_CELLS**3
    mass = 39.948
    L = (n * mass / 6.02214076e23 / DENSITY) ** (1 / 3) * 1e8  # Å
    a = L / N_CELLS
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.array([[i, j, k] for i in range(N_CELLS) for j in range(N_CELLS) for k in range(N_CELLS)])
    pos = ((grid[:, None, :] + base[None]) * a).reshape(-1, 3)
    cell = np.eye(3) * L
    lj = lj_argon()
    state = make_state(pos, ["Ar"] * n, cell=cell, temperature_K=2 * T, seed=seed)
    melt = Langevin(0.005, 2.5 * T, 5.0)  # melt the lattice, then cool to T
    state = melt.init(state, lj)
    for _ in range(1000):
        state = melt.step(state, lj)
    eq = Langevin(0.005, T, 2.0)
    state = eq.init(state, lj)
    for _ in range(4000):
        state = eq.step(state, lj)
    nve = VelocityVerlet(0.005)
    state = nve.init(state, lj)
    rng = np.random.default_rng(seed)
    lines = []
    for _frame in range(200):
        for _ in range(10):
            state = nve.step(state, lj)
        r = state.positions.detach().cpu().numpy()
        v = (state.momenta / state.masses[:, None]).detach().cpu().numpy()
        img = np.floor(r / L).astype(int)
        w = r - img * L
        order = rng.permutation(n)
        lines.append(f"ITEM: TIMESTEP\n{state.step}\nITEM: NUMBER OF ATOMS\n{n}\n")
        lines.append(f"ITEM: BOX BOUNDS pp pp pp\n0.0 {L:.10f}\n0.0 {L:.10f}\n0.0 {L:.10f}\n")
        lines.append("ITEM: ATOMS id type x y z ix iy iz vx vy vz\n")
        for i in order:
            lines.append(f"{i + 1} 1 {w[i, 0]:.6f} {w[i, 1]:.6f} {w[i, 2]:.6f} {img[i, 0]} {img[i, 1]} {img[i, 2]} "
                         f"{v[i, 0]:.6f} {v[i, 1]:.6f} {v[i, 2]:.6f}\n")
    with gzip.open(OUT, "wt", compresslevel=9) as fh:
        fh.write("".join(lines))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB), {len(lines) // 259} frames")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
