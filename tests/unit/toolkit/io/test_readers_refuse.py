"""Readers refuse wrong data with a message naming the file and the place (frame, line);
LAMMPS unit styles convert to Å, ps, eV."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from atomtwin.toolkit.errors import FileFormatError, InputError
from atomtwin.toolkit.io import LAMMPS_UNIT_STYLES
from atomtwin.toolkit.io.lammps import DumpFormatError
from atomtwin.toolkit.io.lammps_units import lammps_units

import atomtwin


def _dump(rows_per_frame, columns="id type x y z vx vy vz fx fy fz"):
    out = []
    for f, rows in enumerate(rows_per_frame):
        out += ["ITEM: TIMESTEP", str(10 * f), "ITEM: NUMBER OF ATOMS", str(len(rows)),
                "ITEM: BOX BOUNDS pp pp pp", "0 10", "0 10", "0 10", f"ITEM: ATOMS {columns}", *rows]
    return "\n".join(out) + "\n"


ROWS = ["2 2 1.0 2.0 3.0 0.1 0.2 0.3 1 2 3", "1 1 4.0 5.0 6.0 0.4 0.5 0.6 4 5 6", "3 1 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9"]


def _write(tmp_path, name, frames):
    p = tmp_path / name
    p.write_text(_dump(frames))
    return p


def _frames_with(row_index, frame, new_row):
    frames = [list(ROWS), list(ROWS), list(ROWS)]
    frames[frame][row_index] = new_row
    return frames


@pytest.mark.parametrize(
    "row,message",
    [
        ("1 1 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9", r"line 23: atom id 1 appears twice \(again at line 24\)"),
        ("4 1 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9", r"line 24: atom id 4 is not in frame 0"),
        ("x 1 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9", r"line 24: id = 'x' is not a number"),
        ("3 3 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9", r"line 24: atom id 3 has type 3, which has no species in the map"),
        ("3 2 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9", r"line 24: atom id 3 has type 2 but 1 in frame 0"),
        ("3 1 7.0 8.0 9.0 0.7 0.8 0.9 7 8", r"line 24: 10 fields, expected 11"),
        ("3 1 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9 9", r"line 24: 12 fields, expected 11"),
        ("3 1 7.0 8.0 9.0 0.7 0.8 0.9 7 8 nan", r"line 24: fz = 'nan' is not finite"),
        ("3 1.5 7.0 8.0 9.0 0.7 0.8 0.9 7 8 9", r"line 24: type = '1.5' is not an integer"),
    ],
    ids=["duplicate-id", "new-id", "non-numeric-id", "type-outside-map", "type-changed", "missing-field",
         "extra-field", "non-finite", "non-integer-type"],
)
@pytest.mark.parametrize("lazy", [False, True], ids=["read", "open"])
def test_lammps_row_errors_name_file_frame_and_line(tmp_path, row, message, lazy):
    """Frame 1 (step 10) starts at line 13; its rows are lines 22-24 of the file."""
    p = _write(tmp_path, "d.lammpstrj", _frames_with(2, 1, row))
    with pytest.raises(DumpFormatError, match=r"d\.lammpstrj: frame 1 \(step 10\), " + message):
        if lazy:  # rows are checked when their chunk is computed
            atomtwin.toolkit.open(p, species_map="1=Li,2=S").load()
        else:
            atomtwin.toolkit.read(p, species_map="1=Li,2=S")


def test_lammps_non_numeric_id_is_not_sorted_alphabetically(tmp_path):
    frames = [[r.replace("2 2 1.0", "b 2 1.0") for r in ROWS]] * 2
    p = _write(tmp_path, "ids.lammpstrj", frames)
    with pytest.raises(DumpFormatError, match="frame 0 .*line 10: id = 'b' is not a number"):
        atomtwin.toolkit.read(p, species_map="1=Li,2=S")


def test_lammps_non_utf8_named_with_line(tmp_path):
    p = tmp_path / "bin.lammpstrj"
    p.write_bytes(_dump([ROWS, ROWS]).encode().replace(b"0.5 0.6", b"0.5 \xff0.6", 1))
    with pytest.raises(DumpFormatError, match=r"bin\.lammpstrj: frame 0 \(step 0\), line 11: byte 24 of the line is not text"):
        atomtwin.toolkit.read(p, species_map="1=Li,2=S")


def test_lammps_rows_sorted_by_id_and_values_exact(tmp_path):
    p = _write(tmp_path, "ok.lammpstrj", [ROWS, ROWS[::-1]])
    ds = atomtwin.toolkit.read(p, species_map="1=Li,2=S")
    expect = np.array([[4.0, 5.0, 6.0], [1.0, 2.0, 3.0], [7.0, 8.0, 9.0]])
    np.testing.assert_array_equal(ds.positions.values, [expect, expect])
    assert list(ds.species.values) == ["Li", "S", "Li"]


def test_lammps_cut_mid_line_warns_and_keeps_complete_frames(tmp_path):
    p = tmp_path / "cut.lammpstrj"
    text = _dump([ROWS, ROWS, ROWS])
    p.write_text(text[:-4])  # the last row loses its last value and newline
    with pytest.warns(UserWarning, match=r"last frame \(frame 2.*reading the 2 complete frames"):
        ds = atomtwin.toolkit.read(p, species_map="1=Li,2=S")
    assert ds.sizes["frame"] == 2


def test_real_units_convert_with_the_manual_factors(tmp_path):
    """LAMMPS `units real`: energy kcal/mol (1 kcal/mol = 0.0433641 eV), velocity Å/fs
    (= 1000 Å/ps), force kcal/(mol Å), distance Å."""
    p = _write(tmp_path, "real.lammpstrj", [ROWS])
    metal = atomtwin.toolkit.read(p, species_map="1=Li,2=S")
    real = atomtwin.toolkit.read(p, species_map="1=Li,2=S", units="real")
    np.testing.assert_array_equal(real.positions.values, metal.positions.values)
    np.testing.assert_allclose(real.velocities.values, metal.velocities.values * 1000.0, rtol=1e-15)
    np.testing.assert_allclose(real.forces.values, metal.forces.values * 0.0433641, rtol=1e-6)
    assert real.attrs["lammps_units"] == "real"
    assert lammps_units("real").energy == pytest.approx(0.0433641, rel=1e-6)
    assert lammps_units("real").time == 1e-3


def test_every_unit_style_against_known_values():
    """Each style's factors against conversions written out by hand (LAMMPS manual, units)."""
    assert LAMMPS_UNIT_STYLES == ("metal", "real", "si", "cgs", "electron", "micro", "nano")
    si, cgs, el, mi, na = (lammps_units(s) for s in ("si", "cgs", "electron", "micro", "nano"))
    assert (si.distance, si.velocity, si.time) == (1e10, 0.01, 1e12)
    assert si.force == pytest.approx(6.241509074e8, rel=1e-9)  # 1 N = 6.2415e18 eV / 1e10 Å
    assert (cgs.distance, cgs.velocity) == (1e8, 1e-4)
    assert cgs.force == pytest.approx(6.241509074e3, rel=1e-9)  # 1 dyne = 1e-5 N
    assert el.distance == pytest.approx(0.529177210903) and el.energy == pytest.approx(27.211386245988)
    assert el.velocity == pytest.approx(0.529177210903 / 1.03275e-3)  # Bohr per 1.03275e-15 s
    assert (mi.distance, mi.time, mi.velocity) == (1e4, 1e6, 0.01)  # µm, µs; µm/µs = 1 m/s
    assert (na.distance, na.time) == (10.0, 1e3) and na.velocity == pytest.approx(0.01)
    assert na.energy == pytest.approx(1e-21 / 1.602176634e-19)  # ag nm²/ns² = 1e-21 J


