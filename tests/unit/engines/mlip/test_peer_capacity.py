"""The shared peer builder (tests/support/peer_models.py) gives capacity-matched pairs.

Every benchmark and peer test builds its nequip / nequip-allegro comparisons through
``peer_models.matched_pair``; this asserts that, at both benchmark settings, the pair it
calls matched has parameter counts within 5 % (the issue's definition of equal capacity),
that the "widths" pair is the unmatched setting (the Allegro peer is larger at equal widths:
its readout reads every layer's latents), and that the FLOP counter sees work on both
sides.  5 % is not a tolerance on a computed number but the stated criterion; the knobs are
integers, so the achievable mismatch is about one unit of the knob's slope (< 1 % here for
Allegro, ~3 % for NequIP at the speed benchmark's settings, where one unit of the peer's
type-embedding width is 5 % of its parameters).
"""

from __future__ import annotations

import pytest
import torch

peer_models = pytest.importorskip("peer_models")
pytest.importorskip("nequip")
pytest.importorskip("allegro")

pytestmark = pytest.mark.peer


@pytest.mark.parametrize("settings", ["BENCH", "ACCURACY"])
@pytest.mark.parametrize("arch", ["nequip", "allegro"])
def test_matched_pair_parameter_counts_within_5_percent(arch, settings):
    h = getattr(peer_models, settings)
    ours, peer, info = peer_models.matched_pair(arch, h, match="params", avg=20.0)
    n_o, n_p = peer_models.param_count(ours), peer_models.param_count(peer)
    print(f"{arch} {settings}: ours {n_o:,} / peer {n_p:,} parameters ({info['knob']})")
    assert (n_o, n_p) == (info["params_ours"], info["params_peer"])
    assert abs(n_o / n_p - 1) <= 0.05, info
    # shared settings really are shared: same lmax and cutoff on both sides
    assert ours.lmax == h.lmax and ours.r_max == h.r_max


def test_allegro_at_equal_widths_is_the_unmatched_setting():
    _, _, info = peer_models.matched_pair("allegro", peer_models.ACCURACY, match="widths", avg=20.0)
    assert info["params_ratio"] < 0.95 and info["unmatched"]


def test_flops_per_edge_counted_for_both_sides():
    from atomtwin.engines.mlip.compile import example_graph

    ours, peer, _ = peer_models.matched_pair("allegro", peer_models.ACCURACY, avg=20.0)
    b = example_graph(ours, 20, seed=0)
    b = {k: (v.float() if v.is_floating_point() else v) for k, v in b.items()}
    fo = peer_models.flops_per_edge(peer_models.ours_energy_forces(ours), b)
    fp = peer_models.flops_per_edge(peer_models.peer_energy_forces(peer), b)
    # at least the latent MLPs' matmuls of the forward pass (2 x in x out per edge per layer)
    assert fo > 2 * 32 * 32 and fp > 2 * 32 * 32
    # both sides evaluate the same structure: forces of the same shape, finite
    _, f1 = peer_models.ours_energy_forces(ours)(b)
    _, f2 = peer_models.peer_energy_forces(peer)(b)
    assert f1.shape == f2.shape and torch.isfinite(f1).all() and torch.isfinite(f2).all()
