"""Run one (P, T) state point of a phase diagram with an MD engine, writing our schema.

``run_point(P, T, protocol, seed) -> xarray.Dataset`` is the *point function* the phase
ensemble driver (:mod:`toolkit.phases.ensemble`) calls; name it in a spec as
``engines.phaserun:run_point``.  The toolkit never imports this module.

Engine: ASE's integrators (Langevin-BAOAB NPT/NVT, velocity Verlet NVE) on a
Lennard-Jones potential; units are argon's by default (σ = 3.405 Å, ε = 119.8 K·k_B,
m = 39.948 amu) so reduced LJ values convert as T* = k_B T/ε, P* = P σ³/ε.
``calculator="ase"`` uses ASE's own :class:`~ase.calculators.lj.LennardJones`;
the default ``"fast"`` is :class:`FastLJ` below — the same potential (energy shifted to
zero at r_c, forces truncated, as ASE's with ``smooth=False``), vectorised with a
Verlet list, which the unit tests check against ASE's to 1e-10.

Protocols (``protocol["kind"]``):

``"npt"`` (default)
    fcc crystal (or ``initial``: the last frame of an earlier trajectory, for ramps),
    ``equil_steps`` of NPT then ``steps`` of NPT sampled every ``sample_every``.
``"nvt"``
    as ``"npt"`` at fixed cell.
``"coexistence"``
    crystal equilibrated in NPT at (P, T); its upper half melted at ``melt_factor`` x T
    with the lower half frozen; both relaxed at (P, T) (anisotropic NPT); then NVE
    production: the interfaces move until the system sits on the melting line.

A run that blows up (non-finite or huge forces) raises :class:`RuntimeError`; frames
written so far stay in ``<output>.partial``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

from toolkit import units as U
from toolkit.io import TrajectoryWriter

ARGON = {"species": "Ar", "sigma": 3.405, "epsilon_K": 119.8, "mass": 39.948}

DEFAULTS = {
    "kind": "npt",
    "cells": (4, 4, 4),
    "density": 1.0,  # reduced, initial fcc density guess
    "rc": 2.5,  # in sigma
    "dt": 0.005,  # in LJ time units tau
    "equil_steps": 500,
    "steps": 1000,
    "sample_every": 20,
    "T_tau": 0.5,  # tau
    "P_tau": 5.0,  # tau
    "melt_factor": 1.8,
    "melt_steps": 600,
    "relax_steps": 300,
    "calculator": "fast",
    "max_force": 1e3,  # epsilon/sigma: beyond this the run has blown up
    "output": None,
    "initial": None,
    **ARGON,
}


class FastLJ(Calculator):
    """Lennard-Jones pair potential with a Verlet neighbour list (energy, forces, stress).

    V(r) = 4ε[(σ/r)^12 − (σ/r)^6] − V(r_c) for r < r_c, forces truncated at r_c
    (ASE's ``LennardJones(smooth=False)`` convention).  Units: eV, Å.
    """

    implemented_properties = ("energy", "energies", "forces", "free_energy", "stress")

    def __init__(self, sigma: float = 1.0, epsilon: float = 1.0, rc: float | None = None,
                 skin: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.sigma, self.epsilon = float(sigma), float(epsilon)
        self.rc = 3.0 * self.sigma if rc is None else float(rc)
        self.skin = 0.3 * self.sigma if skin is None else float(skin)
        self._ref = None

    def _build(self, pos, cell):
        from toolkit.phases.neighbors import pairs

        i, j, _ = pairs(pos, cell, self.rc + self.skin)
        self._ref = (i, j, pos.copy(), cell.copy())

    def _need_rebuild(self, pos, cell) -> bool:
        if self._ref is None:
            return True
        _, _, p0, c0 = self._ref
        strain = np.abs(np.linalg.solve(c0, cell) - np.eye(3)).max()
        if strain * np.abs(cell).max() > 0.1 * self.skin:
            return True
        disp = np.linalg.norm(pos - p0 @ np.linalg.solve(c0, cell), axis=1).max()
        return disp > 0.4 * self.skin

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.positions
        cell = np.asarray(self.atoms.cell[:], dtype=float)
        if self._need_rebuild(pos, cell):
            self._build(pos, cell)
        i, j, _, _ = self._ref
        d = pos[j] - pos[i]
        s = d @ np.linalg.inv(cell)
        d = (s - np.round(s)) @ cell
        r2 = np.einsum("ij,ij->i", d, d)
        m = r2 < self.rc**2
        i, j, d, r2 = i[m], j[m], d[m], r2[m]
        sr6 = (self.sigma**2 / r2) ** 3
        sr6c = (self.sigma / self.rc) ** 6
        e_pair = 4 * self.epsilon * (sr6 * sr6 - sr6) - 4 * self.epsilon * (sr6c * sr6c - sr6c)
        # f_ij on j along d: -dV/dr * d/r = 24ε(2 sr12 - sr6)/r² * d
        fmag = 24 * self.epsilon * (2 * sr6 * sr6 - sr6) / r2
        fvec = fmag[:, None] * d
        n = len(pos)
        forces = np.zeros((n, 3))
        for k in range(3):
            forces[:, k] = np.bincount(j, weights=fvec[:, k], minlength=n) - np.bincount(
                i, weights=fvec[:, k], minlength=n)
        energies = 0.5 * (np.bincount(i, weights=e_pair, minlength=n) + np.bincount(j, weights=e_pair, minlength=n))
        vol = abs(np.linalg.det(cell))
        virial = -np.einsum("pi,pj->ij", d, fvec) / vol  # ASE sign: positive = tensile
        self.results["energy"] = float(e_pair.sum())
        self.results["free_energy"] = self.results["energy"]
        self.results["energies"] = energies
        self.results["forces"] = forces
        self.results["stress"] = full_3x3_to_voigt_6_stress(virial)


def _protocol(protocol: dict | None) -> dict:
    p = dict(DEFAULTS)
    unknown = set(protocol or {}) - set(DEFAULTS) - {"label", "temperatures", "direction"}
    if unknown:
        raise ValueError(f"unknown protocol keys {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    p.update(protocol or {})
    if p["kind"] not in ("npt", "nvt", "coexistence"):
        raise ValueError(f"protocol kind {p['kind']!r} unknown; use 'npt', 'nvt' or 'coexistence'.")
    return p


def _units(p: dict) -> dict:
    eps = p["epsilon_K"] * U.KB  # eV
    sig = p["sigma"]
    tau_ase = sig * np.sqrt(p["mass"] / eps)  # ASE time units
    return {"eps": eps, "sigma": sig, "tau_ase": tau_ase, "tau_ps": tau_ase * U.ASE_TIME_TO_PS}


def _crystal(p: dict):
    from ase.lattice.cubic import FaceCenteredCubic

    a = p["sigma"] * (4.0 / p["density"]) ** (1.0 / 3.0)
    atoms = FaceCenteredCubic(p["species"], latticeconstant=a, size=tuple(p["cells"]), pbc=True)
    atoms.set_masses(np.full(len(atoms), p["mass"]))
    return atoms


def _from_initial(path, p: dict):
    from ase import Atoms

    from toolkit.io import read

    ds = read(path)
    last = ds.isel(frame=-1)
    atoms = Atoms(symbols=list(ds.species.values), positions=last.positions.values,
                  cell=last.cell.values, pbc=True, masses=ds.mass.values)
    if "velocities" in ds:
        atoms.set_velocities(last.velocities.values / U.PS_TO_ASE_TIME)
    return atoms


def _calculator(p: dict, u: dict):
    if p["calculator"] == "ase":
        from ase.calculators.lj import LennardJones

        return LennardJones(sigma=u["sigma"], epsilon=u["eps"], rc=p["rc"] * u["sigma"], smooth=False)
    if p["calculator"] != "fast":
        raise ValueError(f"calculator {p['calculator']!r} unknown; use 'fast' or 'ase'.")
    return FastLJ(sigma=u["sigma"], epsilon=u["eps"], rc=p["rc"] * u["sigma"])


def _check(atoms, p, u, where: str) -> None:
    f = atoms.get_forces()
    fmax = np.abs(f).max() if f.size else 0.0
    if not np.all(np.isfinite(f)) or fmax > p["max_force"] * u["eps"] / u["sigma"]:
        raise RuntimeError(
            f"the run blew up during {where}: max |force| = {fmax:.3g} eV/Å. "
            "Fix: a smaller dt, a gentler thermostat, or a state point inside the model's range."
        )


def _md(atoms, p, u, T, P, steps, *, ensemble, rng, writer=None, t0_ps=0.0, where="MD"):
    from ase.md.langevinbaoab import LangevinBAOAB
    from ase.md.verlet import VelocityVerlet

    dt = p["dt"] * u["tau_ase"]
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
    else:
        kw = dict(temperature_K=T, T_tau=p["T_tau"] * u["tau_ase"], rng=rng)
        if ensemble in ("npt", "npt-aniso"):
            kw.update(externalstress=-P * U.GPA_TO_EV_A3, hydrostatic=ensemble == "npt",
                      P_tau=p["P_tau"] * u["tau_ase"])
        with warnings.catch_warnings():  # ASE reports its heuristic barostat mass
            warnings.simplefilter("ignore", UserWarning)
            dyn = LangevinBAOAB(atoms, timestep=dt, **kw)
    every = int(p["sample_every"])
    done = 0
    while done < steps:
        n = min(every, steps - done)
        dyn.run(n)
        done += n
        _check(atoms, p, u, where)
        if writer is not None and done % every == 0:
            stress = voigt_6_to_full_3x3_stress(atoms.get_stress(include_ideal_gas=True))
            writer.append(
                atoms.positions.copy(), cell=np.array(atoms.cell[:]), time=t0_ps + done * p["dt"] * u["tau_ps"],
                velocities=atoms.get_velocities() * U.PS_TO_ASE_TIME,
                energy=atoms.get_potential_energy(), stress=stress,
            )
    return atoms


def run_point(P: float, T: float, protocol: dict | None = None, seed: int = 0):
    """Simulate one state point and return its trajectory (schema Dataset).

    Parameters
    ----------
    P
        Pressure in GPa (ignored by ``"nvt"``; the target of the coexistence set-up).
    T
        Temperature in K.
    protocol
        Overrides of :data:`DEFAULTS` (see the module docstring).  ``output``: the
        ``*.zarr`` store to stream frames to (default: a temporary one).  (A ``*.nc``
        target does not work with the current TrajectoryWriter, whose partial store is
        zarr but is reopened as netCDF.)
    seed
        Seeds the velocities and the Langevin noise.

    Returns
    -------
    xarray.Dataset
        Production frames with positions, cell, velocities, energy and stress (the
        stress includes the kinetic term: ``attrs['stress_includes_kinetic'] = 1``).
    """
    import tempfile

    from ase.constraints import FixAtoms
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    from toolkit.io import read

    p = _protocol(protocol)
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"temperature must be positive (K), got {T}.")
    if p["kind"] != "nvt" and (P is None or not np.isfinite(P)):
        raise ValueError(f"protocol {p['kind']!r} needs a pressure (GPa), got {P}.")
    u = _units(p)
    rng = np.random.default_rng(seed)
    atoms = _from_initial(p["initial"], p) if p["initial"] else _crystal(p)
    atoms.calc = _calculator(p, u)
    if not p["initial"]:
        # a perfect lattice takes half the kinetic energy into potential energy
        # (equipartition): start at 2T to reach T quickly
        MaxwellBoltzmannDistribution(atoms, temperature_K=2 * T, rng=rng)
        Stationary(atoms)
    out = p["output"]
    tmpdir = None
    if out is None:
        tmpdir = tempfile.mkdtemp(prefix="phaserun-")
        out = str(Path(tmpdir) / "traj.zarr")
    attrs = {
        "source": "engines.phaserun (ASE MD, Lennard-Jones)",
        "stress_includes_kinetic": 1,
        "pressure_target_GPa": float(P) if P is not None else np.nan,
        "temperature_target_K": float(T),
        "seed": int(seed),
        "lj_sigma_A": u["sigma"], "lj_epsilon_eV": u["eps"], "lj_rc_sigma": p["rc"],
        "protocol_kind": p["kind"],
    }
    ensemble = "nvt" if p["kind"] == "nvt" else "npt"
    if p["kind"] == "coexistence":
        _md(atoms, p, u, T, P, p["equil_steps"], ensemble="npt", rng=rng, where="crystal NPT")
        z = atoms.get_scaled_positions()[:, 2]
        lower = z < 0.5
        atoms.set_constraint(FixAtoms(mask=lower))
        _md(atoms, p, u, p["melt_factor"] * T, P, p["melt_steps"], ensemble="nvt", rng=rng, where="melting")
        _md(atoms, p, u, T, P, p["relax_steps"], ensemble="nvt", rng=rng, where="liquid relaxation")
        atoms.set_constraint()
        _md(atoms, p, u, T, P, p["relax_steps"], ensemble="npt-aniso", rng=rng, where="coexistence NPT")
        Stationary(atoms)
        with TrajectoryWriter(out, atoms.get_chemical_symbols(), masses=atoms.get_masses(), attrs=attrs,
                              flush_every=25, chunk_frames=25) as w:  # equal: see report (store chunks)
            _md(atoms, p, u, T, P, p["steps"], ensemble="nve", rng=rng, writer=w, where="NVE coexistence")
    else:
        _md(atoms, p, u, T, P, p["equil_steps"], ensemble=ensemble, rng=rng, where="equilibration")
        with TrajectoryWriter(out, atoms.get_chemical_symbols(), masses=atoms.get_masses(), attrs=attrs,
                              flush_every=25, chunk_frames=25) as w:  # equal: see report (store chunks)
            _md(atoms, p, u, T, P, p["steps"], ensemble=ensemble, rng=rng, writer=w, where="production")
    ds = read(out)
    if tmpdir is not None:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
    return ds


def reduced(P_GPa: float | None = None, T_K: float | None = None, params: dict | None = None) -> dict:
    """Reduced LJ values P* = P σ³/ε and T* = k_B T/ε for the protocol's (default argon) units."""
    p = {**ARGON, **(params or {})}
    eps = p["epsilon_K"] * U.KB
    out = {}
    if P_GPa is not None:
        out["P"] = P_GPa * U.GPA_TO_EV_A3 * p["sigma"] ** 3 / eps
    if T_K is not None:
        out["T"] = T_K / p["epsilon_K"]
    return out


def physical(P_red: float | None = None, T_red: float | None = None, params: dict | None = None) -> dict:
    """Inverse of :func:`reduced`: P in GPa and T in K from reduced LJ values."""
    p = {**ARGON, **(params or {})}
    eps = p["epsilon_K"] * U.KB
    out = {}
    if P_red is not None:
        out["P"] = P_red * eps / p["sigma"] ** 3 * U.EV_A3_TO_GPA
    if T_red is not None:
        out["T"] = T_red * p["epsilon_K"]
    return out
