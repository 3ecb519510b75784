"""Velocity autocorrelation and the vibrational density of states (mass-weighted, per species).

The mass-weighted VACF of species s is ``C_s(t) = sum_{a in s} m_a <v_a(0) . v_a(t)>``; by
equipartition ``C_s(0) = 3 N_s k_B T``.  The VDOS is its spectrum divided by k_B T,

    g_s(nu) = (2 / k_B T) int_{-inf}^{inf} C_s(t) w(t) exp(-2 pi i nu t) dt,   nu >= 0,

so that ``int_0^inf g_s(nu) d nu = 3 N_s`` (the number of degrees of freedom of s) and a
harmonic crystal in equilibrium gives one unit of weight per normal mode, whatever the
masses.  k_B T is the kinetic temperature of the whole trajectory (or ``temperature``).
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

#: bytes of working memory per atom chunk (the FFT of a chunk's velocities)
CHUNK_BYTES = 256 * 2**20


def _velocity_correlations(ds: xr.Dataset, n_blocks: int, max_lag: float | None,
                           chunk_atoms: int | None = None, check=None):
    """Per block and species, the summed mass-weighted VACF (n_blocks, n_species, n_lags)
    in amu Å^2/ps^2; returns (corr, groups, dt, n_lags)."""
    S.validate(ds)
    dt = D.timestep(ds)
    n_frames = ds.sizes[S.FRAME] - (0 if S.VELOCITIES in ds else 1)
    if n_frames < 4:
        raise InputError(f"a spectrum needs at least 4 frames with velocities, got {n_frames}.")
    blocks = C.block_slices(n_frames, n_blocks, 2)
    n_block = blocks[0].stop - blocks[0].start
    n_lags = C.default_lags(n_block, dt, max_lag)
    C.block_slices(n_frames, n_blocks, n_lags)
    D.warn_short(n_block, n_lags, "VACF")
    if check is not None:  # refuse before the expensive part
        check(dt, n_lags)
    groups = D.species_groups(ds)
    m = D.masses(ds)
    if chunk_atoms is None:
        chunk_atoms = max(1, CHUNK_BYTES // (3 * 16 * 2 * (n_block + n_lags)))
    corr = np.zeros((n_blocks, len(groups), n_lags))
    work = [(g, idx[part], b, frames) for g, idx in enumerate(groups.values())
            for part in C.iter_chunks(len(idx), chunk_atoms) for b, frames in enumerate(blocks)]
    for g, atoms, b, frames in progress(work, total=len(work), desc="VACF", unit="chunk"):
        v = D.velocity_chunk(ds, frames, atoms, dt)
        c = C.autocorrelation(v.reshape(v.shape[0], -1), n_lags).reshape(n_lags, len(atoms), 3)
        corr[b, g] += np.einsum("a,kai->k", m[atoms], c)
    return corr, groups, dt, n_lags


def vacf(ds: xr.Dataset, *, max_lag: float | None = None, n_blocks: int = 1,
         chunk_atoms: int | None = None) -> xr.Dataset:
    """Mass-weighted velocity autocorrelation per species.

    Parameters
    ----------
    ds
        Trajectory with ``velocities`` (else midpoint velocities from the positions) and a
        uniform ``time``.
    max_lag
        Longest lag in ps (default a third of a block).
    n_blocks
        Contiguous blocks for the standard error.
    chunk_atoms
        Atoms loaded at once (default: about 256 MiB of work memory).

    Returns
    -------
    xarray.Dataset
        ``vacf`` (species, lag) and ``vacf_total`` (lag): ``<m v(0).v(t)>`` per atom in eV
        (so ``vacf(0) = 3 k_B T``), with ``*_std_err``; ``lag`` in ps.
    """
    corr, groups, dt, n_lags = _velocity_correlations(ds, n_blocks, max_lag, chunk_atoms)
    counts = np.array([len(i) for i in groups.values()], dtype=float)
    per_atom = corr / counts[None, :, None] * U.AMU_A2_PS2_TO_EV
    total = corr.sum(axis=1) / counts.sum() * U.AMU_A2_PS2_TO_EV
    mean, err = C.mean_and_error(per_atom)
    tmean, terr = C.mean_and_error(total)
    coords = {"species": list(groups), "lag": ("lag", np.arange(n_lags) * dt, {"units": "ps"})}
    out = xr.Dataset(
        {"vacf": (("species", "lag"), mean, {"units": "eV", "long_name": "mass-weighted VACF per atom"}),
         "vacf_std_err": (("species", "lag"), err, {"units": "eV"}),
         "vacf_total": ("lag", tmean, {"units": "eV"}),
         "vacf_total_std_err": ("lag", terr, {"units": "eV"})},
        coords=coords, attrs={"n_blocks": n_blocks, "timestep_ps": dt},
    )
    return out


def vdos(ds: xr.Dataset, *, max_lag: float | None = None, n_blocks: int = 1, window: str = "hann",
         unit: str = "THz", max_frequency: float | None = None, normalize: str = "dof",
         temperature: float | None = None, chunk_atoms: int | None = None,
         resolution: float | None = None) -> xr.Dataset:
    """Vibrational density of states from the mass-weighted VACF, per species and in total.

    Parameters
    ----------
    ds
        Trajectory with ``velocities`` (else midpoint velocities from the positions, with the
        finite-difference transfer function divided out) and a uniform ``time``.
    max_lag
        Correlation length in ps; the frequency resolution is about 1/max_lag THz
        (default a third of a block).
    n_blocks
        Contiguous blocks; the result is their mean, ``*_std_err`` the standard error.
    window
        Lag window: ``"hann"`` (default), ``"blackman"``, ``"gaussian"`` or ``"none"``.
    unit
        ``"THz"`` or ``"cm-1"`` for the ``frequency`` coordinate (the density is per that unit).
    max_frequency
        Highest frequency to report, in ``unit``; an error when above the Nyquist frequency
        of the frame spacing.
    normalize
        ``"dof"``: ``int g_s = 3 N_s`` (per species, equipartition); ``"atom"``: per atom of the
        species (``int g_s = 3``); ``"none"``: the raw spectrum ``2 S_s(nu)`` in eV/THz.
    temperature
        k_B T for the normalisation (K); default the kinetic temperature ``C_total(0)/(3 N k_B)``.
    resolution
        Width of the finest feature to resolve, in ``unit``.  The spectrum is refused
        (:class:`~atomtwin.toolkit.errors.InputError`, naming the minimum trajectory length)
        when its resolution 1/max_lag is coarser than this, and always when it is coarser
        than a tenth of the reported band (fewer than 10 frequency bins).

    Returns
    -------
    xarray.Dataset
        ``vdos`` (species, frequency), ``vdos_total`` (frequency) and their ``*_std_err``.
    """
    if normalize not in ("dof", "atom", "none"):
        raise InputError(f"normalize must be 'dof', 'atom' or 'none', got {normalize!r}.")
    unit = D.frequency_unit(unit)
    def check(dt, n_lags):
        nu_max = C.check_frequency_range(dt, D.to_thz(max_frequency, unit))
        C.check_resolution("VDOS", dt, n_lags, nu_max, n_blocks, ds.sizes[S.FRAME], resolution, unit,
                           max_lag is not None, 0 if S.VELOCITIES in ds else 1)

    corr, groups, dt, n_lags = _velocity_correlations(ds, n_blocks, max_lag, chunk_atoms, check)
    nu_max = C.check_frequency_range(dt, D.to_thz(max_frequency, unit))
    nu, spec = C.correlation_spectrum(np.moveaxis(corr, 2, 0), dt, window)  # (n_freq, blocks, species)
    spec = 2.0 * np.moveaxis(spec, 0, 2) * U.AMU_A2_PS2_TO_EV  # eV/THz, one-sided
    if S.VELOCITIES not in ds:
        spec = spec * C.difference_correction(nu, dt)
    counts = np.array([len(i) for i in groups.values()], dtype=float)
    if temperature is not None:
        kt = U.KB * float(temperature)
    else:
        kt = corr[:, :, 0].sum(axis=1).mean() * U.AMU_A2_PS2_TO_EV / (3 * counts.sum())
    if normalize == "none":
        scale_s = np.ones_like(counts)
        unit_y = "eV/THz"
    else:
        scale_s = np.full_like(counts, 1.0 / kt)
        if normalize == "atom":
            scale_s = scale_s / counts
        unit_y = "1/THz"
    per_species = spec * scale_s[None, :, None]
    total = spec.sum(axis=1) * (1.0 / kt / (counts.sum() if normalize == "atom" else 1.0)
                                if normalize != "none" else 1.0)
    C.warn_if_aliased(nu, total.mean(axis=0), "VDOS")
    keep = nu <= nu_max * (1 + 1e-12)
    factor = D.FREQUENCY_UNITS[unit]
    if unit != "THz":
        unit_y = unit_y.replace("THz", unit)
    mean, err = C.mean_and_error(per_species[:, :, keep] / factor)
    tmean, terr = C.mean_and_error(total[:, keep] / factor)
    coords = {"species": list(groups), **D.frequency_coords(nu[keep], unit)}
    attrs = {"n_blocks": n_blocks, "max_lag_ps": (n_lags - 1) * dt, "window": window,
             "resolution_thz": 1.0 / ((n_lags - 1) * dt), "normalize": normalize,
             "temperature_K": kt / U.KB, "timestep_ps": dt,
             "velocities": "stored" if S.VELOCITIES in ds else "finite differences of positions"}
    return xr.Dataset(
        {"vdos": (("species", "frequency"), mean, {"units": unit_y, "long_name": "VDOS"}),
         "vdos_std_err": (("species", "frequency"), err, {"units": unit_y}),
         "vdos_total": ("frequency", tmean, {"units": unit_y, "long_name": "total VDOS"}),
         "vdos_total_std_err": ("frequency", terr, {"units": unit_y})},
        coords=coords, attrs=attrs,
    )
