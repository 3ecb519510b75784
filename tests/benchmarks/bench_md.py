"""Engine overhead per MD step beyond the force evaluation: atomtwin vs ASE VelocityVerlet,
same ASE calculator (EMT copper), 1,000 and 10,000 atoms (``--small``: 1,000 only).

overhead = (time per step) - (time spent inside the calculator), both measured in one run,
in CPU seconds of this process (robust to other jobs sharing the machine).

A second table times the Verlet-list build of the torch providers: the dense O(N^2)
all-pairs search (``method="dense"``) against the shared cell-list layer
(``atomtwin.toolkit.neighbors``, vesin) that ``atomtwin.engines.md.neighbors.half_pairs`` uses
by default.
"""

from __future__ import annotations

import argparse
import time

from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.verlet import VelocityVerlet as AseVV
from atomtwin.engines.md import ASEForceProvider, VelocityVerlet, state_from_atoms
from atomtwin.toolkit import units as U


class Timed(EMT):
    spent = 0.0

    def calculate(self, *a, **k):
        t = time.process_time()
        super().calculate(*a, **k)
        Timed.spent += time.process_time() - t


def bench(n_cells: int, steps: int, dt: float = 0.002):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n_cells,) * 3)
    s = state_from_atoms(atoms, temperature_K=300.0, seed=0)
    prov = ASEForceProvider(Timed())
    integ = VelocityVerlet(dt)
    s = integ.init(s, prov)
    Timed.spent = 0.0
    t = time.process_time()
    for _ in range(steps):
        s = integ.step(s, prov)
    ours = (time.process_time() - t) / steps, Timed.spent / steps
    b = atoms.copy()
    b.set_velocities(s.velocities.numpy() * U.ASE_TIME_TO_PS)
    b.calc = Timed()
    md = AseVV(b, timestep=dt * U.PS_TO_ASE_TIME)
    md.run(1)
    Timed.spent = 0.0
    t = time.process_time()
    md.run(steps)
    ase = (time.process_time() - t) / steps, Timed.spent / steps
    return len(atoms), ours, ase


def bench_lists(n_cells: int, r: float = 6.0, dense: bool = True):
    import torch
    from atomtwin.engines.md.neighbors import half_pairs

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n_cells,) * 3)
    atoms.rattle(0.1, seed=0)
    x, c = torch.tensor(atoms.positions), torch.tensor(atoms.cell[:])
    out = {}
    for method in (("dense", "cells") if dense else ("cells",)):
        half_pairs(x, c, (True,) * 3, r, method=method)  # warm-up
        t = time.process_time()
        i, _, _ = half_pairs(x, c, (True,) * 3, r, method=method)
        out[method] = (time.process_time() - t, len(i))
    return len(atoms), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    sizes = [(6, args.steps)] if args.small else [(6, args.steps), (14, max(2, args.steps // 2))]
    print(f"{'atoms':>7} {'ours step ms':>13} {'ours ovh ms':>12} {'ours ovh %':>10} "
          f"{'ASE step ms':>12} {'ASE ovh ms':>11} {'ASE ovh %':>9} {'ovh ratio':>9}")
    for n_cells, steps in sizes:
        n, (o_step, o_calc), (a_step, a_calc) = bench(n_cells, steps)
        oo, ao = o_step - o_calc, a_step - a_calc
        print(f"{n:>7} {o_step * 1e3:>13.2f} {oo * 1e3:>12.3f} {100 * oo / o_step:>10.2f} "
              f"{a_step * 1e3:>12.2f} {ao * 1e3:>11.3f} {100 * ao / a_step:>9.2f} {oo / ao:>9.2f}")
    print(f"\n{'atoms':>7} {'pairs':>9} {'dense build s':>13} {'cell-list build s':>17} {'dense/cells':>11}")
    for n_cells, _ in sizes:
        n, res = bench_lists(n_cells)
        d, cl = res["dense"][0], res["cells"][0]
        assert res["dense"][1] == res["cells"][1]
        print(f"{n:>7} {res['cells'][1]:>9} {d:>13.3f} {cl:>17.3f} {d / cl:>11.2f}")


if __name__ == "__main__":
    main()
