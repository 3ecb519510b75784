"""atomtwin toolkit: analyses of any atomistic trajectory stored as an xarray Dataset.

The trajectory contract is :mod:`atomtwin.toolkit.schema`; read files with :func:`read` (eager) or
:func:`open` (lazy, dask-backed), store them with :func:`write`, and reach analyses
through the functions of the subpackages or the ``ds.atoms`` accessor.
"""

from __future__ import annotations

from atomtwin.toolkit import accessor as _accessor  # noqa: E402,F401  (registers ds.atoms)
from atomtwin.toolkit.geometry import unwrap, wrap  # noqa: E402
from atomtwin.toolkit.io import TrajectoryWriter, open, read, write  # noqa: E402,A004
from atomtwin.toolkit.schema import SchemaError, make_dataset, validate  # noqa: E402

from atomtwin import __version__  # noqa: E402

__all__ = [
    "SchemaError",
    "TrajectoryWriter",
    "__version__",
    "make_dataset",
    "open",
    "read",
    "unwrap",
    "validate",
    "wrap",
    "write",
]
