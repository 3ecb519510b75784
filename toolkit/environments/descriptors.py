"""Per-atom descriptors of local environments, computed frame by frame and chunked with dask.

Three kinds, all giving one row of invariant features per centre atom:

* :class:`SOAP` — smooth overlap of atomic positions (power spectrum), through dscribe;
* :class:`ACSF` — Behler–Parrinello atom-centred symmetry functions, through dscribe;
* :class:`ModelFeatures` — any callable ``features(atoms) -> (n_atoms, n_features)``, e.g.
  the invariant per-atom features of a trained potential (the toolkit never imports the
  engines: pass the model's feature function).

:func:`environment_descriptors` returns a lazy (dask-backed) DataArray ``(frame, env,
feature)``; each block is a range of frames computed independently, so a trajectory larger
than memory streams through and a dask distributed client spreads the blocks over workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import InputError

ENV = "env"
FEATURE = "feature"


def _sorted_species(species: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted({str(s) for s in species}))


@dataclass(frozen=True)
class SOAP:
    """SOAP power spectrum (dscribe) of each centre's neighbourhood.

    Parameters
    ----------
    r_cut
        Cutoff radius in Å.
    n_max, l_max
        Radial and angular expansion orders.
    sigma
        Width of the atomic Gaussians in Å.
    periodic
        Use the cell (periodic images); the trajectory must then have a cell.
    """

    r_cut: float = 5.0
    n_max: int = 6
    l_max: int = 4
    sigma: float = 0.5
    periodic: bool = True
    kind: str = field(default="soap", init=False)

    def _make(self, neighbours: tuple[str, ...], centres: tuple[str, ...]):
        from dscribe.descriptors import SOAP as _SOAP

        return _SOAP(
            species=list(neighbours),
            periodic=self.periodic,
            r_cut=self.r_cut,
            n_max=self.n_max,
            l_max=self.l_max,
            sigma=self.sigma,
            dtype="float64",
        )

    def n_features(self, neighbours: tuple[str, ...], centres: tuple[str, ...]) -> int:
        return int(self._make(neighbours, centres).get_number_of_features())

    def compute(
        self, atoms, centre_index: np.ndarray, neighbours: tuple[str, ...], centres: tuple[str, ...]
    ) -> np.ndarray:
        """Features (n_centres, n_features) of the atoms ``centre_index`` of ``atoms``.

        Only atoms of ``neighbours`` build the density; centres are given by position, so
        a centre species need not be among the neighbours.
        """
        sym = np.asarray(atoms.get_chemical_symbols())
        keep = np.isin(sym, neighbours)
        centre_pos = atoms.positions[centre_index]
        sub = atoms[np.flatnonzero(keep)]
        return self._make(neighbours, centres).create(sub, centers=centre_pos)


@dataclass(frozen=True)
class ACSF:
    """Atom-centred symmetry functions (dscribe): radial G2 and angular G4 terms.

    Parameters
    ----------
    r_cut
        Cutoff radius in Å.
    g2_params
        ``(eta [1/Å^2], R_s [Å])`` pairs of the radial functions.
    g4_params
        ``(eta [1/Å^2], zeta, lambda)`` triples of the angular functions.
    periodic
        Use the cell (periodic images).

    Notes
    -----
    dscribe's ACSF needs every atom's species in its list, so the neighbour set used is the
    union of the neighbour and centre species.
    """

    r_cut: float = 5.0
    g2_params: tuple = ((0.5, 2.0), (0.5, 3.0), (0.5, 4.0), (2.0, 2.5), (2.0, 3.5))
    g4_params: tuple = ((0.05, 1.0, 1.0), (0.05, 1.0, -1.0), (0.05, 4.0, 1.0), (0.05, 4.0, -1.0))
    periodic: bool = True
    kind: str = field(default="acsf", init=False)

    def _make(self, neighbours, centres):
        from dscribe.descriptors import ACSF as _ACSF

        sp = _sorted_species((*neighbours, *centres))
        return _ACSF(
            species=list(sp),
            r_cut=self.r_cut,
            g2_params=[list(p) for p in self.g2_params] or None,
            g4_params=[list(p) for p in self.g4_params] or None,
            periodic=self.periodic,
            dtype="float64",
        )

    def n_features(self, neighbours, centres) -> int:
        return int(self._make(neighbours, centres).get_number_of_features())

    def compute(self, atoms, centre_index, neighbours, centres) -> np.ndarray:
        sp = _sorted_species((*neighbours, *centres))
        sym = np.asarray(atoms.get_chemical_symbols())
        keep = np.flatnonzero(np.isin(sym, sp))
        new_index = np.searchsorted(keep, centre_index)
        return self._make(neighbours, centres).create(atoms[keep], centers=new_index.tolist())


@dataclass(frozen=True)
class ModelFeatures:
    """Per-atom invariant features from any callable (e.g. a trained potential).

    Parameters
    ----------
    features
        ``features(atoms: ase.Atoms) -> array (n_atoms, n_features)``; must be picklable
        (a module-level function or a picklable object) for distributed runs.
    n_features_
        Number of features; found by calling ``features`` on the first frame when omitted.
    periodic
        Whether the callable needs the cell (checked like the dscribe descriptors).
    """

    features: Callable
    n_features_: int | None = None
    periodic: bool = True
    kind: str = field(default="model", init=False)

    def n_features(self, neighbours, centres) -> int:
        if self.n_features_ is None:
            raise RuntimeError("n_features_ unknown")  # resolved in environment_descriptors
        return int(self.n_features_)

    def compute(self, atoms, centre_index, neighbours, centres) -> np.ndarray:
        out = np.asarray(self.features(atoms), dtype=float)
        if out.ndim != 2 or out.shape[0] != len(atoms):
            raise InputError(
                f"the feature callable returned shape {out.shape} for {len(atoms)} atoms; "
                "expected (n_atoms, n_features). Fix: return one row of invariant features per atom."
            )
        return out[centre_index]


Descriptor = SOAP | ACSF | ModelFeatures


def as_descriptor(descriptor) -> Descriptor:
    """A descriptor object from a name (``"soap"``, ``"acsf"``), a callable or an object."""
    if isinstance(descriptor, SOAP | ACSF | ModelFeatures):
        return descriptor
    if isinstance(descriptor, str):
        low = descriptor.lower()
        if low == "soap":
            return SOAP()
        if low == "acsf":
            return ACSF()
        raise InputError(
            f"unknown descriptor {descriptor!r}. Fix: use 'soap', 'acsf', a SOAP(...)/"
            "ACSF(...) object, or a callable features(atoms) -> (n_atoms, n_features)."
        )
    if callable(descriptor):
        return ModelFeatures(descriptor)
    raise TypeError(
        f"descriptor {descriptor!r} is neither a name, a descriptor object nor a callable."
    )


def resolve_species(
    ds: xr.Dataset, species=None, neighbours=None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Centre and neighbour species (sorted), checked against the trajectory.

    ``None`` means every species present.  A species absent from the trajectory raises a
    :class:`ValueError` naming it and the species present.
    """
    present = _sorted_species(np.asarray(ds[S.SPECIES].values).astype(str))
    out = []
    for name, chosen in (("species", species), ("neighbours", neighbours)):
        if chosen is None:
            out.append(present)
            continue
        chosen = [chosen] if isinstance(chosen, str) else list(chosen)
        missing = [s for s in chosen if s not in present]
        if missing:
            raise InputError(
                f"{name} {missing} not in the trajectory (it has {list(present)}). "
                f"Fix: choose {name} among {list(present)}."
            )
        if not chosen:
            raise InputError(f"empty {name} list. Fix: name at least one species.")
        out.append(_sorted_species(chosen))
    return out[0], out[1]


