"""``atomtwin demo --small``: the Li | Li6PS5Cl study end to end (structure -> shipped model
-> MD -> NVE -> CHGNet check -> analysis -> report), checked on its physical outputs, its
resume and its refusal of a foreign output folder.

The model is the shipped ``li_argyrodite/model.ckpt``; ``ATOMTWIN_DEMO_MODEL`` names another
model file (a development model before the shipped one exists).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from atomtwin.toolkit.cli import main


def _model_args() -> list[str]:
    alt = os.environ.get("ATOMTWIN_DEMO_MODEL")
    if alt:
        return ["--model", alt]
    import atomtwin.data as data

    if not data.path("li_argyrodite", "model.ckpt").exists():
        pytest.skip("the shipped li_argyrodite/model.ckpt is not there (set ATOMTWIN_DEMO_MODEL)")
    return []


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    pytest.importorskip("chgnet")  # the check stage compares with CHGNet
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "--small", "--out", str(out), "--json", *_model_args()]) == 0
    return out


def _summary(demo_dir) -> dict:
    return json.loads((demo_dir / "summary.json").read_text())


@pytest.mark.slow
def test_model_matches_chgnet_on_its_own_trajectory_and_conserves_energy(demo_dir):
    s = _summary(demo_dir)
    c = s["check"]
    # Forces on the model's own (reacting) trajectory: MAE below 35 % of CHGNet's mean
    # |F| per component.  A model that learned nothing sits at ~100 % (it predicts ~0 or
    # noise of the same size); the shipped model's validation MAE on held-out CHGNet frames
    # of the reacting contact is ~20 % of the mean |F| at 400 K, and its own trajectory
    # visits configurations near those (same temperature, same start), so 35 % allows for
    # the extrapolation into the configurations only the model visited without letting a
    # broken model through.
    assert c["force_mae_percent_of_mean"] < 35, c
    # energies after a constant offset: within 15 meV/atom, far below the reaction energy
    # (CHGNet: 230 meV/atom released as PS4 is reduced)
    assert c["energy_mae_meV_per_atom"] < 15, c
    # NVE at the production step (1 fs): the drift of the total energy below 1 meV/atom/ps,
    # ~3 % of kT at 400 K per ps; an inconsistent force/energy pair or a too long step for
    # Li drifts by meV/atom within the 0.12 ps of the small run
    n = s["nve"]
    assert abs(n["drift_meV_per_atom_per_ps"]) < 1.0, n


@pytest.mark.slow
def test_interphase_grows_at_the_contacts_while_the_bulks_stay_matched(demo_dir):
    import xarray as xr

    res = xr.open_dataset(demo_dir / "results.nc", engine="h5netcdf").load()
    s = _summary(demo_dir)
    phases = [c["phase"] for c in s["clusters"]]
    # both bulks are recognised as their reference crystal
    assert {"Li", "Li6PS5Cl"} <= set(phases), phases
    # atoms that start in a bulk region keep their bulk's match: bcc Li for the metal beyond
    # the interface region, Li6PS5Cl for the electrolyte beyond the PS4 layer facing the
    # metal (P within contact_layer of the contact, its S up to ~1 Å further).  Compared over
    # (frame, atom) pairs, second half against the first tenth of the run: at least 90 % of
    # the start's match (thermal motion moves a few environments across cluster boundaries;
    # a bulk that reacted or melted loses most of it: the contact layer loses 3 of its 4 PS4
    # in this run), and at least 70 % absolute (the argyrodite's free S2- are Li2S-like from
    # the start, ~8 % of its atoms)
    lab = res["labels"].values
    cphase = np.asarray(res["cluster_phase"].values).astype(str)
    s0 = res["signed_distance_start"].values
    w = float(res.attrs["region_width_A"])
    layer = s["contact_layer_A"] + 1.0
    nf = lab.shape[0]

    def phases(sl):
        h = lab[sl]
        return np.where(h >= 0, cphase[np.clip(h, 0, None)], "new")

    start, late = phases(slice(0, max(1, nf // 10))), phases(slice(nf // 2, None))
    for name, sel in (("Li", s0 < -w), ("Li6PS5Cl", s0 > layer)):
        assert sel.sum() >= 10, (name, sel.sum())
        f0, f1 = np.mean(start[:, sel] == name), np.mean(late[:, sel] == name)
        assert f1 >= 0.9 * f0 and f1 > 0.7, (name, f0, f1)
    # the interphase grows at the contacts: its environments (a product phase, unmatched, or
    # the other bulk's than the atom started in) gain at least 2 atoms from the first fifth of the run to the last fifth, most atoms
    # that join it start within the contact layer, and the deep bulks are rarely in it.  At
    # this size and time (1 ps, 4 of 32 P-S bonds broken) the products are intermediates --
    # reduced P still holding 2-3 S -- which no reference claims; S2- reduced out of PS4
    # (among ~6.5 Li) matches the argyrodite's own free S2- site (5.9 Li within 3 Å) rather
    # than Li2S (8.0), so no matched Li2S / Li3P / LiCl is required here.
    inter = res["in_interphase"].values.astype(bool)
    k = max(1, nf // 5)
    gain = inter[-k:].sum(1).mean() - inter[:k].sum(1).mean()
    assert gain >= 2.0, gain
    joined = np.flatnonzero(inter[-1] & ~inter[0])
    assert joined.size >= 2 and np.mean(np.abs(s0[joined]) <= layer) > 0.5, s0[joined]
    deep = (s0 < -w) | (s0 > layer)
    assert inter[nf // 2 :, deep].mean() < 0.05, inter[nf // 2 :, deep].mean()


@pytest.mark.slow
def test_reaction_counts_agree_with_coordination(demo_dir):
    import xarray as xr

    res = xr.open_dataset(demo_dir / "results.nc", engine="h5netcdf").load()
    # the bond count of the reactions module equals the sum of P's coordination by S, frame
    # by frame (two views of one bond graph: exact)
    np.testing.assert_array_equal(res["ps_bonds"].values, res["ps_bonds_from_cn"].values)
    n_p = res["species"].values.tolist().count("P")
    np.testing.assert_allclose(res["cn_P_S"].values * n_p, res["ps_bonds"].values, atol=1e-9)
    # a PS4 unit is a P with 4 S (no S-S bonds in this system), so PS4 <= P with CN 4
    assert np.all(res["n_PS4"].values <= res["n_PS4_bulk"].values + res["n_PS4_contact"].values)
    # isolated S (a species of one S) are S bonded to no P
    assert np.all(res["n_S_isolated"].values <= res["n_S_without_P"].values)
    # the reaction reduces P: fewer P-S bonds and more Li around P at the end than at the start
    assert res["ps_bonds"].values[-1] < res["ps_bonds"].values[0]
    assert res["cn_P_Li"].values[-1] > res["cn_P_Li"].values[0]
    s = _summary(demo_dir)
    brk = s["reactions"]["ps_break"]["n_events"]
    frm = (s["reactions"]["ps_form"] or {}).get("n_events", 0)
    # every P-S bond lost was one break event more than formations
    assert brk - frm == res["ps_bonds"].values[0] - res["ps_bonds"].values[-1]


NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])")


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield float(x)


@pytest.mark.slow
def test_report_names_every_number_it_prints(demo_dir):
    """Every number in the report's findings is a value of summary.json at the printed
    precision, and the report and the terminal summary state the same findings."""
    from atomtwin.engines.studies.li_argyrodite.report import findings

    s = _summary(demo_dir)
    values = np.array(list(_leaves(s)))
    text = findings(s)
    md = (demo_dir / "report.md").read_text()
    for sentence in text:
        assert sentence in md
        for tok in NUMBER.findall(sentence.replace("−", "-")):
            digits = len(tok.split(".")[1]) if "." in tok else 0
            tol = 0.5 * 10.0**-digits * 1.0001
            assert np.any(np.abs(np.abs(values) - abs(float(tok))) <= tol), (tok, sentence)
    for name in (
        "fig_phase_fractions",
        "fig_phase_profiles",
        "fig_interphase_growth",
        "fig_reactions",
        "fig_coordination",
        "fig_li_mobility",
        "fig_model_vs_chgnet",
        "fig_nve_energy",
    ):
        for ext in ("png", "pdf"):
            assert (demo_dir / f"{name}.{ext}").stat().st_size > 1000, name
        assert f"({name}.png)" in md


@pytest.mark.slow
def test_demo_resumes_and_refuses_foreign_folder(demo_dir, tmp_path, capsys):
    before = (demo_dir / "summary.json").read_text()
    capsys.readouterr()
    assert main(["demo", "--small", "--out", str(demo_dir), *_model_args()]) == 0
    err = capsys.readouterr().err
    assert err.count("already done, skipped") == 7
    assert (demo_dir / "summary.json").read_text() == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["demo", "--small", "--out", str(foreign), *_model_args()]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"
    # another model for the same folder would mix two runs: refused, fix named
    other = ["--model", str(demo_dir / "model" / "model.ckpt")]
    assert main(["demo", "--small", "--out", str(demo_dir), *other]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A private copy of the shipped li_argyrodite model that ``atomtwin.data.path`` returns."""
    import shutil

    import atomtwin.data as data

    if not data.path("li_argyrodite", "model.ckpt").exists():
        pytest.skip("the shipped li_argyrodite/model.ckpt is not there yet")
    root = tmp_path / "shipped"
    (root / "li_argyrodite").mkdir(parents=True)
    shutil.copy(data.path("li_argyrodite", "model.ckpt"), root / "li_argyrodite" / "model.ckpt")
    shutil.copy(data.path("SHA256SUMS"), root / "SHA256SUMS")
    monkeypatch.setattr(data, "path", lambda *parts: root.joinpath(*parts))
    return root


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_demo_uses_shipped_model_and_refuses_a_changed_one(shipped_copy, tmp_path, capsys):
    model = shipped_copy / "li_argyrodite" / "model.ckpt"
    ok = tmp_path / "ok"
    assert main(["demo", "--small", "--out", str(ok), "--until", "model"]) == 0
    assert (ok / "model" / "model.ckpt").read_bytes() == model.read_bytes()
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


