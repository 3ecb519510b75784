"""The CLI's conventions: user errors and warnings in one line, bugs with their traceback,
flags instead of API keywords, argparse errors in one line, progress on stderr only."""

from __future__ import annotations

import json
import warnings
from argparse import Namespace

import numpy as np
import pytest
from atomtwin.toolkit import progress
from atomtwin.toolkit.cli import cli_message, main, run_command
from atomtwin.toolkit.errors import ConfigError, FileFormatError, InputError

import atomtwin


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("exc, line", [
    (InputError("bad value.\nFix: another."), "atomtwin demo: error: bad value. Fix: another."),
    (ConfigError("c.yaml: lr must be > 0."), "atomtwin demo: error: c.yaml: lr must be > 0."),
    (FileFormatError("a.nc", "truncated at byte 12.", "rerun"), "atomtwin demo: error: a.nc: truncated at "
                                                                "byte 12. Fix: rerun"),
    (FileNotFoundError(2, "No such file or directory", "x.yaml"),
     "atomtwin demo: error: No such file or directory: 'x.yaml'"),
    (IsADirectoryError(21, "Is a directory", "d"), "atomtwin demo: error: Is a directory: 'd'"),
])
def test_user_errors_are_one_line_and_exit_2(exc, line, capsys):
    def command(args):
        raise exc

    assert run_command("demo", command, Namespace()) == 2
    assert _err_lines(capsys) == [line]


@pytest.mark.parametrize("exc", [KeyError("species"), ValueError("shapes (3,) and (4,)"), TypeError("x")])
def test_a_genuine_bug_keeps_its_traceback(exc):
    def command(args):
        raise exc

    with pytest.raises(type(exc)):
        run_command("demo", command, Namespace())


def test_warnings_are_one_line_without_source(capsys):
    def command(args):
        warnings.warn("the last frame is cut off;\n reading 9 complete frames (pass species_map= to name)",
                      UserWarning, stacklevel=1)
        return 0

    assert run_command("info", command, Namespace()) == 0
    assert _err_lines(capsys) == ["atomtwin info: warning: the last frame is cut off; reading 9 complete "
                                  "frames (pass --species-map to name)"]


def test_api_keywords_become_flags():
    assert cli_message("Fix: pass species_map= {1: 'Li'}") == "Fix: pass --species-map {1: 'Li'}"
    assert cli_message("resume=True to continue, overwrite=True to start over") == (
        "--resume to continue, --force to start over")
    assert cli_message("give timestep_ps=0.002 or format='extxyz'") == "give --timestep 0.002 or --format 'extxyz'"
    assert cli_message("my_units=3 and data_file_x=2") == "my_units=3 and data_file_x=2"  # whole words only


def test_progress_is_on_during_a_command_unless_no_progress(monkeypatch):
    monkeypatch.delenv("ATOMTWIN_NO_PROGRESS", raising=False)
    seen = []
    assert run_command("x", lambda a: seen.append(progress.enabled()), Namespace()) == 0
    assert run_command("x", lambda a: seen.append(progress.enabled()), Namespace(no_progress=True)) == 0
    assert seen == [True, False] and not progress.enabled()


@pytest.mark.parametrize("argv, says", [
    (["convert"], "atomtwin convert: error: the following arguments are required: input, output"),
    (["info", "x.nc", "--units", "imperial"], "atomtwin info: error: argument --units: invalid choice: "
                                              "'imperial'"),
    (["info", "x.nc", "--unitz", "real"], "atomtwin info: error: unrecognized arguments: --unitz real"),
    (["infoo", "x.nc"], "atomtwin: error: argument COMMAND: invalid choice: 'infoo'"),
])
def test_argparse_errors_are_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(says), lines


def test_units_choices_are_the_lammps_styles(capsys):
    with pytest.raises(SystemExit):
        main(["info", "x.nc", "--units", "imperial"])
    err = capsys.readouterr().err
    for style in ("metal", "real", "si", "cgs", "electron", "micro", "nano"):
        assert f"'{style}'" in err


@pytest.fixture
def small_traj(tmp_path):
    import ase.io
    from ase.build import bulk

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(4):
        a = bulk("Ar", "fcc", a=5.26, cubic=True)
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        frames.append(a)
    path = tmp_path / "ar.extxyz"
    ase.io.write(path, frames)
    return path


