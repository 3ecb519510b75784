"""Vibrational spectra and dielectric response from trajectories.

- :func:`vacf`, :func:`vdos`: mass-weighted velocity autocorrelation and vibrational density
  of states, per species (:mod:`.vdos`).
- :func:`dipole_current`, :func:`ir_spectrum`: IR absorption from the dipole current, from
  Born charges (sum Z*.v) or from the stored dipole/polarization, with quantum corrections
  (:mod:`.ir`).
- :func:`cell_dipole`, :func:`dielectric_function`: eps(omega) from polarization fluctuations
  plus eps_inf, conducting boundary conditions (:mod:`.dielectric`).

Every spectrum takes ``n_blocks`` for block-averaged standard errors, ``window``,
``max_lag`` (ps) and ``unit`` (``"THz"`` or ``"cm-1"``), and checks the frame spacing against
the asked ``max_frequency``.
"""

from __future__ import annotations

from atomtwin.toolkit.correlation import autocorrelation
from atomtwin.toolkit.spectra.correlation import FrameSpacingWarning
from atomtwin.toolkit.spectra.dielectric import cell_dipole, dielectric_function
from atomtwin.toolkit.spectra.ir import (
    QUANTUM_CORRECTIONS,
    dipole_current,
    ir_spectrum,
    quantum_correction_factor,
)
from atomtwin.toolkit.spectra.vdos import vacf, vdos

__accessor__ = ("vacf", "vdos", "dipole_current", "ir_spectrum", "cell_dipole", "dielectric_function")

__all__ = [
    "QUANTUM_CORRECTIONS",
    "FrameSpacingWarning",
    "autocorrelation",
    "cell_dipole",
    "dielectric_function",
    "dipole_current",
    "ir_spectrum",
    "quantum_correction_factor",
    "vacf",
    "vdos",
]
