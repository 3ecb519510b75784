"""Per-frame bond graphs with hysteresis, connected components and their formulas.

The pieces here work on one frame at a time (positions ``(n_atoms, 3)``); the analyses
in :mod:`atomtwin.toolkit.reactions.analysis` drive them over a trajectory.  Nothing here
holds more than a frame: memory is linear in the number of atoms.

A bond is keyed by its atom pair, ``key = i * n_atoms + j`` with ``i < j``, whatever the
periodic image: wrapping an atom back into the cell does not break its bonds.  When two
images of the same neighbour are both within range (a cell thinner than twice the
cutoff), the pair counts once, at its shortest distance.  An atom bonded to its own image
is ignored (it joins no two atoms).

The first frame has no history: a pair between ``r_form`` and ``r_break`` there is taken as
bonded when it is closer than the middle of the band, ``(r_form + r_break) / 2``.  Taking
``r_form`` instead would make every bond that happens to be stretched in frame 0 "form"
in frame 1 (about 1 % of the P-S bonds of a hot trajectory); the middle is as far from a
stretched bond as from a non-bonded neighbour.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import neighbor_pairs
from atomtwin.toolkit.reactions.cutoffs import BondCutoffs

#: bytes of positions read at a time by :func:`iter_frames` (default ``frame_chunk``)
CHUNK_BYTES = 8 * 2**20

__all__ = ["BondTracker", "components", "hill_formula", "iter_frames", "frame_times", "FormulaBook"]


def frame_times(ds: xr.Dataset) -> np.ndarray:
    """(n_frames,) frame times in ps (from ``time``, else ``timestep_ps``)."""
    n = ds.sizes[S.FRAME]
    if S.TIME in ds.coords:
        return np.asarray(ds[S.TIME].values, dtype=float)
    if S.TIMESTEP in ds.attrs:
        return np.arange(n) * float(ds.attrs[S.TIMESTEP])
    if n <= 1:
        return np.zeros(n)
    raise InputError(
        "the trajectory has neither a 'time' coordinate nor a 'timestep_ps' "
        "attribute, so rates cannot be given per ps. Fix: assign one, e.g. "
        "ds.assign_coords(time=('frame', t_ps)), or read with timestep_ps=..."
    )


def iter_frames(
    ds: xr.Dataset, frame_chunk: int | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Yield ``(frame, positions (n_atoms, 3) Å, cell (3, 3) Å or None)``, reading
    ``frame_chunk`` frames at a time (a dask-backed trajectory is never loaded whole).

    ``frame_chunk=None`` reads the file's own frame chunks when they hold at most
    4 x :data:`CHUNK_BYTES` of positions, else as many frames as fit in :data:`CHUNK_BYTES`
    (1 to 64), so the memory held stays a few times one frame."""
    n = ds.sizes[S.FRAME]
    periodic = S.is_periodic(ds)
    if frame_chunk is None:
        frame_chunk = min(64, CHUNK_BYTES // max(1, 24 * ds.sizes[S.ATOM]))
        chunks = getattr(ds[S.POSITIONS].data, "chunks", None)
        if chunks and ds[S.POSITIONS].dims[0] == S.FRAME:
            on_disk = int(chunks[0][0])  # read whole stored chunks: each is decompressed once
            if on_disk * 24 * ds.sizes[S.ATOM] <= 4 * CHUNK_BYTES:
                frame_chunk = on_disk
    step = max(1, int(frame_chunk))
    for f0 in range(0, n, step):
        sl = {S.FRAME: slice(f0, min(f0 + step, n))}
        pos = np.asarray(
            ds[S.POSITIONS].isel(sl).transpose(S.FRAME, S.ATOM, S.XYZ).values, dtype=float
        )
        cells = np.asarray(ds[S.CELL].isel(sl).values, dtype=float) if periodic else None
        for k in range(pos.shape[0]):
            yield f0 + k, pos[k], (cells[k] if cells is not None else None)


class BondTracker:
    """Bonds of consecutive frames with hysteresis.

    Parameters
    ----------
    cutoffs
        Resolved criteria (:func:`~atomtwin.toolkit.reactions.cutoffs.bond_cutoffs`).
    codes
        (n_atoms,) int index of each atom's species in ``cutoffs.species``.
    pbc
        (3,) bool periodicity (ignored for frames without a cell).

    After :meth:`step`, ``keys`` (sorted int64 pair keys), ``i``, ``j``, ``distance`` (Å)
    describe the bonds of the frame, ``formed`` and ``broken`` the keys that changed.
    """

    def __init__(self, cutoffs: BondCutoffs, codes: np.ndarray, pbc=None):
        self.cut = cutoffs
        self.codes = np.asarray(codes, dtype=np.int64)
        self.n = self.codes.size
        self.n_species = len(cutoffs.species)
        self.pbc = pbc
        self._form = cutoffs.r_form.ravel()
        self._break = cutoffs.r_break.ravel()
        self.keys: np.ndarray | None = None
        self.formed = self.broken = np.zeros(0, np.int64)

    def candidates(self, pos: np.ndarray, cell: np.ndarray | None):
        """Pairs closer than their ``r_break``: sorted unique keys, distances (Å), pair codes."""
        rc = self.cut.max_cutoff
        if rc <= 0 or self.n < 2:
            z = np.zeros(0, np.int64)
            return z, np.zeros(0), z
        p = neighbor_pairs(pos, cell, self.pbc if cell is not None else None, rc)
        keep = p.i != p.j
        i, j = p.i[keep], p.j[keep]
        v = p.vectors[keep]
        d = np.sqrt(np.einsum("pk,pk->p", v, v))
        t = self.codes[i] * self.n_species + self.codes[j]
        ok = d < self._break[t]
        i, j, d, t = i[ok], j[ok], d[ok], t[ok]
        key = i * self.n + j  # the half list has i < j
        order = np.lexsort((d, key))  # by key, shortest image first
        key, d, t = key[order], d[order], t[order]
        first = np.r_[True, key[1:] != key[:-1]] if key.size else np.zeros(0, bool)
        return key[first], d[first], t[first]

    def step(self, pos: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
        """Advance to the next frame; returns its sorted bond keys."""
        key, d, t = self.candidates(pos, cell)
        short = d < self._form[t]
        if self.keys is None:  # first frame: no history, split the band at its middle
            keep = d < 0.5 * (self._form[t] + self._break[t])
        else:
            keep = short | np.isin(key, self.keys, assume_unique=True, kind="sort")
        new = key[keep]
        if self.keys is None:
            self.formed = self.broken = np.zeros(0, np.int64)
        else:
            self.formed = np.setdiff1d(new, self.keys, assume_unique=True)
            self.broken = np.setdiff1d(self.keys, new, assume_unique=True)
        self.keys, self.distance, self.pair_code = new, d[keep], t[keep]
        return new

    @property
    def i(self) -> np.ndarray:
        return self.keys // self.n

    @property
    def j(self) -> np.ndarray:
        return self.keys % self.n

    def split(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(i, j, pair_code)`` of pair keys (``pair_code = code_i * n_species + code_j``)."""
        i, j = keys // self.n, keys % self.n
        return i, j, self.codes[i] * self.n_species + self.codes[j]

    def covalent_mask(self) -> np.ndarray:
        """Which of the current bonds are covalent (define species)."""
        return self.cut.covalent.ravel()[self.pair_code]

    def coordination(self) -> np.ndarray:
        """(n_atoms, n_species) int: bonds of each atom to each species in this frame."""
        i, j, ns = self.i, self.j, self.n_species
        c = np.bincount(i * ns + self.codes[j], minlength=self.n * ns)
        c += np.bincount(j * ns + self.codes[i], minlength=self.n * ns)
        return c.reshape(self.n, ns)


def components(n_atoms: int, i: np.ndarray, j: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the graph with edges ``(i, j)``: ``(n_components, labels)``
    (scipy's union-find over a sparse matrix; linear in atoms + bonds)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(i.size, np.int8), (i, j)), shape=(n_atoms, n_atoms)).tocsr()
    return connected_components(g, directed=False)


def hill_formula(counts: dict[str, int]) -> str:
    """Hill order: C first, then H, then the rest alphabetically; without C, all
    alphabetically (H included).  ``{"P": 1, "S": 4} -> "PS4"``, ``{"C": 2, "H": 6, "O": 2}
    -> "C2H6O2"``."""
    items = {k: int(v) for k, v in counts.items() if v}
    if "C" in items:
        order = (
            ["C"]
            + (["H"] if "H" in items else [])
            + sorted(k for k in items if k not in ("C", "H"))
        )
    else:
        order = sorted(items)
    return "".join(f"{k}{items[k] if items[k] != 1 else ''}" for k in order)


class FormulaBook:
    """Formulas of the components of each frame, with a stable id per distinct formula.

    Parameters
    ----------
    species
        (n_atoms,) chemical symbol of each atom.
    """

    def __init__(self, species):
        sp = np.asarray(species).astype(str)
        self.elements = sorted(set(sp.tolist()))
        self.elem = np.searchsorted(self.elements, sp).astype(np.int64)
        self.n_atoms = sp.size
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        self._rows: dict[tuple, int] = {}
        # per-atom random 64-bit keys: a component's key is their sum (mod 2**64), the same
        # exactly when the component has the same atoms (collision odds ~ n**2 / 2**64)
        self._atom_key = (
            np.random.default_rng(0x5EC1E5).integers(0, 2**63, self.n_atoms, dtype=np.uint64) * 2
            + 1
        )

    def formula_id(self, name: str) -> int:
        if name not in self._ids:
            self._ids[name] = len(self.names)
            self.names.append(name)
        return self._ids[name]

    def frame(self, n_comp: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(formula_id (n_comp,), identity (n_comp,) uint64)`` of one frame's components."""
        ne = len(self.elements)
        rows = np.bincount(labels * ne + self.elem, minlength=n_comp * ne).reshape(n_comp, ne)
        uniq, inv = np.unique(rows, axis=0, return_inverse=True)
        ids = np.empty(len(uniq), np.int64)
        for u, row in enumerate(uniq):
            t = tuple(row.tolist())
            if t not in self._rows:
                self._rows[t] = self.formula_id(
                    hill_formula(dict(zip(self.elements, t, strict=True)))
                )
            ids[u] = self._rows[t]
        order = np.argsort(labels, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
        ident = (
            np.add.reduceat(self._atom_key[order], starts)
            if labels.size
            else np.zeros(0, np.uint64)
        )
        return ids[inv.ravel()], ident
