"""Fast labels of new points for a fitted HDBSCAN model, equal to ``hdbscan.approximate_predict``.

``approximate_predict`` queries the ``2 * min_samples`` nearest fitted points of every new
point (400 for a 20,000-point fit), which costs ~0.15-0.6 ms per environment, more than the
SOAP descriptor itself.  Its answer is, written out (``c_j``: core distance of fitted point
``j``, ``d_j``: distance of the new point ``p`` to ``j``, neighbours in distance order):

1. ``core_p`` = distance to the ``(min_samples + 1)``-th nearest fitted point;
2. ``nn`` = first argmin over the neighbours of ``max(c_j, core_p, d_j)``, ``mr`` that minimum;
3. the label is that of the selected cluster ``S`` holding ``nn`` when ``mr < D_S`` (``D_S``:
   the distance at which ``S`` is born in the condensed tree, ``1 / lambda_birth``), else
   noise; a fitted noise point as ``nn`` always gives noise.

:class:`FastHDBSCANAssigner` decides the same rule from ``k`` (default 12) nearest
neighbours and bounds instead of the 400-neighbour query.  By the triangle inequality,
with ``c2_j`` the distance from ``j`` to its ``min_samples + 1``-th point (itself
included), ``max_j(c2_j - d_j) <= core_p <= min_j(c2_j + d_j)``.  Any neighbour beyond the
``k``-th has ``max(c_j, d_j) >= d_k``, so when ``d_k`` exceeds the largest possible ``mr``
the nearest mutual-reachability neighbour is among the ``k`` and lies in the *plausible
set*; when every plausible neighbour gives the same answer for every ``core_p`` in its
bounds, that answer is the reference's.  A second shortcut: every possible ``nn`` lies
within ``mr <= R`` of ``p``, so when the ball of radius ``R + d_1`` around the nearest
fitted point holds a single label (precomputed distance to the nearest point of another
label), the label is known wherever the ``nn`` is.  The remaining points (cluster borders,
~15 %) get the exact rule from a ``min_samples + 1`` query (``core_p`` exact; the ``nn`` is
the first neighbour with ``max(c_j, d_j) <= core_p``), and the few whose ``nn`` may lie
beyond it go to ``hdbscan.approximate_predict`` itself.  Every step is the reference's rule
(up to floating-point ties in distance order), so noise stays noise.
"""

from __future__ import annotations

import numpy as np


