"""LAMMPS text dumps (``dump atom`` / ``dump custom``) read by atomtwin itself.

Why our own reader: a dump of millions of atom-frames must convert in constant memory, give
random access to any frame in constant time (a byte-offset index of the frames), read
the real ``dump custom`` variety (unscaled/scaled/unwrapped coordinates, image flags,
velocities, forces, ``element``, triclinic boxes, atoms in any order) and say exactly
what is wrong with a damaged file.  The conventions follow LAMMPS' documentation of
``dump`` and MDAnalysis' ``DumpReader`` (box translated to the origin, atoms sorted by
``id``), against which the tests compare frame by frame.

What the reader refuses, naming the file, the frame and the line (:class:`DumpFormatError`):
a header line that is not what LAMMPS writes; a row with a missing or extra field; a
field that is not a finite number (``id``/``type``/image flags must be integers); bytes
that are not text; atom ids that repeat in a frame or differ from frame 0's; an atom whose
type (or element) differs from frame 0's; a type absent from the species map; a frame
whose atom count or columns differ from frame 0's.  A last frame cut off (a run still
writing, or killed) is dropped with a warning and every complete frame is read.  The
checks are vectorised (numpy over the parsed table); the line-by-line scan that names
the faulty line runs only once a frame is known to be bad.

Units: ``units=`` any of :data:`~atomtwin.toolkit.io.lammps_units.LAMMPS_UNIT_STYLES`
(default ``"metal"``); positions, box, velocities and forces are converted to Å, Å/ps, eV/Å.
"""

from __future__ import annotations

import csv
import io
import mmap
import operator
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import FileFormatError, InputError
from atomtwin.toolkit.io.lammps_units import LAMMPS_UNIT_STYLES, lammps_units

__all__ = ["LAMMPS_UNIT_STYLES", "DumpFormatError", "LammpsDump", "parse_species_map",
           "read_lammps_dump", "species_from_data_file"]

_HEADER = b"ITEM: TIMESTEP"
_HEADER_LINES = 9
_INT_COLUMNS = ("id", "type", "ix", "iy", "iz")
_EXTRA = "__extra_field__"  # one name more than the columns: a value there = a row too long
_FIX_CUT = "cut the file before this frame (e.g. with head -c), or rewrite the dump with LAMMPS."


def _decompress(opener):
    def read(path):
        with opener(path, "rb") as fh:
            return fh.read()

    return read


def _compressed_openers():
    import bz2
    import gzip
    import lzma

    return {".bz2": _decompress(bz2.open), ".gz": _decompress(gzip.open), ".xz": _decompress(lzma.open)}


_COMPRESSED = _compressed_openers()


class _view:
    """Context manager giving a bytes-like view (mmap of a plain file, or given bytes)."""

    def __init__(self, path, data):
        self.path, self.data, self._fh, self._mm = path, data, None, None

    def __enter__(self):
        if self.data is not None:
            return self.data
        self._fh = open(self.path, "rb")  # noqa: SIM115
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        return self._mm

    def __exit__(self, *exc):
        if self._mm is not None:
            self._mm.close()
            self._fh.close()


def _frame_start(mm, pos: int) -> int:
    """Start of the frame whose ``ITEM: TIMESTEP`` is at ``pos``: ``dump_modify time yes``
    writes ``ITEM: TIME`` (and ``units yes`` a first ``ITEM: UNITS``) before it."""
    for item in (b"ITEM: TIME\n", b"ITEM: UNITS\n"):
        window = mm[max(0, pos - 256) : pos]
        if not window.endswith(b"\n"):
            break
        lines = window[:-1].split(b"\n")
        if len(lines) >= 2 and lines[-2] + b"\n" == item and (len(lines) > 2 or pos - len(window) == 0):
            pos -= len(lines[-1]) + len(lines[-2]) + 2
    return pos


class DumpFormatError(FileFormatError):
    """A LAMMPS dump that cannot be read as it is; the message names file, frame and line."""


def parse_species_map(text: str | dict | None) -> dict[int, str] | None:
    """``"1=Li,2=S"`` (or a dict) -> {1: "Li", 2: "S"}; a malformed entry is an InputError."""
    if text is None:
        return None
    items = text.items() if isinstance(text, dict) else (
        item.strip().split("=", 1) if "=" in item else (item.strip(), None)
        for item in str(text).split(",") if item.strip()
    )
    out = {}
    for k, v in items:
        try:
            t = int(str(k).strip())
        except ValueError:
            t = None
        sym = None if v is None else str(v).strip()
        if t is None or not sym:
            raise InputError(f"species map entry '{k}={v if v is not None else ''}' is not TYPE=SYMBOL. "
                             "Fix: write it like 1=Li,2=S (LAMMPS type number = chemical symbol).")
        out[t] = sym
    _check_symbols(out.values(), "the species map")
    return out


