"""A regular (non-editable) install of atomtwin, used from outside the repository.

The wheel is built from the source tree (``pip wheel --no-deps .``) and installed into a
fresh virtual environment; the heavy dependencies (torch, xarray, ...) are not downloaded
again but made visible through a ``.pth`` line naming the test interpreter's site-packages
(a plain path line, so the ``.pth`` files there, among them atomtwin's editable finder, are
not run).  Every command runs from a folder outside the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(python of the fresh venv with the wheel installed, a working folder outside the repo)."""
    tmp = tmp_path_factory.mktemp("install")
    wheels = tmp / "wheels"
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "-w", str(wheels), str(ROOT)], cwd=tmp)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = wheels.glob("atomtwin-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp).stdout.strip())
    (site / "zz_base_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=tmp)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    work = tmp / "elsewhere"
    work.mkdir()
    return py, work


@pytest.mark.slow
def test_shipped_data_is_package_data(installed):
    py, work = installed
    code = ("import json, atomtwin, atomtwin.data as d; "
            "print(json.dumps([atomtwin.__file__, str(d.path('li_argyrodite', 'model.ckpt')), "
            "d.sha256(d.path('li_argyrodite', 'model.ckpt')), "
            "d.expected_sha256('li_argyrodite', 'model.ckpt'), "
            "[str(d.verified_path(*line.split()[1].split('/'))) "
            "for line in d.path('SHA256SUMS').read_text().splitlines()]]))")
    r = _run([str(py), "-c", code], cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    pkg, model, got, want, listed = json.loads(r.stdout)
    site = str(py.parents[1])
    # the installed package, not the source tree, and its data inside site-packages
    assert pkg.startswith(site) and "site-packages" in pkg, pkg
    assert model.startswith(site) and "site-packages" in model and Path(model).is_file(), model
    assert got == want
    # every file of the manifest was installed with its recorded bytes
    assert len(listed) >= 7 and all(p.startswith(site) for p in listed), listed


@pytest.mark.slow
def test_demo_model_stage_uses_shipped_model_without_training(installed):
    py, work = installed
    atomtwin_cli = py.parent / "atomtwin"
    out = work / "demo"
    r = _run([str(atomtwin_cli), "demo", "--small", "--out", str(out), "--until", "model"], cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    stages = json.loads(r.stdout)["stages"]
    assert stages["model"]["source"] == "atomtwin.data: li_argyrodite/model.ckpt"
    assert stages["model"]["species"] == ["Cl", "Li", "P", "S"]
    assert stages["structure"]["atoms"] == 158
    # the model in use is the shipped file, byte for byte, and no active learning ran
    shipped = _run([str(py), "-c", "import atomtwin.data as d; "
                    "print(d.path('li_argyrodite', 'model.ckpt'))"], cwd=work).stdout.strip()
    assert (out / "model" / "model.ckpt").read_bytes() == Path(shipped).read_bytes()
    assert not (out / "model" / "learning").exists()


@pytest.mark.slow
def test_generic_top_level_names_are_gone(installed):
    py, work = installed
    for name in ("toolkit", "engines", "data"):
        r = _run([str(py), "-c", f"import {name}"], cwd=work)
        assert r.returncode == 1 and f"No module named '{name}'" in r.stderr, (name, r.stderr[-500:])
    r = _run([str(py), "-c", "import atomtwin.toolkit, atomtwin.engines.mlip.model"], cwd=work)
    assert r.returncode == 0, r.stderr[-2000:]


def test_toolkit_imports_without_torch(tmp_path):
    """The core (analysis) package needs no torch: every toolkit module imports with torch,
    e3nn and triton made unimportable."""
    code = (
        "import sys, importlib, pkgutil\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'e3nn', 'triton'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import atomtwin, atomtwin.toolkit as tk, atomtwin.data\n"
        "mods = [m.name for m in pkgutil.walk_packages(tk.__path__, 'atomtwin.toolkit.')]\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "assert 'torch' not in sys.modules\n"
        "print(len(mods))\n"
    )
    r = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout) > 20
