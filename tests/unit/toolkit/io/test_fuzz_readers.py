"""Mutation fuzzing of the LAMMPS dump, extxyz and netCDF/zarr readers.

Seeded structural mutations of small intact files (delete, duplicate or swap lines, cut at
a random byte, insert blank lines, drop or add a field in a row, replace a token by a
non-numeric or non-finite one, inject non-UTF-8 bytes, change an atom count, duplicate an
id, give an atom a type outside the map or another type, drop a property from one frame,
delete zarr chunk files, variables or metadata, cut netCDF files).  Every outcome must be
one of

- ``error``: an :class:`~atomtwin.toolkit.errors.InputError` whose message names the file;
- ``warn-complete``: a warning naming the file, and exactly the data of the complete
  frames (what the independent reference parser in ``fuzz_oracles.py`` reads);
- ``identical``: the intact file's data;
- ``valid-other``: the mutation produced another valid file (e.g. two atom rows of one
  frame swapped, two frames' comment lines swapped) and the reader gives exactly what the
  reference parser reads from it.

Anything else fails: an exception that is not an InputError (a raw traceback), an error
that does not name the file, data accepted from a file the reference parser refuses, or
data that differ from the reference's (silent wrong data).  A file the reference reads
but the reader refuses is counted as ``refused-valid`` and also fails (no false alarms).
"""

from __future__ import annotations

import collections
import importlib.util
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from atomtwin.toolkit.errors import InputError

import atomtwin

# the reference parsers sit beside this file (the suite imports tests in importlib mode)
_spec = importlib.util.spec_from_file_location("fuzz_oracles", Path(__file__).with_name("fuzz_oracles.py"))
oracle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(oracle)

SPECIES_MAP = {1: "Li", 2: "S"}
BAD_TOKENS = [b"abc", b"nan", b"inf", b"-inf", b"1e999", b"NA", b"1.2.3", b"0x1F", b"--", b"NaN"]
BAD_BYTES = [b"\xff", b"\xc3", b"\x80\x80", b"\xfe\xff", b"\xed\xa0\x80"]


# -- intact files ------------------------------------------------------------------------
def _lammps_text(rng) -> bytes:
    out = []
    for f in range(3):
        out += ["ITEM: TIMESTEP", str(100 * f), "ITEM: NUMBER OF ATOMS", "6", "ITEM: BOX BOUNDS pp pp pp",
                "-0.5 9.5", "0.0 10.0", "1.0 11.0", "ITEM: ATOMS id type x y z ix iy iz vx vy vz fx fy fz"]
        for a in rng.permutation(6) + 1:
            x = rng.random(3) * 10
            im = rng.integers(-1, 2, 3)
            v, fo = rng.normal(size=3), rng.normal(size=3)
            out.append(f"{a} {1 + a % 2} " + " ".join(f"{t:.6f}" for t in x) + " " + " ".join(str(i) for i in im)
                       + " " + " ".join(f"{t:.5g}" for t in (*v, *fo)))
    return ("\n".join(out) + "\n").encode()


def _lammps_items_text(rng) -> bytes:
    """`dump_modify units yes time yes element ...` in real units: ITEM: UNITS, ITEM: TIME,
    an element column instead of type, velocities in Å/fs."""
    out = ["ITEM: UNITS", "real"]
    for f in range(3):
        out += ["ITEM: TIME", f"{2.0 * f}", "ITEM: TIMESTEP", str(2 * f), "ITEM: NUMBER OF ATOMS", "5",
                "ITEM: BOX BOUNDS pp pp pp", "0.0 8.0", "0.0 8.0", "0.0 8.0", "ITEM: ATOMS id element x y z vx vy vz"]
        for a in rng.permutation(5) + 1:
            nums = np.concatenate([rng.random(3) * 8, rng.normal(size=3) * 1e-3])
            out.append(f"{a} {'Li' if a % 2 else 'S'} " + " ".join(f"{t:.6g}" for t in nums))
    return ("\n".join(out) + "\n").encode()