def _check_symbols(symbols, where: str) -> None:
    from ase.data import atomic_numbers

    bad = sorted({str(s) for s in symbols if str(s) not in atomic_numbers})
    if bad:
        raise InputError(f"{where} names {bad}, which are not chemical symbols. "
                         "Fix: use element symbols such as Li, S, O (X for a dummy atom).")


def species_from_data_file(path: str | os.PathLike) -> dict[int, str]:
    """Type -> species from a LAMMPS data file: the comment after each ``Masses`` line
    (``1 6.94 # Li``) when present, else the element whose standard mass is nearest."""
    from ase.data import atomic_masses, chemical_symbols

    try:
        lines = Path(path).read_text().splitlines()
    except UnicodeDecodeError as err:
        raise DumpFormatError(path, f"byte {err.start} is not text: not a LAMMPS data file.") from err
    try:
        start = next(i for i, ln in enumerate(lines) if ln.split("#")[0].strip() == "Masses")
    except StopIteration:
        raise DumpFormatError(path, "no Masses section; cannot map atom types to species.",
                              "give species_map= (CLI --species-map 1=Li,2=S) instead.") from None
    out = {}
    for k, line in enumerate(lines[start + 1 :], start + 2):
        body, _, comment = line.partition("#")
        parts = body.split()
        if not parts:
            if out:
                break
            continue
        if not parts[0].isdigit():
            break
        try:
            t, mass = int(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise DumpFormatError(path, f"line {k} of the Masses section is not 'TYPE MASS': {line!r}.") from None
        sym = comment.strip().split()[0] if comment.strip() else None
        if sym not in chemical_symbols[1:]:
            z = int(np.argmin(np.abs(atomic_masses[1:] - mass))) + 1
            sym = chemical_symbols[z]
        out[t] = sym
    return out


@dataclass
class _Head:
    """The header of one frame: step, atom count, box bounds, where the atom rows start."""

    step: int
    n: int
    bounds: np.ndarray  # (3, 2) or (3, 3) as written
    box_line: str
    columns: list[str]
    body_start: int  # byte offset of the first atom row inside the frame
    lines: int = _HEADER_LINES  # header lines (ITEM: UNITS / ITEM: TIME add two each)
    units: str | None = None  # ITEM: UNITS (dump_modify units yes)
    time: float | None = None  # ITEM: TIME, in the style's time unit (dump_modify time yes)


class LammpsDump:
    """Index of a LAMMPS text dump; frames are parsed on demand.

    Parameters
    ----------
    path
        The dump file.
    species_map
        Type -> symbol (``{1: "Li"}`` or ``"1=Li,2=S"``); or ``data_file=`` a LAMMPS data
        file; not needed when the dump has an ``element`` column.
    timestep_ps
        The MD time step in ps (times are ``step * timestep_ps``).  Without it, the
        ``time`` coordinate is absent and the ``step`` coordinate is kept.
    units
        LAMMPS unit style, one of :data:`LAMMPS_UNIT_STYLES` (``lj`` is refused: reduced
        units have no conversion without the model's σ, ε and mass).  Default: the style
        the dump declares (``dump_modify units yes``), else ``"metal"``; a given style that
        contradicts the declared one is an error.  With ``dump_modify time yes`` (and no
        ``timestep_ps``) the ``time`` coordinate comes from the file.
    species
        One symbol per atom (in id order), for dumps with neither ``type`` nor ``element``.
    """

    def __init__(self, path, *, species_map=None, data_file=None, timestep_ps: float | None = None,
                 units: str | None = None, species=None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such file: '{self.path}'.")
        self.unit = lammps_units(units or "metal")
        if timestep_ps is not None and not (np.isfinite(float(timestep_ps)) and float(timestep_ps) > 0):
            raise InputError(f"timestep_ps={timestep_ps} must be a positive number of ps.")
        self.timestep_ps = timestep_ps
        smap = parse_species_map(species_map)
        if data_file is not None:
            smap = {**species_from_data_file(data_file), **(smap or {})}
        self.species_map = smap
        self._given_species = None if species is None else np.asarray([str(x) for x in species])
        if self._given_species is not None:
            _check_symbols(self._given_species, "species=")
        self._ref = None
        self._index()
        declared = self._head(0).units
        if declared is not None:  # dump_modify units yes: the file says its style
            if units is not None and self.unit.name != declared.lower():
                raise InputError(f"'{self.path}' declares LAMMPS units '{declared}' (ITEM: UNITS) but "
                                 f"units='{units}' was given. Fix: drop units= (CLI --units) or give "
                                 f"units='{declared}'.")
            try:
                self.unit = lammps_units(declared)
            except InputError as err:
                raise DumpFormatError(self.path, f"line 2 declares ITEM: UNITS '{declared}': {err}") from None
        self.units = self.unit.name
        self._frame0 = self._parse(0)  # the reference every other frame is checked against

    # -- indexing ---------------------------------------------------------------------
    def _index(self) -> None:
        self._bytes = None
        suffix = self.path.suffix.lower()
        if suffix in _COMPRESSED:
            # compressed dumps have no random access: decompress once into memory
            try:
                self._bytes = _COMPRESSED[suffix](self.path)
            except (OSError, EOFError, ValueError) as err:
                raise DumpFormatError(self.path, f"cannot decompress ({err}).",
                                      "check the file is complete (e.g. gzip -t).") from err
            size = len(self._bytes)
        else:
            size = self.path.stat().st_size
        if size == 0:
            raise DumpFormatError(self.path, "the file is empty.")
        with _view(self.path, self._bytes) as mm:
            offsets = []
            pos = mm.find(_HEADER)
            while pos != -1:
                offsets.append(_frame_start(mm, pos))
                pos = mm.find(_HEADER, pos + 1)
            if not offsets or offsets[0] != 0:
                raise DumpFormatError(
                    self.path, "does not start with 'ITEM: TIMESTEP' (or dump_modify's ITEM: UNITS / "
                    "ITEM: TIME): not a LAMMPS text dump.",
                    "binary or compressed dumps must be converted with LAMMPS' tools first."
                )
            offsets.append(size)
            last_newline = mm.rfind(b"\n")
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._check_last_frame(last_newline + 1)
        self.n_frames = len(self._offsets) - 1

    def _check_last_frame(self, end: int) -> None:
        """Drop a last frame that is cut off, with a warning.  A file whose last line has no
        newline is read as written when that line has every field and completes the frame
        (LAMMPS ends every line, other tools may not), with a warning that its last value
        may be cut; a fragment of a line after a complete frame is ignored with a warning."""
        last = len(self._offsets) - 2
        raw = self._raw(last)
        atoms = raw.find(b"ITEM: ATOMS")
        for item in (b"\nITEM: UNITS", b"\nITEM: TIME"):  # the start of a next frame, cut before its TIMESTEP
            at = raw.find(item, max(atoms, 0))
            if atoms >= 0 and at >= 0 and raw[at + len(item) : at + len(item) + 1] in (b"\n", b""):
                end = int(self._offsets[last]) + at + 1
                self._offsets[-1] = end
                raw = raw[: at + 1]
                warnings.warn(f"'{self.path}': a frame cut off before its ITEM: TIMESTEP (byte {end} on) is "
                              "ignored.", stacklevel=4)
                break
        cut = not raw.endswith(b"\n")
        try:
            head0 = self._head(0)
        except DumpFormatError:
            if last > 0 or not cut:
                raise
            head0 = None
        complete = raw[: raw.rfind(b"\n") + 1] if cut else raw
        lines = sum(1 for line in complete.split(b"\n") if line.strip())
        prefix = raw.split(b"\n", 5)
        extra = sum(2 for k in (0, 2) if k + 1 < len(prefix) and prefix[k].strip() in (b"ITEM: UNITS", b"ITEM: TIME"))
        need = _HEADER_LINES + extra + head0.n if head0 is not None else None
        if need is not None and lines >= need:
            if cut:
                self._offsets[-1] = end
                warnings.warn(f"'{self.path}': the incomplete line at the end of the file (byte {end} "
                              "on) is ignored.", stacklevel=4)
            return
        fragment = raw[len(complete) :].split()
        if need is not None and lines + 1 >= need and len(fragment) == len(head0.columns):
            warnings.warn(f"'{self.path}': the file does not end with a newline; its last line "
                          f"(byte {end} on) is read as complete, but a value in it may be cut short. "
                          "Fix: check the end of the file.", stacklevel=4)
            return
        if last == 0:
            raise DumpFormatError(self.path, "holds no complete frame: frame 0 is cut off"
                                  + (f" ({lines} of {need} lines)." if need else "."),
                                  "let LAMMPS finish writing, or rerun.")
        warnings.warn(
            f"'{self.path}': the last frame (frame {last}, at byte {self._offsets[last]}) is cut off "
            f"({lines} of {need} lines); reading the {last} complete frames. "
            "Fix: rerun or let LAMMPS finish writing to get it.",
            stacklevel=4,
        )
        self._offsets = self._offsets[:-1]

    def _raw(self, i: int, limit: int | None = None) -> bytes:
        a, b = int(self._offsets[i]), int(self._offsets[i + 1])
        if limit is not None:
            b = min(b, a + limit)
        if self._bytes is not None:
            return self._bytes[a:b]
        with open(self.path, "rb") as fh:
            fh.seek(a)
            return fh.read(b - a)

    # -- errors -----------------------------------------------------------------------
    def _line_number(self, i: int, line_in_frame: int) -> int:
        """1-based line of the file for line ``line_in_frame`` (0-based) of frame ``i``."""
        before = 0
        with _view(self.path, self._bytes) as mm:
            stop, block = int(self._offsets[i]), 1 << 24
            for a in range(0, stop, block):
                before += mm[a : min(stop, a + block)].count(b"\n")
        return before + line_in_frame + 1

    def _error(self, i: int, line_in_frame: int | None, message: str, fix: str | None = _FIX_CUT,
               step: int | None = None):
        where = f"frame {i}" + (f" (step {step})" if step is not None else "")
        if line_in_frame is not None:
            where += f", line {self._line_number(i, line_in_frame)}"
        return DumpFormatError(self.path, f"{where}: {message}", fix)

    # -- header -----------------------------------------------------------------------
    def _head(self, i: int, raw: bytes | None = None) -> _Head:
        if raw is None:
            raw = self._raw(i, 4096)
            if raw.count(b"\n") < _HEADER_LINES + 4:
                raw = self._raw(i)
        elif raw.count(b"\n", 0, 8192) >= _HEADER_LINES + 4:
            raw = raw[:8192]  # the header is in there: split no more than that
        extra = {}
        first = raw.split(b"\n", 5)
        skip = 0
        while skip + 1 < len(first) and first[skip].strip() in (b"ITEM: UNITS", b"ITEM: TIME"):
            skip += 2
        lines = raw.split(b"\n", _HEADER_LINES + skip)
        if len(lines) <= _HEADER_LINES + skip:
            raise self._error(i, None, f"the frame ends inside its header ({len(lines) - 1} lines).")
        text = []
        for k, line in enumerate(lines[: _HEADER_LINES + skip]):
            try:
                text.append(line.decode().strip())
            except UnicodeDecodeError as err:
                raise self._error(i, k, f"byte {err.start} of the line is not text ({line[:40]!r}).") from None
        for k in range(0, skip, 2):
            if text[k] == "ITEM: UNITS":
                extra["units"] = text[k + 1]
            else:
                try:
                    extra["time"] = float(text[k + 1])
                except ValueError:
                    extra["time"] = float("nan")
                if not np.isfinite(extra["time"]):
                    raise self._error(i, k + 1, f"the time {text[k + 1][:40]!r} is not a finite number.")
        text = text[skip:]

        def expect(k, prefix):
            if not text[k].startswith(prefix):
                raise self._error(i, k + skip, f"expected '{prefix} ...', found {text[k][:60]!r}.")

        def integer(k, what):
            try:
                return int(text[k])
            except ValueError:
                raise self._error(i, k + skip, f"the {what} {text[k][:40]!r} is not an integer.") from None

        expect(0, "ITEM: TIMESTEP")
        step = integer(1, "timestep")
        expect(2, "ITEM: NUMBER OF ATOMS")
        n = integer(3, "number of atoms")
        if n < 1:
            raise self._error(i, 3 + skip, f"the number of atoms is {n}.", step=step)
        expect(4, "ITEM: BOX BOUNDS")
        width = 3 if "xy" in text[4].split() else 2
        bounds = []
        for k in (5, 6, 7):
            tok = text[k].split()
            try:
                vals = [float(t) for t in tok]
            except ValueError:
                vals = []
            if len(vals) != width or not np.all(np.isfinite(vals)):
                raise self._error(i, k + skip, f"box bounds {text[k][:60]!r} are not {width} finite numbers.",
                                  step=step)
            bounds.append(vals)
        expect(8, "ITEM: ATOMS")
        columns = text[8].split()[2:]
        body_start = sum(len(line) + 1 for line in lines[: _HEADER_LINES + skip])
        head = _Head(step, n, np.array(bounds), " ".join(text[4].split()), columns, body_start,
                     _HEADER_LINES + skip, **extra)
        if i > 0 or self._ref is not None:
            self._check_head(i, head)
        return head

    def _check_head(self, i: int, h: _Head) -> None:
        ref = self._head0
        off = h.lines - _HEADER_LINES
        if h.units is not None and h.units != ref.units:
            raise self._error(i, 1, f"ITEM: UNITS says {h.units!r} but frame 0 says {ref.units!r}.", step=h.step)
        if h.n != ref.n:
            raise self._error(i, 3 + off, f"the frame has {h.n} atoms but frame 0 has {ref.n}; a trajectory needs a constant "
                              "number of atoms.", "split the file where the count changes.", step=h.step)
        if h.columns != ref.columns:
            raise self._error(i, 8 + off, f"columns {h.columns} differ from frame 0's {ref.columns}.",
                              "split the file where the dump style changes.", step=h.step)
        if h.box_line != ref.box_line:
            raise self._error(i, 4 + off, f"box line {h.box_line!r} differs from frame 0's {ref.box_line!r}.",
                              step=h.step)

    def _setup_columns(self, h: _Head) -> None:
        c = h.columns
        self._head0 = h
        self.n_atoms = h.n
        self.columns = c
        self.triclinic = h.bounds.shape[1] == 3
        flags = h.box_line.split()[-3:] if len(h.box_line.split()) >= 6 else ["pp", "pp", "pp"]
        self.pbc = [f.startswith("p") for f in flags]
        if len(set(c)) != len(c):
            raise self._error(0, h.lines - 1, f"a column name repeats in {c}.")
        for conv, names in (("unscaled", ("x", "y", "z")), ("scaled", ("xs", "ys", "zs")),
                            ("unwrapped", ("xu", "yu", "zu")), ("scaled_unwrapped", ("xsu", "ysu", "zsu"))):
            if all(n in c for n in names):
                self.convention, self._xyz = conv, names
                break
        else:
            raise self._error(0, h.lines - 1, f"no coordinate columns (x y z, xs ys zs, xu yu zu or xsu ysu zsu) in {c}.",
                              "dump the coordinates (dump custom ... id type x y z).")
        if "element" not in c and "type" not in c and self._given_species is None:
            raise self._error(0, h.lines - 1, f"neither 'type' nor 'element' column in {c}.",
                              "pass species=[...] (one symbol per atom, in id order).")
        self._numeric = [k for k in c if k != "element"]
        self._col = {k: j for j, k in enumerate(self._numeric)}
        self._dtypes = {k: (str if k == "element" else np.float64) for k in [*c, _EXTRA]}

    # -- parsing ----------------------------------------------------------------------
    def _parse(self, i: int) -> dict:
        if i == 0 and getattr(self, "_frame0", None) is not None:
            return self._frame0
        raw = self._raw(i)
        h = self._head(i, raw)
        if i == 0 and self._ref is None:
            self._setup_columns(h)
        body = raw[h.body_start :]
        num, elements = self._table(i, h, body)
        return self._frame(i, h, body, num, elements)

    def _table(self, i: int, h: _Head, body: bytes):
        """The atom rows as a float array (n, n_numeric) and the element column (or None)."""
        import pandas as pd

        if not body.isascii():
            self._diagnose(i, h, body)
        try:
            table = pd.read_csv(io.BytesIO(body), sep=r"\s+", header=None, names=[*self.columns, _EXTRA],
                                dtype=self._dtypes, engine="c", index_col=False, quoting=csv.QUOTE_NONE)
        except (ValueError, UnicodeDecodeError) as err:  # pandas' ParserError is a ValueError
            self._diagnose(i, h, body)
            raise self._error(i, None, f"the atom rows cannot be parsed ({err}).", step=h.step) from err
        if len(table) != h.n:
            raise self._error(i, None, f"{len(table)} atom lines, expected {h.n}.", step=h.step)
        num = table[self._numeric].to_numpy(dtype=np.float64)
        ints = [self._col[k] for k in _INT_COLUMNS if k in self._col]
        bad = (not np.isfinite(num).all() or table[_EXTRA].notna().any()
               or (ints and (num[:, ints] != np.round(num[:, ints])).any()))
        elements = None
        if "element" in table:
            elements = table["element"].to_numpy()
            bad = bad or table["element"].isna().any()
        if bad:
            self._diagnose(i, h, body)
            raise self._error(i, None, "an atom row holds a missing or non-numeric field.", step=h.step)
        return num, elements

    def _diagnose(self, i: int, h: _Head, body: bytes) -> None:
        """Find the first faulty row of a frame known to be bad, and raise its error."""
        ncol = len(self.columns)
        for k, line in enumerate(body.split(b"\n"), h.lines):
            try:
                tok = line.decode().split()
            except UnicodeDecodeError as err:
                raise self._error(i, k, f"byte {err.start} of the line is not text ({line[:40]!r}).",
                                  step=h.step) from None
            if not tok:
                continue
            if len(tok) != ncol:
                raise self._error(i, k, f"{len(tok)} fields, expected {ncol} ({' '.join(self.columns)}).",
                                  step=h.step)
            for name, t in zip(self.columns, tok, strict=True):
                if name == "element":
                    try:
                        _check_symbols([t], f"the element column ({name} = {t[:10]!r})")
                    except InputError as err:
                        raise self._error(i, k, str(err), step=h.step) from None
                    continue
                try:
                    v = float(t)
                except ValueError:
                    raise self._error(i, k, f"{name} = {t[:40]!r} is not a number.", step=h.step) from None
                if not np.isfinite(v):
                    raise self._error(i, k, f"{name} = {t!r} is not finite.", step=h.step)
                if name in _INT_COLUMNS and v != round(v):
                    raise self._error(i, k, f"{name} = {t!r} is not an integer.", step=h.step)

    def _row_line(self, body: bytes, row: int, h: _Head) -> int:
        """Line (0-based, in the frame) of atom row ``row`` (blank lines do not count as rows)."""
        seen = -1
        for k, line in enumerate(body.split(b"\n"), h.lines):
            if line.strip():
                seen += 1
                if seen == row:
                    return k
        return h.lines

    def _frame(self, i: int, h: _Head, body: bytes, num: np.ndarray, elements) -> dict:
        order = None
        if "id" in self._col:
            ids = num[:, self._col["id"]].astype(np.int64)
            if not (ids[1:] > ids[:-1]).all():
                order = np.argsort(ids, kind="stable")
                sids = ids[order]
                dup = np.flatnonzero(sids[1:] == sids[:-1])
                if dup.size:
                    a = int(sids[dup[0]])
                    rows = np.flatnonzero(ids == a)[:2]
                    other = self._line_number(i, self._row_line(body, int(rows[1]), h))
                    raise self._error(i, self._row_line(body, int(rows[0]), h),
                                      f"atom id {a} appears twice (again at line {other}).", step=h.step)
                num = num[order]
                ids = sids
                if elements is not None:
                    elements = elements[order]
            if self._ref is not None and not np.array_equal(ids, self._ref["ids"]):
                self._ids_differ(i, h, body, ids, order)
        types = num[:, self._col["type"]].astype(np.int64) if "type" in self._col else None
        if self._ref is None:
            self._ref = {"ids": ids if "id" in self._col else None, "types": types,
                         "elements": elements, "species": self._species_of(types, elements, h.n)}
        else:
            self._check_types(i, h, body, types, elements, order)
        return self._arrays(h, num)

    def _ids_differ(self, i, h, body, ids, order) -> None:
        ref = self._ref["ids"]
        new = np.setdiff1d(ids, ref)
        if new.size:
            row = int(np.flatnonzero(ids == new[0])[0])
            row = int(order[row]) if order is not None else row
            raise self._error(i, self._row_line(body, row, h), f"atom id {int(new[0])} is not in frame 0. "
                              "A trajectory needs the same atoms (ids) in every frame.", step=h.step)
        gone = np.setdiff1d(ref, ids)
        raise self._error(i, None, f"atom id {int(gone[0])} of frame 0 is missing. A trajectory needs the "
                          "same atoms (ids) in every frame.", step=h.step)

    def _check_types(self, i, h, body, types, elements, order) -> None:
        for name, now, ref in (("type", types, self._ref["types"]), ("element", elements, self._ref["elements"])):
            if now is None or np.array_equal(now, ref):
                continue
            j = int(np.flatnonzero(now != ref)[0])
            row = int(order[j]) if order is not None else j
            atom = f"atom id {int(self._ref['ids'][j])}" if self._ref["ids"] is not None else f"atom {j}"
            if name == "type" and self.species_map is not None and int(now[j]) not in self.species_map:
                msg = f"{atom} has type {int(now[j])}, which has no species in the map {self.species_map}."
                fix = f"add it, e.g. --species-map {int(now[j])}=X, or check the file."
            else:
                msg = f"{atom} has {name} {now[j]} but {ref[j]} in frame 0; atoms cannot change species."
                fix = _FIX_CUT
            raise self._error(i, self._row_line(body, row, h), msg, fix, step=h.step)

    def _arrays(self, h: _Head, num: np.ndarray) -> dict:
        b = h.bounds
        if self.triclinic:
            xy, xz, yz = b[0, 2], b[1, 2], b[2, 2]
            xlo = b[0, 0] - min(0.0, xy, xz, xy + xz)
            xhi = b[0, 1] - max(0.0, xy, xz, xy + xz)
            ylo = b[1, 0] - min(0.0, yz)
            yhi = b[1, 1] - max(0.0, yz)
            zlo, zhi = b[2, 0], b[2, 1]
        else:
            xy = xz = yz = 0.0
            (xlo, xhi), (ylo, yhi), (zlo, zhi) = b[0, :2], b[1, :2], b[2, :2]
        cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]], dtype=float)
        col = self._col
        xyz = num[:, [col[k] for k in self._xyz]]
        if self.convention.startswith("scaled"):
            xyz = xyz @ cell
        else:
            xyz = xyz - np.array([xlo, ylo, zlo])
        u = self.unit
        if u.distance != 1.0:
            xyz, cell = xyz * u.distance, cell * u.distance
        out = {"step": h.step, "time": h.time, "positions": xyz, "cell": cell}
        if all(k in col for k in ("ix", "iy", "iz")) and not self.convention.endswith("unwrapped"):
            out["image"] = num[:, [col["ix"], col["iy"], col["iz"]]].astype(np.int32)
        for name, keys, f in (("velocities", ("vx", "vy", "vz"), u.velocity), ("forces", ("fx", "fy", "fz"), u.force)):
            if all(k in col for k in keys):
                v = num[:, [col[k] for k in keys]]
                out[name] = v * f if f != 1.0 else v
        return out

    def _species_of(self, types, elements, n: int) -> np.ndarray:
        if self._given_species is not None:
            if self._given_species.size != n:
                raise DumpFormatError(self.path, f"{self._given_species.size} species given for {n} atoms.",
                                      "give one symbol per atom (in id order).")
            return self._given_species
        if elements is not None:
            el = np.asarray([str(e) for e in elements])
            try:
                _check_symbols(el, "the element column")
            except InputError as err:
                raise DumpFormatError(self.path, str(err)) from None
            return el
        if self.species_map is None:
            raise DumpFormatError(
                self.path, f"atom types {sorted(set(types.tolist()))} but no element column, so the "
                "species are unknown.", "give species_map={1: 'Li', ...} (CLI: --species-map 1=Li,2=S) "
                "or data_file= a LAMMPS data file with Masses."
            )
        missing = sorted(set(types.tolist()) - set(self.species_map))
        if missing:
            raise DumpFormatError(
                self.path, f"atom type(s) {missing} have no species in the map {self.species_map}.",
                f"add them, e.g. --species-map {','.join(f'{t}=X' for t in missing)}."
            )
        lookup = {t: s for t, s in self.species_map.items()}
        return np.array([lookup[t] for t in types.tolist()])

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> dict:
        """Arrays for frames start:stop:step stacked along a first axis."""
        idx = range(*slice(start, stop, step).indices(self.n_frames))
        parsed = [self._parse(i) for i in idx]
        out = {k: np.stack([p[k] for p in parsed]) for k in parsed[0] if k not in ("step", "time")}
        out["step"] = np.array([p["step"] for p in parsed], dtype=np.int64)
        return out

    @property
    def species(self) -> np.ndarray:
        return self._ref["species"]

    def to_dataset(self, frames=None, *, lazy: bool = False, chunk_frames: int = 32) -> xr.Dataset:
        """The dump as a schema Dataset; ``lazy=True`` builds dask arrays parsed chunk by chunk
        (the headers of every frame are checked now, the atom rows when a chunk is computed)."""
        sel = np.arange(self.n_frames)[frames if frames is not None else slice(None)]
        if sel.size == 0:
            raise InputError(f"frames={frames} selects no frame of the {self.n_frames} in '{self.path}'.")
        first = self._parse(int(sel[0]))
        species = self.species
        if not lazy:
            arr = [self._parse(int(i)) for i in sel]
            data = {k: np.stack([a[k] for a in arr]) for k in first if k not in ("step", "time")}
            steps = np.array([a["step"] for a in arr], dtype=np.int64)
            times = [a["time"] for a in arr]
        else:
            import dask
            import dask.array as da

            heads = [self._head(int(i)) for i in sel]
            steps = np.array([h.step for h in heads], dtype=np.int64)
            times = [h.time for h in heads]
            # one task parses a chunk of frames; every variable's block takes its part, so
            # computing several variables together parses each frame once
            parts = []
            for c0 in range(0, len(sel), chunk_frames):
                idx = tuple(int(i) for i in sel[c0 : c0 + chunk_frames])
                parts.append((idx, dask.delayed(self._chunk, pure=True)(idx)))
            data = {}
            for k, v in first.items():
                if k in ("step", "time"):
                    continue
                blocks = [da.from_delayed(dask.delayed(operator.getitem, pure=True)(part, k),
                                          shape=(len(idx), *np.shape(v)), dtype=np.asarray(v).dtype)
                          for idx, part in parts]
                data[k] = da.concatenate(blocks, axis=0)
        if self.timestep_ps is not None:
            time = steps * self.timestep_ps
        elif all(t is not None for t in times):  # dump_modify time yes
            time = np.asarray(times, dtype=float) * self.unit.time
        elif any(t is not None for t in times):
            k = next(j for j, t in enumerate(times) if t is None)
            raise DumpFormatError(self.path, f"frame {int(sel[k])} has no ITEM: TIME but other frames have one.",
                                  "pass timestep_ps= (CLI --timestep) to take times from the step numbers.")
        else:
            time = None
        ds = S.make_dataset(
            data.pop("positions"), species, cell=data.pop("cell"), time=time, pbc=self.pbc,
            attrs={S.SOURCE: str(self.path), "lammps_units": self.units, "lammps_coordinates": self.convention},
            **data,
        ) if not lazy else _lazy_dataset(data, species, time, self)
        ds = ds.assign_coords(step=(S.FRAME, steps))
        return ds

    def _chunk(self, idx: tuple[int, ...]) -> dict[str, np.ndarray]:
        parsed = [self._parse(i) for i in idx]
        return {k: np.stack([p[k] for p in parsed]) for k in parsed[0] if k not in ("step", "time")}


