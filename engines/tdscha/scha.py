"""Static SCHA: minimise the Gaussian variational free energy at temperature T.

Trial density: the thermal state of H_0 = |P|²/2 + dR.Phi.dR/2 about the centroid R
(mass-scaled, Phi (n_r, n_r) in 1/ps² in the system's basis).  Its position covariance is
A(Phi, T) = sum_mu a(omega_mu) e_mu e_mu^T with a(w) = hbar/(2 w) coth(hbar w / 2 k T), and

    F(R, Phi) = F_harm(Phi, T) + < V - dR.Phi.dR/2 >_{R, A(Phi)}     (Gibbs-Bogoliubov: F >= F_exact)

Stationarity: <f> = 0 and Phi = <d²V/dR dR>.  F is minimised by a preconditioned descent
with a line search on F (:mod:`~atomtwin.engines.tdscha.scha_minimize`, where the choice
is argued): it cannot oscillate on soft or unstable modes, as the damped self-consistent
iteration did.

Starting point.  The harmonic Hessian at the starting centroid, with every mode softer
than ``min_frequency`` (zero or negative curvature) replaced by the self-consistent
frequency of a quartic fitted to V along that mode (a one-mode SCHA): always positive
definite, and close enough that a sampled ensemble keeps its effective sample size.
User-given centroid, force constants or frequencies override it.  When the start is a
maximum of V along some mode (negative curvature), symmetry-broken starts at the
classical minima along those modes are tried as well (``scan_centroid='auto'``); every
minimum found is reported in ``SCHAResult.minima`` and the lowest is returned.

Averages are exact (polynomial models) or from an antithetic ensemble reused across
iterations by importance reweighting (:mod:`~atomtwin.engines.tdscha.scha_ensemble`).  At
the solution a fresh ensemble is drawn: the final free energy is its estimate at the
converged parameters, with an error from the variance over mirrored pairs; the frequency
and centroid errors are grouped-jackknife errors of the solution re-minimised on it.
A run that does not converge raises :class:`SCHANotConverged` naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from atomtwin.engines.tdscha.dynamics import TDSCHAState
from atomtwin.engines.tdscha.providers import System, TDSCHAError, evaluate_checked
from atomtwin.toolkit.errors import InputError
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


class SCHANotConverged(TDSCHAError):
    """The SCHA minimisation did not converge; ``result`` holds the last state reached.

    The message says why (iterations exhausted, line search at its noise floor, ensemble
    too small) and what to change.  The ``atomtwin scha`` CLI prints it as one line and
    exits with status 2.
    """

    def __init__(self, message: str, result=None, step: int | None = None):
        super().__init__(message, step)
        self.result = result


@dataclass
class SCHAResult:
    """Converged (or last) SCHA state; ``to_dataset()`` for xarray, ``state()`` for TD-SCHA.

    ``free_energy_error`` (eV), ``frequency_error`` (n_r,) THz and ``centroid_error`` (n,) Å are
    one standard error of a sampled ensemble (zero for exact averages).  ``minima`` lists every
    distinct minimum found from the starts tried (dicts with ``free_energy``,
    ``free_energy_error``, ``centroid`` Å, ``frequencies`` THz, ``converged``, ``start``), lowest
    first; the result is the lowest converged one.
    """

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
    frequency_error: np.ndarray | None = None
    centroid_error: np.ndarray | None = None
    minima: list = field(default_factory=list)
    message: str = ""

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
        if self.frequency_error is not None:
            data["frequency_error"] = ("mode", self.frequency_error, {"units": "THz"})
        if self.centroid_error is not None:
            data["centroid_error"] = ("dof", self.centroid_error, {"units": "Å"})
        if self.minima:
            data["minimum_free_energy"] = ("minimum", [m["free_energy"] for m in self.minima], {"units": "eV"})
            data["minimum_centroid"] = (("minimum", "dof"), np.array([m["centroid"] for m in self.minima]),
                                        {"units": "Å"})
        for k, v in self.history.items():
            data[f"history_{k}"] = ("iteration", np.asarray(v), {"units": "eV" if "energy" in k else ""})
        if self.stress is not None:
            data["stress"] = (("xyz", "xyz2"), self.stress, {"units": "eV/Å^3"})
        return xr.Dataset(data, coords={"dof": list(s.names), "dof2": list(s.names), "xyz": ["x", "y", "z"],
                                        "xyz2": ["x", "y", "z"], "dof_mass": ("dof", s.masses, {"units": "amu"})},
                          attrs={"engine": "atomtwin.scha", "temperature_K": self.temperature,
                                 "converged": int(self.converged), "n_evaluations": self.n_evaluations})


def scha(system: System, temperature: float, *, model=None, provider=None, n_configs: int = 200,
         rng=None, phi0: np.ndarray | None = None, R0: np.ndarray | None = None, mixing: float = 0.5,
         max_iter: int = 500, tol: float = 1e-8, ess_threshold: float = 0.5, min_frequency: float = 0.1,
         fix_centroid: bool = False, frequencies0=None, scan_centroid="auto", n_jackknife: int = 20,
         resolve_budget: int = 8, raise_on_failure: bool = True) -> SCHAResult:
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
        Starting mass-scaled force constants in the basis (n_r, n_r), 1/ps²; default: the
        harmonic Hessian at the centroid (finite differences for a provider) with every mode
        softer than ``min_frequency`` replaced by a one-mode SCHA frequency (module doc).
    R0
        Starting mass-scaled centroid (n,), default 0 (the reference configuration); use
        ``system.to_mass_scaled(x)`` for a Cartesian x (Å).
    frequencies0
        Starting frequencies (THz): a number for every mode or one per mode (ascending), on
        the eigenvectors of ``phi0`` / the harmonic Hessian.
    mixing
        First step length of the descent (0 < mixing <= 1); later steps come from the secant.
    max_iter
        Iterations per start.
    tol
        Convergence: relative residual of Phi and centroid step (Å) both below ``tol``.
        ``tol=0`` runs exactly ``max_iter`` iterations and returns without checking.
    ess_threshold
        Redraw the ensemble when the Kish effective sample size would fall below this fraction.
    min_frequency
        Modes softer than this (THz) in the harmonic start are treated as soft (see above).
    fix_centroid
        Keep the centroid fixed (e.g. at a high-symmetry position); or an array (k, n) of
        Cartesian displacement patterns along which it stays fixed while it relaxes in the
        other directions (e.g. the soft mode's pattern, for the free-energy Hessian of the
        high-symmetry phase below its instability).
    scan_centroid
        ``'auto'``: when the start is unstable along some mode (negative harmonic curvature),
        also start at the classical minima along the (up to 3) most unstable modes;
        ``True``: the same along the 3 softest modes whatever their sign; ``False``: one start;
        or an array (k, n) of Cartesian starting centroids (Å) tried besides ``R0``.
    n_jackknife
        Groups of pairs for the jackknife errors of frequencies and centroid (ensemble).
    resolve_budget
        Ensemble: when several minima are found, their free energies are compared on fresh
        ensembles, enlarged (up to this many ensembles each) while the lowest is within two
        combined standard errors of another; still unresolved, ``minima`` flags them
        ``ambiguous``.
    raise_on_failure
        Raise :class:`SCHANotConverged` when no start converges (default); False returns the
        last state with ``converged=False``.

    Raises
    ------
    SCHANotConverged
        No start converged; the message names the reason and the fix.
    TDSCHAError
        The effective sample size collapsed, or the provider failed.
    """
    from atomtwin.engines.tdscha.averages import ExactAverager
    from atomtwin.engines.tdscha.scha_ensemble import SCHAEnsemble
    from atomtwin.engines.tdscha.scha_minimize import Evaluator

    if (model is None) == (provider is None):
        raise InputError("give exactly one of model= (exact averages) or provider= (ensemble).")
    if not 0 < mixing <= 1:
        raise InputError(f"mixing must be in (0, 1], got {mixing}.")
    if provider is not None and (n_configs < 4 or n_configs % 2):
        raise InputError(f"n_configs={n_configs}: the ensemble is made of antithetic pairs. "
                         "Fix: give an even number >= 4.")
    s, T = system, float(temperature)
    rng = np.random.default_rng(rng)
    src = model if model is not None else provider
    R_start = np.zeros(s.n) if R0 is None else np.asarray(R0, float).reshape(s.n).copy()
    H = _harmonic_phi(s, R_start, model, provider)
    phi_start = _start_phi(s, R_start, src, H if phi0 is None else np.asarray(phi0, float), T,
                           min_frequency, frequencies0, fit=phi0 is None)
    starts = [("start", R_start, phi_start)]
    fixed = _fixed_directions(s, fix_centroid)
    if fixed is False:
        starts += _broken_starts(s, R_start, H, src, T, min_frequency, scan_centroid)

    def make_ev():
        if model is not None:
            return Evaluator(s, T, exact=ExactAverager(model, s))
        return Evaluator(s, T, draw=lambda R, L, step: SCHAEnsemble(s, provider, R, L, n_configs, rng, step))

    runs, failed, n_eval = [], [], 2 * s.n if provider is not None else 0
    for label, R, phi in starts:
        ev = make_ev()
        try:
            if phi is None:
                phi = _start_phi(s, R, src, _harmonic_phi(s, R, model, provider), T, min_frequency, frequencies0)
            res = _run(ev, s, T, R, phi, model, mixing, max_iter, tol, (ess_threshold * n_configs, 0.9 * n_configs),
                       fixed)
        except TDSCHAError as err:  # one start failing does not sink the others
            failed.append(err)
            continue
        finally:
            n_eval += ev.n_draws * n_configs if provider is not None else ev.exact.n_evaluations
        res.minima = [{"start": label}]
        runs.append(res)
    if not runs:
        raise failed[0]
    good = [r for r in runs if r.converged]
    if provider is not None and len(good) > 1:
        n_eval += _rank_minima(good, provider, n_configs, rng, resolve_budget)
    minima = _distinct(runs)
    best = min(good or runs, key=lambda r: r.free_energy)
    if provider is not None and best.converged:
        n_eval += _final_ensemble(best, provider, n_configs, rng, tol, max_iter, mixing, n_jackknife, fixed)
    best.minima, best.n_evaluations = minima, n_eval
    if not best.converged and tol > 0 and raise_on_failure:
        raise SCHANotConverged(
            f"SCHA at {T:g} K did not converge ({best.message}; last F = {best.free_energy:.6g} eV, "
            f"residual {best.history['gradient'][-1]:.2g} > tol {tol:g}). Fix: raise max_iter, start "
            "from a centroid/frequencies closer to the solution (scha: start_centroid, start_frequencies), "
            + ("or increase n_configs (the ensemble noise is above tol) or loosen tol."
               if provider is not None else "or loosen tol."), best)
    return best


