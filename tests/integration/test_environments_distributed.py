"""Distributed run equals the serial one; the CLI end to end; figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atomtwin.toolkit.environments import SOAP, EnvironmentClassifier
from synthetic_cells import li_li2s_cell


def test_local_cluster_same_labels():
    import dask
    from distributed import Client, LocalCluster

    ds, _ = li_li2s_cell(n_frames=4, seed=8, thickness=12.0)
    clf = EnvironmentClassifier(
        SOAP(r_cut=4.0, n_max=4, l_max=4), method="gmm", seed=1, chunk_frames=1
    ).fit(ds)
    with dask.config.set(scheduler="synchronous"):
        serial = clf.predict(ds).values
    # in-process workers (processes=False): pytest has no __main__ guard for spawned
    # processes; the benchmark script runs the same code on a process-based cluster
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        dist = clf.predict(ds).values
    np.testing.assert_array_equal(serial, dist)


def test_local_cluster_hdbscan_cache(tmp_path):
    """HDBSCAN labels on 2 workers equal the serial ones; the workers fill the cache."""
    import dask
    from distributed import Client, LocalCluster

    ds, _ = li_li2s_cell(n_frames=3, seed=12, thickness=12.0)
    clf = EnvironmentClassifier(
        SOAP(r_cut=4.0, n_max=4, l_max=4),
        method="hdbscan",
        seed=1,
        n_fit=800,
        min_cluster_size=10,
        chunk_frames=1,
        cache=tmp_path,
    ).fit(ds)
    with dask.config.set(scheduler="synchronous"):
        serial = clf.predict(ds).values
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        dist = clf.predict(ds).values
    np.testing.assert_array_equal(serial, dist)
    assert len(list(tmp_path.glob("*.npy"))) == 3  # one cached chunk per frame


def test_cli_end_to_end(tmp_path, capsys):
    import ase.io
    import xarray as xr
    from ase.build import bulk
    from atomtwin.toolkit.cli import main

    ds, _ = li_li2s_cell(n_frames=2, seed=9, thickness=12.0)
    ds.atoms.write(tmp_path / "traj.nc")
    refs = [bulk("Li", "bcc", a=3.44, cubic=True), bulk("SLi2", "fluorite", a=5.72, cubic=True)]
    refs[0].info["name"], refs[1].info["name"] = "Li", "Li2S"
    ase.io.write(tmp_path / "refs.xyz", refs, format="extxyz")
    base = [
        "environments",
        str(tmp_path / "traj.nc"),
        "--species",
        "Li",
        "S",
        "--r-cut",
        "4.0",
        "--references",
        str(tmp_path / "refs.xyz"),
    ]
    rc = main(
        [
            *base,
            "--axis",
            "z",
            "--out",
            str(tmp_path / "labels.nc"),
            "--cache",
            str(tmp_path / "cache"),
            "--json",
        ]
    )
    assert rc == 0
    assert len(list((tmp_path / "cache").glob("*.npy"))) >= 1  # descriptors kept for reuse
    out = json.loads(capsys.readouterr().out)
    matched = {p["nearest_reference"] for p in out["phases"] if not p["is_new"]}
    assert {"Li:Li", "Li2S:Li", "Li2S:S"} <= matched
    res = xr.open_dataset(tmp_path / "labels.nc", engine="h5netcdf")
    assert res["labels"].shape == (2, ds.sizes["atom"])
    np.testing.assert_allclose(res["fraction"].sum("cluster"), 1.0)
    assert main(["environments", str(tmp_path / "traj.nc"), "--species", "Cl"]) == 2
    # sites: each reference here has one kind of each species -- bcc Li (a = 3.44 Å: 8 Li at
    # 2.98 Å), antifluorite Li2S (a = 5.72 Å: Li with 4 S at 2.48 Å and 6 Li at 2.86 Å; S
    # with 8 Li) -- so the site names carry those counts within 3 Å and the same clusters
    # are matched
    rc = main([*base, "--site-species", "Li,S", "--json"])
    assert rc == 0
    sited = json.loads(capsys.readouterr().out)
    matched_sites = {p["nearest_reference"] for p in sited["phases"] if not p["is_new"]}
    assert {"Li[Li8 S0]:Li", "Li2S[Li6 S4]:Li", "Li2S[Li8 S0]:S"} <= matched_sites
    assert main(["environments", str(tmp_path / "traj.nc"), "--site-species", "S"]) == 2


def test_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from atomtwin.toolkit.environments import phase_fractions, spatial_profiles
    from atomtwin.toolkit.plot.environments import (
        plot_phase_fractions,
        plot_profile_heatmap,
        plot_reduced_map,
    )
    from atomtwin.toolkit.plot.style import save

    ds, _ = li_li2s_cell(n_frames=2, seed=10, thickness=12.0)
    clf = EnvironmentClassifier(SOAP(r_cut=4.0, n_max=4, l_max=4), method="kmeans", n_clusters=3)
    lab = clf.fit_predict(ds)
    figs = [
        plot_reduced_map(clf.sample_reduced_, clf.sample_labels_),
        plot_phase_fractions(phase_fractions(lab)),
        plot_profile_heatmap(spatial_profiles(ds, lab, n_bins=20), 0),
    ]
    for i, f in enumerate(figs):
        paths = save(f, tmp_path / f"fig{i}", formats=("png",))
        assert all(p.stat().st_size > 1000 for p in paths)


def test_overlapped_fit_predict_same_labels():
    """On a distributed client fit_predict projects every chunk on the workers while the
    clusters are fitted; its labels equal fit() then predict() on the synchronous scheduler
    (same subsample, same fit, the same float32 projection code): exactly, not approximately."""
    import dask
    from distributed import Client, LocalCluster

    ds, _ = li_li2s_cell(n_frames=4, seed=13, thickness=12.0)
    opts = dict(method="hdbscan", seed=3, n_fit=900, min_cluster_size=10, chunk_frames=1)
    desc = SOAP(r_cut=4.0, n_max=4, l_max=4)
    with dask.config.set(scheduler="synchronous"):
        serial_clf = EnvironmentClassifier(desc, **opts).fit(ds)
        serial = serial_clf.predict(ds).values
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        clf = EnvironmentClassifier(desc, **opts)
        dist = clf.fit_predict(ds).values
    np.testing.assert_array_equal(serial, dist)
    assert clf.n_clusters_ == serial_clf.n_clusters_ >= 2
    assert np.any(dist == -1) and np.any(dist >= 0)  # noise and clusters both present


def test_cli_refuses_bad_workers(tmp_path, capsys):
    from atomtwin.toolkit.cli import main

    ds, _ = li_li2s_cell(n_frames=1, seed=9, thickness=12.0)
    ds.atoms.write(tmp_path / "traj.nc")
    for flag in ("--workers", "--chunk-frames"):
        assert main(["environments", str(tmp_path / "traj.nc"), flag, "0"]) == 2
        assert f"{flag} must be >= 1" in capsys.readouterr().err


def test_auto_workers_threshold():
    """Without --workers the CLI uses every usable core only from AUTO_WORKERS_ENVIRONMENTS
    environments (centres x frames) on: a small run never pays for starting processes."""
    import os

    from atomtwin.toolkit import schema as S
    from atomtwin.toolkit.environments.cli import AUTO_WORKERS_ENVIRONMENTS, auto_workers

    n_atoms = 100
    frames = AUTO_WORKERS_ENVIRONMENTS // n_atoms
    species = np.array(["Li"] * 80 + ["S"] * 20)
    big = S.make_dataset(np.zeros((frames, n_atoms, 3)), species)
    assert auto_workers(big, None) == len(os.sched_getaffinity(0))
    assert auto_workers(big, ["S"]) == 1  # 20 centres x frames: below the threshold
    assert auto_workers(big.isel(frame=slice(0, frames - 1)), None) == 1
