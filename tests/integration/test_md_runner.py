"""The runner end to end: trajectory schema on disk, bit-for-bit restart, SIGKILL survival,
clean stops and clear errors on bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.io import write
from atomtwin.engines.md.config import MDConfig
from atomtwin.engines.md.runner import MDBlowUp, run
from atomtwin.toolkit.errors import ConfigError, InputError
from atomtwin.toolkit.io import open as open_traj

LJ = {"kind": "lj", "params": {"Ar": [0.0104, 3.405]}, "r_cut": 8.5, "skin": 0.5}


def _config(tmp: Path, **kw) -> dict:
    a = bulk("Ar", "fcc", a=5.9, cubic=True).repeat((2, 2, 2))
    write(tmp / "ar.xyz", a)
    d = dict(structure=str(tmp / "ar.xyz"), potential=LJ, ensemble="langevin", timestep=0.01,
             steps=60, temperature=120.0, output=str(tmp / "t.nc"), stride=5,
             checkpoint=str(tmp / "run.ckpt"), checkpoint_every=20, progress=False, seed=3)
    d.update(kw)
    return d


def test_trajectory_schema_and_bitwise_restart(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    full = run(_config(a))
    ds = open_traj(full.output)
    assert ds.sizes["frame"] == 13  # steps 0, 5, ..., 60
    assert {"velocities", "forces", "energy", "cell"} <= set(ds.data_vars)
    np.testing.assert_allclose(np.diff(ds.time.values), 0.05, rtol=1e-9)
    # stop at step 40 (a checkpoint), then resume: identical to the uninterrupted run
    run(_config(b), steps=40)
    ck = b / "run.ckpt"
    out = Path(_config(b)["output"])
    # a finished output is neither extended nor overwritten silently
    with pytest.raises(InputError, match=r"earlier run.*resume=True.*overwrite=True"):
        run(_config(b))
    with pytest.raises(InputError, match="finished trajectory"):
        run(_config(b), resume=True)
    out.unlink()
    # resume from the step-40 checkpoint into a fresh output
    cfg = _config(b, output=str(b / "t2.nc"))
    import torch
    st = torch.load(ck, weights_only=True)
    st["n_frames"] = 0
    torch.save(st, ck)
    res = run(cfg, resume=True)
    assert res.state.step == 60
    assert torch.equal(res.state.positions, full.state.positions)
    assert torch.equal(res.state.momenta, full.state.momenta)


def test_sigkill_leaves_readable_trajectory_and_resumes(tmp_path):
    cfg = _config(tmp_path, steps=4000, checkpoint_every=50, output=str(tmp_path / "t.nc"))
    (tmp_path / "md.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from atomtwin.toolkit.cli import main; sys.exit(main())", "md", str(tmp_path / "md.yaml"),
                             "--no-progress"], env=env, stderr=subprocess.PIPE)
    ck = tmp_path / "run.ckpt"
    deadline = time.time() + 120
    while not ck.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.3)
    if proc.poll() is not None:
        pytest.fail(f"md finished or failed before the kill: {proc.stderr.read().decode()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = Path(str(tmp_path / "t.nc") + ".partial")
    with pytest.warns(UserWarning):
        ds = open_traj(partial).load()
    assert ds.sizes["frame"] >= 11 and np.isfinite(ds.positions.values).all()
    res = run(MDConfig.from_dict(cfg), resume=True, steps=int(ds.sizes["frame"]) * 5 + 100)
    ds2 = open_traj(res.output)
    assert ds2.sizes["frame"] == res.state.step // 5 + 1
    # frames before the kill are unchanged by the resume
    n = ds.sizes["frame"] - 10
    np.testing.assert_array_equal(ds2.positions.values[:n], ds.positions.values[:n])
    assert np.all(np.diff(ds.time.values) > 0)


def test_blow_up_stops_with_step_and_keeps_frames(tmp_path, capsys):
    # dt = 40 fs in NVE on liquid argon: atoms overlap within ~100 steps
    cfg = _config(tmp_path, ensemble="nve", timestep=0.05, steps=300, initial_temperature=3000.0,
                  temperature=None)
    with pytest.raises(MDBlowUp, match=r"blew up at step \d+.*halve `timestep`"):
        run(cfg)
    ds = open_traj(cfg["output"])
    assert ds.sizes["frame"] >= 1 and np.isfinite(ds.positions.values).all()
    # from the command line: one line, exit 2, the frames kept
    from atomtwin.toolkit.cli import main

    (tmp_path / "md.yaml").write_text(yaml.safe_dump({**cfg, "output": "cli.nc", "checkpoint": None}))
    assert main(["md", str(tmp_path / "md.yaml"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "blew up at step" in err[0] and "Fix: " in err[0]
    assert open_traj(tmp_path / "cli.nc").sizes["frame"] >= 1


def test_bad_input_errors(tmp_path):
    from ase import Atoms

    cfg = _config(tmp_path)
    with pytest.raises(ValueError, match="needs a structure periodic"):
        run({**cfg, "ensemble": "npt"}, atoms=Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]]))
    with pytest.raises(ValueError, match=r"no mass for species 'X'"):
        run(cfg, atoms=Atoms("X2", positions=[[0, 0, 0], [3.8, 0, 0]], cell=[9, 9, 9], pbc=True))
    from atomtwin.engines.md.state import make_state

    with pytest.raises(ValueError, match=r"no mass for species \['Xx'\]"):
        make_state(np.zeros((1, 3)), ["Xx"])
    with pytest.raises(ValueError, match=r"does not know species \['Cu'\]"):
        run({**cfg, "output": str(tmp_path / "cu.nc")},
            atoms=bulk("Cu", "fcc", a=3.6, cubic=True))
    with pytest.raises(ConfigError, match=r"temprature: unknown key. Fix: did you mean 'temperature'"):
        MDConfig.from_dict({**cfg, "temprature": 3})
    with pytest.raises(ValueError, match="timestep"):
        MDConfig.from_dict({**cfg, "timestep": 2.0})
    run({**cfg, "steps": 20, "output": str(tmp_path / "x.nc")})
    with pytest.raises(ValueError, match=r"does not match the config \(temperature"):
        run({**cfg, "temperature": 300.0, "output": str(tmp_path / "y.nc")}, resume=True)


def _frames_marker(partial: Path) -> int:
    try:
        return int(Path(str(partial) + ".frames").read_text())
    except (OSError, ValueError):
        return 0


def test_killed_before_first_checkpoint_restarts_cleanly(tmp_path, capsys):
    """SIGKILL after the partial store has frames but before the first checkpoint: a plain
    rerun refuses (touching nothing), ``--resume`` says it starts from step 0, discards only
    the partial store and reproduces an uninterrupted run bit for bit."""
    from atomtwin.toolkit.cli import main

    run_dir, ref_dir = tmp_path / "run", tmp_path / "ref"
    run_dir.mkdir(), ref_dir.mkdir()
    cfg = _config(run_dir, steps=4000, checkpoint_every=4000)
    yml = run_dir / "md.yaml"
    yml.write_text(yaml.safe_dump(cfg))
    partial, ck = Path(cfg["output"] + ".partial"), Path(cfg["checkpoint"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from atomtwin.toolkit.cli import main; "
                             "sys.exit(main())", "md", str(yml), "--no-progress"], env=env,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _frames_marker(partial) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"md finished or failed before the kill: {proc.stderr.read().decode()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert partial.is_dir() and not ck.exists() and not Path(cfg["output"]).exists()
    listing = sorted(p.name for p in run_dir.iterdir())

    assert main(["md", str(yml), "--no-progress", "--steps", "40"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "earlier run" in err[0] and "--resume" in err[0] and "--force" in err[0]
    assert sorted(p.name for p in run_dir.iterdir()) == listing  # nothing touched

    assert main(["md", str(yml), "--no-progress", "--resume", "--steps", "40"]) == 0
    err = capsys.readouterr().err
    assert "step 0" in err and "discarded its partial store" in err
    assert not partial.exists() and not Path(str(partial) + ".frames").exists()
    ref = run(_config(ref_dir, steps=40, checkpoint_every=4000))
    got, want = open_traj(cfg["output"]), open_traj(ref.output)
    assert got.sizes["frame"] == 9  # steps 0, 5, ..., 40
    np.testing.assert_array_equal(got.positions.values, want.positions.values)
    np.testing.assert_array_equal(got.velocities.values, want.velocities.values)


def test_resume_force_and_steps_rules(tmp_path):
    from atomtwin.engines.md.restart import ResumeNotice

    cfg = _config(tmp_path, steps=20)
    out, ck = Path(cfg["output"]), Path(cfg["checkpoint"])
    # --resume with nothing there starts from step 0, and says so
    with pytest.warns(ResumeNotice, match="no checkpoint.*step 0"):
        first = run(cfg, resume=True)
    assert first.state.step == 20 and out.exists() and ck.exists()
    with pytest.raises(InputError, match="contradict"):
        run(cfg, resume=True, overwrite=True)
    # overwrite (--force) deletes only the run's own files and reproduces the run
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.warns(ResumeNotice, match="deleted"):
        again = run(cfg, overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert np.array_equal(again.state.positions.numpy(), first.state.positions.numpy())
    # something at the partial path that is not our store: refused, nothing deleted
    foreign = Path(str(out) + ".partial")
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a trajectory")
    with pytest.raises(InputError, match="not a partial store of atomtwin md; nothing was deleted"):
        run(cfg, overwrite=True)
    assert (foreign / "notes.txt").exists() and out.exists() and ck.exists()
    # step overrides: whole numbers >= 0 only (also through the CLI, as one line, exit 2)
    for bad in (-5, 20.5, True):
        with pytest.raises(InputError, match="the number of steps must be a whole number >= 0"):
            run({**cfg, "output": str(tmp_path / "s.nc"), "checkpoint": None}, steps=bad)
    from atomtwin.toolkit.cli import main

    (tmp_path / "md.yaml").write_text(yaml.safe_dump({**cfg, "output": "u.nc", "checkpoint": None}))
    assert main(["md", str(tmp_path / "md.yaml"), "--steps", "-5"]) == 2
    assert not (tmp_path / "u.nc").exists() and not (tmp_path / "u.nc.partial").exists()
