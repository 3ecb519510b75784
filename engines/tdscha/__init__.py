"""SCHA and TD-SCHA: quantum nuclear statics and dynamics in the Gaussian approximation.

Static SCHA (:func:`scha`) minimises the Gaussian variational free energy at a temperature;
TD-SCHA (:func:`run_tdscha`) integrates the centroid and covariances under a pulse with a
correlated, energy-conserving velocity-Verlet scheme.  Energies and forces come from any ASE
calculator (:class:`ASEProvider`), an atomtwin MLIP evaluating the whole ensemble in one
batched call (:class:`MLIPProvider`, imported on first use: it needs torch), any batched callable (:class:`CallableProvider`), or a
polynomial model with exact Gaussian averages (:class:`PolynomialModel`).  Exact 1D quantum
references are in :mod:`engines.tdscha.exact1d`.
"""

from __future__ import annotations

from engines.tdscha.averages import Averages, EnsembleAverager, ExactAverager, cholesky_backward
from engines.tdscha.dynamics import Modes, TDSCHAState, tdscha_energy, verlet_step
from engines.tdscha.exact1d import Grid1D, grid_for_model
from engines.tdscha.hessian import free_energy_hessian
from engines.tdscha.models import (
    PolynomialModel,
    double_well_1d,
    harmonic_1d,
    polar_lattice,
    quartic_1d,
)
from engines.tdscha.pulses import GaussianPulse, SingleCyclePulse, UserPulse, external_force
from engines.tdscha.runner import run_classical, run_tdscha, write_result
from engines.tdscha.scan import scha_temperature_scan
from engines.tdscha.scha import SCHAResult, harmonic_free_energy, harmonic_variance, scha
from engines.tdscha.system import ASEProvider, CallableProvider, ProviderError, System, TDSCHAError

__all__ = [
    "ASEProvider", "Averages", "CallableProvider", "EnsembleAverager", "ExactAverager", "GaussianPulse",
    "Grid1D", "Modes", "PolynomialModel", "ProviderError", "SCHAResult", "SingleCyclePulse", "System",
    "TDSCHAError", "TDSCHAState", "UserPulse", "cholesky_backward", "double_well_1d", "external_force",
    "grid_for_model", "harmonic_1d", "harmonic_free_energy", "harmonic_variance", "polar_lattice",
    "quartic_1d", "run_classical", "MLIPProvider", "free_energy_hessian", "scha_temperature_scan", "run_tdscha", "scha", "tdscha_energy", "verlet_step", "write_result",
]


def __getattr__(name: str):
    if name == "MLIPProvider":  # torch is imported only when the MLIP route is asked for
        from engines.tdscha.mlip_provider import MLIPProvider

        return MLIPProvider
    raise AttributeError(f"module 'engines.tdscha' has no attribute '{name}'")
