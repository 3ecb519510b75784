"""Unwrapping: exact against image flags, including a cell that changes every frame (NPT)."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit import geometry as G

import atomtwin


def _npt_walk(rng, nf=200, na=30, triclinic=True):
    """Continuous random walk in a breathing (and shearing) cell, then wrapped with the
    image flags recorded, as LAMMPS does: r_wrapped = r - n @ h(t)."""
    h0 = np.array([[8.0, 0, 0], [1.5, 7.5, 0], [-0.8, 1.1, 9.0]]) if triclinic else np.diag([8.0, 7.5, 9.0])
    scale = 1 + 0.03 * np.sin(np.linspace(0, 6 * np.pi, nf))[:, None, None]
    shear = np.zeros((nf, 3, 3))
    if triclinic:
        shear[:, 1, 0] = 0.2 * np.cos(np.linspace(0, 4 * np.pi, nf))
    h = h0 * scale + shear
    s = np.cumsum(rng.normal(scale=0.02, size=(nf, na, 3)), axis=0) + rng.random((1, na, 3))
    r_true = np.einsum("fai,fij->faj", s, h)  # continuous in the fractional frame
    img = np.floor(s)
    wrapped = np.einsum("fai,fij->faj", s - img, h)
    return h, r_true, wrapped, img.astype(np.int32)


@pytest.mark.parametrize("triclinic", [False, True])
def test_jump_unwrap_equals_image_flags_under_npt(rng, triclinic):
    h, r_true, wrapped, img = _npt_walk(rng, triclinic=triclinic)
    ds = atomtwin.toolkit.make_dataset(wrapped, ["Li"] * wrapped.shape[1], cell=h, image=img)
    by_image = atomtwin.toolkit.unwrap(ds, method="image").positions.values
    np.testing.assert_allclose(by_image, r_true, atol=1e-10)
    # image flags reconstructed from fractional jumps: identical (flags start at 0 in frame 0)
    by_jump = atomtwin.toolkit.unwrap(ds.drop_vars("image")).positions.values
    shift0 = np.einsum("ai,fij->faj", img[0].astype(float), h)
    np.testing.assert_allclose(by_jump + shift0, r_true, atol=1e-10)


def test_displacement_unwrap_is_continuous(rng):
    """The toroidal scheme accumulates minimum-image displacements: every step equals the
    wrapped step corrected by a lattice vector of the later cell, so the path is continuous
    and differs from the image-based one only by the box-rescaling term n(t) (h(t+1)-h(t))."""
    h, r_true, wrapped, img = _npt_walk(rng, triclinic=False)
    ds = atomtwin.toolkit.make_dataset(wrapped, ["Li"] * wrapped.shape[1], cell=h)
    un = atomtwin.toolkit.unwrap(ds, method="displacement").positions.values
    step = np.diff(un, axis=0)
    assert np.abs(step).max() < 1.0  # walk steps are ~0.02 x 9 Å; no residual jumps
    expect = np.diff(r_true, axis=0) - np.einsum("fai,fij->faj", img[:-1], np.diff(h, axis=0))
    np.testing.assert_allclose(step, expect, atol=1e-10)


def test_wrap_then_unwrap_round_trip(rng):
    h, r_true, _, _ = _npt_walk(rng)
    ds = atomtwin.toolkit.make_dataset(r_true, ["O"] * r_true.shape[1], cell=h)
    w = atomtwin.toolkit.wrap(ds)
    s = G.to_fractional(w.positions.values, h)
    assert s.min() >= 0 and s.max() < 1
    np.testing.assert_allclose(atomtwin.toolkit.unwrap(w).positions.values, r_true, atol=1e-10)


def test_ambiguous_jumps_warn(rng):
    h = np.eye(3) * 5
    pos = np.zeros((3, 1, 3))
    pos[1, 0, 0] = 2.4  # 0.48 of the box in one frame
    ds = atomtwin.toolkit.make_dataset(pos, ["H"], cell=h)
    with pytest.warns(UserWarning, match="ambiguous without image flags"):
        atomtwin.toolkit.unwrap(ds)


def test_minimum_image_orthorhombic(rng):
    cell = np.diag([4.0, 5.0, 6.0])
    v = rng.uniform(-20, 20, size=(100, 3))
    mi = G.minimum_image(v, cell)
    assert np.all(np.abs(mi) <= np.diag(cell) / 2 + 1e-12)
    k = (v - mi) / np.diag(cell)
    np.testing.assert_allclose(k, np.round(k), atol=1e-12)