def _run(ev, s, T, R, phi, model, mixing, max_iter, tol, ess_min, fix_centroid) -> SCHAResult:
    """One start: minimise; for exact models leave a saddle of F*(R) along its unstable mode."""
    from atomtwin.engines.tdscha.scha_minimize import minimise

    hist: dict = {}
    for _kick in range(4):
        p, conv, _, msg = minimise(ev, R, phi, fix_centroid=fix_centroid, tol=tol, max_iter=max_iter,
                                   mixing=mixing, ess_min=ess_min[0], ess_polish=ess_min[1], history=hist)
        res = SCHAResult(s, T, p.R, p.phi, p.F, p.F_err, conv, hist, p.stress, message=msg)
        if not (conv and model is not None and fix_centroid is False):
            break
        from atomtwin.engines.tdscha.hessian import free_energy_hessian

        hs = free_energy_hessian(res, model)
        Hm = hs["hessian"].values / s.sqrt_m[:, None] / s.sqrt_m[None, :]
        ev_, vec = np.linalg.eigh(s.basis.T @ Hm @ s.basis)
        if ev_[0] >= -1e-9 * max(1.0, abs(ev_[-1])):
            break
        # a saddle of F*(R) (symmetry kept by the start): step one thermal width down the mode
        v = s.basis @ vec[:, 0]
        A, _ = res.covariances()
        R, phi = p.R + np.sqrt(float(vec[:, 0] @ A @ vec[:, 0])) * v, p.phi
    return res


