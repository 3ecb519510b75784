"""Independent reference parsers for the reader fuzz test (test_fuzz_readers.py).

They share no code with :mod:`atomtwin.toolkit.io`: plain Python, line by line, written
from the formats' specifications (LAMMPS ``dump custom`` text, ASE's extended XYZ) and the
reader contract in the readers' docstrings.  Each returns ``(arrays, warned)`` for a file
that has a meaning (``warned``: a cut-off last frame was dropped, or an unterminated last
line was read) or raises :class:`Invalid` for a file that must be refused.
"""

from __future__ import annotations

import math
import shlex

import numpy as np

INT_COLUMNS = ("id", "type", "ix", "iy", "iz")


class Invalid(Exception):  # noqa: N818 - an oracle verdict, not an error of the code under test
    """The file must be refused by the reader."""


def _finite(token: str) -> float:
    try:
        v = float(token)
    except ValueError:
        raise Invalid(f"not a number: {token!r}") from None
    if not math.isfinite(v):
        raise Invalid(f"not finite: {token!r}")
    return v


def _nonblank(block: bytes) -> int:
    return sum(1 for line in block.split(b"\n") if line.strip())


PREFIX_ITEMS = (b"ITEM: UNITS", b"ITEM: TIME")  # dump_modify units yes / time yes, before TIMESTEP


def _prefix(block: bytes) -> tuple[dict, int]:
    """The ITEM: UNITS / ITEM: TIME lines at the top of a frame: ({item: value}, lines)."""
    lines, items, k = block.split(b"\n"), {}, 0
    while k + 1 < len(lines) and lines[k].strip() in PREFIX_ITEMS:
        items[lines[k].strip()] = lines[k + 1]
        k += 2
    return items, k


def _lammps_header(block: bytes) -> dict:
    items, skip = _prefix(block)
    parts = block.split(b"\n")[skip:]
    if len(parts) < 10:
        raise Invalid("header cut")
    try:
        head = [p.decode().strip() for p in parts[:9]]
        items = {k.decode(): v.decode().strip() for k, v in items.items()}
    except UnicodeDecodeError:
        raise Invalid("header not text") from None
    if not (head[0].startswith("ITEM: TIMESTEP") and head[2].startswith("ITEM: NUMBER OF ATOMS")
            and head[4].startswith("ITEM: BOX BOUNDS") and head[8].startswith("ITEM: ATOMS")):
        raise Invalid("header lines")
    try:
        step, n = int(head[1]), int(head[3])
    except ValueError:
        raise Invalid("step/count") from None
    if n < 1:
        raise Invalid("count")
    bounds = []
    for line in head[5:8]:
        tok = line.split()
        if len(tok) != 2:
            raise Invalid("bounds")
        bounds.append([_finite(t) for t in tok])
    time = _finite(items["ITEM: TIME"]) if "ITEM: TIME" in items else None
    return {"step": step, "n": n, "bounds": bounds, "box": " ".join(head[4].split()), "skip": skip,
            "columns": head[8].split()[2:], "time": time, "units": items.get("ITEM: UNITS")}


