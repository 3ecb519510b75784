"""Make ``water_tip3p.extxyz``: 27 rigid TIP3P waters at 300 K (ASE), for the H-bond
regression test against MDAnalysis' HydrogenBondAnalysis.

Run: ``.venv/bin/python data/dynamics/make_water.py`` (a few minutes on one core).
Waters on a 3x3x3 grid (spacing 3.1 Å, ~1 g/cm^3) with random orientations, Langevin
dynamics with ASE's TIP3P and rigid bonds (FixBondLengths), 1 fs steps; 0.3 ps of
equilibration is discarded, then 20 frames are kept every 10 fs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.tip3p import TIP3P, angleHOH, rOH
from ase.constraints import FixBondLengths
from ase.io import write
from ase.md.langevin import Langevin
from scipy.spatial.transform import Rotation

rng = np.random.default_rng(7)
a = 3.1
n = 3
x = angleHOH * np.pi / 180 / 2
mol = np.array([[0, 0, 0], [rOH * np.cos(x), rOH * np.sin(x), 0], [rOH * np.cos(x), -rOH * np.sin(x), 0]])
pos = []
for i in range(n):
    for j in range(n):
        for k in range(n):
            R = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
            pos.extend(mol @ R.T + a * np.array([i, j, k]) + a / 2)
atoms = Atoms("OH2" * n**3, positions=pos, cell=[a * n] * 3, pbc=True)
atoms.constraints = FixBondLengths([(3 * i + j, 3 * i + (j + 1) % 3) for i in range(n**3) for j in (0, 1, 2)])
atoms.calc = TIP3P(rc=4.5)
md = Langevin(atoms, 1 * units.fs, temperature_K=300, friction=0.02, rng=np.random.default_rng(1))
md.run(300)
frames = []
for _ in range(20):
    md.run(10)
    frames.append(atoms.copy())
out = Path(__file__).with_name("water_tip3p.extxyz")
for f in frames:
    f.constraints = []
    f.calc = None
write(out, frames)
print(f"wrote {out}")
