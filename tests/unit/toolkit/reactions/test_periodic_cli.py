"""Bonds across periodic boundaries (triclinic, thinner than the cutoff), the bond graph
against a brute-force search over images, the ``atomtwin reactions`` command and
``ds.atoms`` access."""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
import pytest
from atomtwin.toolkit.reactions import bond_cutoffs, bond_graph, reactions
from atomtwin.toolkit.schema import make_dataset

TRICLINIC = np.array([[12.6, 0.0, 0.0], [3.5, 11.9, 0.0], [2.1, -2.8, 11.2]])


def _brute_bonds(pos, cell, cut, species):
    """Pairs (i < j) closer than the middle of the band (r_form + r_break) / 2 (the rule of a
    frame without history) over every image in -2..2 of each lattice vector."""
    sp = list(cut.species)
    out = set()
    shifts = np.array(list(itertools.product(range(-2, 3), repeat=3))) @ cell
    for i, j in itertools.combinations(range(len(pos)), 2):
        a, b = sp.index(species[i]), sp.index(species[j])
        r = 0.5 * (cut.r_form[a, b] + cut.r_break[a, b])
        d = np.linalg.norm(pos[j] - pos[i] + shifts, axis=1).min()
        if d < r:
            out.add((i, j))
    return out


def test_bonds_across_a_triclinic_boundary_match_brute_force(rng):
    # PS4 units and S2 dimers centred on the faces and corner of the cell, then wrapped: most
    # bonds cross a face.  Centres are >= 5.7 Å apart, so units cannot touch (3.4 Å > r_break)
    frac_centres = np.array([[0.02, 0.03, 0.01], [0.5, 0.98, 0.5], [0.5, 0.5, 0.02]])
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    pos, sp = [], []
    for c in frac_centres @ TRICLINIC:
        pos += [c, *(c + tet)]
        sp += ["P", "S", "S", "S", "S"]
    for c in np.array([[0.98, 0.5, 0.5], [0.5, 0.02, 0.02]]) @ TRICLINIC:
        pos += [c - [1.02, 0, 0], c + [1.02, 0, 0]]
        sp += ["S", "S"]
    pos = np.array(pos)
    frames = pos[None] + rng.normal(0, 0.04, (6, len(sp), 3))
    frac = np.linalg.solve(TRICLINIC.T, frames.reshape(-1, 3).T).T % 1.0
    frames = (frac @ TRICLINIC).reshape(frames.shape)
    ds = make_dataset(frames, sp, cell=TRICLINIC, time=np.arange(6) * 0.01)
    cut = bond_cutoffs(["P", "S"])
    for f in range(6):
        g = bond_graph(ds, frame=f)
        ours = set(zip(g["i"].values.tolist(), g["j"].values.tolist(), strict=True))
        assert ours == _brute_bonds(frames[f], TRICLINIC, cut, sp)
        raw = np.linalg.norm(frames[f][g["j"].values] - frames[f][g["i"].values], axis=1)
        assert (raw > 5.0).sum() >= 6  # bonds that exist only through a periodic image
    r = reactions(ds)
    assert r.events.sizes["event"] == 0
    s = r.species.isel(frame=-1)
    assert int(s.sel(formula="PS4")) == 3 and int(s.sel(formula="S2")) == 2
    assert r.species.sizes["formula"] == 2


def test_cell_thinner_than_the_cutoff_counts_a_pair_once():
    # an S chain along a 2.1 Å-long cell axis: each atom meets its own images (ignored) and,
    # in a 2-atom cell, the other atom through two images (one bond, not two)
    cell = np.diag([4.1, 12.0, 12.0])
    pos = np.array([[[0.0, 6, 6], [2.05, 6, 6]]])
    ds = make_dataset(pos, ["S", "S"], cell=cell, time=[0.0])
    g = bond_graph(ds)
    assert g.sizes["bond"] == 1 and float(g["distance"][0]) == pytest.approx(2.05)
    assert reactions(ds).species.sel(formula="S2").item() == 1


