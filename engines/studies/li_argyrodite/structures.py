"""Bulk structures of the Li | Li6PS5Cl study: the ordered argyrodite, bcc Li, and the
reference phases of the interphase (Li2S, Li3P, LiCl), built from published space groups,
Wyckoff positions and lattice constants, plus a seeded thermal rattle.

Every builder returns an :class:`ase.Atoms` (Å) with ``info["source"]`` naming where its
numbers come from.  Lattice constants default to experiment (room temperature); a
CHGNet 0.3.0 study should pass the reference's own constants (``lattice="chgnet"`` where
offered) so that the bulk regions start unstrained for the reference.
"""

from __future__ import annotations

import itertools

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_masses, atomic_numbers
from ase.spacegroup import crystal
from ase.units import _amu, _hbar, _k
from atomtwin.toolkit.errors import InputError

__all__ = [
    "LATTICE",
    "ARGYRODITE_WYCKOFF",
    "argyrodite",
    "bcc_li",
    "li2s",
    "li3p",
    "licl",
    "reference_phases",
    "einstein_sigma",
    "rattle",
    "min_distances",
]

#: Lattice constants (Å).  "experiment": room-temperature diffraction values;
#: "chgnet": the same cells relaxed with CHGNet 0.3.0 (measured for issue 18: argyrodite
#: 10.00, bcc Li 3.408; not measured here for the other phases, which keep experiment).
LATTICE: dict[str, dict[str, float]] = {
    "experiment": {
        # Deiseroth et al., Angew. Chem. Int. Ed. 47, 755 (2008): a = 9.85 Å
        "Li6PS5Cl": 9.85,
        # bcc Li at room temperature, a = 3.51 Å (e.g. Berliner et al., PRB 39, 5586 (1989))
        "Li": 3.51,
        # antifluorite Li2S, a = 5.71 Å (ICSD; e.g. Buehrer & Bill, Helv. Chim. Acta 1980)
        "Li2S": 5.71,
        # rocksalt LiCl, a = 5.13 Å (room temperature)
        "LiCl": 5.13,
        # hexagonal Li3P (Na3As type, P6_3/mmc): a = 4.27 Å, c = 7.59 Å
        # (Dong & DiSalvo, Acta Cryst. E 2007)
        "Li3P_a": 4.27,
        "Li3P_c": 7.59,
    },
    "chgnet": {"Li6PS5Cl": 10.00, "Li": 3.408},
}

#: Wyckoff positions of ordered Li6PS5Cl in F-43m (No. 216), origin choice with P on 4b,
#: after Deiseroth et al. (2008) and Kraft et al., J. Am. Chem. Soc. 139, 10909 (2017):
#: P 4b, S(PS4) 16e (x,x,x), free S2- 4c, Cl 4a (the ordered limit of the 4a/4c anion
#: site disorder), Li 48h (x,x,z) half occupied.  The free parameters are rounded to the
#: precision that matters here (0.005 in fractions ~ 0.05 Å); the geometry they give is
#: checked in the tests (P-S 2.05 Å in PS4, Li-S 2.42-2.45 Å, Li-Cl 2.60 Å).
ARGYRODITE_WYCKOFF = {
    "P": (0.5, 0.5, 0.5),
    "S_PS4": (0.62, 0.62, 0.62),
    "S_free": (0.25, 0.25, 0.25),
    "Cl": (0.0, 0.0, 0.0),
    "Li_48h": (0.3137, 0.3137, 0.0218),
}


def _lattice(name: str, lattice: str | float | None, key: str | None = None) -> float:
    if isinstance(lattice, (int, float)) and not isinstance(lattice, bool):
        if lattice <= 0:
            raise InputError(
                f"lattice constant {lattice} Å for {name} is not positive. "
                "Fix: pass a positive value in Å."
            )
        return float(lattice)
    table = LATTICE.get(lattice or "experiment")
    if table is None:
        raise InputError(
            f"unknown lattice set {lattice!r} for {name}. Fix: one of "
            f"{sorted(LATTICE)} or a number in Å."
        )
    return float(table.get(key or name, LATTICE["experiment"][key or name]))


