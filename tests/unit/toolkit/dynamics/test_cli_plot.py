"""CLI commands give the API's numbers; bad input exits 2 with a message; figures carry
the data they are given."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.dynamics import arrhenius, diffusion, hydrogen_bonds, msd
from toolkit.io import write
from toolkit.schema import make_dataset


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
    from toolkit.plot.dynamics import plot_arrhenius, plot_msd

    ds, _ = traj
    m = msd(ds, "Li")
    fig, ax = plot_msd(m, fit=diffusion(ds, "Li"))
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), m.values)
    T = np.array([300.0, 400.0, 500.0])
    r = arrhenius(T, [1e-3, 1e-2, 4e-2], [1e-4, 1e-3, 4e-3])
    fig, ax = plot_arrhenius(r)
    np.testing.assert_allclose(ax.lines[-1].get_xdata(), 1000 / T)
