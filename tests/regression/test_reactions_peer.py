"""Bond graph and species against peer programs on the same input.

Reference: ASE's ``neighbor_list`` with a per-species-pair cutoff dict (its own cell-list
code, independent of vesin) for the bonds of every frame, and networkx's
``connected_components`` for the species, on (a) a strained triclinic argyrodite-like
crystal with thermal noise, and (b) the GFN2-xTB ethaline trajectory of
``tests/data/reactions``.  Bonds of a frame must agree exactly: both programs compare the
same float64 distances with the same cutoff (the middle of our hysteresis band, the rule of
a frame without history), and the random geometry puts no distance within 1e-9 Å of one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from atomtwin.toolkit.reactions import bond_cutoffs, bond_graph, hill_formula, reactions
from atomtwin.toolkit.schema import make_dataset

nx = pytest.importorskip("networkx")
pytestmark = pytest.mark.peer

DATA = Path(__file__).resolve().parents[1] / "data" / "reactions"


def _crystal(rng, n=3, n_frames=3):
    a = 6.3
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3) * 2.05
    half = (
        np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1]])
        * a
        / 2
    )
    unit = np.concatenate([[[0, 0, 0]], tet, half])
    sp = ["P", "S", "S", "S", "S", "S", "Cl", "Li", "Li", "Li", "Li", "Li"]
    g = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * a
    sites = (g[:, None] + unit[None]).reshape(-1, 3)
    strain = np.array([[1.0, 0.0, 0.0], [0.12, 1.0, 0.0], [-0.08, 0.1, 1.0]])
    cell = n * a * strain
    sites = sites @ strain
    # 0.15 Å per coordinate: some P-S bonds stretched past the middle of the band, some Li-S
    # contacts in and out, so the comparison covers both sides of every cutoff
    pos = sites[None] + rng.normal(0, 0.15, (n_frames, *sites.shape))
    return make_dataset(pos, sp * len(g), cell=cell, time=np.arange(n_frames) * 0.01)


def _peer_bonds(ds, f, cut):
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    sp = [str(s) for s in ds["species"].values]
    table = {}
    for name, v in cut.table().items():
        a, b = name.split("-")
        table[(a, b)] = table[(b, a)] = 0.5 * (v["r_form"] + v["r_break"])
    cell = ds["cell"].values[f] if "cell" in ds else np.zeros((3, 3))
    atoms = Atoms(sp, positions=ds["positions"].values[f], cell=cell, pbc="cell" in ds)
    i, j = neighbor_list("ij", atoms, table)
    return {(a, b) for a, b in zip(i.tolist(), j.tolist(), strict=True) if a < b}


def _peer_species(ds, f, bonds, cut):
    sp = [str(s) for s in ds["species"].values]
    cov = {n for n, v in cut.table().items() if v["covalent"]}
    g = nx.Graph()
    g.add_nodes_from(range(len(sp)))
    g.add_edges_from((a, b) for a, b in bonds if "-".join(sorted((sp[a], sp[b]))) in cov)
    return Counter(hill_formula(Counter(sp[k] for k in c)) for c in nx.connected_components(g))


@pytest.mark.parametrize("case", ["crystal", "ethaline"])
def test_bonds_and_species_match_ase_and_networkx(rng, case):
    if case == "crystal":
        ds = _crystal(rng)
    else:
        from atomtwin.toolkit.io import open as open_traj

        ds = open_traj(DATA / "ethaline_sn2.nc").isel(frame=[0, 60, 75, 100])
    cut = bond_cutoffs(sorted(set(ds["species"].values.astype(str).tolist())))
    n_checked = 0
    for f in range(ds.sizes["frame"]):
        one = ds.isel(frame=[f])
        g = bond_graph(one)
        ours = set(zip(g["i"].values.tolist(), g["j"].values.tolist(), strict=True))
        peer = _peer_bonds(ds, f, cut)
        assert ours == peer, (
            f"frame {f}: only ours {sorted(ours - peer)[:5]}, only peer {sorted(peer - ours)[:5]}"
        )
        s = reactions(one).species.isel(frame=0)
        mine = {str(k): int(v) for k, v in zip(s["formula"].values, s.values, strict=True) if v}
        assert mine == dict(_peer_species(ds, f, peer, cut))
        n_checked += len(peer)
    assert n_checked > (1000 if case == "crystal" else 100)
