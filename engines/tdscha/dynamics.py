"""TD-SCHA: time-dependent self-consistent harmonic approximation of quantum nuclear dynamics.

State (mass-scaled, in the system's basis of dimension n_r): centroid R and momentum P
(n,), and the Gaussian's phase-space covariance

    Sigma = [[A, C], [C^T, B]],  A = <dR dR>, B = <dP dP>, C = <dR dP>,

stored through a factor Sigma = M M^T, M = [[X], [Y]] with X, Y (n_r, 2 n_r).  The
equations of motion (average force <f>, average curvature kappa = <d²V/dR dR>, external
mass-scaled force F(t)):

    dR/dt = P,      dP/dt = <f> + F(t)
    dX/dt = Y,      dY/dt = -kappa X       (so dA/dt = C + C^T, dB/dt = -kappa C - C^T kappa,
                                            dC/dt = B - A kappa)

are Newton's equations for the Hamiltonian H = |P|²/2 + |Y|²/2 + <V>(R, X X^T), whose value
is the TD-SCHA energy E = |P|²/2 + tr B / 2 + <V>, with dE/dt = F . P.  We integrate them
with velocity Verlet: symplectic, time reversible, local error O(dt³), one Gaussian
average per step.  Each covariance update is a product of symplectic shears applied to M,
so the symplectic invariants of Sigma (in 1D, A B - C²) are kept to rounding error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr
from atomtwin.engines.tdscha.providers import System, TDSCHAError
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.units import HBAR


@dataclass(frozen=True)
class TDSCHAState:
    """A TD-SCHA state (mass-scaled units: R sqrt(eV) ps, P sqrt(eV), t ps).

    Attributes
    ----------
    t
        Time, ps.
    R, P
        Centroid displacement and momentum (n,).
    X, Y
        Covariance factors (n_r, 2 n_r): A = X X^T (eV ps²), B = Y Y^T (eV), C = X Y^T (eV ps).
    """

    t: float
    R: np.ndarray
    P: np.ndarray
    X: np.ndarray
    Y: np.ndarray

    @property
    def A(self) -> np.ndarray:
        return self.X @ self.X.T

    @property
    def B(self) -> np.ndarray:
        return self.Y @ self.Y.T

    @property
    def C(self) -> np.ndarray:
        return self.X @ self.Y.T

    @classmethod
    def from_covariances(cls, R, P, A, B, C=None, t: float = 0.0, check_uncertainty: bool = True) -> TDSCHAState:
        """Build a state from mass-scaled A, B, C (n_r, n_r); checks positivity.

        Raises ValueError when Sigma is not positive definite or violates the uncertainty
        principle Sigma + i hbar/2 J >= 0 (in 1D: A B - C² >= hbar²/4).
        """
        A, B = np.atleast_2d(np.asarray(A, float)), np.atleast_2d(np.asarray(B, float))
        n = A.shape[0]
        C = np.zeros((n, n)) if C is None else np.atleast_2d(np.asarray(C, float))
        sigma = np.block([[A, C], [C.T, B]])
        if not np.allclose(A, A.T) or not np.allclose(B, B.T):
            raise InputError("A and B must be symmetric. Fix: symmetrise them, (A + A.T)/2.")
        try:
            M = np.linalg.cholesky(sigma)
        except np.linalg.LinAlgError:
            ev = np.linalg.eigvalsh(sigma)
            raise InputError(f"the phase-space covariance [[A, C], [C^T, B]] is not positive definite "
                             f"(smallest eigenvalue {ev.min():.3g}). Fix: start from a thermal state "
                             "(scha(...).state()) or give A > 0 and B >= C^T A^-1 C.") from None
        if check_uncertainty:
            J = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
            lo = np.linalg.eigvalsh(sigma + 0.5j * HBAR * J).min()
            if lo < -1e-8 * np.abs(sigma).max():
                raise InputError("the covariances violate the uncertainty principle (Sigma + i hbar/2 J "
                                 f"has eigenvalue {lo:.3g} < 0). Fix: for a pure state use B = hbar²/4 A^-1.")
        R = np.asarray(R, float).ravel()
        P = np.zeros_like(R) if P is None else np.asarray(P, float).ravel()
        return cls(float(t), R, P, M[:n].copy(), M[n:].copy())


def tdscha_energy(state: TDSCHAState, potential: float) -> float:
    """E = |P|²/2 + tr(B)/2 + <V> (eV)."""
    return 0.5 * float(state.P @ state.P) + 0.5 * float(np.sum(state.Y * state.Y)) + potential


def cholesky_of(state: TDSCHAState, step: int | None = None) -> np.ndarray:
    """Lower Cholesky factor of A; a TDSCHAError when A lost positive definiteness."""
    try:
        return np.linalg.cholesky(state.A)
    except np.linalg.LinAlgError:
        raise TDSCHAError(f"the position covariance A is no longer positive definite at step {step}. "
                          "Fix: reduce the time step (the fastest mode is under-resolved) or the pulse "
                          "amplitude.", step) from None


def verlet_step(state: TDSCHAState, avg, averager, dt: float, force_ext: Callable[[float], np.ndarray],
                step: int | None = None):
    """One velocity-Verlet step; ``avg`` are the averages at ``state`` (reused: one call a step).

    Returns the new state and the averages there.
    """
    t = state.t
    h = 0.5 * dt
    P = state.P + h * (avg.force + force_ext(t))
    Y = state.Y - h * (avg.kappa @ state.X)
    R = state.R + dt * P
    X = state.X + dt * Y
    mid = replace(state, R=R, X=X)
    new = averager(R, cholesky_of(mid, step), step)
    P = P + h * (new.force + force_ext(t + dt))
    Y = Y - h * (new.kappa @ X)
    return TDSCHAState(t + dt, R, P, X, Y), new


@dataclass(frozen=True)
class Modes:
    """Reference harmonic modes for energies/occupations: omega (m,) rad/ps, vectors (n_r, m)."""

    omega: np.ndarray
    vectors: np.ndarray
    R_ref: np.ndarray

    @classmethod
    def from_kappa(cls, kappa: np.ndarray, R_ref: np.ndarray) -> Modes:
        w2, v = np.linalg.eigh(0.5 * (kappa + kappa.T))
        omega = np.where(w2 > 0, np.sqrt(np.abs(w2)), -np.sqrt(np.abs(w2)))  # imaginary -> negative
        return cls(omega, v, np.asarray(R_ref, float).copy())

    def energies(self, state: TDSCHAState, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mode energies (m,) eV and occupations (NaN for non-positive frequencies)."""
        e = self.vectors
        q = e.T @ (basis.T @ (state.R - self.R_ref))
        p = e.T @ (basis.T @ state.P)
        w2 = self.omega**2
        ex, ey = e.T @ state.X, e.T @ state.Y
        energy = 0.5 * p**2 + 0.5 * w2 * q**2 + 0.5 * np.sum(ey**2, 1) + 0.5 * w2 * np.sum(ex**2, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            occ = np.where(self.omega > 0, energy / (HBAR * self.omega) - 0.5, np.nan)
        return energy, occ


def check_timestep(kappa: np.ndarray, dt: float, step: int, max_omega_dt: float) -> None:
    """TDSCHAError when sqrt(largest curvature) * dt exceeds ``max_omega_dt``."""
    w2 = np.linalg.eigvalsh(kappa).max()
    if w2 > 0 and np.sqrt(w2) * dt > max_omega_dt:
        w = np.sqrt(w2)
        raise TDSCHAError(f"time step {dt:g} ps too large for the fastest mode at step {step} "
                          f"(omega = {w:.4g} rad/ps, {w / (2 * np.pi):.4g} THz; omega*dt = {w * dt:.3g} > "
                          f"{max_omega_dt}). Fix: use dt <= {0.3 / w:.3g} ps.", step)


def _frame(system: System, state: TDSCHAState, avg, energy: float, work: float, field: np.ndarray,
           modes: Modes | None, covariances: str) -> dict:
    Q, d = system.basis, 1.0 / system.sqrt_m
    fr = {"time": state.t, "centroid": system.to_cartesian(state.R), "centroid_velocity": state.P * d,
          "energy": energy, "potential_energy": avg.energy, "potential_energy_error": avg.energy_error,
          "work": work, "field": field}
    A, B, C = state.A, state.B, state.C
    fr["position_variance"] = np.sum((Q @ A) * Q, axis=1) * d**2
    if covariances == "full":
        fr["A"], fr["B"], fr["C"] = Q @ A @ Q.T, Q @ B @ Q.T, Q @ C @ Q.T
    elif covariances == "diagonal":
        fr["A"], fr["B"], fr["C"] = (np.sum((Q @ M) * Q, axis=1) for M in (A, B, C))
    if modes is not None:
        fr["mode_energy"], fr["mode_occupation"] = modes.energies(state, Q)
    if avg.stress is not None:
        fr["stress"] = avg.stress
    return fr


UNITS = {"centroid": "Å", "centroid_velocity": "Å/ps", "energy": "eV", "potential_energy": "eV",
         "potential_energy_error": "eV", "work": "eV", "field": "V/Å", "position_variance": "Å^2",
         "A": "eV*ps^2", "B": "eV", "C": "eV*ps", "mode_energy": "eV", "mode_occupation": "1",
         "stress": "eV/Å^3", "mode_frequency": "THz", "mass": "amu"}
DIMS = {"centroid": ("frame", "dof"), "centroid_velocity": ("frame", "dof"), "field": ("frame", "xyz"),
        "position_variance": ("frame", "dof"), "mode_energy": ("frame", "mode"),
        "mode_occupation": ("frame", "mode"), "stress": ("frame", "xyz", "xyz2")}


def frames_to_dataset(frames: list[dict], system: System, attrs: dict, modes: Modes | None = None,
                      covariances: str = "full") -> xr.Dataset:
    """Assemble per-frame dicts into the TD-SCHA result Dataset (see :func:`run_tdscha`)."""
    data = {}
    keys = [k for k in frames[0] if k != "time"] if frames else []
    cov_dims = ("frame", "dof", "dof2") if covariances == "full" else ("frame", "dof")
    for k in keys:
        arr = np.array([f[k] for f in frames])
        dims = DIMS.get(k, cov_dims if k in "ABC" else ("frame",))
        data[k] = (dims, arr, {"units": UNITS.get(k, "")})
    coords = {"time": ("frame", np.array([f["time"] for f in frames]), {"units": "ps"}),
              "dof": np.array(system.names), "xyz": ["x", "y", "z"],
              "dof_mass": ("dof", system.masses, {"units": "amu"})}
    if covariances == "full":
        coords["dof2"] = np.array(system.names)
    if modes is not None:
        data["mode_frequency"] = ("mode", modes.omega / (2 * np.pi), {"units": "THz",
                                  "description": "reference mode frequency (negative = imaginary)"})
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    if system.is_atomistic and frames:
        na = len(system.species)
        ds["positions"] = (("frame", "atom", "xyz"), ds["centroid"].values.reshape(-1, na, 3), {"units": "Å"})
        ds["velocities"] = (("frame", "atom", "xyz"), ds["centroid_velocity"].values.reshape(-1, na, 3),
                            {"units": "Å/ps"})
        ds = ds.assign_coords(species=("atom", np.array(system.species)),
                              mass=("atom", system.masses[::3], {"units": "amu"}))
        if system.cell is not None:
            ds["cell"] = (("frame", "cell_vector", "xyz"), np.repeat(system.cell[None], ds.sizes["frame"], 0),
                          {"units": "Å"})
            ds.attrs["pbc"] = [int(p) for p in system.pbc]
    return ds
