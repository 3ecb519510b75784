"""RESPA multiple time steps on a Lennard-Jones split with a known scale separation:
fast = the short-range part (r < 4.2-5.4 Å, switched), slow = the long-range rest."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from atomtwin.engines.md import VelocityVerlet, kinetic_energy, state_from_atoms
from atomtwin.engines.md.forces import PairForceProvider
from atomtwin.engines.md.mts import RESPA
from atomtwin.toolkit import units as U

P = {"Ar": (0.0104, 3.405)}
KW = dict(r_cut=8.5, r_on=7.5, split=(4.2, 5.4), skin=0.8)


def test_respa_matches_single_step_run_with_k_times_fewer_slow_evaluations():
    a = bulk("Ar", "fcc", a=5.9, cubic=True).repeat((2, 2, 2))
    s0 = state_from_atoms(a, temperature_K=120.0, seed=11)
    dt, k, n = 0.005, 4, 1200
    full = PairForceProvider("lj", P, part="full", **KW)
    ref = VelocityVerlet(dt)
    s = ref.init(s0, full)
    e_ref, k_ref = [], []
    for _ in range(n):
        s = ref.step(s, full)
        e_ref.append(ref.conserved_energy(s))
        k_ref.append(kinetic_energy(s))
    fast = PairForceProvider("lj", P, part="short", **KW)
    slow = PairForceProvider("lj", P, part="long", **KW)
    mts = RESPA(dt, k, slow)
    s = mts.init(s0, fast)
    e_mts, k_mts = [], []
    for _ in range(n // k):
        s = mts.step(s, fast)
        e_mts.append(mts.conserved_energy(s))
        k_mts.append(kinetic_energy(s))
    assert s.step == n
    # large-model (slow) evaluations: one per outer step (+1 at init) vs one per step
    assert (full.n_calls - 1) / (slow.n_calls - 1) == k
    # energy conservation: same 1 K/ns bound as plain NVE (tests/regression/test_md_ensembles)
    bound = 1.5 * U.KB / 1000.0
    t = np.arange(len(e_mts)) * k * dt
    assert abs(np.polyfit(t, e_mts, 1)[0]) / s.n_atoms < bound
    # same total energy surface: both runs start from the same state, so the conserved
    # energies agree to within their fluctuations (std of the reference, x4)
    assert abs(np.mean(e_mts) - np.mean(e_ref)) < 4 * np.std(e_ref) + 1e-4
    # mean kinetic energy (temperature) agrees within 4 block-standard errors
    blocks = [np.mean(b) for b in np.array_split(np.array(k_ref[200:]), 10)]
    err = np.std(blocks, ddof=1) / np.sqrt(10) * np.sqrt(2)
    assert abs(np.mean(k_mts[50:]) - np.mean(k_ref[200:])) < 4 * err + 0.002
