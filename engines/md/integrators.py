"""Pure MD steps: ``integrator.step(state, provider) -> new state``, never modifying ``state``.

Every integrator is a frozen dataclass of its parameters with three methods:

* ``init(state, provider)`` evaluates the forces and sets the integrator's own variables;
* ``step(state, provider)`` advances one time step ``dt`` (ps);
* ``conserved_energy(state)`` (eV): the quantity the exact dynamics conserves; its drift
  measures the integration error.  For stochastic dynamics it is the effective energy
  ``H - Q``, with ``Q`` the heat the bath (and barostat) put into the system, accumulated
  step by step in ``state.aux["heat"]`` (Bussi, Donadio & Parrinello 2007).

Ensembles: :class:`VelocityVerlet` (NVE), :class:`Langevin` (NVT, BAOAB splitting of
Leimkuhler & Matthews 2013), :class:`NoseHooverChain` (NVT, Martyna, Klein & Tuckerman 1992
chain integrated with the Trotter/Suzuki–Yoshida scheme of Martyna et al. 1996) and
:class:`StochasticCellRescaling` (NPT, isotropic or anisotropic; Bernetti & Bussi 2020),
thermostatted by BAOAB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from atomtwin.engines.md.forces import ForceProvider, check_species
from atomtwin.engines.md.state import (
    ACC,
    KE,
    MDState,
    draw_normal,
    kinetic_energy,
    kinetic_tensor,
    volume,
)
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError


def evaluate(state: MDState, provider: ForceProvider, stress: bool = False) -> MDState:
    """``state`` with energy, forces (and stress) of ``provider`` at its positions."""
    r = provider.compute(state.positions, state.cell, state.pbc, state.species, stress=stress)
    return state.replace(forces=r.forces, energy=r.energy, stress=r.stress)


def _kick(p, f, h):
    return p + (h * ACC) * f


def _drift(x, p, m, h):
    return x + h * (p / m[:, None])


def _ou(state: MDState, p: torch.Tensor, gamma: float, h: float, kt: float):
    """Exact Ornstein–Uhlenbeck step of length h: (new momenta, heat in eV, rng state)."""
    c1 = math.exp(-gamma * h)
    xi, rng = draw_normal(state, p.shape)
    sd = torch.sqrt(state.masses * (kt / KE))[:, None] * math.sqrt(1.0 - c1 * c1)
    p_new = c1 * p + sd * xi
    heat = 0.5 * KE * float(((p_new.square() - p.square()).sum(1) / state.masses).sum())
    return p_new, heat, rng


class _Base:
    dt: float
    needs_stress = False

    def init(self, state: MDState, provider: ForceProvider) -> MDState:
        """Forces at the initial positions and the integrator's own variables."""
        check_species(provider, state.species)
        aux = dict(state.aux)
        aux.setdefault("heat", 0.0)
        return evaluate(state, provider, self.needs_stress).replace(aux=aux)

    def conserved_energy(self, state: MDState) -> float:
        return kinetic_energy(state) + float(state.energy) - state.aux.get("heat", 0.0)

    def _advance(self, state: MDState, **changes) -> MDState:
        return state.replace(step=state.step + 1, time=state.time + self.dt, **changes)


@dataclass(frozen=True)
class VelocityVerlet(_Base):
    """NVE velocity Verlet (time reversible, symplectic). ``dt`` in ps."""

    dt: float

    def step(self, state: MDState, provider: ForceProvider) -> MDState:
        p = _kick(state.momenta, state.forces, 0.5 * self.dt)
        x = _drift(state.positions, p, state.masses, self.dt)
        r = provider.compute(x, state.cell, state.pbc, state.species, stress=self.needs_stress)
        p = _kick(p, r.forces, 0.5 * self.dt)
        return self._advance(state, positions=x, momenta=p, forces=r.forces, energy=r.energy, stress=r.stress)


