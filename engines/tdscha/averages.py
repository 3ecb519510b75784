"""Gaussian averages of the energy, force and curvature: exact (polynomials) or from an ensemble.

An averager is called as ``averager(R, L, step)`` with the mass-scaled centroid ``R`` (n,)
and the lower Cholesky factor ``L`` (n_r, n_r) of the mass-scaled position covariance in
the system's basis; it returns :class:`Averages`.

Ensemble estimator (correlated sampling).  The configurations are
``R_s = R + Q L xi_s`` with fixed standard-normal vectors ``xi_s`` in antithetic pairs
(``xi`` and ``-xi``).  The sample mean U(R, L) = mean_s V(R_s) is then a smooth function of
the Gaussian's parameters, and the force and curvature returned are its exact derivatives:
``force = -dU/dR`` and ``kappa = 2 dU/dA`` (A = L L^T), obtained from dU/dL = -mean(f xi^T)
through the derivative of the Cholesky factorisation.  Since E[U] = <V> for every (R, L),
``kappa`` is an unbiased estimate of <d²V/dR dR> (for one step it equals the Gaussian
integration-by-parts estimator -A^-1 <dR f^T> in 1D).  With fixed ``xi`` the stochastic
TD-SCHA is itself a Hamiltonian system, which is what makes its integration conserve energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from atomtwin.engines.tdscha.providers import System, evaluate_checked
from atomtwin.toolkit.errors import InputError


@dataclass
class Averages:
    """Gaussian averages at one (R, A).

    Attributes
    ----------
    energy
        <V>, eV.
    energy_error
        Standard error of ``energy`` (0 for exact averages), eV.
    force
        <f> mass-scaled (n,), sqrt(eV)/ps.
    kappa
        <d²V/dR dR> mass-scaled in the basis (n_r, n_r), 1/ps².
    stress
        <stress> (3, 3) eV/Å³ or None.
    """

    energy: float
    energy_error: float
    force: np.ndarray
    kappa: np.ndarray
    stress: np.ndarray | None = None


def cholesky_backward(L: np.ndarray, Lbar: np.ndarray) -> np.ndarray:
    """Symmetric gradient dU/dA given dU/dL for A = L L^T (L lower triangular).

    Uses dL = L Phi(L^-1 dA L^-T), Phi = lower triangle with halved diagonal; only the lower
    triangle of ``Lbar`` counts.  Returns (n, n), symmetric.
    """
    P = L.T @ np.tril(Lbar)
    phi = np.tril(P)
    phi[np.diag_indices_from(phi)] *= 0.5
    tmp = sla.solve_triangular(L, phi.T, lower=True, trans="T")  # L^-T phi^T
    g = sla.solve_triangular(L, tmp.T, lower=True, trans="T").T  # (L^-T phi^T L^-1)^T ... sym below
    return 0.5 * (g + g.T)


class ExactAverager:
    """Exact Gaussian averages for a :class:`~atomtwin.engines.tdscha.models.PolynomialModel`."""

    exact = True

    def __init__(self, model, system: System):
        if model.n != system.n:
            raise InputError(f"model has {model.n} coordinates, system {system.n}.")
        self.model, self.system = model, system
        self.n_evaluations = 0

    def __call__(self, R: np.ndarray, L: np.ndarray, step: int | None = None) -> Averages:
        s = self.system
        Q, d = s.basis, 1.0 / s.sqrt_m
        A = Q @ (L @ L.T) @ Q.T
        mu = s.to_cartesian(R)
        v, g, h = self.model.gaussian_averages(mu, d[:, None] * A * d[None, :])
        kappa = Q.T @ (d[:, None] * h * d[None, :]) @ Q
        self.n_evaluations += 1
        return Averages(v, 0.0, -g * d, 0.5 * (kappa + kappa.T))


class EnsembleAverager:
    """Averages over an antithetic Gaussian ensemble evaluated by a (batched) provider.

    Parameters
    ----------
    provider
        Object with ``evaluate(x (S, n) Å) -> (energies, forces, stress|None)``.
    system
        The :class:`System`.
    n_configs
        Ensemble size (even: n_configs/2 antithetic pairs).
    rng
        Seed or ``numpy.random.Generator``.
    correlated
        Reuse the same random vectors at every call (the correlated scheme); False draws
        new ones at each call (uncorrelated sampling, for comparison).
    phi_ref
        Harmonic control variate (n_r, n_r), mass-scaled 1/ps²: the sample mean of
        V - dR.phi_ref.dR/2 plus its exact average tr(phi_ref A)/2 is used, which removes the
        harmonic part of the noise and keeps E[U] = <V> and the exact-gradient property.
        It must not depend on this ensemble's random vectors (e.g. the SCHA force constants
        ``SCHAResult.phi``).  None: no control variate.
    """

    exact = False

    def __init__(self, provider, system: System, n_configs: int = 64, rng=None, correlated: bool = True,
                 phi_ref=None):
        if n_configs < 2 or n_configs % 2:
            raise InputError(f"n_configs={n_configs}: the ensemble is made of antithetic pairs. "
                             "Fix: give an even number >= 2.")
        self.provider, self.system = provider, system
        self.n_configs, self.correlated = n_configs, correlated
        self.rng = np.random.default_rng(rng)
        self.xi = self._draw()
        self.n_evaluations = 0
        self.phi_ref = None if phi_ref is None else np.asarray(phi_ref, float)

    def _draw(self) -> np.ndarray:
        half = self.rng.standard_normal((self.n_configs // 2, self.system.n_reduced))
        return np.concatenate([half, -half])

    def configurations(self, R: np.ndarray, L: np.ndarray) -> np.ndarray:
        """Mass-scaled configurations (S, n) of the ensemble at (R, L)."""
        return R + (self.xi @ L.T) @ self.system.basis.T

    def __call__(self, R: np.ndarray, L: np.ndarray, step: int | None = None) -> Averages:
        if not self.correlated:
            self.xi = self._draw()
        s = self.system
        r = self.configurations(R, L)
        e, f, stress = evaluate_checked(self.provider, s.to_cartesian(r), step, "step")
        self.n_evaluations += r.shape[0]
        fm = f / s.sqrt_m  # mass-scaled forces (S, n)
        S = e.size
        half = S // 2
        pair = 0.5 * (e[:half] + e[half:])
        err = float(pair.std(ddof=1) / np.sqrt(half)) if half > 1 else float("nan")
        lbar = -(fm @ s.basis).T @ self.xi / S
        energy = float(e.mean())
        if self.phi_ref is not None:
            # U = mean V - tr(phi L Xi L^T)/2 + tr(phi L L^T)/2, Xi = mean xi xi^T
            phi = self.phi_ref
            xi_l = self.xi @ L.T
            harm = 0.5 * np.sum((xi_l @ phi) * xi_l, axis=1)
            energy += 0.5 * float(np.sum(phi * (L @ L.T))) - float(harm.mean())
            pair = pair - 0.5 * (harm[:half] + harm[half:])
            err = float(pair.std(ddof=1) / np.sqrt(half)) if half > 1 else float("nan")
            lbar = lbar - phi @ L @ (self.xi.T @ self.xi / S)
            kappa = 2.0 * cholesky_backward(L, lbar) + phi
        else:
            kappa = 2.0 * cholesky_backward(L, lbar)
        st = None if stress is None else np.asarray(stress).reshape(S, 3, 3).mean(axis=0)
        return Averages(energy, err, fm.mean(axis=0), kappa, st)
