"""LAMMPS text dumps (``dump atom`` / ``dump custom``) read by atomtwin itself.

Why our own reader: a dump of millions of atom-frames must convert in constant memory, give
random access to any frame in constant time (a byte-offset index of the frames), read
the real ``dump custom`` variety (unscaled/scaled/unwrapped coordinates, image flags,
velocities, forces, ``element``, triclinic boxes, atoms in any order) and say exactly
what is wrong with a damaged file.  The conventions follow LAMMPS' documentation of
``dump`` and MDAnalysis' ``DumpReader`` (box translated to the origin, atoms sorted by
``id``), against which the tests compare frame by frame.

Units: ``units="metal"`` (default; Å, ps, eV) or ``"real"`` (Å, fs, kcal/mol) are
converted to atomtwin's Å, ps, eV.
"""

from __future__ import annotations

import io
import mmap
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import InputError

#: LAMMPS unit styles -> (velocity to Å/ps, force to eV/Å, time to ps, energy to eV)
KCAL_MOL = 0.0433641043  # eV per kcal/mol (CODATA via ASE's units.kcal/units.mol)
UNIT_STYLES = {
    "metal": (1.0, 1.0, 1.0, 1.0),
    "real": (1e3, KCAL_MOL, 1e-3, KCAL_MOL),
}

_HEADER = b"ITEM: TIMESTEP"


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


class DumpFormatError(InputError):
    """A LAMMPS dump that cannot be read as it is."""


def parse_species_map(text: str | dict | None) -> dict[int, str] | None:
    """``"1=Li,2=S"`` (or a dict) -> {1: "Li", 2: "S"}."""
    if text is None or isinstance(text, dict):
        return None if text is None else {int(k): str(v) for k, v in text.items()}
    out = {}
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"species map entry '{item}' is not TYPE=SYMBOL (e.g. 1=Li,2=S).")
        k, v = item.split("=", 1)
        out[int(k)] = v.strip()
    return out


