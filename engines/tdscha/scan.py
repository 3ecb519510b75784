"""SCHA against temperature: free energy, auxiliary and physical phonons, beside the harmonic crystal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from atomtwin.engines.tdscha.providers import System
from atomtwin.engines.tdscha.scha import _harmonic_phi, harmonic_free_energy, scha


def scha_temperature_scan(system: System, temperatures: Sequence[float], *, model=None, provider=None,
                          exact_1d=None, harmonic_reference: np.ndarray | None = None,
                          hessian_configs: int | None = None, **scha_kwargs) -> xr.Dataset:
    """Static SCHA at each temperature, each run started from the previous solution.

    Parameters
    ----------
    system
        The :class:`System`.
    temperatures
        Temperatures, K (any order; scanned as given).
    model, provider
        Exactly one: a polynomial model (exact averages; the physical phonons from the
        free-energy Hessian are added) or an ensemble provider.
    exact_1d
        Optional :class:`~atomtwin.engines.tdscha.exact1d.Grid1D` of a 1D model: exact free energy and
        <x²> added for comparison.
    harmonic_reference
        Cartesian configuration (n,) Å about which the harmonic crystal is taken (default the
        system's reference ``x0``; e.g. the classical minimum of a double well).
    hessian_configs
        With a provider: ensemble size of the free-energy Hessian estimators, which adds
        ``physical_frequency`` and ``physical_frequency_error`` (None: not computed).
    scha_kwargs
        Passed to :func:`~atomtwin.engines.tdscha.scha.scha` (``tol``, ``n_configs``, ``rng``...);
        ``R0``/``phi0`` start the first temperature only.

    Returns
    -------
    xarray.Dataset
        Over ``temperature`` (K): ``free_energy`` and ``free_energy_error`` (eV),
        ``harmonic_free_energy`` (eV; the quantum harmonic crystal about
        ``harmonic_reference``, NaN when that configuration is unstable), ``frequency`` (temperature, mode) THz of
        the SCHA auxiliary phonons, ``physical_frequency`` (model only, negative =
        imaginary), ``centroid`` (temperature, dof) Å, ``position_variance`` (temperature,
        dof) Å², ``converged``; ``exact_free_energy`` and ``exact_x2`` with ``exact_1d``.
    """
    from atomtwin.engines.tdscha.hessian import free_energy_hessian

    s = system
    x_ref = s.x0 if harmonic_reference is None else np.asarray(harmonic_reference, float).reshape(s.n)
    phi_h = _harmonic_phi(s, s.to_mass_scaled(x_ref), model, provider)
    w2h = np.linalg.eigvalsh(phi_h)
    v0 = (model.evaluate(x_ref[None])[0][0] if model is not None
          else provider.evaluate(x_ref[None])[0][0])
    rows = []
    phi, R = scha_kwargs.pop("phi0", None), scha_kwargs.pop("R0", None)  # the first run's start
    for T in temperatures:
        res = scha(s, float(T), model=model, provider=provider, phi0=phi, R0=R, **scha_kwargs)
        phi, R = res.phi, res.R
        A, _ = res.covariances()
        Q, d = s.basis, 1.0 / s.sqrt_m
        row = {"free_energy": res.free_energy, "free_energy_error": res.free_energy_error,
               "harmonic_free_energy": (float(v0) + harmonic_free_energy(np.sqrt(w2h), T)) if w2h.min() > 0 else np.nan,
               "frequency": res.frequencies, "centroid": s.to_cartesian(res.R),
               "position_variance": np.sum((Q @ A) * Q, axis=1) * d**2, "converged": res.converged}
        if model is not None:
            row["physical_frequency"] = (free_energy_hessian(res, model)["frequency"].values if res.converged
                                         else np.full(s.n_reduced, np.nan))
        elif hessian_configs:
            hs = free_energy_hessian(res, provider=provider, n_configs=hessian_configs,
                                     rng=scha_kwargs.get("rng"))
            row["physical_frequency"] = hs["frequency"].values
            row["physical_frequency_error"] = hs["frequency_error"].values
        if exact_1d is not None:
            th = exact_1d.thermal(float(T))
            row["exact_free_energy"], row["exact_x2"] = th["free_energy"], th["x2"]
        rows.append(row)
    dims = {"frequency": ("temperature", "mode"), "physical_frequency": ("temperature", "mode"),
            "physical_frequency_error": ("temperature", "mode"),
            "centroid": ("temperature", "dof"), "position_variance": ("temperature", "dof")}
    units = {"frequency": "THz", "physical_frequency": "THz", "physical_frequency_error": "THz", "centroid": "Å", "position_variance": "Å^2",
             "exact_x2": "Å^2", "converged": "1"}
    data = {k: (dims.get(k, ("temperature",)), np.array([r[k] for r in rows]), {"units": units.get(k, "eV")})
            for k in rows[0]}
    return xr.Dataset(data, coords={"temperature": ("temperature", np.asarray(temperatures, float), {"units": "K"}),
                                    "dof": list(s.names)},
                      attrs={"engine": "atomtwin.scha", "averages": "exact" if model is not None else "ensemble"})
