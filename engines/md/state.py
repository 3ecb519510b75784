"""The MD state: one immutable record of everything a step needs and a restart restores.

Backend choice: torch (float64).  The native force provider (``atomtwin.engines.mlip``) is a torch
model; keeping positions and momenta as torch tensors on the model's device means an MD
step never copies arrays between host and device.  ASE calculators receive zero-copy
numpy views of the CPU tensors, so they pay nothing for this choice either.

Units: positions Å, momenta amu·Å/ps, masses amu, time ps, energies eV, forces eV/Å,
stress eV/Å^3 (ASE sign: positive = tensile).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError

#: force (eV/Å) / mass (amu) -> acceleration (Å/ps^2)
ACC = U.EV_A_AMU_TO_A_PS2
#: amu·(Å/ps)^2 -> eV
KE = U.AMU_A2_PS2_TO_EV

DTYPE = torch.float64


@dataclass(frozen=True)
class MDState:
    """State of an MD run.

    Attributes
    ----------
    positions : Tensor (n_atoms, 3)
        Cartesian positions, Å (not wrapped: unwrapped trajectories come for free).
    momenta : Tensor (n_atoms, 3)
        amu·Å/ps.
    masses : Tensor (n_atoms,)
        amu.
    cell : Tensor (3, 3)
        Lattice vectors as rows, Å (zeros for a free cluster).
    pbc : tuple[bool, bool, bool]
        Periodicity per cell vector.
    species : tuple[str, ...]
        Chemical symbols.
    step : int
        Steps taken since the start of the run.
    time : float
        ps.
    rng_state : Tensor (uint8, on the CPU)
        State of the torch generator the stochastic steps draw from; the generator lives
        on the state's device (a CPU or a CUDA generator), so random numbers are drawn
        where the state is.
    forces, energy, stress
        Force-provider results at ``positions`` (eV/Å, eV, eV/Å^3 or None).
    dof : int
        Kinetic degrees of freedom (3N, or 3N-3 when the centre-of-mass momentum is removed).
    aux : dict
        Integrator variables (thermostat chains, accumulated bath heat ...), plain floats.
    """

    positions: torch.Tensor
    momenta: torch.Tensor
    masses: torch.Tensor
    cell: torch.Tensor
    pbc: tuple[bool, bool, bool]
    species: tuple[str, ...]
    step: int = 0
    time: float = 0.0
    rng_state: torch.Tensor | None = None
    forces: torch.Tensor | None = None
    energy: float | None = None
    stress: torch.Tensor | None = None
    dof: int = 0
    aux: dict[str, Any] = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    @property
    def velocities(self) -> torch.Tensor:
        """Å/ps, (n_atoms, 3)."""
        return self.momenta / self.masses[:, None]

    def replace(self, **changes) -> MDState:
        """A copy with ``changes`` (the state itself is never modified)."""
        return dataclasses.replace(self, **changes)


def kinetic_energy(state: MDState) -> float:
    """Kinetic energy in eV."""
    return float((state.momenta.square().sum(1) / state.masses).sum()) * 0.5 * KE


def kinetic_tensor(state: MDState) -> torch.Tensor:
    """Σ p⊗p/m in eV, (3, 3) (twice the kinetic-energy tensor)."""
    p = state.momenta
    return (p / state.masses[:, None]).T @ p * KE


def temperature(state: MDState) -> float:
    """Instantaneous kinetic temperature in K (2 K / (dof k_B))."""
    return 2.0 * kinetic_energy(state) / (max(state.dof, 1) * U.KB)


def volume(state: MDState) -> float:
    """Cell volume in Å^3 (0 for a free cluster)."""
    return float(abs(torch.linalg.det(state.cell)))


def make_state(
    positions,
    species: Sequence[str],
    *,
    masses=None,
    cell=None,
    pbc=(True, True, True),
    velocities=None,
    temperature_K: float | None = None,
    seed: int = 0,
    remove_com: bool = True,
    device: str | torch.device = "cpu",
) -> MDState:
    """Build an :class:`MDState` from arrays.

    Parameters
    ----------
    positions
        (n_atoms, 3) Å.
    species
        Chemical symbols (n_atoms,).
    masses
        (n_atoms,) amu.  Required for symbols that have no standard mass.
    cell
        (3, 3) Å, rows are lattice vectors; None for a free cluster.
    pbc
        Periodicity flags (3,).
    velocities
        (n_atoms, 3) Å/ps; otherwise drawn from Maxwell–Boltzmann at ``temperature_K``
        (exactly rescaled to it), or zero.
    seed
        Seeds the generator of the velocity draw and of every later stochastic step.
    remove_com
        Remove the centre-of-mass momentum (then dof = 3N - 3).
    """
    from ase.data import atomic_masses, atomic_numbers

    pos = torch.as_tensor(np.asarray(positions, dtype=float), dtype=DTYPE, device=device)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError(f"positions have shape {tuple(pos.shape)}; expected (n_atoms, 3) in Å.")
    n = pos.shape[0]
    species = tuple(str(s) for s in species)
    if len(species) != n:
        raise InputError(f"{len(species)} species for {n} atoms. Fix: give one symbol per atom.")
    if masses is None:
        unknown = sorted({s for s in species if s not in atomic_numbers})
        if unknown:
            raise InputError(
                f"no mass for species {unknown} (not chemical symbols). "
                "Fix: give masses (amu) per atom, e.g. `masses:` in the config."
            )
        masses = atomic_masses[[atomic_numbers[s] for s in species]]
    m = torch.as_tensor(np.asarray(masses, dtype=float), dtype=DTYPE, device=device)
    if m.shape != (n,) or not bool(torch.all(m > 0)) or not bool(torch.all(torch.isfinite(m))):
        raise InputError(
            f"masses must be {n} positive finite numbers in amu (got shape {tuple(m.shape)}). "
            "Fix: give one mass per atom."
        )
    pbc = tuple(bool(b) for b in np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)))
    if cell is None:
        if any(pbc):
            raise InputError("pbc is set but no cell is given. Fix: give a cell or pbc=False.")
        c = torch.zeros(3, 3, dtype=DTYPE, device=device)
    else:
        c = torch.as_tensor(np.asarray(cell, dtype=float).reshape(3, 3), dtype=DTYPE, device=device)
    gen = torch.Generator(device=pos.device).manual_seed(int(seed))
    dof = 3 * n - (3 if remove_com and n > 1 else 0)
    if velocities is not None:
        v = torch.as_tensor(np.asarray(velocities, dtype=float), dtype=DTYPE, device=device)
        p = v * m[:, None]
    elif temperature_K:
        sd = torch.sqrt(m * U.KB * float(temperature_K) / KE)
        p = torch.randn(n, 3, generator=gen, dtype=DTYPE, device=pos.device) * sd[:, None]
    else:
        p = torch.zeros(n, 3, dtype=DTYPE, device=device)
    if remove_com and n > 1:
        p = p - m[:, None] * (p.sum(0) / m.sum())
    state = MDState(pos, p, m, c, pbc, species, rng_state=gen.get_state(), dof=dof)
    if velocities is None and temperature_K:
        t = temperature(state)
        if t > 0:
            state = state.replace(momenta=p * (float(temperature_K) / t) ** 0.5)
    return state


def state_from_atoms(atoms, **kwargs) -> MDState:
    """An :class:`MDState` from an ``ase.Atoms`` (masses and momenta taken from it unless given)."""
    cell = np.asarray(atoms.cell[:]) if atoms.cell.rank == 3 else None
    pbc = tuple(atoms.pbc) if cell is not None else (False, False, False)
    if "velocities" not in kwargs and "temperature_K" not in kwargs and atoms.has("momenta"):
        kwargs["velocities"] = atoms.get_velocities() / U.ASE_TIME_TO_PS
    kwargs.setdefault("masses", atoms.get_masses())
    return make_state(atoms.get_positions(), atoms.get_chemical_symbols(), cell=cell, pbc=pbc, **kwargs)


def _generator(state: MDState) -> torch.Generator:
    gen = torch.Generator(device=state.positions.device)
    gen.set_state(state.rng_state)
    return gen


def draw_normal(state: MDState, shape) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard normal numbers drawn on the state's device from its generator
    -> (sample of ``shape``, new rng_state)."""
    gen = _generator(state)
    x = torch.randn(*shape, generator=gen, dtype=DTYPE, device=state.positions.device)
    return x, gen.get_state()


