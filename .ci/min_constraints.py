"""Print pip constraints pinning every dependency of atomtwin to its stated floor.

``python .ci/min_constraints.py [EXTRAS]`` reads ``pyproject.toml`` and prints
``name==floor`` for each ``name>=floor`` requirement of the core and of the comma-separated
EXTRAS (default ``engines,test``), for ``make test-min``: the unit tests then run on the
lowest versions the package claims.  Two exceptions, printed with a comment: torch keeps
the version of ``constraints.txt`` (the only torch wheel the project's machines carry; older
ones are multi-GB CUDA downloads), and ``triton`` (the ``kernels`` extra) is left out.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)\s*$")
KEEP_FROM_CONSTRAINTS = {"torch"}
LEFT_OUT = {"triton"}


def floors(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += [r for r in project["optional-dependencies"][extra] if not r.startswith("atomtwin")]
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pinned[name.strip().lower()] = version.strip()
    out = []
    for req in reqs:
        m = REQ.match(req)
        if m is None:
            raise SystemExit(f"pyproject.toml: requirement '{req}' has no '>=' floor; state one.")
        name = m.group(1)
        if name.lower() in LEFT_OUT:
            out.append(f"# {name}: left out (the kernel tests skip without it)")
        elif name.lower() in KEEP_FROM_CONSTRAINTS:
            out.append(f"{name}=={pinned[name.lower()]}  # floor {m.group(3)}: kept at constraints.txt")
        else:
            out.append(f"{name}=={m.group(3)}")
    return out


if __name__ == "__main__":
    extras = (sys.argv[1] if len(sys.argv) > 1 else "engines,test").split(",")
    print("\n".join(floors([e for e in extras if e])))
