"""atomtwin toolkit: analyses of any atomistic trajectory stored as an xarray Dataset.

The trajectory contract is :mod:`toolkit.schema`; read files with :func:`read` (eager) or
:func:`open` (lazy, dask-backed), store them with :func:`write`, and reach analyses
through the functions of the subpackages or the ``ds.atoms`` accessor.
"""

from __future__ import annotations

__version__ = "0.1.0"

from toolkit import accessor as _accessor  # noqa: E402,F401  (registers ds.atoms)
from toolkit.geometry import unwrap, wrap  # noqa: E402
from toolkit.io import TrajectoryWriter, open, read, write  # noqa: E402,A004
from toolkit.schema import SchemaError, make_dataset, validate  # noqa: E402

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
