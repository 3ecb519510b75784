"""Importing and using ``atomtwin.toolkit.plot`` never changes matplotlib's backend.

A Jupyter kernel runs with ``module://matplotlib_inline.backend_inline``; on a remote machine
there is no ``DISPLAY``.  If the plot package switched to Agg there (as it once did), the
notebook would show no figure.  Each case runs in a fresh interpreter, because the backend
is chosen once per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

INLINE = "module://matplotlib_inline.backend_inline"

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    import matplotlib
    backend = sys.argv[1]
    if sys.argv[2] == "use":
        matplotlib.use(backend)
    before = matplotlib.get_backend()

    import atomtwin.toolkit.plot as plot
    for mod in pkgutil.iter_modules(plot.__path__):
        importlib.import_module(f"atomtwin.toolkit.plot.{mod.name}")
    fig, ax = plot.new_figure("single")   # activates the style, creates a pyplot figure
    ax.plot([0, 1], [0, 1])
    print(before)
    print(matplotlib.get_backend())
    """
)


def _run(backend: str, how: str) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("MPLBACKEND", None)
    if how == "env":
        env["MPLBACKEND"] = backend
    out = subprocess.run([sys.executable, "-c", SCRIPT, backend, how], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.split()[-2:]
    return before, after


@pytest.mark.parametrize("how", ["env", "use"])
@pytest.mark.parametrize("backend", [INLINE, "svg", "template"])
def test_plot_import_keeps_backend(backend, how):
    if backend == INLINE:
        pytest.importorskip("matplotlib_inline")
    before, after = _run(backend, how)
    assert before.lower() == backend.lower()
    assert after == before, f"importing atomtwin.toolkit.plot switched {before} to {after}"
