"""LAMMPS dumps read by atomtwin against MDAnalysis' DumpReader on files nobody here wrote
(MDAnalysisTests).  Tolerances: dumps store 6-7 significant digits and MDAnalysis keeps
float32 positions, so 1e-5 Å absolute (float32 eps x 40 Å box ~ 5e-6) is the agreement we
can demand; cells likewise."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from atomtwin.toolkit.io.lammps import DumpFormatError, LammpsDump

import atomtwin

mda = pytest.importorskip("MDAnalysis")
datafiles = pytest.importorskip("MDAnalysisTests.datafiles")
from MDAnalysis.lib.mdamath import triclinic_vectors  # noqa: E402

TOL = 1e-5


def _mda(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mda.Universe(path, format="LAMMPSDUMP", **kw)


def _box_lo(path, frame):
    """(xlo, ylo, zlo) of a frame, parsed independently of the reader under test."""
    dump = LammpsDump(path, species_map={i: "H" for i in range(1, 10)})
    head = dump._raw(frame).decode().splitlines()[5:8]
    b = np.array([[float(x) for x in line.split()] for line in head])
    if b.shape[1] == 3:  # triclinic: bounds of the bounding box
        xy, xz, yz = b[:, 2]
        return np.array([b[0, 0] - min(0, xy, xz, xy + xz), b[1, 0] - min(0, yz), b[2, 0]])
    return b[:, 0]


@pytest.mark.parametrize(
    "name,smap",
    [
        ("LAMMPSDUMP_image_vf", "1=O,2=H"),  # unscaled + image flags + v + f
        ("LAMMPSDUMP_allcoords", "1=O,2=H"),  # 4500 atoms, all four conventions, bz2
        ("LAMMPSDUMP_allinfo", None),  # element column, unsorted extra columns
        ("LAMMPSDUMP_additional_columns", ["H"] * 10),  # no type column: species given per atom
    ],
)
def test_unscaled_dumps_equal_mdanalysis(name, smap):
    path = getattr(datafiles, name)
    if isinstance(smap, list):
        ds = atomtwin.toolkit.read(path, "lammps-dump", species=smap)
    else:
        ds = atomtwin.toolkit.read(path, "lammps-dump", species_map=smap) if smap else atomtwin.toolkit.read(path, "lammps-dump")
    u = _mda(path)
    assert ds.sizes["frame"] == len(u.trajectory)
    assert ds.sizes["atom"] == u.atoms.n_atoms
    for i, ts in enumerate(u.trajectory):
        np.testing.assert_allclose(ds.positions.values[i], ts.positions, atol=TOL)
        np.testing.assert_allclose(ds.cell.values[i], triclinic_vectors(ts.dimensions), atol=TOL)
        if ts.has_velocities:  # metal units: Å/ps on both sides
            np.testing.assert_allclose(ds.velocities.values[i], ts.velocities, atol=TOL, rtol=1e-6)
        if ts.has_forces:  # MDAnalysis converts to kJ/mol/Å? no: LAMMPS reader keeps native units
            np.testing.assert_allclose(ds.forces.values[i], ts.forces, atol=TOL, rtol=1e-6)


@pytest.mark.parametrize("name,smap", [("LAMMPSDUMP", "1=O,2=H"), ("LAMMPSDUMP_triclinic", "1=Si,2=Al,3=Na,4=O,5=Ca")])
def test_scaled_dumps_equal_mdanalysis_up_to_its_origin_shift(name, smap):
    """MDAnalysis subtracts the box origin (xlo, ylo, zlo) *after* converting scaled
    coordinates (its LAMMPS.py, "Transform to origin after transformation of scaled
    variables"), so its scaled and unscaled readings of one frame differ by the origin.
    atomtwin gives positions relative to the box origin in every convention (checked in
    test_all_conventions_agree); here the two readers agree once MDAnalysis' shift is undone."""
    path = getattr(datafiles, name)
    ds = atomtwin.toolkit.read(path, "lammps-dump", species_map=smap)
    u = _mda(path)
    for i, ts in enumerate(u.trajectory):
        np.testing.assert_allclose(ds.positions.values[i], ts.positions + _box_lo(path, i), atol=TOL)
        np.testing.assert_allclose(ds.cell.values[i], triclinic_vectors(ts.dimensions), atol=TOL)


def test_all_conventions_agree(tmp_path):
    """The SPC/E file stores x, xs, xu and xsu: all must give the same unwrapped positions."""
    src = Path(datafiles.LAMMPSDUMP_allcoords)
    import bz2

    text = bz2.open(src, "rt").read()
    header = "ITEM: ATOMS id type x y z xs ys zs xu yu zu xsu ysu zsu"
    cols = header.split()[2:]
    out = {}
    for conv, keep in {"x": ["x", "y", "z", "xu", "yu", "zu"], "xs": ["xs", "ys", "zs", "xu", "yu", "zu"],
                       "xu": ["xu", "yu", "zu"], "xsu": ["xsu", "ysu", "zsu"]}.items():
        idx = [0, 1] + [cols.index(c) for c in keep if c in ("x", "y", "z", "xs", "ys", "zs", "xu", "yu", "zu", "xsu", "ysu", "zsu")][:3]
        lines = []
        for line in text.splitlines():
            if line.startswith("ITEM: ATOMS"):
                lines.append("ITEM: ATOMS " + " ".join(cols[j] for j in idx))
            elif line.count(" ") >= 13 and not line.startswith("ITEM"):
                parts = line.split()
                lines.append(" ".join(parts[j] for j in idx))
            else:
                lines.append(line)
        f = tmp_path / f"{conv}.lammpstrj"
        f.write_text("\n".join(lines) + "\n")
        ds = atomtwin.toolkit.read(f, species_map="1=O,2=H")
        out[conv] = atomtwin.toolkit.unwrap(ds, method="jump").positions.values if conv in ("x", "xs") else ds.positions.values
    # wrapped conventions unwrap by jumps from frame 0, so compare displacements from frame 0
    ref = out["xu"] - out["xu"][0]
    for conv in ("x", "xs", "xsu"):
        # the file prints 6 significant digits: xsu ~ 1.00859 carries 5e-6 x 35.5 Å = 1.8e-4 Å
        # of rounding, xu ~ 35.8378 carries 5e-5 Å; a displacement from frame 0 doubles it
        np.testing.assert_allclose(out[conv] - out[conv][0], ref, atol=5e-4, err_msg=conv)


def test_truncated_last_frame_warns_and_keeps_complete_frames(tmp_path):
    text = Path(datafiles.LAMMPSDUMP_image_vf).read_text().splitlines()
    cut = tmp_path / "cut.lammpstrj"
    cut.write_text("\n".join(text[:-3]) + "\n")  # last frame loses three atom lines
    with pytest.warns(UserWarning, match=r"last frame \(frame 2.*cut off.*reading the 2 complete frames"):
        ds = atomtwin.toolkit.read(cut, species_map="1=O,2=H")
    full = atomtwin.toolkit.read(datafiles.LAMMPSDUMP_image_vf, species_map="1=O,2=H")
    assert ds.sizes["frame"] == 2
    np.testing.assert_array_equal(ds.positions.values, full.positions.values[:2])


def test_missing_type_names_the_type_and_fix():
    with pytest.raises(DumpFormatError, match=r"atom type\(s\) \[2\] have no species.*--species-map 2=X"):
        atomtwin.toolkit.read(datafiles.LAMMPSDUMP_image_vf, species_map="1=O")
    with pytest.raises(DumpFormatError, match="species are unknown.*species_map"):
        atomtwin.toolkit.read(datafiles.LAMMPSDUMP_image_vf)


def test_inconsistent_atom_count_names_frame(tmp_path):
    lines = Path(datafiles.LAMMPSDUMP_image_vf).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line == "ITEM: TIMESTEP"]
    lines[starts[1] + 3] = "6"  # frame 1 claims 6 atoms
    del lines[starts[1] + 9]
    bad = tmp_path / "bad.lammpstrj"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DumpFormatError, match=r"bad.lammpstrj: frame 1 \(step \d+\), line 20: the frame has 6 atoms but frame 0 has 7"):
        atomtwin.toolkit.read(bad, species_map="1=O,2=H")


