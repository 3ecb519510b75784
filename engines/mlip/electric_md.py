"""Electric-enthalpy models in use: fields, an ASE calculator, an MD force provider and MD
under a static or time-dependent field whose trajectory stores P and Z*.

The force on the atoms in a field is -dH(R, E)/dR = F_0 + Z*^T E (+ the polarizability
gradient term 1/2 E . dalpha/dR . E); the provider evaluates H at the field of the current
time, so the integrators of :mod:`atomtwin.engines.md` run unchanged.  In a static field the dynamics
conserve H + kinetic energy; a time-dependent field does work on the system.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from atomtwin.engines.mlip.electric import EnthalpyModel
from atomtwin.toolkit.errors import InputError

__all__ = ["GaussianPulse", "SineField", "as_field", "ElectricCalculator", "ElectricForceProvider",
           "run_field_md"]

FieldLike = Callable[[float], np.ndarray] | Sequence[float] | np.ndarray | None


@dataclass(frozen=True)
class GaussianPulse:
    """E(t) = amplitude * exp(-(t - t0)^2 / (2 width^2)) * cos(2 pi frequency (t - t0)).

    amplitude (3,) V/Å; t0, width ps; frequency THz (0: a half-cycle pulse).
    """

    amplitude: tuple[float, float, float]
    t0: float
    width: float
    frequency: float = 0.0

    def __call__(self, t: float) -> np.ndarray:
        s = (t - self.t0) / self.width
        return np.asarray(self.amplitude, float) * np.exp(-0.5 * s * s) * np.cos(2 * np.pi * self.frequency * (t - self.t0))


@dataclass(frozen=True)
class SineField:
    """E(t) = amplitude * sin(2 pi frequency t), amplitude (3,) V/Å, frequency THz."""

    amplitude: tuple[float, float, float]
    frequency: float

    def __call__(self, t: float) -> np.ndarray:
        return np.asarray(self.amplitude, float) * np.sin(2 * np.pi * self.frequency * t)


def as_field(field: FieldLike) -> Callable[[float], np.ndarray]:
    """A callable t (ps) -> E (3,) V/Å from None (zero), a constant vector or a callable."""
    if field is None:
        return lambda t: np.zeros(3)
    if callable(field):
        return field
    e = np.asarray(field, dtype=float)
    if e.shape != (3,) or not np.all(np.isfinite(e)):
        raise InputError(f"a static field must be 3 finite numbers in V/Å, got {field!r}. "
                         "Fix: field=(Ex, Ey, Ez) or a callable t -> (3,).")
    return lambda t: e


def _batch(model: EnthalpyModel, positions: torch.Tensor, cell: torch.Tensor, pbc, types: torch.Tensor,
           field: np.ndarray) -> dict[str, Any]:
    from atomtwin.engines.mlip.neighbors import neighbor_list

    pbc_t = torch.as_tensor(np.asarray(pbc, dtype=bool).reshape(3))
    ei, shift = neighbor_list(positions.detach(), cell.detach() if bool(pbc_t.any()) else None, pbc_t, model.r_max)
    n = positions.shape[0]
    return {"pos": positions, "atom_types": types, "cell": cell.reshape(1, 3, 3), "pbc": pbc_t[None],
            "batch": torch.zeros(n, dtype=torch.long), "edge_index": ei, "edge_cell_shift": shift,
            "field": torch.as_tensor(field, dtype=torch.float64).reshape(1, 3)}


class ElectricForceProvider:
    """An electric-enthalpy model as an :mod:`atomtwin.engines.md` force provider (ForceProvider protocol).

    Parameters
    ----------
    model
        An :class:`~atomtwin.engines.mlip.electric.EnthalpyModel` (learned or exact).
    field
        None, a constant (3,) V/Å or a callable t (ps) -> (3,) V/Å, evaluated at ``self.time``
        (set it before each step; :func:`run_field_md` does).

    ``compute`` returns H (eV) as the energy and -dH/dR; ``last`` holds the polarization
    (e Å) and field of the latest call; :meth:`properties` adds Born charges and alpha.
    """

    def __init__(self, model: EnthalpyModel, field: FieldLike = None) -> None:
        self.model = model.eval()
        self.field = as_field(field)
        self.species = tuple(model.species)
        self.time = 0.0
        self.n_calls = 0
        self.last: dict[str, np.ndarray] = {}
        self._types: tuple | None = None

    def reset(self) -> None:
        self.last = {}

    def _type_tensor(self, species: Sequence[str]) -> torch.Tensor:
        if self._types is None or self._types[0] != tuple(species):
            unknown = sorted(set(species) - set(self.species))
            if unknown:
                raise InputError(f"the electric model does not know species {unknown} (it knows "
                                 f"{list(self.species)}). Fix: use a model trained for them.")
            self._types = (tuple(species), torch.tensor([self.species.index(s) for s in species]))
        return self._types[1]

    def properties(self, positions, cell, pbc, species, *, born: bool = True, polarizability: bool = False) -> dict:
        """All outputs of the model at ``self.time``'s field (numpy, float64)."""
        e = np.asarray(self.field(self.time), dtype=float)
        b = _batch(self.model, positions.to(torch.float64), cell.to(torch.float64), pbc,
                   self._type_tensor(species), e)
        b["born_charges"], b["polarizability"] = born, polarizability
        out = self.model(b)
        res = {k: v.detach().double().numpy() for k, v in out.items()}
        res["field"] = e
        return res

    def compute(self, positions, cell, pbc, species, *, stress: bool = False):
        from atomtwin.engines.md.forces import ForceResult

        if stress:
            raise InputError("the electric-enthalpy model returns no stress. Fix: run at fixed cell (NVE/NVT).")
        self.n_calls += 1
        res = self.properties(positions, cell, pbc, species, born=False)
        self.last = {"polarization": res["polarization"][0], "field": res["field"]}
        f = torch.as_tensor(res["forces"], dtype=positions.dtype, device=positions.device)
        return ForceResult(float(res["energy"][0]), f, None)