def _choose_li(
    sites: np.ndarray,
    cell: np.ndarray,
    pairs: list[tuple[int, int]],
    seed: int = 0,
    sweeps: int = 40,
) -> np.ndarray:
    """Pick one site of each pair maximising the shortest Li-Li distance (then the
    number of pairs at it), by deterministic greedy sweeps from seeded starts."""
    frac = sites @ np.linalg.inv(cell)
    d = frac[:, None, :] - frac[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d @ cell, axis=-1)
    np.fill_diagonal(dist, np.inf)
    rng = np.random.default_rng(seed)
    n = len(pairs)

    def score(choice):
        idx = np.array([pairs[k][c] for k, c in enumerate(choice)])
        sub = dist[np.ix_(idx, idx)]
        m = sub.min()
        return (round(float(m), 3), -int(np.sum(sub < m + 1e-3)))

    best, best_s = None, None
    for _ in range(8):
        choice = rng.integers(0, 2, n)
        s = score(choice)
        for _ in range(sweeps):
            improved = False
            for k in range(n):
                choice[k] ^= 1
                s2 = score(choice)
                if s2 > s:
                    s, improved = s2, True
                else:
                    choice[k] ^= 1
            if not improved:
                break
        if best_s is None or s > best_s:
            best, best_s = choice.copy(), s
    return np.array([pairs[k][c] for k, c in enumerate(best)])


def argyrodite(a: float | str | None = None, seed: int = 0) -> Atoms:
    """Ordered cubic Li6PS5Cl, 52 atoms (Li24 P4 S20 Cl4), in the conventional F-43m cell.

    Structure after Deiseroth et al., Angew. Chem. Int. Ed. 47, 755 (2008) and Kraft et
    al., J. Am. Chem. Soc. 139, 10909 (2017): PS4 tetrahedra centred on 4b, free S2- on
    4c and Cl on 4a (anion order; the real material swaps part of them), and Li on the
    48h sites, half occupied.  The 48h sites come in pairs 1.77 Å apart; one Li per pair
    is kept (24 of 48), chosen to maximise the shortest Li-Li distance, so the cell is an
    ordered approximant (space group lower than F-43m; the anion framework keeps it).

    Parameters
    ----------
    a
        Cubic lattice constant in Å, or ``"experiment"`` (9.85 Å, default) / ``"chgnet"``
        (10.00 Å, CHGNet 0.3.0 relaxed).
    seed
        Seed of the search for the Li arrangement (deterministic for a given seed).

    Returns
    -------
    ase.Atoms
        52 atoms, periodic, cell (3, 3) Å; ``info["source"]`` cites the structure.
    """
    alat = _lattice("Li6PS5Cl", a)
    w = ARGYRODITE_WYCKOFF
    frame = crystal(
        ["P", "S", "S", "Cl"],
        [w["P"], w["S_PS4"], w["S_free"], w["Cl"]],
        spacegroup=216,
        cellpar=[alat, alat, alat, 90, 90, 90],
    )
    li = crystal(["Li"], [w["Li_48h"]], spacegroup=216, cellpar=[alat] * 3 + [90] * 3)
    cell = li.cell.array
    pos = li.get_positions()
    frac = li.get_scaled_positions()
    d = frac[:, None, :] - frac[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d @ cell, axis=-1)
    np.fill_diagonal(dist, np.inf)
    partner = dist.argmin(axis=1)
    pairs = sorted({tuple(sorted((i, int(j)))) for i, j in enumerate(partner)})
    if len(pairs) != 24:  # pragma: no cover - guards the Wyckoff numbers above
        raise RuntimeError(f"48h sites did not pair up ({len(pairs)} pairs)")
    keep = _choose_li(pos, cell, pairs, seed=seed)
    atoms = Atoms("Li24", positions=pos[np.sort(keep)], cell=cell, pbc=True) + frame
    atoms.info["source"] = (
        "ordered Li6PS5Cl, F-43m Wyckoff positions after Deiseroth "
        "et al. 2008 / Kraft et al. 2017; one Li per 48h pair"
    )
    atoms.info["a"] = alat
    return atoms


def bcc_li(a: float | str | None = None) -> Atoms:
    """bcc Li, cubic 2-atom cell (Im-3m), a = 3.51 Å (experiment) or 3.408 Å (CHGNet)."""
    atoms = bulk("Li", "bcc", a=_lattice("Li", a), cubic=True)
    atoms.info["source"] = "bcc Li (Im-3m)"
    return atoms


def li2s(a: float | None = None) -> Atoms:
    """Antifluorite Li2S (Fm-3m): S on 4a, Li on 8c; conventional 12-atom cell, a = 5.71 Å."""
    alat = _lattice("Li2S", a)
    atoms = crystal(
        ["S", "Li"], [(0, 0, 0), (0.25, 0.25, 0.25)], spacegroup=225, cellpar=[alat] * 3 + [90] * 3
    )
    atoms.info["source"] = "antifluorite Li2S (Fm-3m), a = 5.71 Å"
    return atoms


