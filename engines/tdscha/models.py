"""Polynomial model potentials with exact Gaussian averages.

A :class:`PolynomialModel` is a polynomial of degree at most four in ``n`` Cartesian
coordinates ``x`` (Å), energies in eV::

    V(x) = v0 + g.x + 1/2 x.K.x + 1/6 T3[x, x, x] + 1/24 T4[x, x, x, x]

with fully symmetric dense tensors.  For a Gaussian of mean ``mu`` and covariance ``S``
(Å²) the averages of V, its gradient and its Hessian are exact closed forms (Isserlis):

    <V>      = V(mu) + 1/2 tr(H(mu) S) + 1/8 T4[S, S]
    <grad V> = grad V(mu) + 1/2 D3(mu)[S]
    <H>      = H(mu) + 1/2 T4[S]

Constructors: :func:`harmonic_1d`, :func:`quartic_1d`, :func:`double_well_1d` and
:func:`polar_lattice` (a chain of soft polar modes with quartic anharmonicity, each coupled
cubically to a stiff mode: a SrTiO3-like toy for THz pumping).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from atomtwin.toolkit.errors import InputError


def _symmetrize(t: np.ndarray) -> np.ndarray:
    """Average a tensor over all permutations of its axes."""
    if t.ndim < 2:
        return t
    perms = list(itertools.permutations(range(t.ndim)))
    return sum(np.transpose(t, p) for p in perms) / len(perms)


@dataclass(frozen=True)
class PolynomialModel:
    """A degree-4 polynomial potential in ``n`` coordinates (Å -> eV).

    Parameters
    ----------
    K
        Harmonic force constants (n, n), eV/Å².
    g
        Linear term (n,), eV/Å; default 0.
    T3
        Cubic tensor (n, n, n), eV/Å³; default 0.
    T4
        Quartic tensor (n, n, n, n), eV/Å⁴; default 0.
    v0
        Constant, eV.
    masses
        Mass of each coordinate (n,), amu.
    born_charges
        Coupling of each coordinate to an electric field, (n, 3) in e:
        force_i = sum_k born_charges[i, k] * E_k.
    names
        Label of each coordinate.
    """

    K: np.ndarray
    masses: np.ndarray
    g: np.ndarray | None = None
    T3: np.ndarray | None = None
    T4: np.ndarray | None = None
    v0: float = 0.0
    born_charges: np.ndarray | None = None
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        K = np.atleast_2d(np.asarray(self.K, dtype=float))
        n = K.shape[0]
        if K.shape != (n, n):
            raise InputError(f"K has shape {K.shape}; expected a square (n, n) matrix in eV/Å².")
        object.__setattr__(self, "K", _symmetrize(K))
        m = np.broadcast_to(np.asarray(self.masses, dtype=float), (n,)).copy()
        if np.any(m <= 0):
            raise InputError("masses must be positive (amu). Fix: give one mass per coordinate.")
        object.__setattr__(self, "masses", m)
        g = np.zeros(n) if self.g is None else np.asarray(self.g, dtype=float).reshape(n)
        object.__setattr__(self, "g", g)
        for name, order in (("T3", 3), ("T4", 4)):
            t = getattr(self, name)
            if t is None:
                object.__setattr__(self, name, None)
                continue
            t = np.asarray(t, dtype=float)
            if t.shape != (n,) * order:
                raise InputError(f"{name} has shape {t.shape}; expected {(n,) * order}.")
            object.__setattr__(self, name, _symmetrize(t) if np.any(t) else None)
        z = self.born_charges
        z = np.zeros((n, 3)) if z is None else np.asarray(z, dtype=float).reshape(n, 3)
        object.__setattr__(self, "born_charges", z)
        if not self.names:
            object.__setattr__(self, "names", tuple(f"q{i}" for i in range(n)))

    @property
    def n(self) -> int:
        """Number of coordinates."""
        return self.K.shape[0]

    # --- point evaluation (batched) -------------------------------------------------
    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        """Energies (S,) eV and forces (S, n) eV/Å for configurations ``x`` (S, n) Å."""
        x = np.asarray(x, dtype=float).reshape(-1, self.n)
        grad = self.g + x @ self.K
        e = self.v0 + x @ self.g + 0.5 * np.sum((x @ self.K) * x, axis=1)
        if self.T3 is not None:
            t3x = np.tensordot(x, self.T3, axes=(1, 2))  # (S, n, n)
            g3 = 0.5 * np.einsum("sij,sj->si", t3x, x)
            grad = grad + g3
            e = e + np.sum(g3 * x, axis=1) / 3.0  # homogeneous of degree 3: x.grad = 3 V3
        if self.T4 is not None:
            t4x = np.tensordot(x, self.T4, axes=(1, 3))  # (S, n, n, n)
            t4xx = np.einsum("sijk,sk->sij", t4x, x)
            g4 = np.einsum("sij,sj->si", t4xx, x) / 6.0
            grad = grad + g4
            e = e + np.sum(g4 * x, axis=1) / 4.0
        return e, -grad, None

    def derivatives(self, mu: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """V, gradient (n,), Hessian (n, n), third (n, n, n) and fourth derivative tensors at ``mu``."""
        mu = np.asarray(mu, dtype=float).reshape(self.n)
        n = self.n
        T3 = self.T3 if self.T3 is not None else np.zeros((n, n, n))
        T4 = self.T4 if self.T4 is not None else np.zeros((n, n, n, n))
        t4m = np.einsum("ijkl,l->ijk", T4, mu)
        d3 = T3 + t4m
        t3m = np.einsum("ijk,k->ij", T3, mu)
        t4mm = np.einsum("ijk,k->ij", t4m, mu)
        hess = self.K + t3m + 0.5 * t4mm
        grad = self.g + self.K @ mu + 0.5 * t3m @ mu + t4mm @ mu / 6.0
        v = self.v0 + self.g @ mu + 0.5 * mu @ self.K @ mu + (t3m @ mu) @ mu / 6.0 + (t4mm @ mu) @ mu / 24.0
        return float(v), grad, hess, d3, T4

    def gaussian_averages(self, mu: np.ndarray, cov: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Exact <V> (eV), <grad V> (n,) eV/Å and <Hessian> (n, n) eV/Å² over N(mu, cov).

        Parameters
        ----------
        mu
            Centroid (n,), Å.
        cov
            Position covariance (n, n), Å².
        """
        v, grad, hess, d3, T4 = self.derivatives(mu)
        cov = np.asarray(cov, dtype=float)
        t4s = np.einsum("ijkl,kl->ij", T4, cov)
        v_avg = v + 0.5 * np.sum(hess * cov) + np.sum(t4s * cov) / 8.0
        g_avg = grad + 0.5 * np.einsum("ijk,jk->i", d3, cov)
        h_avg = hess + 0.5 * t4s
        return float(v_avg), g_avg, h_avg


