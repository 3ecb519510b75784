"""A lattice model with a soft mode, for free-energy Hessian and instability studies.

:func:`soft_mode_chain` is a periodic chain of cells, each with a soft coordinate u_i (a
double well when ``k_soft < 0``) and a hard coordinate h_i, coupled cubically::

    V = sum_i [ k_soft u_i²/2 + quartic u_i⁴ + J (u_i - u_{i+1})²/2 + k_hard h_i²/2 + cubic u_i² h_i ]

The cubic coupling gives <d³V> != 0 at the symmetric centroid u = 0, so the free-energy
Hessian of the high-symmetry phase differs from the SCHA auxiliary force constants by the
bubble term; J > 0 makes the uniform (q = 0, Gamma) soft mode the softest, so the chain
orders ferroelectrically below its SCHA instability temperature.  Coordinates are ordered
u_0..u_{n-1}, h_0..h_{n-1}; the cell of each is its index (lattice constant 1 Å).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from atomtwin.engines.tdscha.models import PolynomialModel, polar_lattice
from atomtwin.toolkit.errors import InputError


def soft_mode_chain(n_cells: int = 2, k_soft: float = -0.5, quartic: float = 2.0, coupling_j: float = 0.3,
                    k_hard: float = 6.0, cubic: float = 1.0, mass_soft: float = 47.9,
                    mass_hard: float = 16.0) -> PolynomialModel:
    """The chain above (eV, Å, amu); see the module docstring."""
    if n_cells < 1 or quartic <= 0 or k_hard <= 0:
        raise InputError("soft_mode_chain needs n_cells >= 1, quartic > 0 and k_hard > 0. "
                         "Fix: a bounded potential needs a positive quartic and a stable hard mode.")
    # the same potential as ``polar_lattice`` (one builder), without Born charges
    model = polar_lattice(n_cells=n_cells, k_polar=k_soft, quartic=quartic, coupling_j=coupling_j,
                          k_hard=k_hard, cubic=cubic, mass_polar=mass_soft, mass_hard=mass_hard,
                          born_charge=0.0)
    return dataclasses.replace(model, born_charges=None)


def chain_cells(n_cells: int) -> tuple[np.ndarray, list]:
    """(cell position (n,) Å, sublattice label (n,)) of :func:`soft_mode_chain`'s coordinates."""
    pos = np.r_[np.arange(n_cells), np.arange(n_cells)].astype(float)
    return pos, ["u"] * n_cells + ["h"] * n_cells
