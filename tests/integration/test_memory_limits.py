"""H-bonds, hops and rotations under a hard memory limit on a trajectory where an all-pairs
array would not fit; a chunk that cannot fit is a named error; Ctrl-C stops cleanly.

Why ``RLIMIT_AS``: it is the one limit Linux enforces on every allocation of a process
(``RLIMIT_RSS`` is not enforced; ``RLIMIT_DATA`` misses file-backed maps), it needs no
cgroup or privilege, and it is conservative: address space >= resident memory, so an
analysis that passes under it also stayed below the limit in RAM.  The child imports
everything and builds its trajectory first, then sets the limit to its current address
space plus ``BUDGET``; every analysis must then succeed within ``BUDGET``.  The systems are
sized so that one all-pairs float64 array (hydrogens x oxygens, Li x sites, O x H) alone
would exceed it, as the former implementations allocated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from foreground import default_sigint

BUDGET = 384 * 2**20  # bytes above the child's address space after setup
N_SIDE = 18  # 18^3 = 5,832 waters (17,496 atoms) on a cubic lattice
N_CELLS = 12  # Li conductor: 12^3 fcc cells, 6,912 Li on 13,824 tetrahedral sites

CHILD = textwrap.dedent(r'''
    import json, os, resource, sys
    import numpy as np
    from scipy.spatial.transform import Rotation
    from atomtwin.toolkit.schema import make_dataset
    import importlib
    # the modules (the package re-exports functions of the same names)
    hbonds, hops, rotations = (importlib.import_module(f"atomtwin.toolkit.dynamics.{m}")
                               for m in ("hbonds", "hops", "rotations"))
    from atomtwin.toolkit.neighbors.memory import ChunkMemoryError

    def water(n_side, n_frames, seed=0):
        """Rigid waters (O-H 0.9572 Å, 104.52°), O on a cubic lattice of 3.0 Å with random
        orientations and 0.15 Å noise: dense and hydrogen bonded (not a liquid)."""
        rng = np.random.default_rng(seed)
        a = np.deg2rad(104.52) / 2
        mol = np.array([[0, 0, 0], [np.cos(a), np.sin(a), 0], [np.cos(a), -np.sin(a), 0]]) * 0.9572
        g = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3) * 3.0
        nw = g.shape[0]
        frames = []
        for _ in range(n_frames):
            R = Rotation.random(nw, random_state=rng.integers(1 << 31)).as_matrix()
            c = g + rng.normal(0, 0.15, g.shape)
            frames.append((np.einsum("wij,aj->wai", R, mol) + c[:, None]).reshape(-1, 3))
        L = 3.0 * n_side
        return make_dataset(np.array(frames), ["O", "H", "H"] * nw, cell=np.eye(3) * L,
                            time=np.arange(n_frames) * 0.01)

    def conductor(n_cells, n_frames, seed=1, a=5.7):
        """fcc 'S' framework, Li on half the tetrahedral sites, a few hops per frame."""
        rng = np.random.default_rng(seed)
        fcc = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
        tet = np.array([[x, y, z] for x in (.25, .75) for y in (.25, .75) for z in (.25, .75)])
        grid = np.stack(np.meshgrid(*[np.arange(n_cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
        anions = (grid[:, None] + fcc[None]).reshape(-1, 3) * a
        sites = (grid[:, None] + tet[None]).reshape(-1, 3) * a
        occ = rng.permutation(sites.shape[0])[: sites.shape[0] // 2]
        free = np.setdiff1d(np.arange(sites.shape[0]), occ)
        pos = []
        for f in range(n_frames):
            k = rng.integers(occ.size, size=20)  # 20 Li move to random empty sites
            j = rng.integers(free.size, size=20)
            for kk, jj in zip(k, j):
                occ[kk], free[jj] = free[jj], occ[kk]
            li = sites[occ] + rng.normal(0, 0.2, (occ.size, 3))
            pos.append(np.concatenate([anions + rng.normal(0, 0.2, anions.shape), li]))
        return (make_dataset(np.array(pos), ["S"] * anions.shape[0] + ["Li"] * occ.size,
                             cell=np.eye(3) * n_cells * a, time=np.arange(n_frames) * 0.01),
                sites)

    n_side, n_cells, budget = (int(x) for x in sys.argv[1:4])
    wat = water(n_side, 4)
    cond, sites = conductor(n_cells, 12)
    n_o, n_h = n_side ** 3, 2 * n_side ** 3
    n_li = cond.sizes["atom"] - 4 * n_cells ** 3
    # 100,000 frames as a zero-stride view of one frame: no memory until a chunk is read
    lazy = make_dataset(np.broadcast_to(wat.positions.values[:1], (100_000,) + wat.positions.shape[1:]),
                        ["O", "H", "H"] * n_o, cell=np.broadcast_to(wat.cell.values[:1], (100_000, 3, 3)),
                        time=np.arange(100_000) * 0.01)
    with open("/proc/self/statm") as fh:
        vm = int(fh.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (vm + budget, vm + budget))
    out = {"all_pairs_bytes": {"hbonds": n_h * n_o * 8, "hops": n_li * sites.shape[0] * 8,
                               "rotations": n_o * n_h * 8}}
    try:  # the limit bites: a plain all-pairs array is refused here
        np.ones((n_h, n_o))
        out["all_pairs_fits"] = True
    except MemoryError:
        out["all_pairs_fits"] = False
    hb = hbonds.hydrogen_bonds(wat)
    out["hbonds"] = int(hb.sizes["bond"])
    out["tau"] = float(hbonds.hbond_lifetime(hb).tau_intermittent)
    out["transfers"] = int(hbonds.proton_transfers(hbonds.assign_hydrogens(wat)).sizes["event"])
    found = hops.find_sites(cond, "Li")
    out["sites_found"] = int(found.sizes["site"])
    st = hops.assign_sites(cond, "Li", sites)
    out["hops"] = int(hops.hops(st).sizes["event"])
    ev = rotations.reorientation_events(wat, "O", "H", n_ligands=2, smooth=1)
    out["rotations_groups"] = int(ev.attrs["n_groups"])
    try:
        hbonds.hydrogen_bonds(lazy, frame_chunk=100_000)
        out["chunk_error"] = None
    except ChunkMemoryError as err:
        out["chunk_error"] = str(err)
    with open("/proc/self/status") as fh:
        out["vm_peak_over_limit_start"] = [l for l in fh if l.startswith("VmPeak")][0].split()[1]
    out["vm_start_kb"] = vm // 1024
    print(json.dumps(out))
''')


@pytest.mark.slow
def test_hbonds_hops_rotations_succeed_under_a_memory_limit_all_pairs_would_exceed(tmp_path):
    n_side = N_SIDE
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TMPDIR": str(tmp_path),
    }
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(n_side), str(N_CELLS), str(BUDGET)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    # the test means something: one all-pairs array of each analysis exceeds the budget,
    # and the limit really refuses such an allocation
    assert all(v > BUDGET for v in out["all_pairs_bytes"].values()), out
    assert out["all_pairs_fits"] is False
    # and every analysis ran to the end with real results
    assert out["hbonds"] > n_side**3 // 4 and np.isfinite(out["tau"])
    assert out["sites_found"] > 0.9 * 6912 and out["hops"] > 0
    assert out["rotations_groups"] == n_side**3
    # an explicit chunk that cannot fit is a named error with its fix, before any read
    assert (
        out["chunk_error"] and "frame_chunk=" in out["chunk_error"] and "Fix:" in out["chunk_error"]
    )
    assert list(tmp_path.iterdir()) == []  # no scratch left behind


@pytest.mark.slow
def test_ctrl_c_stops_an_analysis_cleanly(tmp_path):
    """SIGINT in the middle of a long H-bond analysis: a KeyboardInterrupt (no other error),
    within seconds, with nothing left in the temporary directory."""
    code = textwrap.dedent("""
        import sys, numpy as np
        from atomtwin.toolkit import progress
        from atomtwin.toolkit.schema import make_dataset
        from atomtwin.toolkit.dynamics.hbonds import hydrogen_bonds
        rng = np.random.default_rng(0)
        pos = rng.random((2000, 3000, 3)) * 30.0
        ds = make_dataset(pos, ["O", "H", "H"] * 1000, cell=np.eye(3) * 30.0,
                          time=np.arange(2000) * 0.01)
        progress.enable()
        hydrogen_bonds(ds, frame_chunk=8)
        print("finished", flush=True)
    """)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TMPDIR": str(tmp_path),
        "ATOMTWIN_NO_PROGRESS": "",
    }
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        preexec_fn=default_sigint,
    )
    err = bytearray()
    reader = threading.Thread(
        target=lambda: [err.extend(b) for b in iter(lambda: os.read(p.stderr.fileno(), 4096), b"")],
        daemon=True,
    )
    reader.start()
    t0 = time.monotonic()
    while b"hydrogen bonds" not in err and time.monotonic() - t0 < 120 and p.poll() is None:
        time.sleep(0.1)  # until the progress bar shows: the loop over frames is running
    assert b"hydrogen bonds" in err, err.decode(errors="replace")[-2000:]
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    out = p.stdout.read().decode()
    p.wait(timeout=60)
    reader.join(timeout=10)
    text = err.decode(errors="replace")
    assert time.monotonic() - t0 < 20
    assert "finished" not in out
    assert p.returncode != 0 and "KeyboardInterrupt" in text
    assert "MemoryError" not in text
    assert "frame/s" in text or "s/frame" in text  # the bar shows the rate (and time left)
    assert list(tmp_path.iterdir()) == []
