"""Engine overhead per MD step beyond the force evaluation: atomtwin vs ASE VelocityVerlet,
same ASE calculator (EMT copper), 1,000 and 10,000 atoms (``--small``: 1,000 only).

overhead = (time per step) - (time spent inside the calculator), both measured in one run.
"""

from __future__ import annotations

import argparse
import time

from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.verlet import VelocityVerlet as AseVV

from engines.md import ASEForceProvider, VelocityVerlet, state_from_atoms
from toolkit import units as U


class Timed(EMT):
    spent = 0.0

    def calculate(self, *a, **k):
        t = time.perf_counter()
        super().calculate(*a, **k)
        Timed.spent += time.perf_counter() - t


def bench(n_cells: int, steps: int, dt: float = 0.002):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n_cells,) * 3)
    s = state_from_atoms(atoms, temperature_K=300.0, seed=0)
    prov = ASEForceProvider(Timed())
    integ = VelocityVerlet(dt)
    s = integ.init(s, prov)
    Timed.spent = 0.0
    t = time.perf_counter()
    for _ in range(steps):
        s = integ.step(s, prov)
    ours = (time.perf_counter() - t) / steps, Timed.spent / steps
    b = atoms.copy()
    b.set_velocities(s.velocities.numpy() * U.ASE_TIME_TO_PS)
    b.calc = Timed()
    md = AseVV(b, timestep=dt * U.PS_TO_ASE_TIME)
    md.run(1)
    Timed.spent = 0.0
    t = time.perf_counter()
    md.run(steps)
    ase = (time.perf_counter() - t) / steps, Timed.spent / steps
    return len(atoms), ours, ase


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


if __name__ == "__main__":
    main()