def _extxyz_text(rng) -> bytes:
    out = []
    for f in range(3):
        out += ["4", f'Lattice="6.0 0.0 0.0 0.0 6.5 0.0 0.0 0.0 7.0" Properties=species:S:1:pos:R:3:momenta:R:3:'
                f'forces:R:3 energy={-3.25 * (f + 1):.6f} pbc="T T T"']
        for s in ("Cu", "Cu", "O", "Cu"):
            nums = np.concatenate([rng.random(3) * 6, rng.normal(size=3), rng.normal(size=3)])
            out.append(f"{s:2s} " + " ".join(f"{t:.8f}" for t in nums))
    return ("\n".join(out) + "\n").encode()


def _roles(lines: list[bytes], fmt: str) -> list[tuple[str, int]]:
    """(role, frame) per line of an intact file: 'row' for atom rows, 'count', 'comment',
    or 'header'."""
    roles, frame, k = [], -1, 0
    while k < len(lines):
        if fmt == "lammps":
            if lines[k] in (b"ITEM: UNITS", b"ITEM: TIME"):
                roles += [("header", frame + 1)] * 2
                k += 2
                continue
            if lines[k] == b"ITEM: TIMESTEP":
                frame += 1
                roles += [("header", frame)] * 9
                k += 9
                continue
            roles.append(("row", frame))
            k += 1
        else:
            frame += 1
            n = int(lines[k])
            roles += [("count", frame), ("comment", frame)] + [("row", frame)] * n
            k += 2 + n
    return roles


# -- mutations -----------------------------------------------------------------------------
def _pick(rng, roles, role):
    idx = [i for i, r in enumerate(roles) if r[0] == role]
    return int(rng.choice(idx))


def _replace_token(line: bytes, rng, token=None, where=None) -> bytes:
    tok = line.split()
    j = int(rng.integers(len(tok))) if where is None else where
    tok[j] = token if token is not None else BAD_TOKENS[int(rng.integers(len(BAD_TOKENS)))]
    return b" ".join(tok)


def mutate(data: bytes, fmt: str, kind: str, rng) -> bytes:
    lines = data.split(b"\n")[:-1]  # intact files end with a newline
    roles = _roles(lines, fmt)
    n = len(lines)
    i = int(rng.integers(n))
    if kind == "delete_line":
        del lines[i]
    elif kind == "duplicate_line":
        lines.insert(i, lines[i])
    elif kind == "swap_lines":
        if rng.random() < 0.5:  # two atom rows of one frame: often another valid file
            a = _pick(rng, roles, "row")
            same = [j for j, r in enumerate(roles) if r == roles[a] and j != a]
            b = int(rng.choice(same))
        else:
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
        lines[a], lines[b] = lines[b], lines[a]
    elif kind == "truncate":
        return data[: int(rng.integers(1, len(data)))]
    elif kind == "blank_line":
        lines.insert(int(rng.integers(n + 1)), b"" if rng.random() < 0.7 else b"   ")
    elif kind == "drop_field":
        r = _pick(rng, roles, "row")
        tok = lines[r].split()
        del tok[int(rng.integers(len(tok)))]
        lines[r] = b" ".join(tok)
    elif kind == "add_field":
        r = _pick(rng, roles, "row")
        tok = lines[r].split()
        tok.insert(int(rng.integers(len(tok) + 1)), b"0.5")
        lines[r] = b" ".join(tok)
    elif kind == "bad_token":
        lines[i] = _replace_token(lines[i], rng) if lines[i].strip() else lines[i]
    elif kind == "bad_row_token":
        r = _pick(rng, roles, "row")
        lines[r] = _replace_token(lines[r], rng)
    elif kind == "non_utf8":
        p = int(rng.integers(len(data)))
        return data[:p] + BAD_BYTES[int(rng.integers(len(BAD_BYTES)))] + data[p:]
    elif kind == "count":
        if fmt == "lammps":
            c = [j for j, line in enumerate(lines) if line == b"ITEM: NUMBER OF ATOMS"]
            j = int(rng.choice(c)) + 1
        else:
            j = _pick(rng, roles, "count")
        lines[j] = str(int(lines[j]) + int(rng.choice([-1, 1, -int(lines[j]), 5]))).encode()
    elif kind == "duplicate_id":
        r = _pick(rng, roles, "row")
        other = [j for j, x in enumerate(roles) if x == roles[r] and j != r]
        lines[r] = _replace_token(lines[r], rng, lines[int(rng.choice(other))].split()[0], 0)
    elif kind == "new_id":
        r = _pick(rng, roles, "row")
        lines[r] = _replace_token(lines[r], rng, str(int(rng.choice([0, 7, 99, -1]))).encode(), 0)
    elif kind == "type_outside_map":
        r = _pick(rng, roles, "row")
        lines[r] = _replace_token(lines[r], rng, str(int(rng.choice([0, 3, 7]))).encode(), 1)
    elif kind == "type_changed":
        r = _pick(rng, roles, "row")
        t = int(lines[r].split()[1])
        lines[r] = _replace_token(lines[r], rng, str(3 - t).encode(), 1)
    elif kind in ("element_changed", "bad_element"):
        r = _pick(rng, roles, "row")
        tok = lines[r].split()
        tok[1] = b"Xx" if kind == "bad_element" else (b"S" if tok[1] == b"Li" else b"Li")
        lines[r] = b" ".join(tok)
    elif kind == "bad_energy":
        c = _pick(rng, roles, "comment")
        tok = BAD_TOKENS[int(rng.integers(len(BAD_TOKENS)))].decode()
        lines[c] = lines[c].decode().rsplit(" energy=", 1)[0].encode() + f" energy={tok} pbc=\"T T T\"".encode()
    elif kind == "drop_property":
        c = _pick(rng, roles, "comment")
        if rng.random() < 0.5:
            lines[c] = lines[c].replace(b" energy=", b" energ_y=")  # no energy in this frame
        else:  # no forces in this frame: spec and the last three columns
            lines[c] = lines[c].replace(b":forces:R:3", b"")
            for j, r in enumerate(roles):
                if r == ("row", roles[c][1]):
                    lines[j] = b" ".join(lines[j].split()[:-3])
    else:
        raise ValueError(kind)
    return b"\n".join(lines) + b"\n"


