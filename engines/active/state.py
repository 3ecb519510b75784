"""What an active-learning run keeps on disk, each file written atomically.

``output_dir/``

* ``state.pt`` — the run's single source of truth, replaced atomically at the end of every
  round: the committee's weights, the walkers' MD states, the labelled frames with their
  provenance, the call log, the calibration and the learning curve.  A run killed
  anywhere resumes from the last one.
* ``calls/NNNNNN.json`` — each reference result (success or failure) as soon as it returns,
  keyed by the call's index and a hash of its structure.  A resumed run recomputes the
  interrupted round deterministically and takes these results instead of calling the
  reference again: no call is repeated, none is lost.
* ``dataset.extxyz``, ``model.ckpt`` (member 0; ``atomtwin compile`` takes it),
  ``committee/member-K.ckpt``, ``calls.csv``, ``learning_curve.csv`` — derived views,
  rewritten from the state at every round.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from atomtwin.engines.active.references import Label
from atomtwin.engines.md.state import MDState
from atomtwin.toolkit.errors import FileFormatError, InputError

__all__ = [
    "STATE_FORMAT",
    "atomic_write_bytes",
    "atomic_write_text",
    "save_state",
    "load_state",
    "structure_hash",
    "CallCache",
    "write_dataset",
    "write_csv",
    "state_to_dict",
    "state_from_dict",
]

STATE_FORMAT = "atomtwin-active-state"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def structure_hash(numbers: np.ndarray, pos: np.ndarray, cell: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (
        np.asarray(numbers, np.int64),
        np.asarray(pos, np.float64),
        np.asarray(cell, np.float64),
    ):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:32]


def state_to_dict(s: MDState) -> dict[str, Any]:
    return {f.name: getattr(s, f.name) for f in fields(s)}


def state_from_dict(d: dict[str, Any]) -> MDState:
    d = dict(d)
    d["pbc"] = tuple(bool(x) for x in d["pbc"])
    d["species"] = tuple(str(x) for x in d["species"])
    return MDState(**d)


def save_state(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` of plain data and tensors, atomically."""
    import io

    buf = io.BytesIO()
    torch.save({"format": STATE_FORMAT, "version": 1, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise FileFormatError(
            path,
            f"cannot read the active-learning state ({type(err).__name__})",
            "start over with --force",
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
        raise FileFormatError(
            path, "is not an atomtwin active-learning state", "point output_dir elsewhere"
        )
    return obj


class CallCache:
    """Reference results on disk, one JSON file per call index."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.reused = 0

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.json"

    def get(self, index: int, key: str) -> Label | None:
        p = self._path(index)
        if not p.exists():
            return None
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, OSError):
            return None
        if d.get("hash") != key:
            raise InputError(
                f"call {index}: the structure recomputed on resume differs from the one the "
                f"reference labelled before ({p}). The run is not reproducible here (another "
                "torch build or thread count?). Fix: resume with the settings of the first run, "
                "or start over with --force."
            )
        self.reused += 1
        return Label.from_dict(d["label"])

    def put(self, index: int, key: str, label: Label, meta: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self._path(index),
            json.dumps({"index": index, "hash": key, **meta, "label": label.to_dict()}),
        )


def write_dataset(path: Path, frames: list[dict[str, Any]]) -> None:
    """Labelled frames with their provenance (``info``) as extended XYZ, atomically."""
    import io

    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    images = []
    for fr in frames:
        a = Atoms(numbers=fr["numbers"], positions=fr["pos"], cell=fr["cell"], pbc=fr["pbc"])
        a.info.update({k: v for k, v in fr.get("info", {}).items() if v is not None})
        kw = {"energy": fr["energy"], "forces": fr["forces"]}
        if "stress" in fr:
            s = np.asarray(fr["stress"])
            kw["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        a.calc = SinglePointCalculator(a, **kw)
        images.append(a)
    buf = io.StringIO()
    ase.io.write(buf, images, format="extxyz")
    atomic_write_text(Path(path), buf.getvalue())


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(Path(path), buf.getvalue())
