"""Phonons API: CLI, calculator factories, mode-projection input checks, figures."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from atomtwin.toolkit.phonons import compute_phonons, gamma_modes, project_modes
from atomtwin.toolkit.phonons.cli import make_calculator, register
from atomtwin.toolkit.schema import make_dataset


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="atomtwin")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)



@pytest.fixture(scope="module")
def cu():
    return compute_phonons(bulk("Cu", "fcc", a=3.5898), EMT(), supercell=(2, 2, 2))


def test_cli_phonons_json_matches_api(tmp_path, capsys, cu):
    from ase.io import write

    path = tmp_path / "POSCAR"
    write(path, bulk("Cu", "fcc", a=3.5898), format="vasp")
    assert run_cli(["phonons", str(path), "--calculator", "emt", "--compare", "emt", "--supercell", "2", "2", "2",
                    "--mesh", "4", "4", "4", "--band-points", "21", "--temperatures", "300",
                    "--json", "--plot", str(tmp_path / "bands.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    from atomtwin.toolkit.phonons import band_structure

    ref = band_structure(cu, npoints=21)
    # same structure, same calculator, same settings: identical numbers through the CLI
    assert out["max_frequency_THz"] == pytest.approx(float(ref["frequency"].max()), rel=1e-9)
    assert out["comparison"]["max_abs_difference_thz"] < 1e-9
    assert out["warnings"] == []
    assert (tmp_path / "bands.png").stat().st_size > 0


def test_calculator_factories():
    assert type(make_calculator("emt")).__name__ == "EMT"
    assert type(make_calculator("ase.calculators.emt:EMT")).__name__ == "EMT"
    with pytest.raises(ValueError, match="unknown calculator"):
        make_calculator("vasp-please")
    with pytest.raises(ValueError, match="cannot load calculator factory"):
        make_calculator("no.such.module:thing")


def test_projection_checks_atoms_and_reconstructs_displacements(cu):
    modes = gamma_modes(cu)
    r0 = modes["reference_positions"].values
    cell = modes["cell"].values
    # a displacement along one eigenvector projects onto that mode only, with Q = amplitude
    m = 5
    amp = 0.02  # Å amu^1/2
    e = modes["eigenvector"].values[m] / np.sqrt(modes["mass"].values)[:, None]
    pos = (r0 + amp * e)[None]
    ds = make_dataset(pos, modes["species"].values, cell=cell, time=np.array([0.0]))
    q = project_modes(ds, modes, reference=r0)["coordinate"].values[0]
    assert q[m] == pytest.approx(amp, rel=1e-10)
    assert np.abs(np.delete(q, m)).max() < 1e-10 * amp
    # wrapped positions (an atom across the boundary) give the same coordinates (minimum image)
    from atomtwin.toolkit.geometry import to_cartesian, to_fractional

    wrapped = to_cartesian(to_fractional(pos - 0.01, cell) % 1.0, cell) + 0.01
    ds_w = make_dataset(wrapped, modes["species"].values, cell=cell, time=np.array([0.0]))
    assert project_modes(ds_w, modes)["coordinate"].values[0] == pytest.approx(q, abs=1e-10)
    with pytest.raises(ValueError, match="atoms"):
        project_modes(ds.isel(atom=slice(0, 4)), modes)
