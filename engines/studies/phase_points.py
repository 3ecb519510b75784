"""Run one (P, T) state point of a phase diagram with the project's MD engine, writing our schema.

``run_point(P, T, protocol, seed) -> xarray.Dataset`` is the *point function* the phase
ensemble driver (:mod:`atomtwin.toolkit.phases.ensemble`) calls; name it in a spec as
``atomtwin.engines.studies.phase_points:run_point``.  The toolkit never imports this module.

Engine: :mod:`atomtwin.engines.md` — :class:`~atomtwin.engines.md.PairForceProvider` (Lennard-Jones with
the engine's C2 quintic switch from ``r_on`` to ``r_cut``), :class:`~atomtwin.engines.md.Langevin`
(NVT), :class:`~atomtwin.engines.md.StochasticCellRescaling` (NPT, isotropic or anisotropic) and
:class:`~atomtwin.engines.md.VelocityVerlet` (NVE).  Units are argon's by default (σ = 3.405 Å,
ε = 119.8 K·k_B, m = 39.948 amu), so reduced LJ values convert as T* = k_B T/ε,
P* = P σ³/ε (:func:`reduced`, :func:`physical`).

Protocols (``protocol["kind"]``):

``"npt"`` (default)
    fcc crystal (or ``initial``: the last frame of an earlier trajectory, for ramps),
    ``equil_steps`` of NPT then ``steps`` of NPT sampled every ``sample_every``.
``"nvt"``
    as ``"npt"`` at fixed cell.
``"coexistence"``
    an fcc slab elongated along z (``cells``) equilibrated in anisotropic NPT at (P, T);
    its upper half is melted at ``melt_factor`` x T and brought back to T while the lower
    half is pinned (its masses multiplied by ``pin_mass``, so it neither moves nor takes
    heat); both relaxed in anisotropic NPT for ``relax_steps``; then NVE production: the
    interfaces move, exchanging latent heat, until the system sits on the melting line.

The potential is not the full Lennard-Jones one: :func:`mean_field_tail` gives the
first-order (g = 1) correction to compare with full-potential literature.

A run that blows up (non-finite or huge forces) raises :class:`RuntimeError`; frames
written so far stay in ``<output>.partial``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError

ARGON = {"species": "Ar", "sigma": 3.405, "epsilon_K": 119.8, "mass": 39.948}

DEFAULTS = {
    "kind": "npt",
    "cells": (4, 4, 4),
    "density": 1.0,  # reduced, initial fcc density guess
    "rc": 2.5,  # cutoff, σ
    "r_on": 0.9,  # switch start, fraction of rc
    "dt": 0.005,  # τ
    "equil_steps": 500,
    "steps": 1000,
    "sample_every": 20,
    "friction": 1.0,  # Langevin γ, 1/τ
    "melt_friction": 5.0,  # γ while melting/cooling the liquid half of a coexistence run, 1/τ
    "tau_p": 1.0,  # barostat relaxation time, τ
    "compressibility": 0.03,  # β_T guess, σ³/ε (only sets how fast the volume relaxes)
    "anisotropic": False,  # NPT cell: isotropic (default) or each axis on its own
    "melt_factor": 2.5,
    "melt_steps": 300,
    "cool_steps": 200,
    "relax_steps": 200,
    "pin_mass": 1e6,
    "liquid_removed": 0.09,  # fraction of the upper half's atoms removed before melting it
    "max_force": 1e3,  # ε/σ: beyond this the run has blown up
    "output": None,
    "initial": None,
    **ARGON,
}


def _protocol(protocol: dict | None) -> dict:
    p = dict(DEFAULTS)
    unknown = set(protocol or {}) - set(DEFAULTS) - {"label", "temperatures", "direction"}
    if unknown:
        raise InputError(f"unknown protocol keys {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    p.update(protocol or {})
    if p["kind"] not in ("npt", "nvt", "coexistence"):
        raise InputError(f"protocol kind {p['kind']!r} unknown; use 'npt', 'nvt' or 'coexistence'.")
    if not 0 < p["r_on"] <= 1:
        raise InputError(f"r_on is a fraction of rc in (0, 1], got {p['r_on']}.")
    return p


def _units(p: dict) -> dict:
    eps = p["epsilon_K"] * U.KB  # eV
    sig = p["sigma"]
    tau_ps = sig * math.sqrt(p["mass"] / eps) * U.ASE_TIME_TO_PS  # Å sqrt(amu/eV) -> ps
    return {"eps": eps, "sigma": sig, "tau": tau_ps, "pressure": eps / sig**3}  # pressure: eV/Å^3


def _provider(p: dict, u: dict):
    from atomtwin.engines.md import PairForceProvider

    rc = p["rc"] * u["sigma"]
    return PairForceProvider("lj", {p["species"]: (u["eps"], u["sigma"])}, r_cut=rc, r_on=p["r_on"] * rc,
                             skin=0.3 * u["sigma"])


def _crystal(p: dict, u: dict):
    from ase.lattice.cubic import FaceCenteredCubic

    a = u["sigma"] * (4.0 / p["density"]) ** (1.0 / 3.0)
    return FaceCenteredCubic(p["species"], latticeconstant=a, size=tuple(p["cells"]), pbc=True)


def _state(positions, species, masses, cell, *, T=None, velocities=None, seed=0):
    from atomtwin.engines.md import make_state

    return make_state(positions, species, masses=masses, cell=cell, velocities=velocities,
                      temperature_K=T, seed=seed)


def _from_initial(path, p: dict, seed: int):
    from atomtwin.toolkit.io import read

    ds = read(path)
    last = ds.isel(frame=-1)
    v = last.velocities.values if "velocities" in ds else None
    return _state(last.positions.values, list(ds.species.values), ds.mass.values, last.cell.values,
                  velocities=v, seed=seed)


def _check(state, p, u, where: str) -> None:
    f = state.forces.detach().cpu().numpy()
    fmax = np.abs(f).max() if f.size else 0.0
    if not np.all(np.isfinite(f)) or fmax > p["max_force"] * u["eps"] / u["sigma"]:
        raise RuntimeError(
            f"the run blew up during {where}: max |force| = {fmax:.3g} eV/Å. "
            "Fix: a smaller dt, a gentler thermostat, or a state point inside the model's range."
        )


def _integrator(ensemble: str, p: dict, u: dict, T: float, P: float | None, friction: float | None = None):
    from atomtwin.engines.md import Langevin, StochasticCellRescaling, VelocityVerlet

    dt = p["dt"] * u["tau"]
    gamma = (p["friction"] if friction is None else friction) / u["tau"]
    if ensemble == "nve":
        return VelocityVerlet(dt)
    if ensemble == "nvt":
        return Langevin(dt, T, gamma)
    return StochasticCellRescaling(
        dt, T, pressure=P * U.GPA_TO_EV_A3, compressibility=p["compressibility"] / u["pressure"],
        tau_p=p["tau_p"] * u["tau"], friction=gamma, anisotropic=ensemble == "npt-aniso")


def _frame(state, provider):
    """Positions, cell, velocities, energy and the full stress (virial + kinetic, ASE sign)."""
    from atomtwin.engines.md.state import kinetic_tensor

    st = state.stress
    if st is None:
        st = provider.compute(state.positions, state.cell, state.pbc, state.species, stress=True).stress
    vol = float(abs(np.linalg.det(state.cell.cpu().numpy())))
    stress = (st - kinetic_tensor(state) / vol).cpu().numpy()
    return dict(positions=state.positions.cpu().numpy(), cell=state.cell.cpu().numpy(),
                velocities=state.velocities.cpu().numpy(), energy=float(state.energy), stress=stress)


def _md(state, provider, integ, steps: int, p, u, *, where: str, writer=None, frames=None, t0=0.0):
    every = int(p["sample_every"])
    state = integ.init(state, provider)
    for k in range(1, int(steps) + 1):
        state = integ.step(state, provider)
        _check(state, p, u, where)
        if (writer is not None or frames is not None) and k % every == 0:
            fr = _frame(state, provider)
            fr["time"] = t0 + k * p["dt"] * u["tau"]
            if writer is not None:
                writer.append(fr.pop("positions"), **fr)
            else:
                frames.append(fr)
    return state


def _coexistence_start(p, u, T, P, seed, provider):
    """Anisotropic-NPT crystal, upper half melted with the lower half pinned, relaxed together."""
    atoms = _crystal(p, u)
    m = np.full(len(atoms), float(p["mass"]))
    state = _state(atoms.positions, atoms.get_chemical_symbols(), m, atoms.cell[:], T=2 * T, seed=seed)
    state = _md(state, provider, _integrator("npt-aniso", p, u, T, P), p["equil_steps"], p, u, where="crystal NPT")
    x = state.positions.cpu().numpy()
    cell = state.cell.cpu().numpy()
    v = state.velocities.cpu().numpy()
    lower = ((x @ np.linalg.inv(cell))[:, 2] % 1.0) < 0.5
    # the liquid is less dense than the crystal: remove a fraction of the upper half first,
    # or the cooled liquid sits far above the melting pressure and recrystallises at once
    rng = np.random.default_rng(seed + 2)
    upper = np.flatnonzero(~lower)
    drop = rng.choice(upper, int(round(p["liquid_removed"] * upper.size)), replace=False)
    keep = np.setdiff1d(np.arange(x.shape[0]), drop)
    x, v, m, lower = x[keep], v[keep], m[keep], lower[keep]
    pinned = np.where(lower, m * p["pin_mass"], m)
    v[lower] = 0.0
    species = [state.species[k] for k in keep]
    st = _state(x, species, pinned, cell, velocities=v, seed=seed + 1)
    st = _md(st, provider, _integrator("nvt", p, u, p["melt_factor"] * T, None, p["melt_friction"]), p["melt_steps"], p, u,
             where="melting the upper half")
    st = _md(st, provider, _integrator("nvt", p, u, T, None, p["melt_friction"]), p["cool_steps"], p, u, where="cooling the liquid")
    # unpin: the solid gets Maxwell-Boltzmann velocities at T, the liquid keeps its own
    v = st.velocities.cpu().numpy()
    v[lower] = rng.normal(size=(lower.sum(), 3)) * np.sqrt(U.KB * T / (m[lower] * U.AMU_A2_PS2_TO_EV))[:, None]
    v -= (m[:, None] * v).sum(0) / m.sum()
    st = _state(st.positions.cpu().numpy(), st.species, m, st.cell.cpu().numpy(), velocities=v, seed=seed + 3)
    return _md(st, provider, _integrator("npt-aniso", p, u, T, P), p["relax_steps"], p, u,
               where="coexistence NPT relaxation")


def run_point(P: float, T: float, protocol: dict | None = None, seed: int = 0):
    """Simulate one state point and return its trajectory (schema Dataset).

    Parameters
    ----------
    P
        Pressure in GPa (ignored by ``"nvt"``; the target of the coexistence set-up).
    T
        Temperature in K.
    protocol
        Overrides of :data:`DEFAULTS` (see the module docstring).  ``output``: a ``*.zarr``
        store to stream frames to (default: frames kept in memory).
    seed
        Seeds the velocities and every stochastic step.

    Returns
    -------
    xarray.Dataset
        Production frames with positions (Å), cell, velocities (Å/ps), energy (eV) and
        stress (eV/Å^3, including the kinetic term: ``attrs['stress_includes_kinetic'] = 1``).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small systems: one thread is fastest, and the sums' order fixed
    try:
        return _run_point(P, T, protocol, seed)
    finally:
        torch.set_num_threads(threads)


