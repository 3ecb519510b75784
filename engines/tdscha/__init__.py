"""SCHA and TD-SCHA: quantum nuclear statics and dynamics in the Gaussian approximation.

Static SCHA (:func:`scha`) minimises the Gaussian variational free energy at a temperature
(raising :class:`SCHANotConverged` when it cannot); :func:`scha_temperature_scan` repeats it
over temperatures, :func:`free_energy_hessian` gives the physical (free-energy Hessian)
phonons for a polynomial model or any force provider, and :func:`instability_temperature`
the soft-mode transition temperature at a wavevector.  :class:`ReducedUnits` converts model
studies written in dimensionless form.  TD-SCHA (:func:`run_tdscha`) integrates
the centroid and covariances under a pulse with a correlated, energy-conserving
velocity-Verlet scheme; :func:`run_classical` is classical MD under the same pulse.
Energies and forces come from any ASE calculator (:class:`ASEProvider`, one calculator copy
per ensemble member), an atomtwin MLIP evaluating the whole ensemble in one batched call
(:class:`MLIPProvider`), any batched callable (:class:`CallableProvider`), or a polynomial
model with exact Gaussian averages (:class:`PolynomialModel`).  Exact 1D quantum references
are in :mod:`atomtwin.engines.tdscha.exact1d`.

Names are imported on first use, so ``atomtwin --help`` (which imports the CLI module) does
not pay for scipy, xarray or torch.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

_EXPORTS = {
    "averages": ("Averages", "EnsembleAverager", "ExactAverager", "cholesky_backward"),
    "dynamics": ("Modes", "TDSCHAState", "tdscha_energy", "verlet_step"),
    "exact1d": ("Grid1D", "grid_for_model"),
    "hessian": ("free_energy_hessian",),
    "instability": ("instability_temperature", "wavevector_patterns"),
    "lattice_models": ("soft_mode_chain",),
    "reduced_units": ("ReducedUnits",),
    "mlip_provider": ("MLIPProvider",),
    "models": ("PolynomialModel", "double_well_1d", "harmonic_1d", "polar_lattice", "quartic_1d"),
    "pulses": ("GaussianPulse", "SingleCyclePulse", "UserPulse", "external_force"),
    "runner": ("run_classical", "run_tdscha", "write_result"),
    "scan": ("scha_temperature_scan",),
    "scha": ("SCHANotConverged", "SCHAResult", "harmonic_free_energy", "harmonic_variance", "scha"),
    "providers": ("ASEProvider", "CallableProvider", "ProviderError", "System", "TDSCHAError"),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'atomtwin.engines.tdscha' has no attribute '{name}'")
    value = getattr(import_module(f"atomtwin.engines.tdscha.{mod}"), name)
    globals()[name] = value
    # ``scha`` is both a submodule and the function it exports: loading the submodule for
    # another name (SCHAResult...) rebinds the package attribute to the module; undo that
    if isinstance(globals().get("scha"), ModuleType):
        globals()["scha"] = globals()["scha"].scha
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers see the eager imports
    from atomtwin.engines.tdscha.averages import (  # noqa: F401
        Averages,
        EnsembleAverager,
        ExactAverager,
        cholesky_backward,
    )
    from atomtwin.engines.tdscha.dynamics import Modes, TDSCHAState, tdscha_energy, verlet_step  # noqa: F401
    from atomtwin.engines.tdscha.exact1d import Grid1D, grid_for_model  # noqa: F401
    from atomtwin.engines.tdscha.hessian import free_energy_hessian  # noqa: F401
    from atomtwin.engines.tdscha.instability import instability_temperature, wavevector_patterns  # noqa: F401
    from atomtwin.engines.tdscha.lattice_models import soft_mode_chain  # noqa: F401
    from atomtwin.engines.tdscha.mlip_provider import MLIPProvider  # noqa: F401
    from atomtwin.engines.tdscha.models import (  # noqa: F401
        PolynomialModel,
        double_well_1d,
        harmonic_1d,
        polar_lattice,
        quartic_1d,
    )
    from atomtwin.engines.tdscha.providers import (  # noqa: F401
        ASEProvider,
        CallableProvider,
        ProviderError,
        System,
        TDSCHAError,
    )
    from atomtwin.engines.tdscha.pulses import (  # noqa: F401
        GaussianPulse,
        SingleCyclePulse,
        UserPulse,
        external_force,
    )
    from atomtwin.engines.tdscha.reduced_units import ReducedUnits  # noqa: F401
    from atomtwin.engines.tdscha.runner import run_classical, run_tdscha, write_result  # noqa: F401
    from atomtwin.engines.tdscha.scan import scha_temperature_scan  # noqa: F401
    from atomtwin.engines.tdscha.scha import (  # noqa: F401
        SCHANotConverged,
        SCHAResult,
        harmonic_free_energy,
        harmonic_variance,
        scha,
    )
