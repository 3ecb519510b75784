"""Cross-checks against MDAnalysis on the same input: EinsteinMSD (FFT, tidynamics) on the
MDAnalysisTests ADK trajectory, and HydrogenBondAnalysis on water (random rigid waters, and
the TIP3P water trajectories MDAnalysisTests ships: 5 waters in a cubic box, watdyn.dcd,
and 125 waters in a strongly triclinic box, tip125_tric_C36.dcd)."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.dynamics import hydrogen_bonds, msd
from atomtwin.toolkit.schema import make_dataset

mda = pytest.importorskip("MDAnalysis")
datafiles = pytest.importorskip("MDAnalysisTests.datafiles")


@pytest.mark.peer
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_msd_equals_mdanalysis_einstein_msd_fft():
    pytest.importorskip("tidynamics")
    from MDAnalysis.analysis.msd import EinsteinMSD

    u = mda.Universe(datafiles.PSF, datafiles.DCD)
    ref = EinsteinMSD(u, select="all", msd_type="xyz", fft=True).run()
    pos = np.array([u.atoms.positions.copy() for _ in u.trajectory])
    ds = make_dataset(pos, ["C"] * u.atoms.n_atoms, time=np.arange(len(pos)) * 1.0)
    got = msd(ds, "C", remove_drift=False, unwrap=False)
    # the same estimator; float32 coordinates are promoted to float64 by both: 1e-6 relative
    np.testing.assert_allclose(got.values[1:], ref.results.timeseries[1:], rtol=1e-6)
    ref_xy = EinsteinMSD(u, select="all", msd_type="xy", fft=True).run()
    np.testing.assert_allclose(
        msd(ds, "C", axes="xy", remove_drift=False, unwrap=False).values[1:],
        ref_xy.results.timeseries[1:],
        rtol=1e-6,
    )


def random_water(rng, n_water=64, box=12.4, n_frames=6):
    """Rigid waters (O-H 0.9572 Å, 104.52°) at random positions and orientations: a
    geometric test bed with many D-A pairs near every cutoff."""
    from scipy.spatial.transform import Rotation

    a = np.deg2rad(104.52) / 2
    mol = np.array([[0, 0, 0], [np.cos(a), np.sin(a), 0], [np.cos(a), -np.sin(a), 0]]) * [
        [0],
        [0.9572],
        [0.9572],
    ]
    frames = []
    for _ in range(n_frames):
        R = Rotation.random(n_water, random_state=rng.integers(1 << 31)).as_matrix()
        c = rng.uniform(0, box, (n_water, 3))
        frames.append((np.einsum("wij,aj->wai", R, mol) + c[:, None]).reshape(-1, 3))
    return np.array(frames), ["O", "H", "H"] * n_water, box


def mda_counts(pos, species, box):
    from MDAnalysis.analysis.hydrogenbonds import HydrogenBondAnalysis

    n = pos.shape[1]
    u = mda.Universe.empty(
        n, n_residues=n // 3, atom_resindex=np.repeat(np.arange(n // 3), 3), trajectory=True
    )
    u.add_TopologyAttr("name", species)
    u.add_TopologyAttr("type", species)
    u.load_new(
        pos.astype(np.float32),
        format=mda.coordinates.memory.MemoryReader,
        dimensions=[box, box, box, 90, 90, 90],
    )
    h = HydrogenBondAnalysis(
        u,
        donors_sel="name O",
        hydrogens_sel="name H",
        acceptors_sel="name O",
        d_h_cutoff=1.2,
        d_a_cutoff=3.0,
        d_h_a_angle_cutoff=150,
        update_selections=False,
    )
    h.run()
    return h.results.hbonds, u


@pytest.mark.peer
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hbond_counts_equal_mdanalysis_on_random_rigid_waters():
    pos, species, box = random_water(np.random.default_rng(12))
    pos = pos.astype(np.float32).astype(float)  # MDAnalysis works in float32: same input
    ds = make_dataset(pos, species, cell=np.eye(3) * box, time=np.arange(len(pos)) * 0.02)
    ours = hydrogen_bonds(ds, "O", "H", "O", d_da=3.0, angle=150.0, d_dh=1.2)
    # MDAnalysis finds the D-H pairs once, in the first frame it analyses; ours are
    # found in every frame (protons move in MLIP runs), and these random waters are
    # redrawn every frame: run it frame by frame so the criteria are the same
    ref = []
    for f in range(len(pos)):
        r, _ = mda_counts(pos[f : f + 1], species, box)
        r[:, 0] = f
        ref.append(r)
    ref = np.concatenate(ref)
    counts = np.bincount(ref[:, 0].astype(int), minlength=len(pos))
    assert counts.sum() > 20  # the test bed really has hydrogen bonds
    # same criteria, same geometry: identical counts and identical (D, H, A) triples
    np.testing.assert_array_equal(ours["count"].values, counts)
    a = {
        tuple(r)
        for r in np.column_stack([ours.frame, ours.donor, ours.hydrogen, ours.acceptor]).tolist()
    }
    b = {tuple(r) for r in ref[:, :4].astype(int).tolist()}
    assert a == b


@pytest.mark.peer
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("which", ["watdyn", "tip125_triclinic"])
def test_hbond_counts_equal_mdanalysis_on_tip3p_water_trajectories(which):
    from MDAnalysis.analysis.hydrogenbonds import HydrogenBondAnalysis
    from MDAnalysis.lib.mdamath import triclinic_vectors

    psf, dcd = {
        "watdyn": (datafiles.waterPSF, datafiles.waterDCD),
        "tip125_triclinic": (datafiles.PSF_TRICLINIC, datafiles.DCD_TRICLINIC),
    }[which]
    u = mda.Universe(psf, dcd)
    pos, cells = [], []
    for ts in u.trajectory:
        pos.append(u.atoms.positions.astype(float))  # the same float32 numbers, widened
        cells.append(triclinic_vectors(ts.dimensions).astype(float))
    species = ["O" if name.startswith("O") else "H" for name in u.atoms.names]
    ds = make_dataset(np.array(pos), species, cell=np.array(cells), time=np.arange(len(pos)) * 1.0)
    ours = hydrogen_bonds(ds, "O", "H", "O", d_da=3.0, angle=150.0, d_dh=1.2)
    # MDAnalysis: D-H pairs by distance (<= 1.2 Å, only the own hydrogens of rigid TIP3P, so
    # finding them once equals finding them per frame), exact triclinic minimum image
    ref = (
        HydrogenBondAnalysis(
            u,
            donors_sel="name OH2",
            hydrogens_sel="name H1 H2",
            acceptors_sel="name OH2",
            d_h_cutoff=1.2,
            d_a_cutoff=3.0,
            d_h_a_angle_cutoff=150,
        )
        .run()
        .results.hbonds
    )
    counts = np.bincount(ref[:, 0].astype(int), minlength=len(pos))
    # a real liquid: ~1.7 hydrogen bonds per water in 125 TIP3P waters at 3.0 Å / 150°
    assert counts.sum() >= (20 if which == "watdyn" else 900)
    # identical geometry and criteria: identical per-frame counts and (D, H, A) triples (a
    # triple near a cutoff could only differ by float32 rounding, and none does here)
    np.testing.assert_array_equal(ours["count"].values, counts)
    a = {
        tuple(r)
        for r in np.column_stack([ours.frame, ours.donor, ours.hydrogen, ours.acceptor]).tolist()
    }
    b = {tuple(r) for r in ref[:, :4].astype(int).tolist()}
    assert a == b


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hbonds_as_fast_as_mdanalysis_with_the_same_bonds_at_10k_atoms():
    """The 125-water triclinic TIP3P box replicated 3x3x3 (10,125 atoms), 3 frames: the same
    (frame, D, H, A) set as HydrogenBondAnalysis and no more CPU time.

    Timing: CPU time of this process (robust to other jobs on a shared machine), the two
    interleaved, best of 3.  bench_events.py measures ours at about half of MDAnalysis' CPU
    time at 10k atoms and 0.4x at 110k, so 1.0 leaves a factor of two for noise.
    """
    import time

    from MDAnalysis.analysis.hydrogenbonds import HydrogenBondAnalysis
    from MDAnalysis.lib.mdamath import triclinic_box, triclinic_vectors

    u = mda.Universe(datafiles.PSF_TRICLINIC, datafiles.DCD_TRICLINIC)
    pos, cells = [], []
    for ts in u.trajectory[:3]:
        pos.append(u.atoms.positions.astype(float))
        cells.append(triclinic_vectors(ts.dimensions).astype(float))
    pos, cells = np.array(pos), np.array(cells)
    shifts = (
        np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3).astype(float)
    )
    big = (pos[:, None] + np.einsum("sk,fkx->fsx", shifts, cells)[:, :, None]).reshape(3, -1, 3)
    big = big.astype(np.float32).astype(float)  # MDAnalysis' precision: the same numbers
    species = ["O" if n.startswith("O") else "H" for n in u.atoms.names] * 27
    n = big.shape[1]
    ds = make_dataset(big, species, cell=cells * 3, time=np.arange(3) * 1.0)
    uu = mda.Universe.empty(n, n_residues=n // 3, atom_resindex=np.arange(n) // 3, trajectory=True)
    uu.add_TopologyAttr("name", species)
    uu.load_new(
        big.astype(np.float32),
        format=mda.coordinates.memory.MemoryReader,
        dimensions=np.array([triclinic_box(*c) for c in cells * 3]),
    )

    def ours():
        return hydrogen_bonds(ds, "O", "H", "O", d_da=3.0, angle=150.0, d_dh=1.2)

    def peer():
        return (
            HydrogenBondAnalysis(
                uu,
                donors_sel="name O",
                hydrogens_sel="name H",
                acceptors_sel="name O",
                d_h_cutoff=1.2,
                d_a_cutoff=3.0,
                d_h_a_angle_cutoff=150,
                update_selections=False,
            )
            .run()
            .results.hbonds
        )

    a, b = ours(), peer()  # warm both (imports, first-call set-up) before timing
    sa = {tuple(r) for r in np.column_stack([a.frame, a.donor, a.hydrogen, a.acceptor]).tolist()}
    sb = {tuple(r) for r in b[:, :4].astype(int).tolist()}
    assert len(sa) > 5_000 and sa == sb  # ~0.8 bonds per water and frame: a real H-bond network
    t_ours, t_peer = np.inf, np.inf
    for _ in range(3):
        t = time.process_time()
        ours()
        t_ours = min(t_ours, time.process_time() - t)
        t = time.process_time()
        peer()
        t_peer = min(t_peer, time.process_time() - t)
    assert t_ours <= t_peer, (t_ours, t_peer)