def _run_point(P, T, protocol, seed):
    from atomtwin.toolkit.io import TrajectoryWriter, read
    from atomtwin.toolkit.schema import make_dataset

    p = _protocol(protocol)
    if not (np.isfinite(T) and T > 0):
        raise InputError(f"temperature must be positive (K), got {T}.")
    if p["kind"] != "nvt" and (P is None or not np.isfinite(P)):
        raise InputError(f"protocol {p['kind']!r} needs a pressure (GPa), got {P}.")
    u = _units(p)
    provider = _provider(p, u)
    attrs = {
        "source": "atomtwin.engines.studies.phase_points (atomtwin.engines.md, Lennard-Jones)",
        "stress_includes_kinetic": 1,
        "pressure_target_GPa": float(P) if P is not None else np.nan,
        "temperature_target_K": float(T),
        "seed": int(seed),
        "lj_sigma_A": u["sigma"], "lj_epsilon_eV": u["eps"], "lj_rc_sigma": p["rc"],
        "lj_r_on_sigma": p["r_on"] * p["rc"], "protocol_kind": p["kind"],
    }
    if p["kind"] == "coexistence":
        state = _coexistence_start(p, u, T, P, seed, provider)
        prod = _integrator("nve", p, u, T, P)
    else:
        if p["initial"]:
            state = _from_initial(p["initial"], p, seed)
        else:
            atoms = _crystal(p, u)
            # a perfect lattice takes half the kinetic energy into potential energy
            # (equipartition): start at 2T to reach T quickly
            state = _state(atoms.positions, atoms.get_chemical_symbols(), np.full(len(atoms), p["mass"]),
                           atoms.cell[:], T=2 * T, seed=seed)
        ens = "nvt" if p["kind"] == "nvt" else ("npt-aniso" if p["anisotropic"] else "npt")
        state = _md(state, provider, _integrator(ens, p, u, T, P), p["equil_steps"], p, u, where="equilibration")
        prod = _integrator(ens, p, u, T, P)
    species = list(state.species)
    masses = state.masses.cpu().numpy()
    if p["output"] is None:
        frames: list[dict] = []
        _md(state, provider, prod, p["steps"], p, u, where="production", frames=frames)
        if not frames:
            raise InputError(f"steps={p['steps']} < sample_every={p['sample_every']}: no frame to return.")
        stack = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
        return make_dataset(stack.pop("positions"), species, masses=masses, pbc=(True, True, True),
                            attrs=attrs, **stack)
    out = str(p["output"])
    # the point's own output: a rerun of the point (after a failure) replaces it
    with TrajectoryWriter(out, species, masses=masses, attrs=attrs, flush_every=25, chunk_frames=25,
                          overwrite=True) as w:
        _md(state, provider, prod, p["steps"], p, u, where="production", writer=w)
    return read(Path(out))


