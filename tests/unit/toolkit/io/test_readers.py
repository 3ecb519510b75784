"""MDAnalysis- and ASE-backed readers against the peers' own reading of the same files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from atomtwin.toolkit import units as U

import atomtwin

mda = pytest.importorskip("MDAnalysis")
datafiles = pytest.importorskip("MDAnalysisTests.datafiles")
from MDAnalysis.lib.mdamath import triclinic_vectors  # noqa: E402


def _universe(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mda.Universe(*args, **kw)


@pytest.mark.parametrize(
    "top,traj,species",
    [
        ("PSF_TRICLINIC", "DCD_TRICLINIC", None),  # CHARMM TIP3P water, triclinic box
        ("GRO", "XTC", None),  # adenylate kinase, GROMACS XTC
        ("GRO", "TRR", None),  # same system, TRR with velocities/forces
        ("PRMncdf", "NCDF", None),  # AMBER NetCDF
    ],
)
def test_mdanalysis_formats_frame_by_frame(top, traj, species):
    top_f, traj_f = getattr(datafiles, top), getattr(datafiles, traj)
    ds = atomtwin.toolkit.read(traj_f, topology=top_f)
    u = _universe(top_f, traj_f)
    assert ds.sizes["frame"] == len(u.trajectory) and ds.sizes["atom"] == u.atoms.n_atoms
    for i, ts in enumerate(u.trajectory):
        # same float32 numbers on both sides: exact
        np.testing.assert_array_equal(ds.positions.values[i], ts.positions.astype(float))
        if ts.dimensions is not None:
            np.testing.assert_allclose(ds.cell.values[i], triclinic_vectors(ts.dimensions), atol=1e-5)
        if ts.has_velocities:
            np.testing.assert_array_equal(ds.velocities.values[i], ts.velocities.astype(float))
        if ts.has_forces:  # kJ/(mol Å) -> eV/Å
            np.testing.assert_allclose(ds.forces.values[i], ts.forces * 0.010364269656262174, rtol=1e-6)
        assert ds.time.values[i] == pytest.approx(ts.time) if "time" in ds.coords else True


def test_trajectory_without_topology_says_what_to_do():
    with pytest.raises(ValueError, match="give topology="):
        atomtwin.toolkit.read(datafiles.DCD_TRICLINIC)


def test_extxyz_round_trip_carries_labels(tmp_path, rng):
    from ase import Atoms
    from ase.calculators.emt import EMT
    from ase.io import write

    frames = []
    for _k in range(3):
        a = Atoms("Cu4", positions=rng.random((4, 3)) * 3.6, cell=np.eye(3) * 3.6, pbc=True)
        a.calc = EMT()
        a.get_potential_energy()
        a.set_velocities(rng.normal(size=(4, 3)) * 0.01)
        frames.append(a)
    energies = [a.get_potential_energy() for a in frames]
    forces = [a.get_forces() for a in frames]
    stress = [a.get_stress(voigt=False) for a in frames]
    vel = [a.get_velocities() for a in frames]
    f = tmp_path / "cu.extxyz"
    write(f, frames)
    ds = atomtwin.toolkit.read(f)
    np.testing.assert_allclose(ds.energy.values, energies, rtol=1e-10)
    np.testing.assert_allclose(ds.forces.values, forces, atol=1e-8)
    np.testing.assert_allclose(ds.stress.values, stress, atol=1e-8)
    # ASE velocity unit is Å / (Å sqrt(amu/eV)); schema is Å/ps
    np.testing.assert_allclose(ds.velocities.values, np.array(vel) / U.ASE_TIME_TO_PS, rtol=1e-6)


def test_vasp_xdatcar(tmp_path, rng):
    from ase import Atoms
    from ase.io import write

    frames = [Atoms("Li2S", positions=rng.random((3, 3)) * 4, cell=np.diag([4.0, 4.5, 5.0]), pbc=True)
              for _ in range(4)]
    f = tmp_path / "XDATCAR"
    write(f, frames, format="vasp-xdatcar")
    ds = atomtwin.toolkit.read(f)
    assert list(ds.species.values) == ["Li", "Li", "S"]
    np.testing.assert_allclose(ds.positions.values, [a.positions for a in frames], atol=1e-6)


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "x.qqq").write_text("1")
    with pytest.raises(ValueError, match="cannot tell the format.*pass format="):
        atomtwin.toolkit.read(tmp_path / "x.qqq")
    with pytest.raises(FileNotFoundError, match="no such file"):
        atomtwin.toolkit.read(tmp_path / "missing.xyz")


def test_inconsistent_atom_counts_in_xyz(tmp_path):
    f = tmp_path / "bad.xyz"
    f.write_text("2\n\nH 0 0 0\nH 0 0 1\n3\n\nH 0 0 0\nH 0 0 1\nH 1 0 0\n")
    with pytest.raises(ValueError, match="frame 1 has 3 atoms but frame 0 has 2"):
        atomtwin.toolkit.read(f)


def test_nan_coordinates_named(tmp_path):
    f = tmp_path / "nan.xyz"
    f.write_text("2\n\nH 0 0 0\nH 0 0 1\n2\n\nH 0 nan 0\nH 0 0 1\n")
    with pytest.raises(ValueError, match=r"nan.xyz: frame 1, atom 0: non-finite positions"):
        atomtwin.toolkit.read(f)
