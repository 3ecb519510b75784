"""Stores refuse damage (missing chunks or variables, empty or cut netCDF) and write()
never deletes what it did not write; temporaries are recognisable and cleaned."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
from atomtwin.toolkit.errors import FileFormatError, InputError
from atomtwin.toolkit.io import TrajectoryWriter, clean_stale_temporaries

import atomtwin


def _ds(nf=7, na=4, seed=0):
    rng = np.random.default_rng(seed)
    return atomtwin.toolkit.make_dataset(
        rng.normal(size=(nf, na, 3)), ["Cu"] * na, cell=np.eye(3) * 5.0, time=np.arange(nf) * 0.01,
        forces=rng.normal(size=(nf, na, 3)), energy=rng.normal(size=nf),
        image=np.zeros((nf, na, 3), dtype=np.int32),  # all zero: the fill value, still stored
    )


def test_zarr_missing_chunk_file_is_named(tmp_path):
    path = atomtwin.toolkit.write(_ds(), tmp_path / "t.zarr", chunk_frames=3)
    (path / "positions" / "1.0.0").unlink()
    for fn in (atomtwin.toolkit.open, atomtwin.toolkit.read):
        with pytest.raises(FileFormatError, match=r"t\.zarr: chunk files are missing in positions/ \(1 of 3"):
            fn(path)


def test_zarr_all_zero_chunks_are_stored_so_nothing_is_flagged(tmp_path):
    ds = _ds()
    path = atomtwin.toolkit.write(ds, tmp_path / "z.zarr", chunk_frames=3)
    assert len([p for p in (path / "image").iterdir() if not p.name.startswith(".")]) == 3
    np.testing.assert_array_equal(atomtwin.toolkit.read(path).image.values, ds.image.values)


def test_zarr_deleted_variable_is_named(tmp_path):
    path = atomtwin.toolkit.write(_ds(), tmp_path / "v.zarr", chunk_frames=3)
    shutil.rmtree(path / "positions")
    with pytest.raises(FileFormatError, match=r"v\.zarr: .*positions"):
        atomtwin.toolkit.open(path)
    (path / ".zmetadata").unlink()  # without consolidated metadata: the schema names it
    with pytest.raises(FileFormatError, match=r"v\.zarr: is not a complete atomtwin trajectory.*positions"):
        atomtwin.toolkit.open(path)


def test_zarr_cut_chunk_is_an_error_when_read_lazily(tmp_path):
    path = atomtwin.toolkit.write(_ds(), tmp_path / "c.zarr", chunk_frames=3)
    chunk = path / "energy" / "1"
    chunk.write_bytes(chunk.read_bytes()[:20])  # blosc alone would decode this as garbage
    ds = atomtwin.toolkit.open(path)
    with pytest.raises(FileFormatError, match=r"c\.zarr: variable energy: a chunk cannot be decoded"):
        ds.energy.values  # noqa: B018


@pytest.mark.parametrize("cut", [0, 100, 0.5])
def test_empty_or_cut_netcdf_is_named(tmp_path, cut):
    path = atomtwin.toolkit.write(_ds(), tmp_path / "n.nc")
    data = path.read_bytes()
    path.write_bytes(data[: int(cut * len(data)) if isinstance(cut, float) else cut])
    with pytest.raises(FileFormatError, match=r"n\.nc: (is empty|is not a netCDF4|cannot be opened)"):
        atomtwin.toolkit.read(path)


def test_partial_store_format_recognised_by_read_and_open(tmp_path):
    target = tmp_path / "run.nc"
    w = TrajectoryWriter(target, ["Cu"] * 2)
    for i in range(3):
        w.append(np.full((2, 3), float(i)), cell=np.eye(3) * 4)
    partial = tmp_path / "run.nc.partial"
    with pytest.warns(UserWarning, match="unfinished"):
        a = atomtwin.toolkit.read(partial)
    with pytest.warns(UserWarning, match="unfinished"):
        b = atomtwin.toolkit.open(partial)
    assert a.sizes["frame"] == b.sizes["frame"] == 3
    np.testing.assert_array_equal(a.positions.values[:, 0, 0], [0.0, 1.0, 2.0])
    shutil.rmtree(partial / "positions")
    with pytest.raises(FileNotFoundError, match="no complete frame"):
        atomtwin.toolkit.open(partial)


def test_store_refuses_reader_options(tmp_path):
    path = atomtwin.toolkit.write(_ds(), tmp_path / "o.nc")
    with pytest.raises(InputError, match=r"species_map= do not apply to '.*o\.nc'"):
        atomtwin.toolkit.read(path, species_map="1=Cu")


# -- write() target safety -------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_write_refuses_existing_target_unless_overwrite(tmp_path, suffix):
    first, second = _ds(seed=0), _ds(seed=1)
    path = atomtwin.toolkit.write(first, tmp_path / f"t{suffix}")
    with pytest.raises(FileExistsError, match="exists.*overwrite=True"):
        atomtwin.toolkit.write(second, path)
    np.testing.assert_array_equal(atomtwin.toolkit.read(path).positions.values, first.positions.values)
    atomtwin.toolkit.write(second, path, overwrite=True)
    np.testing.assert_array_equal(atomtwin.toolkit.read(path).positions.values, second.positions.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"t{suffix}"]  # nothing left beside it


@pytest.mark.parametrize("content", ["folder", "zarr-not-ours", "zarr-plus-file", "text-file"])
def test_overwrite_never_replaces_what_atomtwin_did_not_write(tmp_path, content):
    suffix = ".nc" if content == "text-file" else ".zarr"
    path = tmp_path / f"x{suffix}"
    if content == "text-file":
        path.write_text("my notes")
    elif content == "folder":
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    elif content == "zarr-not-ours":
        import xarray as xr

        xr.Dataset({"a": ("b", np.arange(3))}).to_zarr(path, zarr_format=2)
    else:
        atomtwin.toolkit.write(_ds(), path)
        (path / "notes.txt").write_text("mine")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(FileExistsError, match="is not a .* store atomtwin wrote"):
        atomtwin.toolkit.write(_ds(), path, overwrite=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_writer_refuses_an_existing_target_at_once(tmp_path):
    path = atomtwin.toolkit.write(_ds(), tmp_path / "w.nc")
    with pytest.raises(FileExistsError, match="w.nc' exists"):
        TrajectoryWriter(path, ["Cu"] * 4)


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    """A killed write leaves `.<name>.atomtwin-tmp.<host>.<pid>.<random>`: the next write
    to the same target removes it when that pid is gone; a live pid's is kept."""
    host = socket.gethostname().replace(".", "_")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".t.zarr.atomtwin-tmp.{host}.{dead_pid}.deadbeef"
    (stale / "positions").mkdir(parents=True)
    (stale / "positions" / "0.0.0").write_bytes(b"x" * 1000)
    live = tmp_path / f".t.zarr.atomtwin-tmp.{host}.{os.getpid()}.cafecafe"
    live.mkdir()
    other_host = tmp_path / f".t.zarr.atomtwin-tmp.elsewhere.{dead_pid}.0badf00d"
    other_host.mkdir()
    legacy = tmp_path / ".t.zarr.0badc0de.tmp"  # atomtwin < 0.2 named them so, without a pid
    legacy.mkdir()
    unrelated = tmp_path / ".t.zarr.notes.tmp"
    unrelated.write_text("mine")
    atomtwin.toolkit.write(_ds(), tmp_path / "t.zarr")
    assert not stale.exists() and not legacy.exists()
    assert live.exists() and other_host.exists() and unrelated.exists()
    assert clean_stale_temporaries(tmp_path / "t.zarr") == []


def test_temporary_name_carries_pid(tmp_path, monkeypatch):
    seen = []
    import xarray as xr

    real = xr.Dataset.to_netcdf

    def spy(self, path, *a, **k):
        seen.append(os.path.basename(str(path)))
        return real(self, path, *a, **k)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atomtwin.toolkit.write(_ds(), tmp_path / "p.nc")
    assert seen and seen[0].startswith(".p.nc.atomtwin-tmp.") and f".{os.getpid()}." in seen[0]
