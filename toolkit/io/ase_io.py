"""Formats read through ASE: extended XYZ / XYZ, ASE .traj, VASP XDATCAR / vasprun.xml /
OUTCAR, CIF, POSCAR and anything else ``ase.io.read`` knows.

What a damaged file gives (a :class:`~atomtwin.toolkit.errors.FileFormatError` naming the
file and the frame or line): for (ext)XYZ, a frame structure that does not add up (an atom
count that is not a number, a blank line between frames, a frame with fewer or more rows
than its count, a row with the wrong number of fields, bytes that are not UTF-8) is found by
our own scan before ASE reads, and the frames ASE returns are counted against it; for every
ASE format, ASE's own exceptions become a FileFormatError naming the frame; non-finite
positions, cells, energies, forces, velocities, stresses are refused; a property (energy,
forces, velocities...) present in some frames only is an error unless ``missing="drop"``
is asked for.  A last (ext)XYZ frame cut off at the end of the file is dropped with a
warning and every complete frame is read.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import FileFormatError, InputError

XYZ_SUFFIXES = (".xyz", ".extxyz")
#: options of other readers that an ASE format cannot honour (it names its own species/units)
FOREIGN_OPTIONS = {"species_map": "--species-map", "data_file": "--data-file", "units": "--units",
                   "topology": "--topology", "species": "--species"}
_PROPERTIES = re.compile(r"(?:^|\s)properties=(\S+)", re.IGNORECASE)
_FIX_CUT = "repair or cut the file before that frame, or write it again."


def _properties_columns(comment: str) -> int | None:
    """Number of fields per atom row an extxyz comment line announces (None: plain XYZ)."""
    m = _PROPERTIES.search(comment)
    if m is None:
        return None
    parts = m.group(1).strip("'\"").split(":")
    try:
        return sum(int(c) for c in parts[2::3]) if len(parts) % 3 == 0 else -1
    except ValueError:
        return -1


def scan_xyz(path: str | Path) -> tuple[int, bool]:
    """Check the frame structure of an (ext)XYZ file; return (complete frames, cut off?).

    Raises a :class:`FileFormatError` naming the line for: bytes that are not UTF-8, an
    atom count that is not a non-negative integer, a blank line followed by more data, an
    extxyz ``Properties`` spec that cannot be read, or a row whose field count differs from
    the spec (plain XYZ, without ``Properties=``: symbol x y z, 4 fields).  A last frame cut off at the end of the file
    is reported by the returned flag (the caller warns and reads the complete frames).
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise FileFormatError(path, f"line {line}: byte {err.start} is not UTF-8 text.", _FIX_CUT) from None
    ends_clean = text.endswith("\n")
    lines = text.split("\n")
    if ends_clean:
        lines.pop()
    n_lines, k, frame = len(lines), 0, 0
    while k < n_lines:
        if not lines[k].strip():
            if all(not line.strip() for line in lines[k:]):
                break  # blank lines at the end
            raise FileFormatError(path, f"line {k + 1}: a blank line where frame {frame} should start (ASE "
                                  "would stop reading here and drop every later frame).", "delete the blank line.")
        try:
            n = int(lines[k].strip())
            if n < 0:
                raise ValueError
        except ValueError:
            raise FileFormatError(path, f"frame {frame}, line {k + 1}: expected the number of atoms, found "
                                  f"{lines[k][:40]!r}.", _FIX_CUT) from None
        end = k + 2 + n
        if end > n_lines:
            return _cut(path, frame)
        ncol = _properties_columns(lines[k + 1])
        plain = ncol is None
        if ncol == -1:
            raise FileFormatError(path, f"frame {frame}, line {k + 2}: the Properties= spec cannot be read.",
                                  _FIX_CUT)
        if ncol is None:
            ncol = 4  # plain XYZ: symbol x y z (more columns would be dropped silently)
        if end == n_lines and not ends_clean:
            if len(lines[-1].split()) != ncol:
                return _cut(path, frame)
            warnings.warn(f"'{path}': the file does not end with a newline; its last line (line {n_lines}) is "
                          "read as complete, but a value in it may be cut short. Fix: check the end of the "
                          "file.", stacklevel=3)
        for j in range(k + 2, end):
            got = len(lines[j].split())
            if got != ncol and plain:
                raise FileFormatError(path, f"frame {frame}, line {j + 1}: {got} field(s) in a plain XYZ row "
                                      "(no Properties= in the comment line), expected 4 (symbol x y z).",
                                      "write the file as extended XYZ with a Properties= spec naming every "
                                      "column, or keep only symbol x y z.")
            if got != ncol:
                raise FileFormatError(path, f"frame {frame}, line {j + 1}: {got} field(s) where atom row {j - k - 2} "
                                      f"of {n} should be, expected {ncol} (a row damaged, or the frame holds "
                                      "fewer atoms than its count says).", _FIX_CUT)
        frame += 1
        k = end
    if frame == 0:
        raise FileFormatError(path, "holds no frame.", "check the file is the one you meant.")
    return frame, False


