"""Training data: frames from extxyz / anything ASE reads / our trajectory stores, graphs,
batches, splits and statistics.

A *frame* is a small dict of numpy arrays (``numbers``, ``pos``, ``cell``, ``pbc`` and
optional labels ``energy`` eV, ``forces`` eV/Å, ``stress`` eV/Å³ with ASE's sign); a
*graph* adds ``atom_types`` and the neighbour list; :func:`collate` stacks graphs into the
model's batch dict.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engines.mlip.neighbors import neighbor_list

__all__ = [
    "frame_from_atoms", "read_frames", "to_graph", "collate", "FrameDataset", "split_indices",
    "statistics",
]

LABELS = ("energy", "forces", "stress")


def _voigt_to_full(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=float)
    if s.shape == (3, 3):
        return s
    xx, yy, zz, yz, xz, xy = s
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def frame_from_atoms(atoms, source: str = "<atoms>", index: int = 0) -> dict[str, Any]:
    """Frame dict from an ``ase.Atoms`` (labels from its calculator or info/arrays)."""
    fr: dict[str, Any] = {
        "numbers": np.asarray(atoms.numbers, dtype=np.int64),
        "pos": np.asarray(atoms.positions, dtype=float),
        "cell": np.asarray(atoms.cell.array, dtype=float),
        "pbc": np.asarray(atoms.pbc, dtype=bool),
        "source": source,
        "index": index,
    }
    calc = atoms.calc
    results = getattr(calc, "results", {}) if calc is not None else {}
    for key, alt in (("energy", ("energy", "free_energy")), ("forces", ("forces",)), ("stress", ("stress",))):
        val = None
        for a in alt:
            if a in results:
                val = results[a]
                break
            if a in atoms.info:
                val = atoms.info[a]
                break
            if a in atoms.arrays:
                val = atoms.arrays[a]
                break
        if val is not None:
            val = np.asarray(val, dtype=float)
            fr[key] = _voigt_to_full(val) if key == "stress" else (float(val) if key == "energy" else val)
    _check_finite(fr)
    return fr


def _check_finite(fr: dict[str, Any]) -> None:
    for key in ("pos", "cell", *LABELS):
        if key in fr and not np.all(np.isfinite(fr[key])):
            raise ValueError(
                f"{fr['source']}: frame {fr['index']}: '{key}' contains NaN or inf. "
                "Fix: remove that frame or recompute its labels."
            )


def _frames_from_dataset(ds, source: str) -> Iterable[dict[str, Any]]:
    from toolkit import schema as S

    numbers = (np.asarray(ds[S.ATOMIC_NUMBER].values, dtype=np.int64) if S.ATOMIC_NUMBER in ds.coords
               else None)
    if numbers is None:
        from ase.data import atomic_numbers

        numbers = np.array([atomic_numbers[str(s)] for s in ds[S.SPECIES].values], dtype=np.int64)
    pbc = np.asarray(ds.attrs.get(S.PBC, (0, 0, 0)), dtype=bool).reshape(3)
    for k in range(ds.sizes[S.FRAME]):
        f = ds.isel({S.FRAME: k})
        fr: dict[str, Any] = {
            "numbers": numbers, "pos": np.asarray(f[S.POSITIONS].values, dtype=float),
            "cell": (np.asarray(f[S.CELL].values, dtype=float) if S.CELL in f else np.zeros((3, 3))),
            "pbc": pbc, "source": source, "index": k,
        }
        if S.ENERGY in f:
            fr["energy"] = float(f[S.ENERGY].values)
        if S.FORCES in f:
            fr["forces"] = np.asarray(f[S.FORCES].values, dtype=float)
        if S.STRESS in f:
            fr["stress"] = np.asarray(f[S.STRESS].values, dtype=float)
        _check_finite(fr)
        yield fr


def read_frames(path: str | os.PathLike, index: str | int | slice = ":") -> list[dict[str, Any]]:
    """Read all frames of a file: our netCDF/zarr trajectories through
    :func:`toolkit.io.open`, anything else through ASE (extxyz with ``energy``/``forces``/
    ``stress``).  A NaN/inf label raises ``ValueError`` naming the file and frame."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training file '{path}' does not exist.")
    low = path.name.lower()
    if low.endswith((".nc", ".zarr", ".nc4", ".h5")):
        from toolkit.io import open as open_traj

        return list(_frames_from_dataset(open_traj(path), str(path)))
    import ase.io

    atoms = ase.io.read(path, index=index)
    if not isinstance(atoms, list):
        atoms = [atoms]
    return [frame_from_atoms(a, str(path), k) for k, a in enumerate(atoms)]


