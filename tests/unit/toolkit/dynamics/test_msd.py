"""MSD: exact identities against the direct double sum, regions, drift, unwrapping,
out-of-core evaluation and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.dynamics import msd
from atomtwin.toolkit.schema import make_dataset


def walk(rng, nf=120, na=12, step=0.5, box=None, species=None):
    x = np.cumsum(rng.normal(0, step, (nf, na, 3)), axis=0)
    sp = species or ["Li"] * na
    if box is None:
        return x, make_dataset(x, sp, time=np.arange(nf) * 0.1)
    return x, make_dataset(np.mod(x, box), sp, cell=np.eye(3) * box, time=np.arange(nf) * 0.1)


def direct(x, comps=(0, 1, 2)):
    nf = x.shape[0]
    return np.array([np.mean(np.sum((x[m:] - x[: nf - m])[..., list(comps)] ** 2, -1)) for m in range(nf)])


def test_fft_msd_equals_direct_double_sum(rng):
    # identical estimator, only the summation order differs: agreement to float64 round-off
    x, ds = walk(rng)
    got = msd(ds, "Li", remove_drift=False, unwrap=False)
    np.testing.assert_allclose(got.values, direct(x), rtol=1e-10, atol=1e-10)
    assert got.attrs["units"] == "Å^2" and got["lag"].attrs["units"] == "ps"
    np.testing.assert_allclose(got["lag"].values[:3], [0, 0.1, 0.2])


def test_directional_components_add_up(rng):
    # |d|^2 = dx^2 + dy^2 + dz^2 holds per pair, so the MSDs add exactly
    x, ds = walk(rng)
    xy = msd(ds, "Li", axes="xy", remove_drift=False).values
    z = msd(ds, "Li", axes="z", remove_drift=False).values
    np.testing.assert_allclose(xy + z, direct(x), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(z, direct(x, (2,)), rtol=1e-10, atol=1e-10)


def test_region_msd_counts_only_continuous_residence(rng):
    x, ds = walk(rng, nf=80, na=8, step=1.0)
    got = msd(ds, "Li", region="z=-2:4", remove_drift=False)
    inside = (x[..., 2] >= -2) & (x[..., 2] < 4)
    for m in range(0, got.sizes["lag"], 7):
        vals = [np.sum((x[k + m, a] - x[k, a]) ** 2) for a in range(8) for k in range(80 - m)
                if inside[k:k + m + 1, a].all()]
        assert got["n_pairs"].values[m] == len(vals)
        np.testing.assert_allclose(got.values[m], np.mean(vals), rtol=1e-10, atol=1e-10)


def test_drift_removal_cancels_uniform_flow(rng):
    # a uniform velocity added to every atom moves only the centre of mass
    x, ds = walk(rng)
    v = np.array([0.3, -0.2, 0.1])
    moved = make_dataset(x + np.arange(x.shape[0])[:, None, None] * v, ["Li"] * x.shape[1],
                         time=np.arange(x.shape[0]) * 0.1)
    a = msd(ds, "Li", remove_drift=True).values
    b = msd(moved, "Li", remove_drift=True).values
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_single_pass_drift_removal_equals_subtracting_the_centre_of_mass(rng):
    # the one-pass estimator removes the mass-weighted centre-of-mass path d(t) through the
    # identity sum_i |dx_i - dd|^2 = S_x + n (S[xbar - d] - S[xbar]); it must equal
    # subtracting d(t) from every atom first (float64 round-off), for each species of a
    # mixture with unequal masses whose atoms are interleaved (non-contiguous indices)
    sp = ["Li", "Cl", "Li", "Cl", "Cl", "Li", "Li", "Cl", "Li", "Li"]
    x, ds = walk(rng, nf=90, na=10, species=sp)
    x = x + np.arange(90)[:, None, None] * np.array([0.05, 0.0, -0.03]) * (np.arange(10) % 3)[None, :, None]
    ds = make_dataset(x, sp, time=np.arange(90) * 0.1)
    mass = ds[S.MASS].values
    com = np.einsum("fai,a->fi", x, mass) / mass.sum()
    y = x - (com - com[0])[:, None, :]
    got = msd(ds, ["Li", "Cl"], remove_drift=True, unwrap=False, atom_chunk=3)
    for k, name in enumerate(["Li", "Cl"]):
        idx = [i for i, s in enumerate(sp) if s == name]
        np.testing.assert_allclose(got.values[k], direct(y[:, idx]), rtol=1e-9, atol=1e-9)


def test_wrapped_positions_are_unwrapped(rng):
    x, ds = walk(rng, step=0.6, box=8.0)
    got = msd(ds, "Li", remove_drift=False, unwrap="auto").values
    np.testing.assert_allclose(got, direct(x), rtol=1e-9, atol=1e-9)


def test_out_of_core_dask_equals_in_memory(rng, tmp_path):
    from atomtwin.toolkit.io import open as topen
    from atomtwin.toolkit.io import write

    x, ds = walk(rng, step=0.6, box=8.0, species=["Li"] * 7 + ["Cl"] * 5)
    path = write(ds, tmp_path / "w.nc")
    lazy = topen(path)
    assert lazy[S.POSITIONS].chunks is not None  # really dask-backed
    # 120 frames in 64-frame chunks on disk, 3-atom chunks: goes through the atom-major scratch copy
    from atomtwin.toolkit.dynamics._outofcore import needs_atom_major

    assert needs_atom_major(lazy, 12, 3)
    a = msd(lazy, ["Li", "Cl"], atom_chunk=3)
    b = msd(ds, ["Li", "Cl"])
    np.testing.assert_allclose(a.values, b.values, rtol=1e-10, atol=1e-10)
    assert list(a["n_atoms"].values) == [7, 5]


def test_bad_input_is_named(rng):
    x, ds = walk(rng)
    uneven = make_dataset(x, ["Li"] * 12, time=np.cumsum(rng.uniform(0.05, 0.15, x.shape[0])))
    with pytest.raises(S.SchemaError, match="evenly spaced"):
        msd(uneven, "Li")
    with pytest.raises(S.SchemaError, match="'Na' is not in the trajectory"):
        msd(ds, "Na")
    with pytest.raises(ValueError, match="never"):
        msd(ds, "Li", region="z=1000:1001")
    with pytest.raises(ValueError, match="axes"):
        msd(ds, "Li", axes="xq")
    with pytest.raises(ValueError, match="z=LO:HI"):
        msd(ds, "Li", region="z>3")
    _, wrapped = walk(rng, step=0.6, box=8.0)
    with pytest.warns(UserWarning, match="look wrapped"):
        msd(wrapped, "Li", unwrap=False)


def test_origin_variance_probes_equal_the_direct_sum(rng):
    # the probes behind the correlated-atom error model: the sample variance over origins of
    # the per-origin MSD (drift removed, mass-weighted centre of mass), against brute force
    from atomtwin.toolkit.dynamics.msd import probe_lags

    x, ds = walk(rng, nf=90, na=10)
    ds = ds.assign_coords(mass=("atom", rng.uniform(1, 3, 10)))
    got = msd(ds, "Li", remove_drift=True, unwrap=False)
    mass = ds["mass"].values
    y = x - (np.einsum("fai,a->fi", x, mass) / mass.sum())[:, None, :]
    for m in probe_lags(90):
        per_origin = np.mean(np.sum((y[m:] - y[:90 - m]) ** 2, -1), axis=1)
        st = max(1, int(m) // 8)  # origins every m // 8 frames (probe_stride)
        np.testing.assert_allclose(got["origin_var"].values[m], np.var(per_origin[::st], ddof=1), rtol=1e-9)
    assert np.isnan(got["origin_var"].values[[0, 2 * 45 - 1]]).all()
