"""Spectral machinery shared by every spectrum: windows, the cosine transform of a
correlation function, block averaging and the checks on the frame spacing.  The
correlations themselves come from :mod:`atomtwin.toolkit.correlation` (``autocorrelation``
is re-exported here for the spectra modules that import it from this module).

Conventions
-----------
Frequencies ``nu`` are ordinary frequencies in THz (cycles per ps); angular frequencies
are ``omega = 2 pi nu`` in rad/ps.  The spectrum of a correlation function C(t) is its
two-sided Fourier transform

    S(nu) = int_{-inf}^{inf} C(t) w(t) exp(-2 pi i nu t) dt,

with C(-t) = C(t) for the real, stationary autocorrelations used here, so that
``int_{-inf}^{inf} S(nu) d nu = C(0)`` (the window has w(0) = 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import numpy as np
from atomtwin.toolkit.correlation import autocorrelation
from atomtwin.toolkit.errors import InputError
from scipy import fft as sfft

__all__ = ["WINDOWS", "FrameSpacingWarning", "autocorrelation", "block_slices", "check_frequency_range",
           "correlation_spectrum", "default_lags", "difference_correction", "iter_chunks", "lag_window",
           "mean_and_error", "nyquist", "one_sided_transform", "warn_if_aliased"]

#: window functions of the lag, w(t / t_max) for 0 <= t <= t_max, each with w(0) = 1
WINDOWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hann": lambda x: np.cos(0.5 * np.pi * x) ** 2,
    "blackman": lambda x: 0.42 + 0.5 * np.cos(np.pi * x) + 0.08 * np.cos(2 * np.pi * x),
    "gaussian": lambda x: np.exp(-0.5 * (3.0 * x) ** 2),
    "none": lambda x: np.ones_like(x),
}


class FrameSpacingWarning(UserWarning):
    """The frame spacing is close to too coarse for the spectrum's content (aliasing)."""


def lag_window(name: str, n_lags: int) -> np.ndarray:
    """One-sided window over ``n_lags`` lags: shape (n_lags,), w[0] = 1, w[-1] ~ 0."""
    key = str(name).lower()
    if key not in WINDOWS:
        raise InputError(f"unknown window '{name}'. Fix: use one of {sorted(WINDOWS)}.")
    x = np.arange(n_lags) / max(n_lags - 1, 1)
    return WINDOWS[key](x)


