"""Data-parallel training: 2 gloo processes equal 1 process with the same global batch."""

from __future__ import annotations

import os
import socket

import ase.io
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from atomtwin.engines.mlip import ModelConfig, TrainConfig
from atomtwin.engines.mlip.train import train

TINY = dict(architecture="nequip", r_max=3.0, num_layers=1, lmax=1, mul=4, radial_hidden=8, dtype="float64")


def _cfg(data, out):
    return TrainConfig(model=ModelConfig(**TINY), train_files=(str(data),), output_dir=str(out),
                       batch_size=4, max_epochs=2, lr=5e-3, val_fraction=0.25, stress_weight=1.0,
                       progress=False, ema_decay=0.0)


def _worker(rank, world, port, data, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train(_cfg(data, out))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    # the loss of each rank is normalised by the global counts and the gradients are
    # summed over ranks, so the update is the single-process one; only the order of the
    # floating-point sums differs (float64: ~1e-15 relative per step, 1e-10 after 2 epochs)
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(10):
        a = bulk("Cu", "fcc", a=3.61).repeat((2, 1, 1))
        a.positions += rng.normal(scale=0.08, size=a.positions.shape)
        a.calc = EMT()
        a.get_potential_energy()
        a.get_stress()
        frames.append(a)
    data = tmp_path / "cu.extxyz"
    ase.io.write(data, frames)
    single = train(_cfg(data, tmp_path / "one"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, 2, port, data, tmp_path / "two")) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    if any(p.exitcode != 0 for p in procs):
        pytest.fail(f"DDP workers failed: exit codes {[p.exitcode for p in procs]}")
    a = torch.load(single["last_checkpoint"], weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "two" / "last.ckpt", weights_only=False)["state_dict"]
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-10, atol=1e-12)