def licl(a: float | None = None) -> Atoms:
    """Rocksalt LiCl (Fm-3m): Cl on 4a, Li on 4b; conventional 8-atom cell, a = 5.13 Å."""
    alat = _lattice("LiCl", a)
    atoms = crystal(
        ["Cl", "Li"], [(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225, cellpar=[alat] * 3 + [90] * 3
    )
    atoms.info["source"] = "rocksalt LiCl (Fm-3m), a = 5.13 Å"
    return atoms


def li3p(a: float | None = None, c: float | None = None, z: float = 0.583) -> Atoms:
    """Hexagonal Li3P, Na3As type (P6_3/mmc, No. 194), 8 atoms: P 2c (1/3, 2/3, 1/4),
    Li 2b (0, 0, 1/4), Li 4f (1/3, 2/3, z) with z = 0.583; a = 4.27 Å, c = 7.59 Å
    (Dong & DiSalvo, Acta Cryst. E 63, i97 (2007))."""
    aa = _lattice("Li3P", a, "Li3P_a")
    cc = _lattice("Li3P", c, "Li3P_c")
    atoms = crystal(
        ["P", "Li", "Li"],
        [(1 / 3, 2 / 3, 0.25), (0, 0, 0.25), (1 / 3, 2 / 3, z)],
        spacegroup=194,
        cellpar=[aa, aa, cc, 90, 90, 120],
    )
    atoms.info["source"] = "Li3P, Na3As type (P6_3/mmc)"
    return atoms


def reference_phases(lattice: str = "experiment", min_atoms: int = 50) -> dict[str, Atoms]:
    """The five reference phases (bulk Li, Li6PS5Cl, Li2S, Li3P, LiCl), each repeated to at
    least ``min_atoms`` atoms so every atom has a complete environment within ~6 Å."""
    phases = {
        "Li": bcc_li(lattice),
        "Li6PS5Cl": argyrodite(lattice),
        "Li2S": li2s(),
        "Li3P": li3p(),
        "LiCl": licl(),
    }
    out = {}
    for name, at in phases.items():
        n = 1
        while len(at) * n**3 < min_atoms:
            n += 1
        rep = at.repeat(n)
        rep.info.update(at.info)
        out[name] = rep
    return out


def einstein_sigma(
    mass_amu: np.ndarray | float, temperature: float, theta_e: float = 300.0
) -> np.ndarray:
    """RMS displacement per Cartesian component (Å) of an Einstein oscillator.

    sigma^2 = hbar^2 / (2 m k theta_E) * coth(theta_E / 2T): the quantum thermal
    amplitude of an oscillator of frequency k theta_E / hbar; it tends to the classical
    k T / (m omega^2) for T >> theta_E and to the zero-point value at T = 0.
    """
    m = np.asarray(mass_amu, dtype=float) * _amu
    if temperature < 0 or theta_e <= 0:
        raise InputError(
            f"temperature {temperature} K / theta_E {theta_e} K out of range. "
            "Fix: temperature >= 0 and theta_E > 0."
        )
    coth = 1.0 if temperature == 0 else 1.0 / np.tanh(theta_e / (2.0 * temperature))
    var_m2 = _hbar**2 / (2.0 * m * _k * theta_e) * coth
    return np.sqrt(var_m2) * 1e10


def rattle(
    atoms: Atoms,
    temperature: float,
    seed: int | np.random.Generator,
    theta_e: float | dict[str, float] = 300.0,
) -> Atoms:
    """A copy of ``atoms`` with Gaussian displacements of Einstein-model amplitude at
    ``temperature`` (K); ``theta_e`` (K) one value or per element.  Seeded."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sym = atoms.get_chemical_symbols()
    th = np.array(
        [theta_e.get(s, 300.0) if isinstance(theta_e, dict) else theta_e for s in sym], dtype=float
    )
    masses = np.array([atomic_masses[atomic_numbers[s]] for s in sym])
    sig = np.array([einstein_sigma(m, temperature, t) for m, t in zip(masses, th, strict=True)])
    out = atoms.copy()
    out.positions += rng.normal(size=(len(atoms), 3)) * sig[:, None]
    out.info["rattle"] = {"temperature_K": float(temperature), "theta_E_K": theta_e}
    return out


def min_distances(atoms: Atoms, cutoff: float = 4.0) -> dict[str, float]:
    """Shortest distance (Å) for each element pair present within ``cutoff`` (periodic)."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff)
    sym = np.array(atoms.get_chemical_symbols())
    out: dict[str, float] = {}
    for a_, b_ in itertools.combinations_with_replacement(sorted(set(sym)), 2):
        m = ((sym[i] == a_) & (sym[j] == b_)) | ((sym[i] == b_) & (sym[j] == a_))
        if m.any():
            out[f"{a_}-{b_}"] = float(d[m].min())
    return out