def _fixed_directions(s: System, fix):
    """False, True, or the (n, k) orthonormal mass-scaled directions of Cartesian patterns."""
    if isinstance(fix, (bool, np.bool_)) or fix is None:
        return bool(fix)
    P = np.atleast_2d(np.asarray(fix, float))
    if P.shape[1] != s.n:
        raise InputError(f"fix_centroid patterns have {P.shape[1]} components; the system has {s.n}. "
                         "Fix: give Cartesian displacement patterns of shape (k, n).")
    q, r = np.linalg.qr((P * s.sqrt_m).T)
    return q[:, np.abs(np.diag(r)) > 1e-12 * np.abs(r).max()]


def _fresh_estimate(res: SCHAResult, provider, n_configs, rng) -> int:
    """Add a fresh ensemble drawn at ``res``'s solution to its F estimate (pair means pooled)."""
    from atomtwin.engines.tdscha.scha_ensemble import SCHAEnsemble
    from atomtwin.engines.tdscha.scha_minimize import Evaluator

    ev = Evaluator(res.system, res.temperature)
    ens = SCHAEnsemble(res.system, provider, res.R, ev.gaussian(res.phi)[2], n_configs, rng, "compare")
    d = (ens.r - res.R) @ res.system.basis
    y = ens.e - 0.5 * np.sum((d @ res.phi) * d, axis=1)
    h = ens.n_pairs
    pm = np.concatenate([getattr(res, "_pair_means", np.empty(0)), 0.5 * (y[:h] + y[h:])])
    res._pair_means = pm
    res.free_energy = harmonic_free_energy(res.omega, res.temperature) + float(pm.mean())
    res.free_energy_error = float(pm.std(ddof=1) / np.sqrt(pm.size))
    return n_configs


