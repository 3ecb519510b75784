"""Generate the two small GFN2-xTB trajectories the reactions tests read.

A cluster of one choline cation, one chloride and one ethylene glycol (32 atoms, the
1:1 core of ethaline, the 2:1 ethylene glycol : choline chloride solvent of
arXiv:2410.05498), run with tblite's GFN2-xTB through ASE:

* ``ethaline_300K.nc``: Langevin MD at 300 K, 0.5 fs steps, 1 ps, every 10th step kept.
  No bond may break at room temperature in a picosecond.
* ``ethaline_sn2.nc``: the decomposition the paper reports, forced: the chloride is
  pulled onto a methyl carbon of choline from the side opposite the nitrogen (a harmonic
  restraint on the Cl-C distance, 20 eV/Å², whose centre moves from the start distance to
  1.78 Å, the C-Cl bond of CH3Cl, in 0.3 ps and stays there for 0.2 ps), at 300 K.  Cl- + choline -> CH3Cl +
  dimethylaminoethanol (SN2): one N-C bond breaks and one C-Cl bond forms.

Geometries are built here from ideal bond lengths and tetrahedral angles and relaxed with
GFN2-xTB before MD.  Run from the repository root (about a minute on one core):

    OMP_NUM_THREADS=1 .venv/bin/python tests/data/reactions/make_ethaline.py [300K|sn2]

Provenance: tblite (GFN2-xTB) and ASE as installed in the project's venv; seeds fixed below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.optimize import BFGS

HERE = Path(__file__).resolve().parent
SEED = 20261204
DT_FS = 0.5
STRIDE = 10


def _perp(v):
    a = np.array([1.0, 0, 0]) if abs(v[0]) < 0.9 else np.array([0, 1.0, 0])
    p = np.cross(v, a)
    return p / np.linalg.norm(p)


def _tetra(axis, first=None):
    """Three unit vectors at 109.5° from ``-axis`` (the bond to the parent is along -axis)."""
    axis = axis / np.linalg.norm(axis)
    u = _perp(axis) if first is None else first
    w = np.cross(axis, u)
    cos_t = np.cos(np.radians(180 - 109.47))
    sin_t = np.sin(np.radians(180 - 109.47))
    out = []
    for k in range(3):
        phi = 2 * np.pi * k / 3
        out.append(cos_t * axis + sin_t * (np.cos(phi) * u + np.sin(phi) * w))
    return out


BOND = {"CH": 1.09, "NC": 1.50, "CC": 1.52, "CO": 1.42, "OH": 0.97}


def _grow(symbols, pos, at, parent, children):
    """Add ``children`` (symbols) to atom ``at`` tetrahedrally away from ``parent``."""
    axis = pos[at] - pos[parent]
    dirs = _tetra(axis)
    idx = []
    for d, s in zip(dirs, children, strict=False):
        key = "".join(sorted((symbols[at], s), key=lambda x: "NCOH".index(x)))
        symbols.append(s)
        pos.append(pos[at] + BOND[key] * d)
        idx.append(len(pos) - 1)
    return idx


def choline() -> Atoms:
    """(CH3)3N+-CH2-CH2-OH, 21 atoms."""
    sym, pos = ["N"], [np.zeros(3)]
    dirs = [
        np.array(v, float) / np.sqrt(3) for v in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))
    ]
    carbons = []
    for d in dirs:
        sym.append("C")
        pos.append(1.50 * d)
        carbons.append(len(pos) - 1)
    for c in carbons[:3]:
        _grow(sym, pos, c, 0, "HHH")
    c1 = carbons[3]
    h_c2 = _grow(sym, pos, c1, 0, "CHH")
    c2 = h_c2[0]
    o = _grow(sym, pos, c2, c1, "OHH")[0]
    _grow(sym, pos, o, c2, "H")
    return Atoms(sym, positions=np.array(pos))


def ethylene_glycol() -> Atoms:
    """HO-CH2-CH2-OH, 10 atoms."""
    sym, pos = ["C", "C"], [np.zeros(3), np.array([1.52, 0, 0])]
    o1 = _grow(sym, pos, 0, 1, "OHH")[0]
    o2 = _grow(sym, pos, 1, 0, "OHH")[0]
    _grow(sym, pos, o1, 0, "H")
    _grow(sym, pos, o2, 1, "H")
    return Atoms(sym, positions=np.array(pos))


def cluster() -> tuple[Atoms, int]:
    """Choline + Cl- behind a methyl C (on the N-C axis, 3.4 Å from C) + ethylene glycol.
    Returns the atoms and the index of the methyl carbon the chloride faces."""
    ch = choline()
    c_me = 1  # first methyl carbon, along (1, 1, 1) from N
    axis = ch.positions[c_me] / np.linalg.norm(ch.positions[c_me])
    cl = Atoms("Cl", positions=[ch.positions[c_me] + 3.4 * axis])
    eg = ethylene_glycol()
    eg.translate(-eg.positions.mean(axis=0) + np.array([-4.5, -1.0, 3.0]))
    return ch + cl + eg, c_me


class Pulled(Calculator):
    """``base`` plus a harmonic restraint ``k/2 (|r_a - r_b| - d(t))^2`` on one distance."""

    implemented_properties = ("energy", "forces")

    def __init__(self, base, a, b, k, d0, d1, n_ramp):
        super().__init__()
        self.base, self.a, self.b, self.k = base, a, b, k
        self.d0, self.d1, self.n_ramp, self.step = d0, d1, n_ramp, 0

    def target(self):
        x = min(self.step / self.n_ramp, 1.0)
        return self.d0 + x * (self.d1 - self.d0)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        at = self.atoms.copy()
        at.calc = self.base
        e, f = at.get_potential_energy(), at.get_forces().copy()
        v = at.positions[self.b] - at.positions[self.a]
        d = np.linalg.norm(v)
        dd = d - self.target()
        e += 0.5 * self.k * dd**2
        g = self.k * dd * v / d
        f[self.a] += g
        f[self.b] -= g
        self.results = {"energy": e, "forces": f}


def run(atoms, calc, n_steps, seed, on_step=None):
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=rng)
    dyn = Langevin(atoms, DT_FS * units.fs, temperature_K=300, friction=0.01 / units.fs, rng=rng)
    pos, times = [atoms.positions.copy()], [0.0]
    for step in range(1, n_steps + 1):
        dyn.run(1)
        if on_step:
            on_step(step)
        if step % STRIDE == 0:
            pos.append(atoms.positions.copy())
            times.append(step * DT_FS * 1e-3)
    return np.array(pos), np.array(times)


def main() -> None:
    from tblite.ase import TBLite

    atoms, c_me = cluster()
    cl = atoms.get_chemical_symbols().index("Cl")
    base = TBLite(method="GFN2-xTB", charge=0, verbosity=0)
    # relax with the Cl-C distance held near its start, so the ion pair stays SN2-ready
    hold = Pulled(base, c_me, cl, 4.0, 3.3, 3.3, 1)
    atoms.calc = hold
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=300)
    start = atoms.copy()
    meta = {"source": "tests/data/reactions/make_ethaline.py (tblite GFN2-xTB, ASE Langevin 300 K)"}

    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in ("all", "300K"):
        _room(start, meta)
    if which in ("all", "sn2"):
        _sn2(start, meta, c_me, cl)


def _room(start, meta):
    from atomtwin.toolkit.io import write
    from atomtwin.toolkit.schema import make_dataset
    from tblite.ase import TBLite

    a = start.copy()
    pos, t = run(a, TBLite(method="GFN2-xTB", charge=0, verbosity=0), 2000, SEED)
    ds = make_dataset(pos, a.get_chemical_symbols(), time=t, attrs=meta)
    write(ds, HERE / "ethaline_300K.nc", overwrite=True)
    print("300 K:", pos.shape, file=sys.stderr)


def _sn2(start, meta, c_me, cl):
    from atomtwin.toolkit.io import write
    from atomtwin.toolkit.schema import make_dataset
    from tblite.ase import TBLite

    a = start.copy()
    d0 = float(np.linalg.norm(a.positions[cl] - a.positions[c_me]))
    pull = Pulled(TBLite(method="GFN2-xTB", charge=0, verbosity=0), c_me, cl, 20.0, d0, 1.78, 600)

    def tick(step):
        pull.step = step

    pos, t = run(a, pull, 1000, SEED + 1, on_step=tick)
    ds = make_dataset(
        pos,
        a.get_chemical_symbols(),
        time=t,
        attrs={**meta, "pulled": f"Cl {cl} onto C {c_me}: {d0:.2f} -> 1.78 A in 0.3 ps, 20 eV/A^2"},
    )
    write(ds, HERE / "ethaline_sn2.nc", overwrite=True)
    print(
        "SN2:",
        pos.shape,
        f"final Cl-C {np.linalg.norm(a.positions[cl] - a.positions[c_me]):.2f} A",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
