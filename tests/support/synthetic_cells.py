"""Synthetic multi-phase cells with known construction labels (tests, benchmarks, tutorials).

:func:`stacked_cell` stacks slabs of crystals (or a liquid-like random packing) along z in
one periodic cell, each crystal strained laterally to a common x-y section, then makes a
trajectory by adding independent Gaussian "thermal" displacements in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S


@dataclass(frozen=True)
class Slab:
    """One slab: ``unit`` an orthorhombic ase.Atoms cell (or None for liquid-like),
    ``thickness`` in Å (rounded to whole cells), ``label`` its construction name.
    Liquid-like slabs take ``symbol``, ``density`` (atoms/Å^3) and ``d_min`` (Å)."""

    label: str
    thickness: float
    unit: object | None = None
    symbol: str = "Cu"
    density: float = 0.085
    d_min: float = 2.2


def _crystal(unit, lx: float, ly: float, thickness: float):
    a, b, c = unit.cell.lengths()
    if not np.allclose(unit.cell.array, np.diag([a, b, c]), atol=1e-8):
        raise ValueError(f"slab unit cell must be orthorhombic, got {unit.cell.array.tolist()}.")
    nx, ny, nz = max(1, round(lx / a)), max(1, round(ly / b)), max(1, round(thickness / c))
    rep = unit.repeat((nx, ny, nz))
    pos = rep.get_scaled_positions(wrap=True) * np.array([lx, ly, nz * c])
    return pos, np.array(rep.get_chemical_symbols()), nz * c


def _liquid(slab: Slab, lx: float, ly: float, rng: np.random.Generator, n_steps: int = 300):
    """Random packing: uniform points pushed apart by a soft harmonic repulsion until no
    pair (periodic in x, y) is closer than ~``d_min`` — a dense, disordered, liquid-like slab."""
    n = int(round(slab.density * lx * ly * slab.thickness))
    box = np.array([lx, ly, slab.thickness])
    pos = rng.random((n, 3)) * box
    for _ in range(n_steps):
        d = pos[:, None, :] - pos[None, :, :]
        d[..., :2] -= np.round(d[..., :2] / box[:2]) * box[:2]
        r = np.sqrt((d * d).sum(-1)) + np.eye(n)
        overlap = np.clip(slab.d_min - r, 0.0, None)
        np.fill_diagonal(overlap, 0.0)
        if overlap.max() < 0.02 * slab.d_min:
            break
        pos += 0.5 * ((overlap / r)[..., None] * d).sum(1)
        pos[:, :2] %= box[:2]
        pos[:, 2] = np.clip(pos[:, 2], 0.0, box[2])
    return pos, np.full(n, slab.symbol), slab.thickness


def stacked_cell(slabs: list[Slab], lateral: tuple[float, float], *, gap: float = 2.0,
                 rattle: float = 0.08, n_frames: int = 2, seed: int = 0, dt_ps: float = 1.0):
    """A periodic trajectory of slabs stacked along z.

    Parameters
    ----------
    slabs
        The slabs, bottom to top.
    lateral
        Cell lengths (Lx, Ly) in Å; crystals are strained to them.
    gap
        Spacing in Å between consecutive slabs (and across the periodic boundary).
    rattle
        Standard deviation in Å of the independent Gaussian displacement of each atom
        in each frame (a harmonic "thermal" noise).
    n_frames, seed, dt_ps
        Frames, random seed, frame spacing in ps.

    Returns
    -------
    ds : Dataset
        Trajectory (positions Å, cell Å, time ps).
    truth : Dataset
        ``label`` (atom, the slab label), ``slab`` (atom, int), ``depth`` (atom, Å: distance
        to the nearest slab boundary along z, periodic).
    """
    rng = np.random.default_rng(seed)
    lx, ly = map(float, lateral)
    pos_all, sym_all, slab_idx, depth = [], [], [], []
    z0 = 0.0
    bounds = []
    for i, slab in enumerate(slabs):
        if slab.unit is None:
            pos, sym, h = _liquid(slab, lx, ly, rng)
        else:
            pos, sym, h = _crystal(slab.unit, lx, ly, slab.thickness)
        z_lo = z0 + gap / 2
        pos = pos + [0.0, 0.0, z_lo]
        bounds.append((z_lo, z_lo + h))
        pos_all.append(pos)
        sym_all.append(sym)
        slab_idx.append(np.full(len(pos), i))
        depth.append(np.minimum(pos[:, 2] - z_lo, z_lo + h - pos[:, 2]))
        z0 = z_lo + h + gap / 2
    pos = np.concatenate(pos_all)
    cell = np.diag([lx, ly, z0])
    frames = pos[None] + rng.normal(0.0, rattle, (n_frames, *pos.shape))
    ds = S.make_dataset(frames, np.concatenate(sym_all), cell=cell,
                        time=np.arange(n_frames) * dt_ps, attrs={S.SOURCE: "synthetic stacked_cell"})
    idx = np.concatenate(slab_idx)
    truth = xr.Dataset({
        "label": (S.ATOM, np.array([slabs[i].label for i in idx])),
        "slab": (S.ATOM, idx),
        "depth": (S.ATOM, np.maximum(np.concatenate(depth), 0.0), {"units": "Å"}),
    }, attrs={"bounds": np.asarray(bounds).ravel().tolist()})
    return ds, truth


def metals_cell(*, n_frames: int = 2, rattle: float = 0.08, thickness: float = 20.0,
                seed: int = 0, liquid: bool = True):
    """fcc | bcc | hcp | liquid-like Cu-sized slabs (nearest neighbours ~2.5 Å) in one cell.

    Lateral section 17.8 x 17.7 Å: 5x5 fcc (a=3.61), 6x6 bcc (a=2.87), 7x4 orthorhombic hcp
    (a=2.55, c=4.16) cells, strained by at most 3.4 %.
    """
    from ase.build import bulk

    slabs = [Slab("fcc", thickness, bulk("Cu", "fcc", a=3.61, cubic=True)),
             Slab("bcc", thickness, bulk("Cu", "bcc", a=2.87, cubic=True)),
             Slab("hcp", thickness, bulk("Cu", "hcp", a=2.55, c=4.16, orthorhombic=True))]
    if liquid:
        slabs.append(Slab("liquid", thickness, None, "Cu", density=0.080, d_min=2.2))
    return stacked_cell(slabs, (17.8, 17.7), rattle=rattle, n_frames=n_frames, seed=seed)


def li_li2s_cell(*, n_frames: int = 2, rattle: float = 0.08, thickness: float = 20.0, seed: int = 0):
    """bcc Li (a=3.44, 5x5) | antifluorite Li2S (a=5.72, 3x3) on a 17.2 x 17.2 Å section."""
    from ase.build import bulk

    slabs = [Slab("Li", thickness, bulk("Li", "bcc", a=3.44, cubic=True)),
             Slab("Li2S", thickness, bulk("SLi2", "fluorite", a=5.72, cubic=True))]
    return stacked_cell(slabs, (17.2, 17.2), rattle=rattle, n_frames=n_frames, seed=seed)