class ElectricCalculator:
    """ASE calculator for an electric-enthalpy model in a static field.

    Properties: ``energy`` (= free_energy = H, eV), ``forces`` (eV/Å), ``dipole`` (the cell
    dipole P, e Å, ASE's name), ``born_charges`` ((N, 3, 3) e, [a, i, j] = dP_i/dR_aj) and
    ``polarizability`` ((3, 3) e Å^2/V).  Works with :func:`atomtwin.toolkit.phonons.compute_phonons`.
    """

    implemented_properties = ["energy", "free_energy", "forces", "dipole", "born_charges", "polarizability"]

    def __new__(cls, model: EnthalpyModel, field: Sequence[float] | None = None):
        from ase.calculators.calculator import Calculator, all_changes

        class _Calc(Calculator):
            implemented_properties = cls.implemented_properties

            def __init__(self):
                super().__init__()
                self.provider = ElectricForceProvider(model, field)
                self.model = model

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                pos = torch.as_tensor(self.atoms.positions, dtype=torch.float64)
                cell = torch.as_tensor(self.atoms.cell.array, dtype=torch.float64)
                r = self.provider.properties(pos, cell, self.atoms.pbc, self.atoms.get_chemical_symbols(),
                                             born=True, polarizability=True)
                self.results = {"energy": float(r["energy"][0]), "free_energy": float(r["energy"][0]),
                                "forces": r["forces"], "dipole": r["polarization"][0],
                                "born_charges": r["born_charges"], "polarizability": r["polarizability"][0]}

        return _Calc()


