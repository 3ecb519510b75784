"""MD checkpoints restore every tensor where the run lives and continue bit for bit.

On CPU: a state moved to another device (``meta``, which every torch build has) carries
every tensor there, RESPA's slow forces included; a checkpoint holding float32 tensors is
restored in float64; RESPA and NPT runs stopped at a checkpoint and resumed equal the
uninterrupted run exactly.  The CUDA twin of these facts is tests/gpu/test_md_resume_cuda.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.io import write
from atomtwin.engines.md import PairForceProvider, make_state
from atomtwin.engines.md.config import MDConfig
from atomtwin.engines.md.mts import RESPA
from atomtwin.engines.md.runner import load_checkpoint, run, save_checkpoint
from atomtwin.engines.md.state import draw_normal, move_tensors, state_to
from atomtwin.toolkit.errors import FileFormatError, InputError

LJ = {"kind": "lj", "params": {"Ar": [0.0104, 3.405]}, "r_cut": 8.5, "skin": 0.5}
SHORT = {**LJ, "part": "short", "split": [4.0, 5.5]}
LONG = {**LJ, "part": "long", "split": [4.0, 5.5]}


def _respa_state():
    a = bulk("Ar", "fcc", a=5.9, cubic=True).repeat((2, 2, 2))
    s = make_state(a.positions, a.get_chemical_symbols(), cell=a.cell[:], temperature_K=100.0, seed=1)
    fast = PairForceProvider("lj", {"Ar": (0.0104, 3.405)}, r_cut=8.5, part="short", split=(4.0, 5.5))
    slow = PairForceProvider("lj", {"Ar": (0.0104, 3.405)}, r_cut=8.5, part="long", split=(4.0, 5.5))
    integ = RESPA(0.005, 2, slow, temperature=100.0)
    s = integ.step(integ.init(s, fast), fast)
    return s.replace(stress=torch.zeros(3, 3, dtype=torch.float64))


def _all_tensors(state):
    out = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    out.update({f"aux.{k}": v for k, v in state.aux.items()})
    return {k: v for k, v in out.items() if isinstance(v, torch.Tensor) and k != "rng_state"}


def test_move_tensors_moves_every_tensor_including_respa_slow_forces():
    s = _respa_state()
    s = s.replace(aux={**s.aux, "extra": [torch.ones(2, dtype=torch.float32)]})
    moved = move_tensors(s, "meta")
    names = _all_tensors(moved)
    assert {"positions", "momenta", "masses", "cell", "forces", "stress", "aux.slow_forces"} <= set(names)
    for name, t in names.items():
        assert t.device.type == "meta" and t.dtype == torch.float64, name
    assert moved.aux["extra"][0].device.type == "meta" and moved.aux["extra"][0].dtype == torch.float64
    assert moved.rng_state.device.type == "cpu" and moved.rng_state.dtype == torch.uint8
    assert torch.equal(moved.rng_state, s.rng_state)
    assert (moved.step, moved.time, moved.energy, moved.aux["heat"]) == (s.step, s.time, s.energy, s.aux["heat"])


def test_random_numbers_come_from_the_state_generator_on_its_device():
    s = _respa_state()
    x1, r1 = draw_normal(s, (5, 3))
    x2, _ = draw_normal(s, (5, 3))
    assert x1.device == s.positions.device and torch.equal(x1, x2)  # the state is not modified
    x3, _ = draw_normal(s.replace(rng_state=r1), (5, 3))
    assert not torch.equal(x1, x3)
    same = state_to(s, "cpu")  # same device type: the stream continues unchanged
    assert torch.equal(same.rng_state, s.rng_state)


def test_checkpoint_in_float32_restores_in_float64(tmp_path):
    s = _respa_state()
    s32 = s.replace(aux={**s.aux, "slow_forces": s.aux["slow_forces"].float()},
                    forces=s.forces.float())
    cfg = MDConfig(structure="ar.xyz", potential=SHORT, ensemble="langevin", temperature=100.0,
                   timestep=0.005, mts={"slow": LONG, "k": 2}, steps=10, stride=2)
    save_checkpoint(tmp_path / "c.ckpt", s32, cfg, 3)
    got, n = load_checkpoint(tmp_path / "c.ckpt", cfg)
    assert n == 3
    for name, t in _all_tensors(got).items():
        assert t.dtype == torch.float64 and t.device.type == "cpu", name
    np.testing.assert_array_equal(got.aux["slow_forces"].numpy(), s32.aux["slow_forces"].double().numpy())
    # a checkpoint of a run on another kind of device is refused, naming both
    ck = torch.load(tmp_path / "c.ckpt", weights_only=True)
    ck["device"] = "cuda"
    torch.save(ck, tmp_path / "cuda.ckpt")
    with pytest.raises(InputError, match="holds a cuda run; this config runs on cpu"):
        load_checkpoint(tmp_path / "cuda.ckpt", cfg)
    (tmp_path / "bad.ckpt").write_bytes(b"\x00" * 64)
    with pytest.raises(FileFormatError, match=r"bad.ckpt: cannot read the MD checkpoint .*Fix: "):
        load_checkpoint(tmp_path / "bad.ckpt", cfg)


def _cfg(d: Path, **kw) -> dict:
    a = bulk("Ar", "fcc", a=5.9, cubic=True).repeat((2, 2, 2))
    write(d / "ar.xyz", a)
    base = dict(structure=str(d / "ar.xyz"), potential=LJ, timestep=0.005, steps=40,
                temperature=100.0, output=str(d / "t.nc"), stride=4, checkpoint=str(d / "run.ckpt"),
                checkpoint_every=20, progress=False, seed=5)
    return {**base, **kw}


@pytest.mark.parametrize("kind", ["respa", "npt"])
def test_resume_is_bit_identical(kind, tmp_path):
    extra = ({"potential": SHORT, "mts": {"slow": LONG, "k": 2}, "ensemble": "langevin"} if kind == "respa"
             else {"ensemble": "npt", "pressure": 1e-4, "compressibility": 160.0, "tau_p": 0.5})
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    full = run(_cfg(a, **extra))
    run(_cfg(b, **extra), steps=20)
    Path(_cfg(b)["output"]).unlink()
    ck = torch.load(b / "run.ckpt", weights_only=True)
    ck["n_frames"] = 0  # continue into a fresh file
    torch.save(ck, b / "run.ckpt")
    res = run(_cfg(b, **extra), resume=True)
    assert res.state.step == 40
    for name, t in _all_tensors(full.state).items():
        assert torch.equal(_all_tensors(res.state)[name], t), name
    assert torch.equal(res.state.rng_state, full.state.rng_state)