@dataclass(frozen=True)
class Langevin(_Base):
    """NVT Langevin dynamics, BAOAB splitting.

    Parameters
    ----------
    dt : ps.  temperature : K.  friction : 1/ps (γ; 1/γ is the velocity memory time).
    """

    dt: float
    temperature: float
    friction: float = 1.0

    def step(self, state: MDState, provider: ForceProvider) -> MDState:
        h = 0.5 * self.dt
        p = _kick(state.momenta, state.forces, h)
        x = _drift(state.positions, p, state.masses, h)
        p, heat, rng = _ou(state, p, self.friction, self.dt, U.KB * self.temperature)
        x = _drift(x, p, state.masses, h)
        r = provider.compute(x, state.cell, state.pbc, state.species, stress=self.needs_stress)
        p = _kick(p, r.forces, h)
        aux = {**state.aux, "heat": state.aux.get("heat", 0.0) + heat}
        return self._advance(state, positions=x, momenta=p, forces=r.forces, energy=r.energy,
                             stress=r.stress, rng_state=rng, aux=aux)


_SY3 = (1.0 / (2.0 - 2.0 ** (1.0 / 3.0)),)
_SY3 = (_SY3[0], 1.0 - 2.0 * _SY3[0], _SY3[0])


@dataclass(frozen=True)
class NoseHooverChain(_Base):
    """NVT Nosé–Hoover chain.

    Parameters
    ----------
    dt : ps.  temperature : K.
    tdamp : ps, the thermostat period (masses Q1 = dof kT tdamp², Qj = kT tdamp²).
    chain : number of thermostats in the chain.
    """

    dt: float
    temperature: float
    tdamp: float = 0.1
    chain: int = 3

    def init(self, state, provider):
        state = super().init(state, provider)
        aux = dict(state.aux)
        aux.setdefault("nhc_eta", [0.0] * self.chain)
        aux.setdefault("nhc_v", [0.0] * self.chain)
        return state.replace(aux=aux)

    def _q(self, dof):
        kt = U.KB * self.temperature
        return [dof * kt * self.tdamp**2] + [kt * self.tdamp**2] * (self.chain - 1)

    def _half(self, state: MDState, p: torch.Tensor, eta, v):
        """Propagate the chain and scale momenta for dt/2 (Suzuki–Yoshida order 4, 3 weights)."""
        kt, dof, m = U.KB * self.temperature, state.dof, self.chain
        q = self._q(dof)
        k2 = 2.0 * KE * 0.5 * float((p.square().sum(1) / state.masses).sum())  # 2 K
        scale = 1.0
        for w in _SY3:
            d = w * 0.5 * self.dt

            def g(j, k2=None):
                return (k2 - dof * kt) / q[0] if j == 0 else (q[j - 1] * v[j - 1] ** 2 - kt) / q[j]

            v[m - 1] += 0.5 * d * g(m - 1, k2)
            for j in range(m - 2, -1, -1):
                e = math.exp(-0.25 * d * v[j + 1])
                v[j] = (v[j] * e + 0.5 * d * g(j, k2)) * e
            s = math.exp(-d * v[0])
            scale *= s
            k2 *= s * s
            for j in range(m):
                eta[j] += d * v[j]
            for j in range(m - 1):
                e = math.exp(-0.25 * d * v[j + 1])
                v[j] = (v[j] * e + 0.5 * d * g(j, k2)) * e
            v[m - 1] += 0.5 * d * g(m - 1, k2)
        return p * scale

    def step(self, state, provider):
        eta, v = list(state.aux["nhc_eta"]), list(state.aux["nhc_v"])
        p = self._half(state, state.momenta, eta, v)
        p = _kick(p, state.forces, 0.5 * self.dt)
        x = _drift(state.positions, p, state.masses, self.dt)
        r = provider.compute(x, state.cell, state.pbc, state.species, stress=self.needs_stress)
        p = _kick(p, r.forces, 0.5 * self.dt)
        p = self._half(state, p, eta, v)
        aux = {**state.aux, "nhc_eta": eta, "nhc_v": v}
        return self._advance(state, positions=x, momenta=p, forces=r.forces, energy=r.energy,
                             stress=r.stress, aux=aux)

    def conserved_energy(self, state):
        kt = U.KB * self.temperature
        q = self._q(state.dof)
        eta, v = state.aux["nhc_eta"], state.aux["nhc_v"]
        bath = sum(0.5 * qj * vj * vj for qj, vj in zip(q, v, strict=True))
        bath += state.dof * kt * eta[0] + kt * sum(eta[1:])
        return kinetic_energy(state) + float(state.energy) + bath