def run_field_md(model: EnthalpyModel, atoms, *, field: FieldLike = None, dt: float = 0.002,
                 n_steps: int = 1000, every: int = 5, temperature: float | None = 300.0,
                 friction: float = 0.0, seed: int = 0, born_every: int = 1, path=None):
    """Molecular dynamics under a field, recording the dielectric observables.

    Parameters
    ----------
    model
        Electric-enthalpy model (learned or exact).
    atoms
        ``ase.Atoms`` start structure (periodic cell), masses from it.
    field
        None, a static (3,) V/Å or a callable t (ps) -> (3,) V/Å (e.g. :class:`GaussianPulse`).
    dt, n_steps, every
        Time step (ps), steps, frame spacing in steps.
    temperature, friction
        Initial Maxwell–Boltzmann velocities at ``temperature`` K (None: at rest); with
        ``friction`` > 0 (1/ps) a Langevin (BAOAB) thermostat at that temperature, else NVE
        velocity Verlet.
    seed
        Velocities and thermostat noise.
    born_every
        Store Born charges every this many frames (1: all, 0: never; they cost three extra
        backward passes per frame); frames in between hold NaN.
    path
        Optional output file (netCDF/zarr through :func:`atomtwin.toolkit.io.write`).

    Returns
    -------
    xarray.Dataset
        Schema trajectory with ``positions``, ``cell``, ``velocities``, ``forces``,
        ``energy`` (H, eV), ``polarization`` (e Å), ``born_charges`` (e) and a
        ``field`` (frame, xyz) V/Å variable.
    """
    from atomtwin.engines.md import Langevin, VelocityVerlet, make_state
    from atomtwin.toolkit.schema import make_dataset

    if every < 1 or n_steps < 1:
        raise InputError("n_steps and every must be >= 1.")
    provider = ElectricForceProvider(model, field)
    species = atoms.get_chemical_symbols()
    state = make_state(atoms.positions, species, masses=atoms.get_masses(), cell=atoms.cell.array,
                       pbc=atoms.pbc, temperature_K=temperature, seed=seed)
    integ = Langevin(dt, float(temperature), friction) if friction > 0 and temperature else VelocityVerlet(dt)
    provider.time = 0.0
    state = integ.init(state, provider)
    rec: dict[str, list] = {k: [] for k in ("pos", "vel", "frc", "ene", "pol", "born", "field", "time")}

    def record(state, k: int) -> None:
        want_born = born_every > 0 and k % born_every == 0
        if want_born or not provider.last:
            r = provider.properties(state.positions, state.cell, state.pbc, species, born=want_born)
        else:  # the step's own evaluation, at these positions and this time
            r = {"forces": state.forces.numpy(), "energy": [state.energy],
                 "polarization": provider.last["polarization"][None], "field": provider.last["field"]}
        rec["pos"].append(state.positions.numpy().copy())
        rec["vel"].append(state.velocities.numpy().copy())
        rec["frc"].append(r["forces"])
        rec["ene"].append(float(r["energy"][0]))
        rec["pol"].append(r["polarization"][0])
        rec["born"].append(r["born_charges"] if want_born else np.full((len(species), 3, 3), np.nan))
        rec["field"].append(r["field"])
        rec["time"].append(state.time)

    record(state, 0)
    for step in range(1, n_steps + 1):
        provider.time = state.time + dt  # the step evaluates forces at the new time
        state = integ.step(state, provider)
        if not torch.all(torch.isfinite(state.positions)):
            raise RuntimeError(f"MD blew up at step {step} (non-finite positions). Fix: a smaller dt or field.")
        if step % every == 0:
            provider.time = state.time
            record(state, step // every)
    ds = make_dataset(np.array(rec["pos"]), species, cell=atoms.cell.array, time=np.array(rec["time"]),
                      masses=atoms.get_masses(), velocities=np.array(rec["vel"]), forces=np.array(rec["frc"]),
                      energy=np.array(rec["ene"]), polarization=np.array(rec["pol"]),
                      born_charges=np.array(rec["born"]) if born_every > 0 else None,
                      attrs={"integrator": type(integ).__name__, "dt_ps": dt, "temperature_K": temperature or 0.0,
                             "friction_per_ps": friction, "model": type(model).__name__})
    ds["electric_field"] = (("frame", "xyz"), np.array(rec["field"]), {"units": "V/Å"})
    if path is not None:
        from atomtwin.toolkit.io import write

        write(ds, path)
    return ds
