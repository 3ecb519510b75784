"""Physics of the potential in float64: symmetry, forces and stress as derivatives,
smoothness at the cutoff, batching, and the contract's error messages."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from ase import Atoms
from atomtwin.engines.mlip import ModelConfig, build_model, collate
from atomtwin.engines.mlip.neighbors import neighbor_list
from scipy.spatial.transform import Rotation

ARCHS = ("nequip", "allegro")


def _model(arch, dtype="float64", **kw):
    torch.manual_seed(0)
    opts = dict(architecture=arch, species=("Cu", "Au"), r_max=3.5, num_layers=2, lmax=2, mul=6,
                radial_hidden=16, latent=16, mlp_hidden=16, dtype=dtype, avg_num_neighbors=8.0)
    opts.update(kw)
    m = build_model(ModelConfig(**opts))
    # non-trivial per-species scale/shift so they are exercised by every check
    m.set_statistics(torch.tensor([-3.5, -4.1]), torch.tensor([0.7, 1.3]))
    return m


def _structure(seed=0, n=6):
    # a small skewed periodic cell (thinner than 2 r_max: several images) with two species;
    # atoms on n of the 8 sites of a 2x2x2 grid, rattled: no contact under ~1.5 Å
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 3.9 + rng.normal(scale=0.3, size=(3, 3))
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)]) / 2.0
    frac = grid[rng.permutation(8)[:n]] + rng.normal(scale=0.03, size=(n, 3))
    numbers = np.where(rng.random(n) < 0.5, 29, 79)
    numbers[:2] = (29, 79)
    return Atoms(numbers=numbers, positions=frac @ cell, cell=cell, pbc=True)


def _eval(m, atoms):
    return m(collate([atoms], r_max=m.r_max, species=m.species))


def _rel(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _same_values_and_gradients(got, ref, params, g, tol=1e-12):
    """``got`` and ``ref`` (functions of ``params``) agree, and so do their gradients along
    a random probe, to ``tol`` relative."""
    probe = torch.randn(ref.shape, generator=g, dtype=ref.dtype)
    gg = torch.autograd.grad((got * probe).sum(), params)
    gr = torch.autograd.grad((ref * probe).sum(), params)
    for a, b in zip([got, *gg], [ref, *gr], strict=True):
        assert _rel(a, b) < tol


@pytest.mark.parametrize("arch", ARCHS)
def test_invariance_and_equivariance(arch):
    # E(3) symmetry is exact in the construction (CG coefficients, scalar gates), so only
    # float64 rounding remains: ~1e-15 relative per operation, 1e-10 leaves 5 digits margin.
    m = _model(arch)
    atoms = _structure()
    ref = _eval(m, atoms)
    rng = np.random.default_rng(7)
    for k in range(3):
        rot = Rotation.random(random_state=k).as_matrix()
        if k == 1:
            rot = -rot  # improper: rotation times inversion (parity)
        if k == 2:
            rot = np.diag([1.0, 1.0, -1.0])  # a mirror
        a = atoms.copy()
        a.set_cell(atoms.cell.array @ rot.T, scale_atoms=True)
        a.positions += rng.normal(size=3) * 5.0  # and a translation
        out = _eval(m, a)
        r = torch.tensor(rot)
        assert _rel(out["energy"], ref["energy"]) < 1e-10
        assert _rel(out["atom_energy"], ref["atom_energy"]) < 1e-10
        assert _rel(out["forces"], ref["forces"] @ r.T) < 1e-10
        assert _rel(out["stress"][0], r @ ref["stress"][0] @ r.T) < 1e-10
    perm = rng.permutation(len(atoms))
    out = _eval(m, atoms[perm])
    assert _rel(out["energy"], ref["energy"]) < 1e-10
    assert _rel(out["forces"], ref["forces"][perm]) < 1e-10
    assert _rel(out["atom_energy"], ref["atom_energy"][perm]) < 1e-10


@pytest.mark.parametrize("arch", ARCHS)
def test_forces_are_minus_energy_gradient(arch):
    # central differences: truncation ~ h^2 E''' ~ 1e-10 eV/Å with h = 1e-5 Å, rounding
    # ~ 1e-16 * |E| / h ~ 1e-10 eV/Å: a 1e-7 absolute tolerance is 1000x those.
    m = _model(arch, zbl=True)
    atoms = _structure(1)
    f = _eval(m, atoms)["forces"].numpy()
    h = 1e-5
    for a, x in [(0, 0), (3, 1), (5, 2)]:
        e = []
        for d in (h, -h):
            b = atoms.copy()
            b.positions[a, x] += d
            e.append(float(_eval(m, b)["energy"][0]))
        assert abs(-(e[0] - e[1]) / (2 * h) - f[a, x]) < 1e-7


@pytest.mark.parametrize("arch", ARCHS)
def test_stress_is_strain_derivative(arch):
    # sigma_ij = (1/V) dE/d eps_ij for the symmetric strain x -> (1 + eps) x of cell and atoms;
    # central differences with h = 1e-6, same error argument as for the forces.
    m = _model(arch)
    atoms = _structure(2)
    s = _eval(m, atoms)["stress"][0].numpy()
    vol = atoms.get_volume()
    h = 1e-6
    for i, j in [(0, 0), (1, 2), (2, 2), (0, 1)]:
        e = []
        for d in (h, -h):
            eps = np.zeros((3, 3))
            eps[i, j] += d / 2
            eps[j, i] += d / 2
            b = atoms.copy()
            b.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            e.append(float(_eval(m, b)["energy"][0]))
        assert abs((e[0] - e[1]) / (2 * h) / vol - s[i, j]) < 1e-7


@pytest.mark.parametrize("arch", ARCHS)
def test_smooth_at_cutoff(arch):
    # dimer: the polynomial envelope has zero value, slope and curvature at r_max, so
    # E(r) - E(inf) = O((r_max - r)^3) and F = O((r_max - r)^2): halving the distance to the
    # cutoff divides them by at least 8 and 4 (up to O(delta) corrections, < 10% here).
    # (NequIP's radial input is Bessel x envelope and the Bessel functions vanish linearly
    # at r_max, one power more: 16 and 8; Allegro's pair latent sees the envelope alone.)
    m = _model(arch)

    def dimer(r):
        return Atoms("CuAu", positions=[[0, 0, 0], [r, 0, 0]])

    e_inf = float(_eval(m, dimer(10.0))["energy"][0])
    vals = []
    for delta in (4e-3, 2e-3):
        out = _eval(m, dimer(m.r_max - delta))
        vals.append((float(out["energy"][0]) - e_inf, float(out["forces"][0, 0])))
    expected = (16, 8) if arch == "nequip" else (8, 4)
    assert abs(vals[0][0] / vals[1][0] - expected[0]) < 0.1 * expected[0]
    assert abs(vals[0][1] / vals[1][1] - expected[1]) < 0.1 * expected[1]
    # beyond the cutoff the pair contributes exactly nothing, even when listed (skin)
    a = dimer(m.r_max + 0.05)
    pos = torch.tensor(a.positions)
    ei, sh = neighbor_list(pos, None, None, m.r_max + 0.5)
    assert ei.shape[1] == 2
    data = {"pos": pos, "atom_types": torch.tensor([0, 1]), "cell": torch.zeros(1, 3, 3, dtype=torch.float64),
            "pbc": torch.zeros(1, 3, dtype=torch.bool), "batch": torch.zeros(2, dtype=torch.long),
            "edge_index": ei, "edge_cell_shift": sh}
    out = m(data)
    assert float(out["energy"][0]) == e_inf
    assert float(out["forces"].abs().max()) == 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_of_different_sizes_equals_single_evaluations(arch):
    # structures in a batch do not interact: identical to one-by-one up to float64 rounding
    m = _model(arch)
    structs = [_structure(3, 4), _structure(4, 7), Atoms("CuAuCu", positions=[[0, 0, 0], [2.4, 0, 0], [0, 2.5, 0.3]])]
    out = m(collate(structs, r_max=m.r_max, species=m.species))
    n0 = 0
    for b, a in enumerate(structs):
        single = _eval(m, a)
        n = len(a)
        assert _rel(out["energy"][b], single["energy"][0]) < 1e-12
        assert _rel(out["forces"][n0:n0 + n], single["forces"]) < 1e-12
        assert _rel(out["stress"][b], single["stress"][0]) < 1e-12 or b == 2
        n0 += n
    # the isolated molecule has no volume: its stress is defined as zero
    assert float(out["stress"][2].abs().max()) == 0.0
    assert out["atom_energy"].shape == (14,)
    torch.testing.assert_close(out["energy"], torch.zeros(3, dtype=torch.float64).index_add(
        0, collate(structs, r_max=m.r_max, species=m.species)["batch"], out["atom_energy"]))


@pytest.mark.parametrize("arch", ARCHS)
def test_float32_matches_float64(arch):
    # the same weights in single precision: relative agreement ~1e-6 (24-bit mantissa,
    # a few hundred operations deep); 1e-4 on forces leaves margin for cancellations.
    m64 = _model(arch)
    m32 = _model(arch, dtype="float32")
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    atoms = _structure(5)
    o64, o32 = _eval(m64, atoms), _eval(m32, atoms)
    assert o32["forces"].dtype == torch.float32
    assert _rel(o32["energy"].double(), o64["energy"]) < 1e-5
    assert _rel(o32["forces"].double(), o64["forces"]) < 1e-4


def test_parity_off_is_rotation_but_not_mirror_equivariant_in_general():
    # SO(3) model (parity=False): rotations are exact symmetries; mirrors need not be
    # (it can tell chiral structures apart).  Fact checked: rotation invariant to 1e-10,
    # and the energy of a chiral structure differs from its mirror image by > 1e-8.
    m = _model("nequip", parity=False, lmax=2, num_layers=3)
    atoms = Atoms("CuAuCuAu", positions=[[0, 0, 0], [2.3, 0, 0], [0, 2.2, 0], [0.3, 0.4, 2.5]])
    e = float(_eval(m, atoms)["energy"][0])
    rot = Rotation.random(random_state=1).as_matrix()
    b = atoms.copy()
    b.positions = atoms.positions @ rot.T
    assert abs(float(_eval(m, b)["energy"][0]) - e) < 1e-10 * abs(e)
    b.positions = atoms.positions * np.array([1, 1, -1])
    assert abs(float(_eval(m, b)["energy"][0]) - e) > 1e-8


def test_unknown_species_is_named():
    m = _model("nequip")
    with pytest.raises(ValueError, match=r"\['Ag'\].*\['Cu', 'Au'\]"):
        collate([Atoms("CuAg", positions=[[0, 0, 0], [2, 0, 0]])], r_max=m.r_max, species=m.species)
    data = collate([Atoms("CuAu", positions=[[0, 0, 0], [2, 0, 0]])], r_max=m.r_max, species=m.species)
    data["atom_types"] = torch.tensor([0, 2])
    with pytest.raises(ValueError, match="Cu', 'Au"):
        m(data)


def test_zbl_dominates_at_short_range():
    # two Cu nuclei 0.3 Å apart: the screened Coulomb repulsion k Z^2/r phi(r/a) is ~1 keV;
    # with ZBL on the energy is positive and the force repulsive, whatever the network says.
    m = _model("nequip", zbl=True)
    out = _eval(m, Atoms("Cu2", positions=[[0, 0, 0], [0.3, 0, 0]]))
    z, r = 29.0, 0.3
    a = 0.46850 / (2 * z**0.23)
    phi = sum(c * np.exp(-d * r / a) for c, d in zip((0.18175, 0.50986, 0.28022, 0.02817),
                                                     (3.19980, 0.94229, 0.40290, 0.20162), strict=True))
    e_zbl = 14.399645 * z * z / r * phi
    assert e_zbl > 500
    no_zbl = _model("nequip")
    e_net = float(_eval(no_zbl, Atoms("Cu2", positions=[[0, 0, 0], [0.3, 0, 0]]))["energy"][0])
    # same weights (same seed): the difference is the ZBL energy times the envelope u(0.3)
    from atomtwin.engines.mlip.nn import polynomial_cutoff

    u = float(polynomial_cutoff(torch.tensor(r, dtype=torch.float64), m.r_max))
    assert abs(float(out["energy"][0]) - e_net - e_zbl * u) < 1e-6 * e_zbl
    assert float(out["forces"][0, 0]) < 0  # atom 0 pushed away from atom 1 (towards -x)


@pytest.mark.parametrize("lmax,parity,mul", [(1, True, 4), (2, False, 3), (3, True, 2)])
def test_fast_convolution_equals_reference_tensor_product(lmax, parity, mul):
    # conv_uvu (channels-last, paths grouped per input block into one dense coupling) is
    # a re-association of tp_uvu's sums over the same CG coefficients: in float64 values
    # and all gradients agree to rounding (~1e-15 relative; 1e-12 leaves 1000x margin),
    # including the last-layer shape (scalars out only) and an empty edge list.
    from atomtwin.engines.mlip.models.nequip import hidden_irreps, sh_irreps
    from atomtwin.engines.mlip.nn import spherical_harmonics
    from atomtwin.engines.mlip.tp import (
        cg_coefficients,
        conv_uvu,
        conv_uvu_ops,
        make_paths,
        tp_uvu,
        uvu_plan,
    )

    g = torch.Generator().manual_seed(lmax * 10 + mul)
    irr, shi = hidden_irreps(mul, lmax, parity), sh_irreps(lmax, parity)
    for out_ls in (tuple((ell, p) for _, ell, p in irr), ((0, 1),)):
        paths, out = make_paths(irr, shi, out_ls, parity)
        cgs = cg_coefficients(paths, irr, shi, out)
        plan = uvu_plan(paths, cgs, irr, shi)
        for n_nodes, n_edges in ((5, 17), (3, 0)):
            h = [torch.randn(n_nodes, m, 2 * ell + 1, generator=g, dtype=torch.float64, requires_grad=True)
                 for m, ell, _ in irr]
            vec = torch.randn(n_edges, 3, generator=g, dtype=torch.float64, requires_grad=True)
            w = torch.randn(n_edges, len(paths), mul, generator=g, dtype=torch.float64, requires_grad=True)
            nb = torch.randint(0, n_nodes, (n_edges,), generator=g)
            ref = tp_uvu([b[nb] for b in h], spherical_harmonics(vec, lmax), w, paths, cgs, len(out))
            probe = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in ref]
            gr = torch.autograd.grad(sum((t * q).sum() for t, q in zip(ref, probe, strict=True)), [vec, w, *h],
                                     allow_unused=True, retain_graph=True)
            for lean in (False, True):  # autograd's backward, and the hand-written one
                got = [t.transpose(1, 2) for t in conv_uvu([b.transpose(1, 2) for b in h], nb,
                                                             spherical_harmonics(vec, lmax), w, paths,
                                                             cgs, len(out), plan, lean=lean)]
                assert [t.shape for t in got] == [t.shape for t in ref]
                gg = torch.autograd.grad(sum((t * q).sum() for t, q in zip(got, probe, strict=True)), [vec, w, *h],
                                         allow_unused=True)
                for a, b in zip(got + list(gg), ref + list(gr), strict=True):
                    if b is None or not b.numel():
                        assert a is None or not a.abs().sum()
                        continue
                    assert _rel(a, b) < 1e-12
            if not n_edges:
                continue
            # conv_uvu's hand-written backward (it keeps the inputs, not the per-edge gathers
            # and products) against autograd's backward of the same ops: the second
            # derivatives too (force training differentiates the gradient again)
            second = []
            for fn in (functools.partial(conv_uvu, lean=True), conv_uvu_ops):
                out_ = fn([b.transpose(1, 2) for b in h], nb, spherical_harmonics(vec, lmax), w,
                          paths, cgs, len(out), plan)
                first = torch.autograd.grad(sum((t.transpose(1, 2) * q).sum() for t, q in zip(out_, probe, strict=True)),
                                            [vec, w, *h], create_graph=True, allow_unused=True)
                loss = sum((d * d.detach().sin()).sum() for d in first if d is not None)
                second.append(torch.autograd.grad(loss, [vec, w, *h], allow_unused=True))
            for a, b in zip(*second, strict=True):
                assert (a is None) == (b is None)
                if b is not None:
                    assert _rel(a, b) < 1e-12


@pytest.mark.parametrize("lmax,parity,mul", [(1, True, 4), (2, False, 3), (2, True, 2)])
def test_allegro_contraction_per_centre_equals_reference_tensor_product(lmax, parity, mul, monkeypatch):
    # tp_uuu_cl_centre (the environment weighted and gathered per atom, then per pair) is a
    # re-association of tp_uuu's sums over the same CG entries: in float64 values and the
    # gradients with respect to the pair track and the per-atom environment agree to
    # rounding (1e-12 relative), for the full output and the last layer's scalars alone.
    from atomtwin.engines.mlip.models import allegro
    from atomtwin.engines.mlip.models.allegro import (
        contract_centre,
        coupling_entries,
        tp_uuu_cl_centre,
    )
    from atomtwin.engines.mlip.tp import cg_coefficients, make_paths, tp_uuu

    monkeypatch.setattr(allegro, "LEAN_MIN_ELEMENTS", 0)  # the lean backward at any size

    g = torch.Generator().manual_seed(lmax * 10 + mul)
    irr = tuple((mul, ell, (-1) ** ell if parity else 1) for ell in range(lmax + 1))
    ps = (1, -1) if parity else (1,)
    dims = [2 * ell + 1 for _, ell, _ in irr]
    for out_ls in (tuple((ell, p) for ell in range(lmax + 1) for p in ps), ((0, 1),)):
        paths, out = make_paths(irr, irr, out_ls, parity)
        cgs = cg_coefficients(paths, irr, irr, out)
        dout = [2 * ell + 1 for _, ell, _ in out]
        idx, val = coupling_entries(paths, cgs, dims, dims, dout)
        n_nodes, n_edges = 6, 23
        v = torch.randn(n_edges, sum(dims), mul, generator=g, dtype=torch.float64, requires_grad=True)
        env = torch.randn(n_nodes, sum(dims), mul, generator=g, dtype=torch.float64, requires_grad=True)
        centre = torch.randint(0, n_nodes, (n_edges,), generator=g)
        got = tp_uuu_cl_centre(v, env, centre, idx, val, sum(dout))
        blocks = lambda t: [b.transpose(1, 2) for b in t.split(dims, dim=1)]  # noqa: E731
        ref = torch.cat([b.transpose(1, 2) for b in
                         tp_uuu(blocks(v), blocks(env[centre]), paths, cgs, len(out))], dim=1)
        assert got.shape == ref.shape == (n_edges, sum(dout), mul)
        _same_values_and_gradients(got, ref, [v, env], g)
        # the eager form with the hand-written backward (saves the inputs, not the gathers):
        # the same values, gradients and second derivatives (a force loss differentiates the
        # gradient again) as autograd's own backward of the plain ops
        plain = functools.partial(tp_uuu_cl_centre, v, env, centre, idx, val, sum(dout))
        lean = functools.partial(contract_centre, v, env, centre, idx, val, sum(dout))
        _same_values_and_gradients(lean(), plain(), [v, env], g)
        probe = torch.randn(got.shape, generator=g, dtype=torch.float64)
        second = []
        for out in (lean(), plain()):
            gv, ge = torch.autograd.grad((out * probe).sum(), [v, env], create_graph=True)
            second.append(torch.autograd.grad((gv * gv.detach()).sum() + (ge ** 2).sum(), [v, env]))
        for a, b in zip(*second, strict=True):
            assert _rel(a, b) < 1e-12
        empty = contract_centre(v[:0], env, centre[:0], idx, val, sum(dout))
        assert empty.shape == (0, sum(dout), mul)
        assert not torch.autograd.grad(empty.sum(), env)[0].abs().sum()


@pytest.mark.parametrize("lmax,parity,mul", [(1, True, 4), (2, False, 3)])
def test_allegro_channel_mixing_batched_over_components_equals_per_irrep(lmax, parity, mul):
    # mix_cl (one matmul batched over components) against the per-irrep-block reference and
    # against EquivariantLinear itself on the split (E, mul, 2l+1) blocks: values and the
    # gradients for the track and the weights agree to rounding in float64, including the
    # empty edge list.
    from atomtwin.engines.mlip.models.allegro import _mix_cl_blocks, mix_cl
    from atomtwin.engines.mlip.nn import EquivariantLinear

    g = torch.Generator().manual_seed(7 + lmax)
    ps = (1, -1) if parity else (1,)
    irr = tuple((mul, ell, p) for ell in range(lmax + 1) for p in ps)
    lin = EquivariantLinear(irr, irr).double()
    dims = [2 * ell + 1 for _, ell, _ in irr]
    for n_edges in (11, 0):
        v = torch.randn(n_edges, sum(dims), mul, generator=g, dtype=torch.float64, requires_grad=True)
        got, ref = mix_cl(lin, v), _mix_cl_blocks(lin, v)
        via = torch.cat([t.transpose(1, 2) for t in lin([b.transpose(1, 2) for b in v.split(dims, 1)])], 1)
        assert got.shape == ref.shape == via.shape == v.shape
        if not n_edges:
            continue
        _same_values_and_gradients(got, ref, [v, *lin.weights], g)
        assert _rel(got, via) < 1e-12


@pytest.mark.parametrize("dims,last_act", [([5, 7, 3], False), ([4, 6, 6, 2], True), ([3, 2], False)])
def test_mlp_with_the_scale_folded_into_the_weights_is_the_unit_moment_perceptron(dims, last_act):
    # MLP folds SiLU's 1.679 into the next layer's weight; it must stay the perceptron
    # x -> ... (silu(x @ W_k / sqrt(fan_in)) * 1.679) ... written out, values and gradients
    # (input and weights) to rounding in float64, and keep MLP(0) = 0.
    from atomtwin.engines.mlip.nn import MLP

    g = torch.Generator().manual_seed(len(dims))
    mlp = MLP(dims, last_act=last_act).double()
    x = torch.randn(9, dims[0], generator=g, dtype=torch.float64, requires_grad=True)

    def written_out(x):
        for k, w in enumerate(mlp.weights):
            x = x @ w / w.shape[0] ** 0.5
            if k < len(mlp.weights) - 1 or last_act:
                x = torch.nn.functional.silu(x) * 1.679
        return x

    got, ref = mlp(x), written_out(x)
    _same_values_and_gradients(got, ref, [x, *mlp.weights], g)
    assert float(mlp(torch.zeros(1, dims[0], dtype=torch.float64)).abs().max()) == 0.0


def test_lean_memory_gives_the_same_energies_forces_stress_and_force_training_gradients():
    # set_lean_memory swaps the NequIP-style convolution's backward for the hand-written one
    # that keeps less: the same sums, so in float64 energy, forces and stress agree to
    # rounding, and so does the gradient of a force loss with respect to the weights (the
    # double backward of training); the setting is not part of the saved state.
    atoms = _structure(3, n=8)
    res = []
    for lean in (False, True):
        m = _model("nequip").set_lean_memory(lean)
        assert all(getattr(i, "lean_memory", lean) == lean for i in m.modules())
        out = _eval(m, atoms)
        m.train()
        b = collate([atoms], r_max=m.r_max, species=m.species)
        f = m(b)["forces"]
        loss = (f ** 2).sum()
        grads = torch.autograd.grad(loss, [p for p in m.parameters() if p.requires_grad], allow_unused=True)
        res.append((out["energy"], out["forces"], out["stress"], grads))
        assert "lean_memory" not in str(list(m.state_dict()))
    for a, b in zip(res[0][:3], res[1][:3], strict=True):
        assert _rel(a, b) < 1e-12
    assert sum(g is not None for g in res[0][3]) > 10
    for a, b in zip(res[0][3], res[1][3], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert _rel(a, b) < 1e-12