@dataclass(frozen=True)
class StochasticCellRescaling(_Base):
    """NPT: stochastic cell rescaling (Bernetti & Bussi 2020) with a BAOAB Langevin thermostat.

    The log-volume ε (isotropic) or the log cell lengths along x, y, z (anisotropic) follow
    the Itô equation ``dε = -(β_T/τ_p)(P0 - P_int) dt + sqrt(2 kT β_T/(V τ_p)) dW`` (per axis
    β_T/3), which samples the isothermal-isobaric ensemble for any β_T, τ_p; β_T and τ_p only
    set how fast the volume relaxes.  Positions scale with the cell, momenta inversely.

    Parameters
    ----------
    dt : ps.  temperature : K.  pressure : eV/Å^3 (target P0).
    compressibility : Å^3/eV (β_T, a rough estimate suffices; 1/GPa = 160.2 Å^3/eV).
    tau_p : ps, barostat relaxation time.  friction : 1/ps, Langevin friction.
    anisotropic : each Cartesian axis rescaled independently (P_xx, P_yy, P_zz -> P0).
    """

    dt: float
    temperature: float
    pressure: float = 0.0
    compressibility: float = 1.0
    tau_p: float = 1.0
    friction: float = 1.0
    anisotropic: bool = False
    needs_stress = True

    def init(self, state, provider):
        if not all(state.pbc) or volume(state) <= 0:
            raise InputError(
                "NPT needs a system periodic in all three directions with a cell "
                f"(pbc={state.pbc}). Fix: give a periodic cell, or run NVT/NVE for a cluster or slab."
            )
        return super().init(state, provider)

    def _barostat(self, state: MDState, x, p, stress):
        kt = U.KB * self.temperature
        vol = float(abs(torch.linalg.det(state.cell)))
        p_int = kinetic_tensor(state.replace(momenta=p)) / vol - stress  # (3, 3) eV/Å^3
        naxes = 3 if self.anisotropic else 1
        beta = self.compressibility / naxes
        xi, rng = draw_normal(state, (naxes,))
        drive = torch.diagonal(p_int) if self.anisotropic else torch.trace(p_int).reshape(1) / 3
        deps = (-(beta / self.tau_p) * (self.pressure - drive) * self.dt
                + math.sqrt(2 * kt * beta * self.dt / (vol * self.tau_p)) * xi.to(drive))
        mu = torch.exp(deps / 3) if not self.anisotropic else torch.exp(deps)
        mu = mu.expand(3)
        cell = state.cell * mu[None, :]
        x = x * mu[None, :]
        k_old = kinetic_energy(state.replace(momenta=p))
        p = p / mu[None, :]
        # heat: energy the move put in; U to first order in the strain (virial theorem)
        strain = torch.log(mu)
        du = vol * float((torch.diagonal(stress) * strain).sum())
        dv = float(abs(torch.linalg.det(cell))) - vol
        heat = kinetic_energy(state.replace(momenta=p)) - k_old + du + self.pressure * dv
        return x, p, cell, heat, rng

    def step(self, state, provider):
        h = 0.5 * self.dt
        p = _kick(state.momenta, state.forces, h)
        x = _drift(state.positions, p, state.masses, h)
        p, heat, rng = _ou(state, p, self.friction, self.dt, U.KB * self.temperature)
        x = _drift(x, p, state.masses, h)
        x, p, cell, heat_b, rng = self._barostat(state.replace(rng_state=rng), x, p, state.stress)
        r = provider.compute(x, cell, state.pbc, state.species, stress=True)
        p = _kick(p, r.forces, h)
        aux = {**state.aux, "heat": state.aux.get("heat", 0.0) + heat + heat_b}
        return self._advance(state, positions=x, momenta=p, cell=cell, forces=r.forces,
                             energy=r.energy, stress=r.stress, rng_state=rng, aux=aux)

    def conserved_energy(self, state):
        return super().conserved_energy(state) + self.pressure * volume(state)


def pressure(state: MDState) -> float:
    """Instantaneous pressure (eV/Å^3): kinetic part plus virial, needs ``state.stress``."""
    if state.stress is None:
        raise InputError("the state carries no stress. Fix: evaluate with stress=True (NPT does).")
    vol = volume(state)
    return float(torch.trace(kinetic_tensor(state) / vol - state.stress)) / 3.0