def test_si_units_scale_positions_and_box(tmp_path):
    p = _write(tmp_path, "si.lammpstrj", [ROWS])
    ds = atomtwin.toolkit.read(p, species_map="1=Li,2=S", units="si")
    np.testing.assert_allclose(ds.cell.values[0], np.eye(3) * 10 * 1e10)
    np.testing.assert_allclose(ds.positions.values[0, 1], [1e10, 2e10, 3e10])


def test_lj_units_refused_with_the_reason():
    with pytest.raises(InputError, match="reduced units.*sigma, epsilon.*Fix: read with units='metal'"):
        lammps_units("lj")
    with pytest.raises(InputError, match="unknown LAMMPS unit style 'kcal'.*metal, real, si"):
        lammps_units("kcal")


# -- extxyz -------------------------------------------------------------------------------
def _xyz(frames):
    out = []
    for k, (energy, forces) in enumerate(frames):
        props = "species:S:1:pos:R:3" + (":forces:R:3" if forces else "")
        e = f" energy={energy}" if energy is not None else ""
        out += ["2", f'Lattice="5 0 0 0 5 0 0 0 5" Properties={props}{e} pbc="T T T"']
        for a in range(2):
            out.append(f"H {a} {k} 0.5" + (" 0.1 0.2 0.3" if forces else ""))
    return "\n".join(out) + "\n"