def species_from_data_file(path: str | os.PathLike) -> dict[int, str]:
    """Type -> species from a LAMMPS data file: the comment after each ``Masses`` line
    (``1 6.94 # Li``) when present, else the element whose standard mass is nearest."""
    from ase.data import atomic_masses, chemical_symbols

    lines = Path(path).read_text().splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.split("#")[0].strip() == "Masses")
    except StopIteration:
        raise DumpFormatError(f"'{path}' has no Masses section; cannot map atom types to species.") from None
    out = {}
    for line in lines[start + 1 :]:
        body, _, comment = line.partition("#")
        parts = body.split()
        if not parts:
            if out:
                break
            continue
        if not parts[0].isdigit():
            break
        t, mass = int(parts[0]), float(parts[1])
        sym = comment.strip().split()[0] if comment.strip() else None
        if sym not in chemical_symbols[1:]:
            z = int(np.argmin(np.abs(atomic_masses[1:] - mass))) + 1
            sym = chemical_symbols[z]
        out[t] = sym
    return out


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
        LAMMPS unit style, ``"metal"`` or ``"real"``.
    """

    def __init__(self, path, *, species_map=None, data_file=None, timestep_ps: float | None = None,
                 units: str = "metal", species=None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such file: '{self.path}'.")
        if units not in UNIT_STYLES:
            raise ValueError(f"LAMMPS units '{units}' not supported; use one of {sorted(UNIT_STYLES)}.")
        self.units = units
        self.timestep_ps = timestep_ps
        smap = parse_species_map(species_map)
        if data_file is not None:
            smap = {**species_from_data_file(data_file), **(smap or {})}
        self.species_map = smap
        self._given_species = None if species is None else np.asarray([str(x) for x in species])
        self._index()

    # -- indexing ---------------------------------------------------------------------
    def _index(self) -> None:
        self._bytes = None
        suffix = self.path.suffix.lower()
        if suffix in _COMPRESSED:
            # compressed dumps have no random access: decompress once into memory
            self._bytes = _COMPRESSED[suffix](self.path)
            size = len(self._bytes)
        else:
            size = self.path.stat().st_size
        if size == 0:
            raise DumpFormatError(f"'{self.path}' is empty.")
        with _view(self.path, self._bytes) as mm:
            offsets = []
            pos = mm.find(_HEADER)
            if pos != 0:
                raise DumpFormatError(
                    f"'{self.path}' does not start with 'ITEM: TIMESTEP': not a LAMMPS text dump "
                    "(binary or compressed dumps must be converted with LAMMPS' tools first)."
                )
            while pos != -1:
                offsets.append(pos)
                pos = mm.find(_HEADER, pos + 1)
            offsets.append(size)
            self._offsets = np.asarray(offsets, dtype=np.int64)
            head = mm[: min(self._offsets[1], 1 << 16)].decode()
        self._parse_header(head)
        # check the last frame is complete: its atom block must have n_atoms lines
        last = self._raw(len(self._offsets) - 2)
        n_lines = last.count(b"\n") + (0 if last.endswith(b"\n") else 1)
        expect = self._header_lines + self.n_atoms
        self.truncated = n_lines < expect
        if self.truncated:
            n_frames = len(self._offsets) - 2
            warnings.warn(
                f"'{self.path}': the last frame (frame {n_frames}, at byte {self._offsets[-2]}) is cut off "
                f"({n_lines} of {expect} lines); reading the {n_frames} complete frames. Fix: rerun or "
                "let LAMMPS finish writing to get it.",
                stacklevel=3,
            )
            self._offsets = self._offsets[:-1]
        self.n_frames = len(self._offsets) - 1
        if self.n_frames == 0:
            raise DumpFormatError(f"'{self.path}' holds no complete frame.")

    def _raw(self, i: int) -> bytes:
        if self._bytes is not None:
            return self._bytes[int(self._offsets[i]) : int(self._offsets[i + 1])]
        with open(self.path, "rb") as fh:
            fh.seek(int(self._offsets[i]))
            return fh.read(int(self._offsets[i + 1] - self._offsets[i]))

    def _parse_header(self, text: str) -> None:
        lines = text.splitlines()
        try:
            self.n_atoms = int(lines[3])
        except (IndexError, ValueError) as err:
            raise DumpFormatError(f"'{self.path}': line 4 should hold the number of atoms.") from err
        box = lines[4]
        if not box.startswith("ITEM: BOX BOUNDS"):
            raise DumpFormatError(f"'{self.path}': line 5 should be 'ITEM: BOX BOUNDS ...', got {box!r}.")
        self.triclinic = "xy" in box.split()
        flags = box.split()[-3:] if len(box.split()) >= 6 else ["pp", "pp", "pp"]
        self.pbc = [f.startswith("p") for f in flags]
        cols = lines[8]
        if not cols.startswith("ITEM: ATOMS"):
            raise DumpFormatError(f"'{self.path}': line 9 should be 'ITEM: ATOMS ...', got {cols!r}.")
        self.columns = cols.split()[2:]
        self._header_lines = 9
        c = self.columns
        for conv, names in (("unscaled", ("x", "y", "z")), ("scaled", ("xs", "ys", "zs")),
                            ("unwrapped", ("xu", "yu", "zu")), ("scaled_unwrapped", ("xsu", "ysu", "zsu"))):
            if all(n in c for n in names):
                self.convention, self._xyz = conv, names
                break
        else:
            raise DumpFormatError(
                f"'{self.path}': no coordinate columns (x y z, xs ys zs, xu yu zu or xsu ysu zsu) in {c}."
            )
        if "element" not in c and "type" not in c and getattr(self, "_given_species", None) is None:
            raise DumpFormatError(f"'{self.path}': neither 'type' nor 'element' column in {c}. Fix: pass species=[...] "
                "(one symbol per atom, in id order).")

    # -- parsing ----------------------------------------------------------------------
    def _parse(self, i: int) -> dict:
        import pandas as pd

        raw = self._raw(i)
        head_end = 0
        for _ in range(self._header_lines):
            head_end = raw.index(b"\n", head_end) + 1
        head = raw[:head_end].decode().splitlines()
        step = int(head[1])
        n = int(head[3])
        if n != self.n_atoms:
            raise DumpFormatError(
                f"'{self.path}' frame {i} (step {step}) has {n} atoms but frame 0 has {self.n_atoms}. "
                "A trajectory needs a constant number of atoms; split the file where the count changes."
            )
        b = np.array([[float(x) for x in line.split()] for line in head[5:8]])
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
        table = pd.read_csv(io.BytesIO(raw[head_end:]), sep=r"\s+", header=None, names=self.columns,
                            engine="c", dtype={"element": str} if "element" in self.columns else None)
        if len(table) != n:
            raise DumpFormatError(
                f"'{self.path}' frame {i} (step {step}, byte {int(self._offsets[i])}) has {len(table)} atom "
                f"lines, expected {n}. Fix: cut the file before this frame."
            )
        if "id" in table:
            table = table.sort_values("id", kind="stable")
        xyz = table[list(self._xyz)].to_numpy(dtype=float)
        if not np.isfinite(xyz).all():
            a = int(np.argwhere(~np.isfinite(xyz))[0, 0])
            raise DumpFormatError(f"'{self.path}' frame {i} (step {step}): NaN coordinates for atom index {a}.")
        if self.convention.startswith("scaled"):
            xyz = xyz @ cell
        else:
            xyz = xyz - np.array([xlo, ylo, zlo])
        out = {"step": step, "positions": xyz, "cell": cell}
        if all(k in table for k in ("ix", "iy", "iz")) and not self.convention.endswith("unwrapped"):
            out["image"] = table[["ix", "iy", "iz"]].to_numpy(dtype=np.int32)
        vconv, fconv, _, _ = UNIT_STYLES[self.units]
        if all(k in table for k in ("vx", "vy", "vz")):
            out["velocities"] = table[["vx", "vy", "vz"]].to_numpy(dtype=float) * vconv
        if all(k in table for k in ("fx", "fy", "fz")):
            out["forces"] = table[["fx", "fy", "fz"]].to_numpy(dtype=float) * fconv
        if i == 0 or not hasattr(self, "_species"):
            self._species = self._species_of(table)
        return out

    def _species_of(self, table) -> np.ndarray:
        if self._given_species is not None:
            if self._given_species.size != len(table):
                raise DumpFormatError(
                    f"{self._given_species.size} species given for {len(table)} atoms in '{self.path}'."
                )
            return self._given_species
        if "element" in table:
            return table["element"].astype(str).to_numpy()
        types = table["type"].to_numpy(dtype=int)
        if self.species_map is None:
            raise DumpFormatError(
                f"'{self.path}' has atom types {sorted(set(types.tolist()))} but no element column, so the "
                "species are unknown. Fix: give species_map={1: 'Li', ...} (CLI: --species-map 1=Li,2=S) "
                "or data_file= a LAMMPS data file with Masses."
            )
        missing = sorted(set(types.tolist()) - set(self.species_map))
        if missing:
            raise DumpFormatError(
                f"'{self.path}': atom type(s) {missing} have no species in the map {self.species_map}. "
                f"Fix: add them, e.g. --species-map {','.join(f'{t}=X' for t in missing)}."
            )
        return np.array([self.species_map[t] for t in types])

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> dict:
        """Arrays for frames start:stop:step stacked along a first axis."""
        idx = range(*slice(start, stop, step).indices(self.n_frames))
        parsed = [self._parse(i) for i in idx]
        out = {k: np.stack([p[k] for p in parsed]) for k in parsed[0] if k != "step"}
        out["step"] = np.array([p["step"] for p in parsed], dtype=np.int64)
        return out

    @property
    def species(self) -> np.ndarray:
        if not hasattr(self, "_species"):
            self._parse(0)
        return self._species

    def to_dataset(self, frames=None, *, lazy: bool = False, chunk_frames: int = 32) -> xr.Dataset:
        """The dump as a schema Dataset; ``lazy=True`` builds dask arrays parsed chunk by chunk."""
        sel = np.arange(self.n_frames)[frames if frames is not None else slice(None)]
        first = self._parse(int(sel[0]))
        species = self.species
        steps = np.array([self._step_of(i) for i in sel]) if lazy else None
        if not lazy:
            arr = [self._parse(int(i)) for i in sel]
            data = {k: np.stack([a[k] for a in arr]) for k in first if k != "step"}
            steps = np.array([a["step"] for a in arr], dtype=np.int64)
        else:
            import dask
            import dask.array as da

            data = {}
            for k, v in first.items():
                if k == "step":
                    continue
                blocks = []
                for c0 in range(0, len(sel), chunk_frames):
                    chunk = sel[c0 : c0 + chunk_frames]
                    d = dask.delayed(self._chunk_var)(tuple(int(i) for i in chunk), k)
                    blocks.append(da.from_delayed(d, shape=(len(chunk), *np.shape(v)), dtype=np.asarray(v).dtype))
                data[k] = da.concatenate(blocks, axis=0)
        time = steps * self.timestep_ps if self.timestep_ps is not None else None
        ds = S.make_dataset(
            data.pop("positions"), species, cell=data.pop("cell"), time=time, pbc=self.pbc,
            attrs={S.SOURCE: str(self.path), "lammps_units": self.units, "lammps_coordinates": self.convention},
            **data,
        ) if not lazy else _lazy_dataset(data, species, time, self)
        ds = ds.assign_coords(step=(S.FRAME, steps))
        return ds

    def _chunk_var(self, idx: tuple[int, ...], key: str) -> np.ndarray:
        return np.stack([self._parse(i)[key] for i in idx])

    def _step_of(self, i: int) -> int:
        if self._bytes is not None:
            return int(self._raw(i).split(b"\n", 2)[1])
        with open(self.path, "rb") as fh:
            fh.seek(int(self._offsets[i]))
            fh.readline()
            return int(fh.readline())


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


def read_lammps_dump(path, *, species_map=None, data_file=None, timestep_ps=None, units="metal",
                     species=None, frames=None, lazy=False, chunk_frames=32) -> xr.Dataset:
    """Read a LAMMPS text dump into the schema (see :class:`LammpsDump`)."""
    dump = LammpsDump(path, species_map=species_map, data_file=data_file, timestep_ps=timestep_ps,
                      units=units, species=species)
    return dump.to_dataset(frames, lazy=lazy, chunk_frames=chunk_frames)