# --- constructors -----------------------------------------------------------------
def harmonic_1d(k: float = 0.6, mass: float = 1.0, born_charge: float = 1.0) -> PolynomialModel:
    """V = k x²/2 (k in eV/Å², mass in amu, Born charge in e along x)."""
    return PolynomialModel(K=[[k]], masses=[mass], born_charges=[[born_charge, 0.0, 0.0]], names=("x",))


def quartic_1d(k: float = 0.6, quartic: float = 0.5, mass: float = 1.0, born_charge: float = 1.0) -> PolynomialModel:
    """V = k x²/2 + quartic x⁴ (k eV/Å², quartic eV/Å⁴).  ``k`` may be 0 (pure quartic)."""
    if quartic < 0:
        raise InputError("quartic < 0 makes V unbounded below. Fix: give quartic >= 0.")
    return PolynomialModel(K=[[k]], T4=[[[[24.0 * quartic]]]], masses=[mass],
                           born_charges=[[born_charge, 0.0, 0.0]], names=("x",))


def double_well_1d(barrier: float = 0.05, x_min: float = 0.3, mass: float = 1.0,
                   born_charge: float = 1.0) -> PolynomialModel:
    """V = barrier ((x/x_min)² - 1)²: minima at ±x_min (Å), barrier height in eV at x = 0."""
    if barrier <= 0 or x_min <= 0:
        raise InputError("double well needs barrier > 0 (eV) and x_min > 0 (Å).")
    b, a = barrier, x_min
    return PolynomialModel(K=[[-4.0 * b / a**2]], T4=[[[[24.0 * b / a**4]]]], v0=b, masses=[mass],
                           born_charges=[[born_charge, 0.0, 0.0]], names=("x",))


def polar_lattice(n_cells: int = 4, k_polar: float = 0.3, quartic: float = 2.0, coupling_j: float = 0.2,
                  k_hard: float = 6.0, cubic: float = 1.0, mass_polar: float = 47.9, mass_hard: float = 16.0,
                  born_charge: float = 7.0) -> PolynomialModel:
    """A SrTiO3-like toy: a periodic chain of ``n_cells`` soft polar modes and stiff modes.

    V = sum_i [ k_polar u_i²/2 + quartic u_i⁴ + J (u_i - u_{i+1})²/2 + k_hard h_i²/2 + cubic u_i² h_i ]

    ``u_i`` (Å) is the polar (Ti against O) displacement of cell i, with Born charge
    ``born_charge`` along x; ``h_i`` an infrared-silent hard mode that the polar mode drives
    through the cubic coupling (the upconversion channel).  A negative ``k_polar`` makes the
    polar mode a double well (incipient ferroelectric); quantum fluctuations renormalise it.
    Coordinates are ordered u_0..u_{n-1}, h_0..h_{n-1}.
    """
    n = 2 * n_cells
    K = np.zeros((n, n))
    T3 = np.zeros((n, n, n))
    T4 = np.zeros((n, n, n, n))
    for i in range(n_cells):
        j = (i + 1) % n_cells
        K[i, i] += k_polar
        if n_cells > 1:
            K[i, i] += coupling_j
            K[j, j] += coupling_j
            K[i, j] -= coupling_j
            K[j, i] -= coupling_j
        K[n_cells + i, n_cells + i] = k_hard
        T4[i, i, i, i] = 24.0 * quartic
        # cubic u_i^2 h_i: d3V/du du dh = 2 cubic, spread over the 3 orderings
        for p in set(itertools.permutations((i, i, n_cells + i))):
            T3[p] = 2.0 * cubic
    masses = np.r_[np.full(n_cells, mass_polar), np.full(n_cells, mass_hard)]
    z = np.zeros((n, 3))
    z[:n_cells, 0] = born_charge
    names = tuple(f"u{i}" for i in range(n_cells)) + tuple(f"h{i}" for i in range(n_cells))
    return PolynomialModel(K=K, T3=T3, T4=T4, masses=masses, born_charges=z, names=names)
