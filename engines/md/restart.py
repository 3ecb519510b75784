"""What an MD run finds at its output paths, and what it may do with it.

A run owns three paths, all named by its config: the trajectory ``output``, its
unfinished store ``output.partial`` (with the frame-count marker ``output.partial.frames``)
and the ``checkpoint``.  :func:`plan_start` decides, before anything is written:

* nothing there: start from step 0;
* ``resume``: continue from the checkpoint; without one (a run killed before its first
  checkpoint) start from step 0 after discarding only its own partial store, and say so;
* ``overwrite``: delete what an earlier run left at those paths (only stores and files that
  look like ours) and start from step 0;
* otherwise an earlier run's files are there: refuse, naming ``resume`` and ``overwrite`` (``--resume``, ``--force``).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

from atomtwin.toolkit.errors import InputError

__all__ = ["ResumeNotice", "discard", "plan_start"]

# written as API keywords: the CLI shows resume=True as --resume and overwrite=True as --force
_FIX = "resume=True to continue it, overwrite=True to start over (deleting it), or another `output:`"


class ResumeNotice(UserWarning):
    """What a run with ``resume`` did when there was nothing to resume from."""


def _partial(out: Path) -> Path:
    return Path(str(out) + ".partial")


def _zarr_store(path: Path) -> bool:
    names = {p.name for p in path.iterdir()}
    return not names or bool(names & {".zgroup", ".zattrs", "zarr.json", ".zmetadata"})


def _is_ours_partial(partial: Path) -> bool:
    """A partial store written by ``atomtwin md`` (or killed before its attributes)."""
    if not partial.is_dir() or not _zarr_store(partial):
        return False
    attrs = partial / ".zattrs"
    if not attrs.exists():
        return True  # killed while the store was being created
    try:
        source = json.loads(attrs.read_text()).get("source")
    except (OSError, ValueError):
        return True
    return source in (None, "atomtwin md")


def _is_trajectory(path: Path) -> bool:
    if path.is_dir():
        return _zarr_store(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    return magic.startswith((b"\x89HDF\r\n\x1a\n", b"CDF"))


def discard(out: Path, checkpoint: Path | None, *, finished: bool = True) -> list[str]:
    """Delete the run's own files: the partial store of ``out`` (and its marker) and, with
    ``finished``, ``out`` itself and ``checkpoint``.  Nothing is deleted (InputError) when
    one of them does not look like an MD output."""
    partial = _partial(out)
    if partial.exists() and not _is_ours_partial(partial):
        raise InputError(f"'{partial}' is not a partial store of atomtwin md; nothing was deleted. "
                         "Fix: move it away or choose another `output:`.")
    if finished and out.exists() and not _is_trajectory(out):
        raise InputError(f"'{out}' is not a trajectory (netCDF/zarr); nothing was deleted. "
                         "Fix: move it away or choose another `output:`.")
    removed = []
    if partial.exists():
        shutil.rmtree(partial)
        removed.append(str(partial))
    Path(str(partial) + ".frames").unlink(missing_ok=True)
    if finished and out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
        removed.append(str(out))
    if finished and checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
        removed.append(str(checkpoint))
    return removed


def _frames(partial: Path) -> int | None:
    try:
        return int(Path(str(partial) + ".frames").read_text())
    except (OSError, ValueError):
        return None


def plan_start(out: Path, checkpoint: Path | None, *, resume: bool, overwrite: bool) -> bool:
    """Prepare the output paths; True when the run continues from ``checkpoint``.

    Raises
    ------
    InputError
        An earlier run's files are there and neither ``resume`` nor ``overwrite`` is given;
        or ``resume`` finds a finished trajectory it cannot extend.
    """
    partial = _partial(out)
    has_ckpt = checkpoint is not None and checkpoint.exists()
    if overwrite and resume:
        raise InputError("resume=True and overwrite=True contradict each other. Fix: give one of them.")
    if overwrite:
        removed = discard(out, checkpoint)
        if removed:
            warnings.warn(f"overwrite=True: deleted the earlier run's {', '.join(removed)}; starting from step 0.",
                          ResumeNotice, stacklevel=3)
        return False
    if resume:
        if has_ckpt:
            if not partial.exists() and out.exists():
                raise InputError(
                    f"'{out}' is a finished trajectory: the run it belongs to ended. Fix: choose a new "
                    "`output:` (and `checkpoint:`) to extend it, or overwrite=True to redo it.")
            return True
        if out.exists() and not partial.exists():
            raise InputError(
                f"'{out}' is a finished trajectory and there is no checkpoint "
                f"{'configured' if checkpoint is None else repr(str(checkpoint))} to continue from. "
                "Fix: overwrite=True to redo it, or choose another `output:`.")
        where = "no `checkpoint:` is configured" if checkpoint is None else f"no checkpoint at '{checkpoint}'"
        if partial.exists():
            n = _frames(partial)
            discard(out, None, finished=False)
            what = f"discarded its partial store '{partial}' ({n if n is not None else 'no complete'} frames)"
            warnings.warn(f"resume=True: {where} (the run stopped before its first checkpoint): "
                          f"{what} and starting from step 0.", ResumeNotice, stacklevel=3)
        else:
            warnings.warn(f"resume=True: {where} and no earlier output: starting from step 0.",
                          ResumeNotice, stacklevel=3)
        return False
    found = [str(p) for p in (out, partial, checkpoint) if p is not None and p.exists()]
    if found:
        what = "a finished trajectory" if out.exists() else "an unfinished run"
        raise InputError(f"'{found[0]}' holds {what} from an earlier run ({', '.join(found)}). Fix: {_FIX}.")
    return False