LAMMPS_KINDS = ["delete_line", "duplicate_line", "swap_lines", "truncate", "blank_line", "drop_field",
                "add_field", "bad_token", "bad_row_token", "non_utf8", "count", "duplicate_id", "new_id",
                "type_outside_map", "type_changed"]
LAMMPS_ITEMS_KINDS = [*LAMMPS_KINDS[:-2], "element_changed", "bad_element"]
EXTXYZ_KINDS = ["delete_line", "duplicate_line", "swap_lines", "truncate", "blank_line", "drop_field",
                "add_field", "bad_row_token", "non_utf8", "count", "bad_energy", "drop_property"]


# -- judging ------------------------------------------------------------------------------
def _read(fn, path):
    """('error'|'data'|'raw'|'unnamed', value, warned)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = fn(path)
        except InputError as err:
            return ("error" if path.name in str(err) else "unnamed"), str(err), False
        except Exception as err:  # noqa: BLE001 - a raw traceback is what the test counts
            return "raw", f"{type(err).__name__}: {err}", False
    warned = any(path.name in str(w.message) for w in caught)
    return "data", ds, warned


def _same(ds, ref: dict, names) -> str | None:
    for name in names:
        if name not in ref:
            continue
        if name not in ds.variables:
            return f"{name} missing"
        got = ds[name].values
        if got.shape != ref[name].shape or not np.array_equal(got, ref[name]):
            return f"{name} differs"
    extra = {str(k) for k in ds.data_vars} - set(ref)
    return f"unexpected variables {sorted(extra)}" if extra else None


def judge(kind_of, path, read_fn, ref_fn, intact_ref, names, failures, counts, label):
    verdict, value, warned = _read(read_fn, path)
    try:
        ref, ref_warned = ref_fn(path.read_bytes())
    except oracle.Invalid as why:
        ref, ref_warned = None, str(why)
    if verdict == "error":
        if ref is not None:
            counts["refused-valid"] += 1
            failures.append(f"{label}: reader refused a file the reference reads: {value}")
        else:
            counts["error"] += 1
        return
    if verdict != "data":
        counts[verdict] += 1
        failures.append(f"{label}: {verdict}: {value}")
        return
    if ref is None:
        counts["accepted-invalid"] += 1
        failures.append(f"{label}: data accepted from a file the reference refuses ({ref_warned})")
        return
    bad = _same(value, ref, names)
    if bad is None and warned != bool(ref_warned):
        bad = f"warning {warned} but reference {bool(ref_warned)}"
    if bad is not None:
        counts["wrong-data"] += 1
        failures.append(f"{label}: {bad}")
        return
    if warned:
        counts["warn-complete"] += 1
    elif _same(value, intact_ref, names) is None:
        counts["identical"] += 1
    else:
        counts["valid-other"] += 1
        print(f"valid-other: {label}")


def _report(fmt, counts, failures):
    print(f"\n{fmt}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    assert not failures, f"{len(failures)} failures, first ones:\n" + "\n".join(failures[:15])


# -- the tests -----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["types", "items"])
@pytest.mark.parametrize("lazy", [False, True], ids=["read", "open"])
def test_fuzz_lammps_dump(tmp_path, lazy, variant):
    """``types``: id type x y z ix iy iz vx vy vz fx fy fz in metal units; ``items``: dump_modify
    units/time/element (ITEM: UNITS real, ITEM: TIME, an element column)."""
    rng = np.random.default_rng(14)
    intact = _lammps_text(rng) if variant == "types" else _lammps_items_text(rng)
    kinds = LAMMPS_KINDS if variant == "types" else LAMMPS_ITEMS_KINDS
    intact_ref, _ = oracle.lammps(intact, SPECIES_MAP)
    if lazy:
        def read_fn(p):
            return atomtwin.toolkit.open(p, species_map=SPECIES_MAP).load()
    else:
        def read_fn(p):
            return atomtwin.toolkit.read(p, species_map=SPECIES_MAP)
    p0 = tmp_path / "intact.lammpstrj"
    p0.write_bytes(intact)
    names = ("positions", "cell", "image", "velocities", "forces", "species", "step", "time")
    assert _same(read_fn(p0), intact_ref, names) is None
    if variant == "items":
        assert "time" in intact_ref and intact_ref["velocities"].std() > 0.1  # Å/fs -> Å/ps
    counts, failures = collections.Counter(), []
    per_kind = (15 if lazy else 30) if variant == "types" else (8 if lazy else 15)
    for kind in kinds:
        for s in range(per_kind):
            path = tmp_path / f"{kind}_{s}.lammpstrj"
            seed = [s, len(kind), 0 if variant == "types" else 1]
            path.write_bytes(mutate(intact, "lammps", kind, np.random.default_rng(seed)))
            judge(kind, path, read_fn, lambda b: oracle.lammps(b, SPECIES_MAP), intact_ref, names, failures, counts,
                  f"{path.name}")
    assert sum(counts.values()) == per_kind * len(kinds)
    _report(f"lammps-dump {variant} ({'open+load' if lazy else 'read'})", counts, failures)


def test_fuzz_extxyz(tmp_path):
    rng = np.random.default_rng(15)
    intact = _extxyz_text(rng)
    intact_ref, _ = oracle.extxyz(intact)
    p0 = tmp_path / "intact.extxyz"
    p0.write_bytes(intact)
    names = ("positions", "cell", "energy", "forces", "velocities", "species")
    ds0 = atomtwin.toolkit.read(p0)
    assert sorted(ds0.data_vars) == ["cell", "energy", "forces", "positions", "velocities"]
    np.testing.assert_allclose(ds0.velocities.values, intact_ref["velocities"], rtol=1e-13)
    intact_ref["velocities"] = ds0.velocities.values  # same formula; bitwise from here on
    counts, failures = collections.Counter(), []
    per_kind = 40
    for kind in EXTXYZ_KINDS:
        for s in range(per_kind):
            path = tmp_path / f"{kind}_{s}.extxyz"
            path.write_bytes(mutate(intact, "extxyz", kind, np.random.default_rng([s, len(kind), 1])))

            def ref_fn(b, path=path):
                ref, warned = oracle.extxyz(b)
                if "velocities" in ref:  # p / m * const in either order: round to the reader's
                    ref["velocities"] = _snap(ref["velocities"], path)
                return ref, warned

            judge(kind, path, atomtwin.toolkit.read, ref_fn, intact_ref, names, failures, counts, path.name)
    assert sum(counts.values()) == per_kind * len(EXTXYZ_KINDS)
    _report("extxyz", counts, failures)


def _snap(ref_v, path):
    """The reader's velocities when they agree with the reference to 1e-13 (the same
    p / m * c in another order of operations), else the reference's (and the test fails)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = atomtwin.toolkit.read(path).velocities.values
    except Exception:  # noqa: BLE001
        return ref_v
    return got if got.shape == ref_v.shape and np.allclose(got, ref_v, rtol=1e-13, atol=0) else ref_v