def _equivalent(r1: SCHAResult, r2: SCHAResult, rtol: float = 0.05) -> bool:
    """Same auxiliary spectrum within ``rtol``: the same minimum or a symmetry image of it
    (mirror minima of a double well), which no amount of sampling can rank."""
    f1, f2 = r1.frequencies, r2.frequencies
    return bool(np.all(np.abs(f1 - f2) <= rtol * np.maximum(np.abs(f1), np.abs(f2))))


def _rank_minima(good: list, provider, n_configs, rng, budget: int) -> int:
    """Estimate every minimum's F on fresh ensembles, enlarged until the lowest is resolved.

    The estimates made during the minimisation are biased low (minimum of a noisy function),
    so each minimum gets a fresh ensemble.  While another minimum lies within 2 combined
    standard errors of the lowest, both get another ensemble, up to ``budget`` ensembles
    each; a ranking still unresolved then is flagged ``ambiguous`` in ``minima``.
    """
    n = 0
    for r in good:
        n += _fresh_estimate(r, provider, n_configs, rng)
    for _ in range(budget - 1):
        good.sort(key=lambda r: r.free_energy)
        b = good[0]
        close = [r for r in good[1:] if r.free_energy - b.free_energy
                 < 2 * np.hypot(r.free_energy_error, b.free_energy_error) and not _equivalent(r, b)]
        if not close:
            break
        for r in [b, *close]:
            n += _fresh_estimate(r, provider, n_configs, rng)
    good.sort(key=lambda r: r.free_energy)
    b = good[0]
    for r in good[1:]:
        r.ambiguous = bool(r.free_energy - b.free_energy < 2 * np.hypot(r.free_energy_error, b.free_energy_error)
                           and not _equivalent(r, b))
        b.ambiguous = getattr(b, "ambiguous", False) or r.ambiguous
    return n


def _final_ensemble(res: SCHAResult, provider, n_configs, rng, tol, max_iter, mixing, n_jackknife,
                    fix: bool) -> int:
    """Fresh ensemble at the solution: final F (pair errors), jackknife frequency/centroid errors."""
    from atomtwin.engines.tdscha.scha_ensemble import SCHAEnsemble
    from atomtwin.engines.tdscha.scha_minimize import Evaluator, minimise

    s, T = res.system, res.temperature
    ev = Evaluator(s, T)
    g = ev.gaussian(res.phi)
    ens = SCHAEnsemble(s, provider, res.R, g[2], n_configs, rng, "final")
    ev.ensemble = ens
    p = ev(res.R, res.phi)
    res.free_energy, res.free_energy_error, res.stress = p.F, p.F_err, p.stress
    kw = {"fix_centroid": fix, "tol": max(tol, 1e-10), "max_iter": max_iter, "mixing": mixing, "ess_min": 0.0}
    pf, conv, _, _ = minimise(ev, res.R, res.phi, **kw)
    G = int(min(n_jackknife, ens.n_pairs))
    groups = np.arange(ens.n_pairs) % G
    freqs, cents = [], []
    for k in range(G):
        evk = Evaluator(s, T, ensemble=ens.subset(groups != k))
        pk, _, _, _ = minimise(evk, pf.R, pf.phi, **kw)
        freqs.append(pk.w / (2 * np.pi))
        cents.append(s.to_cartesian(pk.R))
    f, c = np.array(freqs), np.array(cents)
    res.R, res.phi = pf.R, pf.phi
    res.frequency_error = np.sqrt((G - 1) / G * np.sum((f - f.mean(0)) ** 2, axis=0))
    res.centroid_error = np.sqrt((G - 1) / G * np.sum((c - c.mean(0)) ** 2, axis=0))
    return n_configs


