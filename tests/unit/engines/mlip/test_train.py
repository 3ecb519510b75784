"""Data reading, statistics, training mechanics (resume, checkpoints, CLI, residual
labels) and the ASE calculator, on tiny EMT-labelled Cu data."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from functools import partial

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from atomtwin.engines.mlip import Calculator, ModelConfig, TrainConfig, build_model, load_model
from atomtwin.engines.mlip.data import FrameDataset, frame_from_atoms, read_frames, statistics
from atomtwin.engines.mlip.model import save_checkpoint
from atomtwin.engines.mlip.train import train
from atomtwin.toolkit.io import read

TINY = dict(architecture="nequip", r_max=3.0, num_layers=1, lmax=1, mul=4, radial_hidden=8, dtype="float64")


def _frames(n, seed, rattle=0.08):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.61)  # 1-atom primitive cell: cheap, many images
        a = a.repeat((2, 1, 1))
        eps = rng.normal(scale=0.01, size=(3, 3))
        a.set_cell(a.cell.array @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
        a.positions += rng.normal(scale=rattle, size=a.positions.shape)
        a.calc = EMT()
        a.get_potential_energy()
        a.get_stress()
        out.append(a)
    return out


@pytest.fixture(scope="module")
def cu_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cu") / "cu.extxyz"
    ase.io.write(path, _frames(12, 0))
    return path


def _cfg(cu_file, out, **kw):
    base = dict(model=ModelConfig(**TINY), train_files=(str(cu_file),), output_dir=str(out),
                batch_size=3, max_epochs=2, lr=5e-3, val_fraction=0.25, stress_weight=1.0,
                progress=False, ema_decay=0.9)
    base.update(kw)
    return TrainConfig(**base)


def test_read_frames_labels_match_emt(cu_file):
    frames = read_frames(cu_file)
    atoms = ase.io.read(cu_file, index=":")
    assert len(frames) == 12
    a = atoms[3]
    a.calc = EMT()
    np.testing.assert_allclose(frames[3]["forces"], a.get_forces(), atol=1e-6)
    s = a.get_stress(voigt=False)
    np.testing.assert_allclose(frames[3]["stress"], s, atol=1e-8)
    assert abs(frames[3]["energy"] - a.get_potential_energy()) < 1e-6


def test_nan_label_names_file_and_frame(tmp_path):
    frames = _frames(3, 1)
    f = frames[2].get_forces().copy()
    f[1, 0] = np.nan
    frames[2].calc.results["forces"] = f
    path = tmp_path / "bad.extxyz"
    ase.io.write(path, frames)
    with pytest.raises(ValueError, match=r"bad\.extxyz: frame 2: 'forces'"):
        read_frames(path)


def test_statistics_recover_per_species_energies():
    # energies that are exactly linear in the composition: the least-squares shift must
    # return the per-species energies to rounding
    from ase import Atoms

    rng = np.random.default_rng(0)
    mu = {"Cu": -3.7, "Au": -2.2}
    frames = []
    for k in range(6):
        n = 2 + k
        sym = rng.choice(["Cu", "Au"], size=n)
        a = Atoms(list(sym), positions=rng.uniform(0, 8, size=(n, 3)))
        frames.append({"numbers": a.numbers, "pos": a.positions, "cell": np.zeros((3, 3)),
                       "pbc": np.zeros(3, bool), "energy": sum(mu[s] for s in sym),
                       "source": "mem", "index": k})
    ds = FrameDataset(frames, ["Cu", "Au"], 3.0)
    st = statistics(ds)
    np.testing.assert_allclose(st["shift"], [mu["Cu"], mu["Au"]], atol=1e-10)


def test_resume_continues_exactly(cu_file, tmp_path):
    # 3 epochs in one go == 2 epochs, stop, resume for the third: the shuffling of an epoch
    # depends on (seed, epoch) only, and optimizer/EMA/scheduler state is checkpointed, so
    # the weights agree to the last bit (same operations in the same order).
    full = train(_cfg(cu_file, tmp_path / "a", max_epochs=3))
    train(_cfg(cu_file, tmp_path / "b", max_epochs=2))
    resumed = train(_cfg(cu_file, tmp_path / "b", max_epochs=3), resume=True)
    sa = torch.load(full["last_checkpoint"], weights_only=False)
    sb = torch.load(resumed["last_checkpoint"], weights_only=False)
    for k in sa["state_dict"]:
        assert torch.equal(sa["state_dict"][k], sb["state_dict"][k]), k
        assert torch.equal(sa["ema_state_dict"][k], sb["ema_state_dict"][k]), k
    with open(tmp_path / "b" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    with open(tmp_path / "a" / "metrics.csv") as fh:
        rows_a = list(csv.DictReader(fh))
    assert rows_a[2]["val_forces_mae"] == rows[2]["val_forces_mae"]
    # a finished run has nothing to resume
    with pytest.raises(ValueError, match="has finished 3 epochs and max_epochs is 3"):
        train(_cfg(cu_file, tmp_path / "b", max_epochs=3), resume=True)
    # a different training config is refused
    with pytest.raises(ValueError, match="config differs"):
        train(_cfg(cu_file, tmp_path / "b", max_epochs=4, lr=1e-2), resume=True)


def test_checkpoint_incompatible_errors(cu_file, tmp_path):
    m = build_model(ModelConfig(species=("Cu",), **TINY))
    good = tmp_path / "m.ckpt"
    save_checkpoint(good, m)
    assert load_model(good).species == ["Cu"]
    payload = torch.load(good, weights_only=False)
    payload["version"] = 999
    torch.save(payload, tmp_path / "v.ckpt")
    with pytest.raises(ValueError, match="version 999"):
        load_model(tmp_path / "v.ckpt")
    payload = torch.load(good, weights_only=False)
    payload["model_config"]["mul"] = 8  # weights no longer fit the described model
    torch.save(payload, tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="does not match"):
        load_model(tmp_path / "c.ckpt")
    torch.save({"weights": 1}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match="not an atomtwin MLIP checkpoint"):
        load_model(tmp_path / "x.ckpt")


def test_calculator_matches_model_and_ase_conventions(cu_file, tmp_path):
    res = train(_cfg(cu_file, tmp_path / "r", max_epochs=1))
    calc = Calculator.from_checkpoint(res["best_checkpoint"])
    atoms = _frames(1, 5)[0]
    atoms.calc = calc
    e = atoms.get_potential_energy()
    assert abs(e - atoms.get_potential_energy(force_consistent=True)) == 0
    assert abs(atoms.get_potential_energies().sum() - e) < 1e-10 * abs(e)
    # ASE's own finite-difference checks of forces and stress (float64 model)
    # (central differences, d = 1e-4 Å / 1e-6 strain: errors ~1e-8, tolerance 1e-6)
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

    np.testing.assert_allclose(calculate_numerical_forces(atoms, 1e-4), atoms.get_forces(), atol=1e-6)
    np.testing.assert_allclose(calculate_numerical_stress(atoms, 1e-6, voigt=False),
                               atoms.get_stress(voigt=False), atol=1e-6)


def test_cli_train_and_residual_labels(cu_file, tmp_path, capsys):
    import yaml
    from atomtwin.toolkit.cli import main

    cfg = _cfg(cu_file, tmp_path / "small", max_epochs=1)
    d = cfg.to_dict()
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(d))
    assert main(["train", str(tmp_path / "small.yaml"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["epochs"] == 1 and np.isfinite(res["val_forces_mae"])
    # residual training: labels become reference minus the small model (MTS co-training)
    from atomtwin.engines.mlip.train import _residual_frames

    frames = read_frames(cu_file)[:2]
    small = load_model(res["best_checkpoint"])
    resid = _residual_frames(frames, res["best_checkpoint"])
    from atomtwin.engines.mlip.data import collate

    out = small(collate(frames, r_max=small.r_max, species=small.species))
    np.testing.assert_allclose(np.concatenate([r["forces"] for r in resid]),
                               np.concatenate([f["forces"] for f in frames]) - out["forces"].numpy(), atol=1e-12)
    big = replace(_cfg(cu_file, tmp_path / "big", max_epochs=1), residual_of=res["best_checkpoint"])
    out_big = train(big)
    assert torch.load(out_big["last_checkpoint"], weights_only=False)["residual_of"] == res["best_checkpoint"]
    # bad config keys are named
    (tmp_path / "bad.yaml").write_text("model: {archi: nequip}\n")
    assert main(["train", str(tmp_path / "bad.yaml")]) == 2
    assert "archi" in capsys.readouterr().err


def test_calculator_refuses_overlapping_atoms(tmp_path):
    from ase import Atoms

    m = build_model(ModelConfig(species=("Cu",), **TINY))
    save_checkpoint(tmp_path / "m.ckpt", m)
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [0.2, 0, 0]])
    atoms.calc = Calculator.from_checkpoint(tmp_path / "m.ckpt")
    with pytest.raises(ValueError, match=r"atoms 0 and 1 are 0\.200 Å apart"):
        atoms.get_potential_energy()
    # with ZBL the same geometry is evaluated (and strongly repulsive)
    mz = build_model(ModelConfig(species=("Cu",), zbl=True, **TINY))
    atoms.calc = Calculator(mz)
    assert atoms.get_potential_energy() > 100.0


def _big_files(tmp_path, n_frames=150, reps=(3, 3, 3)):
    """The same labelled frames (256-atom Cu, random labels: only reading is tested) as
    extxyz and as our netCDF schema store."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from atomtwin.toolkit.io import write
    from atomtwin.toolkit.schema import make_dataset

    rng = np.random.default_rng(4)
    base = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
    frames = []
    for _ in range(n_frames):
        a = base.copy()
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        a.calc = SinglePointCalculator(a, energy=float(rng.normal()), forces=rng.normal(size=(len(a), 3)))
        frames.append(a)
    xyz = tmp_path / "big.extxyz"
    ase.io.write(xyz, frames)
    ds = make_dataset(np.array([a.positions for a in frames]), base.get_chemical_symbols(),
                      cell=np.array([a.cell.array for a in frames]), pbc=(True, True, True),
                      forces=np.array([a.get_forces() for a in frames]),
                      energy=np.array([a.get_potential_energy() for a in frames]))
    nc = tmp_path / "big.nc"
    write(ds, nc)
    return xyz, nc, frames


