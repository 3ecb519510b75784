"""Soft-mode instability temperature from the SCHA free-energy Hessian (the SSCHA CDW route).

The high-symmetry phase is stable while the free-energy Hessian d²F/dR² at its centroid
is positive definite.  Following the lowest eigenvalue of the Hessian restricted to the
displacement patterns of one wavevector (q = Gamma for a ferroelectric, the CDW vector for
NbSe2) against temperature, the temperature where it changes sign is the SCHA (mean-field)
transition temperature: the workflow of the NbSe2 study (arXiv:2504.13675) and of the
SSCHA literature.  Along the soft patterns the centroid is held at the high-symmetry
position (otherwise it would leave it below the transition); it relaxes in every other
direction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from atomtwin.engines.tdscha.providers import System
from atomtwin.toolkit.errors import InputError


def wavevector_patterns(cell_position: np.ndarray, sublattice: Sequence, q: np.ndarray) -> np.ndarray:
    """Real, orthonormal displacement patterns of one wavevector in a supercell.

    Parameters
    ----------
    cell_position
        Lattice translation of the primitive cell each degree of freedom belongs to, (n, 3)
        or (n,) Å.
    sublattice
        Label (n,) of each degree of freedom inside the primitive cell (e.g. ``(atom, axis)``):
        dofs with the same label are images of each other.
    q
        Wavevector (3,) or scalar, 1/Å (2 pi included); it must be commensurate with the
        supercell for the patterns to be periodic.

    Returns
    -------
    numpy.ndarray
        (k, n) Cartesian patterns: the real and imaginary parts of exp(i q.T) on each
        sublattice, orthonormalised (k = number of sublattices at Gamma or the zone boundary,
        up to twice that elsewhere).
    """
    T = np.asarray(cell_position, float)
    T = T[:, None] if T.ndim == 1 else T
    qv = np.atleast_1d(np.asarray(q, float))
    phase = T @ np.resize(qv, T.shape[1])
    labels = list(sublattice)
    if len(labels) != T.shape[0]:
        raise InputError(f"sublattice has {len(labels)} labels for {T.shape[0]} degrees of freedom.")
    cols = []
    for lab in dict.fromkeys(labels):
        mask = np.array([x == lab for x in labels])
        for part in (np.cos(phase), np.sin(phase)):
            cols.append(np.where(mask, part, 0.0))
    M = np.array(cols).T
    u, sv, _ = np.linalg.svd(M, full_matrices=False)
    return u[:, sv > 1e-8 * sv.max()].T


def instability_temperature(system: System, temperatures: Sequence[float], *, model=None, provider=None,
                            patterns: np.ndarray | None = None, fix_patterns: np.ndarray | None = None,
                            include_d4: bool = True, refine: bool = True,
                            n_configs_hessian: int = 2000, rng=None, xtol: float = 1e-3,
                            **scha_kwargs) -> xr.Dataset:
    """Lowest free-energy Hessian eigenvalue of the high-symmetry phase against temperature.

    Parameters
    ----------
    system
        The :class:`System`; its reference ``x0`` (or ``R0`` in ``scha_kwargs``) is the
        high-symmetry configuration.
    temperatures
        K, scanned in the order given (each SCHA run starts from the previous solution).
    model, provider
        Exactly one (exact averages, or ensembles for SCHA and the Hessian estimators).
    patterns
        (k, n) Cartesian displacement patterns spanning the wavevector's subspace (see
        :func:`wavevector_patterns`); default: every mode.
    fix_patterns
        (k', n) Cartesian patterns along which the centroid is held at the high-symmetry
        position (it relaxes along all others); default ``patterns``.  For a crystal these are
        the symmetry-breaking directions (e.g. every polar displacement), while the
        symmetric ones (a strain-like hard mode that a cubic coupling shifts) must relax.
    include_d4
        Full Hessian (True) or bubble approximation.
    refine
        With exact averages, locate the sign change by Brent's method to ``xtol`` K (each
        evaluation is one SCHA minimisation and one Hessian); otherwise linear interpolation
        of the eigenvalue between the two bracketing temperatures.
    n_configs_hessian, rng
        Ensemble of the Hessian estimators (provider only); ``rng`` (seed or Generator) also
        seeds the SCHA ensembles unless ``scha_kwargs`` has its own.
    scha_kwargs
        Passed to :func:`~atomtwin.engines.tdscha.scha.scha` (``n_configs``, ``tol``, ...).

    Returns
    -------
    xarray.Dataset
        Over ``temperature``: ``lowest_eigenvalue`` (1/ps², mass-scaled) and
        ``soft_frequency`` (THz, negative = imaginary) with ``soft_frequency_error`` for an
        ensemble, ``auxiliary_frequency`` (THz, lowest SCHA auxiliary frequency in the
        subspace); attrs ``instability_temperature_K`` (NaN when no sign change is bracketed)
        and ``method``.
    """
    from atomtwin.engines.tdscha.hessian import free_energy_hessian
    from atomtwin.engines.tdscha.scha import scha

    s = system
    P = np.eye(s.n) if patterns is None else np.atleast_2d(np.asarray(patterns, float))
    if P.shape[1] != s.n:
        raise InputError(f"patterns have {P.shape[1]} components; the system has {s.n}.")
    # mass-scaled orthonormal subspace inside the fluctuation basis
    Vm, _ = np.linalg.qr(s.basis.T @ (P * s.sqrt_m).T)
    fixed = (True if patterns is None else P) if fix_patterns is None else np.atleast_2d(fix_patterns)
    state = {"R0": scha_kwargs.pop("R0", None), "phi0": scha_kwargs.pop("phi0", None)}
    rng = np.random.default_rng(rng)

    def lowest(T: float):
        kw_s = dict(scha_kwargs)
        if provider is not None:
            kw_s.setdefault("rng", rng)  # one seeded stream for the SCHA ensembles and the Hessian's
        res = scha(s, float(T), model=model, provider=provider, fix_centroid=fixed, scan_centroid=False,
                   R0=state["R0"], phi0=state["phi0"], **kw_s)
        state["R0"], state["phi0"] = res.R, res.phi
        kw = {"model": model} if model is not None else {"provider": provider, "n_configs": n_configs_hessian,
                                                           "rng": rng}
        hs = free_energy_hessian(res, include_d4=include_d4, **kw)
        Hm = hs["hessian"].values / s.sqrt_m[:, None] / s.sqrt_m[None, :]
        ev = np.linalg.eigvalsh(Vm.T @ (s.basis.T @ Hm @ s.basis) @ Vm)
        err = np.nan
        if "hessian_error" in hs:  # first-order propagation onto the lowest eigenvector
            _, vec = np.linalg.eigh(Vm.T @ (s.basis.T @ Hm @ s.basis) @ Vm)
            dH = hs["hessian_error"].values / s.sqrt_m[:, None] / s.sqrt_m[None, :]
            v = s.basis @ Vm @ vec[:, 0]
            err = float(np.sqrt(np.sum((v[:, None] * v[None, :] * dH) ** 2)))
        aux = np.linalg.eigvalsh(Vm.T @ res.phi @ Vm)[0]
        return float(ev[0]), err, float(np.sqrt(max(aux, 0.0)) / (2 * np.pi))

    rows = [lowest(T) for T in temperatures]
    lam = np.array([r[0] for r in rows])
    temps = np.asarray(temperatures, float)
    Tc, method = np.nan, "none bracketed"
    change = np.flatnonzero(np.sign(lam[:-1]) * np.sign(lam[1:]) < 0)
    if change.size:
        i = int(change[0])
        t0, t1, l0, l1 = temps[i], temps[i + 1], lam[i], lam[i + 1]
        Tc, method = float(t0 - l0 * (t1 - t0) / (l1 - l0)), "linear interpolation"
        if refine and model is not None:
            from scipy.optimize import brentq

            Tc, method = float(brentq(lambda T: lowest(T)[0], min(t0, t1), max(t0, t1), xtol=xtol)), "brent"
    freq = np.sign(lam) * np.sqrt(np.abs(lam)) / (2 * np.pi)
    err = np.array([r[1] for r in rows])
    data = {"lowest_eigenvalue": ("temperature", lam, {"units": "1/ps^2"}),
            "soft_frequency": ("temperature", freq, {"units": "THz"}),
            "auxiliary_frequency": ("temperature", np.array([r[2] for r in rows]), {"units": "THz"})}
    if np.isfinite(err).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            data["soft_frequency_error"] = ("temperature", err / (4 * np.pi * np.sqrt(np.abs(lam))),
                                            {"units": "THz"})
    return xr.Dataset(data, coords={"temperature": ("temperature", temps, {"units": "K"})},
                      attrs={"instability_temperature_K": Tc, "method": method,
                             "approximation": "full" if include_d4 else "bubble"})
