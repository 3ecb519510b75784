"""atomtwin engines: simulations that write the toolkit's trajectory schema.

``atomtwin.engines.mlip`` (equivariant potential), ``atomtwin.engines.md`` (molecular dynamics, including
multiple time steps), ``atomtwin.engines.tdscha`` (SCHA / TD-SCHA).  The engines import the
toolkit, never the reverse.
"""

from __future__ import annotations

from atomtwin import __version__

__all__ = ["__version__"]
