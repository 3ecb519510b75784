"""The electric-enthalpy model: derivatives, sum rule, equivariance, exact crystal, MD fields.

All checks on an untrained (random-weight) float64 model: the identities hold for any weights,
and random weights make every tensor component nonzero (a trained model on a cubic crystal
would hide anisotropic errors behind symmetry).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from atomtwin.engines.mlip.data import collate
from atomtwin.engines.mlip.electric import (
    build_electric_model,
    l2_to_matrix,
    load_electric,
    save_electric,
)
from atomtwin.engines.mlip.electric_crystal import RockSaltCrystal
from atomtwin.engines.mlip.electric_md import ElectricCalculator, SineField, run_field_md


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return build_electric_model(dict(species=["Na", "Cl"], r_max=4.0, num_layers=2, lmax=2, mul=6,
                                     radial_hidden=16, avg_num_neighbors=12.0, dtype="float64"))


def structure(seed=0, strain=0.03):
    """A distorted, strained (triclinic) NaCl cell: no symmetry left to hide errors."""
    rng = np.random.default_rng(seed)
    at = bulk("NaCl", "rocksalt", a=5.6, cubic=True)
    eps = rng.uniform(-strain, strain, (3, 3))
    at.set_cell(at.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    at.positions += rng.normal(0, 0.12, at.positions.shape)
    return at


def evaluate(m, atoms, field):
    b = collate([atoms], r_max=m.r_max, species=m.species)
    b["field"] = torch.as_tensor(np.asarray(field, float)).reshape(1, 3)
    return {k: v.detach().numpy() for k, v in m(b).items()}


FIELD = np.array([0.04, -0.03, 0.05])


def test_polarization_and_polarizability_are_field_derivatives(model):
    at = structure(1)
    out = evaluate(model, at, FIELD)
    h = 1e-3
    for i in range(3):
        d = np.zeros(3)
        d[i] = h
        up, dn = evaluate(model, at, FIELD + d), evaluate(model, at, FIELD - d)
        # H is a quadratic polynomial in E, so the central difference of H is exact and that of
        # P (linear in E) too: only rounding remains, ~1e-16 |H| / h ~ 1e-12
        p_fd = -(up["energy"][0] - dn["energy"][0]) / (2 * h)
        assert p_fd == pytest.approx(out["polarization"][0, i], abs=1e-9)
        a_fd = (up["polarization"][0] - dn["polarization"][0]) / (2 * h)
        np.testing.assert_allclose(a_fd, out["polarizability"][0][:, i], atol=1e-9)
    # alpha = -d2H/dE2 is a symmetric tensor (a Hessian)
    np.testing.assert_allclose(out["polarizability"][0], out["polarizability"][0].T, atol=1e-13)


def test_born_charges_are_position_derivatives_of_P(model):
    at = structure(2)
    out = evaluate(model, at, FIELD)
    assert np.abs(out["born_charges"]).max() > 1e-3  # a non-trivial check
    h = 1e-4
    for a, j in [(0, 0), (3, 1), (6, 2), (5, 0)]:
        up, dn = at.copy(), at.copy()
        up.positions[a, j] += h
        dn.positions[a, j] -= h
        z_fd = (evaluate(model, up, FIELD)["polarization"][0] - evaluate(model, dn, FIELD)["polarization"][0]) / (2 * h)
        # central difference: truncation h^2 P'''/6 ~ 1e-8 (P''' = O(1) e/Å^2 for Å-scale features)
        np.testing.assert_allclose(z_fd, out["born_charges"][a, :, j], atol=1e-7)
        f_fd = -(evaluate(model, up, FIELD)["energy"][0] - evaluate(model, dn, FIELD)["energy"][0]) / (2 * h)
        assert f_fd == pytest.approx(out["forces"][a, j], abs=1e-7)


def test_force_is_linear_in_field_through_born_charges(model):
    # F(E) - F(-E) = 2 sum_i E_i Z*_{a,i,:} exactly (H = U - E.P - E.alpha.E/2: even terms cancel)
    at = structure(3)
    zero, plus, minus = (evaluate(model, at, s * FIELD) for s in (0.0, 1.0, -1.0))
    expect = 2 * np.einsum("i,aij->aj", FIELD, zero["born_charges"])
    np.testing.assert_allclose(plus["forces"] - minus["forces"], expect, atol=1e-12)


@pytest.mark.parametrize("seed", [4, 5])
def test_acoustic_sum_rule_holds_to_rounding(model, seed):
    rng = np.random.default_rng(seed)
    cases = [structure(seed, 0.05), structure(seed + 10, 0.0).repeat((2, 1, 1))]
    mol = Atoms("NaClNaCl", positions=rng.normal(0, 1.6, (4, 3)) + [0, 0, 0], pbc=False)
    cases.append(mol)
    for at in cases:
        out = evaluate(model, at, rng.normal(0, 0.05, 3))
        z = out["born_charges"]
        # each edge gradient enters atom j as +g and atom i as -g: the sum over atoms is zero up to
        # rounding of the scatter sums, N * 1e-16 * max|Z| < 1e-13
        assert np.abs(z.sum(0)).max() < 1e-13 * max(1.0, np.abs(z).max()) * len(at)
        assert np.abs(out["forces"].sum(0)).max() < 1e-12


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("improper", [False, True])
def test_equivariance_of_P_Z_alpha(model, improper):
    rng = np.random.default_rng(7)
    q = random_rotation(rng) * (-1 if improper else 1)
    at = structure(8)
    rot = at.copy()
    rot.set_cell(at.cell.array @ q.T, scale_atoms=False)
    rot.positions = at.positions @ q.T
    a, b = evaluate(model, at, FIELD), evaluate(model, rot, q @ FIELD)
    # float64 throughout: rounding differences only (<= 1e-10 asked by the issue)
    assert b["energy"][0] == pytest.approx(a["energy"][0], abs=1e-10)
    np.testing.assert_allclose(b["forces"], a["forces"] @ q.T, atol=1e-10)
    # P is a polar vector (odd under inversion: q = -R gives P -> -R P, which q @ P is)
    np.testing.assert_allclose(b["polarization"][0], q @ a["polarization"][0], atol=1e-10)
    np.testing.assert_allclose(b["born_charges"], np.einsum("ij,ajk,lk->ail", q, a["born_charges"], q), atol=1e-10)
    np.testing.assert_allclose(b["polarizability"][0], q @ a["polarizability"][0] @ q.T, atol=1e-10)


def test_l2_tensor_map_is_equivariant_and_traceless():
    from atomtwin.engines.mlip.nn import spherical_harmonics

    rng = np.random.default_rng(0)
    rot = torch.as_tensor(random_rotation(rng))
    v = torch.as_tensor(rng.normal(size=(4, 3)))
    # l=2 blocks that transform by construction: spherical harmonics of vectors, Y2(Q v) = D2(Q) Y2(v)
    m = l2_to_matrix(spherical_harmonics(v, 2)[2])
    mr = l2_to_matrix(spherical_harmonics(v @ rot.T, 2)[2])
    np.testing.assert_allclose(torch.einsum("nii->n", m).numpy(), 0.0, atol=1e-14)
    np.testing.assert_allclose(m.numpy(), m.transpose(1, 2).numpy(), atol=1e-14)
    np.testing.assert_allclose(mr.numpy(), (rot @ m @ rot.T).numpy(), atol=1e-12)
    # Y2 of a unit vector maps to a multiple of (u u^T - I/3): the map is the standard embedding
    u = torch.nn.functional.normalize(v, dim=-1)
    target = u[:, :, None] * u[:, None, :] - torch.eye(3, dtype=u.dtype) / 3
    ratio = (m * target).sum((1, 2)) / (target * target).sum((1, 2))
    np.testing.assert_allclose((m - ratio[:, None, None] * target).numpy(), 0.0, atol=1e-12)


def test_exact_crystal_closed_forms():
    c = RockSaltCrystal(1)
    ideal = c.ideal_structure()
    out = evaluate(c, ideal, np.zeros(3))
    sign = np.where(ideal.numbers == 11, 1.0, -1.0)
    # Born charges of the ideal lattice: (q + 2 eta) I exactly (six bonds: sum r_hat r_hat = 2 I)
    np.testing.assert_allclose(out["born_charges"], sign[:, None, None] * c.born_charge() * np.eye(3), atol=1e-12)
    assert np.abs(out["forces"]).max() < 1e-12  # a stationary point by symmetry
    # TO frequency: rigid sublattice displacement, central difference (error h^2 ~ 1e-8 relative)
    h = 1e-4
    f = []
    for s in (1, -1):
        at = ideal.copy()
        at.positions[ideal.numbers == 11, 0] += s * h
        f.append(evaluate(c, at, np.zeros(3))["forces"][ideal.numbers == 11, 0].sum())
    k = -(f[0] - f[1]) / (2 * h) / 4  # per ion pair, eV/Å^2
    from atomtwin.toolkit import units as U

    nu = np.sqrt(k / c.reduced_mass * U.EV_A_AMU_TO_A_PS2) / (2 * np.pi)
    assert nu == pytest.approx(c.nu_to(), rel=1e-7)
    # eps_inf from the model's polarizability and the cell volume
    eps_inf = 1 + np.trace(out["polarizability"][0]) / 3 / (U.EPSILON0 * ideal.get_volume())
    assert eps_inf == pytest.approx(c.eps_inf(), rel=1e-12)
    # LST: omega_LO^2 / omega_TO^2 = eps_0 / eps_inf
    assert (c.nu_lo() / c.nu_to()) ** 2 == pytest.approx(c.eps_static() / c.eps_inf(), rel=1e-12)


def test_checkpoint_round_trip(model, tmp_path):
    save_electric(tmp_path / "m.pt", model)
    again = load_electric(tmp_path / "m.pt")
    at = structure(9)
    a, b = evaluate(model, at, FIELD), evaluate(again, at, FIELD)
    for key in ("energy", "polarization", "born_charges"):
        np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(ValueError, match="not an atomtwin electric"):
        torch.save({"format": "x"}, tmp_path / "bad.pt")
        load_electric(tmp_path / "bad.pt")


def test_ase_calculator_matches_model(model):
    at = structure(10)
    at.calc = ElectricCalculator(model, field=FIELD)
    out = evaluate(model, at, FIELD)
    assert at.get_potential_energy() == pytest.approx(out["energy"][0], abs=1e-12)
    np.testing.assert_allclose(at.get_dipole_moment(), out["polarization"][0], atol=1e-12)
    np.testing.assert_allclose(at.calc.results["born_charges"], out["born_charges"], atol=1e-12)


def test_md_in_fields_stores_dielectric_observables():
    c = RockSaltCrystal(1)
    # static field, NVE: H + kinetic energy is conserved (velocity Verlet, dt = 2 fs, 0.6 ps:
    # the energy error oscillates with amplitude O(dt^2) ~ 1e-4 of the kinetic energy)
    ds = run_field_md(c, c.ideal_structure(), field=(0.02, 0.0, 0.0), dt=0.002, n_steps=300, every=10,
                      temperature=150.0, seed=1)
    from atomtwin.toolkit import units as U

    kin = 0.5 * np.einsum("a,fai->f", ds["mass"].values, ds["velocities"].values ** 2) * U.AMU_A2_PS2_TO_EV
    total = ds["energy"].values + kin
    assert np.ptp(total) < 2e-3 * kin.mean()
    # a +x field pushes cations along +x: the mean polarization is along the field
    assert ds["polarization"].values[:, 0].mean() > 0
    assert {"polarization", "born_charges", "velocities"} <= set(ds.data_vars)
    np.testing.assert_allclose(ds["born_charges"].values.sum(1), 0.0, atol=1e-12)
    # a time-dependent field is evaluated at each frame's time
    f = SineField((0.0, 0.01, 0.0), 2.0)
    ds = run_field_md(c, c.ideal_structure(), field=f, dt=0.002, n_steps=50, every=5, temperature=None)
    expect = np.array([f(t) for t in ds["time"].values])
    np.testing.assert_allclose(ds["electric_field"].values, expect, atol=1e-15)
    assert np.abs(ds["polarization"].values[-1, 1]) > 0  # the crystal responds along y
