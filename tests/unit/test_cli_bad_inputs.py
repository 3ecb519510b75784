"""Every bad input of issue 14, through the ``atomtwin`` command line.

Each row builds its input in a fresh folder, runs the command (in-process ``main([...])``,
a few rows as real subprocesses of the console script) and asserts

* the exit status: 2 for a user mistake, 0 where the input is valid (``lr: 1e-3`` is a
  number, a ``*.partial`` store is readable, a stale temporary is cleaned);
* stderr: exactly one line ``atomtwin <command>: error: ...`` naming the problem (and the
  fix where there is one); a valid input prints at most one-line warnings, no traceback;
* nothing half-written and nothing deleted: the SHA-256 of every file in the folder is the
  same after a refused command (no new file either, hidden temporaries included); after a
  valid one every earlier file is still there, unchanged (but for the files the row says
  the command replaces or cleans).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from atomtwin.toolkit.cli import main

import atomtwin

KCAL_MOL_EV = 0.0433641043  # eV per kcal/mol (CODATA; ase.units.kcal / ase.units.mol)

TINY_MODEL = ("model: {architecture: nequip, r_max: 3.0, num_layers: 1, lmax: 1, mul: 4, "
              "radial_hidden: 8, dtype: float64}\n")


@dataclass
class Case:
    """One row: ``setup(folder)`` builds the input and returns the argv."""

    setup: Callable[[Path], list[str]]
    status: int
    #: regular expressions the one error line must match (rows with status 2)
    says: tuple[str, ...] = ()
    #: files (relative) the command may remove or replace (rows with status 0)
    may_change: tuple[str, ...] = ()
    #: more checks on the folder and stdout after the command
    then: Callable[[Path, str], None] | None = None
    subprocess: bool = False
    owner: str = field(default="B2")


# -- inputs ------------------------------------------------------------------------------
def _labelled_cu(folder: Path, n: int = 6) -> Path:
    import ase.io
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.61).repeat((2, 1, 1))
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        a.calc = EMT()
        a.get_potential_energy()
        frames.append(a)
    path = folder / "cu.extxyz"
    ase.io.write(path, frames)
    return path


def _argon_xyz(folder: Path, name: str = "ar.extxyz", frames: int = 3) -> Path:
    import ase.io
    from ase.build import bulk

    rng = np.random.default_rng(1)
    out = []
    for _ in range(frames):
        a = bulk("Ar", "fcc", a=5.26, cubic=True)
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        out.append(a)
    path = folder / name
    ase.io.write(path, out, format="extxyz")
    return path


def _store(folder: Path, name: str, chunk: int = 2, frames: int = 6) -> Path:
    ds = atomtwin.read(_argon_xyz(folder, "src.extxyz", frames=frames), timestep_ps=0.01)
    path = folder / name
    atomtwin.write(ds, path, chunk_frames=chunk)
    (folder / "src.extxyz").unlink()
    return path


def _dump(folder: Path, name: str, rows_per_frame: list[np.ndarray], columns: str) -> Path:
    path = folder / name
    with open(path, "w") as fh:
        for step, rows in enumerate(rows_per_frame):
            fh.write(f"ITEM: TIMESTEP\n{step * 10}\nITEM: NUMBER OF ATOMS\n{len(rows)}\n")
            fh.write("ITEM: BOX BOUNDS pp pp pp\n0 10\n0 10\n0 10\n")
            fh.write(f"ITEM: ATOMS {columns}\n")
            for r in rows:
                fh.write(" ".join(f"{int(v)}" if k < 2 else f"{v:.6f}" for k, v in enumerate(r)) + "\n")
    return path


REAL_ROWS = [np.array([[1, 1, 1.0, 2.0, 3.0, 0.001, -0.002, 0.003, 1.5, -2.5, 0.5],
                       [2, 1, 4.0, 5.0, 6.0, -0.004, 0.005, 0.0, -3.0, 0.25, 2.0]]),
             np.array([[1, 1, 1.1, 2.1, 3.1, 0.002, -0.001, 0.004, 1.0, -2.0, 0.0],
                       [2, 1, 4.1, 5.1, 6.1, -0.003, 0.006, 0.001, -2.0, 0.5, 1.0]])]


def _train_yaml(folder: Path, data: str, extra: str = "") -> Path:
    path = folder / "train.yaml"
    path.write_text(f"train_files: [{data}]\noutput_dir: run\nmax_epochs: 1\nbatch_size: 2\n"
                    f"val_fraction: 0.2\nprogress: false\n{TINY_MODEL}{extra}")
    return path


def _md_yaml(folder: Path, extra: str) -> Path:
    import ase.io
    from ase.build import bulk

    ase.io.write(folder / "ar.xyz", bulk("Ar", "fcc", a=5.9, cubic=True).repeat((2, 2, 2)))
    path = folder / "md.yaml"
    path.write_text("structure: ar.xyz\npotential: {kind: lj, params: {Ar: [0.0104, 3.405]}, "
                    "r_cut: 5.5, skin: 0.5}\nensemble: nve\noutput: t.nc\nstride: 5\n"
                    f"progress: false\n{extra}")
    return path


# -- setups ------------------------------------------------------------------------------
def lr_as_1e_3(d):
    _labelled_cu(d)
    return ["train", str(_train_yaml(d, "cu.extxyz", "lr: 1e-3\n")), "--json"]


def timestep_as_2e_3(d):
    return ["md", str(_md_yaml(d, "timestep: 2e-3\nsteps: 10\n")), "--json"]


def unknown_format(d):
    return ["info", str(_argon_xyz(d)), "--format", "xyzz"]


def half_written_nc(d):
    path = _store(d, "half.nc", frames=8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return ["info", str(path)]


def empty_nc(d):
    (d / "empty.nc").write_bytes(b"")
    return ["info", str(d / "empty.nc")]


def species_map_on_extxyz(d):
    return ["convert", str(_argon_xyz(d)), str(d / "out.nc"), "--species-map", "1=Ar"]


def md_negative_steps(d):
    return ["md", str(_md_yaml(d, "timestep: 0.002\nsteps: 10\n")), "--steps", "-5"]


def md_fractional_steps(d):
    return ["md", str(_md_yaml(d, "timestep: 0.002\nsteps: 20.7\n"))]


def train_cif_without_labels(d):
    import ase.io
    from ase.build import bulk

    ase.io.write(d / "cu.cif", bulk("Cu", "fcc", a=3.61, cubic=True))
    return ["train", str(_train_yaml(d, "cu.cif"))]


def train_rerun_without_resume(d):
    _labelled_cu(d)
    argv = ["train", str(_train_yaml(d, "cu.extxyz"))]
    assert main([*argv, "--json"]) == 0  # the previous run
    return argv


def convert_onto_directory(d):
    (d / "out.nc").mkdir()
    (d / "out.nc" / "notes.txt").write_text("my notes")
    return ["convert", str(_argon_xyz(d)), str(d / "out.nc")]


def convert_force_onto_foreign_directory(d):
    (d / "out.zarr").mkdir()
    (d / "out.zarr" / "notes.txt").write_text("my notes")
    return ["convert", str(_argon_xyz(d)), str(d / "out.zarr"), "--force"]


def stale_tmp_of_killed_convert(d):
    (d / ".out.nc.0badc0de.tmp").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 4096)
    return ["convert", str(_argon_xyz(d)), str(d / "out.nc"), "--json"]


def _no_stale_tmp(d, out):
    assert not list(d.glob(".out.nc.*.tmp")), sorted(p.name for p in d.iterdir())
    assert atomtwin.open(d / "out.nc").sizes["frame"] == 3


def info_partial(d):
    from atomtwin.toolkit.io import TrajectoryWriter

    w = TrajectoryWriter(d / "run.nc", ["Ar", "Ar"], flush_every=2)
    for k in range(4):
        w.append(np.full((2, 3), float(k)), cell=np.eye(3) * 10, time=0.01 * k)
    return ["info", str(d / "run.nc.partial"), "--json"]


def _partial_has_frames(d, out):
    assert json.loads(out)["frames"] == 4


def units_real_dump(d):
    _dump(d, "real.lammpstrj", REAL_ROWS, "id type x y z vx vy vz fx fy fz")
    return ["convert", str(d / "real.lammpstrj"), str(d / "real.nc"), "--units", "real",
            "--species-map", "1=Ar", "--json"]


def _real_units_converted(d, out):
    ds = atomtwin.read(d / "real.nc")
    rows = np.stack(REAL_ROWS)
    np.testing.assert_allclose(ds.positions.values, rows[..., 2:5], rtol=1e-12)
    # Å/fs -> Å/ps: x 1000; kcal/mol/Å -> eV/Å: x 0.0433641 (six digits printed in the dump)
    np.testing.assert_allclose(ds.velocities.values, rows[..., 5:8] * 1e3, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ds.forces.values, rows[..., 8:11] * KCAL_MOL_EV, rtol=1e-6)


def duplicate_id_dump(d):
    rows = [r.copy() for r in REAL_ROWS]
    rows[1][1, 0] = 1  # frame 1: atom id 1 twice
    _dump(d, "dup.lammpstrj", rows, "id type x y z vx vy vz fx fy fz")
    return ["convert", str(d / "dup.lammpstrj"), str(d / "dup.nc"), "--species-map", "1=Ar"]


def extxyz_blank_line(d):
    path = _argon_xyz(d, frames=3)
    lines = path.read_text().splitlines(keepends=True)
    n = int(lines[0]) + 2
    path.write_text("".join(lines[:n]) + "\n" + "".join(lines[n:]))
    return ["info", str(path)]


def zarr_deleted_chunk(d):
    path = _store(d, "s.zarr", chunk=2, frames=6)
    chunk = path / "positions" / "1.0.0"
    assert chunk.exists(), sorted(p.name for p in (path / "positions").iterdir())
    chunk.unlink()
    return ["convert", str(path), str(d / "s.nc")]


def zarr_positions_deleted(d):
    path = _store(d, "s.zarr", chunk=2, frames=6)
    shutil.rmtree(path / "positions")
    return ["info", str(path)]


CASES = {
    "lr: 1e-3 in the train YAML is a number": Case(lr_as_1e_3, 0, owner="B1"),
    "timestep: 2e-3 in the md YAML is a number": Case(timestep_as_2e_3, 0, owner="B1"),
    "unknown --format": Case(unknown_format, 2, (r"unknown --format 'xyzz'", r"extxyz", r"lammps-dump"),
                             subprocess=True),
    "half-written .nc": Case(half_written_nc, 2, (r"half\.nc",), subprocess=True, owner="A"),
    "empty .nc": Case(empty_nc, 2, (r"empty\.nc",), owner="A"),
    "--species-map on extxyz": Case(species_map_on_extxyz, 2, (r"--species-map", r"ar\.extxyz", r"Fix:"),
                                    subprocess=True),
    "md --steps -5": Case(md_negative_steps, 2, (r"--steps", r"-5"), owner="B1"),
    "steps: 20.7 in the md YAML": Case(md_fractional_steps, 2, (r"steps", r"20\.7"), owner="B1"),
    "train on a CIF without labels": Case(train_cif_without_labels, 2,
                                          (r"cu\.cif", r"no labels", r"energy", r"forces")),
    "train rerun without --resume": Case(train_rerun_without_resume, 2,
                                         (r"previous training run", r"--resume", r"--force")),
    "convert onto an existing directory": Case(convert_onto_directory, 2, (r"out\.nc", r"already exists")),
    "convert --force onto a foreign directory": Case(convert_force_onto_foreign_directory, 2,
                                                     (r"out\.zarr", r"not a netCDF/zarr store")),
    "stale *.tmp of a killed convert": Case(stale_tmp_of_killed_convert, 0,
                                            may_change=(".out.nc.0badc0de.tmp",), then=_no_stale_tmp,
                                            owner="A"),
    "info run.nc.partial": Case(info_partial, 0, then=_partial_has_frames, subprocess=True, owner="A"),
    "--units real on a real-units dump": Case(units_real_dump, 0, then=_real_units_converted, owner="A"),
    "duplicate atom id in a dump": Case(duplicate_id_dump, 2, (r"dup\.lammpstrj", r"frame 1", r"\bid\b"),
                                        owner="A"),
    "extxyz with a blank line between frames": Case(extxyz_blank_line, 2, (r"ar\.extxyz",), owner="A"),
    "zarr store with a deleted chunk": Case(zarr_deleted_chunk, 2, (r"s\.zarr", r"positions"), owner="A"),
    "zarr store without positions/": Case(zarr_positions_deleted, 2, (r"s\.zarr", r"positions"), owner="A"),
}


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(case: Case, argv: list[str], folder: Path, capsys) -> tuple[int, str, str]:
    if not case.subprocess:
        capsys.readouterr()  # drop what the setup printed
        rc = main(argv)
        out, err = capsys.readouterr()
        return rc, out, err
    exe = Path(sys.executable).with_name("atomtwin")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ATOMTWIN_NO_PROGRESS": "1"}
    proc = subprocess.run([str(exe), *argv], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path, capsys, monkeypatch):
    case = CASES[name]
    monkeypatch.setenv("ATOMTWIN_NO_PROGRESS", "1")
    monkeypatch.chdir(tmp_path)
    argv = case.setup(tmp_path)
    before = _hashes(tmp_path)
    rc, out, err = _run(case, argv, tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    after = _hashes(tmp_path)
    command = argv[0]
    assert "Traceback" not in err, err
    assert rc == case.status, f"[{case.owner}] exit {rc}, stderr: {err}"
    if case.status == 2:
        assert len(lines) == 1, f"[{case.owner}] expected one line on stderr, got {lines}"
        assert lines[0].startswith(f"atomtwin {command}: error: "), lines[0]
        for pattern in case.says:
            assert re.search(pattern, lines[0]), f"[{case.owner}] {pattern!r} not in {lines[0]!r}"
        assert after == before, "a refused command changed the folder (half-written or deleted files)"
    else:
        assert all(line.startswith(f"atomtwin {command}: warning: ") for line in lines), lines
        kept = {k: v for k, v in before.items() if k not in case.may_change}
        assert {k: after.get(k) for k in kept} == kept, "a valid command deleted or changed an input"
        if case.then is not None:
            case.then(tmp_path, out)
