"""Package data of atomtwin (shipped models and small trajectories), found with
:func:`atomtwin.data.path` after any install; each folder's README gives provenance and hashes."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def path(*parts: str) -> Path:
    """Filesystem path of a shipped file, e.g. ``path("demo", "model.ckpt")``.

    Found through :mod:`importlib.resources`, so it works after a regular, editable or
    wheel install alike (atomtwin is not installed zipped).
    """
    return Path(str(resources.files(__name__).joinpath(*parts)))
