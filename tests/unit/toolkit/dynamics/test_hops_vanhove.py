"""Site hops on a synthetic lattice hopper with a known rate; self van Hove function of
Brownian walkers."""

from __future__ import annotations

import numpy as np
from atomtwin.toolkit.dynamics import (
    assign_sites,
    diffusion,
    find_sites,
    hop_rate,
    hops,
    msd,
    residence_times,
    van_hove_self,
)
from atomtwin.toolkit.schema import make_dataset

A, NC, K, DT = 3.0, 4, 0.4, 0.05  # lattice constant Å, cells per side, hop rate 1/ps, frame ps


def lattice_hopper(seed=0, n_atoms=16, n_frames=1500, noise=0.25):
    rng = np.random.default_rng(seed)
    site = rng.integers(0, NC, (n_atoms, 3)).astype(float)
    steps = np.concatenate([np.eye(3), -np.eye(3)])
    pos = np.empty((n_frames, n_atoms, 3))
    n_true = 0
    for f in range(n_frames):
        if f:
            nh = rng.poisson(K * DT, n_atoms)  # Poisson hops, each to one of 6 neighbours
            for a in np.flatnonzero(nh):
                for _ in range(nh[a]):
                    site[a] += steps[rng.integers(6)]
            n_true += int(nh.sum())
        pos[f] = site * A + rng.normal(0, noise, (n_atoms, 3))
    L = A * NC
    ds = make_dataset(
        np.mod(pos, L), ["Li"] * n_atoms, cell=np.eye(3) * L, time=np.arange(n_frames) * DT
    )
    return ds, n_true


def test_lattice_hopper_rate_residence_and_diffusion():
    ds, n_true = lattice_hopper()
    sites = find_sites(ds, "Li")
    # density maxima are the 64 lattice points (to the grid resolution of 0.2 Å)
    assert sites.sizes["site"] == NC**3
    frac = sites.values / A
    assert np.abs(frac - np.round(frac)).max() * A < 0.2
    st = assign_sites(ds, "Li", sites)
    r = hop_rate(st)
    # 480 expected hops: Poisson relative error 4.6%; back-and-forth pairs inside one frame
    # (probability (K DT)^2/12 ~ 1e-4) are negligible.  3 standard errors allowed.
    assert abs(float(r.rate) - K) < 3 * float(r.rate_err)
    assert abs(int(r.n_hops) - n_true) <= 0.02 * n_true
    rt = residence_times(st)
    # residence times are exponential with mean 1/K (sd of the mean = mean / sqrt(n))
    assert abs(float(rt.mean()) - 1 / K) < 3 * float(rt.mean()) / np.sqrt(rt.size)
    ev = hops(st)
    assert ev.sizes["event"] == int(r.n_hops) and np.all(ev.from_site != ev.to_site)
    # random walk on the cubic lattice: D = K a^2 / 6 (consistency of hops and MSD)
    d = diffusion(ds, "Li", remove_drift=False)
    assert abs(float(d.D) - K * A**2 / 6) < 4 * float(d.D_err)


def test_sites_from_reference_structure():
    ds, _ = lattice_hopper(n_frames=50)
    ref = np.array([[i, j, k] for i in range(NC) for j in range(NC) for k in range(NC)]) * A
    st = assign_sites(ds, "Li", find_sites(ds, "Li", reference=ref))
    # the noise (0.25 Å) is far inside r_site = 0.45 a: every atom is on a site from frame 0
    assert (st.values >= 0).all()


def test_van_hove_self_of_brownian_walkers_is_gaussian():
    rng = np.random.default_rng(2)
    D, dt, nf, na = 0.25, 0.1, 200, 200
    pos = np.cumsum(rng.normal(0, np.sqrt(2 * D * dt), (nf, na, 3)), axis=0)
    ds = make_dataset(pos, ["Li"] * na, time=np.arange(nf) * dt)
    g = van_hove_self(ds, "Li", [1.0, 4.0], r_max=8.0, n_bins=80, remove_drift=False)
    r, dr = g.r.values, 0.1
    m = msd(ds, "Li", remove_drift=False)
    for j, t in enumerate([1.0, 4.0]):
        p = 4 * np.pi * r**2 * g.values[j] * dr  # probability per bin
        exact = 4 * np.pi * r**2 * (4 * np.pi * D * t) ** -1.5 * np.exp(-(r**2) / (4 * D * t)) * dr
        # second moment of the histogram = the MSD at that lag, to the bin discretisation
        # (relative error ~ (dr/r_typ)^2 / 12 < 1e-3) plus the mass beyond r_max (~0)
        np.testing.assert_allclose(
            (p * r**2).sum(), float(m.sel(lag=t, method="nearest")), rtol=5e-3
        )
        # shape: binomial error of a bin fraction with N_eff = n_atoms * n_frames / lag
        # independent displacements; 5 sigma allowed
        n_eff = na * nf / (t / dt)
        assert np.all(np.abs(p - exact) < 5 * np.sqrt(exact * (1 - exact) / n_eff) + 1e-4)
    assert g.attrs["units"] == "Å^-3"


def test_site_claims_equal_brute_force_in_a_triclinic_cell():
    # random walkers among 12 sites of a skewed cell: the cell-list claims (nearest site
    # within r_site over all images) against an explicit loop over 5^3 images, before the
    # transition-state carry-forward (checked on the frames where a claim is made)
    rng = np.random.default_rng(8)
    cell = np.array([[9.0, 0, 0], [3.0, 8.0, 0], [-2.0, 1.5, 9.5]])
    sites = rng.random((12, 3)) @ cell
    pos = rng.uniform(-0.2, 1.2, (5, 40, 3)) @ cell
    ds = make_dataset(pos, ["Li"] * 40, cell=cell, time=np.arange(5) * 0.1)
    st = assign_sites(ds, "Li", sites, r_site=1.6, frame_chunk=2).values
    img = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3) @ cell
    d = np.linalg.norm(sites[None, None, :, None] + img - pos[:, :, None, None], axis=-1).min(-1)
    claim = np.where(d.min(-1) <= 1.6, d.argmin(-1), -1)
    assert (claim >= 0).sum() > 20
    np.testing.assert_array_equal(st[claim >= 0], claim[claim >= 0])
    np.testing.assert_array_equal(st[0], claim[0])
