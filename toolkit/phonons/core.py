"""Harmonic phonons through phonopy with any ASE calculator.

:func:`compute_phonons` displaces atoms in a supercell (phonopy's symmetry-reduced finite
displacements), evaluates forces with the given ASE calculator (EMT, LJ, a DFT code, a
learned potential...), and returns the :class:`phonopy.Phonopy` object with force constants
(eV/Å^2).  Results as xarray: :func:`band_structure` along the standard path of ASE's
``Cell.bandpath`` (no seekpath), :func:`phonon_dos`, :func:`thermal_properties`,
:func:`gamma_modes` (the Γ point of the supercell, for mode projection) and
:func:`compare_phonons` for two calculators.  Frequencies are ordinary frequencies in THz
(imaginary ones as negative numbers, phonopy's convention).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError


class UnrelaxedStructureWarning(UserWarning):
    """The structure given for phonons is not at a minimum (residual forces above threshold)."""


def _as_atoms(structure):
    """An ASE Atoms from Atoms or a schema Dataset (its first frame)."""
    from ase import Atoms

    if isinstance(structure, Atoms):
        return structure.copy()
    if isinstance(structure, xr.Dataset):
        from atomtwin.toolkit import schema as S

        S.validate(structure, require=(S.CELL,))
        f0 = structure.isel({S.FRAME: 0})
        return Atoms(symbols=[str(s) for s in structure[S.SPECIES].values],
                     positions=np.asarray(f0[S.POSITIONS].values), cell=np.asarray(f0[S.CELL].values),
                     pbc=True, masses=np.asarray(structure[S.MASS].values) if S.MASS in structure.coords else None)
    raise TypeError(f"expected an ase.Atoms or a trajectory Dataset, got {type(structure).__name__}.")


def _phonopy_atoms(atoms):
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.asarray(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(wrap=False), masses=atoms.get_masses())


def _forces(calculator, cell, symbols, positions, masses) -> np.ndarray:
    from ase import Atoms

    a = Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True, masses=masses)
    a.calc = calculator
    return np.asarray(a.get_forces(), dtype=float)


def compute_phonons(structure, calculator, *, supercell: Sequence[int] | np.ndarray = (2, 2, 2),
                    primitive_matrix="auto", displacement: float = 0.01,
                    force_threshold: float = 1e-2, born_charges: np.ndarray | None = None,
                    epsilon_inf: np.ndarray | float | None = None, symprec: float = 1e-5,
                    subtract_residual_forces: bool = True):
    """Force constants by finite displacements with any ASE calculator.

    Parameters
    ----------
    structure
        Unit cell: ``ase.Atoms`` or a schema Dataset (first frame), relaxed.
    calculator
        Any ASE calculator object (forces in eV/Å).
    supercell
        Supercell of the unit cell: three integers or a 3x3 matrix.
    primitive_matrix
        Passed to phonopy (``"auto"`` finds the primitive cell; ``None`` keeps the unit cell).
    displacement
        Finite displacement in Å.
    force_threshold
        eV/Å: larger residual forces on the undisplaced supercell raise an
        :class:`UnrelaxedStructureWarning` (phonons of an unrelaxed structure are not harmonic
        phonons of a minimum).
    born_charges, epsilon_inf
        Born charges (n_primitive_atoms, 3, 3) in e, ``[a, i, j] = dP_i/dr_aj``, and the
        electronic dielectric tensor (3x3 or a number): enable the non-analytic correction
        (LO-TO splitting) near Γ.
    symprec
        Symmetry tolerance (Å).
    subtract_residual_forces
        Subtract the undisplaced supercell's forces from the displaced ones.

    Returns
    -------
    phonopy.Phonopy
        With ``force_constants`` (eV/Å^2) produced, NAC parameters set when given;
        ``phonon.residual_max_force`` holds the largest residual force (eV/Å).
    """
    from phonopy import Phonopy

    atoms = _as_atoms(structure)
    sc = np.asarray(supercell, dtype=int)
    sc = np.diag(sc) if sc.shape == (3,) else sc
    if sc.shape != (3, 3) or round(abs(np.linalg.det(sc))) < 1:
        raise InputError(f"supercell must be three positive integers or a 3x3 integer matrix, got {supercell!r}.")
    with warnings.catch_warnings():  # phonopy warns that 'auto' is its new default: we ask for it
        warnings.filterwarnings("ignore", message="primitive_matrix defaulted")
        phonon = Phonopy(_phonopy_atoms(atoms), supercell_matrix=sc, primitive_matrix=primitive_matrix,
                         symprec=symprec)
    spc = phonon.supercell
    args = (spc.cell, spc.symbols, spc.masses)
    f0 = _forces(calculator, spc.cell, spc.symbols, spc.positions, spc.masses)
    fmax = float(np.linalg.norm(f0, axis=1).max())
    if fmax > force_threshold:
        worst = int(np.argmax(np.linalg.norm(f0, axis=1)))
        warnings.warn(
            f"the structure is not relaxed: the largest residual force is {fmax:.3g} eV/Å (atom {worst} of the "
            f"supercell), above the threshold {force_threshold:g} eV/Å; the phonons are not those of a minimum. "
            "Fix: relax positions and cell with this calculator first (e.g. ase.optimize.BFGS with a "
            "FrechetCellFilter).", UnrelaxedStructureWarning, stacklevel=2)
    phonon.generate_displacements(distance=displacement)
    forces = []
    for disp in phonon.supercells_with_displacements:
        f = _forces(calculator, args[0], args[1], disp.positions, args[2])
        forces.append(f - f0 if subtract_residual_forces else f)
    phonon.forces = np.asarray(forces)
    phonon.produce_force_constants()
    if born_charges is not None:
        set_born_charges(phonon, born_charges, epsilon_inf)
    phonon.residual_max_force = fmax
    return phonon


def set_born_charges(phonon, born_charges: np.ndarray, epsilon_inf: np.ndarray | float | None) -> None:
    """Enable the non-analytic term correction (Gonze-Lee) with Born charges and eps_inf."""
    n = len(phonon.primitive)
    z = np.asarray(born_charges, dtype=float)
    if z.shape != (n, 3, 3):
        raise InputError(f"born_charges have shape {z.shape}; expected ({n}, 3, 3) for the primitive cell's "
                         f"{n} atoms ({phonon.primitive.symbols}).")
    if epsilon_inf is None:
        raise InputError("the non-analytic correction needs epsilon_inf (3x3 or a number) with the Born charges.")
    eps = np.asarray(epsilon_inf, dtype=float)
    eps = eps * np.eye(3) if eps.ndim == 0 else eps
    # factor: e^2/(4 pi eps0) in eV Å, phonopy's NAC unit factor for eV/Å/amu force constants
    phonon.nac_params = {"born": z, "dielectric": eps, "factor": 1.0 / (4 * np.pi * U.EPSILON0)}


def frequencies_at(phonon, qpoints) -> np.ndarray:
    """Frequencies (n_q, n_bands) in THz at q-points in reduced coordinates of the primitive cell."""
    q = np.atleast_2d(np.asarray(qpoints, dtype=float))
    phonon.run_qpoints(q)
    return np.asarray(phonon.qpoints.frequencies)


def default_path(phonon, npoints: int = 101):
    """ASE's standard band path for the primitive cell (kpts in its reciprocal basis)."""
    from ase.cell import Cell

    return Cell(np.asarray(phonon.primitive.cell)).bandpath(npoints=npoints)


