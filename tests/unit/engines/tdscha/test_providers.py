"""Force providers: per-member ASE calculator copies and the batched MLIP provider."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from atomtwin.engines.tdscha import ASEProvider, EnsembleAverager, System


def _ensemble(atoms, n_configs, width, seed):
    x0 = atoms.get_positions().ravel()
    return x0 + width * np.random.default_rng(seed).standard_normal((n_configs, x0.size))


def test_ase_copies_give_the_same_numbers_and_fewer_neighbour_list_builds():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 2))
    x = _ensemble(atoms, 8, 0.15, 0)
    shared, copies = ASEProvider(atoms, EMT(), copies=False), ASEProvider(atoms, EMT())
    drift = 1e-3 * np.random.default_rng(1).standard_normal(x.shape[1])
    for k in range(4):  # the ensemble drifts slowly, as in a correlated TD-SCHA run
        e1, f1, s1 = shared.evaluate(x + k * drift)
        e2, f2, s2 = copies.evaluate(x + k * drift)
        # same calculator, same configuration: identical to rounding
        np.testing.assert_allclose(e2, e1, rtol=0, atol=1e-10)
        np.testing.assert_allclose(f2, f1, rtol=0, atol=1e-10)
        np.testing.assert_allclose(s2, s1, rtol=0, atol=1e-12)
    builds_copies = sum(a.calc.nl.nupdates for a in copies._slots)
    builds_shared = shared.atoms.calc.nl.nupdates
    # ASE's list is rebuilt when an atom moved by more than its skin (0.3 Å for EMT).  Members
    # spread by 0.15 Å per component differ by ~0.37 Å per atom: sharing one list, nearly every
    # switch of member rebuilds it (32 calls); each copy builds once, its member drifting 5e-3 Å
    assert builds_copies == 8
    assert builds_shared >= 24
    capped = ASEProvider(atoms, EMT(), max_copies=3)
    np.testing.assert_allclose(capped.evaluate(x)[1], shared.evaluate(x)[1], rtol=0, atol=1e-10)
    assert len(capped._slots) == 3  # members share copies cyclically beyond max_copies


class _Uncopyable(EMT):
    def __deepcopy__(self, memo):
        raise TypeError("cannot copy me")


def test_uncopyable_calculator_falls_back_to_the_shared_one():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    p = ASEProvider(atoms, _Uncopyable())
    e, f, _ = p.evaluate(_ensemble(atoms, 4, 0.05, 2))
    ref = ASEProvider(atoms, EMT(), copies=False).evaluate(_ensemble(atoms, 4, 0.05, 2))
    assert not p.copies
    np.testing.assert_allclose(e, ref[0], atol=1e-10)


@pytest.fixture(scope="module")
def mlip_model():
    torch = pytest.importorskip("torch")
    from atomtwin.engines.mlip import ModelConfig, build_model

    torch.manual_seed(0)
    # an untrained float64 NequIP: the provider is checked for arithmetic identity, not physics
    return build_model(ModelConfig(species=("Cu",), r_max=3.0, num_layers=1, lmax=1, mul=4, num_basis=4,
                                   radial_hidden=8, avg_num_neighbors=12.0, dtype="float64"))


def test_mlip_batched_equals_one_call_per_configuration(mlip_model):
    from atomtwin.engines.mlip.calculator import Calculator
    from atomtwin.engines.tdscha import MLIPProvider

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 2))
    x = _ensemble(atoms, 6, 0.05, 3)
    batched = MLIPProvider(mlip_model, atoms, batch_size=4, skin=0.3)
    per_config = ASEProvider(atoms, Calculator(mlip_model), copies=False)
    for k in range(3):
        xk = x + k * 0.02  # a rigid 0.035 Å shift per call: the lists are reused (under skin/2 = 0.15 Å)
        eb, fb, sb = batched.evaluate(xk)
        ep, fp, sp = per_config.evaluate(xk)
        # float64 model; the batched graph sums the same edges (plus zero-weight skin edges)
        # in another order: agreement to ~1e-12 of the values, 1e-9 absolute leaves margin
        np.testing.assert_allclose(eb, ep, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fb, fp, rtol=0, atol=1e-9)
        np.testing.assert_allclose(sb, sp, rtol=0, atol=1e-9)
    assert batched.n_calls == 3 * 2  # 6 configurations in chunks of 4: two model calls each time
    assert batched.n_builds == 6  # one list per member, never rebuilt: stale lists stayed exact


def test_mlip_provider_drives_an_ensemble_average(mlip_model):
    from atomtwin.engines.tdscha import MLIPProvider

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    s = System.from_atoms(atoms)
    prov = MLIPProvider(mlip_model, atoms)
    avg = EnsembleAverager(prov, s, 8, rng=0)
    L = np.eye(s.n_reduced) * 0.3  # mass-scaled width: ~0.02 Å for Cu
    a1 = avg(np.zeros(s.n), L)
    # the average force of a perfect fcc crystal under antithetic sampling: forces at +xi and
    # -xi cancel to first order, so <f> is O(width²) and much smaller than the single forces
    e, f, _ = prov.evaluate(s.to_cartesian(avg.configurations(np.zeros(s.n), L)))
    assert prov.n_calls == 2 and np.isfinite(a1.energy)
    assert np.abs(a1.force * s.sqrt_m).max() < 0.2 * np.abs(f).max()
    with pytest.raises(ValueError, match="unknown to the model"):
        MLIPProvider(mlip_model, bulk("Al", "fcc", a=4.05, cubic=True))


def test_config_kind_mlip_builds_the_batched_provider(mlip_model, tmp_path):
    from ase.io import write
    from atomtwin.engines.mlip import save_checkpoint
    from atomtwin.engines.tdscha import MLIPProvider
    from atomtwin.engines.tdscha.config import RunConfig

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    write(tmp_path / "cu.xyz", atoms)
    save_checkpoint(tmp_path / "m.ckpt", mlip_model)
    cfg = RunConfig.from_dict({"model": {"kind": "mlip", "structure": "cu.xyz", "checkpoint": "m.ckpt",
                                         "batch_size": 2, "born_charges": {"Cu": 0.0}},
                               "averages": {"kind": "ensemble", "n_configs": 4}}, base_dir=str(tmp_path))
    system, model, prov = cfg.build()
    assert model is None and isinstance(prov, MLIPProvider) and system.n == 12
    x = _ensemble(atoms, 4, 0.05, 4)
    # the checkpoint round trip keeps the weights: the same numbers as the in-memory model
    np.testing.assert_allclose(prov.evaluate(x)[1], MLIPProvider(mlip_model, atoms).evaluate(x)[1], atol=1e-12)
    with pytest.raises(ValueError, match="checkpoint"):
        RunConfig.from_dict({"model": {"kind": "mlip", "structure": "cu.xyz"},
                             "averages": {"kind": "ensemble"}}, base_dir=str(tmp_path)).build()
