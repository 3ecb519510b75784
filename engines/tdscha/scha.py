"""Static SCHA: minimise the Gaussian variational free energy at temperature T.

Trial density: the thermal state of H_0 = |P|²/2 + dR.Phi.dR/2 about the centroid R
(mass-scaled, Phi (n_r, n_r) in 1/ps² in the system's basis).  Its position covariance is
A(Phi, T) = sum_mu a(omega_mu) e_mu e_mu^T with a(w) = hbar/(2 w) coth(hbar w / 2 k T), and

    F(R, Phi) = F_harm(Phi, T) + < V - dR.Phi.dR/2 >_{R, A(Phi)}     (Gibbs-Bogoliubov: F >= F_exact)

Stationarity: <f> = 0 and Phi = <d²V/dR dR>.  We iterate the damped fixed point
Phi <- Phi + alpha (<d²V> - Phi), R <- R + alpha Phi^-1 <f>, which is the SCHA
self-consistency.  Averages are exact (polynomial models) or from an antithetic ensemble
that is reused across iterations by importance reweighting until its effective sample
size (Kish) falls below ``ess_threshold`` of the ensemble, then redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from atomtwin.engines.tdscha.dynamics import TDSCHAState
from atomtwin.engines.tdscha.providers import System, TDSCHAError, evaluate_checked
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.progress import progress
from atomtwin.toolkit.units import HBAR, KB


def harmonic_variance(omega: np.ndarray, T: float) -> np.ndarray:
    """Mass-scaled <q²> = hbar/(2 w) coth(hbar w/(2 kT)) (eV ps²) of modes ``omega`` (rad/ps)."""
    omega = np.asarray(omega, dtype=float)
    if T <= 0:
        return HBAR / (2 * omega)
    x = HBAR * omega / (2 * KB * T)
    return HBAR / (2 * omega) / np.tanh(x)


def harmonic_free_energy(omega: np.ndarray, T: float) -> float:
    """Quantum harmonic free energy sum hbar w/2 + kT ln(1 - exp(-hbar w/kT)) (eV)."""
    omega = np.asarray(omega, dtype=float)
    f = 0.5 * HBAR * omega
    if T > 0:
        f = f + KB * T * np.log1p(-np.exp(-HBAR * omega / (KB * T)))
    return float(np.sum(f))


@dataclass
class SCHAResult:
    """Converged (or last) SCHA state; ``to_dataset()`` for xarray, ``state()`` for TD-SCHA."""

    system: System
    temperature: float
    R: np.ndarray
    phi: np.ndarray
    free_energy: float
    free_energy_error: float
    converged: bool
    history: dict = field(default_factory=dict)
    stress: np.ndarray | None = None
    n_evaluations: int = 0

    @property
    def omega(self) -> np.ndarray:
        """SCHA (auxiliary) mode frequencies, rad/ps."""
        return np.sqrt(np.linalg.eigvalsh(self.phi))

    @property
    def frequencies(self) -> np.ndarray:
        """SCHA mode frequencies, THz."""
        return self.omega / (2 * np.pi)

    def covariances(self) -> tuple[np.ndarray, np.ndarray]:
        """Mass-scaled A (eV ps²) and B (eV) of the thermal trial state, in the basis."""
        w2, e = np.linalg.eigh(self.phi)
        w = np.sqrt(w2)
        a = harmonic_variance(w, self.temperature)
        return (e * a) @ e.T, (e * (a * w2)) @ e.T

    def state(self, t: float = 0.0) -> TDSCHAState:
        """The SCHA equilibrium as a TD-SCHA initial state (P = 0, C = 0)."""
        A, B = self.covariances()
        return TDSCHAState.from_covariances(self.R, None, A, B, None, t=t)

    def to_dataset(self) -> xr.Dataset:
        """Result as xarray: centroid, frequencies, Cartesian force constants and covariance."""
        s = self.system
        Q, sm = s.basis, s.sqrt_m
        A, _ = self.covariances()
        fc = sm[:, None] * (Q @ self.phi @ Q.T) * sm[None, :]
        cov = (Q @ A @ Q.T) / sm[:, None] / sm[None, :]
        data = {
            "centroid": ("dof", s.to_cartesian(self.R), {"units": "Å"}),
            "frequency": ("mode", self.frequencies, {"units": "THz"}),
            "force_constants": (("dof", "dof2"), fc, {"units": "eV/Å^2"}),
            "position_covariance": (("dof", "dof2"), cov, {"units": "Å^2"}),
            "free_energy": ((), self.free_energy, {"units": "eV"}),
            "free_energy_error": ((), self.free_energy_error, {"units": "eV"}),
        }
        for k, v in self.history.items():
            data[f"history_{k}"] = ("iteration", np.asarray(v), {"units": "eV" if "energy" in k else ""})
        if self.stress is not None:
            data["stress"] = (("xyz", "xyz2"), self.stress, {"units": "eV/Å^3"})
        return xr.Dataset(data, coords={"dof": list(s.names), "dof2": list(s.names), "xyz": ["x", "y", "z"],
                                        "xyz2": ["x", "y", "z"], "dof_mass": ("dof", s.masses, {"units": "amu"})},
                          attrs={"engine": "atomtwin.scha", "temperature_K": self.temperature,
                                 "converged": int(self.converged), "n_evaluations": self.n_evaluations})


class _Ensemble:
    """A sampled ensemble kept for importance reweighting."""

    def __init__(self, system, provider, R0, L0, n_configs, rng, step):
        s = system
        half = rng.standard_normal((n_configs // 2, s.n_reduced))
        self.xi = np.concatenate([half, -half])
        self.logq = -0.5 * np.sum(self.xi**2, 1) - np.sum(np.log(np.diag(L0)))
        self.r = R0 + (self.xi @ L0.T) @ s.basis.T
        e, f, st = evaluate_checked(provider, s.to_cartesian(self.r), step, "iteration")
        self.e, self.fm, self.stress = e, f / s.sqrt_m, st

    def averages(self, system, R, L, phi):
        """Reweighted <V>, <f>, kappa, F-correction, its error, ESS, stress, <dR f> term."""
        Q = system.basis
        d = (self.r - R) @ Q  # reduced displacements (S, n_r)
        eta = np.linalg.solve(L, d.T).T
        logp = -0.5 * np.sum(eta**2, 1) - np.sum(np.log(np.diag(L)))
        lw = logp - self.logq
        w = np.exp(lw - lw.max())
        w /= w.sum()
        ess = 1.0 / np.sum(w**2)
        fbar = w @ self.fm
        # control variate: the harmonic force -phi d has the exact IBP average phi, so only
        # the anharmonic remainder g = f + phi d is sampled: kappa = phi - L^-T <eta (g - gbar)^T>
        gr = (self.fm - fbar) @ Q + d @ phi
        gr -= w @ gr
        kappa = phi - np.linalg.solve(L.T, (eta * w[:, None]).T @ gr)
        kappa = 0.5 * (kappa + kappa.T)
        y = self.e - 0.5 * np.sum((d @ phi) * d, axis=1)
        ybar = float(w @ y)
        err = float(np.sqrt(np.sum(w**2 * (y - ybar) ** 2)))
        st = None
        if self.stress is not None:
            st = np.einsum("s,sij->ij", w, np.asarray(self.stress).reshape(-1, 3, 3))
        return float(w @ self.e), fbar, kappa, ybar, err, ess, st


def _clip(phi: np.ndarray, w2_min: float) -> np.ndarray:
    w2, e = np.linalg.eigh(0.5 * (phi + phi.T))
    return (e * np.maximum(w2, w2_min)) @ e.T


def scha(system: System, temperature: float, *, model=None, provider=None, n_configs: int = 200,
         rng=None, phi0: np.ndarray | None = None, R0: np.ndarray | None = None, mixing: float = 0.5,
         max_iter: int = 200, tol: float = 1e-8, ess_threshold: float = 0.5, min_frequency: float = 0.1,
         fix_centroid: bool = False) -> SCHAResult:
    """Minimise the SCHA free energy at ``temperature`` (K).

    Parameters
    ----------
    system
        The :class:`System`.
    model
        A :class:`~atomtwin.engines.tdscha.models.PolynomialModel`: exact Gaussian averages.
    provider
        Otherwise any batched provider (``evaluate(x)``): ensemble averages.
    n_configs
        Ensemble size (even, antithetic pairs).
    rng
        Seed or Generator.
    phi0
        Initial mass-scaled force constants in the basis (n_r, n_r), 1/ps²; default: the
        harmonic Hessian at the centroid (finite differences for a provider), with
        frequencies below ``min_frequency`` THz raised to it.
    R0
        Initial mass-scaled centroid (n,), default 0 (the reference configuration).
    mixing
        Damping alpha of the fixed-point update (0 < alpha <= 1).
    tol
        Convergence: relative change of Phi and centroid step (Å) both below ``tol``.
        With an ensemble use a tolerance above its noise (e.g. 1e-2).
    ess_threshold
        Redraw the ensemble when the Kish effective sample size falls below this fraction.
        When even a step damped 8 times leaves a freshly drawn ensemble below it, the ESS has
        collapsed (ensemble too small for the dimension): a TDSCHAError says so.
    fix_centroid
        Keep the centroid fixed (e.g. at a high-symmetry position).

    Raises
    ------
    TDSCHAError
        When the effective sample size collapses even for a tiny step, or the provider fails.
    """
    from atomtwin.engines.tdscha.averages import ExactAverager

    if (model is None) == (provider is None):
        raise InputError("give exactly one of model= (exact averages) or provider= (ensemble).")
    if not 0 < mixing <= 1:
        raise InputError(f"mixing must be in (0, 1], got {mixing}.")
    s = system
    Q = s.basis
    rng = np.random.default_rng(rng)
    R = np.zeros(s.n) if R0 is None else np.asarray(R0, float).copy()
    w2_min = (2 * np.pi * min_frequency) ** 2
    exact = ExactAverager(model, s) if model is not None else None
    if phi0 is None:
        phi0 = _harmonic_phi(s, R, model, provider)
    phi = _clip(np.asarray(phi0, float), w2_min)
    ens, fresh, n_eval, alpha = None, False, 0, mixing
    hist = {"free_energy": [], "free_energy_error": [], "ess": [], "gradient": []}
    converged, stress = False, None
    for it in progress(range(max_iter), total=max_iter, desc="SCHA", unit="iteration"):
        w2, e = np.linalg.eigh(phi)
        w = np.sqrt(w2)
        a = harmonic_variance(w, temperature)
        A = (e * a) @ e.T
        L = np.linalg.cholesky(A)
        f0 = harmonic_free_energy(w, temperature)
        if exact is not None:
            av = exact(R, L, it)
            fbar, kappa, ess = av.force, av.kappa, float("inf")
            F, Ferr = f0 + av.energy - 0.5 * float(np.sum(phi * A)), 0.0
        else:
            if ens is None:
                ens, fresh = _Ensemble(s, provider, R, L, n_configs, rng, it), True
                n_eval += n_configs
            _, fbar, kappa, y, Ferr, ess, stress = ens.averages(s, R, L, phi)
            if ess < ess_threshold * n_configs and not fresh:
                ens, fresh = _Ensemble(s, provider, R, L, n_configs, rng, it), True
                n_eval += n_configs
                _, fbar, kappa, y, Ferr, ess, stress = ens.averages(s, R, L, phi)
            F = f0 + y
        dphi = kappa - phi
        dR = np.zeros(s.n) if fix_centroid else Q @ np.linalg.solve(phi, Q.T @ fbar)
        rel = np.linalg.norm(dphi) / np.linalg.norm(phi)
        step_x = float(np.max(np.abs(dR / s.sqrt_m))) if s.n else 0.0
        for k, v in (("free_energy", F), ("free_energy_error", Ferr), ("ess", ess), ("gradient", rel)):
            hist[k].append(v)
        if rel < tol and step_x < tol:
            converged = True
            break
        while True:
            phi_new = _clip(phi + alpha * dphi, w2_min)
            R_new = R + alpha * dR
            if ens is None or not fresh:
                break
            # an ensemble just drawn must survive one step: otherwise the step is too large
            w2n, en = np.linalg.eigh(phi_new)
            Ln = np.linalg.cholesky((en * harmonic_variance(np.sqrt(w2n), temperature)) @ en.T)
            if ens.averages(s, R_new, Ln, phi_new)[5] >= ess_threshold * n_configs:
                break
            alpha *= 0.5
            if alpha < mixing / 8:
                raise TDSCHAError(f"the effective sample size collapsed at iteration {it}: one damped step "
                                  "already leaves less than ess_threshold of the ensemble. Fix: increase "
                                  "n_configs, or start closer to the solution (phi0, R0).", it)
        phi, R, fresh, alpha = phi_new, R_new, False, min(mixing, 2 * alpha)
    return SCHAResult(s, temperature, R, phi, hist["free_energy"][-1], hist["free_energy_error"][-1],
                      converged, hist, stress, n_eval if exact is None else exact.n_evaluations)


def _harmonic_phi(system: System, R: np.ndarray, model, provider, h: float = 0.01) -> np.ndarray:
    """Mass-scaled Hessian at the centroid in the basis (exact for a model; central differences, h Å)."""
    s = system
    x = s.to_cartesian(R)
    if model is not None:
        H = model.derivatives(x)[2]
    else:
        disp = np.concatenate([np.eye(s.n) * h, -np.eye(s.n) * h])
        _, f, _ = evaluate_checked(provider, x + disp, None, "harmonic")
        H = -(f[: s.n] - f[s.n:]) / (2 * h)
        H = 0.5 * (H + H.T)
    Hm = H / s.sqrt_m[:, None] / s.sqrt_m[None, :]
    return s.basis.T @ Hm @ s.basis
