"""atomtwin: turn atomistic simulations into findings.

Two layers, imported by their full names:

- :mod:`atomtwin.toolkit` analyses any trajectory stored as an ``xarray.Dataset``;
- :mod:`atomtwin.engines` runs simulations (equivariant potentials, MD, SCHA/TD-SCHA) and
  writes that same schema.

The everyday calls are here too: :func:`read`, :func:`open`, :func:`write`, :func:`unwrap`
(loaded on first use, so ``import atomtwin`` stays cheap).
"""

from __future__ import annotations

__version__ = "0.2.0"

_EVERYDAY = {
    "read": "atomtwin.toolkit.io",
    "open": "atomtwin.toolkit.io",
    "write": "atomtwin.toolkit.io",
    "TrajectoryWriter": "atomtwin.toolkit.io",
    "unwrap": "atomtwin.toolkit.geometry",
    "wrap": "atomtwin.toolkit.geometry",
    "validate": "atomtwin.toolkit.schema",
    "make_dataset": "atomtwin.toolkit.schema",
    "SchemaError": "atomtwin.toolkit.schema",
}

__all__ = ["__version__", *_EVERYDAY]


def __getattr__(name: str):
    if name in _EVERYDAY:
        from importlib import import_module

        import_module("atomtwin.toolkit")  # registers the ds.atoms accessor
        value = getattr(import_module(_EVERYDAY[name]), name)
        globals()[name] = value
        return value
    if name in ("toolkit", "engines", "data"):
        from importlib import import_module

        return import_module(f"atomtwin.{name}")
    raise AttributeError(f"module 'atomtwin' has no attribute '{name}'")


def __dir__():
    return sorted([*__all__, "toolkit", "engines"])