def _split_frames(data: bytes) -> list[bytes]:
    """Frames start at ITEM: TIMESTEP, or at the ITEM: TIME / ITEM: UNITS pairs before it."""
    tag, starts, pos = b"ITEM: TIMESTEP", [], data.find(b"ITEM: TIMESTEP")
    while pos != -1:
        start = pos
        for item in (b"ITEM: TIME", b"ITEM: UNITS"):  # LAMMPS writes UNITS, then TIME, then TIMESTEP
            before = data[:start].split(b"\n")  # ends with b"" when start begins a line
            if len(before) >= 3 and before[-1] == b"" and before[-3] == item:
                start -= len(before[-2]) + len(before[-3]) + 2
        starts.append(start)
        pos = data.find(tag, pos + 1)
    if not starts or starts[0] != 0:
        raise Invalid("start")
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def lammps(data: bytes, species_map: dict[int, str]) -> tuple[dict, bool]:
    """Reference reading of an orthogonal, unscaled ``dump custom`` with ``id`` and ``type``
    or ``element``; ``dump_modify units/time yes`` items allowed (metal or real units)."""
    blocks = _split_frames(data)
    h0 = _lammps_header(blocks[0])
    ncol = len(h0["columns"])
    warned = False
    last = blocks[-1]
    atoms = last.find(b"ITEM: ATOMS")
    for item in PREFIX_ITEMS:  # a next frame cut before its TIMESTEP
        at = last.find(b"\n" + item, atoms)
        if at >= 0 and last[at + 1 + len(item) : at + 2 + len(item)] in (b"\n", b""):
            last, warned = last[: at + 1], True
            blocks[-1] = last
            break
    need = _prefix(last)[1] + 9 + h0["n"]
    if last.endswith(b"\n"):
        keep = _nonblank(last) >= need
    else:
        complete = last[: last.rfind(b"\n") + 1]
        warned = True
        if _nonblank(complete) >= need:
            blocks[-1], keep = complete, True
        else:
            keep = _nonblank(complete) + 1 >= need and len(last[len(complete):].split()) == ncol
    if not keep:
        if len(blocks) == 1:
            raise Invalid("no complete frame")
        blocks.pop()
        warned = True
    frames = [_lammps_frame(b, h0, species_map) for b in blocks]
    ref = frames[0]
    for f in frames[1:]:
        if not np.array_equal(f["ids"], ref["ids"]) or list(f["species"]) != list(ref["species"]):
            raise Invalid("atoms differ from frame 0")
    out = {k: np.stack([f[k] for f in frames]) for k in ("positions", "cell", "image", "velocities", "forces")
           if k in ref}
    out["step"] = np.array([f["step"] for f in frames])
    out["species"] = np.array(ref["species"])
    times = [f["time"] for f in frames]
    if any(t is not None for t in times):
        if any(t is None for t in times):
            raise Invalid("ITEM: TIME in some frames only")
        out["time"] = np.array(times) * {"metal": 1.0, "real": 1e-3}[h0["units"] or "metal"]
    return out, warned


