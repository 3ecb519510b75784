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
from atomtwin.engines.mlip.neighbors import neighbor_list
from atomtwin.toolkit.errors import FileFormatError, InputError
from torch import Tensor

__all__ = [
    "frame_from_atoms", "read_frames", "lazy_frames", "ExtxyzFrames", "TrajectoryFrames", "to_graph",
    "collate", "FrameDataset", "split_indices", "statistics",
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
            raise InputError(
                f"{fr['source']}: frame {fr['index']}: '{key}' contains NaN or inf. "
                "Fix: remove that frame or recompute its labels."
            )


def _numbers_pbc(ds) -> tuple[np.ndarray, np.ndarray]:
    from atomtwin.toolkit import schema as S

    if S.ATOMIC_NUMBER in ds.coords:
        numbers = np.asarray(ds[S.ATOMIC_NUMBER].values, dtype=np.int64)
    else:
        from ase.data import atomic_numbers

        numbers = np.array([atomic_numbers[str(s)] for s in ds[S.SPECIES].values], dtype=np.int64)
    return numbers, np.asarray(ds.attrs.get(S.PBC, (0, 0, 0)), dtype=bool).reshape(3)


def _frame_of_dataset(ds, k: int, numbers: np.ndarray, pbc: np.ndarray, source: str) -> dict[str, Any]:
    """Frame ``k`` of a schema Dataset; with a dask-backed one only that frame's chunk is read."""
    from atomtwin.toolkit import schema as S

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
    return fr


def _frames_from_dataset(ds, source: str) -> Iterable[dict[str, Any]]:
    from atomtwin.toolkit import schema as S

    numbers, pbc = _numbers_pbc(ds)
    for k in range(ds.sizes[S.FRAME]):
        yield _frame_of_dataset(ds, k, numbers, pbc, source)


class _LazyFrames(Sequence):
    """A read-only sequence of frames read from a file on access (nothing cached)."""

    #: chemical symbols present (known without reading the frames)
    chemical_symbols: list[str]

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(f"frame {k} out of range for {len(self)} frames of {self.path}.")
        return self._read(k)


class TrajectoryFrames(_LazyFrames):
    """Frames of a netCDF/zarr trajectory (our schema), read one frame at a time.

    The store is opened (and validated) by :func:`atomtwin.toolkit.io.open`; frames are then read
    through xarray's lazily indexed backend arrays (``h5netcdf`` / ``zarr`` without dask):
    asking for frame ``k`` reads that frame's slice from the file and nothing else, so
    memory holds one frame however long the trajectory.  (A dask graph per frame would be
    ~50 ms and a few kB of bookkeeping per access; plain backend indexing is ~1 ms.)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import xarray as xr
        from ase.data import chemical_symbols
        from atomtwin.toolkit import schema as S
        from atomtwin.toolkit.io import open as open_traj

        self.path = str(path)
        ds = open_traj(path)
        self._numbers, self._pbc = _numbers_pbc(ds)
        self._n = int(ds.sizes[S.FRAME])
        self.chemical_symbols = [chemical_symbols[z] for z in sorted(set(self._numbers.tolist()))]
        if str(path).rstrip("/").lower().endswith(".zarr"):
            self._raw = xr.open_zarr(path, chunks=None, consolidated=None)
        else:
            self._raw = xr.open_dataset(path, engine="h5netcdf")

    def __len__(self) -> int:
        return self._n

    def _read(self, k: int) -> dict[str, Any]:
        from atomtwin.toolkit import schema as S

        fr: dict[str, Any] = {"numbers": self._numbers, "pbc": self._pbc, "source": self.path, "index": k}
        for key, var in (("pos", S.POSITIONS), ("cell", S.CELL), ("energy", S.ENERGY),
                         ("forces", S.FORCES), ("stress", S.STRESS)):
            if var in self._raw:
                v = self._raw[var].variable
                val = np.asarray((v[k] if S.FRAME in v.dims else v).values, dtype=float)
                fr[key] = float(val) if key == "energy" else val
        fr.setdefault("cell", np.zeros((3, 3)))
        _check_finite(fr)
        return fr


class ExtxyzFrames(_LazyFrames):
    """Frames of an (extended) XYZ file through a byte-offset index.

    One streaming pass at construction records where each frame starts (and the chemical
    symbols present); a frame is parsed by ASE from its own bytes when asked for.  Memory:
    the index (8 bytes per frame) plus one frame.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        offsets: list[int] = []
        symbols: set[str] = set()
        with open(path, "rb") as f:
            while True:
                pos = f.tell()
                line = f.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    n = int(line)
                except ValueError as err:
                    raise FileFormatError(path, f"expected an atom count at byte {pos}, got {line[:40]!r}.",
                                          "check that the file is (extended) XYZ.") from err
                offsets.append(pos)
                f.readline()  # comment line (lattice, labels)
                for _ in range(n):
                    symbols.add(f.readline().split(None, 1)[0].decode())
            offsets.append(f.tell())
        self._offsets = np.asarray(offsets, dtype=np.int64)
        from ase.data import atomic_numbers, chemical_symbols

        self.chemical_symbols = [chemical_symbols[z] for z in sorted(atomic_numbers[s] for s in symbols)]

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _read(self, k: int) -> dict[str, Any]:
        import io

        import ase.io

        with open(self.path, "rb") as f:
            f.seek(int(self._offsets[k]))
            text = f.read(int(self._offsets[k + 1] - self._offsets[k])).decode()
        atoms = ase.io.read(io.StringIO(text), format="extxyz")
        fr = frame_from_atoms(atoms, self.path, k)
        calc = atoms.calc
        if calc is not None:  # ASE's single-point calculator sits in a reference cycle that
            calc.atoms, calc.results = None, {}  # would keep a copy of the frame and its labels
            atoms.calc = None  # until the cyclic collector runs: let them go now
        return fr


class _Concat(_LazyFrames):
    def __init__(self, parts: Sequence[Sequence[dict[str, Any]]]) -> None:
        self.parts = list(parts)
        self.path = ", ".join(str(getattr(p, "path", "<frames>")) for p in self.parts)
        self._ends = np.cumsum([len(p) for p in self.parts])
        syms = {s for p in self.parts for s in getattr(p, "chemical_symbols", None) or species_of(p)}
        from ase.data import atomic_numbers

        self.chemical_symbols = sorted(syms, key=lambda x: atomic_numbers[x])

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def _read(self, k: int) -> dict[str, Any]:
        i = int(np.searchsorted(self._ends, k, side="right"))
        return self.parts[i][k - (int(self._ends[i - 1]) if i else 0)]


class _Subset(_LazyFrames):
    def __init__(self, base: Sequence[dict[str, Any]], idx: Sequence[int]) -> None:
        self.base, self.idx = base, [int(i) for i in idx]
        self.path = getattr(base, "path", "<frames>")
        self.chemical_symbols = list(getattr(base, "chemical_symbols", []))

    def __len__(self) -> int:
        return len(self.idx)

    def _read(self, k: int) -> dict[str, Any]:
        return self.base[self.idx[k]]


def lazy_frames(path: str | os.PathLike) -> Sequence[dict[str, Any]]:
    """Frames of a file as a sequence read on access: :class:`TrajectoryFrames` for our
    netCDF/zarr stores, :class:`ExtxyzFrames` for ``.xyz``/``.extxyz``; other formats are
    read eagerly (:func:`read_frames`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training file '{path}' does not exist.")
    low = path.name.lower()
    if low.endswith((".nc", ".zarr", ".nc4", ".h5")):
        return TrajectoryFrames(path)
    if low.endswith((".xyz", ".extxyz")):
        return ExtxyzFrames(path)
    return read_frames(path)


def read_frames(path: str | os.PathLike, index: str | int | slice = ":") -> list[dict[str, Any]]:
    """Read all frames of a file: our netCDF/zarr trajectories through
    :func:`atomtwin.toolkit.io.open`, anything else through ASE (extxyz with ``energy``/``forces``/
    ``stress``).  A NaN/inf label or a file ASE cannot parse raises an
    :class:`~atomtwin.toolkit.errors.InputError` naming the file (and frame)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training file '{path}' does not exist.")
    low = path.name.lower()
    if low.endswith((".nc", ".zarr", ".nc4", ".h5")):
        from atomtwin.toolkit.io import open as open_traj

        return list(_frames_from_dataset(open_traj(path), str(path)))
    import ase.io
    from ase.io.formats import UnknownFileTypeError

    try:
        atoms = ase.io.read(path, index=index)
    except UnknownFileTypeError as err:
        raise FileFormatError(path, f"not a format ASE reads ({err}).",
                              "give extxyz, a netCDF/zarr trajectory or another ASE format.") from err
    except (ValueError, IndexError, KeyError, StopIteration) as err:  # ASE's parse errors
        raise FileFormatError(path, f"ASE cannot read it: {type(err).__name__}: {err}",
                              "check that the file is complete and of the format its name says.") from err
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
        raise InputError(
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
                raise InputError("collate needs r_max and species to build graphs from atoms. "
                                 "Fix: collate(items, r_max=model.r_max, species=model.species).")
            graphs.append(to_graph(it, species, r_max))
    if not graphs:
        raise InputError("collate got an empty list of structures.")
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
    """Frames and their neighbour graphs, built on access.

    Graphs (the largest objects, ~E×5 numbers per frame) are not kept unless
    ``cache_graphs``.  The frames are either a list in memory (~N×7 numbers each) or a
    lazy sequence (:func:`lazy_frames`: netCDF/zarr through dask, extxyz through a byte
    index) read frame by frame, so that a dataset larger than memory holds only the
    frames of the batch being built (``from_files(..., lazy=True)``).

    Parameters
    ----------
    frames
        Frame dicts (see :func:`read_frames`) or a lazy sequence of them.
    species, r_max
        The model's species and cutoff.
    """

    def __init__(self, frames: Sequence[dict[str, Any]], species: Sequence[str], r_max: float,
                 cache_graphs: bool = False) -> None:
        self.frames = frames if isinstance(frames, _LazyFrames) else list(frames)
        self.species = list(species)
        self.r_max = float(r_max)
        self._cache: dict[int, dict[str, Tensor]] | None = {} if cache_graphs else None

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike], species: Sequence[str] | None,
                   r_max: float, cache_graphs: bool = False, lazy: bool = False) -> FrameDataset:
        """Dataset of the frames of ``paths``; ``lazy``: read each frame when asked for
        (:func:`lazy_frames`) instead of all at once."""
        if lazy:
            frames: Sequence[dict[str, Any]] = _Concat([lazy_frames(p) for p in paths])
        else:
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
        frames = (_Subset(self.frames, idx) if isinstance(self.frames, _LazyFrames)
                  else [self.frames[i] for i in idx])
        return FrameDataset(frames, self.species, self.r_max, self._cache is not None)


def species_of(frames: Sequence[dict[str, Any]]) -> list[str]:
    """Sorted (by atomic number) chemical symbols present in the frames."""
    from ase.data import chemical_symbols

    known = getattr(frames, "chemical_symbols", None)
    if known:
        return list(known)
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
    for k in range(min(len(dataset.frames), max_frames)):
        fr = dataset.frames[k]  # one at a time: lazy datasets stay lazy
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