def _move(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=DTYPE if value.is_floating_point() else value.dtype)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    return value


def move_tensors(state: MDState, device: str | torch.device) -> MDState:
    """``state`` with every tensor on ``device`` in float64: positions, momenta, masses,
    cell, forces, stress and every tensor inside ``aux`` (e.g. RESPA's slow forces).

    ``rng_state`` is left as it is (a generator state is always a CPU tensor); use
    :func:`state_to` to move a state to a device of another type.
    """
    changes = {f.name: _move(getattr(state, f.name), device) for f in dataclasses.fields(state)
               if f.name not in ("rng_state", "pbc", "species", "step", "time", "energy", "dof")}
    return state.replace(**changes)


def state_to(state: MDState, device: str | torch.device) -> MDState:
    """``state`` on ``device`` (every tensor, see :func:`move_tensors`).

    The generator follows the state: moved between devices of the same type (cuda:0 ->
    cuda:1) its stream continues unchanged; moved to another type (cpu -> cuda) a
    generator of the new type is seeded from the old one, deterministically (the same
    state moved twice gives the same stream, but not the stream it would have had).
    """
    device = torch.device(device)
    old = state.positions.device
    moved = move_tensors(state, device)
    if old.type == device.type or state.rng_state is None:
        return moved
    seed = int(torch.randint(0, 2**62, (1,), generator=_generator(state), device=old))
    gen = torch.Generator(device=device).manual_seed(seed)
    return moved.replace(rng_state=gen.get_state())