def _read_all(frames, n: int, sums: list[float]) -> None:
    for k in range(n):
        sums.append(float(frames[k]["forces"].sum()))


def _traced_peak(fn) -> int:
    import gc
    import tracemalloc

    gc.collect()
    gc.disable()  # deterministic peaks: no collection in the middle of the measurement
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        gc.enable()


def test_lazy_dataset_reads_the_same_frames_with_bounded_memory(tmp_path):
    # A lazy dataset (extxyz byte index; netCDF through dask) gives exactly the frames of
    # the eager reader, and reading frames one after the other does not retain them:
    # going from 30 to all 150 frames raises the traced peak (numpy buffers included) by
    # less than half of the 120 extra frames' bytes (retaining them would add all of it;
    # measured with the cyclic collector off, so what remains is ASE's small calculator
    # cycles and backend bookkeeping), and the peak stays below the data (150 frames x
    # 108 atoms x (pos + forces) = 0.78 MB, all of which an eager reader holds).
    import tracemalloc

    xyz, nc, atoms = _big_files(tmp_path)
    data_bytes = sum(a.positions.nbytes + a.get_forces().nbytes for a in atoms)
    tracemalloc.start()
    try:
        for path in (xyz, nc):
            lazy = FrameDataset.from_files([path], None, r_max=3.0, lazy=True)
            assert lazy.species == ["Cu"] and len(lazy) == len(atoms)
            lazy.frames[1]  # warm-up: first-call imports and caches are not data
            sums: list[float] = []
            third = _traced_peak(partial(_read_all, lazy.frames, 30, []))
            every = _traced_peak(partial(_read_all, lazy.frames, len(lazy), sums))
            ks = (0, 77, len(atoms) - 1)
            if path.suffix == ".nc":  # the reference: the whole store loaded by xarray
                full = read(path)
                eager = {k: {"pos": full["positions"].values[k], "forces": full["forces"].values[k],
                             "cell": full["cell"].values[k], "energy": float(full["energy"].values[k])}
                         for k in ks}
            else:
                eager = {k: frame_from_atoms(ase.io.read(path, index=k), str(path), k) for k in ks}
            frame_bytes = data_bytes / len(atoms)
            assert every - third < 0.5 * (len(atoms) - 30) * frame_bytes, (path.suffix, third, every)
            assert every < data_bytes, (path.suffix, every, data_bytes)
            for k in ks:
                got = lazy.frames[k]
                for key in ("pos", "forces", "cell"):
                    np.testing.assert_array_equal(got[key], eager[k][key])
                assert got["energy"] == eager[k]["energy"]
            assert sums[-1] == float(eager[ks[-1]]["forces"].sum())
            # subsets stay lazy; graphs are built from the frame read on access
            sub = lazy.subset([5, 77])
            np.testing.assert_array_equal(sub[1]["pos"].numpy(), eager[77]["pos"])
            del eager
    finally:
        tracemalloc.stop()


