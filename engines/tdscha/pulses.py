"""Electric-field pulses (V/Å against ps) and their coupling through Born effective charges.

A pulse is a callable ``pulse(t) -> E (3,)`` in V/Å (= eV/(e Å)).  The force on degree of
freedom i is ``sum_k Z[i, k] E_k / screening`` (eV/Å), with Z the Born effective charges
of the :class:`~atomtwin.engines.tdscha.providers.System` and ``screening`` the optional electronic
dielectric constant (the field inside the crystal is the external one divided by
eps_infinity; None or 1 = no screening).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from atomtwin.toolkit.errors import InputError


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float).reshape(3)
    n = np.linalg.norm(v)
    if n == 0:
        raise InputError("polarization is the zero vector. Fix: give a direction, e.g. [1, 0, 0].")
    return v / n


@dataclass(frozen=True)
class GaussianPulse:
    """E(t) = amplitude * pol * exp(-(t - t0)²/(2 width²)) * cos(2 pi frequency (t - t0) + phase).

    Parameters
    ----------
    amplitude
        Peak field, V/Å.
    frequency
        Carrier frequency, THz.
    t0
        Centre, ps.
    width
        Standard deviation of the Gaussian envelope, ps.
    polarization
        Direction (3,), normalised.
    phase
        Carrier-envelope phase, rad.
    """

    amplitude: float
    frequency: float
    t0: float
    width: float
    polarization: tuple[float, float, float] = (1.0, 0.0, 0.0)
    phase: float = 0.0

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise InputError("pulse width must be > 0 ps.")
        _unit(self.polarization)

    def __call__(self, t: float) -> np.ndarray:
        s = t - self.t0
        env = np.exp(-0.5 * (s / self.width) ** 2)
        return self.amplitude * env * np.cos(2 * np.pi * self.frequency * s + self.phase) * _unit(self.polarization)


@dataclass(frozen=True)
class SingleCyclePulse:
    """Single-cycle (THz) pulse: the derivative of a Gaussian, peak field ``amplitude``.

    E(t) = -amplitude * sqrt(e) * (t - t0)/width * exp(-(t - t0)²/(2 width²)) * pol
    """

    amplitude: float
    t0: float
    width: float
    polarization: tuple[float, float, float] = (1.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise InputError("pulse width must be > 0 ps.")
        _unit(self.polarization)

    def __call__(self, t: float) -> np.ndarray:
        x = (t - self.t0) / self.width
        return -self.amplitude * np.sqrt(np.e) * x * np.exp(-0.5 * x * x) * _unit(self.polarization)


@dataclass(frozen=True)
class UserPulse:
    """Wrap any ``func(t_ps) -> field`` (a scalar along ``polarization`` or a (3,) vector), V/Å."""

    func: Callable
    polarization: tuple[float, float, float] = (1.0, 0.0, 0.0)

    def __call__(self, t: float) -> np.ndarray:
        v = np.asarray(self.func(t), dtype=float)
        return v * _unit(self.polarization) if v.ndim == 0 else v.reshape(3)


def make_pulse(spec: dict | None):
    """A pulse from a config mapping: ``kind`` gaussian | single_cycle | none, plus its fields."""
    if not spec:
        return None
    spec = dict(spec)
    kind = spec.pop("kind", "gaussian")
    spec.pop("screening", None)
    if kind == "none":
        return None
    if kind == "gaussian":
        return GaussianPulse(**spec)
    if kind == "single_cycle":
        return SingleCyclePulse(**spec)
    raise InputError(f"unknown pulse kind '{kind}'. Fix: use gaussian, single_cycle or none "
                     "(or atomtwin.engines.tdscha.UserPulse from Python).")


def external_force(system, pulse, screening: float | None = None) -> Callable[[float], np.ndarray]:
    """Mass-scaled external force F(t) (n,) from a pulse (None = no field)."""
    if pulse is None:
        zero = np.zeros(system.n)
        return lambda t: zero
    if screening is not None and screening <= 0:
        raise InputError("screening (eps_infinity) must be > 0.")
    scale = 1.0 / (screening or 1.0)
    return lambda t: system.field_force(pulse(t) * scale)
