"""Ctrl-C in the middle of `atomtwin environments`: exit 130 with one line, no traceback, no
half-written output or cache file, no worker process left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from foreground import default_sigint
from synthetic_cells import li_li2s_cell

psutil = pytest.importorskip("psutil")

N_FRAMES = 40  # ~0.05-0.1 s of SOAP per frame: several seconds of labelling to interrupt


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory):
    ds, _ = li_li2s_cell(n_frames=N_FRAMES, seed=21, thickness=12.0)
    path = tmp_path_factory.mktemp("interrupt") / "traj.nc"
    ds.atoms.write(path)
    return path, int(ds.sizes["atom"])


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_ctrl_c_mid_run(trajectory, tmp_path, workers):
    traj, n_atoms = trajectory
    cache, out = tmp_path / "cache", tmp_path / "labels.nc"
    cmd = [
        sys.executable,
        "-m",
        "atomtwin.toolkit.cli",
        "environments",
        str(traj),
        "--r-cut",
        "4.0",
        "--chunk-frames",
        "1",
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--workers",
        str(workers),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(tmp_path / "stderr.txt", "w") as err:
        # a session of its own: the signal goes to the whole group, as a terminal's Ctrl-C does
        proc = subprocess.Popen(
            cmd,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                start_new_session=True,
                preexec_fn=default_sigint,
        )
        try:
            # mid-run: the first chunks are in the cache (labelling has begun), not all of them
            deadline = time.monotonic() + 240
            while len(list(cache.glob("*.npy"))) < 2:
                assert proc.poll() is None, "the run ended before it could be interrupted"
                assert time.monotonic() < deadline, "no chunk labelled within 240 s"
                time.sleep(0.02)
            children = psutil.Process(proc.pid).children(recursive=True)
            os.killpg(proc.pid, signal.SIGINT)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = (tmp_path / "stderr.txt").read_text()
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    assert rc == 130, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    assert lines[-1] == "atomtwin environments: interrupted"
    # nothing half-written: no output (it is written only at the end, by rename), no
    # temporary files; every cache entry is a complete float32 chunk (1 frame x atoms x
    # features) or absent
    assert not out.exists()
    assert not [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    files = sorted(cache.glob("*.npy"))
    assert 2 <= len(files) < N_FRAMES
    shapes = {np.load(p).shape for p in files}  # a truncated file fails to load
    assert len(shapes) == 1 and next(iter(shapes))[:2] == (1, n_atoms)
    # no worker (or other child) process survives the command
    time.sleep(0.5)
    alive = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    if workers > 1:
        assert len(children) >= workers  # the workers existed and were seen
