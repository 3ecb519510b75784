"""phonopy + EMT Cu against frequencies from our own finite-difference dynamical matrix.

Reference: the Hessian of the 3x3x3 supercell of primitive fcc Cu, built here by central
differences of EMT forces (h = 0.01 Å), mass-weighted and diagonalised.  Its eigenfrequencies
are the phonons at the 27 wavevectors commensurate with the supercell, which phonopy's
dynamical matrix reproduces exactly (Fourier interpolation is exact on the commensurate grid).
Both are finite differences of the same forces with O(h^2) anharmonic error (~1e-4 relative
for 0.01 Å in a metal with a ~2.5 Å bond) plus phonopy's symmetrisation of the force constants:
we allow 0.01 THz (0.15 % of the 7 THz top of the band).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from atomtwin.toolkit import units as U
from atomtwin.toolkit.phonons import (
    UnrelaxedStructureWarning,
    band_structure,
    compare_phonons,
    compute_phonons,
    frequencies_at,
    gamma_modes,
    phonon_dos,
    thermal_properties,
)

A_EMT = 3.5898  # Å: the EMT equilibrium lattice constant of Cu (zero stress to 1e-4 GPa)


@pytest.fixture(scope="module")
def cu_phonons():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnrelaxedStructureWarning)  # relaxed: must not warn
        return compute_phonons(bulk("Cu", "fcc", a=A_EMT), EMT(), supercell=(3, 3, 3))


def own_fd_frequencies(atoms, h=0.01):
    """Sorted frequencies (THz) of the supercell's mass-weighted central-difference Hessian."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    n = len(atoms)
    hess = np.zeros((3 * n, 3 * n))
    pos0 = atoms.get_positions()
    for a in range(n):
        for d in range(3):
            f = []
            for s in (+1, -1):
                p = pos0.copy()
                p[a, d] += s * h
                atoms.set_positions(p)
                f.append(atoms.get_forces().ravel())
            hess[3 * a + d] = -(f[0] - f[1]) / (2 * h)
    hess = 0.5 * (hess + hess.T)
    w = 1 / np.sqrt(np.repeat(atoms.get_masses(), 3))
    ev = np.linalg.eigvalsh(hess * w[:, None] * w[None, :]) * U.EV_A_AMU_TO_A_PS2
    return np.sort(np.sign(ev) * np.sqrt(np.abs(ev)) / (2 * np.pi))


def test_phonopy_emt_cu_matches_own_finite_differences(cu_phonons):
    from ase import Atoms

    spc = cu_phonons.supercell
    sup = Atoms(spc.symbols, positions=spc.positions, cell=spc.cell, pbc=True, masses=spc.masses)
    ref = own_fd_frequencies(sup)
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)]) / 3.0
    ph = np.sort(frequencies_at(cu_phonons, grid).ravel())
    assert np.abs(ph - ref).max() < 0.01
    # the supercell's Γ modes (used for mode projection) are the same set
    assert np.abs(np.sort(gamma_modes(cu_phonons)["frequency"].values) - ref).max() < 0.01
    # three acoustic modes at Γ (acoustic sum rule), everything else real and positive
    assert np.sum(np.abs(ref) < 0.05) == 3 and ref.min() > -0.05


def test_band_dos_thermal(cu_phonons):
    bs = band_structure(cu_phonons, npoints=60)
    assert bs.attrs["labels"][0] == "G" and bs["frequency"].shape[1] == 3
    f = bs["frequency"].values
    # Γ is the first point: three zero acoustic branches; fcc X point: LA above TA, both finite
    assert np.abs(f[0]).max() < 1e-3
    dos = phonon_dos(cu_phonons, mesh=(10, 10, 10), sigma=0.1)
    # 3 states per primitive cell (one atom); 2 % for the Gaussian tails cut at the grid ends
    assert float(dos.integrate("frequency")) == pytest.approx(3.0, rel=0.02)
    tp = thermal_properties(cu_phonons, [0.0, 50.0, 2000.0], mesh=(10, 10, 10))
    # units: C_v and F from our own sums over phonopy's mesh modes (weights), in k_B and eV per cell;
    # phonopy drops modes below its cutoff (the Γ acoustic ones), as we do here; 1e-5 for phonopy's
    # own physical constants, which differ from CODATA 2018 (units.py) at the 1e-6 level
    mesh = cu_phonons.mesh
    nu = np.asarray(mesh.frequencies)
    wt = np.asarray(mesh.weights, dtype=float)[:, None] * np.ones_like(nu)
    live = nu > 1e-4
    nu, wt = nu[live], wt[live] / wt.sum() * 3  # 3 modes per cell (mean over q)
    x = U.H_PLANCK * nu / (U.KB * 2000.0)
    cv = (wt * x**2 * np.exp(x) / np.expm1(x) ** 2).sum()
    assert float(tp["heat_capacity"].sel(temperature=2000.0)) == pytest.approx(cv, rel=1e-5)
    zpe = (wt * 0.5 * U.H_PLANCK * nu).sum()
    assert float(tp["free_energy"].sel(temperature=0.0)) == pytest.approx(zpe, rel=1e-5)
    # harmonic limits: C_v -> 3 k_B per atom (Dulong-Petit) within (h nu/kT)^2/12 < 0.3 % at 2000 K
    assert float(tp["heat_capacity"].sel(temperature=2000.0)) == pytest.approx(3.0, rel=3e-3)
    assert float(tp["heat_capacity"].sel(temperature=0.0)) == pytest.approx(0.0, abs=1e-9)


def test_compare_two_calculators_and_unrelaxed_warning():
    cu = bulk("Cu", "fcc", a=A_EMT)
    same = compare_phonons(cu, EMT(), EMT(), labels=("emt", "emt2"), supercell=(2, 2, 2), npoints=20,
                           mesh=(4, 4, 4))
    assert same.attrs["max_abs_difference_thz"] < 1e-9  # identical calculators -> identical phonons
    # a displaced atom leaves residual forces: the phonons would not be those of a minimum
    rattled = cu.repeat((2, 1, 1))
    rattled.positions[0] += [0.05, 0.0, 0.0]
    with pytest.warns(UnrelaxedStructureWarning, match="not relaxed"):
        compute_phonons(rattled, EMT(), supercell=(1, 2, 2), primitive_matrix=None)
