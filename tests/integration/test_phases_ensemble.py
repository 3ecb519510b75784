"""The ensemble driver end to end with the LJ point runner (atomtwin.engines.studies.phase_points)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from atomtwin.engines.studies.phase_points import physical
from atomtwin.toolkit.phases import PhaseSpec, classify_phases, run_ensemble
from atomtwin.toolkit.phases.ensemble import connect

ROOT = Path(__file__).resolve().parents[2]
# 108 LJ atoms, 150 + 150 steps: < 1 s a point; solid at T* = 0.5, liquid at T* = 2.0 (P* = 1)
SMALL = {"cells": [3, 3, 3], "equil_steps": 150, "steps": 150, "sample_every": 15}
P1 = physical(P_red=1.0)["P"]
TS = [physical(T_red=0.5)["T"], physical(T_red=2.0)["T"]]


def _spec(tmp_path, name, **kw):
    d = dict(point_function="atomtwin.engines.studies.phase_points:run_point", pressures=[P1], temperatures=TS,
             protocol=SMALL, seed=7, workdir=str(tmp_path / name), scheduler="serial")
    d.update(kw)
    return PhaseSpec(**d)


def test_local_cluster_gives_the_serial_diagram_and_failures_are_left_out(tmp_path):
    from distributed import Client, LocalCluster

    bad = {**SMALL, "kind": "nvt", "dt": 0.5}  # 100x the stable step at T* = 2: atoms overlap, it blows up
    serial = run_ensemble(_spec(tmp_path, "serial"), progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        par = run_ensemble(_spec(tmp_path, "dask"), client=client, progress=False)
        blown = run_ensemble(_spec(tmp_path, "bad", protocol=bad, temperatures=TS[1:]), client=client,
                             progress=False)
    # same seeds, same arithmetic: the two runs give identical features (bitwise up to
    # reduction order in numpy: 1e-9) and the same phases
    for k in ("q6_bar", "diffusion", "temperature_measured", "pressure_measured"):
        np.testing.assert_allclose(par.grid[k].values, serial.grid[k].values, rtol=1e-9)
    crit = {"solid": "q6_bar > 0.3", "liquid": "q6_bar <= 0.3"}
    ls, lp = classify_phases(serial.grid, criteria=crit), classify_phases(par.grid, criteria=crit)
    np.testing.assert_array_equal(ls.values, lp.values)
    # and the physics: T* = 0.5 is the crystal, T* = 2.0 at P* = 1 the liquid (LJ melting at
    # P* = 1 is near T* = 0.77)
    assert ls.values.tolist() == [["solid", "liquid"]]
    assert blown.grid["status"].values.tolist() == [["failed"]]
    assert np.isnan(blown.grid["q6_bar"].values).all()
    assert "blew up" in blown.failed[0]["reason"]


def test_killed_ensemble_resumes_without_rerunning(tmp_path):
    spec = tmp_path / "spec.yaml"
    # six points, killed once two have finished: the kill lands with >= 2 (a few points
    # a second each) and well before all six, whatever the machine's load
    temps = [physical(T_red=t)["T"] for t in (0.5, 0.6, 0.7, 1.5, 1.8, 2.0)]
    spec.write_text(
        "point_function: atomtwin.engines.studies.phase_points:run_point\n"
        f"pressures: [{P1}]\ntemperatures: {temps}\n"
        f"protocol: {json.dumps(SMALL)}\nseed: 3\nworkdir: runs\nscheduler: serial\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "import sys; from atomtwin.toolkit.cli import main; sys.exit(main())", "phase-diagram", str(spec), "--json", "--no-figure"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = tmp_path / "runs"
    t0 = time.time()
    while time.time() - t0 < 180 and len(list(runs.glob("*/summary.nc"))) < 2 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/summary.nc")}
    assert 2 <= len(finished) < 6, "the kill should land after two of six points"
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["n_points_reused"] == len(finished)
    assert res["n_points_run"] == 6 - len(finished)
    # the finished points were not run again: their files are untouched
    for name, mtime in finished.items():
        assert (runs / name / "summary.nc").stat().st_mtime_ns == mtime


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match="no 'pressures'"):
        PhaseSpec(point_function="atomtwin.engines.studies.phase_points:run_point", temperatures=[100.0], workdir=str(tmp_path))
    with pytest.raises(ConnectionError, match="no dask scheduler answers"):
        connect("tcp://127.0.0.1:9", timeout=2)
    with pytest.raises(ValueError, match="import string"):
        run_ensemble(_spec(tmp_path, "x", point_function="not_a_path"), progress=False)
