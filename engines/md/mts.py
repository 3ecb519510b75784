"""Multiple time steps: reversible RESPA (Tuckerman, Berne & Martyna 1992) for a fast model
plus a slow correction, as in co-trained MLIP pairs (arXiv:2310.13756).

The force is split ``F = F_fast + F_slow``: ``fast`` is the small, cheap model evaluated
every inner step ``dt``; ``slow`` is the correction (large model trained on the residual, or
``DifferenceProvider(large, small)``) evaluated once every ``k`` inner steps.  One outer
step of length ``k dt`` is

    p += (k dt / 2) F_slow;  k x [velocity Verlet with F_fast, step dt];  p += (k dt / 2) F_slow

which is symplectic and time reversible, so the total energy ``K + U_fast + U_slow``
fluctuates without drift as long as ``k dt`` stays clear of the fast-motion resonances.
An optional Langevin O step per inner step (BAOAB) makes it an NVT integrator.

With a co-trained pair (``atomtwin train`` with ``residual_of: small.ckpt`` for the large
model) the large model *is* the slow correction: the potential is small + large.

>>> from atomtwin.engines.md import MLIPForceProvider, RESPA                     # doctest: +SKIP
>>> small, large = MLIPForceProvider("small.ckpt"), MLIPForceProvider("large.ckpt")
>>> integ = RESPA(0.001, 3, slow=large)         # large every 3 fs, small every 1 fs
>>> state = integ.init(state, small); state = integ.step(state, small)  # 3 inner steps

Its single-time-step reference is ``VelocityVerlet(dt)`` with ``SumProvider(small, large)``;
with ``k = 1`` RESPA equals it to rounding (tests/regression/test_md_mts_mlip.py).  Measured
on liquid copper (tests/benchmarks/bench_mts.py): see that script's table.
"""

from __future__ import annotations

from dataclasses import dataclass

from atomtwin.engines.md.forces import ForceProvider, check_species
from atomtwin.engines.md.integrators import _drift, _kick, _ou
from atomtwin.engines.md.state import MDState, kinetic_energy
from atomtwin.toolkit import units as U


@dataclass(frozen=True)
class RESPA:
    """RESPA integrator.  ``step`` advances one *outer* step (k inner steps, time ``k dt``).

    Parameters
    ----------
    dt : inner time step, ps.
    k : inner steps per slow-force evaluation.
    slow : the slow correction provider (the fast provider is the one passed to ``step``).
    temperature, friction : optional Langevin thermostat (K, 1/ps) on the inner steps.
    """

    dt: float
    k: int
    slow: ForceProvider
    temperature: float | None = None
    friction: float = 1.0
    needs_stress = False

    @property
    def outer_dt(self) -> float:
        return self.k * self.dt

    def init(self, state: MDState, fast: ForceProvider) -> MDState:
        check_species(fast, state.species)
        check_species(self.slow, state.species)
        rf = fast.compute(state.positions, state.cell, state.pbc, state.species)
        rs = self.slow.compute(state.positions, state.cell, state.pbc, state.species)
        aux = {**state.aux, "heat": state.aux.get("heat", 0.0),
               "slow_forces": rs.forces, "slow_energy": rs.energy, "fast_energy": rf.energy}
        return state.replace(forces=rf.forces + rs.forces, energy=rf.energy + rs.energy, aux=aux)

    def step(self, state: MDState, fast: ForceProvider) -> MDState:
        fs = state.aux["slow_forces"]
        ff = state.forces - fs
        p = _kick(state.momenta, fs, 0.5 * self.outer_dt)
        x, heat, rng = state.positions, 0.0, state.rng_state
        ef = state.aux["fast_energy"]
        for _ in range(self.k):
            p = _kick(p, ff, 0.5 * self.dt)
            if self.temperature is None:
                x = _drift(x, p, state.masses, self.dt)
            else:
                x = _drift(x, p, state.masses, 0.5 * self.dt)
                p, h, rng = _ou(state.replace(rng_state=rng), p, self.friction, self.dt,
                                U.KB * self.temperature)
                heat += h
                x = _drift(x, p, state.masses, 0.5 * self.dt)
            r = fast.compute(x, state.cell, state.pbc, state.species)
            ff, ef = r.forces, r.energy
            p = _kick(p, ff, 0.5 * self.dt)
        rs = self.slow.compute(x, state.cell, state.pbc, state.species)
        p = _kick(p, rs.forces, 0.5 * self.outer_dt)
        aux = {**state.aux, "heat": state.aux.get("heat", 0.0) + heat,
               "slow_forces": rs.forces, "slow_energy": rs.energy, "fast_energy": ef}
        return state.replace(positions=x, momenta=p, forces=ff + rs.forces, energy=ef + rs.energy,
                             stress=None, rng_state=rng, aux=aux, step=state.step + self.k,
                             time=state.time + self.outer_dt)

    def conserved_energy(self, state: MDState) -> float:
        return kinetic_energy(state) + float(state.energy) - state.aux.get("heat", 0.0)