def test_extxyz_blank_line_between_frames_is_named(tmp_path):
    p = tmp_path / "b.extxyz"
    lines = _xyz([(1.0, True)] * 3).split("\n")
    p.write_text("\n".join([*lines[:4], "", *lines[4:]]))
    with pytest.raises(FileFormatError, match=r"b\.extxyz: line 5: a blank line where frame 1 should start"):
        atomtwin.toolkit.read(p)


def test_extxyz_short_frame_is_named(tmp_path):
    p = tmp_path / "s.extxyz"
    lines = _xyz([(1.0, True)] * 3).split("\n")
    del lines[3]  # frame 0 keeps one of its two rows
    p.write_text("\n".join(lines))
    with pytest.raises(FileFormatError, match=r"s\.extxyz: frame 0, line 4: 1 field\(s\) where atom row 1 of 2"):
        atomtwin.toolkit.read(p)


def test_extxyz_property_missing_in_one_frame_is_an_error_or_dropped_on_request(tmp_path):
    p = tmp_path / "m.extxyz"
    p.write_text(_xyz([(1.0, True), (2.0, False), (3.0, True)]))
    with pytest.raises(FileFormatError, match=r"'forces' is in frames 0, 2 but missing in frames 1 of 3"):
        atomtwin.toolkit.read(p)
    with pytest.warns(UserWarning, match="'forces'.*Dropped from every frame"):
        ds = atomtwin.toolkit.read(p, missing="drop")
    assert "forces" not in ds and ds.energy.values.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("bad", ["inf", "nan", "-inf"])
def test_extxyz_non_finite_values_refused(tmp_path, bad):
    p = tmp_path / "nf.extxyz"
    p.write_text(_xyz([(1.0, True), (bad, True)]))
    with pytest.raises(FileFormatError, match=r"nf\.extxyz: frame 1: non-finite energy"):
        atomtwin.toolkit.read(p)
    p.write_text(_xyz([(1.0, True), (1.0, True)]).replace("H 1 1 0.5 0.1", f"H 1 1 0.5 {bad}"))
    with pytest.raises(FileFormatError, match=r"nf\.extxyz: frame 1, atom 1: non-finite forces"):
        atomtwin.toolkit.read(p)


def test_extxyz_ase_exception_becomes_named_error(tmp_path):
    p = tmp_path / "a.extxyz"
    p.write_text(_xyz([(1.0, True)] * 2).replace("H 1 1 0.5 0.1", "H 1 1 abc 0.1"))
    with pytest.raises(FileFormatError, match=r"a\.extxyz: frame 1: ASE cannot read it"):
        atomtwin.toolkit.read(p)


