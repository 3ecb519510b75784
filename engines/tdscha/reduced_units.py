"""Reduced units for model studies: write a model as V(x) = E0 v(x / l0), run in eV/Å/amu.

Model potentials are usually stated in dimensionless form, e.g. v(y) = (y² - 1)² with a
dimensionless Planck constant hbar* = hbar / (E0 t0), t0 = l0 sqrt(m0 / E0), which alone
measures how quantum the problem is.  :class:`ReducedUnits` converts both ways, so the
engines keep their one unit system (eV, Å, ps, amu, K)::

    u = ReducedUnits.from_hbar(0.5, energy=0.1, length=0.5)   # hbar* = 0.5: choose the mass
    model = u.polynomial(k=-4.0, quartic=1.0, v0=1.0)          # v(y) = (y² - 1)² = 1 - 2y² + y⁴
    res = scha(System.from_model(model), u.temperature(0.2), model=model)
    u.reduced(res)   # {'free_energy': F/E0, 'frequencies': w t0, 'centroid': x/l0, ...}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.units import AMU_A2_PS2_TO_EV, HBAR, KB


@dataclass(frozen=True)
class ReducedUnits:
    """Energy ``energy`` (eV), length ``length`` (Å) and mass ``mass`` (amu) as the units.

    Attributes derived: ``time`` t0 = l0 sqrt(m0/E0) (ps), ``hbar`` = hbar/(E0 t0)
    (dimensionless), ``temperature_unit`` E0/k_B (K).
    """

    energy: float = 1.0
    length: float = 1.0
    mass: float = 1.0

    def __post_init__(self) -> None:
        if min(self.energy, self.length, self.mass) <= 0:
            raise InputError("reduced units need energy, length and mass > 0 (eV, Å, amu).")

    @classmethod
    def from_hbar(cls, hbar: float, energy: float = 1.0, length: float = 1.0) -> ReducedUnits:
        """The mass (amu) that makes the dimensionless Planck constant ``hbar``."""
        if hbar <= 0:
            raise InputError("hbar* must be > 0.")
        # hbar* = HBAR / (E0 l0 sqrt(m/E0)) = HBAR / (l0 sqrt(m E0))
        m = (HBAR / (hbar * length)) ** 2 / energy / AMU_A2_PS2_TO_EV
        return cls(energy, length, m)

    @property
    def time(self) -> float:
        """t0 = l0 sqrt(m0 / E0), ps."""
        return self.length * np.sqrt(self.mass * AMU_A2_PS2_TO_EV / self.energy)

    @property
    def hbar(self) -> float:
        """Dimensionless Planck constant hbar / (E0 t0)."""
        return HBAR / (self.energy * self.time)

    @property
    def temperature_unit(self) -> float:
        """E0 / k_B, K."""
        return self.energy / KB

    def temperature(self, reduced: float) -> float:
        """k_B T / E0 -> T in K."""
        return float(reduced) * self.temperature_unit

    def polynomial(self, k: float = 0.0, cubic: float = 0.0, quartic: float = 0.0, v0: float = 0.0):
        """1D model E0 [v0 + k y²/2 + cubic y³ + quartic y⁴], y = x / l0, as a PolynomialModel."""
        from atomtwin.engines.tdscha.models import PolynomialModel

        E, L = self.energy, self.length
        return PolynomialModel(K=[[k * E / L**2]], T3=[[[6.0 * cubic * E / L**3]]],
                               T4=[[[[24.0 * quartic * E / L**4]]]], v0=v0 * E, masses=[self.mass],
                               names=("y",))

    def reduced(self, result) -> dict:
        """A :class:`~atomtwin.engines.tdscha.scha.SCHAResult` in reduced units."""
        t0 = self.time
        out = {"free_energy": result.free_energy / self.energy,
               "free_energy_error": result.free_energy_error / self.energy,
               "frequencies": result.omega * t0,  # angular frequency in 1/t0
               "centroid": result.system.to_cartesian(result.R) / self.length,
               "temperature": result.temperature / self.temperature_unit}
        if result.frequency_error is not None:
            out["frequency_errors"] = 2 * np.pi * result.frequency_error * t0
        return out
