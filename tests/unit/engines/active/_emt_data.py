"""EMT copper frames for the active-learning tests: crystal (training-like), liquid (a phase
the models never see), a (001) slab and a vacancy; generated with ASE's Langevin, seeded."""

from __future__ import annotations

import numpy as np


def emt_frames(temperature: float, n: int, every: int, seed: int, equil: int = 150, atoms=None):
    """``n`` EMT-labelled frames (atomtwin frame dicts) of Langevin MD at ``temperature`` K."""
    import warnings

    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from atomtwin.engines.mlip.data import frame_from_atoms

    at = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2) if atoms is None else atoms.copy()
    at.calc = EMT()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MaxwellBoltzmannDistribution(at, temperature_K=temperature, rng=np.random.default_rng(seed))
        dyn = Langevin(
            at,
            4 * units.fs,
            temperature_K=temperature,
            friction=0.05,
            rng=np.random.default_rng(seed),
        )
        dyn.run(equil)
        out = []
        for _ in range(n):
            dyn.run(every)
            c = at.copy()
            c.calc = EMT()
            c.get_forces()
            out.append(frame_from_atoms(c))
    return out


def slab():
    from ase.build import fcc100

    return fcc100("Cu", (2, 2, 6), a=3.61, vacuum=6.0, periodic=True)


def vacancy():
    from ase.build import bulk

    at = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    del at[5]
    return at
