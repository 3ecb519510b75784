"""Species instances over time and the reactions that turn some into others.

An *instance* is one fixed set of atoms forming one connected component (one PS4 unit, one
ethylene glycol molecule).  It lives from the frame its set of atoms first appears as a
component until the frame that set changes; its formula is that of its atoms.

A *reaction* is what happens between two frames to a group of instances: the instances that
ended and those that were born, grouped by the atoms they exchange (the connected
components of the old-instance / new-instance graph whose edges are shared atoms).  Each
group is written as an equation, ``"PS4 -> PS3 + S"`` or ``"C5H14NO + Cl -> C5H14ClNO"``,
with repeated formulas collected (``"S2 -> 2 S"``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["SpeciesTracker", "equation"]


def _side(formulas: list[str]) -> str:
    names, counts = np.unique(np.asarray(formulas), return_counts=True)
    return " + ".join(f"{c} {n}" if c > 1 else str(n) for n, c in zip(names, counts, strict=True))


def equation(reactants: list[str], products: list[str]) -> str:
    """``"A + B -> C"`` (formulas sorted on each side, repeats as coefficients)."""
    return f"{_side(reactants)} -> {_side(products)}"


class SpeciesTracker:
    """Instances alive now, the finished ones, and the reactions between frames."""

    def __init__(self, names: list[str]):
        self.names = names  # formula names, shared with (and grown by) the FormulaBook
        self.ident = np.zeros(0, np.uint64)  # sorted identities of the live instances
        self.start = np.zeros(0, np.int64)
        self.fid = np.zeros(0, np.int64)
        self.done: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.labels: np.ndarray | None = None  # per atom: component of the previous frame
        self.comp_fid: np.ndarray | None = None  # per component of the previous frame
        self.reactions: list[tuple[int, str]] = []

    def update(self, f: int, labels: np.ndarray, ident: np.ndarray, fid: np.ndarray) -> None:
        """Frame ``f``: ``labels`` (n_atoms,) component of each atom; ``ident``, ``fid``
        (n_components,) identity and formula id of each component."""
        born_comp = ~np.isin(ident, self.ident, kind="sort")
        if self.labels is not None and born_comp.any():
            self._reactions(f, labels, born_comp, fid)
        self.labels, self.comp_fid = labels, fid
        order = np.argsort(ident)
        ident_s, fid_s = ident[order], fid[order]
        alive = np.isin(self.ident, ident_s, assume_unique=True, kind="sort")
        if (~alive).any():
            gone = ~alive
            self.done.append((self.fid[gone], self.start[gone], np.full(int(gone.sum()), f)))
        start = np.full(ident_s.size, f, np.int64)
        known = ~born_comp[order]
        if known.any():
            start[known] = self.start[np.searchsorted(self.ident, ident_s[known])]
        self.ident, self.fid, self.start = ident_s, fid_s, start

    def _reactions(
        self, f: int, labels: np.ndarray, born_comp: np.ndarray, fid: np.ndarray
    ) -> None:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        atoms = np.flatnonzero(born_comp[labels])  # atoms whose component changed
        old, new = self.labels[atoms], labels[atoms]
        pairs = np.unique(np.stack([old, new], 1), axis=0)
        uo, io = np.unique(pairs[:, 0], return_inverse=True)
        un, inn = np.unique(pairs[:, 1], return_inverse=True)
        n_nodes = uo.size + un.size
        g = coo_matrix(
            (np.ones(len(pairs)), (io.ravel(), uo.size + inn.ravel())), shape=(n_nodes, n_nodes)
        )
        n_grp, grp = connected_components(g, directed=False)
        for k in range(n_grp):
            react = [self.names[self.comp_fid[c]] for c in uo[grp[: uo.size] == k]]
            prod = [self.names[fid[c]] for c in un[grp[uo.size :] == k]]
            self.reactions.append((f, equation(react, prod)))

    def instances(self, t: np.ndarray) -> xr.Dataset:
        """Every instance: ``formula``, ``start``, ``end`` (ps), ``ended``."""
        last = t.size - 1
        parts = self.done + [(self.fid, self.start, np.full(self.fid.size, -1))]
        fid = np.concatenate([p[0] for p in parts])
        st = np.concatenate([p[1] for p in parts])
        en = np.concatenate([p[2] for p in parts])
        ended = en >= 0
        names_arr = np.array(self.names or [""])
        return xr.Dataset(
            {
                "formula": ("instance", names_arr[fid]),
                "start": ("instance", t[st], {"units": "ps"}),
                "end": ("instance", t[np.where(ended, en, last)], {"units": "ps"}),
                "ended": ("instance", ended),
            },
            attrs={
                "note": "an instance still there at the last frame has ended = False and "
                "end = that frame's time"
            },
        )

    def reaction_events(self, t: np.ndarray) -> xr.Dataset:
        """Dataset over ``reaction``: ``time`` (ps), ``frame``, ``equation``."""
        fr = np.array([r[0] for r in self.reactions], np.int64)
        eq = np.array([r[1] for r in self.reactions] or [""])[: fr.size]
        return xr.Dataset(
            {
                "time": ("reaction", t[fr], {"units": "ps"}),
                "frame": ("reaction", fr),
                "equation": ("reaction", eq.astype(str)),
            }
        )
