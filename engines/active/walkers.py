"""MD walkers that stop where the model is uncertain.

A walker is an MD run of :mod:`atomtwin.engines.md` (Langevin / Nosé–Hoover NVT, NPT by
stochastic cell rescaling) with linear temperature and pressure ramps, driven by the
current model.  :func:`advance` runs it ``check_every`` steps at a time; after each block
the estimator's calibrated uncertainty of the most uncertain atom is compared with the
threshold.  Above it (or on a blow-up: non-finite or huge forces), the walker returns the
uncertain frame for labelling and goes back to the last state that was checked below the
threshold: MD resumes from before the uncertain step once the model is updated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from atomtwin.engines.active.config import WalkerConfig
from atomtwin.engines.md.integrators import Langevin, NoseHooverChain, StochasticCellRescaling
from atomtwin.engines.md.mlip_provider import MLIPForceProvider
from atomtwin.engines.md.state import MDState, state_from_atoms
from atomtwin.engines.mlip.data import to_graph

__all__ = ["Trigger", "initial_walker_states", "integrator_at", "advance", "state_frame"]


@dataclass
class Trigger:
    """A frame a walker found uncertain: ``frame`` (numbers, pos, cell, pbc), the MD
    ``step``, ``sigma`` (eV/Å, calibrated; inf on a blow-up) and ``reason``."""

    walker: int
    step: int
    sigma: float
    frame: dict[str, Any]
    reason: str = "uncertainty"


def initial_walker_states(
    walkers: tuple[WalkerConfig, ...], seed: int
) -> list[tuple[WalkerConfig, MDState]]:
    """One (config, starting state) per walker copy; copy ``c`` of walker ``w`` draws its
    velocities and noise from ``seed + 1000 w + c``."""
    import ase.io

    out = []
    for w, wc in enumerate(walkers):
        atoms = ase.io.read(wc.structure, index=wc.frame)
        for c in range(wc.copies):
            st = state_from_atoms(atoms, temperature_K=wc.temperature, seed=seed + 1000 * w + c)
            out.append((wc, st))
    return out


def _ramp(a: float, b: float | None, frac: float) -> float:
    return a if b is None else a + (b - a) * min(max(frac, 0.0), 1.0)


def integrator_at(wc: WalkerConfig, step: int):
    """The walker's integrator with the ramped temperature / pressure at ``step``."""
    frac = step / wc.steps
    t = _ramp(wc.temperature, wc.temperature_end, frac)
    if wc.ensemble == "langevin":
        return Langevin(wc.timestep, t, wc.friction)
    if wc.ensemble == "nhc":
        return NoseHooverChain(wc.timestep, t)
    p = _ramp(wc.pressure, wc.pressure_end, frac)
    return StochasticCellRescaling(wc.timestep, t, p, wc.compressibility, wc.tau_p, wc.friction)


def state_frame(state: MDState) -> dict[str, Any]:
    """Frame dict (numbers, pos, cell, pbc) of an MD state."""
    from ase.data import atomic_numbers

    return {
        "numbers": np.array([atomic_numbers[s] for s in state.species], dtype=np.int64),
        "pos": state.positions.detach().cpu().numpy().copy(),
        "cell": state.cell.detach().cpu().numpy().copy(),
        "pbc": np.array(state.pbc, dtype=bool),
        "source": "walker",
        "index": int(state.step),
    }


def _closest(g: dict[str, torch.Tensor]) -> float:
    """Shortest interatomic distance (Å) among the graph's edges (inf without edges)."""
    ei = g["edge_index"]
    if ei.shape[1] == 0:
        return math.inf
    vec = g["pos"][ei[1]] - g["pos"][ei[0]] + g["edge_cell_shift"].to(g["pos"].dtype) @ g["cell"]
    return float(vec.norm(dim=1).min())


def _blown(state: MDState, max_force: float) -> bool:
    f = state.forces
    return (
        f is None
        or not bool(torch.isfinite(f).all())
        or not math.isfinite(float(state.energy))
        or float(f.abs().max()) > max_force
    )


def advance(
    w: int,
    wc: WalkerConfig,
    state: MDState,
    estimator,
    sigma_of,
    threshold: float,
    check_every: int,
    max_force: float,
    quiet_until: int = -1,
    observer=None,
    min_distance: float | None = None,
) -> tuple[MDState, Trigger | None, float]:
    """Run walker ``w`` from ``state`` until it is uncertain or done.

    Parameters
    ----------
    estimator
        :class:`~atomtwin.engines.active.uncertainty.Committee` or ``LastLayerGP``; its
        ``model`` drives the MD.
    sigma_of
        Raw per-atom uncertainty (N,) -> calibrated per-atom sigma (N,) eV/Å; ``None``
        before any calibration (then the first check triggers).
    threshold
        eV/Å.
    quiet_until
        Uncertainty does not trigger before this MD step (blow-ups do).
    observer
        Optional ``observer(walker, step, frame, sigma)`` called at every check (sigma: the
        calibrated structure uncertainty, eV/Å; nan before any calibration).
    min_distance
        Å: a check that finds two atoms closer than this is a blow-up (a model that has
        not learnt the repulsion lets atoms collapse while its forces stay moderate).

    Returns
    -------
    (state to continue from, the trigger or None when the walker finished its steps, the
    last checked sigma in eV/Å)
    """
    model = estimator.model
    provider = MLIPForceProvider(model)
    safe = state
    integ = integrator_at(wc, state.step)
    state = integ.init(state, provider)
    last_sigma = math.nan
    while state.step < wc.steps:
        integ = integrator_at(wc, state.step)
        blown = False
        try:
            for _ in range(min(check_every, wc.steps - state.step)):
                state = integ.step(state, provider)
                if _blown(state, max_force):
                    blown = True
                    break
        except (RuntimeError, ValueError) as err:  # e.g. atoms too close for the neighbour list
            blown = True
            del err
        fr = state_frame(state)
        if blown:
            ok = bool(np.isfinite(fr["pos"]).all() and np.isfinite(fr["cell"]).all())
            return (
                safe,
                Trigger(w, state.step, math.inf, fr if ok else state_frame(safe), "blow-up"),
                math.inf,
            )
        g = to_graph(fr, model.species, model.r_max)
        if min_distance is not None and _closest(g) < min_distance:
            return safe, Trigger(w, state.step, math.inf, fr, "too close"), math.inf
        pred = estimator.evaluate([g])[0]
        if sigma_of is None:
            if observer is not None:
                observer(w, state.step, fr, math.nan)
            return safe, Trigger(w, state.step, math.inf, fr, "uncalibrated"), math.inf
        last_sigma = float(np.max(sigma_of(pred.sigma)))
        if observer is not None:
            observer(w, state.step, fr, last_sigma)
        if not last_sigma <= threshold and state.step >= quiet_until:
            return safe, Trigger(w, state.step, last_sigma, fr), last_sigma
        safe = state
    return state, None, last_sigma
