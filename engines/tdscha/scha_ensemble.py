"""The sampled (stochastic) SCHA ensemble: importance reweighting and antithetic error bars.

An ensemble is drawn once at a Gaussian (R0, A0 = L0 L0^T) in antithetic pairs
(``xi`` and ``-xi``, member ``s`` and ``s + S/2``) and evaluated by the provider.  At any
other Gaussian (R, A = L L^T) its averages are importance-reweighted (weights
p(r)/q(r), self-normalised), so that the estimated free energy is a smooth, deterministic
function of (R, Phi) for one ensemble: a line search on it is meaningful.  The Kish
effective sample size says when the ensemble has to be redrawn.

Error bars respect the pairing: the two members of a mirrored pair are strongly
(anti)correlated, so the variance is taken over the *pair means*, never over members as
if they were independent (which, for an even integrand, under-reports the error by up to
sqrt(2) and, for a nearly odd one, over-reports it).
"""

from __future__ import annotations

import numpy as np
from atomtwin.engines.tdscha.providers import System, evaluate_checked


class SCHAEnsemble:
    """Antithetic Gaussian ensemble evaluated once, reweighted to nearby Gaussians.

    Parameters
    ----------
    system
        The :class:`~atomtwin.engines.tdscha.providers.System`.
    provider
        Batched provider, ``evaluate(x (S, n) Å) -> (e (S,), f (S, n), stress | None)``.
    R0
        Mass-scaled centroid (n,) of the sampling Gaussian.
    L0
        Lower Cholesky factor (n_r, n_r) of its mass-scaled covariance.
    n_configs
        Even ensemble size.
    rng
        ``numpy.random.Generator``.
    step
        Iteration label for error messages.
    """

    def __init__(self, system: System, provider, R0, L0, n_configs: int, rng, step=None):
        s = system
        half = rng.standard_normal((n_configs // 2, s.n_reduced))
        self.xi = np.concatenate([half, -half])
        self.n_pairs = n_configs // 2
        self.logq = -0.5 * np.sum(self.xi**2, 1) - np.sum(np.log(np.diag(L0)))
        self.r = R0 + (self.xi @ L0.T) @ s.basis.T
        e, f, st = evaluate_checked(provider, s.to_cartesian(self.r), step, "iteration")
        self.e, self.fm = np.asarray(e, float), f / s.sqrt_m
        self.stress = None if st is None else np.asarray(st).reshape(-1, 3, 3)
        self.system = system
        self.mask = np.ones(n_configs, bool)

    def subset(self, keep_pairs: np.ndarray) -> SCHAEnsemble:
        """A view keeping only the pairs flagged in ``keep_pairs`` (n_pairs,) bool (jackknife)."""
        view = object.__new__(SCHAEnsemble)
        view.__dict__.update(self.__dict__)
        view.mask = np.concatenate([keep_pairs, keep_pairs]) & self.mask
        return view

    def weights(self, R: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised importance weights (S,) (0 outside the mask) and reduced displacements."""
        d = (self.r - R) @ self.system.basis
        eta = np.linalg.solve(L, d.T).T
        logp = -0.5 * np.sum(eta**2, 1) - np.sum(np.log(np.diag(L)))
        lw = np.where(self.mask, logp - self.logq, -np.inf)
        w = np.exp(lw - lw.max())
        return w / w.sum(), d, eta

    def averages(self, R: np.ndarray, L: np.ndarray, phi: np.ndarray) -> dict:
        """Reweighted averages at (R, A = L L^T) for the trial force constants ``phi``.

        Returns a dict: ``y`` = <V - dR.phi.dR/2> (eV; F = F_harm(phi) + y), ``y_err`` its
        pair-respecting standard error, ``force`` <f> (n,) mass-scaled, ``kappa`` <d²V> (n_r,
        n_r) 1/ps², ``ess`` Kish effective sample size (in configurations), ``stress``.
        """
        Q = self.system.basis
        w, d, eta = self.weights(R, L)
        ess = 1.0 / np.sum(w**2)
        fbar = w @ self.fm
        # control variate: the harmonic force -phi d has the exact average phi, so only the
        # anharmonic remainder g = f + phi d is sampled: kappa = phi - L^-T <eta (g - gbar)^T>
        gr = (self.fm - fbar) @ Q + d @ phi
        gr -= w @ gr
        kappa = phi - np.linalg.solve(L.T, (eta * w[:, None]).T @ gr)
        kappa = 0.5 * (kappa + kappa.T)
        y = self.e - 0.5 * np.sum((d @ phi) * d, axis=1)
        ybar = float(w @ y)
        st = None if self.stress is None else np.einsum("s,sij->ij", w, self.stress)
        return {"y": ybar, "y_err": self.pair_error(w, y), "force": fbar, "kappa": kappa, "ess": ess,
                "stress": st}

    def pair_error(self, w: np.ndarray, y: np.ndarray) -> float:
        """Standard error of the weighted mean of ``y`` (S,), with each mirrored pair one sample.

        The self-normalised estimator sum_s w_s y_s is a ratio; its linearised variance
        sum_p (W_p (ybar_p - ybar))² (W_p = weight of pair p, ybar_p its weighted mean) is
        summed over pairs, the independent units.  For uniform weights it is
        var(pair means) / n_pairs exactly (with the n/(n-1) correction).
        """
        h = self.n_pairs
        ybar = float(w @ y)
        wp = w[:h] + w[h:]
        contrib = w[:h] * (y[:h] - ybar) + w[h:] * (y[h:] - ybar)  # = W_p (ybar_p - ybar)
        used = wp > 0
        k = int(used.sum())
        if k < 2:
            return float("nan")
        return float(np.sqrt(np.sum(contrib[used] ** 2) * k / (k - 1)))
