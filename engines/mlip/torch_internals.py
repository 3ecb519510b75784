"""The private torch APIs that compiling needs, in one place and version-checked.

Compiled training (:mod:`~atomtwin.engines.mlip.train_compile`) and the AOTInductor export
(:mod:`~atomtwin.engines.mlip.compile`, :mod:`~atomtwin.engines.mlip.compiled`) need parts of
torch that have no public, stable API yet: dynamo/functorch/inductor config switches, dynamo's
graph-break counters, the AOTInductor packaging functions and ``make_fx``.  Every use goes
through this module, which resolves them by name and, on a torch where one is missing or
renamed, raises :class:`TorchInternalsError` naming the attribute, the installed torch, the
versions these were checked with and the fix, instead of an ``AttributeError`` deep inside a
compile.

Checked with torch :data:`CHECKED_TORCH` (the test suite's ``test_compile*.py`` and
``test_torch_internals.py``); update the range after running them on another torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

__all__ = [
    "CHECKED_TORCH", "TorchInternalsError", "aoti_compile_and_package", "aoti_load_package",
    "dynamo_config", "dynamo_counters", "dynamo_reset", "functorch_config", "inductor_config",
    "make_fx", "require", "tracing",
]

#: torch versions (``major.minor``, inclusive) every attribute below was checked with
CHECKED_TORCH = ("2.13", "2.13")

#: every private name used, resolved by :func:`require` (module path, attribute path)
NAMES = {
    "dynamo_config": ("torch._dynamo", "config"),
    "dynamo_counters": ("torch._dynamo.utils", "counters"),
    "dynamo_reset": ("torch._dynamo", "reset"),
    "functorch_config": ("torch._functorch", "config"),
    "inductor_config": ("torch._inductor", "config"),
    "aoti_compile_and_package": ("torch._inductor", "aoti_compile_and_package"),
    "aoti_load_package": ("torch._inductor", "aoti_load_package"),
    "make_fx": ("torch.fx.experimental.proxy_tensor", "make_fx"),
    "get_proxy_mode": ("torch.fx.experimental.proxy_tensor", "get_proxy_mode"),
}


class TorchInternalsError(RuntimeError):
    """This torch lacks a private API the compile path needs (another torch version)."""


def _fix() -> str:
    lo, hi = CHECKED_TORCH
    span = lo if lo == hi else f"{lo} to {hi}"
    return (f"checked with torch {span}; this is torch {torch.__version__}. Fix: install a "
            f"checked torch (pip install 'torch=={hi}.*'), or use the eager model (load the "
            "checkpoint instead of a compiled package; make_train_step(compile=False)).")


def require(name: str) -> Any:
    """The object registered under ``name`` in :data:`NAMES`, or a :class:`TorchInternalsError`."""
    module, attr = NAMES[name]
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise TorchInternalsError(f"torch has no `{module}.{attr}` ({e}); compiling needs it: "
                                  + _fix()) from None
    return obj


def _patch(name: str, options: dict[str, Any]) -> AbstractContextManager:
    config = require(name)
    module, attr = NAMES[name]
    for key in options:
        head = key.split(".")[0]
        if not hasattr(config, head):
            raise TorchInternalsError(f"torch has no config option `{module}.{attr}.{key}`; "
                                      "compiling sets it: " + _fix())
    return config.patch(options)


def dynamo_config(**options: Any) -> AbstractContextManager:
    """Context manager: ``torch._dynamo.config.patch(**options)`` with every key checked."""
    return _patch("dynamo_config", options)


def functorch_config(**options: Any) -> AbstractContextManager:
    """Context manager: ``torch._functorch.config.patch(**options)`` with every key checked."""
    return _patch("functorch_config", options)


def inductor_config(options: dict[str, Any]) -> AbstractContextManager:
    """Context manager: ``torch._inductor.config.patch(options)`` (dotted keys allowed)."""
    return _patch("inductor_config", options)


def dynamo_counters():
    """dynamo's counters (``counters["graph_break"]``: graph breaks by reason)."""
    return require("dynamo_counters")


def dynamo_reset() -> None:
    """Forget every compiled graph and guard (``torch._dynamo.reset()``)."""
    require("dynamo_reset")()


def make_fx(fn: Callable, *, tracing_mode: str = "symbolic", allow_non_fake_inputs: bool = False):
    """``make_fx`` of ``fn`` (a callable that traces ``fn`` on example inputs into an FX graph)."""
    return require("make_fx")(fn, tracing_mode=tracing_mode, _allow_non_fake_inputs=allow_non_fake_inputs)


def aoti_compile_and_package(exported, package_path: str, inductor_configs: dict | None = None) -> str:
    """Compile an exported program with AOTInductor into a ``.pt2`` package at ``package_path``."""
    return require("aoti_compile_and_package")(exported, package_path=package_path,
                                                inductor_configs=inductor_configs or {})


def aoti_load_package(path: str, device_index: int = -1):
    """Load a ``.pt2`` package (the runner that calls the compiled model)."""
    return require("aoti_load_package")(path, device_index=device_index)


def tracing() -> bool:
    """True while torch.compile, torch.export or ``make_fx`` (the AOTInductor route) traces
    the caller; eager-only code paths (hand-written autograd functions that trade time for
    memory) then step aside for the plain ops, whose buffers the compiler plans.  On a torch
    without ``get_proxy_mode`` a ``make_fx`` trace is not seen, which is still correct: the
    hand-written functions trace too, only the graph differs."""
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return True
    try:
        return require("get_proxy_mode")() is not None
    except TorchInternalsError:
        return False