def _cut(path: Path, frame: int) -> tuple[int, bool]:
    if frame == 0:
        raise FileFormatError(path, "holds no complete frame: frame 0 is cut off.", "write the file again.")
    return frame, True


def _read_frames(path: Path, fmt: str | None, index, expected: int | None, **kw) -> list:
    import ase.io
    from ase.io.formats import UnknownFileTypeError

    frames, k = [], 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for k, atoms in enumerate(ase.io.iread(str(path), index=index, format=fmt, **kw)):  # noqa: B007
                frames.append(atoms)
    except UnknownFileTypeError as err:
        raise InputError(f"ASE cannot tell the format of '{path}' ({err}). Fix: pass format= an ASE "
                         "format name (CLI --format).") from None
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise InputError(f"reading '{path}' with ASE: {err}. Fix: drop that option.") from None
        raise FileFormatError(path, f"frame {len(frames)}: ASE cannot read it ({err}).", _FIX_CUT) from err
    except UnicodeDecodeError as err:
        raise FileFormatError(path, f"frame {len(frames)}: byte {err.start} of a block is not UTF-8 text.",
                              _FIX_CUT) from None
    except (MemoryError, RecursionError):
        raise
    except Exception as err:  # noqa: BLE001 - ASE raises many types for a damaged file
        raise FileFormatError(path, f"frame {len(frames)}: ASE cannot read it ({type(err).__name__}: {err}).",
                              _FIX_CUT) from err
    if expected is not None and len(frames) != expected:
        raise FileFormatError(path, f"ASE read {len(frames)} frames but the file holds {expected}.", _FIX_CUT)
    return frames


def read_ase(path: str | Path, *, format: str | None = None, index=":", timestep_ps=None,
             missing: str = "error", **kw) -> xr.Dataset:
    """Read a file through ASE into the schema.

    Parameters
    ----------
    path
        The file.
    format
        ASE format name (guessed by ASE when None).
    index
        ASE frame selection (``":"`` all, ``"::10"``, an int).
    timestep_ps
        ps between frames (gives the ``time`` coordinate).
    missing
        ``"error"`` (default): a property (energy, forces, velocities...) present in some
        frames only is an error; ``"drop"``: drop it from every frame, with a warning.
    kw
        Passed to ``ase.io.read``.
    """
    path = Path(path)
    for opt, flag in FOREIGN_OPTIONS.items():
        if kw.get(opt) is not None:
            raise InputError(f"option {opt}= ({flag}) does not apply to '{path}': this format names its own "
                             f"species and units. Fix: drop {opt}=.")
        kw.pop(opt, None)
    if missing not in ("error", "drop"):
        raise InputError(f"missing='{missing}' is not 'error' or 'drop'.")
    xyz = (format or "").lower() in ("xyz", "extxyz") or (format is None and path.suffix.lower() in XYZ_SUFFIXES)
    expected = None
    if xyz:
        n_complete, cut = scan_xyz(path)
        if cut:
            warnings.warn(f"'{path}': the last frame (frame {n_complete}) is cut off; reading the {n_complete} "
                          "complete frames. Fix: let the writer finish, or write the file again.", stacklevel=3)
        if index == ":" or index is None:
            index, expected = slice(0, n_complete), n_complete
        elif cut:
            index = _clip(index, n_complete)
    frames = _read_frames(path, format, index, expected, **kw)
    return atoms_list_to_dataset(frames, source=str(path), timestep_ps=timestep_ps, missing=missing)


