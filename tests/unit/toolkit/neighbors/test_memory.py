"""The memory budget of chunked analyses: a chunk that cannot fit is a named error with
its fix; a MemoryError inside a guarded loop becomes one; the raw pair arrays agree with
the canonical pair list."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import neighbor_pairs, pair_arrays
from atomtwin.toolkit.neighbors.memory import (
    ChunkMemoryError,
    available_memory,
    check_chunk,
    fit_chunk,
    memory_guard,
)


def test_chunk_that_cannot_fit_is_a_named_input_error():
    avail = available_memory()
    assert avail is None or avail > 0
    if avail is None:
        pytest.skip("the platform does not report available memory")
    check_chunk(1024, "tiny", "nothing")  # 1 kB always fits
    with pytest.raises(ChunkMemoryError, match="Fix: pass frame_chunk=3") as err:
        check_chunk(4 * avail + 2**30, "hbonds: 64 frames", "pass frame_chunk=3")
    assert isinstance(err.value, InputError) and isinstance(err.value, MemoryError)
    # the largest chunk that fits: within the share of what is available, at least 1
    assert fit_chunk(10, 1.0) == 10
    assert fit_chunk(10**12, 2**20, share=0.5) <= avail // 2**21 + 1
    assert fit_chunk(5, 10.0 * avail) == 1


def test_memory_error_inside_a_guarded_loop_is_named():
    with pytest.raises(ChunkMemoryError, match="rdf: ran out of memory.*Fix: pass a smaller r_max"):
        with memory_guard("rdf", "pass a smaller r_max"):
            raise MemoryError("Unable to allocate 60.8 GiB")
    with pytest.raises(KeyError):  # anything else passes through unchanged
        with memory_guard("rdf", "x"):
            raise KeyError("k")


def test_raw_pair_arrays_equal_the_canonical_list():
    rng = np.random.default_rng(3)
    cell = np.array([[9.0, 0, 0], [2.5, 8.0, 0], [1.0, 1.5, 7.5]])
    pos = rng.random((300, 3)) @ cell
    p = neighbor_pairs(pos, cell, True, 3.2)
    i, j, d, vec = pair_arrays(pos, cell, True, 3.2, "ijdD")
    # the same pairs (an unordered set) and the same distances; D = r_j - r_i + S @ cell
    ref = sorted(zip(p.i.tolist(), p.j.tolist(), np.round(p.distances, 9).tolist(), strict=True))
    lo, hi = np.minimum(i, j).astype(int), np.maximum(i, j).astype(int)
    got = sorted(zip(lo.tolist(), hi.tolist(), np.round(d, 9).tolist(), strict=True))
    assert got == ref
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), d, rtol=1e-12)
    (d_only,) = pair_arrays(pos, cell, True, 3.2, "d")
    np.testing.assert_allclose(np.sort(d_only), np.sort(d), rtol=0, atol=0)
    with pytest.raises(InputError):
        pair_arrays(pos, cell, True, -1.0)
