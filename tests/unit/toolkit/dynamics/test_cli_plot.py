"""CLI commands give the API's numbers; bad input exits 2 with a message; figures carry
the data they are given."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atomtwin.toolkit.cli import main
from atomtwin.toolkit.dynamics import arrhenius, diffusion, hydrogen_bonds, msd
from atomtwin.toolkit.io import write
from atomtwin.toolkit.schema import make_dataset


@pytest.fixture
def traj(tmp_path):
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (150, 10, 3)), axis=0)
    ds = make_dataset(np.mod(x, 10.0), ["Li"] * 6 + ["O"] * 2 + ["H"] * 2, cell=np.eye(3) * 10.0,
                      time=np.arange(150) * 0.1)
    return ds, write(ds, tmp_path / "t.nc")


def test_diffusion_cli_json_equals_api(traj, capsys, tmp_path):
    ds, path = traj
    assert main(["diffusion", str(path), "--species", "Li", "--axes", "xy", "--json",
                 "--plot", str(tmp_path / "m.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = diffusion(ds, "Li", axes="xy")
    assert out["Li"]["D"] == pytest.approx(float(ref.D), rel=1e-12)
    assert out["Li"]["D_err"] == pytest.approx(float(ref.D_err), rel=1e-12)
    assert (tmp_path / "m.png").stat().st_size > 0


def test_cli_bad_species_exits_2(traj, capsys):
    _, path = traj
    assert main(["diffusion", str(path), "--species", "Na"]) == 2
    assert "'Na' is not in the trajectory" in capsys.readouterr().err


def test_hbonds_cli_counts(traj, capsys):
    ds, path = traj
    assert main(["hbonds", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == hydrogen_bonds(ds)["count"].values.tolist()


def test_figures_carry_their_data(traj):
    from atomtwin.toolkit.plot.dynamics import plot_arrhenius, plot_msd

    ds, _ = traj
    m = msd(ds, "Li")
    fig, ax = plot_msd(m, fit=diffusion(ds, "Li"))
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), m.values)
    T = np.array([300.0, 400.0, 500.0])
    r = arrhenius(T, [1e-3, 1e-2, 4e-2], [1e-4, 1e-3, 4e-3])
    fig, ax = plot_arrhenius(r)
    np.testing.assert_allclose(ax.lines[-1].get_xdata(), 1000 / T)


def test_every_other_figure_carries_its_data(traj):
    import xarray as xr
    from atomtwin.toolkit.dynamics import (
        conductivity,
        event_cross_correlation,
        hbond_lifetime,
        van_hove_self,
    )
    from atomtwin.toolkit.plot import dynamics as P

    ds, _ = traj
    g = van_hove_self(ds, "Li", [0.5, 2.0], r_max=5.0, n_bins=40)
    _, ax = P.plot_van_hove(g)
    r = g["r"].values
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 4 * np.pi * r**2 * g.isel(lag=1).values)

    t = np.arange(100) * 0.1
    c = xr.DataArray(np.stack([np.exp(-t / 2.0), np.exp(-t / 0.7)]), dims=("l", "lag"),
                     coords={"l": [1, 2], "lag": t})
    fit = xr.Dataset({"tau": ((), 2.0), "beta": ((), 0.8)})
    _, ax = P.plot_orientational_correlation(c, fits={1: fit})
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), c.sel(l=1).values)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), np.exp(-((t / 2.0) ** 0.8)))  # the fitted curve

    rt = xr.DataArray(np.random.default_rng(1).exponential(2.0, 500), dims="visit")
    _, ax = P.plot_residence_times(rt, bins=20)
    assert sum(p.get_height() for p in ax.patches) == 500  # every visit in one bar

    ev = xr.Dataset({"time": ("event", [0.5, 1.0, 3.0]), "group": ("event", [2, 0, 2])})
    _, ax = P.plot_events(ev)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0.5, 1.0, 3.0])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [2, 0, 2])

    hb = hydrogen_bonds(ds, d_da=3.5, angle=90.0, d_dh=3.0)  # loose criteria: random walkers form some
    assert hb.sizes["bond"] > 5
    _, ax = P.plot_hbond_counts(hb)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), hb["count"].values)
    lt = hbond_lifetime(hb)
    _, ax = P.plot_hbond_lifetime(lt)
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), lt["continuous"].values)

    cc = event_cross_correlation([1.0, 5.0], [0, 1], [1.2, 9.0], [0, 1], [0.5, 1.0], duration=10.0,
                                 n_shuffles=20, seed=0)
    _, ax = P.plot_event_correlation(cc)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), cc["p_observed"].values)

    cond = conductivity(ds, {"Li": 1.0}, 300.0)
    _, ax = P.plot_charge_msd(cond)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), cond["charge_msd"].values)
    assert f"{float(cond.sigma):.3g}" in ax.get_title()


def test_rotations_cli_separates_mechanisms_by_bonds_moved(tmp_path, capsys):
    # 12 rigid PO4 groups; each makes one C3 (+-120° about a P-O bond: 3 bonds move) and
    # one C2 (180° about x, y or z: all 4 move) at known, well separated frames
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(9)
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    ng, F = 12, 300
    R = Rotation.random(ng, random_state=3).as_matrix()
    centres = np.array([[i % 4, i // 4, 0] for i in range(ng)], float) * 6.0 + 3.0
    pos = np.empty((F, 5 * ng, 3))
    for f in range(F):
        for g in range(ng):
            if f == 60 + 10 * g:
                R[g] = R[g] @ Rotation.from_rotvec(tet[g % 4] * 2 * np.pi / 3).as_matrix()
            if f == 200 + 5 * g:
                R[g] = R[g] @ Rotation.from_rotvec(np.eye(3)[g % 3] * np.pi).as_matrix()
        bonds = np.einsum("gij,vj->gvi", R, tet) * 1.54 + rng.normal(0, 0.02, (ng, 4, 3))
        pos[f] = np.concatenate([centres, (centres[:, None] + bonds).reshape(-1, 3)])
    ds = make_dataset(pos, ["P"] * ng + ["O"] * (4 * ng), cell=np.eye(3) * 24.0, time=np.arange(F) * 0.05)
    path = write(ds, tmp_path / "rot.nc")
    assert main(["rotations", str(path), "--centre", "P", "--ligand", "O", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by = out["reorientation"]["by_n_bonds"]
    assert set(by) == {"3", "4"} and by["3"]["n_events"] == ng and by["4"]["n_events"] == ng
    assert out["reorientation"]["n_events"] == 2 * ng
