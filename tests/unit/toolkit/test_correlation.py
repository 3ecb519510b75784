"""The one time-correlation module: FFT estimators against the direct double sums."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.correlation import (
    autocorrelation,
    msd_sums,
    segment_msd_sums,
    summed_autocorrelation,
)
from atomtwin.toolkit.errors import InputError


def _direct(x, n_lags):
    f = x.shape[0]
    return np.array([(x[: f - m] * x[m:]).sum(axis=0) for m in range(n_lags)])


@pytest.mark.parametrize("n_lags", [1, 17, 301])
def test_autocorrelation_is_the_unbiased_direct_sum(n_lags):
    # (frames, atoms, xyz) keeps its trailing shape; float64 FFT rounding ~1e-13 relative
    x = np.random.default_rng(0).normal(size=(301, 4, 3))
    c = autocorrelation(x, n_lags)
    assert c.shape == (n_lags, 4, 3)
    ref = _direct(x, n_lags) / (301 - np.arange(n_lags))[:, None, None]
    np.testing.assert_allclose(c, ref, rtol=1e-10, atol=1e-12)


def test_summed_autocorrelation_and_msd_sums_are_the_direct_sums():
    x = np.random.default_rng(1).normal(size=(200, 5, 3)).cumsum(axis=0)
    np.testing.assert_allclose(summed_autocorrelation(x), _direct(x, 200).sum(axis=(1, 2)), rtol=1e-9)
    np.testing.assert_allclose(summed_autocorrelation(x, n_lags=30), _direct(x, 30).sum(axis=(1, 2)),
                               rtol=1e-9)
    msd = np.array([((x[m:] - x[: 200 - m]) ** 2).sum() for m in range(200)])
    np.testing.assert_allclose(msd_sums(x), msd, rtol=1e-9, atol=1e-9)
    # residence in a region that covers every frame: the same sums and all pairs counted
    s, c = segment_msd_sums(x, np.ones((200, 5), bool))
    np.testing.assert_allclose(s, msd, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(c, 5 * (200 - np.arange(200)))


@pytest.mark.parametrize("n_lags", [0, 11])
def test_lags_out_of_range_are_named(n_lags):
    with pytest.raises(InputError, match="n_lags"):
        autocorrelation(np.zeros((10, 2)), n_lags)
