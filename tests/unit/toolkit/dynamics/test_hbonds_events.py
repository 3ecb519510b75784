"""Protons and hydrogen bonds on constructed geometries with known answers; H-bond
lifetimes against the direct double sum; event cross-correlation."""

from __future__ import annotations

import numpy as np
from atomtwin.toolkit.dynamics import (
    assign_hydrogens,
    event_cross_correlation,
    hbond_lifetime,
    hydrogen_bonds,
    proton_transfers,
)
from atomtwin.toolkit.schema import make_dataset


def test_proton_transfer_and_rattling():
    # two O 2.6 Å apart, one H at 1.0 Å from O0 (frames 0-39), a 2-frame excursion to O1
    # (frames 20-21, rattling), then on O1 from frame 40: exactly one transfer, at frame 40
    F = 60
    x = np.full(F, 1.0)
    x[20:22] = 1.6
    x[40:] = 1.6
    pos = np.zeros((F, 3, 3))
    pos[:, 1, 0] = 2.6
    pos[:, 2, 0] = x
    ds = make_dataset(pos, ["O", "O", "H"], cell=np.eye(3) * 20, time=np.arange(F) * 0.01)
    own = assign_hydrogens(ds, "H", "O")
    assert own.values[0, 0] == 0 and own.values[-1, 0] == 1
    ev = proton_transfers(own, min_frames=5)
    assert ev.sizes["event"] == 1 and int(ev.frame[0]) == 40
    assert int(ev.from_donor[0]) == 0 and int(ev.to_donor[0]) == 1
    assert proton_transfers(own, min_frames=1).sizes["event"] == 3


def test_hbond_geometry_and_minimum_image():
    # D-H...A across the periodic boundary: D at 0.5, H at 1.5, A at 19.0 -> D-A 1.5 Å
    # through the boundary? No: A sits at x=3.3 via the image 23.3 - 20; angle 180°
    pos = np.array([[[19.5, 5, 5], [0.47, 5, 5], [2.3, 5, 5], [19.5, 8, 5]]])
    ds = make_dataset(pos, ["O", "H", "O", "O"], cell=np.eye(3) * 20)
    hb = hydrogen_bonds(ds, d_da=3.0, angle=150)
    assert hb.sizes["bond"] == 1
    assert int(hb.donor[0]) == 0 and int(hb.acceptor[0]) == 2
    np.testing.assert_allclose(float(hb.distance[0]), 2.8, atol=1e-12)
    np.testing.assert_allclose(float(hb.angle[0]), 180.0, atol=1e-6)
    assert hydrogen_bonds(ds, d_da=2.7).sizes["bond"] == 0


def _brute_force_hbonds(pos, cell, nd, d_da, angle, d_dh):
    """(frame, D, H, A) -> (D-A distance, angle) by looping over 5^3 images of every atom."""
    img = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3) @ cell
    out = {}
    for f, x in enumerate(pos):
        for d in range(nd):
            for h in range(nd, x.shape[0]):
                for v_dh in x[h] + img - x[d]:
                    if np.linalg.norm(v_dh) > d_dh:
                        continue
                    for a in range(nd):
                        for v_da in x[a] + img - x[d]:
                            r = np.linalg.norm(v_da)
                            v_ha = v_da - v_dh
                            c = -v_dh @ v_ha / (np.linalg.norm(v_dh) * np.linalg.norm(v_ha))
                            if a != d and r <= d_da and c <= np.cos(np.deg2rad(angle)):
                                out[(f, d, h, a)] = (r, np.degrees(np.arccos(np.clip(c, -1, 1))))
    return out


