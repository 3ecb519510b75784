"""Infrared absorption from the autocorrelation of the dipole current.

The cell dipole's time derivative J = dM/dt (e Å/ps) is either

* the Born-charge current ``J_i = sum_{a,j} Z*_{a,ij} v_{a,j}`` (``born_charges`` with the
  schema's convention ``Z[a, i, j] = dP_i / dr_aj``, times ``velocities``): exact at each
  frame, no finite difference; or
* the forward difference of the stored ``polarization`` (or ``dipole``), a midpoint
  derivative whose transfer function ``sinc(pi nu dt)`` is divided out of the spectrum.

Classical linear response (SI units) gives the absorption coefficient times the
refractive index

    alpha(nu) n(nu) = beta / (6 c V eps0) int_{-inf}^{inf} <J(0) . J(t)> exp(-2 pi i nu t) dt,

in 1/Å, reported in cm^-1.  Quantum corrections multiply it by a factor F(x), x = h nu / k_B T,
obtained from the usual quantum-correction factors Q(x) of the classical lineshape
(Ramírez, López-Ciudad, Kumar & Marx, J. Chem. Phys. 121, 3973 (2004)) with
``F = Q (1 - e^-x) / x``:

=============  ====================  ==================
name           Q(x)                  F(x)
=============  ====================  ==================
``harmonic``   x / (1 - e^-x)        1 (exact for a harmonic system: the classical formula)
``standard``   2 / (1 + e^-x)        tanh(x/2) / (x/2)
``schofield``  exp(x/2)              sinh(x/2) / (x/2)
``none``       1                     (1 - e^-x) / x
=============  ====================  ==================
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.progress import progress
from atomtwin.toolkit.spectra import _data as D
from atomtwin.toolkit.spectra import correlation as C

QUANTUM_CORRECTIONS = ("harmonic", "standard", "schofield", "none")
SOURCES = ("auto", "born_charges", "polarization", "dipole")
#: bytes of working memory per frame chunk of the Born-charge current
CHUNK_BYTES = 256 * 2**20


def quantum_correction_factor(nu: np.ndarray, temperature: float, kind: str = "harmonic") -> np.ndarray:
    """Factor F(h nu / k_B T) multiplying a classical absorption spectrum (see module table).

    Parameters
    ----------
    nu
        Frequencies in THz.
    temperature
        Temperature in K.
    kind
        ``"harmonic"``, ``"standard"``, ``"schofield"`` or ``"none"``.
    """
    key = str(kind).lower()
    if key not in QUANTUM_CORRECTIONS:
        raise InputError(f"unknown quantum correction '{kind}'. Fix: use one of {QUANTUM_CORRECTIONS}.")
    x = U.H_PLANCK * np.asarray(nu, dtype=float) / (U.KB * float(temperature))
    x = np.where(x == 0, 1e-300, x)
    if key == "harmonic":
        return np.ones_like(x)
    if key == "standard":
        return np.tanh(x / 2) / (x / 2)
    if key == "schofield":
        return np.sinh(x / 2) / (x / 2)
    return -np.expm1(-x) / x


def _born_source(ds: xr.Dataset, born_charges) -> np.ndarray | xr.DataArray | None:
    if born_charges is not None:
        z = np.asarray(born_charges, dtype=float)
        n = ds.sizes[S.ATOM]
        if z.shape not in ((n, 3, 3), (ds.sizes[S.FRAME], n, 3, 3)):
            raise InputError(f"born_charges have shape {z.shape}; expected ({n}, 3, 3) or "
                             f"({ds.sizes[S.FRAME]}, {n}, 3, 3) with [a, i, j] = dP_i/dr_aj in e.")
        return z
    return ds[S.BORN_CHARGES] if S.BORN_CHARGES in ds else None


def _resolve_source(ds: xr.Dataset, source: str, born) -> str:
    if source not in SOURCES:
        raise InputError(f"unknown source '{source}'. Fix: use one of {SOURCES}.")
    if source == "auto":
        if born is not None and S.VELOCITIES in ds:
            return "born_charges"
        for name in (S.POLARIZATION, S.DIPOLE):
            if name in ds:
                return name
        if born is not None:
            return "born_charges"
        raise InputError(
            "an IR spectrum needs the dipole: the trajectory has no 'dipole' or 'polarization' and no "
            "'born_charges' to build the current sum Z*.v. Fix: store dipoles or Born charges when "
            "simulating (e.g. an electric-enthalpy model), or pass born_charges= (n_atoms, 3, 3) in e."
        )
    if source == "born_charges" and born is None:
        raise InputError("source='born_charges' but the trajectory has no 'born_charges'. "
                         "Fix: pass born_charges= (n_atoms, 3, 3) in e, or source='dipole'.")
    if source in (S.POLARIZATION, S.DIPOLE) and source not in ds:
        raise InputError(f"source='{source}' but the trajectory has no '{source}'. "
                         f"Fix: use source='auto' (variables present: {sorted(ds.data_vars)}).")
    return source


def _born_current(ds: xr.Dataset, born, dt: float) -> tuple[np.ndarray, bool]:
    """Sum_a Z*_a v_a (n, 3) in e Å/ps; True when from position differences (midpoints)."""
    midpoint = S.VELOCITIES not in ds
    static = isinstance(born, np.ndarray) and born.ndim == 3
    if not midpoint and not static and hasattr(ds[S.VELOCITIES].data, "dask"):
        import dask.array as da

        v = ds[S.VELOCITIES].data
        z = born.data if isinstance(born, xr.DataArray) else da.from_array(born, chunks=v.chunks + ((3,),))
        return np.asarray(da.einsum("faij,faj->fi", z, v).compute()), False
    if not midpoint and static and hasattr(ds[S.VELOCITIES].data, "dask"):
        import dask.array as da

        return np.asarray(da.einsum("aij,faj->fi", born, ds[S.VELOCITIES].data).compute()), False
    n_frames = ds.sizes[S.FRAME] - int(midpoint)
    size = max(1, CHUNK_BYTES // (ds.sizes[S.ATOM] * 8 * (3 if static else 12)))
    out = np.empty((n_frames, 3))
    parts = list(C.iter_chunks(n_frames, size))
    for part in progress(parts, total=len(parts), desc="dipole current", unit="chunk"):
        v = D.velocity_chunk(ds, part, slice(None), dt)
        if static:
            out[part] = np.einsum("aij,faj->fi", born, v)
        else:
            z = born[part] if isinstance(born, np.ndarray) else np.asarray(born.isel({S.FRAME: part}).values)
            out[part] = np.einsum("faij,faj->fi", z, v)
    return out, midpoint


def dipole_current(ds: xr.Dataset, *, source: str = "auto", born_charges=None) -> xr.DataArray:
    """The cell-dipole current J = dM/dt (frame, xyz) in e Å/ps.

    Parameters
    ----------
    ds
        Trajectory with a uniform ``time`` and ``born_charges`` + ``velocities``, or
        ``polarization`` / ``dipole``.
    source
        ``"auto"`` (Born-charge current when Born charges and velocities are present, else
        polarization, else dipole), ``"born_charges"``, ``"polarization"`` or ``"dipole"``.
    born_charges
        Fixed Born charges (n_atoms, 3, 3) in e, ``[a, i, j] = dP_i/dr_aj``, used instead of
        (or in the absence of) the trajectory's.

    Returns
    -------
    xarray.DataArray
        (frame, xyz); ``attrs['midpoint']`` is True when J is a forward difference (one frame
        fewer, at the midpoints), ``attrs['source']`` names the input used.
    """
    S.validate(ds)
    dt = D.timestep(ds)
    born = _born_source(ds, born_charges)
    src = _resolve_source(ds, source, born)
    if src == "born_charges":
        j, midpoint = _born_current(ds, born, dt)
    else:
        m = np.asarray(ds[src].values, dtype=float)
        j, midpoint = np.diff(m, axis=0) / dt, True
    t = np.arange(j.shape[0]) * dt + (0.5 * dt if midpoint else 0.0)
    return xr.DataArray(j, dims=(S.FRAME, S.XYZ), coords={"time": (S.FRAME, t, {"units": "ps"})},
                        name="dipole_current",
                        attrs={"units": "e*Å/ps", "source": src, "midpoint": bool(midpoint), "timestep_ps": dt})


def ir_spectrum(ds: xr.Dataset, *, source: str = "auto", born_charges=None,
                temperature: float | None = None, volume: float | None = None,
                quantum_correction: str = "harmonic", normalization: str = "absolute",
                max_lag: float | None = None, n_blocks: int = 1, window: str = "hann",
                unit: str = "cm-1", max_frequency: float | None = None,
                resolution: float | None = None) -> xr.Dataset:
    """IR absorption ``alpha(nu) n(nu)`` from the dipole-current autocorrelation.

    Parameters
    ----------
    ds
        Trajectory (see :func:`dipole_current` for what it must hold).
    source, born_charges
        As in :func:`dipole_current`.
    temperature
        K; default the kinetic temperature of the velocities (an error without them).
    volume
        Å^3; default the mean cell volume.  Needed for ``normalization="absolute"``.
    quantum_correction
        ``"harmonic"`` (default; equals the classical formula), ``"standard"``,
        ``"schofield"`` or ``"none"`` (module table).
    normalization
        ``"absolute"``: cm^-1; ``"peak"``: maximum of the mean spectrum 1; ``"area"``: unit
        integral over the reported range (per the frequency unit).
    max_lag, n_blocks, window
        Correlation length (ps), blocks for the standard error, lag window.
    unit, max_frequency
        ``"cm-1"`` (default) or ``"THz"``; highest frequency in that unit (an error when above
        the Nyquist frequency of the frame spacing).
    resolution
        Width of the finest feature to resolve, in ``unit``; refused as in
        :func:`atomtwin.toolkit.spectra.vdos` when the correlation length cannot give it.

    Returns
    -------
    xarray.Dataset
        ``absorption`` (frequency) and ``absorption_std_err``; attrs name the source,
        temperature, volume, correction, window, resolution.
    """
    if normalization not in ("absolute", "peak", "area"):
        raise InputError(f"normalization must be 'absolute', 'peak' or 'area', got {normalization!r}.")
    unit = D.frequency_unit(unit)
    current = dipole_current(ds, source=source, born_charges=born_charges)
    dt = current.attrs["timestep_ps"]
    nu_max = C.check_frequency_range(dt, D.to_thz(max_frequency, unit))
    j = current.values
    blocks = C.block_slices(j.shape[0], n_blocks, 2)
    n_lags = C.default_lags(blocks[0].stop - blocks[0].start, dt, max_lag)
    C.block_slices(j.shape[0], n_blocks, n_lags)
    C.check_resolution("IR spectrum", dt, n_lags, nu_max, n_blocks, ds.sizes[S.FRAME], resolution, unit,
                       max_lag is not None, 1 if current.attrs["midpoint"] else 0)
    corr = np.stack([C.autocorrelation(j[b], n_lags).sum(axis=1) for b in blocks], axis=1)  # (lag, block)
    nu, spec = C.correlation_spectrum(corr, dt, window)  # e^2 Å^2 / ps, (freq, block)
    if current.attrs["midpoint"]:
        spec = spec * C.difference_correction(nu, dt)[:, None]
    C.warn_if_aliased(nu, spec.mean(axis=1), "IR spectrum")
    need_t = normalization == "absolute" or quantum_correction not in ("harmonic",)
    temp = float(temperature) if temperature is not None else (D.kinetic_temperature(ds) if need_t else None)
    attrs = {"source": current.attrs["source"], "quantum_correction": quantum_correction,
             "window": window, "n_blocks": n_blocks, "max_lag_ps": (n_lags - 1) * dt,
             "resolution_thz": 1.0 / ((n_lags - 1) * dt), "timestep_ps": dt, "normalization": normalization}
    if temp is not None:
        spec = spec * quantum_correction_factor(nu, temp, quantum_correction)[:, None]
        attrs["temperature_K"] = temp
    keep = nu <= nu_max * (1 + 1e-12)
    factor = D.FREQUENCY_UNITS[unit]
    if normalization == "absolute":
        vol = D.volume(ds, volume)
        beta = 1.0 / (U.KB * temp)
        spec = spec * beta / (6.0 * U.SPEED_OF_LIGHT * vol * U.EPSILON0) * U.INV_A_TO_INV_CM
        attrs["volume_A3"] = vol
        y_unit = "cm^-1"
    spec = spec[keep].T  # (block, freq)
    if normalization == "peak":
        spec = spec / spec.mean(axis=0).max()
        y_unit = "1"
    elif normalization == "area":
        area = np.trapezoid(spec.mean(axis=0), nu[keep] * factor)
        spec = spec / area
        y_unit = f"1/{unit}"
    mean, err = C.mean_and_error(spec)
    return xr.Dataset(
        {"absorption": ("frequency", mean, {"units": y_unit, "long_name": "absorption alpha n"}),
         "absorption_std_err": ("frequency", err, {"units": y_unit})},
        coords=D.frequency_coords(nu[keep], unit), attrs=attrs,
    )
