"""netCDF/zarr storage: exact round trips, atomic writes, a killed writer, lazy reading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import FileFormatError
from atomtwin.toolkit.io import TrajectoryWriter

import atomtwin


def _full(rng, nf=7, na=6):
    return atomtwin.toolkit.make_dataset(
        rng.normal(size=(nf, na, 3)) * 3, ["Li", "Li", "S", "P", "Cl", "Li"],
        cell=np.eye(3) * 9 + rng.normal(size=(nf, 3, 3)) * 0.1, time=np.arange(nf) * 0.002,
        velocities=rng.normal(size=(nf, na, 3)), forces=rng.normal(size=(nf, na, 3)),
        energy=rng.normal(size=nf), stress=rng.normal(size=(nf, 3, 3)),
        dipole=rng.normal(size=(nf, 3)), born_charges=rng.normal(size=(nf, na, 3, 3)),
        image=rng.integers(-2, 3, size=(nf, na, 3)).astype(np.int32),
        attrs={"source": "test", "parameters": {"T": 300}},
    )


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_is_exact(tmp_path, rng, suffix):
    ds = _full(rng)
    path = atomtwin.toolkit.write(ds, tmp_path / f"t{suffix}", chunk_frames=3)
    back = atomtwin.toolkit.open(path)
    assert back.positions.chunks[0] == (3, 3, 1)  # chunked along frame, lazily opened
    back = back.load()
    for name in ds.data_vars:
        np.testing.assert_array_equal(back[name].values, ds[name].values, err_msg=name)
        assert back[name].dims == ds[name].dims
    for name in ("species", "mass", "time", "atomic_number"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    assert back.attrs["pbc"] is not None and list(back.attrs["pbc"]) == [1, 1, 1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_failed_write_leaves_nothing(tmp_path, rng):
    ds = _full(rng)
    ds["bad"] = (("frame",), np.array([object()] * ds.sizes["frame"]))  # not serialisable
    with pytest.raises(Exception):  # noqa: B017 - h5netcdf's own error type
        atomtwin.toolkit.write(ds, tmp_path / "x.nc")
    assert list(tmp_path.iterdir()) == []


def test_writer_appends_and_finalises_atomically(tmp_path, rng):
    ds = _full(rng)
    target = tmp_path / "run.nc"
    with TrajectoryWriter(target, ds.species.values, flush_every=2) as w:
        for i in range(ds.sizes["frame"]):
            f = ds.isel(frame=i)
            w.append(f.positions.values, cell=f.cell.values, time=float(f.time), velocities=f.velocities.values,
                     energy=float(f.energy))
            assert not target.exists()
    back = atomtwin.toolkit.read(target)
    np.testing.assert_array_equal(back.positions.values, ds.positions.values)
    np.testing.assert_array_equal(back.energy.values, ds.energy.values)
    assert back.attrs["timestep_ps"] == pytest.approx(0.002)
    assert not Path(str(target) + ".partial").exists()


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time, numpy as np
    from atomtwin.toolkit.io import TrajectoryWriter
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(1000, 5, 3))
    w = TrajectoryWriter(sys.argv[1], ["Cu"] * 5, flush_every=1)
    for i in range(1000):
        w.append(pos[i], cell=np.eye(3) * 10, time=i * 0.01, energy=float(i))
        time.sleep(0.01)
    """
)


def test_killed_writer_keeps_every_flushed_frame_and_resumes(tmp_path):
    target = tmp_path / "killed.nc"
    partial = Path(str(target) + ".partial")
    script = tmp_path / "w.py"
    script.write_text(WRITER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(target)])
    try:
        deadline = time.time() + 60
        n = 0
        while time.time() < deadline:
            time.sleep(0.3)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    n = atomtwin.toolkit.open(partial).sizes["frame"]
            except (FileNotFoundError, FileFormatError):  # not created yet, or mid-write
                continue
            if n >= 8:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert n >= 8
    assert not target.exists()
    with pytest.raises(FileNotFoundError, match="did not finish.*partial"):
        atomtwin.toolkit.open(target)
    with pytest.warns(UserWarning, match="unfinished"):
        got = atomtwin.toolkit.open(partial).load()
    k = got.sizes["frame"]
    assert k >= n
    pos = np.random.default_rng(0).normal(size=(1000, 5, 3))
    np.testing.assert_array_equal(got.positions.values, pos[:k])  # every kept frame is intact
    np.testing.assert_array_equal(got.energy.values, np.arange(k, dtype=float))
    # resume: continue after the last complete frame
    w = TrajectoryWriter(target, ["Cu"] * 5, resume=True)
    assert w.n_frames == k
    for i in range(k, k + 3):
        w.append(pos[i], cell=np.eye(3) * 10, time=i * 0.01, energy=float(i))
    w.close()
    final = atomtwin.toolkit.read(target)
    np.testing.assert_array_equal(final.positions.values, pos[: k + 3])
    np.testing.assert_allclose(np.diff(final.time.values), 0.01)


def test_resume_with_other_atoms_refused(tmp_path):
    target = tmp_path / "r.nc"
    w = TrajectoryWriter(target, ["Cu"] * 2)
    w.append(np.zeros((2, 3)), cell=np.eye(3))
    w._closed = True  # simulate a crash: partial left behind
    with pytest.raises(ValueError, match="cannot resume"):
        TrajectoryWriter(target, ["Cu"] * 3, resume=True)
    with pytest.raises(FileExistsError, match="resume=True"):
        TrajectoryWriter(target, ["Cu"] * 2)


LAZY_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import dask, numpy as np, atomtwin
    dask.config.set(scheduler="synchronous")  # one chunk in memory at a time
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    ds = atomtwin.open(sys.argv[1])
    com = ds.positions.mean(("atom", "xyz")).compute()   # one number per frame, chunk by chunk
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(int(ds.positions.nbytes), (peak - base) * 1024, float(com.sum()))
    """
)


@pytest.mark.slow
def test_trajectory_larger_than_memory_budget_is_read_lazily(tmp_path):
    """A 192 MB trajectory reduced frame-chunk by frame-chunk must not raise the reader's peak
    memory by more than a 64 MiB budget: one 64-frame chunk is 31 MB and the synchronous
    scheduler holds one chunk (plus its reduction temporaries) at a time."""
    import dask.array as da

    nf, na = 400, 20000
    pos = da.random.RandomState(1).normal(size=(nf, na, 3), chunks=(50, na, 3))
    ds = xr.Dataset({S.POSITIONS: ((S.FRAME, S.ATOM, S.XYZ), pos)},
                    coords={S.SPECIES: (S.ATOM, np.array(["Ar"] * na))}, attrs={S.PBC: [0, 0, 0]})
    path = atomtwin.toolkit.write(ds, tmp_path / "big.nc", compress=False, chunk_frames=64)
    script = tmp_path / "lazy.py"
    script.write_text(LAZY_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DASK_NUM_WORKERS": "1"}
    out = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, env=env, check=True)
    nbytes, grew, total = out.stdout.split()
    assert int(nbytes) == nf * na * 3 * 8
    assert int(grew) < 64 * 2**20, f"reader grew by {int(grew) / 2**20:.0f} MiB"
    assert np.isfinite(float(total))