def to_graph(frame: dict[str, Any], species: Sequence[str], r_max: float) -> dict[str, Tensor]:
    """Per-structure graph dict (float64 tensors) from a frame or an ``ase.Atoms``."""
    if not isinstance(frame, dict):
        frame = frame_from_atoms(frame)
    from ase.data import chemical_symbols

    lookup = {s: k for k, s in enumerate(species)}
    syms = [chemical_symbols[z] for z in frame["numbers"]]
    unknown = sorted(set(syms) - set(lookup))
    if unknown:
        raise ValueError(
            f"species {unknown} are unknown to the model, which knows {list(species)}. "
            "Fix: use a model trained on these elements."
        )
    pos = torch.as_tensor(frame["pos"], dtype=torch.float64)
    cell = torch.as_tensor(frame["cell"], dtype=torch.float64)
    pbc = torch.as_tensor(frame["pbc"], dtype=torch.bool)
    ei, sh = neighbor_list(pos, cell, pbc, r_max)
    g = {
        "pos": pos, "cell": cell, "pbc": pbc, "edge_index": ei, "edge_cell_shift": sh,
        "atom_types": torch.tensor([lookup[s] for s in syms], dtype=torch.long),
    }
    for key in LABELS:
        if key in frame:
            g[key] = torch.as_tensor(frame[key], dtype=torch.float64)
    return g


def collate(
    items: Sequence[Any], r_max: float | None = None, species: Sequence[str] | None = None,
) -> dict[str, Tensor]:
    """Batch dict for the model from graphs, frames or ``ase.Atoms``.

    Parameters
    ----------
    items
        Graph dicts (from :func:`to_graph`: need no ``r_max``/``species``), frame dicts or
        ``ase.Atoms`` (need ``r_max`` and ``species``, e.g. ``model.r_max, model.species``).

    Returns
    -------
    dict with the model inputs ``pos`` (N,3), ``atom_types`` (N,), ``cell`` (B,3,3), ``pbc``
    (B,3), ``batch`` (N,), ``edge_index`` (2,E) (offset per structure), ``edge_cell_shift``
    (E,3), ``num_atoms`` (B,), and, when every item has them, the labels ``ref_energy``
    (B,), ``ref_forces`` (N,3), ``ref_stress`` (B,3,3).
    """
    graphs = []
    for it in items:
        if isinstance(it, dict) and "edge_index" in it:
            graphs.append(it)
        else:
            if r_max is None or species is None:
                raise ValueError("collate needs r_max and species to build graphs from atoms. "
                                 "Fix: collate(items, r_max=model.r_max, species=model.species).")
            graphs.append(to_graph(it, species, r_max))
    if not graphs:
        raise ValueError("collate got an empty list of structures.")
    offs = 0
    ei, batch = [], []
    for b, g in enumerate(graphs):
        n = g["pos"].shape[0]
        ei.append(g["edge_index"] + offs)
        batch.append(torch.full((n,), b, dtype=torch.long))
        offs += n
    out = {
        "pos": torch.cat([g["pos"] for g in graphs]),
        "atom_types": torch.cat([g["atom_types"] for g in graphs]),
        "cell": torch.stack([g["cell"].reshape(3, 3) for g in graphs]),
        "pbc": torch.stack([torch.as_tensor(g["pbc"], dtype=torch.bool).reshape(3) for g in graphs]),
        "batch": torch.cat(batch),
        "edge_index": torch.cat(ei, dim=1),
        "edge_cell_shift": torch.cat([g["edge_cell_shift"] for g in graphs]),
        "num_atoms": torch.tensor([g["pos"].shape[0] for g in graphs], dtype=torch.long),
    }
    for key, cat in (("energy", torch.stack), ("forces", torch.cat), ("stress", torch.stack)):
        if all(key in g for g in graphs):
            out["ref_" + key] = cat([torch.as_tensor(g[key], dtype=torch.float64) for g in graphs])
    return out