def _clip(index, n: int):
    """An ASE index restricted to the first ``n`` frames."""
    if isinstance(index, int):
        return index if -n <= index < n else index  # out of range: ASE says so
    if isinstance(index, str):
        from ase.io.formats import string2index

        index = string2index(index)
    if isinstance(index, slice):
        return slice(*index.indices(n))
    return index


def _frame_property(a, name: str):
    if a.calc is not None and name in getattr(a.calc, "results", {}):
        return a.calc.results[name]
    if name in a.info:
        return a.info[name]
    if name in a.arrays:
        return a.arrays[name]
    return None


def _ranges(idx) -> str:
    idx = [int(i) for i in idx]
    return ", ".join(str(i) for i in idx[:8]) + (" ..." if len(idx) > 8 else "")


def _gather(frames, source: str, name: str, missing: str, getter, shape_of):
    """Stack one property over frames; None when no frame has it; present in some only:
    error (or drop with a warning when ``missing="drop"``)."""
    values = [getter(a) for a in frames]
    have = [i for i, v in enumerate(values) if v is not None]
    if not have:
        return None
    if len(have) < len(frames):
        lack = [i for i, v in enumerate(values) if v is None]
        msg = (f"'{name}' is in frames {_ranges(have)} but missing in frames {_ranges(lack)} of "
               f"{len(frames)}.")
        if missing == "drop":
            warnings.warn(f"'{source}': {msg} Dropped from every frame (missing='drop').", stacklevel=4)
            return None
        raise FileFormatError(source, msg, "label every frame alike, or read with missing='drop' to "
                              f"drop '{name}'.")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(shape_of(np.asarray(v, dtype=float)))
        except (ValueError, TypeError):
            raise FileFormatError(source, f"frame {i}: '{name}' has shape {np.shape(v)}, not a "
                                  f"{name} array.", _FIX_CUT) from None
    return np.stack(out)


def _scalar(v: np.ndarray) -> np.ndarray:
    if v.size != 1:
        raise InputError("not a scalar")
    return v.reshape(())


