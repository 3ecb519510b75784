"""Molecular dynamics: an immutable state, pure integrator steps, force providers,
multiple time steps (RESPA) and a runner that streams the trajectory schema.

>>> from atomtwin.engines.md import make_state, VelocityVerlet, lj_argon
>>> # state = VelocityVerlet(0.005).init(state, lj_argon()); state = integ.step(state, provider)
"""

from __future__ import annotations

from atomtwin.engines.md.forces import (
    ASEForceProvider,
    DifferenceProvider,
    ForceProvider,
    ForceResult,
    PairForceProvider,
    SumProvider,
    lj_argon,
)
from atomtwin.engines.md.integrators import (
    Langevin,
    NoseHooverChain,
    StochasticCellRescaling,
    VelocityVerlet,
    evaluate,
    pressure,
)
from atomtwin.engines.md.state import (
    MDState,
    kinetic_energy,
    make_state,
    state_from_atoms,
    temperature,
    volume,
)

__all__ = [
    "ASEForceProvider", "DifferenceProvider", "ForceProvider", "ForceResult", "PairForceProvider",
    "SumProvider", "RESPA", "MLIPForceProvider", "lj_argon", "Langevin", "NoseHooverChain", "StochasticCellRescaling", "VelocityVerlet",
    "evaluate", "pressure", "MDState", "kinetic_energy", "make_state", "state_from_atoms",
    "temperature", "volume", "run",
]


def __getattr__(name: str):
    if name == "RESPA":
        from atomtwin.engines.md.mts import RESPA

        return RESPA
    if name == "MLIPForceProvider":  # imports atomtwin.engines.mlip only when asked for
        from atomtwin.engines.md.mlip_provider import MLIPForceProvider

        return MLIPForceProvider
    raise AttributeError(f"module 'atomtwin.engines.md' has no attribute '{name}'")


def run(config, **kwargs):
    """Run MD from an :class:`atomtwin.engines.md.config.MDConfig`, a dict or a YAML path (see runner)."""
    from atomtwin.engines.md.runner import run as _run

    return _run(config, **kwargs)
