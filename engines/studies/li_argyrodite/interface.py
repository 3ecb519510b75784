"""The Li(100) | Li6PS5Cl(100) periodic sandwich.

A Li6PS5Cl slab (``n_cells`` cubic cells along z, cut between whole PS4 units, so no
P-S bond crosses the cut and the slab keeps the bulk stoichiometry and zero charge) and a
bcc Li(100) slab (``li_layers`` layers) share one square in-plane cell; each slab is
strained in plane to it (the misfit is split by ``metal_share``) and they are stacked
along z with a vacuum-free gap ``gap`` (Å) between the outermost atoms on both sides,
so the cell holds two Li | Li6PS5Cl contacts.

The Li in-plane cell is chosen among n x n (sides n a) and the 45-degree rotated
m sqrt2 x m sqrt2 cells of the bcc (100) face to match the electrolyte cell best.  With
experimental constants (9.85, 3.51 Å) the rotated 2 sqrt2 cell fits within 0.8 %; with
CHGNet's (10.00, 3.408 Å) the 3 x 3 cell fits within 2.2 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from atomtwin.engines.studies.li_argyrodite.structures import _lattice, argyrodite
from atomtwin.toolkit.errors import InputError

__all__ = [
    "Interface",
    "li100_slab",
    "electrolyte_slab",
    "build_interface",
    "small_interface",
    "relax_apart",
]

#: largest P-S distance (Å) counted as a bond when the PS4 units are made whole
PS_BOND = 2.6


@dataclass
class Interface:
    """A built sandwich and its numbers.

    Attributes
    ----------
    atoms
        The periodic cell (Li slab first, then electrolyte), Å; ``atoms.arrays["region"]``
        holds 0 for metal and 1 for electrolyte atoms.
    misfit_percent
        (L_Li - L_e) / L_e in percent, before straining: the lattice mismatch.
    strain_percent
        In-plane strain applied to each slab, ``{"Li": ..., "Li6PS5Cl": ...}`` in percent.
    li_cell
        The Li in-plane cell used, e.g. ``"3x3"`` or ``"2sqrt2 R45"``.
    info
        Thicknesses, gap, atom counts (Å, counts).
    """

    atoms: Atoms
    misfit_percent: float
    strain_percent: dict[str, float]
    li_cell: str
    info: dict = field(default_factory=dict)


def _li_cells(a_li: float, max_n: int = 4):
    for n in range(2, max_n + 1):
        yield f"{n}x{n}", n * a_li, n, False
    for m in range(1, max_n):
        yield f"{m}sqrt2 R45", m * np.sqrt(2) * a_li, m, True


def li100_slab(
    a_li: float, layers: int, li_cell: str | None, target: float
) -> tuple[Atoms, str, float]:
    """bcc Li(100) slab of ``layers`` layers (spacing a/2) in the in-plane cell nearest
    ``target`` (Å), or the one named by ``li_cell``.  Returns (slab, name, side in Å);
    the slab is unstrained, cell z = layers * a / 2."""
    cands = list(_li_cells(a_li))
    if li_cell is not None:
        cands = [c for c in cands if c[0] == li_cell]
        if not cands:
            raise InputError(
                f"unknown Li in-plane cell {li_cell!r}. Fix: one of "
                f"{[c[0] for c in _li_cells(a_li)]} or None (best match)."
            )
    name, side, n, rot = min(cands, key=lambda c: abs(c[1] - target))
    pos = []
    for k in range(layers):
        off = 0.5 * (k % 2)
        z = k * a_li / 2
        if not rot:
            for i in range(n):
                for j in range(n):
                    pos.append(((i + off) * a_li, (j + off) * a_li, z))
        else:
            # rotated cell (sides m(a, a), m(-a, a)): the square-lattice sites of the
            # unrotated face mapped into it, those inside the cell kept
            c = 1 / np.sqrt(2)
            rot_m = np.array([[c, c], [-c, c]])
            for i in range(-2 * n, 2 * n + 1):
                for j in range(-2 * n, 2 * n + 1):
                    xy = rot_m @ np.array([(i + off) * a_li, (j + off) * a_li])
                    f = xy / side
                    if np.all(f >= -1e-9) and np.all(f < 1 - 1e-9):
                        pos.append((xy[0], xy[1], z))
    slab = Atoms(f"Li{len(pos)}", positions=pos, cell=[side, side, layers * a_li / 2], pbc=True)
    return slab, name, side


def electrolyte_slab(a: float, n_cells: int, seed: int = 0) -> Atoms:
    """Li6PS5Cl(100) slab, ``n_cells`` cubic cells thick, cut between whole PS4 units.

    The cut plane is the middle of the widest z-gap between "units" (a whole PS4 counted
    as one unit spanning its S atoms, every other atom on its own), so the surfaces expose
    intact PS4, free S and Cl with their Li; because only periodic images are chosen, the
    slab keeps the composition n_cells * Li24 P4 S20 Cl4.  Positions start at z = 0; cell
    z is the slab's thickness (outermost atoms), not periodic along z.
    """
    cell = argyrodite(a, seed=seed).repeat((1, 1, n_cells))
    L = a * n_cells
    sym = np.array(cell.get_chemical_symbols())
    pos = cell.get_positions()
    # make PS4 units whole around their P (minimum image, in-plane and along z)
    owner = -np.ones(len(cell), int)
    p_idx = np.flatnonzero(sym == "P")
    for s in np.flatnonzero(sym == "S"):
        d = pos[p_idx] - pos[s]
        frac = d @ np.linalg.inv(cell.cell.array)
        frac -= np.round(frac)
        dist = np.linalg.norm(frac @ cell.cell.array, axis=1)
        k = int(dist.argmin())
        if dist[k] < PS_BOND:
            owner[s] = p_idx[k]
            pos[s] = pos[p_idx[k]] - frac[k] @ cell.cell.array
    # units' z extents
    lo = pos[:, 2].copy()
    hi = pos[:, 2].copy()
    for p in p_idx:
        members = np.flatnonzero(owner == p)
        lo[p] = min(pos[p, 2], pos[members, 2].min())
        hi[p] = max(pos[p, 2], pos[members, 2].max())
    unit = np.flatnonzero(owner < 0)  # P and non-PS4 atoms represent units
    ivals = np.stack([lo[unit] % L, hi[unit] - lo[unit]], axis=1)
    # covered intervals on the circle [0, L), unrolled once: the widest free gap
    ivals = sorted((s + k * L, s + w + k * L) for s, w in ivals for k in (0, 1))
    best_gap, cut = -1.0, 0.0
    cover_end = ivals[0][1]
    for s, e in ivals[1:]:
        if s - cover_end > best_gap:
            best_gap, cut = s - cover_end, (0.5 * (s + cover_end)) % L
        cover_end = max(cover_end, e)
    # shift every unit (with its members) into [cut, cut + L)
    shift = np.zeros(len(cell))
    for u in unit:
        base = lo[u] if sym[u] == "P" else pos[u, 2]
        shift[u] = -np.floor((base - cut) / L) * L
    for s in np.flatnonzero(owner >= 0):
        shift[s] = shift[owner[s]]
    pos[:, 2] += shift
    pos[:, 2] -= pos[:, 2].min()
    slab = Atoms(cell.get_chemical_symbols(), positions=pos, cell=[a, a, pos[:, 2].max()], pbc=True)
    slab.info["cut_gap_A"] = float(best_gap)
    return slab


def build_interface(
    lattice: str = "experiment",
    *,
    n_cells: int = 2,
    li_layers: int = 12,
    li_cell: str | None = None,
    gap: float = 2.5,
    metal_share: float = 0.5,
    seed: int = 0,
) -> Interface:
    """Li(100) | Li6PS5Cl(100) periodic sandwich.

    Parameters
    ----------
    lattice
        ``"experiment"`` or ``"chgnet"`` constants (see ``structures.LATTICE``).
    n_cells
        Electrolyte thickness in cubic cells (52 atoms each).
    li_layers
        Number of bcc (100) Li layers (spacing a_Li / 2).
    li_cell
        Li in-plane cell (``"3x3"``, ``"2sqrt2 R45"``, ...); ``None``: best match.
    gap
        Distance (Å) along z between the outermost atom planes of the two slabs, on both
        contacts.  2.3 Å reacts at once with CHGNet (issue 18); larger gaps delay it.
    metal_share
        Fraction of the misfit taken by the Li metal (0: electrolyte takes it all, 1:
        metal takes it all).  Default 0.5 splits it.
    seed
        Seed of the argyrodite Li arrangement.
    """
    if not 0.0 <= metal_share <= 1.0:
        raise InputError(
            f"metal_share={metal_share} is outside [0, 1]. Fix: the fraction "
            "of the misfit the Li metal takes, e.g. 0.5."
        )
    if gap <= 0 or n_cells < 1 or li_layers < 2:
        raise InputError(
            f"gap={gap} Å, n_cells={n_cells}, li_layers={li_layers}: need a "
            "positive gap, at least 1 electrolyte cell and 2 Li layers."
        )
    a_e = _lattice("Li6PS5Cl", lattice)
    a_li = _lattice("Li", lattice)
    metal, name, side = li100_slab(a_li, li_layers, li_cell, a_e)
    misfit = (side - a_e) / a_e
    L = a_e * (1 + (1 - metal_share) * misfit)  # common in-plane side
    elec = electrolyte_slab(a_e, n_cells, seed=seed)
    t_e = elec.positions[:, 2].max()
    t_m = metal.positions[:, 2].max()
    metal.positions[:, :2] *= L / side
    elec.positions[:, :2] *= L / a_e
    elec.positions[:, 2] += t_m + gap
    atoms = metal + elec
    atoms.set_cell([L, L, t_m + t_e + 2 * gap])
    atoms.pbc = True
    atoms.arrays["region"] = np.r_[np.zeros(len(metal), int), np.ones(len(elec), int)]
    strain = {"Li": 100 * (L / side - 1), "Li6PS5Cl": 100 * (L / a_e - 1)}
    info = {
        "n_atoms": len(atoms),
        "n_li_metal": len(metal),
        "n_electrolyte": len(elec),
        "thickness_li_A": float(t_m),
        "thickness_electrolyte_A": float(t_e),
        "gap_A": float(gap),
        "in_plane_A": float(L),
        "lattice": lattice,
        "a_Li6PS5Cl": a_e,
        "a_Li": a_li,
        "cell_z_A": float(atoms.cell[2, 2]),
    }
    atoms.info.update({"source": "Li(100) | Li6PS5Cl(100) sandwich", **info})
    return Interface(atoms, 100 * misfit, strain, name, info)


def small_interface(lattice: str = "experiment", gap: float = 2.5, seed: int = 0) -> Interface:
    """The test-size sandwich: one electrolyte cell (52 atoms) on 6 Li layers (~100 atoms)."""
    return build_interface(lattice, n_cells=1, li_layers=6, gap=gap, seed=seed)


def relax_apart(it: Interface, calc, fmax: float = 0.05, steps: int = 200) -> Interface:
    """Relax the Li slab and the electrolyte slab each on its own, then put them back.

    Relaxing the joined sandwich at 0 K already starts the reaction (issue 18); here each
    slab is relaxed in the same periodic cell with the other one removed (so it faces
    vacuum), with FIRE to ``fmax`` (eV/Å) or ``steps`` steps, and the relaxed slabs are put
    back where they were (each slab's centre of mass along z kept), so the gap is only
    changed by the surface relaxation itself.  ``calc`` is any ASE calculator (it is
    attached to one slab at a time).  Returns a new :class:`Interface`;
    ``info["relax_apart"]`` holds steps and final max force per slab.
    """
    from ase.optimize import FIRE

    atoms = it.atoms.copy()
    region = atoms.arrays["region"]
    report = {}
    for r, name in ((0, "Li"), (1, "Li6PS5Cl")):
        sel = np.flatnonzero(region == r)
        sub = atoms[sel]
        z0 = sub.get_center_of_mass()[2]
        sub.calc = calc
        opt = FIRE(sub, logfile=None)
        opt.run(fmax=fmax, steps=steps)
        sub.positions[:, 2] += z0 - sub.get_center_of_mass()[2]
        atoms.positions[sel] = sub.positions
        fmax_end = float(np.linalg.norm(sub.get_forces(), axis=1).max())
        report[name] = {"steps": int(opt.get_number_of_steps()), "fmax_eV_per_A": fmax_end}
    info = dict(it.info, relax_apart=report)
    atoms.info.update(info)
    return Interface(atoms, it.misfit_percent, dict(it.strain_percent), it.li_cell, info)