def band_structure(phonon, *, npoints: int = 101, path: str | None = None) -> xr.Dataset:
    """Phonon dispersion along ASE's standard path for the lattice (or ``path``, e.g. "GXWKGLUWLK").

    Returns
    -------
    xarray.Dataset
        ``frequency`` (q, band) in THz, coords ``distance`` (q, 1/Å, 2π included),
        ``qpoint`` (q, 3) reduced coordinates of the primitive reciprocal lattice;
        attrs ``labels`` and ``label_distances``.
    """
    from ase.cell import Cell

    cell = Cell(np.asarray(phonon.primitive.cell))
    bp = cell.bandpath(path, npoints=npoints) if path else cell.bandpath(npoints=npoints)
    q = np.asarray(bp.kpts)
    freqs = frequencies_at(phonon, q)
    x, xlab, labels = bp.get_linear_kpoint_axis()
    return xr.Dataset(
        {"frequency": (("q", "band"), freqs, {"units": "THz"})},
        coords={"distance": ("q", x, {"units": "1/Å"}), "qpoint": (("q", "reduced"), q)},
        attrs={"labels": [str(s) for s in labels], "label_distances": np.asarray(xlab).tolist(),
               "path": bp.path, "nac": phonon.nac_params is not None},
    )


def phonon_dos(phonon, *, mesh: Sequence[int] = (16, 16, 16), sigma: float | None = None,
               frequency_step: float = 0.05) -> xr.DataArray:
    """Total phonon DOS (states/THz per primitive cell; integral 3 n_atoms) on a Γ-centred mesh."""
    phonon.run_mesh(list(mesh), is_gamma_center=True)
    phonon.run_total_dos(sigma=sigma, freq_pitch=frequency_step)
    d = phonon.total_dos
    return xr.DataArray(np.asarray(d.dos), dims=("frequency",),
                        coords={"frequency": ("frequency", np.asarray(d.frequency_points), {"units": "THz"})},
                        name="dos", attrs={"units": "1/THz", "mesh": list(mesh)})