def test_data_file_gives_species():
    ds = atomtwin.toolkit.read(datafiles.LAMMPSDUMP_image_vf, data_file=datafiles.LAMMPS_image_vf)
    assert set(ds.species.values) <= {"H", "O", "C", "N"}
    assert ds.sizes["atom"] == 7


def test_image_flags_unwrap_equals_image_arithmetic():
    ds = atomtwin.toolkit.read(datafiles.LAMMPSDUMP_image_vf, species_map="1=O,2=H")
    un = atomtwin.toolkit.unwrap(ds)
    expect = ds.positions.values + np.einsum("fai,fij->faj", ds.image.values, ds.cell.values)
    np.testing.assert_allclose(un.positions.values, expect, atol=1e-12)
    assert un.attrs["unwrapped"] == "image"


def test_lazy_read_equals_eager_and_random_access():
    path = datafiles.LAMMPSDUMP_allcoords
    eager = atomtwin.toolkit.read(path, species_map="1=O,2=H")
    lazy = atomtwin.toolkit.open(path, species_map="1=O,2=H")
    assert lazy.positions.chunks is not None
    np.testing.assert_array_equal(lazy.positions[7].values, eager.positions.values[7])
    np.testing.assert_array_equal(lazy.positions.values, eager.positions.values)


def test_timestep_gives_time():
    ds = atomtwin.toolkit.read(datafiles.LAMMPSDUMP, species_map="1=O,2=H", timestep_ps=0.002)
    np.testing.assert_allclose(ds.time.values, ds.step.values * 0.002)
    assert ds.attrs["timestep_ps"] == pytest.approx(1.0)