def test_hbonds_in_a_triclinic_cell_equal_brute_force_over_images():
    # random O and H in a skewed cell with loose criteria (many bonds, many across faces):
    # the cell-list search finds exactly the bonds of an explicit loop over periodic images
    rng = np.random.default_rng(5)
    cell = np.array([[8.0, 0, 0], [2.5, 7.5, 0], [-1.5, 2.0, 8.5]])
    pos = rng.uniform(-0.2, 1.2, (3, 30, 3)) @ cell
    ds = make_dataset(pos, ["O"] * 20 + ["H"] * 10, cell=cell, time=np.arange(3) * 0.1)
    hb = hydrogen_bonds(ds, d_da=3.5, angle=110.0, d_dh=1.8, frame_chunk=2)
    ref = _brute_force_hbonds(pos, cell, 20, 3.5, 110.0, 1.8)
    got = {
        (int(f), int(d), int(h), int(a)): (float(r), float(t))
        for f, d, h, a, r, t in zip(
            hb.frame.values,
            hb.donor.values,
            hb.hydrogen.values,
            hb.acceptor.values,
            hb.distance.values,
            hb.angle.values,
            strict=True,
        )
    }
    assert len(ref) > 10 and got.keys() == ref.keys()
    np.testing.assert_allclose(
        np.array([got[k] for k in ref]), np.array(list(ref.values())), atol=1e-9
    )
    np.testing.assert_array_equal(hb["count"].values, np.bincount([k[0] for k in ref], minlength=3))


def test_hbond_lifetime_matches_direct_sums():
    rng = np.random.default_rng(3)
    n, ntrip = 50, 7
    h = (rng.random((n, ntrip)) < 0.6).astype(float)
    f, t = np.nonzero(h)
    import xarray as xr

    bonds = xr.Dataset(
        {
            "frame": ("bond", f),
            "donor": ("bond", t),
            "hydrogen": ("bond", t + 100),
            "acceptor": ("bond", t + 200),
        },
        attrs={"n_frames": n, "timestep_ps": 0.5},
    )
    lt = hbond_lifetime(bonds)
    mean_h = h.mean()
    for m in (0, 1, 3, 10):
        inter = np.mean(h[m:] * h[: n - m]) / mean_h
        cont = (
            np.mean([h[k : k + m + 1, j].all() for k in range(n - m) for j in range(ntrip)])
            / mean_h
        )
        np.testing.assert_allclose(lt.intermittent.values[m], inter, rtol=1e-10)
        np.testing.assert_allclose(lt.continuous.values[m], cont, rtol=1e-10)


def test_event_cross_correlation_detects_coupling_and_not_chance():
    rng = np.random.default_rng(1)
    T, nkeys = 1000.0, 20
    ta = rng.uniform(0, T, 400)
    ka = rng.integers(0, nkeys, 400)
    # coupled: every A event is followed 0.3 ps later by a B event on the same key
    coupled = event_cross_correlation(ta, ka, ta + 0.3, ka, [0.5, 5.0], duration=T, seed=0)
    assert np.allclose(coupled.p_observed.values, 1.0)
    assert coupled.z.values[0] > 10
    # independent B events at the same rate: p_observed agrees with the shuffles and the
    # Poisson expectation (|z| < 4)
    tb = rng.uniform(0, T, 400)
    kb = rng.integers(0, nkeys, 400)
    ind = event_cross_correlation(ta, ka, tb, kb, [0.5, 5.0, 20.0], duration=T, seed=0)
    assert np.all(np.abs(ind.z.values) < 4)
    np.testing.assert_allclose(
        ind.p_poisson.values, ind.p_shuffled.values, atol=4 * ind.p_shuffled_std.values.max()
    )


def test_long_loops_show_progress_on_stderr(capsys):
    # every per-frame loop of the proton/H-bond/site/rotation analyses reports on stderr
    # when progress bars are on (the CLI turns them on), and stays silent otherwise
    from atomtwin.toolkit import progress as P
    from atomtwin.toolkit.dynamics import assign_sites
    from atomtwin.toolkit.dynamics.rotations import jump_events

    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 8, (4, 12, 3))
    ds = make_dataset(pos, ["O"] * 8 + ["H"] * 4, cell=np.eye(3) * 8, time=np.arange(4) * 0.1)
    calls = {
        "O-H assignment": lambda: assign_hydrogens(ds, "H", "O"),
        "hydrogen bonds": lambda: hydrogen_bonds(ds, d_dh=2.0),
        "site assignment": lambda: assign_sites(ds, "H", pos[0, :8], r_site=1.0),
        "angle jumps": lambda: jump_events(rng.normal(size=(4, 5, 3)), smooth=1),
    }
    for desc, call in calls.items():
        call()
        assert desc not in capsys.readouterr().err
        P.enable(True)
        try:
            call()
        finally:
            P.enable(False)
        assert desc in capsys.readouterr().err