def test_demo_refuses_a_model_for_other_species(tmp_path, capsys):
    from atomtwin.engines.mlip import ModelConfig, build_model
    from atomtwin.engines.mlip.model import save_model

    cu = build_model(
        ModelConfig(
            species=("Cu",),
            r_max=3.0,
            num_layers=1,
            lmax=1,
            mul=2,
            num_basis=4,
            radial_hidden=8,
            radial_layers=1,
        )
    )
    path = tmp_path / "cu.ckpt"
    save_model(path, cu)
    assert (
        main(
            [
                "demo",
                "--small",
                "--out",
                str(tmp_path / "o"),
                "--until",
                "model",
                "--model",
                str(path),
            ]
        )
        == 2
    )
    line = _one_line_error(capsys)
    assert "['Cu']" in line and "['Cl', 'Li', 'P', 'S']" in line, line
    assert not (tmp_path / "o").exists()


def test_demo_structure_stage_builds_the_sandwich(tmp_path):
    """The structure stage alone: the 158-atom test sandwich with its regions."""
    from ase.io import read
    from atomtwin.engines.studies.demo import run_demo
    from atomtwin.engines.studies.li_argyrodite.study import contact_planes, signed_distance

    model = os.environ.get("ATOMTWIN_DEMO_MODEL")
    stages = (
        run_demo(tmp_path / "s", small=True, until="structure", progress=False, model=model)[
            "stages"
        ]
        if model
        else None
    )
    if stages is None:
        import atomtwin.data as data

        if not data.path("li_argyrodite", "model.ckpt").exists():
            pytest.skip("no model to start the demo with")
        stages = run_demo(tmp_path / "s", small=True, until="structure", progress=False)["stages"]
    assert stages["structure"]["atoms"] == 158
    a = read(tmp_path / "s" / "structure.extxyz")
    region = a.arrays["region"]
    assert (region == 0).sum() == 54 and (region == 1).sum() == 104
    planes = contact_planes(a.positions[:, 2], region, a.cell[2, 2])
    s = signed_distance(a.positions[:, 2], planes, a.cell[2, 2])
    # metal atoms on the negative side, electrolyte atoms on the positive side, and the
    # closest atoms half a gap (1.25 Å) from the contact plane
    assert np.all(s[region == 0] < 0) and np.all(s[region == 1] > 0)
    np.testing.assert_allclose(np.abs(s).min(), 1.25, atol=1e-6)


def test_demo_retrain_runs_active_learning_and_keeps_its_folder_apart(tmp_path, capsys):
    """``--retrain`` (small) learns a model against CHGNet inside the run; continuing that
    folder with the shipped model (or another) would mix two models and is refused."""
    pytest.importorskip("chgnet")
    out = tmp_path / "re"
    assert (
        main(["demo", "--small", "--retrain", "--until", "model", "--out", str(out), "--json"]) == 0
    )
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert stages["model"]["source"].startswith("--retrain")
    assert stages["model"]["species"] == ["Cl", "Li", "P", "S"]
    assert (out / "model" / "model.ckpt").stat().st_size > 1000
    assert main(["demo", "--small", "--until", "model", "--out", str(out), *_model_args()]) == 2
    err = capsys.readouterr().err
    assert "retrain" in err and "--force" in err, err