def _distinct(runs: list) -> list:
    """The distinct minima among ``runs`` (lowest first), as dicts."""
    out = []
    for r in sorted(runs, key=lambda r: r.free_energy):
        x = r.system.to_cartesian(r.R)
        # the same minimum: centroids within 1e-3 Å (exact averages) or a tenth of the
        # narrowest thermal width (an ensemble's noise moves it), and the same spectrum
        sampled = r.free_energy_error > 0
        A, _ = r.covariances()
        width = float(np.sqrt(np.min(np.sum((r.system.basis @ A) * r.system.basis, axis=1)
                                     / r.system.sqrt_m**2)))
        tol_x = max(1e-3, 0.1 * width) if sampled else 1e-3
        same = [m for m in out if np.max(np.abs(m["centroid"] - x)) < tol_x
                and (not sampled or np.allclose(m["frequencies"], r.frequencies, rtol=0.05))
                and abs(m["free_energy"] - r.free_energy) < 1e-6 + 3 * np.hypot(r.free_energy_error,
                                                                                m["free_energy_error"])]
        if same:
            same[0]["start"] += ", " + r.minima[0]["start"]
            continue
        out.append({"free_energy": r.free_energy, "free_energy_error": r.free_energy_error, "centroid": x,
                    "frequencies": r.frequencies, "converged": r.converged, "start": r.minima[0]["start"],
                    "ambiguous": bool(getattr(r, "ambiguous", False))})
    return out


def _start_phi(s: System, R, src, H, T, min_frequency, frequencies0, fit=True) -> np.ndarray:
    """Positive-definite start: ``H`` with soft modes replaced by a one-mode quartic SCHA."""
    w2, E = np.linalg.eigh(0.5 * (H + H.T))
    w2_min = (2 * np.pi * min_frequency) ** 2
    if frequencies0 is not None:
        f = np.broadcast_to(np.asarray(frequencies0, float), w2.shape)
        if np.any(f <= 0):
            raise InputError("start frequencies must be > 0 THz. Fix: give positive frequencies.")
        return (E * (2 * np.pi * np.sort(f)) ** 2) @ E.T
    if not fit:
        return (E * np.maximum(w2, w2_min)) @ E.T
    x = s.to_cartesian(R)
    e0 = evaluate_checked(src, x[None], None, "start")[0][0]
    for k in np.flatnonzero(w2 < w2_min):
        v = s.basis @ E[:, k]
        vc = v / s.sqrt_m
        t = np.array([0.1, 0.2, 0.3]) / np.max(np.abs(vc))  # up to 0.3 Å along the mode
        e = evaluate_checked(src, x + np.outer(np.r_[t, -t], vc), None, "start")[0]
        even = 0.5 * (e[:3] + e[3:]) - e0  # = c2 t²/2 + c4 t⁴/24
        (c2, c4), *_ = np.linalg.lstsq(np.c_[t**2 / 2, t**4 / 24], even, rcond=None)
        if c4 > 0:
            lo, hi = w2_min * 1e-6, max(abs(c2), w2_min) + c4 * harmonic_variance(np.sqrt(w2_min * 1e-6), T)
            for _ in range(200):  # bisection on w² = c2 + c4 a(w)/2 (left side rises, right falls)
                mid = np.sqrt(lo * hi)
                if mid - c2 - 0.5 * c4 * harmonic_variance(np.sqrt(mid), T) > 0:
                    hi = mid
                else:
                    lo = mid
            w2[k] = max(hi, w2_min)
        else:
            w2[k] = max(abs(c2), w2_min)
    return (E * w2) @ E.T


def _broken_starts(s: System, R, H, src, T, min_frequency, scan) -> list:
    """Symmetry-broken starts: classical minima of V along unstable (or soft) modes."""
    if scan is False or scan is None:
        return []
    if not isinstance(scan, (str, bool)):
        xs = np.atleast_2d(np.asarray(scan, float))
        return [(f"given {i}", s.to_mass_scaled(x), None) for i, x in enumerate(xs)]
    w2, E = np.linalg.eigh(0.5 * (H + H.T))
    w2_min = (2 * np.pi * min_frequency) ** 2
    modes = np.argsort(w2)[:3]
    if scan == "auto":
        modes = [k for k in modes if w2[k] < -w2_min]
    out = []
    x = s.to_cartesian(R)
    for k in modes:
        v = s.basis @ E[:, k]
        vc = v / s.sqrt_m
        for sign in (1.0, -1.0):
            t = sign * np.linspace(0, 1.0, 41)[1:] / np.max(np.abs(vc))  # up to 1 Å along the mode
            e = evaluate_checked(src, x + np.outer(t, vc), None, "scan")[0]
            tk = t[int(np.argmin(e))]
            out.append((f"mode {k} {'+' if sign > 0 else '-'}{np.max(np.abs(tk * vc)):.3f} Å", R + tk * v, None))
    return out


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
