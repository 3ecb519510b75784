"""``atomtwin demo --small`` end to end: engine -> trajectory -> analysis -> report, checked on
its physical outputs, its resume and its refusal of a foreign output folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atomtwin.toolkit.cli import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "--small", "--out", str(out), "--json"]) == 0
    return out


@pytest.mark.slow
def test_demo_outputs_are_physical(demo_dir):
    s = json.loads((demo_dir / "summary.json").read_text())
    # the shipped model on its own trajectory: forces within 0.25 eV/Å of EMT on average and
    # below 35 % of the mean |F| (~0.4-0.5 eV/Å at 1250 K; a model that learned nothing sits
    # at 100 %), energies within 30 meV/atom (EMT's Pd/Au mixing energies are ~100 meV/atom)
    chk = s["model_vs_emt_on_md"]
    assert chk["force_mae"] < 0.25 and chk["force_mae"] < 0.35 * chk["force_scale"], chk
    assert chk["energy_mae_per_atom"] < 0.03, chk
    # NVE with the trained potential at dt = 2 fs: energy fluctuation and drift small
    # against kT = 108 meV at 1250 K; a broken force/energy pair would drift by meV/atom/ps or more
    nve = s["nve"]
    assert abs(nve["drift_eV_per_atom_per_ps"]) < 1e-3 and nve["fluctuation_eV_per_atom"] < 2e-3, nve
    # both bulks recognised as their reference crystal, and non-bulk environments flagged
    refs = {c["nearest_reference"].split(":")[0] for c in s["clusters"] if not c["is_new"]}
    assert {"fcc Pd", "fcc Au"} <= refs, s["clusters"]
    assert s["new_clusters"], "surfaces and the interface must show as non-bulk clusters"
    # the files a reader opens
    for name in ("report.md", "results.nc", "fig_phase_fractions.png", "fig_profiles.pdf",
                 "fig_msd_plane_vs_normal.png", "fig_rdf.png", "fig_model_checks.png", "md.nc"):
        assert (demo_dir / name).exists(), name
    import xarray as xr

    res = xr.open_dataset(demo_dir / "results.nc", engine="h5netcdf")
    np.testing.assert_allclose(res["fraction"].sum("cluster"), 1.0, atol=1e-9)


@pytest.mark.slow
def test_demo_resumes_and_refuses_foreign_folder(demo_dir, tmp_path, capsys):
    before = (demo_dir / "summary.json").read_text()
    capsys.readouterr()
    assert main(["demo", "--small", "--out", str(demo_dir)]) == 0
    err = capsys.readouterr().err
    assert err.count("already done, skipped") == 8
    assert (demo_dir / "summary.json").read_text() == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["demo", "--small", "--out", str(foreign)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A private copy of the shipped demo data that ``atomtwin.data.path`` returns."""
    import shutil

    import atomtwin.data as data

    root = tmp_path / "shipped"
    shutil.copytree(data.path("demo"), root / "demo")
    shutil.copy(data.path("SHA256SUMS"), root / "SHA256SUMS")
    monkeypatch.setattr(data, "path", lambda *parts: root.joinpath(*parts))
    return root


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_demo_uses_shipped_model_and_refuses_a_changed_one(shipped_copy, tmp_path, capsys):
    model = shipped_copy / "demo" / "model.ckpt"
    ok = tmp_path / "ok"
    assert main(["demo", "--small", "--out", str(ok), "--until", "model"]) == 0
    assert (ok / "model" / "best.ckpt").read_bytes() == model.read_bytes()
    assert not (ok / "model" / "metrics.csv").exists()  # nothing was trained
    capsys.readouterr()
    # one flipped bit: refused before anything is written, with the fix named
    blob = bytearray(model.read_bytes())
    blob[len(blob) // 2] ^= 1
    model.write_bytes(bytes(blob))
    bad = tmp_path / "bad"
    assert main(["demo", "--small", "--out", str(bad), "--until", "model"]) == 2
    line = _one_line_error(capsys)
    assert "SHA-256" in line and "--retrain" in line, line
    assert not bad.exists()
    # missing
    model.unlink()
    assert main(["demo", "--small", "--out", str(bad), "--until", "model"]) == 2
    line = _one_line_error(capsys)
    assert "missing" in line and "--retrain" in line, line
    assert not bad.exists()


def test_demo_refuses_a_shipped_model_whose_metadata_do_not_fit(shipped_copy, tmp_path, capsys):
    from atomtwin.data import sha256
    from atomtwin.engines.mlip import ModelConfig, build_model
    from atomtwin.engines.mlip.model import save_model

    model = shipped_copy / "demo" / "model.ckpt"
    cu = build_model(ModelConfig(species=("Cu",), r_max=3.0, num_layers=1, lmax=1, mul=2, num_basis=4,
                                 radial_hidden=8, radial_layers=1))
    save_model(model, cu)
    manifest = shipped_copy / "SHA256SUMS"  # the hash is right: only the metadata are wrong
    manifest.write_text("".join(f"{sha256(model)}  demo/model.ckpt\n" if "demo/model.ckpt" in line
                                else line + "\n" for line in manifest.read_text().splitlines()))
    assert main(["demo", "--small", "--out", str(tmp_path / "o"), "--until", "model"]) == 2
    line = _one_line_error(capsys)
    assert "['Cu']" in line and "r_max 3.0" in line and "--retrain" in line, line


def test_demo_retrain_is_explicit_and_epoch_bounded(tmp_path, capsys):
    import csv
    from dataclasses import replace

    from atomtwin.engines.studies.demo import DemoConfig, run_demo
    from atomtwin.toolkit.errors import InputError

    cfg = replace(DemoConfig.small(), ref_temperatures=(1250.0,), ref_steps=20, ref_every=10,
                  train_epochs=2)
    out = tmp_path / "re"
    stages = run_demo(out, retrain=True, config=cfg, until="model", progress=False)["stages"]
    assert stages["reference"]["frames"] == 2
    rows = list(csv.DictReader(open(out / "model" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # exactly train_epochs epochs
    assert stages["model"]["stopped"] == "max_epochs"
    # continuing that folder without --retrain would mix two models: refused, fix named
    capsys.readouterr()
    with pytest.raises(InputError, match="retrain") as err:
        run_demo(out, config=cfg, progress=False)
    assert "--force" in str(err.value)
