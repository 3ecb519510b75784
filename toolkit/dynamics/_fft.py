"""FFT kernels shared by the time-correlation analyses (all time origins, O(F log F)).

Every kernel returns *sums over time origins* (unnormalised), summed over the atoms and
components it is given, so callers can accumulate chunk by chunk (out of core) and divide
by the number of origins once at the end.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft


def _nfft(n_frames: int) -> int:
    return sfft.next_fast_len(2 * n_frames, real=True)


def summed_autocorrelation(x: np.ndarray) -> np.ndarray:
    """sum_{k=0}^{F-1-m} sum_cols x[k] * x[k+m] for every lag m.

    Parameters
    ----------
    x
        (F, ...) real array; every trailing column is correlated with itself and the
        results summed (one inverse FFT for all columns).

    Returns
    -------
    (F,) float64 array of origin-summed products (not divided by F - m).
    """
    n = x.shape[0]
    x = x.reshape(n, -1)
    f = sfft.rfft(x, n=_nfft(n), axis=0)
    power = (f.real**2 + f.imag**2).sum(axis=1)
    return sfft.irfft(power, n=_nfft(n))[:n]


def msd_sums(x: np.ndarray) -> np.ndarray:
    """Origin-summed squared displacements S(m) = sum_k sum_cols (x[k+m] - x[k])^2.

    Uses |a - b|^2 = a^2 + b^2 - 2ab with the cross term from one FFT; the per-column mean
    is removed first, which leaves displacements unchanged and keeps the cancellation
    between the terms harmless in float64.

    Parameters
    ----------
    x
        (F, ...) real array (frames first), e.g. (F, n_atoms, n_components) in Å.

    Returns
    -------
    (F,) float64 array; divide by (F - m) * n_atoms for the mean.
    """
    n = x.shape[0]
    x = np.asarray(x, dtype=np.float64).reshape(n, -1)
    x = x - x.mean(axis=0)
    sq = (x * x).sum(axis=1)
    cs = np.concatenate([[0.0], np.cumsum(sq)])
    m = np.arange(n)
    # sum_{k=0}^{F-m-1} sq[k] + sum_{k=m}^{F-1} sq[k]
    s1 = cs[n - m] + (cs[n] - cs[m])
    out = s1 - 2.0 * summed_autocorrelation(x)
    out[0] = 0.0
    return np.maximum(out, 0.0)


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
