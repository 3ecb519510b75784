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
    rng_state : Tensor (uint8)
        State of the torch CPU generator the stochastic steps draw from.
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
        raise ValueError(f"positions have shape {tuple(pos.shape)}; expected (n_atoms, 3) in Å.")
    n = pos.shape[0]
    species = tuple(str(s) for s in species)
    if len(species) != n:
        raise ValueError(f"{len(species)} species for {n} atoms. Fix: give one symbol per atom.")
    if masses is None:
        unknown = sorted({s for s in species if s not in atomic_numbers})
        if unknown:
            raise ValueError(
                f"no mass for species {unknown} (not chemical symbols). "
                "Fix: give masses (amu) per atom, e.g. `masses:` in the config."
            )
        masses = atomic_masses[[atomic_numbers[s] for s in species]]
    m = torch.as_tensor(np.asarray(masses, dtype=float), dtype=DTYPE, device=device)
    if m.shape != (n,) or not bool(torch.all(m > 0)) or not bool(torch.all(torch.isfinite(m))):
        raise ValueError(
            f"masses must be {n} positive finite numbers in amu (got shape {tuple(m.shape)}). "
            "Fix: give one mass per atom."
        )
    pbc = tuple(bool(b) for b in np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)))
    if cell is None:
        if any(pbc):
            raise ValueError("pbc is set but no cell is given. Fix: give a cell or pbc=False.")
        c = torch.zeros(3, 3, dtype=DTYPE, device=device)
    else:
        c = torch.as_tensor(np.asarray(cell, dtype=float).reshape(3, 3), dtype=DTYPE, device=device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    dof = 3 * n - (3 if remove_com and n > 1 else 0)
    if velocities is not None:
        v = torch.as_tensor(np.asarray(velocities, dtype=float), dtype=DTYPE, device=device)
        p = v * m[:, None]
    elif temperature_K:
        sd = torch.sqrt(m * U.KB * float(temperature_K) / KE)
        p = (torch.randn(n, 3, generator=gen, dtype=DTYPE) .to(device)) * sd[:, None]
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


def draw_normal(state: MDState, shape) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard normal numbers from the state's generator -> (sample, new rng_state)."""
    gen = torch.Generator(device="cpu")
    gen.set_state(state.rng_state)
    x = torch.randn(*shape, generator=gen, dtype=DTYPE)
    if x.device != state.positions.device:
        x = x.to(state.positions.device)
    return x, gen.get_state()