class FastHDBSCANAssigner:
    """Labels of new points for a fitted ``hdbscan.HDBSCAN`` (``prediction_data=True``).

    Parameters
    ----------
    model
        The fitted clusterer.
    k
        Neighbours queried on the fast path.

    Attributes
    ----------
    n_fast_, n_mid_, n_exact_
        Points decided by the bounds / by the exact rule on ``min_samples + 1`` neighbours /
        by ``approximate_predict`` (running totals).
    """

    def __init__(self, model, k: int = 12):
        from scipy.spatial import cKDTree

        pd = model.prediction_data_
        self.model = model
        self.min_samples = int(model.min_samples or model.min_cluster_size)
        data = np.asarray(pd.raw_data, dtype=np.float64)
        self.k = int(min(k, data.shape[0]))
        self.tree = cKDTree(data)
        self.core = np.asarray(pd.core_distances, dtype=np.float64)
        m = min(self.min_samples + 1, data.shape[0])
        self.core2 = self.tree.query(data, k=m)[0][:, -1] if m > 1 else np.zeros(data.shape[0])
        self.label, self.death = _point_labels(model, data.shape[0])
        self.homog = _homogeneity_radius(data, self.label)
        self.n_fast_ = self.n_mid_ = self.n_exact_ = 0

    def predict(self, Y: np.ndarray) -> np.ndarray:
        """Raw HDBSCAN labels (n,) of points ``Y`` (n, dim); ``-1`` noise."""
        Y = np.asarray(Y, dtype=np.float64)
        n = Y.shape[0]
        out = np.full(n, -1, dtype=np.int64)
        if n == 0 or self.label.max(initial=-1) < 0:
            return out
        d, j = self.tree.query(Y, k=self.k)
        d, j = d.reshape(n, self.k), j.reshape(n, self.k)
        c = self.core[j]
        m = np.maximum(c, d)
        lo = np.max(self.core2[j] - d, axis=1).clip(min=0.0)
        hi = np.min(self.core2[j] + d, axis=1)
        mstar = m.min(axis=1)
        # nn = first neighbour with m_j <= core_p (case A), else the argmin of m (case B)
        before = np.minimum.accumulate(np.hstack([np.full((n, 1), np.inf), m[:, :-1]]), axis=1)
        plausible = (m <= hi[:, None]) & (before > lo[:, None])
        case_b = mstar > lo  # core_p may lie below every m_j of the k: nn = argmin m
        plausible[np.flatnonzero(case_b), np.argmin(m, axis=1)[case_b]] = True
        # in case B a neighbour beyond the k-th could have a smaller m unless m* <= d_k
        complete = ~(case_b & (mstar > d[:, -1])) | (self.k >= self.tree.n)
        mr_hi = np.maximum(hi, mstar)
        mr_lo = np.maximum(lo, mstar)
        lab = self.label[j]
        first = np.where(plausible, lab, np.iinfo(np.int64).max).min(axis=1)
        last = np.where(plausible, lab, -3).max(axis=1)
        same = first == last  # every plausible neighbour is in one cluster (or all noise)
        death = self.death[j]
        inside = mr_hi < np.where(plausible, death, np.inf).min(axis=1)  # joins S for any core_p
        outside = mr_lo >= np.where(plausible, death, -np.inf).max(axis=1)  # never joins S
        noise = same & (first < 0) & complete
        member = same & (first >= 0) & complete & inside
        drop = same & (first >= 0) & complete & outside
        # Any nn lies within mr <= R = max(hi, m*) of p; if the ball of radius R + d_1 around
        # the nearest fitted point holds one label only, that label is the nn's wherever the
        # nn is (also beyond the k-th neighbour).
        R = mr_hi
        homog = R + d[:, 0] < self.homog[j[:, 0]]
        L = self.label[j[:, 0]]
        D = self.death[j[:, 0]]
        lo_all = np.maximum(lo, np.minimum(mstar, d[:, -1]))
        noise |= homog & (L < 0)
        member |= homog & (L >= 0) & (R < D)
        drop |= homog & (L >= 0) & (lo_all >= D)
        first = np.where(homog, L, first)
        out[member] = first[member]
        decided = noise | member | drop
        rest = np.flatnonzero(~decided)
        self.n_fast_ += int(n - rest.size)
        if rest.size:
            out[rest] = self._exact(Y[rest])
        return out

    def _exact(self, Y: np.ndarray) -> np.ndarray:
        """The reference rule with ``core_p`` from an ``min_samples + 1`` query; the points whose
        nn may lie beyond it (case B) go to ``hdbscan.approximate_predict`` itself."""
        ms = self.min_samples
        out = np.full(Y.shape[0], -1, dtype=np.int64)
        if ms + 1 > self.tree.n:
            import hdbscan

            self.n_exact_ += Y.shape[0]
            return hdbscan.approximate_predict(self.model, Y)[0]
        d, j = self.tree.query(Y, k=ms + 1)
        core_p = d[:, ms]
        a = np.maximum(self.core[j], d) <= core_p[:, None]  # case A candidates, distance order
        has = a.any(axis=1)
        nn = j[np.arange(Y.shape[0]), np.argmax(a, axis=1)]
        lab = np.where(core_p < self.death[nn], self.label[nn], -1)
        out[has] = lab[has]
        rest = np.flatnonzero(~has)
        self.n_mid_ += int(has.sum())
        if rest.size:
            import hdbscan

            out[rest] = hdbscan.approximate_predict(self.model, Y[rest])[0]
            self.n_exact_ += int(rest.size)
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        state["tree"] = None  # rebuilt on load: a cKDTree pickles as its whole data anyway
        return state

    def __setstate__(self, state):
        from scipy.spatial import cKDTree

        self.__dict__.update(state)
        self.tree = cKDTree(np.asarray(self.model.prediction_data_.raw_data, dtype=np.float64))


def _homogeneity_radius(data: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Distance from each fitted point to the nearest fitted point of another label (-1 included)."""
    from scipy.spatial import cKDTree

    out = np.full(label.size, np.inf)
    for lab in np.unique(label):
        mine = label == lab
        if mine.all():
            break
        out[mine] = cKDTree(data[~mine]).query(data[mine], k=1)[0]
    return out


def _point_labels(model, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per fitted point: its selected cluster (prediction labels, -1 none) and ``D_S``.

    ``D_S = 1 / lambda_birth(S)`` (Å-like units of the reduced space); a new point joins ``S``
    through this point when its mutual-reachability distance is below ``D_S``.
    """
    pd = model.prediction_data_
    raw = model.condensed_tree_._raw_tree
    cmap = pd.cluster_map  # selected clusters and every cluster below them -> label
    birth = {
        int(c): float(lv) for c, lv in zip(raw["child"], raw["lambda_val"], strict=True) if c >= n
    }
    parent = {int(c): int(p) for c, p in zip(raw["child"], raw["parent"], strict=True)}
    selected = {int(c) for c in pd.reverse_cluster_map.values()}
    label = np.full(n, -1, dtype=np.int64)
    death = np.full(n, np.inf)
    pts = raw[raw["child"] < n]
    for child, par in zip(pts["child"], pts["parent"], strict=True):
        par = int(par)
        if par not in cmap:
            continue
        s = par
        while s not in selected:  # climb to the selected cluster holding par
            s = parent[s]
        label[int(child)] = cmap[par]
        lb = birth.get(s, 0.0)
        death[int(child)] = 1.0 / lb if lb > 0 else np.inf
    return label, death