def mean_field_tail(rc: float = 2.5, r_on: float = 0.9, n: int = 20001) -> float:
    """The constant a (ε σ³) of the first-order correction to the full LJ potential.

    The engine's potential is u(r) S(r), S the switch from ``r_on``·``rc`` to ``rc`` (σ).
    To first order in W = u (1 − S), with g(r) = 1 where W ≠ 0, the full potential adds
    a ρ to the free energy per atom, a = 2π ∫ r² W(r) dr.  Then (see
    :func:`full_potential_pressure`) a coexistence point (T, P) of the model is one of the
    full potential at (T, P + a ρ_s ρ_l).  For a sharp cut (``r_on`` = 1):
    a = 8π [(1/9) rc⁻⁹ − (1/3) rc⁻³] exactly.
    """
    from scipy.integrate import quad

    def u(r):
        return 4.0 * (r**-12 - r**-6)

    ron = r_on * rc
    tail = 8 * np.pi * (rc**-9 / 9 - rc**-3 / 3)  # ∫_rc^∞ 2π r² u dr
    if ron >= rc:
        return float(tail)

    def w(r):
        x = (r - ron) / (rc - ron)
        s = 1 - x**3 * (10 - 15 * x + 6 * x * x)
        return 2 * np.pi * r * r * u(r) * (1 - s)

    return float(tail + quad(w, ron, rc, epsabs=1e-12)[0])


def full_potential_pressure(P_red: float, rho_solid: float, rho_liquid: float, rc: float = 2.5,
                            r_on: float = 0.9) -> float:
    """Reduced coexistence pressure of the full LJ potential at the temperature where the
    cut model coexists at ``P_red`` with reduced densities ``rho_solid``, ``rho_liquid``.

    First-order perturbation at fixed (P, T): g_full = g_model + a ρ per atom, so equal
    Gibbs energies of the two phases move the coexistence pressure by δP = a ρ_s ρ_l
    (v_s δP + a ρ_s = v_l δP + a ρ_l).
    """
    return float(P_red + mean_field_tail(rc, r_on) * rho_solid * rho_liquid)


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