def test_isolated_cluster_without_cell_and_accessor():
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    pos = np.concatenate([[[0, 0, 0]], tet, [[0, 0, 3.0]], [[0, 0, 5.5]]])  # PS4, Li, Cl
    ds = make_dataset(np.stack([pos, pos]), ["P", "S", "S", "S", "S", "Li", "Cl"], time=[0, 0.1])
    sc = ds.atoms.species_counts()
    assert dict(zip(sc["formula"].values, sc.isel(frame=0).values.tolist(), strict=True)) == {
        "PS4": 1,
        "Li": 1,
        "Cl": 1,
    }
    # Li bonds to S and Cl (coordination), yet does not join PS4 and Cl into one species
    c = ds.atoms.reactions().coordination.isel(frame=0)
    assert int(c.sel(centre="Cl", neighbour="Li", cn=1)) == 1
    assert ds.atoms.bond_events().sizes["event"] == 0
    assert ds.atoms.bond_graph().sizes["bond"] == 4 + 1 + 2  # P-S, Li-Cl, two Li-S within 2.68 Å


def _cli(argv, capsys):
    """Run ``atomtwin reactions ...`` through the CLI's own conventions (run_command)."""
    from atomtwin.toolkit.cli import ArgumentParser, _Registry, run_command
    from atomtwin.toolkit.reactions.cli import register

    parser = ArgumentParser(prog="atomtwin")
    reg = _Registry(parser.add_subparsers(dest="command"))
    register(reg)
    reg.add_common_options()
    args = parser.parse_args(["reactions", *argv])
    code = run_command("reactions", args.func, args)
    return code, capsys.readouterr()


@pytest.fixture
def dimer_file(tmp_path, rng):
    nf = 40
    d = np.r_[np.full(20, 2.05), np.linspace(2.05, 4.0, 20)] + rng.normal(0, 0.02, nf)
    pos = np.zeros((nf, 4, 3))
    pos[:, 1, 0] = d
    pos[:, 2:, :] = [[10, 0, 0], [12.05, 0, 0]]
    path = tmp_path / "dimers.nc"
    make_dataset(pos, ["S"] * 4, time=np.arange(nf) * 0.01).atoms.write(path)
    return path


