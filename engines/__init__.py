"""atomtwin engines: simulations that write the toolkit's trajectory schema.

``engines.mlip`` (equivariant potential), ``engines.md`` (molecular dynamics, including
multiple time steps), ``engines.tdscha`` (SCHA / TD-SCHA).  The engines import the
toolkit, never the reverse.
"""

from __future__ import annotations

from toolkit import __version__

__all__ = ["__version__"]
