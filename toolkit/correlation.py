"""Time correlations by FFT over all time origins, O(F log F): the one home of the
correlation kernels of every analysis (MSD and diffusion, orientational and H-bond
correlations, VACF/VDOS, IR and dielectric spectra, phonon-mode projections).

- :func:`autocorrelation` — the unbiased estimator per column,
  ``c[m] = sum_k x[k] x[k+m] / (F - m)``;
- :func:`summed_autocorrelation` — origin sums ``sum_k sum_cols x[k] x[k+m]`` (one inverse
  FFT for all columns);
- :func:`msd_sums` — origin-summed squared displacements; :func:`segment_msd_sums` the same
  restricted to continuous residence in a region.

The summed kernels return *sums over time origins* (unnormalised), summed over the atoms and
components they are given, so callers can accumulate chunk by chunk (out of core) and divide
by the number of origins once at the end.  All transforms run along contiguous rows of one
zero-padded float64 work array (:class:`Buffers`).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from atomtwin.toolkit.errors import InputError

_TRANSPOSE_BLOCK = 128
#: numpy >= 2 transforms into a given output buffer (``out=``); older numpy: scipy allocates
_NUMPY_RFFT_OUT = int(np.__version__.split(".")[0]) >= 2


__all__ = ["Buffers", "autocorrelation", "msd_sums", "segment_msd_sums", "summed_autocorrelation"]


def _nfft(n_frames: int, n_lags: int | None = None) -> int:
    # a linear (not circular) correlation of F samples up to lag L - 1 needs F + L - 1 points
    n_lags = n_frames if n_lags is None else n_lags
    return sfft.next_fast_len(n_frames + n_lags - 1, real=True)


class Buffers:
    """Work arrays reused between calls of the same shape (pass one to :func:`msd_sums`
    for every atom chunk of an analysis): a fresh 10-100 MB array per chunk costs its
    page faults (first touch) every time; reusing them saved ~20% of the MSD time at
    4000 atoms x 2000 frames."""

    def __init__(self):
        self.real: np.ndarray | None = None
        self.spec: np.ndarray | None = None

    def get(self, rows: int, nfft: int) -> tuple[np.ndarray, np.ndarray]:
        if self.real is None or self.real.shape[1] != nfft or self.real.shape[0] < rows:
            self.real = np.empty((rows, nfft))
            self.spec = np.empty((rows, nfft // 2 + 1), dtype=np.complex128)
        return self.real[:rows], self.spec[:rows]

    def clear(self) -> None:
        self.real = self.spec = None


def _padded_columns(x: np.ndarray, center: bool, buffers: Buffers,
                    n_lags: int | None = None) -> tuple[np.ndarray, int]:
    """(F, ...) -> zero-padded float64 work array (columns, nfft), one contiguous row per
    column, so every FFT runs along contiguous memory (about twice as fast as a strided
    FFT along the frame axis).  With ``center`` each column's first value is subtracted
    in the same pass (a shift that leaves displacements unchanged)."""
    n = x.shape[0]
    nfft = _nfft(n, n_lags)
    xc = np.asarray(x).reshape(n, -1)
    work, _ = buffers.get(xc.shape[1], nfft)
    work[:, n:] = 0.0
    data = work[:, :n]
    x0 = np.array(xc[0], dtype=np.float64) if center else None
    # transpose in blocks of frames: a plain ``xc.T`` copy strides through memory and is
    # ~3x slower on (10^4 frames x 768 columns)
    for f in range(0, n, _TRANSPOSE_BLOCK):
        blk = xc[f:f + _TRANSPOSE_BLOCK]
        if center:
            np.subtract(blk, x0, out=data[:, f:f + _TRANSPOSE_BLOCK].T)
        else:
            data[:, f:f + _TRANSPOSE_BLOCK] = blk.T
    return work, nfft


def _power(work: np.ndarray, nfft: int, workers: int | None, buffers: Buffers) -> np.ndarray:
    """|rfft(row)|^2 of every row of ``work``, (columns, nfft // 2 + 1) float64."""
    spec = buffers.get(work.shape[0], nfft)[1]
    if workers in (None, 1) and _NUMPY_RFFT_OUT:
        f = np.fft.rfft(work, axis=1, out=spec)  # numpy >= 2: into the kept buffer
    else:
        f = sfft.rfft(work, axis=1, workers=workers)
    v = f.view(np.float64)  # (columns, 2 K): re, im interleaved
    np.multiply(v, v, out=v)
    return v.reshape(v.shape[0], -1, 2).sum(axis=2)


def _summed_power_inverse(work: np.ndarray, nfft: int, n: int, workers: int | None,
                          buffers: Buffers) -> np.ndarray:
    """irfft of sum_columns |rfft(row)|^2, the first n lags (the summed autocorrelation)."""
    power = _power(work, nfft, workers, buffers).sum(axis=0)
    return sfft.irfft(power, n=nfft, workers=workers)[:n]


def _check_lags(n: int, n_lags: int | None) -> int:
    if n_lags is None:
        return n
    if not 1 <= int(n_lags) <= n:
        raise InputError(f"n_lags={n_lags} must lie in 1..{n} (the number of frames).")
    return int(n_lags)


def autocorrelation(x: np.ndarray, n_lags: int | None = None, workers: int | None = None) -> np.ndarray:
    """Unbiased autocorrelation of every column along axis 0, by FFT.

    Parameters
    ----------
    x
        Real array (F, ...), frames first.
    n_lags
        Number of lags kept (lag 0 .. n_lags-1), at most F (default F).
    workers
        Threads for :mod:`scipy.fft` (``None``: one; ``-1``: all cores).

    Returns
    -------
    numpy.ndarray
        (n_lags, ...): ``c[m] = sum_{k=0}^{F-1-m} x[k] x[k+m] / (F - m)`` for each trailing
        index, in the units of ``x`` squared.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    n_lags = _check_lags(n, n_lags)
    buffers = Buffers()
    work, nfft = _padded_columns(x, center=False, buffers=buffers, n_lags=n_lags)
    c = sfft.irfft(_power(work, nfft, workers, buffers), n=nfft, axis=1, workers=workers)[:, :n_lags]
    norm = (n - np.arange(n_lags)).reshape((n_lags,) + (1,) * (x.ndim - 1))
    return c.T.reshape((n_lags,) + x.shape[1:]) / norm


def summed_autocorrelation(x: np.ndarray, workers: int | None = None, n_lags: int | None = None
                           ) -> np.ndarray:
    """sum_{k=0}^{F-1-m} sum_cols x[k] * x[k+m] for every lag m.

    Parameters
    ----------
    x
        (F, ...) real array; every trailing column is correlated with itself and the
        results summed (one inverse FFT for all columns).
    workers
        Threads for :mod:`scipy.fft` (``None``: one; ``-1``: all cores).
    n_lags
        Lags kept (default F).

    Returns
    -------
    (n_lags,) float64 array of origin-summed products (not divided by F - m).
    """
    n = x.shape[0]
    n_lags = _check_lags(n, n_lags)
    buffers = Buffers()
    work, nfft = _padded_columns(x, center=False, buffers=buffers, n_lags=n_lags)
    return _summed_power_inverse(work, nfft, n_lags, workers, buffers)


def msd_sums(x: np.ndarray, workers: int | None = None, *, return_sum: bool = False,
             buffers: Buffers | None = None):
    """Origin-summed squared displacements S(m) = sum_k sum_cols (x[k+m] - x[k])^2.

    Uses |a - b|^2 = a^2 + b^2 - 2ab with the cross term from one FFT; each column's
    first value is subtracted first (in the transposing pass), which leaves displacements
    unchanged and keeps the magnitudes, and so the cancellation between the terms, at
    the scale of the displacements rather than of the absolute coordinates.

    Precision: the FFT runs in float64 on purpose.  The cross term is of order
    F * <x^2> with x the shifted coordinate (a random walk spans ~sqrt(F) steps), while
    S(1) is of order one step squared, so the rounding error relative to the
    shortest-lag MSD is ~eps * F: 1e-12 in float64 but ~1e-3 in float32 at F = 10^4,
    which would break the 1e-6 agreement with the direct double sum.

    Parameters
    ----------
    x
        (F, ...) real array (frames first), e.g. (F, n_atoms, n_components) in Å.
    workers
        Threads for :mod:`scipy.fft` (``None``: one; ``-1``: all cores).
    return_sum
        Also return sum over the leading non-frame axis of (x - x[0]), shape (F, d) for
        x of shape (F, n, d): the summed path up to a constant (for drift corrections).
    buffers
        Work arrays to reuse (one :class:`Buffers` per analysis); fresh ones by default.

    Returns
    -------
    (F,) float64 array; divide by (F - m) * n_atoms for the mean.  With ``return_sum``
    a pair (S, path_sum).
    """
    n = x.shape[0]
    buffers = Buffers() if buffers is None else buffers
    work, nfft = _padded_columns(x, center=True, buffers=buffers)
    data = work[:, :n]
    sq = np.einsum("cf,cf->f", data, data)
    path = None
    if return_sum:
        d = x.shape[-1] if x.ndim == 3 else 1
        path = data.reshape(-1, d, n).sum(axis=0).T.copy()
    cs = np.concatenate([[0.0], np.cumsum(sq)])
    m = np.arange(n)
    # sum_{k=0}^{F-m-1} sq[k] + sum_{k=m}^{F-1} sq[k]
    s1 = cs[n - m] + (cs[n] - cs[m])
    out = s1 - 2.0 * _summed_power_inverse(work, nfft, n, workers, buffers)
    out[0] = 0.0
    out = np.maximum(out, 0.0)
    return (out, path) if return_sum else out


def segment_msd_sums(x: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origin-summed squared displacements restricted to continuous residence.

    A pair of frames (k, k+m) of an atom counts only when the atom is inside the region at
    every frame from k to k+m (it has not left and come back).

    Parameters
    ----------
    x
        (F, n_atoms, d) continuous (unwrapped) coordinates in Å.
    inside
        (F, n_atoms) bool, the atom is in the region at that frame.

    Returns
    -------
    sums, counts
        (F,) float64 origin-summed squared displacements and (F,) int64 number of
        (atom, origin) pairs that contributed at each lag.
    """
    n, na = inside.shape
    sums = np.zeros(n)
    counts = np.zeros(n, dtype=np.int64)
    pad = np.zeros((1, na), dtype=bool)
    edges = np.diff(np.concatenate([pad, inside, pad]).astype(np.int8), axis=0)
    starts_f, starts_a = np.nonzero(edges == 1)
    ends_f, ends_a = np.nonzero(edges == -1)
    # np.nonzero orders by frame then atom; sort both by (atom, frame) to pair them
    o1 = np.lexsort((starts_f, starts_a))
    o2 = np.lexsort((ends_f, ends_a))
    starts, atoms, ends = starts_f[o1], starts_a[o1], ends_f[o2]
    lengths = ends - starts
    for length in np.unique(lengths):
        if length < 2:
            counts[0] += int((lengths == length).sum()) * int(length)
            continue
        sel = np.flatnonzero(lengths == length)
        rows = starts[sel][None, :] + np.arange(length)[:, None]  # (L, nseg)
        seg = x[rows, atoms[sel][None, :]]  # (L, nseg, d)
        sums[:length] += msd_sums(seg)
        counts[:length] += len(sel) * (length - np.arange(length))
    return sums, counts
