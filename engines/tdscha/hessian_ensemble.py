"""Ensemble estimators of <d²V>, <d³V>, <d⁴V> for the SCHA free-energy Hessian (any provider).

Written from the Gaussian integration by parts (the estimators of the stochastic SCHA,
Bianco et al., PRB 96, 014111 (2017)).  In the auxiliary mode basis of Phi (mass-scaled
mode coordinates q, variances a_i) with whitened displacements eta_i = q_i / sqrt(a_i),
standard normal, Stein's identity <He_n(eta) g(eta)> = <d^n g / d eta^n> gives, with the
mode forces f = -dV/dq,

    <d³V>_ijk  = - < He2_ij(eta) g_k > / sqrt(a_i a_j)
    <d⁴V>_ijkl = - < He3_ijk(eta) g_l > / sqrt(a_i a_j a_k)

He2_ij = eta_i eta_j - delta_ij, He3_ijk = eta_i eta_j eta_k - delta_ij eta_k - delta_ik
eta_j - delta_jk eta_i, each symmetrised over all its indices.  g = f + Phi q - <f>: the
harmonic force of the auxiliary Hamiltonian and the mean force, whose exact contributions
vanish (<He2 q> = <He3> = 0), are subtracted as control variates: at the SCHA solution
only the anharmonic remainder is sampled, which is what makes the estimators usable.  With
antithetic pairs the odd part of g cancels exactly in the even He2 sums, and the even
part in the odd He3 sums.  Each estimator is a plain mean, unbiased, with noise falling as
1/sqrt(N); the Hessian built from them (a smooth function) inherits that rate, and its
error is estimated by a grouped jackknife over pairs.
"""

from __future__ import annotations

import numpy as np
from atomtwin.engines.tdscha.providers import evaluate_checked
from atomtwin.toolkit.errors import InputError

#: above this many modes the m⁴ fourth-order tensor is refused (use include_d4=False)
MAX_MODES_D4 = 60


def _sym3(t: np.ndarray) -> np.ndarray:
    return (t + t.transpose(0, 2, 1) + t.transpose(1, 0, 2) + t.transpose(1, 2, 0) + t.transpose(2, 0, 1)
            + t.transpose(2, 1, 0)) / 6.0


def _sym4(t: np.ndarray) -> np.ndarray:
    # symmetric in its first three indices already: average over which index is the force one
    return (t + t.transpose(0, 1, 3, 2) + t.transpose(0, 3, 2, 1) + t.transpose(3, 1, 2, 0)) / 4.0


def sample_modes(result, provider, n_configs: int, rng):
    """Whitened displacements eta (S, m), mode forces f (S, m), variances a (m,), w (m,), E."""
    from atomtwin.engines.tdscha.scha import harmonic_variance

    s = result.system
    if n_configs < 4 or n_configs % 2:
        raise InputError(f"n_configs={n_configs}: the ensemble is made of antithetic pairs. "
                         "Fix: give an even number >= 4.")
    rng = np.random.default_rng(rng)
    w2, E = np.linalg.eigh(result.phi)
    w = np.sqrt(w2)
    a = harmonic_variance(w, result.temperature)
    half = rng.standard_normal((n_configs // 2, w.size))
    eta = np.concatenate([half, -half])
    q = eta * np.sqrt(a)
    r = result.R + q @ E.T @ s.basis.T
    _, f, _ = evaluate_checked(provider, s.to_cartesian(r), None, "hessian ensemble")
    fq = (f / s.sqrt_m) @ s.basis @ E
    return eta, fq, a, w, E


def ensemble_hessian(result, provider, n_configs: int, rng, include_d4: bool, n_jackknife: int):
    """(H, [H without group g]) in the mode basis of Phi (1/ps²) from one antithetic ensemble."""
    from atomtwin.engines.tdscha.hessian import assemble_hessian

    eta, fq, a, w, _ = sample_modes(result, provider, n_configs, rng)
    m = w.size
    if include_d4 and m > MAX_MODES_D4:
        raise InputError(f"{m} modes: the fourth-order tensor would hold {m**4:.2g} numbers. "
                         "Fix: include_d4=False (bubble approximation).")
    S = eta.shape[0]
    h = S // 2
    G = int(min(n_jackknife, h))
    group = np.tile(np.arange(h) % G, 2)
    sa = np.sqrt(a)
    # raw per-group sums; the control-variate mean <f> is removed after pooling
    sums = []
    for k in range(G):
        e, f = eta[group == k], fq[group == k]
        g = f + (w**2) * (e * sa)  # f + Phi q, diagonal in the mode basis
        part = {"n": e.shape[0], "g": g.sum(0), "eg": e.T @ g, "eeg": np.einsum("si,sj,sk->ijk", e, e, g),
                "e": e.sum(0), "ee": e.T @ e}
        if include_d4:
            part["eeeg"] = np.einsum("si,sj,sk,sl->ijkl", e, e, e, g, optimize=True)
        sums.append(part)

    def build(parts):
        n = sum(p["n"] for p in parts)
        tot = {k: sum(p[k] for p in parts) / n for k in parts[0] if k != "n"}
        gbar = tot["g"]
        eye = np.eye(m)
        # <(eta_i eta_j - delta_ij)(g_k - gbar_k)>, centred with the sample <eta eta>
        he2g = tot["eeg"] - tot["ee"][:, :, None] * gbar[None, None, :]
        d3 = -_sym3(he2g / (sa[:, None, None] * sa[None, :, None]))
        d4 = None
        if include_d4:
            he3g = (tot["eeeg"] - np.einsum("ij,kl->ijkl", eye, tot["eg"]) - np.einsum("ik,jl->ijkl", eye, tot["eg"])
                    - np.einsum("jk,il->ijkl", eye, tot["eg"]))
            d4 = -_sym4(he3g / (sa[:, None, None, None] * sa[None, :, None, None] * sa[None, None, :, None]))
        # at the SCHA solution kappa = Phi: the auxiliary force constants (the result of the
        # minimisation, with its own error) are used; the sampled kappa is not
        return assemble_hessian(np.diag(w**2), d3, d4, w, result.temperature)

    H = build(sums)
    H_groups = [build([p for j, p in enumerate(sums) if j != k]) for k in range(G)]
    return H, H_groups