class FrameDataset(torch.utils.data.Dataset):
    """Frames held as compact numpy arrays; neighbour graphs built on access.

    Graphs (the largest objects, ~E×5 numbers per frame) are not kept unless
    ``cache_graphs``; the frames themselves are ~N×7 numbers each.

    Parameters
    ----------
    frames
        Frame dicts (see :func:`read_frames`).
    species, r_max
        The model's species and cutoff.
    """

    def __init__(self, frames: Sequence[dict[str, Any]], species: Sequence[str], r_max: float,
                 cache_graphs: bool = False) -> None:
        self.frames = list(frames)
        self.species = list(species)
        self.r_max = float(r_max)
        self._cache: dict[int, dict[str, Tensor]] | None = {} if cache_graphs else None

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike], species: Sequence[str] | None,
                   r_max: float, cache_graphs: bool = False) -> FrameDataset:
        frames = [fr for p in paths for fr in read_frames(p)]
        if species is None or not len(species):
            species = species_of(frames)
        return cls(frames, species, r_max, cache_graphs)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, k: int) -> dict[str, Tensor]:
        if self._cache is not None and k in self._cache:
            return self._cache[k]
        g = to_graph(self.frames[k], self.species, self.r_max)
        if self._cache is not None:
            self._cache[k] = g
        return g

    def subset(self, idx: Sequence[int]) -> FrameDataset:
        return FrameDataset([self.frames[i] for i in idx], self.species, self.r_max, self._cache is not None)


def species_of(frames: Sequence[dict[str, Any]]) -> list[str]:
    """Sorted (by atomic number) chemical symbols present in the frames."""
    from ase.data import chemical_symbols

    zs = sorted({int(z) for fr in frames for z in fr["numbers"]})
    return [chemical_symbols[z] for z in zs]


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation split of ``range(n)``; at least one validation frame when
    ``val_fraction > 0`` and ``n > 1``."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    nv = int(round(val_fraction * n))
    if val_fraction > 0 and n > 1:
        nv = max(nv, 1)
    return np.sort(perm[nv:]), np.sort(perm[:nv])


def statistics(dataset: FrameDataset, max_frames: int = 1000) -> dict[str, Any]:
    """Data statistics for the model's normalisation.

    Returns
    -------
    dict with ``shift`` (S,) per-species energies (eV, least squares of ``E = sum n_s mu_s``),
    ``scale`` (S,) force RMS (eV/Å; the same for all species; 1 without forces),
    ``avg_num_neighbors`` (float), ``force_rms`` (eV/Å).
    """
    from ase.data import chemical_symbols

    s = len(dataset.species)
    lookup = {x: k for k, x in enumerate(dataset.species)}
    counts, energies, f2, nf, neigh, nat = [], [], 0.0, 0, 0, 0
    for k, fr in enumerate(dataset.frames[:max_frames]):
        c = np.zeros(s)
        for z in fr["numbers"]:
            c[lookup[chemical_symbols[z]]] += 1
        if "energy" in fr:
            counts.append(c)
            energies.append(fr["energy"])
        if "forces" in fr:
            f2 += float(np.sum(fr["forces"] ** 2))
            nf += fr["forces"].size
        if k < 100:
            g = dataset[k]
            neigh += g["edge_index"].shape[1]
            nat += g["pos"].shape[0]
    shift = np.zeros(s)
    if energies:
        a, e = np.array(counts), np.array(energies)
        shift = np.linalg.lstsq(a, e, rcond=None)[0]
    force_rms = float(np.sqrt(f2 / nf)) if nf else 1.0
    if not force_rms > 0:
        force_rms = 1.0
    return {
        "shift": shift, "scale": np.full(s, force_rms), "force_rms": force_rms,
        "avg_num_neighbors": neigh / max(nat, 1) if nat else 10.0,
    }
