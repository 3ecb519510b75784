"""Strict locality of the Allegro-style model, and its absence in the NequIP-style one.

Allegro (Musaelian et al. 2023): the energy of atom i is a sum over the pairs (i, k) with
r_ik < r_max whose features are built from i's environment only, so moving an atom j that
stays beyond r_max of i leaves e_i unchanged.  The only way the numbers can change is the
order of floating-point sums when the neighbour list is rebuilt, so the tolerance is a few
ulp of e_i's summands: 1e-12 relative in float64 (the summands are O(1)).

NequIP-style message passing with 2 layers sees 2 r_max: j at 1.4 r_max from i, within
r_max of a common neighbour k, changes e_i.  The change is O(the model's response), here
> 1e-6 relative for random weights, far above rounding (1e-16) — a model that were local
by mistake would give a change of ~1e-16.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.data import collate
from atomtwin.engines.mlip.model import build_model

R_MAX = 3.0


def _cluster(j_pos):
    """i at the origin with two close neighbours, k at 2.1 Å on x, j beyond r_max of i
    (distance > 3 Å) but within r_max of k.  Non-periodic (vacuum box)."""
    rng = np.random.default_rng(0)
    near = rng.normal(scale=0.3, size=(2, 3)) + np.array([[-1.8, 0.5, 0.0], [0.2, -1.9, 0.4]])
    pos = np.vstack([[0.0, 0.0, 0.0], [2.1, 0.1, -0.1], j_pos, near])
    g = {"numbers": np.array([14, 8, 14, 8, 8]), "pos": pos, "cell": np.eye(3) * 40.0,
         "pbc": np.array([False, False, False])}
    return collate([g], r_max=R_MAX, species=["Si", "O"])


def _model(arch):
    torch.manual_seed(0)
    kw = dict(num_layers=2, lmax=1, mul=4, num_basis=4, dtype="float64")
    kw.update(latent=8, mlp_hidden=8) if arch == "allegro" else kw.update(radial_hidden=8)
    return build_model(ModelConfig(architecture=arch, species=("Si", "O"), r_max=R_MAX, **kw))


J0, J1 = np.array([4.4, 0.3, 0.0]), np.array([4.1, 1.2, 0.8])


def test_geometry_puts_j_beyond_r_max_of_i_and_within_r_max_of_k():
    for j in (J0, J1):
        assert np.linalg.norm(j) > R_MAX * 1.3
        assert np.linalg.norm(j - [2.1, 0.1, -0.1]) < R_MAX * 0.9


@pytest.mark.parametrize("kernel", [False, True])
def test_allegro_atom_energy_is_strictly_local(kernel):
    m = _model("allegro")
    if kernel:  # the sparse op path (its CPU implementation) is local too
        from atomtwin.engines.mlip.kernels import use_kernel

        assert use_kernel(m, allow_cpu=True)
    e0 = m(_cluster(J0))["atom_energy"].detach()
    e1 = m(_cluster(J1))["atom_energy"].detach()
    assert abs(float(e1[0] - e0[0])) <= 1e-12 * max(1.0, abs(float(e0[0])))
    # and j's move is seen by its neighbour k (the test would pass trivially otherwise)
    assert abs(float(e1[1] - e0[1])) > 1e-6


def test_nequip_atom_energy_is_not_local_beyond_one_cutoff():
    m = _model("nequip")
    e0 = m(_cluster(J0))["atom_energy"].detach()
    e1 = m(_cluster(J1))["atom_energy"].detach()
    assert abs(float(e1[0] - e0[0])) > 1e-6 * max(1.0, abs(float(e0[0])))
