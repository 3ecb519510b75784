"""The fast HDBSCAN assignment gives hdbscan.approximate_predict's labels; noise stays noise."""

from __future__ import annotations

import numpy as np
import pytest

hdbscan = pytest.importorskip("hdbscan")


def _blobs(rng, n, dim=8):
    """Four Gaussian clusters of different density, two of them touching, plus uniform noise."""
    centres = np.zeros((4, dim))
    centres[1, 0], centres[2, 1], centres[3, 0] = 8.0, 8.0, 3.0  # 0 and 3 overlap in their tails
    widths = np.array([1.0, 0.6, 1.5, 0.8])
    k = rng.integers(0, 4, n)
    pts = centres[k] + rng.normal(size=(n, dim)) * widths[k, None]
    noise = rng.uniform(-6, 14, size=(n // 10, dim))
    return np.vstack([pts, noise])


def test_fast_assignment_equals_approximate_predict():
    from atomtwin.toolkit.environments.assign import FastHDBSCANAssigner

    rng = np.random.default_rng(3)
    fit = _blobs(rng, 3000)
    model = hdbscan.HDBSCAN(min_cluster_size=30, prediction_data=True).fit(fit)
    new = _blobs(rng, 6000)
    ref, _ = hdbscan.approximate_predict(model, new)
    a = FastHDBSCANAssigner(model)
    ours = a.predict(new)
    # Every stage applies approximate_predict's own rule (bounds that decide it, then the exact
    # rule); a difference needs two fitted points at the same distance from a new point (a tie
    # broken differently by the two k-d trees), which has probability zero for continuous
    # random data: the bound allows for at most 0.1 % of such ties, far above their rate.
    assert np.mean(ours == ref) >= 0.999
    assert np.all(ours[ref == -1] == -1)  # noise stays noise
    assert 0.01 < np.mean(ref == -1) < 0.5  # the case is not trivial: there is noise...
    assert len(np.unique(ref[ref >= 0])) >= 2  # ...and several clusters
    # both the shortcut and the exact rule were used
    assert a.n_fast_ > 0.5 * len(new) and a.n_mid_ + a.n_exact_ > 0
    # the fitted points themselves: the fast path reproduces the reference too
    assert np.mean(a.predict(fit[::7]) == hdbscan.approximate_predict(model, fit[::7])[0]) >= 0.999


def test_pickled_assigner_same_labels():
    import pickle

    from atomtwin.toolkit.environments.assign import FastHDBSCANAssigner

    rng = np.random.default_rng(4)
    model = hdbscan.HDBSCAN(min_cluster_size=20, prediction_data=True).fit(_blobs(rng, 1000, dim=4))
    a = FastHDBSCANAssigner(model)
    pts = _blobs(rng, 500, dim=4)
    b = pickle.loads(pickle.dumps(a))  # the tree is rebuilt, not shipped
    np.testing.assert_array_equal(a.predict(pts), b.predict(pts))


def test_bounded_query_same_neighbours():
    """The pruned query (distance_upper_bound from an upper bound of the k-th distance) returns
    the neighbours of the plain query, in the same order; a bound that is too small for some
    points (not an upper bound) falls back to the plain query for them."""
    from atomtwin.toolkit.environments.assign import FastHDBSCANAssigner

    rng = np.random.default_rng(5)
    model = hdbscan.HDBSCAN(min_cluster_size=20, prediction_data=True).fit(_blobs(rng, 1500))
    a = FastHDBSCANAssigner(model)
    pts = _blobs(rng, 700)
    k = 21
    d_ref, j_ref = a.tree.query(pts, k=k)
    bound = d_ref[:, -1] * rng.uniform(1.0, 1.5, len(pts))  # valid upper bounds, uneven
    bound[::7] *= 0.5  # not bounds: these points must be queried again without one
    d, j = a._query_bounded(pts, k, bound)
    np.testing.assert_array_equal(j, j_ref)
    np.testing.assert_array_equal(d, d_ref)


def test_approximate_first_query_same_labels():
    """The first stage may use any fitted point near enough (scipy's eps query), not only the
    nearest: for every eps the labels are those of the exact query and of approximate_predict
    (the shortcut only takes a point j with 2 d_j < c2_j, one of the reference's candidates)."""
    from atomtwin.toolkit.environments.assign import FastHDBSCANAssigner

    rng = np.random.default_rng(6)
    model = hdbscan.HDBSCAN(min_cluster_size=25, prediction_data=True).fit(_blobs(rng, 2000))
    pts = _blobs(rng, 3000)
    ref, _ = hdbscan.approximate_predict(model, pts)
    exact = FastHDBSCANAssigner(model, eps=0.0).predict(pts)
    for eps in (0.5, 2.0, 8.0):
        a = FastHDBSCANAssigner(model, eps=eps)
        ours = a.predict(pts)
        np.testing.assert_array_equal(ours, exact)
        assert np.mean(ours == ref) >= 0.999  # ties only, as in the test above
        assert a.n_fast_ > 0.3 * len(pts)  # the shortcut still decides most points


def test_core2_bit_identical_to_hdbscans_tree():
    """The (min_samples + 1)-th neighbour distance of each fitted point, found with the cKDTree
    and recomputed in scikit-learn's order, equals the query of hdbscan's own tree bit for bit:
    on random data, and on a lattice full of exact ties (the near-tie fallback)."""
    from atomtwin.toolkit.environments.assign import _core2, _tree

    rng = np.random.default_rng(7)
    grid = np.stack(np.meshgrid(*[np.arange(6.0)] * 3), -1).reshape(-1, 3)
    for data in (_blobs(rng, 1500), grid * 0.7):
        model = hdbscan.HDBSCAN(min_cluster_size=15, prediction_data=True).fit(data)
        ref_tree = model.prediction_data_.tree
        tree = _tree(np.asarray(data, float))
        for m in (2, 5, 16, 41):
            ours = _core2(np.asarray(data, float), tree, ref_tree, m, "euclidean")
            np.testing.assert_array_equal(ours, ref_tree.query(data, k=m)[0][:, -1])
