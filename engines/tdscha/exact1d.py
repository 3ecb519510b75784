"""Exact quantum references in one dimension: the Schrödinger equation on a grid.

Units: x in Å, mass in amu, energies in eV, time in ps.  The kinetic operator is the
Fourier (spectral) one on a periodic grid, the same one the split-operator propagator
uses, so eigenstates and dynamics are consistent; choose a box where the states of
interest vanish at the edges (spectral accuracy in the grid spacing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.units import AMU_A2_PS2_TO_EV, HBAR, KB


@dataclass
class Grid1D:
    """A 1D Schrödinger problem: potential ``V(x) -> eV`` on ``n`` points in [x_min, x_max) Å.

    Parameters
    ----------
    potential
        Vectorised callable V(x) (eV) of x (Å).
    mass
        amu.
    x_min, x_max
        Box, Å.
    n
        Grid points (even; FFT size).
    """

    potential: Callable[[np.ndarray], np.ndarray]
    mass: float
    x_min: float = -2.0
    x_max: float = 2.0
    n: int = 256

    def __post_init__(self) -> None:
        if self.n < 8 or self.n % 2:
            raise InputError("n must be an even number >= 8.")
        self.x = np.linspace(self.x_min, self.x_max, self.n, endpoint=False)
        self.dx = self.x[1] - self.x[0]
        self.k = 2 * np.pi * np.fft.fftfreq(self.n, d=self.dx)
        self.m = self.mass * AMU_A2_PS2_TO_EV
        self.v = np.asarray(self.potential(self.x), dtype=float)
        self._eig = None

    @property
    def kinetic_diag(self) -> np.ndarray:
        """hbar² k²/(2 m) on the FFT grid (eV)."""
        return HBAR**2 * self.k**2 / (2 * self.m)

    def hamiltonian(self) -> np.ndarray:
        """Dense Hamiltonian (n, n), eV."""
        eye = np.eye(self.n)
        T = np.fft.ifft(self.kinetic_diag[:, None] * np.fft.fft(eye, axis=0), axis=0).real
        return 0.5 * (T + T.T) + np.diag(self.v)

    def eigen(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (n,) eV and normalised eigenvectors (n, n) (columns; sum |psi|² dx = 1)."""
        if self._eig is None:
            E, U = np.linalg.eigh(self.hamiltonian())
            self._eig = (E, U / np.sqrt(self.dx))
        return self._eig

    def ground_state(self) -> tuple[float, np.ndarray]:
        """Ground-state energy (eV) and wavefunction (n,)."""
        E, U = self.eigen()
        return float(E[0]), U[:, 0]

    def thermal(self, temperature: float) -> dict:
        """Exact thermal free energy (eV), <x> (Å), <x²> (Å²) and energy (eV) at T (K)."""
        E, U = self.eigen()
        if temperature <= 0:
            p = np.zeros_like(E)
            p[0] = 1.0
            F = float(E[0])
        else:
            b = 1.0 / (KB * temperature)
            z = np.exp(-b * (E - E[0]))
            p = z / z.sum()
            F = float(E[0] - np.log(z.sum()) / b)
        dens = (np.abs(U) ** 2 * p).sum(axis=1) * self.dx
        if p[-1] > 1e-10:
            raise InputError("the highest grid states are thermally populated. Fix: enlarge the box "
                             "or the number of points.")
        return {"free_energy": F, "x_mean": float(dens @ self.x), "x2": float(dens @ self.x**2),
                "energy": float(p @ E)}

    def gaussian_wavepacket(self, x0: float, variance: float, p0: float = 0.0) -> np.ndarray:
        """Minimum-uncertainty packet: centre x0 (Å), <dx²> (Å²), momentum p0 (eV ps/Å)."""
        psi = np.exp(-((self.x - x0) ** 2) / (4 * variance) + 1j * p0 * self.x / HBAR)
        return psi / np.sqrt(np.sum(np.abs(psi) ** 2) * self.dx)

    def propagate(self, states: np.ndarray, weights: np.ndarray | None, dt: float, n_steps: int, *,
                  force: Callable[[float], float] | None = None, output_every: int = 1) -> xr.Dataset:
        """Split-operator real-time dynamics of a pure or mixed state.

        Parameters
        ----------
        states
            Wavefunctions (n,) or (n, K) (columns), each normalised.
        weights
            Populations (K,) of a mixed state sum_k w_k |psi_k><psi_k| (None: pure / equal).
        dt
            Time step, ps (error O(dt²) globally).
        force
            External force F(t) (eV/Å) adding -F(t) x to the potential (a field times the charge).

        Returns
        -------
        xarray.Dataset
            ``x_mean`` Å, ``x2`` Å², ``x_var`` Å², ``p_mean`` eV ps/Å, ``p_var``, ``energy``
            (<H(t)>, eV) against ``time`` (ps).
        """
        psi = np.array(states, dtype=complex)
        if psi.ndim == 1:
            psi = psi[:, None]
        K = psi.shape[1]
        w = np.full(K, 1.0 / K) if weights is None else np.asarray(weights, float) / np.sum(weights)
        kin = np.exp(-1j * self.kinetic_diag * dt / HBAR)[:, None]
        fx = (lambda t: 0.0) if force is None else force
        rows, t = [], 0.0

        def observe(psi, t):
            dens = (np.abs(psi) ** 2 @ w) * self.dx
            xm, x2 = float(dens @ self.x), float(dens @ self.x**2)
            phik = np.fft.fft(psi, axis=0)
            pk = (np.abs(phik) ** 2 @ w)
            pk = pk / pk.sum()
            p = HBAR * self.k
            pm, p2 = float(pk @ p), float(pk @ p**2)
            e = float(pk @ self.kinetic_diag + dens @ (self.v - fx(t) * self.x))
            rows.append((t, xm, x2, x2 - xm**2, pm, p2 - pm**2, e))

        observe(psi, t)
        for step in range(1, n_steps + 1):
            psi = psi * np.exp(-0.5j * (self.v - fx(t) * self.x) * dt / HBAR)[:, None]
            psi = np.fft.ifft(kin * np.fft.fft(psi, axis=0), axis=0)
            t = step * dt
            psi = psi * np.exp(-0.5j * (self.v - fx(t) * self.x) * dt / HBAR)[:, None]
            if step % output_every == 0:
                observe(psi, t)
        r = np.array(rows)
        names = [("x_mean", "Å"), ("x2", "Å^2"), ("x_var", "Å^2"), ("p_mean", "eV*ps/Å"),
                 ("p_var", "(eV*ps/Å)^2"), ("energy", "eV")]
        return xr.Dataset({k: ("frame", r[:, i + 1], {"units": u}) for i, (k, u) in enumerate(names)},
                          coords={"time": ("frame", r[:, 0], {"units": "ps"})},
                          attrs={"engine": "atomtwin.engines.tdscha.exact1d", "dt_ps": dt})


def grid_for_model(model, x_min: float = -2.0, x_max: float = 2.0, n: int = 256) -> Grid1D:
    """The :class:`Grid1D` of a one-coordinate :class:`~atomtwin.engines.tdscha.models.PolynomialModel`."""
    if model.n != 1:
        raise InputError(f"the grid solver is one-dimensional; the model has {model.n} coordinates.")
    return Grid1D(lambda x: model.evaluate(np.asarray(x)[:, None])[0], float(model.masses[0]), x_min, x_max, n)
