"""Target safety of :func:`atomtwin.toolkit.io.write`: never delete what atomtwin did not
write, recognisable temporaries, and the clean-up of those a killed process left behind.

Temporaries are named ``.<target>.atomtwin-tmp.<host>.<pid>.<random>`` beside the target;
a previous store being replaced is moved aside as ``.<target>.atomtwin-old.<host>.<pid>.<random>``
and removed once the new one is in place.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from pathlib import Path

from atomtwin.toolkit import schema as S

__all__ = ["HDF5_SIGNATURE", "clean_stale_temporaries", "is_atomtwin_zarr"]

_TMP_TAG = ".atomtwin-tmp."
_OLD_TAG = ".atomtwin-old."
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZARR_META = (".zgroup", ".zattrs", ".zmetadata", "zarr.json")


def _host() -> str:
    return socket.gethostname().replace(".", "_") or "host"


def _tmp_name(path: Path, tag: str = _TMP_TAG) -> Path:
    """``.<name>.atomtwin-tmp.<host>.<pid>.<random>`` beside ``path``."""
    return path.with_name(f".{path.name}{tag}{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that writes to ``path`` by processes of this host that no
    longer run left behind (e.g. a killed ``atomtwin convert``); return what was removed.
    Temporaries of running processes, and of other hosts (a shared file system), are kept.
    Those of atomtwin versions before 0.2 (``.<name>.<8 hex digits>.tmp``, no pid to check)
    are removed too: a killed convert left them behind, tens of MB each."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    legacy = re.compile(re.escape(f".{path.name}.") + r"[0-9a-f]{8}\.tmp")
    for p in [q for q in path.parent.iterdir() if legacy.fullmatch(q.name)]:
        _remove(p)
        removed.append(p)
    for tag in (_TMP_TAG, _OLD_TAG):
        prefix = f".{path.name}{tag}"
        for p in [q for q in path.parent.iterdir() if q.name.startswith(prefix)]:
            parts = p.name[len(prefix) :].split(".")
            if len(parts) != 3 or parts[0] != _host() or not parts[1].isdigit() or _alive(int(parts[1])):
                continue
            if tag == _OLD_TAG and not path.exists():
                continue  # the previous target, moved aside by a write killed before the rename
            _remove(p)
            removed.append(p)
    return removed


def is_atomtwin_zarr(path: str | os.PathLike) -> bool:
    """True for a folder that is a zarr store atomtwin wrote (group attributes carry
    ``atomtwin_version``) and holds nothing but zarr metadata and arrays."""
    import json

    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return False
    names = {p.name for p in path.iterdir()}
    if not names & {".zgroup", "zarr.json"}:
        return False
    try:
        if ".zattrs" in names:
            attrs = json.loads((path / ".zattrs").read_text())
        else:
            attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return False
    if S.VERSION not in attrs:
        return False
    for p in path.iterdir():
        if p.name in _ZARR_META:
            continue
        if not p.is_dir() or not any((p / m).exists() for m in (".zarray", "zarr.json")):
            return False
    return True


def _check_replaceable(path: Path, fmt: str, overwrite: bool) -> None:
    kind = "folder" if path.is_dir() else "file"
    if not overwrite:
        raise FileExistsError(f"'{path}' exists ({kind}); nothing was written. Fix: choose another name, "
                              "or pass overwrite=True (CLI --force) to replace a previous atomtwin output.")
    if path.is_symlink():
        ok = False
    elif fmt == "zarr":
        ok = is_atomtwin_zarr(path)
    else:
        try:
            with open(path, "rb") as fh:
                ok = path.is_file() and fh.read(8) == HDF5_SIGNATURE
        except OSError:
            ok = False
    if not ok:
        raise FileExistsError(f"'{path}' exists ({kind}) and is not a {fmt} store atomtwin wrote; "
                              "overwrite=True replaces only those. Fix: move it away or choose another name.")


def _replace(tmp: Path, path: Path) -> None:
    """Move the finished ``tmp`` to ``path``; a previous store there is moved aside first and
    removed after the rename (a kill in between leaves it under a recognisable name)."""
    if path.is_dir() and not path.is_symlink():
        old = _tmp_name(path, _OLD_TAG)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