def _store(tmp_path, suffix):
    rng = np.random.default_rng(16)
    nf, na = 8, 5
    ds = atomtwin.toolkit.make_dataset(
        rng.normal(size=(nf, na, 3)), ["Li", "Li", "S", "P", "Cl"], cell=np.eye(3) * 9.0,
        time=np.arange(nf) * 0.002, velocities=rng.normal(size=(nf, na, 3)), forces=rng.normal(size=(nf, na, 3)),
        energy=rng.normal(size=nf), image=np.zeros((nf, na, 3), dtype=np.int32),
    )
    return ds, atomtwin.toolkit.write(ds, tmp_path / f"intact{suffix}", chunk_frames=3)


def _mutate_zarr(src: Path, dst: Path, kind: str, rng) -> None:
    shutil.copytree(src, dst)
    variables = sorted(p for p in dst.iterdir() if p.is_dir())
    var = variables[int(rng.integers(len(variables)))]
    chunks = sorted(p for p in var.iterdir() if not p.name.startswith("."))
    if kind == "delete_chunk":
        chunks[int(rng.integers(len(chunks)))].unlink()
    elif kind == "delete_chunks":
        for p in chunks[1:]:
            p.unlink()
    elif kind == "delete_variable":
        shutil.rmtree(dst / rng.choice(["positions", "forces", "cell", "energy", "time", "image"]))
    elif kind == "delete_metadata":
        (dst / ".zmetadata").unlink()
    elif kind == "delete_array_meta":
        (var / rng.choice([".zarray", ".zattrs"])).unlink()
    elif kind == "truncate_chunk":
        c = chunks[int(rng.integers(len(chunks)))]
        c.write_bytes(c.read_bytes()[: int(rng.integers(0, max(1, c.stat().st_size)))])
    elif kind == "empty_store":
        for p in dst.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    else:
        raise ValueError(kind)


