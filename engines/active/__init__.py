"""Active learning: build a potential from any reference calculator, on the fly.

>>> from atomtwin.engines.active import learn           # doctest: +SKIP
>>> res = learn("learn.yaml"); res.model, res.dataset   # doctest: +SKIP

Modules: :mod:`.uncertainty` (committee and last-layer GP estimators), :mod:`.calibration`
(recalibration and its report), :mod:`.selection` (offline selection from a pool),
:mod:`.references` (reference calls that may fail), :mod:`.walkers` and :mod:`.loop` (the
on-the-fly loop), :mod:`.state` (what a run keeps on disk), :mod:`.config`, :mod:`.cli`.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "learn": "atomtwin.engines.active.loop",
    "LearnResult": "atomtwin.engines.active.loop",
    "LearnConfig": "atomtwin.engines.active.config",
    "load_config": "atomtwin.engines.active.config",
    "Committee": "atomtwin.engines.active.uncertainty",
    "LastLayerGP": "atomtwin.engines.active.uncertainty",
    "Calibration": "atomtwin.engines.active.calibration",
    "calibration_report": "atomtwin.engines.active.calibration",
    "select_frames": "atomtwin.engines.active.selection",
    "Reference": "atomtwin.engines.active.references",
    "ReferenceFailures": "atomtwin.engines.active.references",
    "make_calculator": "atomtwin.engines.active.references",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'atomtwin.engines.active' has no attribute '{name}'")
