"""Multiple time steps with a co-trained MLIP pair (arXiv:2310.13756): the small model
every inner step, the large residual model every k-th, against small + large at the short
step.  The pair and the equilibrated liquid (32 Cu atoms, 2000 K) are shipped in
``data/md/cu_pair`` (made by ``data/md/make_mts_pair.py``; EMT-labelled training data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from ase.io import read
from atomtwin.data import verified_path
from atomtwin.engines.md import SumProvider, VelocityVerlet, kinetic_energy, state_from_atoms
from atomtwin.engines.md.mlip_provider import MLIPForceProvider
from atomtwin.engines.md.mts import RESPA
from atomtwin.toolkit import units as U

# shipped package data, checked against data/SHA256SUMS
SMALL, LARGE, LIQUID = (verified_path("md", "cu_pair", name)
                        for name in ("small.ckpt", "large.ckpt", "cu_liquid_32.extxyz"))
DT = 0.001  # ps: the reference step


@pytest.fixture(scope="module")
def liquid():
    return state_from_atoms(read(LIQUID))


def _nve(integ, state, fast, n_outer):
    s = integ.init(state, fast)
    e, u, kin = [], [], []
    for _ in range(n_outer):
        s = integ.step(s, fast)
        e.append(integ.conserved_energy(s))
        u.append(float(s.energy))
        kin.append(kinetic_energy(s))
    return s, np.array(e), np.array(u), np.array(kin)


def _pair():
    return MLIPForceProvider(SMALL), MLIPForceProvider(LARGE)


def test_respa_k1_is_velocity_verlet_and_slow_calls_are_steps_over_k(liquid):
    # k = 1: p += dt/2 F_slow; p += dt/2 F_fast ... is velocity Verlet on F_fast + F_slow with
    # the additions regrouped; the float64 integrator state differs by rounding only
    # (1 ulp ~ 1e-15 Å); 40 steps of chaotic growth (Lyapunov time ~ 0.1 ps) keep it < 1e-12
    small, large = _pair()
    ref = VelocityVerlet(DT)
    a, ea, *_ = _nve(ref, liquid, SumProvider(small, large), 40)
    small2, large2 = _pair()
    b, eb, *_ = _nve(RESPA(DT, 1, large2), liquid, small2, 40)
    assert float((a.positions - b.positions).abs().max()) < 1e-12
    assert float((a.momenta - b.momenta).abs().max()) < 1e-10  # amu Å/ps, |p| ~ 50
    np.testing.assert_allclose(ea, eb, rtol=0, atol=1e-9)
    # k = 3 for 39 inner steps: the large model runs once per outer step (+1 at init),
    # the small one every inner step
    small3, large3 = _pair()
    c, *_ = _nve(RESPA(DT, 3, large3), liquid, small3, 13)
    assert c.step == 39 and abs(c.time - 39 * DT) < 1e-12
    assert large3.n_calls == 13 + 1 and small3.n_calls == 39 + 1


def test_respa_k3_keeps_short_step_accuracy(liquid):
    # 0.25 ps NVE of the 2000 K liquid from one state: reference (small + large, 1 fs),
    # RESPA k = 3 (large every 3 fs) and plain Verlet at 3 fs.
    n = 250
    small, large = _pair()
    _, e_ref, u_ref, k_ref = _nve(VelocityVerlet(DT), liquid, SumProvider(small, large), n)
    small, large = _pair()
    _, e_mts, u_mts, k_mts = _nve(RESPA(DT, 3, large), liquid, small, n // 3)
    small, large = _pair()
    _, e_big, *_ = _nve(VelocityVerlet(3 * DT), liquid, SumProvider(small, large), n // 3)
    assert large.n_calls == n // 3 + 1
    fl = {name: np.std(e) for name, e in (("ref", e_ref), ("mts", e_mts), ("big", e_big))}
    # NVE with the MLIP provider: Verlet's shadow-energy fluctuation grows as dt^2, so 3 fs
    # is ~9x the 1 fs one (allow 5-13).  Errors that do not shrink with dt (a neighbour
    # list missing pairs, forces inconsistent with the energy, float32 rounding: 1 ulp of
    # the ~110 eV total is 8e-6 eV, 0.2 % of the 1 fs fluctuation) would break this law.
    assert 5.0 < fl["big"] / fl["ref"] < 13.0, fl
    # RESPA integrates the stiff small model at 1 fs, so only the slow residual feels the
    # 3 fs step; its fluctuation stays within 1.5x of the reference (measured 1.05-1.15x
    # for k = 2-4 over 1 ps), far from plain Verlet's 9x at the same large-model cost
    assert fl["mts"] / fl["ref"] < 1.5, fl
    # no drift: a time-reversible symplectic splitting of a smooth (polynomial-envelope)
    # potential with an exact skin list has none; the fitted slope must be consistent with
    # zero (4 standard errors of the slope from the residual scatter, corrected by the
    # residuals' integrated autocorrelation time) or below 1 K/ns of heating
    for e, h in ((e_ref, DT), (e_mts, 3 * DT)):
        t = np.arange(1, e.size + 1) * h
        slope, icpt = np.polyfit(t, e, 1)
        res = e - (slope * t + icpt)
        rho = np.correlate(res, res, "full")[res.size - 1:] / (res @ res)
        tau = 1 + 2 * np.sum(rho[1:np.argmax(rho < 0)])  # samples per independent one
        se = np.std(res) * np.sqrt(12.0 * tau / e.size) / (t[-1] - t[0])
        assert abs(slope) < max(4 * se, 1.5 * U.KB / 1000.0 * liquid.n_atoms), (h, slope, se)
    # the same energy surface, the same start: the mean conserved energies agree within
    # the reference's fluctuation (x4), and the potential energy, sampled at the outer
    # steps, within 4 combined standard errors (0.05 ps blocks, ~ the decorrelation time)
    assert abs(e_mts.mean() - e_ref.mean()) < 4 * fl["ref"]
    u_ref3 = u_ref[2::3]

    def sem(x):
        b = [bb.mean() for bb in np.array_split(x, 5)]
        return np.std(b, ddof=1) / np.sqrt(5)

    assert abs(u_mts.mean() - u_ref3.mean()) < 4 * np.hypot(sem(u_mts), sem(u_ref3))


def test_atomtwin_md_yaml_runs_an_mlip_pair_with_mts(tmp_path, capsys, liquid):
    # `atomtwin md` with potential: mlip (small) and mts: {slow: {kind: mlip, ...}, k: 3}
    # is the Python RESPA run: same final positions to rounding, frames at the stride
    from atomtwin.toolkit.cli import main
    from atomtwin.toolkit.io import open as open_traj

    cfg = {"structure": str(LIQUID), "potential": {"kind": "mlip", "model": str(SMALL), "skin": 1.0},
           "mts": {"slow": {"kind": "mlip", "model": str(LARGE), "skin": 1.0}, "k": 3},
           "ensemble": "nve", "timestep": DT, "steps": 30, "stride": 6,
           "output": str(tmp_path / "mts.nc"), "progress": False}
    (tmp_path / "md.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["md", str(tmp_path / "md.yaml"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final_step"] == 30 and summary["frames"] == 6
    ds = open_traj(summary["output"])
    assert ds.sizes["frame"] == 6
    np.testing.assert_allclose(np.diff(ds.time.values), 6 * DT, rtol=1e-9)
    small, large = _pair()
    s, *_ = _nve(RESPA(DT, 3, large), liquid, small, 10)
    np.testing.assert_allclose(ds.positions.values[-1], s.positions.numpy(), atol=1e-10)
    e = ds.energy.values
    assert np.all(np.isfinite(e)) and torch.isfinite(s.forces).all()
