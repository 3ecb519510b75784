"""``python -m atomtwin.toolkit.cli ...``: the ``atomtwin`` command without its console script
(for environments where the entry point is not on PATH)."""

from __future__ import annotations

import sys

from atomtwin.toolkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
