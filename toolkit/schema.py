"""The trajectory contract: one :class:`xarray.Dataset` shared by every part of atomtwin.

Every variable has a name (a constant below), its dimensions and its unit.  Readers
produce it, writers store it, analyses consume it; :func:`validate` runs at every public
entry and says precisely what is wrong (which variable, which dimension, what was
expected).

Layout
------
=================  =============================  ========  =================================
name               dims                           unit      notes
=================  =============================  ========  =================================
positions          (frame, atom, xyz)             Å         as simulated (may be wrapped)
cell               (frame, cell_vector, xyz)      Å         rows are lattice vectors
velocities         (frame, atom, xyz)             Å/ps      optional
forces             (frame, atom, xyz)             eV/Å      optional
energy             (frame,)                       eV        optional (potential energy)
stress             (frame, xyz, xyz2)             eV/Å^3    optional; positive = tensile (ASE)
dipole             (frame, xyz)                   e*Å       optional
polarization       (frame, xyz)                   e*Å       optional (cell dipole)
born_charges       (frame, atom, xyz, xyz2)       e         optional; [a, i, j] = dP_i / dr_aj
image              (frame, atom, xyz)             1         optional integer image flags
electric_field     (frame, xyz)                   V/Å       optional applied field (1 V/Å = 1 eV/(e Å))
=================  =============================  ========  =================================

Coordinates: ``time`` (frame, ps), ``species`` (atom, str), ``atomic_number`` (atom),
``mass`` (atom, amu), ``xyz`` = ["x", "y", "z"].  Attributes: ``pbc`` (three 0/1 ints),
``timestep_ps`` (spacing of stored frames when uniform), ``source``, ``atomtwin_version``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from atomtwin.toolkit.errors import InputError

# --- dimension names ---------------------------------------------------------------
FRAME = "frame"
ATOM = "atom"
XYZ = "xyz"
XYZ2 = "xyz2"
CELL_VECTOR = "cell_vector"

# --- variable names ----------------------------------------------------------------
POSITIONS = "positions"
CELL = "cell"
VELOCITIES = "velocities"
FORCES = "forces"
ENERGY = "energy"
STRESS = "stress"
DIPOLE = "dipole"
POLARIZATION = "polarization"
BORN_CHARGES = "born_charges"
IMAGE = "image"
ELECTRIC_FIELD = "electric_field"
ATOM_ENERGIES = "atom_energies"

# --- coordinate names --------------------------------------------------------------
TIME = "time"
SPECIES = "species"
ATOMIC_NUMBER = "atomic_number"
MASS = "mass"

# --- attribute names ---------------------------------------------------------------
PBC = "pbc"
TIMESTEP = "timestep_ps"
SOURCE = "source"
VERSION = "atomtwin_version"


@dataclass(frozen=True)
class Field:
    """A schema entry: dimensions, unit and whether it is required."""

    name: str
    dims: tuple[str, ...]
    unit: str
    required: bool = False
    kind: str = "f"  # numpy dtype kind(s) accepted
    description: str = ""


VARIABLES: dict[str, Field] = {
    f.name: f
    for f in [
        Field(POSITIONS, (FRAME, ATOM, XYZ), "Å", True, "f", "Cartesian positions"),
        Field(CELL, (FRAME, CELL_VECTOR, XYZ), "Å", False, "f", "lattice vectors as rows"),
        Field(VELOCITIES, (FRAME, ATOM, XYZ), "Å/ps", False, "f", "velocities"),
        Field(FORCES, (FRAME, ATOM, XYZ), "eV/Å", False, "f", "forces"),
        Field(ENERGY, (FRAME,), "eV", False, "f", "potential energy"),
        Field(ATOM_ENERGIES, (FRAME, ATOM), "eV", False, "f", "per-atom potential energy"),
        Field(STRESS, (FRAME, XYZ, XYZ2), "eV/Å^3", False, "f", "stress tensor (ASE sign)"),
        Field(DIPOLE, (FRAME, XYZ), "e*Å", False, "f", "dipole moment"),
        Field(POLARIZATION, (FRAME, XYZ), "e*Å", False, "f", "cell dipole (polarization x volume)"),
        Field(BORN_CHARGES, (FRAME, ATOM, XYZ, XYZ2), "e", False, "f", "Born effective charges"),
        Field(IMAGE, (FRAME, ATOM, XYZ), "1", False, "iu", "periodic image flags"),
        Field(ELECTRIC_FIELD, (FRAME, XYZ), "V/Å", False, "f", "applied electric field"),
    ]
}

COORDS: dict[str, Field] = {
    f.name: f
    for f in [
        Field(TIME, (FRAME,), "ps", False, "f", "simulation time"),
        Field(SPECIES, (ATOM,), "", True, "UOS", "chemical symbol"),
        Field(ATOMIC_NUMBER, (ATOM,), "", False, "iu", "atomic number"),
        Field(MASS, (ATOM,), "amu", False, "f", "atomic mass"),
    ]
}

UNITS = {**{k: v.unit for k, v in VARIABLES.items()}, **{k: v.unit for k, v in COORDS.items()}}


class SchemaError(InputError):
    """A Dataset does not follow the atomtwin trajectory contract."""


def _fail(msg: str, fix: str | None = None) -> None:
    raise SchemaError(msg + (f" Fix: {fix}" if fix else ""))


def validate(ds: xr.Dataset, *, require: tuple[str, ...] = (), check_finite: bool = False) -> xr.Dataset:
    """Check that ``ds`` follows the trajectory contract and return it unchanged.

    Parameters
    ----------
    ds
        Trajectory Dataset.
    require
        Names of optional variables/coords the caller needs (e.g. ``("cell", "velocities")``).
    check_finite
        Also check that positions (and cell) hold no NaN/inf.  This loads the data, so it
        is off by default for lazy (dask-backed) datasets.

    Raises
    ------
    SchemaError
        Naming the variable, the dimension and what was expected.
    """
    if not isinstance(ds, xr.Dataset):
        _fail(f"expected an xarray.Dataset, got {type(ds).__name__}.",
              "read the trajectory with atomtwin.toolkit.read(path) or atomtwin.toolkit.open(path).")
    for name in (POSITIONS, *require):
        if name not in ds.variables:
            _fail(f"the trajectory has no '{name}' (it has: {sorted(ds.variables)}).",
                  f"provide '{name}' — readers fill it when the source file carries it.")
    if SPECIES not in ds.coords:
        _fail("the trajectory has no 'species' coordinate on 'atom'.",
              "assign one, e.g. ds.assign_coords(species=('atom', symbols)).")
    for table in (VARIABLES, COORDS):
        for name, f in table.items():
            if name not in ds.variables:
                continue
            da = ds[name]
            if da.dims != f.dims:
                _fail(f"'{name}' has dims {da.dims}; the schema expects {f.dims} ({f.description}, {f.unit or 'no unit'}).",
                      f"transpose or rename, e.g. ds['{name}'].transpose{f.dims}.")
            if da.dtype.kind not in f.kind:
                _fail(f"'{name}' has dtype {da.dtype}; expected kind {f.kind!r}.")
    n_xyz = ds.sizes.get(XYZ)
    if n_xyz != 3:
        _fail(f"dimension '{XYZ}' has length {n_xyz}; expected 3.")
    if CELL in ds and ds.sizes[CELL_VECTOR] != 3:
        _fail(f"dimension '{CELL_VECTOR}' has length {ds.sizes[CELL_VECTOR]}; expected 3.")
    if XYZ2 in ds.dims and ds.sizes[XYZ2] != 3:
        _fail(f"dimension '{XYZ2}' has length {ds.sizes[XYZ2]}; expected 3.")
    if TIME in ds.coords and ds.sizes[FRAME] > 1:
        t = np.asarray(ds[TIME].values, dtype=float)
        if not np.all(np.diff(t) > 0):
            i = int(np.argmin(np.diff(t) > 0))
            _fail(f"'time' is not strictly increasing (frame {i + 1}: {t[i + 1]} ps after {t[i]} ps).",
                  "drop duplicated frames (e.g. restart overlaps) with ds.isel(frame=...) before analysis.")
    if check_finite:
        for name in (POSITIONS, CELL):
            if name in ds:
                bad = ~np.isfinite(np.asarray(ds[name].values))
                if bad.any():
                    idx = np.argwhere(bad)[0]
                    _fail(f"'{name}' holds NaN/inf, first at frame {idx[0]}"
                          + (f", atom {idx[1]}" if name == POSITIONS else "") + ".",
                          "cut the trajectory before that frame or fix the source.")
    return ds


def is_periodic(ds: xr.Dataset) -> bool:
    """True when the trajectory has a cell and at least one periodic direction."""
    return CELL in ds and bool(np.any(pbc_of(ds)))


def pbc_of(ds: xr.Dataset) -> np.ndarray:
    """Periodicity flags as a bool array of 3 (default all True with a cell, else all False)."""
    if PBC in ds.attrs:
        return np.asarray(ds.attrs[PBC], dtype=bool).reshape(3)
    return np.full(3, CELL in ds)


def uniform_timestep(ds: xr.Dataset, rtol: float = 1e-6) -> float:
    """The frame spacing in ps, or a :class:`SchemaError` when frames are not evenly spaced."""
    if TIME not in ds.coords:
        if TIMESTEP in ds.attrs:
            return float(ds.attrs[TIMESTEP])
        _fail("the trajectory has neither a 'time' coordinate nor a 'timestep_ps' attribute.",
              "assign one: ds.assign_coords(time=('frame', t_ps)).")
    t = np.asarray(ds[TIME].values, dtype=float)
    if t.size < 2:
        _fail("a single frame has no time step.")
    dt = np.diff(t)
    if not np.allclose(dt, dt[0], rtol=rtol, atol=1e-9):
        _fail(f"frames are not evenly spaced in time (spacings from {dt.min():g} to {dt.max():g} ps).",
              "select an evenly strided subset with ds.isel(frame=slice(...)) or resample.")
    return float(dt[0])


def make_dataset(
    positions: np.ndarray,
    species,
    *,
    cell: np.ndarray | None = None,
    time: np.ndarray | None = None,
    pbc=None,
    masses: np.ndarray | None = None,
    attrs: dict | None = None,
    **variables: np.ndarray,
) -> xr.Dataset:
    """Build a schema Dataset from arrays (positions (n_frames, n_atoms, 3) in Å, ...).

    Extra keyword arrays (``velocities=``, ``forces=``, ``energy=``...) are placed with the
    schema's dims for their name.  Masses default to ASE's standard atomic masses.
    """
    from ase.data import atomic_masses, atomic_numbers

    positions = np.asarray(positions, dtype=float)
    if positions.ndim == 2:
        positions = positions[None]
    if positions.ndim != 3 or positions.shape[-1] != 3:
        _fail(f"positions have shape {positions.shape}; expected (n_frames, n_atoms, 3).")
    nf, na, _ = positions.shape
    species = np.asarray([str(s) for s in species])
    if species.shape != (na,):
        _fail(f"{species.size} species for {na} atoms.", "give one chemical symbol per atom.")
    unknown = sorted({str(s) for s in species if s not in atomic_numbers})
    if unknown:
        _fail(f"unknown chemical symbols {unknown}.", "map types to species, e.g. --species-map 1=Li,2=S.")
    z = np.array([atomic_numbers[s] for s in species], dtype=np.int64)
    m = np.asarray(masses, dtype=float) if masses is not None else atomic_masses[z]
    coords = {
        SPECIES: (ATOM, species),
        ATOMIC_NUMBER: (ATOM, z),
        MASS: (ATOM, m, {"units": "amu"}),
        XYZ: (XYZ, ["x", "y", "z"]),
    }
    if time is not None:
        coords[TIME] = (FRAME, np.asarray(time, dtype=float), {"units": "ps"})
    data = {POSITIONS: (VARIABLES[POSITIONS].dims, positions, {"units": "Å"})}
    if cell is not None:
        cell = np.asarray(cell, dtype=float)
        if cell.ndim == 2:
            cell = np.broadcast_to(cell, (nf, 3, 3)).copy()
        data[CELL] = (VARIABLES[CELL].dims, cell, {"units": "Å"})
    for name, arr in variables.items():
        if arr is None:
            continue
        if name not in VARIABLES:
            _fail(f"'{name}' is not a schema variable (known: {sorted(VARIABLES)}).")
        f = VARIABLES[name]
        data[name] = (f.dims, np.asarray(arr), {"units": f.unit})
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))
    if pbc is None:
        pbc = [cell is not None] * 3
    ds.attrs[PBC] = np.asarray(pbc, dtype=np.int8).reshape(3).tolist()
    if time is not None and nf > 1:
        dt = np.diff(np.asarray(time, dtype=float))
        if np.allclose(dt, dt[0], rtol=1e-6):
            ds.attrs[TIMESTEP] = float(dt[0])
    from atomtwin.toolkit import __version__

    ds.attrs.setdefault(VERSION, __version__)
    return validate(ds)
