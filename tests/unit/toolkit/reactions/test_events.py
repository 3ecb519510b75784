"""Constructed trajectories with known events: first-order dissociation (rate recovered
within its error bar), bond formation at known frames, a hot trajectory where nothing
reacts (zero events with hysteresis, spurious ones without), lazily read files."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.reactions import BREAK_FACTOR, FORM_FACTOR, reactions
from atomtwin.toolkit.schema import make_dataset

R_SS = 2 * 1.05  # sum of covalent radii of S-S, Å
D_SS = 2.05  # S-S bond length (S8), Å
DT = 0.005  # ps between frames


def dissociating_dimers(rng, n_mol=300, k=1.5, n_frames=201):
    """``n_mol`` S2 dimers on a 12 Å grid (no cell); dimer m vibrates (sigma 0.03 Å) until
    time tau_m ~ Exp(k), then its atoms separate at 100 Å/ps up to 5 Å apart (never within
    reach of another dimer).  Returns the Dataset, the bond lengths (n_frames, n_mol) and
    the break times."""
    t = np.arange(n_frames) * DT
    tau = rng.exponential(1 / k, n_mol)
    d = D_SS + rng.normal(0, 0.03, (n_frames, n_mol))
    d = np.minimum(d + np.clip(t[:, None] - tau[None], 0, None) * 100.0, 5.0)
    g = np.stack(np.meshgrid(*[np.arange(7)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_mol] * 12.0
    axis = rng.normal(size=(n_mol, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    pos = np.empty((n_frames, 2 * n_mol, 3))
    pos[:, 0::2] = g - 0.5 * d[..., None] * axis
    pos[:, 1::2] = g + 0.5 * d[..., None] * axis
    return make_dataset(pos, ["S"] * (2 * n_mol), time=t), d, tau


def test_first_order_dissociation_rate_within_its_error(rng):
    k = 1.5
    ds, d, tau = dissociating_dimers(rng, k=k)
    r = reactions(ds)
    ev = r.events
    assert set(ev["kind"].values) == {"break"}
    # every dimer breaks exactly once, at the first frame its length exceeds r_break
    # (the ones still bonded at the end do not break)
    r_break = BREAK_FACTOR * R_SS
    beyond = d > r_break
    expect_frame = np.where(beyond.any(axis=0), beyond.argmax(axis=0), -1)
    mol = np.asarray(ev["i"].values) // 2
    assert np.array_equal(np.sort(mol), np.flatnonzero(expect_frame >= 0))
    assert np.array_equal(np.asarray(ev["frame"].values), expect_frame[mol])
    rates = r.rates()
    x = rates.sel(pair="S-S", kind="break")
    n = int(x["n_events"])
    assert n > 150  # 300 * (1 - exp(-1.5)) = 233 expected
    # maximum-likelihood rate constant of censored exponential lifetimes: its Poisson error
    # k/sqrt(n) is the 1-sigma width (6.5 % at n ~ 233); a break is seen up to
    # (r_break - d)/(100 Å/ps) + one frame = 0.013 ps late, which biases k by -k*0.013 = -2 %,
    # small beside sigma: 3 sigma fails by chance 0.3 % of the time (the seed is fixed)
    assert abs(float(x["rate_constant"]) - k) < 3 * float(x["rate_constant_err"])
    # the per-system rate: events per ps over the run
    assert float(x["rate"]) == pytest.approx(n / 1.0)
    # the S2 species lives 1/k (same estimator: its instances end when the bond breaks)
    lt = r.lifetimes().sel(formula="S2")
    assert int(lt["n_ended"]) == n
    assert abs(float(lt["lifetime"]) - 1 / k) < 3 * float(lt["lifetime_err"])
    # species counts add up: every broken dimer gives two S atoms
    s = r.species
    assert np.array_equal(
        s.sel(formula="S2") + s.sel(formula="S") // 2, np.full(s.sizes["frame"], 300)
    )
    assert int(s.sel(formula="S").isel(frame=-1)) == 2 * n
    # and each break is the reaction S2 -> 2 S, at the frame of the break
    assert r.reaction_counts().to_series().to_dict() == {"S2 -> 2 S": n}
    assert np.array_equal(np.sort(r.reactions["frame"].values), np.sort(ev["frame"].values))


def test_bond_formation_at_known_frames(rng):
    n_pair, nf = 40, 120
    t = np.arange(nf) * DT
    t_contact = rng.uniform(0.1, 0.5, n_pair)  # ps when the approaching pair reaches 2.05 Å
    d = np.maximum(D_SS + 8.0 * (t_contact[None] - t[:, None]), D_SS) + rng.normal(
        0, 0.02, (nf, n_pair)
    )
    g = np.arange(n_pair)[:, None] * np.array([10.0, 0, 0])
    pos = np.empty((nf, 2 * n_pair, 3))
    pos[:, 0::2] = g
    pos[:, 1::2] = g + d[..., None] * np.array([0, 1.0, 0])
    r = reactions(make_dataset(pos, ["S"] * (2 * n_pair), time=t))
    ev = r.events
    assert set(ev["kind"].values) == {"form"}
    expect = (d < FORM_FACTOR * R_SS).argmax(axis=0)
    mol = np.asarray(ev["i"].values) // 2
    assert np.array_equal(np.sort(mol), np.arange(n_pair))
    assert np.array_equal(np.asarray(ev["frame"].values), expect[mol])
    assert int(r.species.sel(formula="S2").isel(frame=-1)) == n_pair


def hot_tetrahedra(rng, n_units=30, n_frames=250, sigma=0.12):
    """PS4 units and Cl- in a periodic 40 Å box, every atom displaced by Gaussian noise of
    ``sigma`` Å per coordinate around its site, with a correlation time of 5 frames (an
    AR(1) process).  A P-S length then fluctuates by sqrt(2) sigma = 0.17 Å, about twice
    its thermal amplitude at 800 K: it crosses ``r_form`` (2.3 sigma above 2.05 Å) in about
    1 % of the samples and ``r_break`` (4.8 sigma) with odds ~1e-6 per sample."""
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    # units on a grid so that no two are within reach of one another
    centres = (
        np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_units]
        * 10.0
    )
    sites = np.concatenate([np.concatenate([c[None], c + tet]) for c in centres] + [centres + 5.0])
    sp = (["P"] + ["S"] * 4) * n_units + ["Cl"] * n_units
    a = np.exp(-1 / 5)
    x = np.zeros((n_frames, len(sp), 3))
    x[0] = rng.normal(0, sigma, x[0].shape)
    for f in range(1, n_frames):
        x[f] = a * x[f - 1] + np.sqrt(1 - a * a) * rng.normal(0, sigma, x[0].shape)
    pos = (sites[None] + x) % 40.0  # wrapped into the box, as an MD code writes them
    return make_dataset(pos, sp, cell=np.eye(3) * 40.0, time=np.arange(n_frames) * DT)


def test_nothing_reacts_despite_vibration_and_hysteresis_is_why(rng):
    ds = hot_tetrahedra(rng)
    d_ps = _ps_lengths(ds)
    crossings = int((d_ps > FORM_FACTOR * 2.12).sum())
    assert crossings > 50  # the vibration does reach past r_form (~1 % of 30000 samples)
    assert d_ps.max() < BREAK_FACTOR * 2.12  # and never past r_break
    r = reactions(ds, pairs="P-S,S-S,Cl-S,Cl-P")
    assert r.events.sizes["event"] == 0
    assert (r.species.sel(formula="PS4") == 30).all() and (r.species.sel(formula="Cl") == 30).all()
    assert (r.bonds.sel(pair="P-S") == 120).all()
    # one cutoff instead of two: the same trajectory is full of spurious reactions
    r1 = reactions(ds, pairs="P-S,S-S,Cl-S,Cl-P", hysteresis=False)
    n1 = r1.events.sizes["event"]
    assert n1 > 20  # each excursion past r_form is a break and a re-formation
    assert set(r1.events["pair"].values) == {"P-S"}
    assert (r1.species.sel(formula="PS3") > 0).any()
    assert r.reactions.sizes["reaction"] == 0
    assert set(r1.reaction_counts()["equation"].values) >= {"PS4 -> PS3 + S", "PS3 + S -> PS4"}


def _ps_lengths(ds):
    """Every P-S bond length of every frame (minimum image), brute force: (frames, 4 n_P)."""
    pos = np.asarray(ds["positions"].values)
    p_idx = np.flatnonzero(ds["species"].values == "P")
    d = []
    for k in range(1, 5):
        v = pos[:, p_idx + k] - pos[:, p_idx]
        v -= 40.0 * np.round(v / 40.0)
        d.append(np.linalg.norm(v, axis=-1))
    return np.concatenate(d, axis=1)


def test_coordination_counts_and_per_atom(rng):
    ds = hot_tetrahedra(rng, n_units=8, n_frames=20, sigma=0.03)
    r = reactions(ds)
    c = r.coordination
    # every P has 4 S, every S 1 P, no Cl has S
    assert (c.sel(centre="P", neighbour="S", cn=4) == 8).all()
    assert (c.sel(centre="S", neighbour="P", cn=1) == 32).all()
    assert (c.sel(centre="Cl", neighbour="S", cn=0) == 8).all()
    assert float(r.mean_coordination().sel(centre="P", neighbour="S").mean()) == 4.0
    cn = ds.atoms.coordination_numbers("P", "S")
    assert cn.shape == (20, 8) and (cn == 4).all()


def test_lazy_file_gives_the_same_result(rng, tmp_path):
    from atomtwin.toolkit.io import open as open_traj
    from atomtwin.toolkit.io import write

    ds, _, _ = dissociating_dimers(rng, n_mol=20, k=4.0, n_frames=60)
    write(ds, tmp_path / "d.nc", chunk_frames=8)
    lazy = open_traj(tmp_path / "d.nc")
    assert lazy["positions"].chunks is not None
    a, b = reactions(ds), reactions(lazy, frame_chunk=7)
    assert a.events.equals(b.events) and a.species.equals(b.species) and a.bonds.equals(b.bonds)


def test_block_error_exceeds_poisson_for_a_burst(rng):
    # every dimer breaks in the first 10 % of the run: the rate is not constant, and the
    # spread of block rates says so while the Poisson error cannot
    ds, _, _ = dissociating_dimers(rng, n_mol=60, k=40.0, n_frames=201)
    x = reactions(ds).rates(n_blocks=5).sel(pair="S-S", kind="break")
    assert float(x["rate_err_blocks"]) > 2 * float(x["rate_err_poisson"])
    assert float(x["rate_err"]) == float(x["rate_err_blocks"])


def _crystal(n, n_frames, rng):
    """Li5PS5Cl-like periodic crystal: per 6.3 Å cube a PS4 unit, a free S, a Cl, 5 Li."""
    a = 6.3
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    half = (
        np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]])
        * a
        / 2
    )
    unit = np.concatenate([[[0, 0, 0]], tet, half])
    g = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * a
    sites = (g[:, None] + unit[None]).reshape(-1, 3)
    pos = (sites[None] + rng.normal(0, 0.05, (n_frames, *sites.shape))) % (n * a)
    sp = ["P", "S", "S", "S", "S", "S", "Cl", "Li", "Li", "Li", "Li", "Li"] * len(g)
    return make_dataset(pos, sp, cell=np.eye(3) * n * a, time=np.arange(n_frames) * DT)


def test_memory_is_linear_in_atoms(rng, tmp_path):
    # peak of Python/numpy allocations while analysing a lazily opened file, at 1,536 and
    # 12,288 atoms.  Per frame we hold positions (24 B/atom), the pairs within 3.2 Å (~8 per
    # atom, ~80 B each) and per-atom labels: ~1 kB/atom.  An N x N distance matrix alone
    # would be 8 N B/atom (12 kB at 1.5k atoms, 98 kB at 12k), so 3 kB/atom at both sizes
    # and an 8x size step costing < 12x in memory (N^2 gives 64x) rule it out.
    import tracemalloc

    from atomtwin.toolkit.io import open as open_traj
    from atomtwin.toolkit.io import write

    peaks = []
    for n in (2, 4):
        ds = _crystal(n * 2, 4, rng)
        write(ds, tmp_path / f"c{n}.nc", chunk_frames=2)
        lazy = open_traj(tmp_path / f"c{n}.nc")
        reactions(lazy.isel(frame=[0]))  # imports and caches outside the measurement
        tracemalloc.start()
        r = reactions(lazy)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert int(r.species.sel(formula="PS4").isel(frame=-1)) == (2 * n) ** 3
        peaks.append((lazy.sizes["atom"], peak))
    (n1, p1), (n2, p2) = peaks
    assert p1 / n1 < 3000 and p2 / n2 < 3000, peaks
    assert p2 / p1 < 12, peaks
