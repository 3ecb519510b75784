"""Package data of atomtwin (shipped models and small trajectories), found with
:func:`path` after any install; each folder's README gives the provenance.

Every shipped model file has its SHA-256 in ``SHA256SUMS`` beside this module (the format
of ``sha256sum``, paths relative to this folder: ``cd data && sha256sum -c SHA256SUMS``);
:func:`verified_path` checks a file against it before use.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

__all__ = ["path", "sha256", "expected_sha256", "verified_path", "MANIFEST"]

#: the manifest of SHA-256 sums, ``<hex>  <relative/path>`` per line
MANIFEST = "SHA256SUMS"


def path(*parts: str) -> Path:
    """Filesystem path of a shipped file, e.g. ``path("li_argyrodite", "model.ckpt")``.

    Found through :mod:`importlib.resources`, so it works after a regular, editable or
    wheel install alike (atomtwin is not installed zipped).
    """
    return Path(str(resources.files(__name__).joinpath(*parts)))


def sha256(file: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest() -> dict[str, str]:
    out = {}
    for line in path(MANIFEST).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            out[name.lstrip("*")] = digest
    return out


def expected_sha256(*parts: str) -> str | None:
    """The SHA-256 that ``SHA256SUMS`` records for a shipped file (None if not listed)."""
    return _manifest().get("/".join(parts))


def verified_path(*parts: str, fix: str | None = None) -> Path:
    """:func:`path` of a shipped file after checking that it exists and that its SHA-256 is
    the one in ``SHA256SUMS``.

    Raises
    ------
    atomtwin.toolkit.errors.InputError
        The file is missing, not listed, or its bytes differ from the recorded ones; the
        message names the file, both digests and ``fix`` (default: reinstall atomtwin).
    """
    from atomtwin.toolkit.errors import InputError, with_fix

    fix = fix or "reinstall atomtwin (pip install --force-reinstall atomtwin)."
    name = "/".join(parts)
    file = path(*parts)
    if not file.is_file():
        raise InputError(with_fix(f"shipped file '{file}' is missing.", fix))
    want = expected_sha256(*parts)
    if want is None:
        raise InputError(with_fix(f"shipped file '{name}' has no SHA-256 in {path(MANIFEST)}.", fix))
    got = sha256(file)
    if got != want:
        raise InputError(with_fix(
            f"shipped file '{file}' has SHA-256 {got[:16]}..., not the recorded "
            f"{want[:16]}... ({MANIFEST}): it was changed or damaged.", fix))
    return file