def _check_finite(source: str, name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[0]
        atom = f", atom {int(where[1])}" if arr.ndim >= 3 and name in ("positions", "forces", "velocities") else ""
        raise FileFormatError(source, f"frame {int(where[0])}{atom}: non-finite {name} (NaN or inf).",
                              "cut the file before that frame, or recompute it.")


def atoms_list_to_dataset(frames, *, source: str = "", timestep_ps: float | None = None,
                          missing: str = "error") -> xr.Dataset:
    """Schema Dataset from a list of :class:`ase.Atoms` (same atoms in every frame).

    Energies (frame,) eV, forces (frame, atom, 3) eV/Å, stress (frame, 3, 3) eV/Å³ (from
    Voigt or 3x3), velocities (frame, atom, 3) Å/ps (from ASE's units), dipoles and
    per-atom energies are carried; a property in some frames only is an error unless
    ``missing="drop"``; non-finite values are refused.
    """
    if not frames:
        raise FileFormatError(source, "holds no frames.")
    n0 = len(frames[0])
    sym0 = frames[0].get_chemical_symbols()
    for i, a in enumerate(frames):
        if len(a) != n0:
            raise FileFormatError(source, f"frame {i} has {len(a)} atoms but frame 0 has {n0}. A trajectory "
                                  "needs the same atoms in every frame.", "read the frames separately (index=...) "
                                  "or split the file.")
        if a.get_chemical_symbols() != sym0:
            raise FileFormatError(source, f"frame {i} has other species (or order) than frame 0.",
                                  "split the file where the atoms change.")
    pos = np.stack([a.get_positions() for a in frames])
    _check_finite(source, "positions", pos)
    pbc = frames[0].get_pbc()
    has_cell = bool(pbc.any()) or frames[0].cell.rank == 3
    cell = np.stack([a.get_cell().array for a in frames]) if has_cell else None
    if cell is not None:
        _check_finite(source, "cell", cell)
    n = len(frames)
    extra: dict[str, np.ndarray] = {}

    def prop(name):
        return lambda a: _frame_property(a, name)

    def gather(name, getter, shape_of):
        return _gather(frames, source, name, missing, getter, shape_of)

    e = gather("energy", prop("energy"), _scalar)
    if e is None:
        e = gather("free_energy", prop("free_energy"), _scalar)
    if e is not None:
        extra[S.ENERGY] = e.reshape(n)
    per_atom = lambda v: v.reshape(n0, 3)  # noqa: E731
    f = gather("forces", prop("forces"), per_atom)
    if f is not None:
        extra[S.FORCES] = f

    def full_stress(v):
        if v.size == 6:
            from ase.stress import voigt_6_to_full_3x3_stress

            return voigt_6_to_full_3x3_stress(v.reshape(6))
        return v.reshape(3, 3)

    st = gather("stress", prop("stress"), full_stress)
    if st is not None:
        extra[S.STRESS] = st
    ea = gather("energies", prop("energies"), lambda v: v.reshape(n0))
    if ea is not None:
        extra[S.ATOM_ENERGIES] = ea
    d = gather("dipole", prop("dipole"), lambda v: v.reshape(3))
    if d is not None:
        extra[S.DIPOLE] = d
    v = gather("velocities", lambda a: a.get_velocities() if a.has("momenta") else None, per_atom)
    if v is not None:
        v = v * (1.0 / U.ASE_TIME_TO_PS)
        if np.any(v):
            extra[S.VELOCITIES] = v
    for name, arr in extra.items():
        _check_finite(source, name, arr)
    time = None
    if timestep_ps is not None:
        time = np.arange(n) * float(timestep_ps)
    else:
        t = gather("time", lambda a: a.info.get("time"), _scalar)
        time = None if t is None else t.reshape(n)  # assumed ps
    masses = frames[0].get_masses()
    return S.make_dataset(pos, sym0, cell=cell, time=time, pbc=pbc, masses=masses,
                          attrs={S.SOURCE: source}, **extra)


def dataset_to_atoms(ds: xr.Dataset, frame: int = -1):
    """One frame as :class:`ase.Atoms` (with a SinglePointCalculator for stored labels)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    fr = ds.isel({S.FRAME: frame})
    atoms = Atoms(
        symbols=[str(s) for s in fr[S.SPECIES].values],
        positions=np.asarray(fr[S.POSITIONS].values),
        cell=np.asarray(fr[S.CELL].values) if S.CELL in fr else None,
        pbc=S.pbc_of(ds),
        masses=np.asarray(fr[S.MASS].values) if S.MASS in fr.coords else None,
    )
    if S.VELOCITIES in fr:
        atoms.set_velocities(np.asarray(fr[S.VELOCITIES].values) * U.ASE_TIME_TO_PS)
    res = {}
    if S.ENERGY in fr:
        res["energy"] = float(fr[S.ENERGY])
    if S.FORCES in fr:
        res["forces"] = np.asarray(fr[S.FORCES].values)
    if S.STRESS in fr:
        res["stress"] = np.asarray(fr[S.STRESS].values)
    if res:
        atoms.calc = SinglePointCalculator(atoms, **res)
    return atoms