def correlation_spectrum(c: np.ndarray, dt: float, window: str = "hann", pad: int = 4
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Fourier transform of an even correlation function given for t >= 0.

    Parameters
    ----------
    c
        (n_lags, ...) correlation at lags 0, dt, 2 dt, ...
    dt
        Lag spacing in ps.
    window
        Lag window name (:data:`WINDOWS`).
    pad
        Zero padding factor (interpolates the spectrum; does not add resolution).

    Returns
    -------
    (nu, S)
        ``nu`` (n_freq,) in THz from 0 to the Nyquist frequency 1/(2 dt); ``S`` (n_freq, ...)
        in [c] * ps, real, with ``int S dnu`` over (-inf, inf) equal to c[0].
    """
    c = np.asarray(c, dtype=float)
    n_lags = c.shape[0]
    w = lag_window(window, n_lags).reshape((n_lags,) + (1,) * (c.ndim - 1))
    cw = c * w
    npad = sfft.next_fast_len(max(2 * n_lags, pad * 2 * n_lags))
    s = np.zeros((npad,) + c.shape[1:])
    s[:n_lags] = cw
    if n_lags > 1:
        s[npad - n_lags + 1:] = cw[1:][::-1]
    spec = dt * sfft.rfft(s, axis=0).real
    nu = sfft.rfftfreq(npad, dt)
    return nu, spec


def one_sided_transform(c: np.ndarray, dt: float, nu: np.ndarray, window: str = "hann") -> np.ndarray:
    """``int_0^inf c(t) w(t) exp(+2 pi i nu t) dt`` at frequencies ``nu`` (THz).

    ``c`` (n_lags, ...) -> complex (len(nu), ...).  The integral of the piecewise-linear
    interpolant of ``c w`` is taken exactly (Filon-trapezoidal weights, Press et al.,
    Numerical Recipes, sec. 13.9), so there is no quadrature error growing as (omega dt)^2 at
    high frequency, as the plain trapezoid rule has.  Used by the dielectric function.
    """
    c = np.asarray(c, dtype=float)
    n_lags = c.shape[0]
    w = lag_window(window, n_lags).reshape((n_lags,) + (1,) * (c.ndim - 1))
    cw = c * w
    npad = sfft.next_fast_len(max(2 * n_lags, 8 * n_lags))
    full = np.conj(sfft.rfft(cw, npad, axis=0))  # sum_k f_k exp(+2 pi i k m / npad)
    grid = sfft.rfftfreq(npad, dt)
    theta = 2 * np.pi * grid * dt
    small = theta < 1e-4
    th = np.where(small, 1.0, theta)
    weight = np.where(small, 1.0 - theta**2 / 12, 2 * (1 - np.cos(th)) / th**2)
    alpha = np.where(small, -0.5 + 1j * theta / 6, (-(1 - np.cos(th)) + 1j * (th - np.sin(th))) / th**2)
    shape = (len(grid),) + (1,) * (c.ndim - 1)
    full = dt * (weight.reshape(shape) * full + alpha.reshape(shape) * cw[0][None])  # far end ~0 (window)
    out = np.empty((len(nu),) + c.shape[1:], dtype=complex)
    flat_full = full.reshape(full.shape[0], -1)
    flat_out = out.reshape(len(nu), -1)
    for j in range(flat_full.shape[1]):
        flat_out[:, j] = np.interp(nu, grid, flat_full[:, j].real) + 1j * np.interp(nu, grid, flat_full[:, j].imag)
    return out


def difference_correction(nu: np.ndarray, dt: float) -> np.ndarray:
    """Factor restoring the spectrum of a derivative estimated by a forward difference.

    ``(x[n+1] - x[n]) / dt`` is the derivative at the midpoint with transfer function
    ``sinc(pi nu dt)``; its power spectrum is multiplied by ``(pi nu dt / sin(pi nu dt))^2``,
    which is finite (at most (pi/2)^2) up to the Nyquist frequency.
    """
    x = np.pi * np.asarray(nu, dtype=float) * dt
    out = np.ones_like(x)
    nz = x > 0
    out[nz] = (x[nz] / np.sin(x[nz])) ** 2
    return out


def nyquist(dt: float) -> float:
    """Nyquist frequency in THz for a frame spacing ``dt`` in ps."""
    return 0.5 / dt


def check_frequency_range(dt: float, max_frequency: float | None) -> float:
    """The highest frequency to report (THz); error when the frames are too coarse for it.

    Raises
    ------
    ValueError
        When ``max_frequency`` exceeds the Nyquist frequency 1/(2 dt), naming both and the
        frame spacing needed.
    """
    fn = nyquist(dt)
    if max_frequency is None:
        return fn
    if max_frequency <= 0:
        raise InputError(f"max_frequency must be positive, got {max_frequency} THz.")
    if max_frequency > fn * (1 + 1e-9):
        from atomtwin.toolkit.units import THZ_TO_INV_CM

        raise InputError(
            f"frame spacing {dt * 1e3:g} fs is too coarse for the asked range: its Nyquist frequency is "
            f"{fn:.4g} THz ({fn * THZ_TO_INV_CM:.4g} cm^-1), below the asked {max_frequency:.4g} THz "
            f"({max_frequency * THZ_TO_INV_CM:.4g} cm^-1). Fix: store frames at least every "
            f"{0.5 / max_frequency * 1e3:.3g} fs, or ask for a lower max_frequency."
        )
    return float(max_frequency)


#: a spectrum must resolve at least this many frequency bins (1 / correlation length) in the
#: band it reports: fewer cannot place a peak, let alone separate two
MIN_BINS = 10


def check_resolution(what: str, dt: float, n_lags: int, nu_max: float, n_blocks: int,
                     n_frames: int, resolution: float | None = None, unit: str = "THz",
                     max_lag_given: bool = False, extra_frames: int = 0) -> float:
    """Refuse a spectrum whose resolution is coarser than what it is asked to show.

    The resolution is 1 / (correlation length) = 1 / ((n_lags - 1) dt) THz.  It must be
    finer than ``resolution`` (THz, the width of the features asked for) when given, and
    always finer than ``nu_max`` / :data:`MIN_BINS` (the band must hold that many bins).

    Returns the resolution in THz.

    Raises
    ------
    InputError
        Naming the resolution reached, the one needed, and the minimum trajectory length
        (frames and ps) that gives it with ``n_blocks`` blocks.
    """
    from atomtwin.toolkit.spectra._data import FREQUENCY_UNITS

    have = 1.0 / ((max(n_lags, 2) - 1) * dt)
    need = nu_max / MIN_BINS
    why = f"a tenth of the reported band 0-{nu_max * FREQUENCY_UNITS[unit]:.4g} {unit}"
    if resolution is not None:
        if not resolution > 0:
            raise InputError(f"resolution must be positive, got {resolution} {unit}.")
        r = float(resolution) / FREQUENCY_UNITS[unit]
        if r < need:
            need, why = r, f"the asked resolution {resolution:g} {unit}"
    if have <= need * (1 + 1e-9):
        return have
    lag_needed = 1.0 / need  # ps
    lags = int(np.ceil(lag_needed / dt - 1e-9)) + 1
    # default correlation length: a third of a block; an explicit max_lag needs the block to
    # hold it, and its tail stays quiet only when it is at most half the block
    per_block = (2 if max_lag_given else 3) * lags
    frames = n_blocks * per_block + extra_frames
    f_unit = FREQUENCY_UNITS[unit]
    raise InputError(
        f"{what}: too short for the features asked for: {n_frames} frames of {dt * 1e3:g} fs give a "
        f"correlation length of {(n_lags - 1) * dt:.3g} ps, i.e. a resolution of {have * f_unit:.3g} {unit}, "
        f"coarser than {why} ({need * f_unit:.3g} {unit}). It needs a correlation length of at least "
        f"{lag_needed:.3g} ps: at least {frames} frames ({frames * dt:.3g} ps) with {n_blocks} block(s). "
        "Fix: a longer trajectory, fewer blocks, or a coarser resolution / lower max_frequency."
    )


def warn_if_aliased(nu: np.ndarray, spectrum: np.ndarray, what: str, fraction: float = 0.01) -> None:
    """Warn when the top 10 % of the band below Nyquist holds more than ``fraction`` of the weight.

    A spectrum that has not decayed by the Nyquist frequency is likely aliased: motion faster
    than the frame spacing resolves has been folded onto lower frequencies.
    """
    s = np.abs(np.asarray(spectrum, dtype=float).reshape(len(nu), -1).sum(axis=1))
    total = s.sum()
    if total <= 0:
        return
    top = s[nu >= 0.9 * nu[-1]].sum() / total
    if top > fraction:
        warnings.warn(
            f"{what}: {100 * top:.1f} % of the spectral weight lies within 10 % of the Nyquist frequency "
            f"{nu[-1]:.4g} THz; the frame spacing is probably too coarse and the spectrum aliased. "
            "Fix: store frames more often.", FrameSpacingWarning, stacklevel=3)


def block_slices(n_frames: int, n_blocks: int, n_lags: int) -> list[slice]:
    """``n_blocks`` contiguous, equal frame ranges, each long enough for ``n_lags`` lags."""
    if n_blocks < 1:
        raise InputError(f"n_blocks must be >= 1, got {n_blocks}.")
    length = n_frames // n_blocks
    if length < n_lags:
        raise InputError(
            f"{n_blocks} blocks of {length} frames are shorter than the correlation length of {n_lags} "
            f"frames. Fix: use fewer blocks (at most {max(n_frames // n_lags, 1)}) or a shorter max_lag."
        )
    return [slice(b * length, (b + 1) * length) for b in range(n_blocks)]


def default_lags(n_block_frames: int, dt: float, max_lag: float | None) -> int:
    """Number of lags for a correlation length ``max_lag`` (ps; default a third of a block)."""
    if max_lag is None:
        return max(2, n_block_frames // 3)
    if max_lag <= 0:
        raise InputError(f"max_lag must be positive, got {max_lag} ps.")
    n = int(round(max_lag / dt)) + 1
    if n > n_block_frames:
        raise InputError(
            f"max_lag {max_lag:g} ps needs {n} frames but a block has {n_block_frames} "
            f"({n_block_frames * dt:g} ps). Fix: fewer blocks or a shorter max_lag."
        )
    return max(n, 2)


def mean_and_error(block_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and its standard error (NaN with a single block)."""
    block_values = np.asarray(block_values)
    n = block_values.shape[0]
    mean = block_values.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan, dtype=float)
    return mean, block_values.std(axis=0, ddof=1) / np.sqrt(n)


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` covering range(n)."""
    size = max(int(size), 1)
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