def _atoms(positions, symbols, cell, pbc):
    from ase import Atoms

    return Atoms(symbols=symbols, positions=positions, cell=cell, pbc=pbc)


def _block(positions, cells, symbols, pbc, desc, centre_index, neighbours, centres, n_feat):
    positions = np.asarray(positions, dtype=float)
    nf = positions.shape[0]
    out = np.empty((nf, centre_index.size, n_feat), dtype=np.float32)  # halves memory and cache
    for f in range(nf):
        cell = None if cells is None else np.asarray(cells[f], dtype=float)
        atoms = _atoms(positions[f], symbols, cell, pbc if cell is not None else False)
        out[f] = desc.compute(atoms, centre_index, neighbours, centres)
    return out


def default_chunk_frames(n_centres: int, n_feat: int) -> int:
    """Frames per block: about 64 MB of float32 features (at least one frame)."""
    return max(1, int(64e6 // max(1, n_centres * n_feat * 4)))


def settings_key(desc, centres, neighbours, symbols, pbc) -> str:
    """Text that identifies a descriptor's output for a given chemistry (the cache key's first
    half; the second half hashes the frames' positions and cell)."""
    import json

    if isinstance(desc, ModelFeatures):
        f = desc.features
        name = f"{getattr(f, '__module__', '')}:{getattr(f, '__qualname__', type(f).__qualname__)}"
        params = {"features": name, "n_features": desc.n_features_, "periodic": desc.periodic}
    else:
        params = {k: v for k, v in vars(desc).items()}
    return json.dumps(
        {
            "kind": desc.kind,
            "params": params,
            "centres": list(centres),
            "neighbours": list(neighbours),
            "symbols_hash": _hash_array(np.asarray(symbols, str)),
            "pbc": [bool(x) for x in np.asarray(pbc).ravel()],
            "dtype": "float32",
            "format": 1,
        },
        sort_keys=True,
        default=str,
    )


def _hash_array(a: np.ndarray) -> str:
    import hashlib

    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=16)
    h.update(str((a.dtype.str, a.shape)).encode())
    h.update(a.tobytes() if a.dtype.kind != "U" else "\x00".join(a.ravel().tolist()).encode())
    return h.hexdigest()


def frame_atoms(ds: xr.Dataset, frame: int):
    """One frame as an :class:`ase.Atoms` (positions Å, cell Å, pbc)."""
    cell = np.asarray(ds[S.CELL].isel({S.FRAME: frame}).values) if S.CELL in ds else None
    return _atoms(
        np.asarray(ds[S.POSITIONS].isel({S.FRAME: frame}).values),
        np.asarray(ds[S.SPECIES].values).astype(str),
        cell,
        S.pbc_of(ds) if cell is not None else False,
    )


def environment_descriptors(
    ds: xr.Dataset,
    descriptor="soap",
    *,
    species=None,
    neighbours=None,
    chunk_frames: int | None = None,
) -> xr.DataArray:
    """Lazy per-atom descriptors of every frame.

    Parameters
    ----------
    ds
        Trajectory (schema Dataset; may be dask-backed).
    descriptor
        ``"soap"``, ``"acsf"``, a :class:`SOAP` / :class:`ACSF` / :class:`ModelFeatures`
        object, or a callable ``features(atoms) -> (n_atoms, n_features)``.
    species
        Centre species (default: all).
    neighbours
        Species whose atoms form the environments (default: all).
    chunk_frames
        Frames per dask block; by default blocks of about 64 MB of float32 features.

    Returns
    -------
    DataArray
        ``(frame, env, feature)`` float32 backed by dask; coords ``atom_index`` and
        ``centre_species`` on ``env`` (index into the trajectory's atoms and its species).
    """
    import dask
    import dask.array as da

    S.validate(ds)
    desc = as_descriptor(descriptor)
    if desc.periodic and S.CELL not in ds:
        raise InputError(
            "periodic descriptors need a cell but the trajectory has none. Fix: assign one "
            "(ds['cell'] = (('frame','cell_vector','xyz'), cells)) or use a non-periodic "
            f"descriptor, e.g. {type(desc).__name__}(periodic=False)."
        )
    centres, neigh = resolve_species(ds, species, neighbours)
    symbols = np.asarray(ds[S.SPECIES].values).astype(str)
    centre_index = np.flatnonzero(np.isin(symbols, centres))
    pbc = S.pbc_of(ds) if desc.periodic else np.zeros(3, bool)
    if isinstance(desc, ModelFeatures) and desc.n_features_ is None:
        probe = desc.compute(frame_atoms(ds, 0), centre_index, neigh, centres)
        desc = ModelFeatures(desc.features, int(probe.shape[1]), desc.periodic)
    n_feat = desc.n_features(neigh, centres)
    nf = int(ds.sizes[S.FRAME])
    if chunk_frames is None:
        chunk_frames = default_chunk_frames(centre_index.size, n_feat)
    if chunk_frames < 1:
        raise InputError(f"chunk_frames must be >= 1, got {chunk_frames}.")
    pos = ds[S.POSITIONS].data
    cell = ds[S.CELL].data if (S.CELL in ds and desc.periodic) else None
    blocks = []
    for a in range(0, nf, chunk_frames):
        b = min(nf, a + chunk_frames)
        task = dask.delayed(_block, pure=True)(
            pos[a:b],
            None if cell is None else cell[a:b],
            symbols,
            pbc,
            desc,
            centre_index,
            neigh,
            centres,
            n_feat,
        )
        blocks.append(
            da.from_delayed(task, shape=(b - a, centre_index.size, n_feat), dtype=np.float32)
        )
    data = da.concatenate(blocks, axis=0) if blocks else da.zeros((0, centre_index.size, n_feat))
    coords = {"atom_index": (ENV, centre_index), "centre_species": (ENV, symbols[centre_index])}
    if S.TIME in ds.coords:
        coords[S.TIME] = (S.FRAME, np.asarray(ds[S.TIME].values), {"units": "ps"})
    attrs = {
        "units": "1",
        "descriptor": desc.kind,
        "species": list(centres),
        "neighbours": list(neigh),
        "long_name": f"{desc.kind.upper()} descriptors",
    }
    if not isinstance(desc, ModelFeatures):
        attrs.update({k: v for k, v in vars(desc).items() if isinstance(v, int | float | bool)})
    return xr.DataArray(data, dims=(S.FRAME, ENV, FEATURE), coords=coords, attrs=attrs)