def _tree(path):
    """{relative path: bytes} of every file under ``path`` (to prove nothing changed)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_unlabelled_data_is_refused_before_anything_is_written(cu_file, tmp_path):
    from atomtwin.toolkit.errors import InputError

    cif = tmp_path / "cu.cif"
    ase.io.write(cif, bulk("Cu", "fcc", a=3.61, cubic=True))
    with pytest.raises(InputError, match=r"cu\.cif' has no labels: none of its 1 frame\(s\) has an energy"):
        train(_cfg(cif, tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    # one frame without forces among labelled frames: named, never dropped from its batches
    frames = _frames(4, 3)
    frames[2] = frames[2].copy()  # .copy() leaves the calculator (and so the labels) behind
    mixed = tmp_path / "mixed.extxyz"
    ase.io.write(mixed, frames)
    with pytest.raises(InputError, match=r"mixed\.extxyz': frame 2 has no energy while 3 of its 4"):
        train(_cfg(mixed, tmp_path / "run"))
    # labels the loss does not weigh (energies only, energy_weight 0): nothing to fit
    from ase.calculators.singlepoint import SinglePointCalculator

    only_e = [a.copy() for a in _frames(4, 4)]
    for a in only_e:
        a.calc = SinglePointCalculator(a, energy=-3.0)
    ase.io.write(tmp_path / "energies.extxyz", only_e)
    with pytest.raises(InputError, match=r"hold only energy, which the loss does not use \(it fits "
                                         r"forces \(weight 1\), stress \(weight 1\)\)"):
        train(_cfg(tmp_path / "energies.extxyz", tmp_path / "run", energy_weight=0.0))
    assert not (tmp_path / "run").exists()


def test_previous_run_is_kept_unless_resume_or_force(cu_file, tmp_path, capsys):
    import yaml
    from atomtwin.toolkit.cli import main
    from atomtwin.toolkit.errors import InputError

    out = tmp_path / "run"
    with pytest.raises(InputError, match="nothing to resume"):
        train(_cfg(cu_file, out, max_epochs=1), resume=True)
    assert not out.exists()
    train(_cfg(cu_file, out, max_epochs=1))
    before = _tree(out)
    assert set(before) == {"best.ckpt", "last.ckpt", "metrics.csv"}
    with pytest.raises(InputError, match=r"holds a previous training run \(last\.ckpt, best\.ckpt, "
                                         r"metrics\.csv \(1 epochs\)\)"):
        train(_cfg(cu_file, out, max_epochs=1), overwrite=False)
    assert _tree(out) == before
    # through the CLI: one line naming the flags, exit 2, the folder untouched
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(_cfg(cu_file, out, max_epochs=1).to_dict()))
    assert main(["train", str(tmp_path / "cfg.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("atomtwin train: error: ")
    assert "Fix: --resume to continue it, --force to start over" in err[0]
    assert _tree(out) == before
    # --force starts over: a new run of one epoch (the metrics restart at epoch 1)
    assert main(["train", str(tmp_path / "cfg.yaml"), "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 1
    with open(out / "metrics.csv") as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1]
    # a run killed before its first epoch ended leaves only the csv header: no run to keep
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "metrics.csv").write_text("epoch,lr\n")
    with pytest.raises(InputError, match="nothing to resume"):
        train(_cfg(cu_file, tmp_path / "fresh", max_epochs=1), resume=True)
    assert train(_cfg(cu_file, tmp_path / "fresh", max_epochs=1), overwrite=False)["epochs"] == 1