def test_cli_summary_json_and_netcdf(dimer_file, capsys, tmp_path):
    code, out = _cli([str(dimer_file), "--no-progress"], capsys)
    assert code == 0
    assert "S2" in out.out and "S-S break" in out.out
    code, out = _cli(
        [str(dimer_file), "--json", "--no-progress", "--out", str(tmp_path / "r.nc")], capsys
    )
    res = json.loads(out.out)
    assert res["events"]["S-S break"]["n_events"] == 1
    assert res["species"]["S2"] == {**res["species"]["S2"], "first": 2, "last": 1}
    import xarray as xr

    with xr.open_dataset(tmp_path / "r.nc", engine="h5netcdf") as saved:
        assert int(saved["rate_n_events"].sel(pair="S-S", kind="break")) == 1


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--cutoff", "S-N=2"], "'N'"),
        (["--cutoff", "S-S=-1"], "positive"),
        (["--cutoff", "S-S=2.4:2.0"], "r_break"),
        (["--pairs", "S-Li"], "'Li'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(dimer_file, capsys, flags, words):
    code, out = _cli([str(dimer_file), "--no-progress", *flags], capsys)
    assert code == 2
    line = out.err.strip()
    assert "\n" not in line and line.startswith("atomtwin reactions: error:")
    assert words in line and "Fix:" in line


def test_register_follows_the_cli_pattern():
    from atomtwin.toolkit.cli import TOOLKIT_COMMANDS

    assert "atomtwin.toolkit.reactions.cli" in TOOLKIT_COMMANDS
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    from atomtwin.toolkit.reactions.cli import register

    register(sub)
    args = p.parse_args(["reactions", "x.nc", "--cutoff", "P-S=2.4", "--json"])
    assert args.cutoff == "P-S=2.4" and args.json


def test_thiophosphate_species_and_li_contacts():
    # PS4, P2S7 (two PS4 sharing one S), an S-S pair, an isolated S, Cl; Li touching S and Cl
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    pos, sp = [[0, 0, 0], *tet], ["P"] + ["S"] * 4
    p1, p2 = np.array([10.0, 0, 0]), np.array([14.1, 0, 0])
    bridge = (p1 + p2) / 2  # P-S-P linear, 2.05 Å each side
    pos += [p1, p2, bridge, *(p1 + tet[1:] * [-1, 1, 1]), *(p2 - tet[1:] * [-1, 1, 1])]
    sp += ["P", "P"] + ["S"] * 7
    pos += [[0, 10, 0], [2.05, 10, 0], [0, 20, 0], [10, 20, 0], [11.7, 21.7, 0], [-1.9, 18.5, 0]]
    sp += ["S", "S", "S", "Cl", "Li", "Li"]
    ds = make_dataset(np.array([pos, pos]), sp, time=[0.0, 0.1])
    r = reactions(ds)
    got = {
        str(k): int(v)
        for k, v in zip(r.species["formula"].values, r.species.isel(frame=0).values, strict=True)
    }
    assert got == {"PS4": 1, "P2S7": 1, "S2": 1, "S": 1, "Cl": 1, "Li": 2}
    m = r.mean_coordination().isel(frame=0)
    assert (
        float(m.sel(centre="Cl", neighbour="Li")) == 1.0
    )  # Li-Cl 2.40 Å (LiCl: 2.57 Å), inside r_form 2.65 Å
    assert float(m.sel(centre="P", neighbour="S")) == 4.0
    # S by Li: the isolated S has one Li at 2.42 Å, the other 13 S (4 + 7 + 2) none
    assert float(m.sel(centre="S", neighbour="Li")) == pytest.approx(1 / 14)
    res = r.summary()
    assert res["coordination"]["Cl by Li"] == {"first": 1.0, "last": 1.0}


def test_contact_events_can_be_left_out():
    # a Li hopping from one S2 dimer to another: two Li-S contacts break and two form, no
    # covalent bond changes
    nf = 30
    x = np.r_[np.full(10, 0.0), np.linspace(0.0, 6.0, 10), np.full(10, 6.0)]
    pos = np.zeros((nf, 5, 3))
    pos[:, 0] = [0, -1.025, 0]
    pos[:, 1] = [0, 1.025, 0]
    pos[:, 2] = [6, -1.025, 0]
    pos[:, 3] = [6, 1.025, 0]
    pos[:, 4, 0], pos[:, 4, 2] = x, 2.0  # Li 2.25 Å from both S of the dimer it sits on
    ds = make_dataset(pos, ["S", "S", "S", "S", "Li"], time=np.arange(nf) * 0.01)
    r = reactions(ds)
    assert sorted(zip(r.events["pair"].values, r.events["kind"].values, strict=True)) == [
        ("Li-S", "break"),
        ("Li-S", "break"),
        ("Li-S", "form"),
        ("Li-S", "form"),
    ]
    assert r.reactions.sizes["reaction"] == 0  # Li joins no species
    assert r.summary()["events"]["Li-S form"]["covalent"] is False
    q = reactions(ds, contact_events=False)
    assert q.events.sizes["event"] == 0
    assert list(q.rates()["pair"].values) == ["S-S"]


def test_atomtwin_main_reactions(dimer_file, capsys):
    from atomtwin.toolkit.cli import main

    assert main(["reactions", str(dimer_file), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["events"]["S-S break"]["n_events"] == 1
    assert main(["reactions", str(dimer_file), "--cutoff", "S-S=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "positive" in err and "Fix:" in err
