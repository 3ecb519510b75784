"""Frequency-dependent dielectric function from the fluctuations of the cell dipole.

Linear response, classical fluctuation-dissipation theorem, **conducting ("tin-foil")
boundary conditions** — the setting of Ewald sums and of the modern theory of polarization
in periodic simulations, where the macroscopic field vanishes and the cell dipole
fluctuations give the susceptibility directly:

    eps(omega) = eps_inf + beta / (3 V eps0) [ Phi(0) + i omega int_0^inf Phi(t) e^{i omega t} dt ],
    Phi(t) = < dM(0) . dM(t) >,   dM = M - <M>,

with the ``exp(-i omega t)`` time convention, so that eps'' >= 0 is absorption, and the
isotropic average (trace / 3).  The static value is ``eps(0) = eps_inf + beta <dM^2> / (3 V eps0)``.
``eps_inf`` (electronic screening) is not in a trajectory of nuclei: give it (e.g. from DFPT
or from a learned polarizability).  For a sample in vacuum (non-periodic, spherical) the
boundary conditions differ and this formula does not apply.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.spectra import _data as D
from atomtwin.toolkit.spectra import correlation as C
from atomtwin.toolkit.spectra.ir import _born_source, dipole_current


def cell_dipole(ds: xr.Dataset, *, source: str = "auto", born_charges=None) -> xr.DataArray:
    """The cell dipole M(t) (frame, xyz) in e Å: ``polarization``, else ``dipole``, else the
    time integral of the Born-charge current (trapezoid rule, M(0) = 0; its mean is irrelevant
    for fluctuations)."""
    if source == "auto":
        source = next((n for n in (S.POLARIZATION, S.DIPOLE) if n in ds), "born_charges")
    if source in (S.POLARIZATION, S.DIPOLE):
        if source not in ds:
            raise InputError(f"source='{source}' but the trajectory has no '{source}'. "
                             f"Fix: source='auto' (variables present: {sorted(ds.data_vars)}).")
        return ds[source].astype(float).load()
    if _born_source(ds, born_charges) is None or S.VELOCITIES not in ds:
        raise InputError(
            "a dielectric function needs the cell dipole: the trajectory has no 'polarization' or 'dipole', "
            "and no 'born_charges' with 'velocities' to integrate the current sum Z*.v. Fix: store the "
            "polarization (or dipole) when simulating, or pass born_charges= for a trajectory with velocities."
        )
    j = dipole_current(ds, source="born_charges", born_charges=born_charges)
    dt = j.attrs["timestep_ps"]
    jv = j.values
    m = np.zeros_like(jv)
    m[1:] = np.cumsum(0.5 * (jv[1:] + jv[:-1]), axis=0) * dt
    return xr.DataArray(m, dims=(S.FRAME, S.XYZ), attrs={"units": "e*Å", "source": "integrated Z*.v"})


def dielectric_function(ds: xr.Dataset, *, eps_inf=1.0, source: str = "auto", born_charges=None,
                        temperature: float | None = None, volume: float | None = None,
                        max_lag: float | None = None, n_blocks: int = 1, window: str = "hann",
                        unit: str = "THz", max_frequency: float | None = None,
                        resolution: float | None = None) -> xr.Dataset:
    """Dielectric function eps(nu) = eps' + i eps'' from polarization fluctuations.

    Parameters
    ----------
    ds
        Trajectory with a uniform ``time`` and ``polarization`` or ``dipole`` (e Å), or
        ``born_charges`` + ``velocities``.
    eps_inf
        High-frequency (electronic) dielectric constant: a number or a 3x3 tensor (its
        trace / 3 is used).
    source, born_charges
        See :func:`cell_dipole`.
    temperature
        K; default the kinetic temperature of the velocities (an error without them).
    volume
        Å^3; default the mean cell volume.
    max_lag, n_blocks, window, unit, max_frequency, resolution
        As in :func:`atomtwin.toolkit.spectra.ir_spectrum` (too coarse a resolution is refused).

    Returns
    -------
    xarray.Dataset
        ``eps_real``, ``eps_imag`` (frequency) with ``*_std_err``; ``eps_static`` (scalar, with
        ``eps_static_std_err``) = eps_inf + beta <dM^2>/(3 V eps0).  Dimensionless.
    """
    unit = D.frequency_unit(unit)
    S.validate(ds)
    dt = D.timestep(ds)
    nu_max = C.check_frequency_range(dt, D.to_thz(max_frequency, unit))
    e_inf = np.asarray(eps_inf, dtype=float)
    e_inf = float(np.trace(e_inf) / 3.0) if e_inf.shape == (3, 3) else float(e_inf)
    m = cell_dipole(ds, source=source, born_charges=born_charges).values
    dm = m - m.mean(axis=0)
    blocks = C.block_slices(dm.shape[0], n_blocks, 2)
    n_lags = C.default_lags(blocks[0].stop - blocks[0].start, dt, max_lag)
    C.block_slices(dm.shape[0], n_blocks, n_lags)
    C.check_resolution("dielectric function", dt, n_lags, nu_max, n_blocks, ds.sizes[S.FRAME], resolution,
                       unit, max_lag is not None)
    # per block: Phi(t) with the global mean removed (fluctuations about the run's average)
    phi = np.stack([C.autocorrelation(dm[b], n_lags).sum(axis=1) for b in blocks], axis=1)  # (lag, block)
    temp = float(temperature) if temperature is not None else D.kinetic_temperature(ds)
    vol = D.volume(ds, volume)
    pref = 1.0 / (U.KB * temp) / (3.0 * vol * U.EPSILON0)
    nu_grid, _ = C.correlation_spectrum(phi[:, :1], dt, window)
    nu = nu_grid[nu_grid <= nu_max * (1 + 1e-12)]
    omega = 2 * np.pi * nu
    laplace = C.one_sided_transform(phi, dt, nu, window)  # (freq, block)
    chi = pref * (phi[0][None, :] + 1j * omega[:, None] * laplace)
    eps = (e_inf + chi).T  # (block, freq)
    re, re_err = C.mean_and_error(eps.real)
    im, im_err = C.mean_and_error(eps.imag)
    st, st_err = C.mean_and_error(e_inf + pref * phi[0])
    attrs = {"eps_inf": e_inf, "temperature_K": temp, "volume_A3": vol, "n_blocks": n_blocks,
             "window": window, "max_lag_ps": (n_lags - 1) * dt, "timestep_ps": dt,
             "resolution_thz": 1.0 / ((n_lags - 1) * dt),
             "boundary_conditions": "conducting (tin-foil)", "units": "1"}
    return xr.Dataset(
        {"eps_real": ("frequency", re, {"units": "1", "long_name": "eps'"}),
         "eps_imag": ("frequency", im, {"units": "1", "long_name": "eps''"}),
         "eps_real_std_err": ("frequency", re_err, {"units": "1"}),
         "eps_imag_std_err": ("frequency", im_err, {"units": "1"}),
         "eps_static": ((), float(st), {"units": "1"}),
         "eps_static_std_err": ((), float(st_err), {"units": "1"})},
        coords=D.frequency_coords(nu, unit), attrs=attrs,
    )