def _lazy_dataset(data: dict, species, time, dump: LammpsDump) -> xr.Dataset:
    from ase.data import atomic_masses, atomic_numbers

    z = np.array([atomic_numbers[s] for s in species])
    coords = {S.SPECIES: (S.ATOM, species), S.ATOMIC_NUMBER: (S.ATOM, z),
              S.MASS: (S.ATOM, atomic_masses[z], {"units": "amu"}), S.XYZ: (S.XYZ, ["x", "y", "z"])}
    if time is not None:
        coords[S.TIME] = (S.FRAME, time, {"units": "ps"})
    vars_ = {k: (S.VARIABLES[k].dims, v, {"units": S.VARIABLES[k].unit}) for k, v in data.items()}
    from atomtwin.toolkit import __version__

    ds = xr.Dataset(vars_, coords=coords, attrs={
        S.SOURCE: str(dump.path), S.PBC: [int(p) for p in dump.pbc], "lammps_units": dump.units,
        "lammps_coordinates": dump.convention, S.VERSION: __version__})
    if time is not None and len(time) > 1 and np.allclose(np.diff(time), time[1] - time[0]):
        ds.attrs[S.TIMESTEP] = float(time[1] - time[0])
    return S.validate(ds)


def read_lammps_dump(path, *, species_map=None, data_file=None, timestep_ps=None, units=None,
                     species=None, frames=None, lazy=False, chunk_frames=32) -> xr.Dataset:
    """Read a LAMMPS text dump into the schema (see :class:`LammpsDump`).

    Returns positions (frame, atom, 3) Å relative to the box origin, cell (frame, 3, 3) Å,
    and when dumped ``image`` (int), ``velocities`` Å/ps, ``forces`` eV/Å; atoms in id order.
    """
    dump = LammpsDump(path, species_map=species_map, data_file=data_file, timestep_ps=timestep_ps,
                      units=units, species=species)
    return dump.to_dataset(frames, lazy=lazy, chunk_frames=chunk_frames)