def _lammps_frame(block: bytes, h0: dict, species_map) -> dict:
    from ase.data import chemical_symbols

    h = _lammps_header(block)
    if h["n"] != h0["n"] or h["columns"] != h0["columns"] or h["box"] != h0["box"]:
        raise Invalid("header differs from frame 0")
    if h["units"] is not None and h["units"] != h0["units"]:
        raise Invalid("units differ")
    if h0["units"] not in (None, "metal", "real"):
        raise Invalid("units")
    try:
        text = block.decode()
    except UnicodeDecodeError:
        raise Invalid("not text") from None
    rows = [line.split() for line in text.split("\n")[9 + h["skip"] :] if line.strip()]
    cols = h["columns"]
    named = "type" in cols or "element" in cols
    if not {"id", "x", "y", "z"} <= set(cols) or not named or len(set(cols)) != len(cols):
        raise Invalid("columns")  # the test's dumps are unscaled with id and type or element
    if len(rows) != h["n"] or any(len(r) != len(cols) for r in rows):
        raise Invalid("rows")
    table = {c: [] for c in cols}
    for r in rows:
        for c, t in zip(cols, r, strict=True):
            if c == "element":
                if t not in chemical_symbols[1:]:
                    raise Invalid("element")
                table[c].append(t)
                continue
            v = _finite(t)
            if c in INT_COLUMNS and v != round(v):
                raise Invalid("integer")
            table[c].append(v)
    ids = np.array(table["id"], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    if len(set(ids.tolist())) != len(ids):
        raise Invalid("duplicate id")
    if "element" in cols:
        species = [table["element"][j] for j in order]
    else:
        types = np.array(table["type"], dtype=np.int64)[order]
        if not set(types.tolist()) <= set(species_map):
            raise Invalid("type not in map")
        species = [species_map[t] for t in types.tolist()]
    (xlo, xhi), (ylo, yhi), (zlo, zhi) = h["bounds"]
    factor = {"metal": (1.0, 1.0), "real": (1e3, None)}[h0["units"] or "metal"]

    def xyz(names):
        return np.array([table[n] for n in names]).T[order]

    out = {"step": h["step"], "time": h["time"], "ids": ids[order], "species": species,
           "positions": xyz(("x", "y", "z")) - np.array([xlo, ylo, zlo]),
           "cell": np.diag([xhi - xlo, yhi - ylo, zhi - zlo]).astype(float)}
    for name, group in (("image", ("ix", "iy", "iz")), ("velocities", ("vx", "vy", "vz")),
                        ("forces", ("fx", "fy", "fz"))):
        if set(group) <= set(cols):  # a column renamed (damaged header) is just another column
            out[name] = xyz(group).astype(np.int32) if name == "image" else xyz(group)
    if "velocities" in out and factor[0] != 1.0:
        out["velocities"] = out["velocities"] * factor[0]
    if "forces" in out and factor[1] is None:
        raise Invalid("the test's real-unit dumps carry no forces")
    return out


def extxyz(data: bytes) -> tuple[dict, bool]:
    """Reference reading of extended XYZ written with Lattice, Properties
    (species, pos, optional momenta and forces), energy and pbc."""
    from ase.data import atomic_masses, atomic_numbers
    from atomtwin.toolkit import units as U

    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise Invalid("not text") from None
    clean = text.endswith("\n")
    lines = text.split("\n")
    if clean:
        lines.pop()
    frames, warned, k = [], False, 0
    while k < len(lines):
        if not lines[k].strip():
            if all(not line.strip() for line in lines[k:]):
                break
            raise Invalid("blank line")
        try:
            n = int(lines[k].strip())
        except ValueError:
            raise Invalid("count") from None
        if n < 0:
            raise Invalid("count")
        end = k + 2 + n
        if end > len(lines):
            warned = True
            break
        info = _comment(lines[k + 1])
        props = info["Properties"]
        ncol = sum(c for _, _, c in props)
        if end == len(lines) and not clean:
            warned = True
            if len(lines[-1].split()) != ncol:
                break
        rows = [line.split() for line in lines[k + 2 : end]]
        if any(len(r) != ncol for r in rows):
            raise Invalid("row width")
        frames.append(_xyz_frame(info, props, rows))
        k = end
    if not frames:
        raise Invalid("no frame")
    f0 = frames[0]
    for f in frames:
        if list(f["species"]) != list(f0["species"]):
            raise Invalid("species differ")
        if f.keys() != f0.keys():
            raise Invalid("properties differ")
    out = {key: np.stack([f[key] for f in frames]) for key in f0 if key != "species"}
    out["species"] = np.array(f0["species"])
    if "momenta" in out:
        masses = atomic_masses[[atomic_numbers[s] for s in f0["species"]]]
        v = out.pop("momenta") / masses[None, :, None] * (1.0 / U.ASE_TIME_TO_PS)
        if np.any(v):
            out["velocities"] = v
    return out, warned


def _comment(line: str) -> dict:
    try:
        tokens = shlex.split(line)
    except ValueError:
        raise Invalid("comment quoting") from None
    info = {}
    for t in tokens:
        if "=" not in t:
            raise Invalid("comment token")
        key, value = t.split("=", 1)
        info[key] = value
    if "Properties" not in info:
        raise Invalid("plain xyz frame")
    parts = info["Properties"].split(":")
    if len(parts) % 3:
        raise Invalid("Properties")
    try:
        info["Properties"] = [(parts[i], parts[i + 1], int(parts[i + 2])) for i in range(0, len(parts), 3)]
    except ValueError:
        raise Invalid("Properties") from None
    return info


def _xyz_frame(info: dict, props, rows) -> dict:
    from ase.data import chemical_symbols

    out, col = {}, 0
    for name, kind, count in props:
        block = [r[col : col + count] for r in rows]
        col += count
        if name == "species":
            out["species"] = [b[0].capitalize() for b in block]  # ASE reads "CU"/"cu" as Cu
            if not all(s in chemical_symbols[1:] for s in out["species"]):
                raise Invalid("species")
        elif kind == "R":
            key = {"pos": "positions"}.get(name, name)
            out[key] = np.array([[_finite(t) for t in b] for b in block], dtype=float).reshape(len(rows), count)
        else:
            raise Invalid(f"unexpected property {name}")
    cell = [_finite(t) for t in info.get("Lattice", "").split()]
    if len(cell) != 9:
        raise Invalid("Lattice")
    out["cell"] = np.array(cell).reshape(3, 3)
    if "energy" in info:
        out["energy"] = np.array(_finite(info["energy"]))
    return out