def test_species_map_for_extxyz_is_refused(tmp_path):
    p = tmp_path / "x.extxyz"
    p.write_text(_xyz([(1.0, True)]))
    with pytest.raises(InputError, match=r"option species_map= \(--species-map\) does not apply to '.*x\.extxyz'"):
        atomtwin.toolkit.read(p, species_map="1=H")


def test_extxyz_cut_last_frame_warns_and_keeps_complete_frames(tmp_path):
    p = tmp_path / "c.extxyz"
    p.write_text(_xyz([(1.0, True)] * 3)[:-30])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = atomtwin.toolkit.read(p)
    assert ds.sizes["frame"] == 2
    assert any("last frame (frame 2) is cut off" in str(x.message) for x in w)


def _with_items(text: str, units: str | None, dt_fs: float) -> str:
    """Add dump_modify's `units yes` (first frame) and `time yes` (every frame) items."""
    frames = text.split("ITEM: TIMESTEP\n")[1:]
    out = [f"ITEM: UNITS\n{units}\n"] if units else []
    for k, f in enumerate(frames):
        out.append(f"ITEM: TIME\n{k * 10 * dt_fs}\nITEM: TIMESTEP\n{f}")
    return "".join(out)


def test_declared_units_and_time_are_used(tmp_path):
    """`dump_modify units yes time yes`: ITEM: UNITS real -> Å/fs velocities x 1000, and
    ITEM: TIME (fs in real units) gives the time coordinate in ps."""
    p = tmp_path / "items.lammpstrj"
    p.write_text(_with_items(_dump([ROWS, ROWS[::-1], ROWS]), "real", 2.0))
    plain = tmp_path / "plain.lammpstrj"
    plain.write_text(_dump([ROWS, ROWS[::-1], ROWS]))
    ds = atomtwin.toolkit.read(p, species_map="1=Li,2=S")
    metal = atomtwin.toolkit.read(plain, species_map="1=Li,2=S")
    assert ds.attrs["lammps_units"] == "real"
    np.testing.assert_allclose(ds.velocities.values, metal.velocities.values * 1000.0, rtol=1e-15)
    np.testing.assert_allclose(ds.time.values, [0.0, 0.02, 0.04], rtol=1e-12)  # 0, 20, 40 fs
    lazy = atomtwin.toolkit.open(p, species_map="1=Li,2=S")
    np.testing.assert_array_equal(lazy.positions.values, ds.positions.values)
    with pytest.raises(InputError, match=r"declares LAMMPS units 'real' \(ITEM: UNITS\) but units='metal'"):
        atomtwin.toolkit.read(p, species_map="1=Li,2=S", units="metal")
    bad = tmp_path / "bad.lammpstrj"
    bad.write_text(_with_items(_dump([ROWS, ROWS]), None, 1.0).replace("x y z vx", "x y z vx vx", 1))
    with pytest.raises(DumpFormatError, match=r"frame 0, line 11: a column name repeats"):
        atomtwin.toolkit.read(bad, species_map="1=Li,2=S")


def test_declared_items_damage(tmp_path):
    text = _with_items(_dump([ROWS, ROWS, ROWS]), "real", 2.0)
    p = tmp_path / "d.lammpstrj"
    p.write_text(text[: text.index("ITEM: TIME\n40") + 16])  # killed after the last frame's time
    with pytest.warns(UserWarning, match="cut off before its ITEM: TIMESTEP"):
        assert atomtwin.toolkit.read(p, species_map="1=Li,2=S").sizes["frame"] == 2
    p.write_text(text.replace("ITEM: TIME\n20.0\n", ""))
    with pytest.raises(DumpFormatError, match=r"d\.lammpstrj: frame 1 has no ITEM: TIME but other frames"):
        atomtwin.toolkit.read(p, species_map="1=Li,2=S")
    p.write_text(text.replace("ITEM: UNITS\nreal", "ITEM: UNITS\nlj"))
    with pytest.raises(DumpFormatError, match=r"d\.lammpstrj: line 2 declares ITEM: UNITS 'lj'.*reduced units"):
        atomtwin.toolkit.read(p, species_map="1=Li,2=S")
