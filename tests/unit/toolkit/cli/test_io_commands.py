"""``atomtwin convert`` / ``atomtwin info`` through the real console entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from atomtwin.toolkit.cli import main
from foreground import default_sigint

import atomtwin

datafiles = pytest.importorskip("MDAnalysisTests.datafiles")


def test_convert_dump_with_species_map_stride_and_frames(tmp_path, capsys):
    out = tmp_path / "wat.nc"
    rc = main(["convert", datafiles.LAMMPSDUMP_allcoords, str(out), "--species-map", "1=O,2=H",
               "--timestep", "0.001", "--frames", "1:9", "--stride", "2", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 4 and summary["atoms"] == 4500
    ref = atomtwin.toolkit.read(datafiles.LAMMPSDUMP_allcoords, species_map="1=O,2=H")
    got = atomtwin.toolkit.read(out)
    np.testing.assert_array_equal(got.positions.values, ref.positions.values[1:9:2])
    assert sorted(set(got.species.values)) == ["H", "O"]


def test_info_json(tmp_path, capsys):
    rc = main(["info", datafiles.LAMMPSDUMP_image_vf, "--species-map", "1=O,2=H", "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 3 and info["atoms"] == 7
    assert {"velocities", "forces", "image"} <= set(info["variables"])


def test_bad_input_gives_one_line_error_and_no_output(tmp_path, capsys):
    out = tmp_path / "x.nc"
    rc = main(["convert", datafiles.LAMMPSDUMP_image_vf, str(out), "--species-map", "1=O"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "atom type(s) [2] have no species" in err and "--species-map" in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    assert main(["convert", str(tmp_path / "missing.lammpstrj"), str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_interrupted_convert_leaves_nothing(tmp_path):
    """SIGINT in the middle of a conversion: the target never appears, no temporary stays."""
    import signal
    import time

    big = tmp_path / "big.lammpstrj"
    n, frames = 3000, 150
    rng = np.random.default_rng(0)
    with open(big, "w") as fh:
        for f in range(frames):
            fh.write(f"ITEM: TIMESTEP\n{f}\nITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS pp pp pp\n")
            fh.write("0 30\n0 30\n0 30\nITEM: ATOMS id type x y z\n")
            xyz = rng.random((n, 3)) * 30
            np.savetxt(fh, np.column_stack([np.arange(1, n + 1), np.ones(n), xyz]), fmt="%d %d %.5f %.5f %.5f")
    out = tmp_path / "big.nc"
    exe = Path(sys.executable).with_name("atomtwin")
    proc = subprocess.Popen([str(exe), "convert", str(big), str(out), "--species-map", "1=Ar", "--chunk", "8"],
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=default_sigint)
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    # never a temporary or partial file; the target either absent or complete (the signal
    # may land after the atomic rename, while the process is exiting)
    assert set(leftovers) <= {"big.lammpstrj", "big.nc"}, leftovers
    if out.exists():
        assert atomtwin.toolkit.open(out).sizes["frame"] == frames
    else:
        assert proc.returncode != 0
