"""Offline selection from a pool: uncertain frames first, near-duplicates not twice."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from atomtwin.engines.active.selection import select_frames  # noqa: E402


def test_uncertain_frames_are_picked_first(cu_data, committee):
    est, _ = committee
    pool = cu_data["crystal"][20:28] + cu_data["liquid"][:3]
    sel = select_frames(est, pool, 3, diversity=False)
    assert sorted(sel.indices) == [8, 9, 10]  # the three liquid frames


def test_diversity_skips_duplicates(cu_data, committee):
    est, _ = committee
    liquid = cu_data["liquid"][0]
    pool = cu_data["crystal"][20:26] + [liquid] * 4 + [cu_data["slab"][0]]
    plain = select_frames(est, pool, 2, diversity=False)
    diverse = select_frames(est, pool, 2, diversity=True)
    assert all(6 <= i <= 9 for i in plain.indices)  # both copies of the liquid frame
    picked = [pool[i] for i in diverse.indices]
    assert sum(fr is liquid for fr in picked) == 1  # the liquid once, then something else