def test_fuzz_stores(tmp_path):
    """zarr: deleted chunk files, variables, metadata, cut chunk files; netCDF: cut at a
    random byte or empty.  A store mutation never makes another valid store, so every
    read that succeeds must give the intact data."""
    counts = {"zarr": collections.Counter(), "netcdf": collections.Counter()}
    failures = []
    for suffix, fmt in ((".zarr", "zarr"), (".nc", "netcdf")):
        ds, src = _store(tmp_path, suffix)
        ref = {str(k): ds[k].values for k in [*ds.data_vars, "time", "species", "mass"]}
        ref["species"] = ref["species"].astype(str)
        kinds = (["delete_chunk", "delete_chunks", "delete_variable", "delete_metadata", "delete_array_meta",
                  "truncate_chunk", "empty_store"] if fmt == "zarr" else ["truncate", "empty"])
        per_kind = 12 if fmt == "zarr" else 25
        for kind in kinds:
            for s in range(per_kind):
                rng = np.random.default_rng([s, len(kind), 2])
                dst = tmp_path / f"{kind}_{s}{suffix}"
                if fmt == "zarr":
                    _mutate_zarr(src, dst, kind, rng)
                else:
                    data = src.read_bytes()
                    dst.write_bytes(b"" if kind == "empty" else data[: int(rng.integers(1, len(data)))])
                for how, fn in (("read", atomtwin.toolkit.read), ("open", lambda p: atomtwin.toolkit.open(p).load())):
                    verdict, value, _ = _read(fn, dst)
                    label = f"{dst.name} ({how})"
                    if verdict == "data":
                        bad = _same(value, ref, list(ref))
                        verdict = "identical" if bad is None else "wrong-data"
                        if bad:
                            failures.append(f"{label}: {bad}")
                    elif verdict != "error":
                        failures.append(f"{label}: {verdict}: {value}")
                    counts[fmt][verdict] += 1
    for fmt, c in counts.items():
        print(f"\n{fmt}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    assert not failures, f"{len(failures)} failures, first ones:\n" + "\n".join(failures[:15])