def test_convert_force_replaces_only_its_own_output(small_traj, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ATOMTWIN_NO_PROGRESS", raising=False)  # bars on: stdout must stay JSON
    out = tmp_path / "ar.nc"
    assert main(["convert", str(small_traj), str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 4
    first = out.read_bytes()
    assert main(["convert", str(small_traj), str(out), "--stride", "2"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == first
    assert main(["convert", str(small_traj), str(out), "--stride", "2", "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 2
    assert atomtwin.open(out).sizes["frame"] == 2
    # a file atomtwin did not write is not replaced, even with --force
    mine = tmp_path / "notes.nc"
    mine.write_text("my notes")
    assert main(["convert", str(small_traj), str(mine), "--force"]) == 2
    assert "not a netCDF/zarr store atomtwin wrote" in capsys.readouterr().err
    assert mine.read_text() == "my notes"
    # the output is a store name, never the input
    assert main(["convert", str(small_traj), str(tmp_path / "ar.txt")]) == 2
    assert "must be named *.nc (netCDF4) or *.zarr" in capsys.readouterr().err
    # the input is never the output
    assert main(["convert", str(out), str(out), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err


def test_spectrum_options_checked_before_reading(small_traj, tmp_path, capsys):
    for extra, says in ((["--window", "hamming"], "unknown --window 'hamming'"),
                        (["--unit", "eV"], "unknown --unit 'eV'"),
                        (["--max-lag", "-1"], "--max-lag must be > 0 ps"),
                        (["--output", str(tmp_path)], "must be a netCDF file name")):
        assert main(["spectrum", str(small_traj), *extra]) == 2
        lines = _err_lines(capsys)
        assert len(lines) == 1 and says in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ar.extxyz"]


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "e3nn"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
sys.meta_path.insert(0, Block())
from atomtwin.toolkit.cli import main
rc_help = None
try:
    main(["--help"])
except SystemExit as e:
    rc_help = e.code
print("HELP", rc_help)
print("TRAIN", main(["train", "cfg.yaml"]))
"""


def test_without_torch_the_cli_runs_and_engine_commands_name_the_extra(tmp_path):
    """An analysis-only install (no torch): ``--help`` lists every command and an engine
    command exits 2 with one line naming ``atomtwin[engines]``."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert "HELP 0" in out.stdout, out.stderr
    assert "TRAIN 2" in out.stdout, out.stderr
    assert "train" in out.stdout and "convert" in out.stdout
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines == ["atomtwin train: error: 'atomtwin train' needs torch, which is not installed. "
                     "Fix: pip install 'atomtwin[engines]' (see the README for a CUDA build of torch)."], lines


def test_json_output_lists_the_commands_warnings(capsys):
    from atomtwin.toolkit.cli import emit_json

    def command(args):
        warnings.warn("first thing;\n with a fix (species_map=)", UserWarning, stacklevel=1)
        emit_json({"value": 1})
        return 0

    assert run_command("info", command, Namespace()) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    # the same one-line text as on stderr, flags instead of API keywords
    assert out["warnings"] == [cap.err.split("warning: ", 1)[1].strip()]
    assert "--species-map" in out["warnings"][0] and out["value"] == 1

    def quiet(args):
        emit_json({"value": 2})
        return 0

    assert run_command("info", quiet, Namespace()) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_python_dash_m_runs_the_same_cli(tmp_path):
    """``python -m atomtwin.toolkit.cli`` is the command without its console script: the same
    version line, and a user error is one line with exit 2 (no traceback)."""
    import subprocess
    import sys

    ver = subprocess.run([sys.executable, "-m", "atomtwin.toolkit.cli", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert ver.returncode == 0 and atomtwin.__version__ in ver.stdout + ver.stderr
    bad = subprocess.run([sys.executable, "-m", "atomtwin.toolkit.cli", "info",
                          str(tmp_path / "missing.nc")], capture_output=True, text=True, timeout=120)
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "Traceback" not in bad.stderr, bad.stderr


def test_a_dropped_ctrl_c_is_raised_again_and_reported(capsys):
    """A KeyboardInterrupt raised where Python drops exceptions (a garbage-collector callback,
    as dask's) must not let a command run on as if nothing happened: the recorded Ctrl-C is
    raised again at the next progress step, and exit status 130 is returned."""
    import argparse

    from atomtwin.toolkit import progress
    from atomtwin.toolkit.cli import run_command

    seen = []

    def func(args):
        for i in progress.progress(range(5), progress=False):
            seen.append(i)
            if i == 1:
                progress.note_interrupt()  # the handler ran; its exception was dropped
        return 0

    assert run_command("demo", func, argparse.Namespace()) == 130
    assert seen == [0, 1]
    assert capsys.readouterr().err.strip().endswith("atomtwin demo: interrupted")
    assert not progress.interrupted()  # cleared for the next command

    def no_loop(args):  # ran to its end after the Ctrl-C: still reported as interrupted
        progress.note_interrupt()
        return 0

    assert run_command("demo", no_loop, argparse.Namespace()) == 130
    assert run_command("demo", lambda args: 0, argparse.Namespace()) == 0