def thermal_properties(phonon, temperatures: Sequence[float] | np.ndarray | None = None,
                       *, mesh: Sequence[int] = (16, 16, 16)) -> xr.Dataset:
    """Harmonic free energy (eV), entropy and heat capacity (k_B) per primitive cell vs T (K).

    The three acoustic modes at Γ (zero frequency) are left out of the sums.

    ``temperatures`` default: 0 to 1000 K by 50 K.
    """
    t = np.arange(0, 1001, 50.0) if temperatures is None else np.asarray(temperatures, dtype=float)
    if t.ndim != 1 or t.size == 0 or np.any(t < 0):
        raise InputError("temperatures must be a non-empty 1-D array of non-negative K.")
    phonon.run_mesh(list(mesh), is_gamma_center=True)
    phonon.run_thermal_properties(temperatures=t, exclude_gamma_acoustic=True)
    d = phonon.thermal_properties
    r = U.KJ_MOL_TO_EV * 1e-3 / U.KB  # J/K/mol -> k_B per cell
    return xr.Dataset(
        {"free_energy": ("temperature", np.asarray(d.free_energy) * U.KJ_MOL_TO_EV, {"units": "eV"}),
         "entropy": ("temperature", np.asarray(d.entropy) * r, {"units": "k_B"}),
         "heat_capacity": ("temperature", np.asarray(d.heat_capacity) * r, {"units": "k_B"})},
        coords={"temperature": ("temperature", np.asarray(d.temperatures), {"units": "K"})},
        attrs={"per": "primitive cell", "n_atoms": len(phonon.primitive), "mesh": list(mesh)},
    )


def gamma_modes(phonon) -> xr.Dataset:
    """Normal modes of the whole supercell (its Γ point) from the supercell force constants.

    Returns
    -------
    xarray.Dataset
        ``frequency`` (mode) in THz (negative = imaginary), ``eigenvector`` (mode, atom, xyz):
        orthonormal mass-weighted eigenvectors of ``Phi_ab / sqrt(m_a m_b)``;
        ``reference_positions`` (atom, xyz) Å, ``cell`` (3, 3) Å, coords ``mass`` (amu) and
        ``species`` of the supercell atoms, in the supercell's atom order.
    """
    spc = phonon.supercell
    fc = np.asarray(phonon.force_constants)
    n = len(spc)
    if fc.shape[:2] != (n, n):
        raise InputError("gamma_modes needs full supercell force constants (not compact); "
                         "produce them with phonon.produce_force_constants().")
    m = np.asarray(spc.masses, dtype=float)
    return modes_from_force_constants(fc, m, spc.symbols, spc.positions, spc.cell)


def modes_from_force_constants(fc: np.ndarray, masses: np.ndarray, species, positions: np.ndarray,
                               cell: np.ndarray) -> xr.Dataset:
    """Normal modes from force constants ``fc`` (n, n, 3, 3) in eV/Å^2 (see :func:`gamma_modes`)."""
    n = len(masses)
    phi = np.asarray(fc, dtype=float).transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
    w = 1.0 / np.sqrt(np.repeat(masses, 3))
    dyn = 0.5 * (phi + phi.T) * w[:, None] * w[None, :]
    ev, vec = np.linalg.eigh(dyn)
    omega2 = ev * U.EV_A_AMU_TO_A_PS2  # (rad/ps)^2
    freq = np.sign(omega2) * np.sqrt(np.abs(omega2)) / (2 * np.pi)
    return xr.Dataset(
        {"frequency": ("mode", freq, {"units": "THz"}),
         "eigenvector": (("mode", "atom", "xyz"), vec.T.reshape(3 * n, n, 3), {"units": "1"}),
         "reference_positions": (("atom", "xyz"), np.asarray(positions, dtype=float), {"units": "Å"}),
         "cell": (("cell_vector", "xyz"), np.asarray(cell, dtype=float), {"units": "Å"})},
        coords={"mass": ("atom", np.asarray(masses, dtype=float), {"units": "amu"}),
                "species": ("atom", [str(s) for s in species]), "xyz": ["x", "y", "z"]},
    )


def compare_phonons(structure, calculator_a, calculator_b, *, labels: tuple[str, str] = ("a", "b"),
                    npoints: int = 101, mesh: Sequence[int] = (12, 12, 12), **kwargs) -> xr.Dataset:
    """Phonons of one structure with two calculators, side by side.

    ``kwargs`` go to :func:`compute_phonons`.  Returns the two band structures
    (``frequency`` with a ``calculator`` dimension), their difference, and attrs
    ``rms_difference_thz`` / ``max_abs_difference_thz`` over the path and the mesh.
    """
    ph = [compute_phonons(structure, c, **kwargs) for c in (calculator_a, calculator_b)]
    bands = [band_structure(p, npoints=npoints) for p in ph]
    freq = xr.concat([b["frequency"] for b in bands], dim="calculator").assign_coords(calculator=list(labels))
    diff = freq.sel(calculator=labels[1]) - freq.sel(calculator=labels[0])
    for p in ph:
        p.run_mesh(list(mesh), is_gamma_center=True)
    fm = [np.asarray(p.mesh.frequencies) for p in ph]
    dm = fm[1] - fm[0]
    out = xr.Dataset({"frequency": freq, "difference": diff.assign_attrs(units="THz")},
                     coords={"distance": bands[0]["distance"]}, attrs=dict(bands[0].attrs))
    out.attrs.update({"rms_difference_thz": float(np.sqrt(np.mean(diff.values**2))),
                      "max_abs_difference_thz": float(np.abs(diff.values).max()),
                      "mesh_rms_difference_thz": float(np.sqrt(np.mean(dm**2))), "mesh": list(mesh)})
    return out
