"""The free-energy Hessian of SCHA: the physical (static) phonons at temperature T.

The SCHA auxiliary force constants Phi = <d²V> describe the fluctuations of the trial
Gaussian; the *physical* static response of the crystal to a centroid displacement is the
curvature of the minimised free energy F*(R) = min_Phi F(R, Phi), which is what softens to
zero at a displacive (e.g. ferroelectric or charge-density-wave) transition.

Derivation (mass-scaled coordinates, all indices in the system's basis).  With
dF*/dR = <dV/dR> at the optimum (stationarity in Phi),

    d²F*/dR_a dR_b = kappa_ab + 1/2 sum_cd D3_acd dA_cd/dR_b,

where kappa = <d²V>, D3 = <d³V>, D4 = <d⁴V> (Gaussian averages at the optimum), and A the
position covariance.  Differentiating the self-consistency kappa(R, A) = Phi(A) gives
(Lambda^-1 - D4/2) dA/dR = D3 with Lambda = dA/dPhi, so

    d²F*/dR² = kappa + 1/2 D3 . (Lambda^-1 - D4/2)^-1 . D3.

In the eigenbasis of Phi (frequencies w_i) Lambda acts elementwise (Daleckii-Krein):
Lambda_ij = (a_i - a_j)/(w_i² - w_j²), and a'(w_i)/(2 w_i) when w_i = w_j, with
a(w) = hbar/(2w) coth(hbar w/2kT).  Lambda < 0 (stiffer modes fluctuate less), so the
correction is negative semi-definite: the physical phonons are softer than the auxiliary
ones.  Dropping D4 gives the widely used "bubble" approximation.

For polynomial models of degree <= 4 the averages D3 = D3(R) and D4 = T4 are exact.  For
any other force provider they come from an antithetic ensemble drawn at the SCHA solution,
by the third- and fourth-order estimators of the stochastic SCHA (Bianco, Errea, Paulatto,
Calandra, Mauri, PRB 96, 014111 (2017); written here from the Gaussian integration by
parts, :mod:`~atomtwin.engines.tdscha.hessian_ensemble`), with jackknife error bars.
:func:`instability_temperature` follows the lowest eigenvalue of the Hessian restricted to
chosen displacement patterns (e.g. one wavevector) against temperature: where it changes
sign the high-symmetry phase becomes unstable (the SSCHA route to charge-density-wave and
ferroelectric transition temperatures).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.units import HBAR, KB


def _dvariance_domega2(omega: np.ndarray, T: float) -> np.ndarray:
    """d a / d(w²) of the harmonic variance a(w) = hbar/(2w) coth(hbar w/2kT) (eV ps⁴)."""
    w = np.asarray(omega, float)
    if T <= 0:
        da = -HBAR / (2 * w**2)
    else:
        x = HBAR * w / (2 * KB * T)
        da = -HBAR / (2 * w**2) / np.tanh(x) - HBAR / (2 * w) / np.sinh(x) ** 2 * HBAR / (2 * KB * T)
    return da / (2 * w)


def response_lambda(omega: np.ndarray, T: float, rtol: float = 1e-6) -> np.ndarray:
    """Lambda_ij = dA_ij/dPhi_ij in the eigenbasis of Phi (n_r, n_r), mass-scaled eV ps⁴."""
    from atomtwin.engines.tdscha.scha import harmonic_variance

    w = np.asarray(omega, float)
    a = harmonic_variance(w, T)
    w2 = w**2
    num = a[:, None] - a[None, :]
    den = w2[:, None] - w2[None, :]
    deriv = _dvariance_domega2(w, T)
    close = np.abs(den) <= rtol * np.maximum(w2[:, None], w2[None, :])
    mid = 0.5 * (deriv[:, None] + deriv[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(close, mid, num / np.where(close, 1.0, den))


def assemble_hessian(kappa: np.ndarray, d3: np.ndarray, d4: np.ndarray | None, omega: np.ndarray,
                     T: float) -> np.ndarray:
    """d²F/dR² = kappa + 1/2 D3 (Lambda^-1 - D4/2)^-1 D3 in the mode basis of Phi (1/ps²).

    Parameters
    ----------
    kappa
        <d²V> (m, m); d3 <d³V> (m, m, m); d4 <d⁴V> (m, m, m, m) or None (bubble only);
        all in mass-scaled mode coordinates of the auxiliary modes ``omega`` (rad/ps).
    """
    m = omega.size
    lam = response_lambda(omega, T)
    D3 = d3.reshape(m * m, m)
    if d4 is None:
        H = kappa + 0.5 * D3.T @ (lam.ravel()[:, None] * D3)
    else:
        M = np.diag(1.0 / lam.ravel()) - 0.5 * d4.reshape(m * m, m * m)
        H = kappa + 0.5 * D3.T @ np.linalg.solve(M, D3)
    return 0.5 * (H + H.T)


def free_energy_hessian(result, model=None, *, provider=None, n_configs: int = 2000, rng=None,
                        include_d4: bool = True, n_jackknife: int = 10) -> xr.Dataset:
    """Physical SCHA phonons: the Hessian of the minimised free energy at the SCHA centroid.

    Parameters
    ----------
    result
        A converged :class:`~atomtwin.engines.tdscha.scha.SCHAResult` (its centroid, Phi and T).
    model
        The :class:`~atomtwin.engines.tdscha.models.PolynomialModel` it was computed with
        (exact averages), or None with ``provider``.
    provider
        Any batched force provider (ASE calculator via ``ASEProvider``, MLIP, callable): the
        averages <d²V>, <d³V>, <d⁴V> come from an antithetic ensemble of ``n_configs``
        configurations drawn at the solution with ``rng``.
    include_d4
        Keep the fourth-order term; False gives the bubble approximation (needs only D3:
        memory m³ instead of m⁴ for m modes, the usual choice for large cells).
    n_jackknife
        Groups of pairs for the jackknife errors (ensemble only).

    Returns
    -------
    xarray.Dataset
        ``hessian`` (dof, dof2) eV/Å² (Cartesian), ``frequency`` (mode) THz of the physical
        phonons (negative = imaginary: the centroid is unstable there),
        ``auxiliary_frequency`` (mode) THz of the SCHA auxiliary phonons, ``eigenvector``
        (dof, mode) mass-scaled displacement patterns; with a provider also
        ``frequency_error`` (mode) THz and ``hessian_error`` (dof, dof2) eV/Å² (jackknife).
    """
    s = result.system
    if (model is None) == (provider is None):
        raise InputError("give exactly one of model= (exact averages) or provider= (ensemble estimators).")
    if model is not None and model.n != s.n:
        raise InputError(f"model has {model.n} coordinates, the SCHA system {s.n}. Fix: pass the model "
                         "the SCHA run used.")
    if not result.converged:
        raise InputError("the SCHA run did not converge; the free-energy Hessian is defined at the optimum. "
                         "Fix: raise max_iter or loosen tol and rerun scha().")
    Q, d = s.basis, 1.0 / s.sqrt_m
    w2, E = np.linalg.eigh(result.phi)
    w = np.sqrt(w2)
    T = result.temperature
    extra = {}
    if model is not None:
        A, _ = result.covariances()
        mu = s.to_cartesian(result.R)
        _, _, kappa_c = model.gaussian_averages(mu, d[:, None] * (Q @ A @ Q.T) * d[None, :])
        _, _, _, d3c, d4c = model.derivatives(mu)
        U = d[:, None] * (Q @ E)  # mode coordinates -> Cartesian displacements (n, n_r)
        kappa = U.T @ kappa_c @ U
        d3 = np.einsum("abc,ai,bj,ck->ijk", d3c, U, U, U, optimize=True)
        d4 = np.einsum("abcd,ai,bj,ck,dl->ijkl", d4c, U, U, U, U, optimize=True) if include_d4 else None
        H = assemble_hessian(kappa, d3, d4, w, T)
    else:
        from atomtwin.engines.tdscha.hessian_ensemble import ensemble_hessian

        H, H_groups = ensemble_hessian(result, provider, n_configs, rng, include_d4, n_jackknife)
        G = len(H_groups)
        fg = np.array([_signed_frequency(np.linalg.eigvalsh(h)) for h in H_groups])
        extra["frequency_error"] = np.sqrt((G - 1) / G * np.sum((fg - fg.mean(0)) ** 2, axis=0))
        cg = np.array([_to_cartesian(s, E, h) for h in H_groups])
        extra["hessian_error"] = np.sqrt((G - 1) / G * np.sum((cg - cg.mean(0)) ** 2, axis=0))
    ev, vec = np.linalg.eigh(H)
    names = list(s.names)
    data = {"hessian": (("dof", "dof2"), _to_cartesian(s, E, H), {"units": "eV/Å^2"}),
            "frequency": ("mode", _signed_frequency(ev), {"units": "THz",
                          "description": "physical SCHA phonons, d2F/dR2 (negative = imaginary)"}),
            "auxiliary_frequency": ("mode", w / (2 * np.pi), {"units": "THz"}),
            "eigenvector": (("dof", "mode"), Q @ E @ vec, {"units": "1"})}
    if extra:
        data["frequency_error"] = ("mode", extra["frequency_error"], {"units": "THz"})
        data["hessian_error"] = (("dof", "dof2"), extra["hessian_error"], {"units": "eV/Å^2"})
    return xr.Dataset(data, coords={"dof": names, "dof2": names},
                      attrs={"temperature_K": T, "approximation": "full" if include_d4 else "bubble",
                             "averages": "exact" if model is not None else f"ensemble ({n_configs})"})


def _signed_frequency(eigenvalues: np.ndarray) -> np.ndarray:
    """sign(lambda) sqrt|lambda| / 2 pi: THz, negative for an unstable (imaginary) mode."""
    return np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) / (2 * np.pi)


def _to_cartesian(s, E: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Mode-basis mass-scaled Hessian (m, m) -> Cartesian force constants (n, n) eV/Å²."""
    sm = s.sqrt_m
    return sm[:, None] * (s.basis @ E @ H @ E.T @ s.basis.T) * sm[None, :]
