"""AOTInductor package of a potential: same numbers as the eager model on sizes it was not
traced with, metadata inside, clear refusals.

One minimal model is compiled once per session: Allegro-style with one layer, l_max = 1
and two species, with ``kernel=True`` (it still runs every path of the export: the pair
track, the tensor contraction through the sparse op ``atomtwin::tp_sparse`` — a
``triton_op`` whose CPU implementation AOTInductor compiles into the package — per-species scale/shift, forces, stress and virial
with dynamic atom/edge/structure counts, the self-check and the metadata).  A cold
AOTInductor build takes ~1-2 min on 2 busy cores, so the package is kept on disk in the
pytest cache (``.pytest_cache/d/atomtwin-aoti``), keyed by the model hash, the torch and
atomtwin versions and the source of ``compile.py``/``compiled.py``, the kernels and the model
code (``model.py``, ``tp.py``, ``nn.py``, ``models/``); inductor's own cache
(``TORCHINDUCTOR_CACHE_DIR``) lives there too.  A changed model, torch or exporter makes a
new key, so a cached package is never tested against code it was not built by.

Tolerance: the package runs the same float64 operations as the eager model, fused and
reassociated by inductor; sums over <= ~50 edges per atom and a few hundred atoms give
differences of a few hundred ulp of the summed magnitudes, so 1e-9 relative to each
output's largest entry leaves 1000x margin while a wrong sign, missing term or wrong shape
would be O(1).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from atomtwin.engines.mlip import compile as compile_mod
from atomtwin.engines.mlip import compiled as compiled_mod
from atomtwin.engines.mlip.compile import example_graph, model_hash
from atomtwin.engines.mlip.compiled import CompiledCalculator, load_compiled, read_metadata
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.model import build_model, save_checkpoint

import atomtwin

TOL = 1e-9
# the kernels extra: without triton (make test-min leaves it out) the session's package is
# built on the reference path and the kernel-package checks are skipped
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="needs triton (the kernels extra)")


def _tiny():
    torch.manual_seed(0)
    cfg = ModelConfig(architecture="allegro", species=("Si", "O"), r_max=3.0, num_layers=1, lmax=1,
                      mul=2, latent=4, mlp_hidden=4, num_basis=2, dtype="float64")
    m = build_model(cfg)
    m.set_statistics(torch.tensor([-3.0, -1.5]), torch.tensor([0.7, 1.3]))
    return m


def _model_sources() -> list[Path]:
    """The code the package is traced from (its forward and backward), not only the exporter."""
    root = Path(compile_mod.__file__).parent
    return [root / "model.py", root / "tp.py", root / "nn.py", root / "torch_internals.py",
            *sorted((root / "models").glob("*.py"))]


def _cache_key(model) -> str:
    h = hashlib.sha256()
    kdir = Path(compile_mod.__file__).parent / "kernels"
    for part in (model_hash(model), str(HAS_TRITON), torch.__version__, atomtwin.engines.__version__,
                 Path(compile_mod.__file__).read_text(), Path(compiled_mod.__file__).read_text(),
                 (kdir / "sparse.py").read_text(), (kdir / "__init__.py").read_text(),
                 *[f.read_text() for f in _model_sources()]):
        h.update(part.encode())
    return h.hexdigest()[:20]


def _build_in_fresh_process(path: Path) -> dict:
    """``compile_model(_tiny(), path, kernel=True)`` in a new Python process (same weights:
    ``_tiny`` seeds its initialisation); returns the info dict and the warnings raised."""
    code = (
        "import importlib.util, json, warnings\n"
        f"spec = importlib.util.spec_from_file_location('_tc', {str(Path(__file__))!r})\n"
        "tc = importlib.util.module_from_spec(spec); spec.loader.exec_module(tc)\n"
        "import torch\n"
        "from atomtwin.engines.mlip.compile import compile_model\n"
        "# one build: precompiled headers only pay off over several builds\n"
        "with torch._inductor.config.patch({'aot_inductor.precompile_headers': False}):\n"
        "    with warnings.catch_warnings(record=True) as caught:\n"
        "        warnings.simplefilter('always')\n"
        "        # --kernel on CPU: the sparse op's CPU implementation compiled into the package\n"
        f"        info = compile_model(tc._tiny(), {str(path)!r}, device='cpu', "
        f"kernel={HAS_TRITON})\n"
        "print(json.dumps({'info': info, 'warnings': [str(w.message) for w in caught]}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, f"package build failed:\n{run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def package(request, tmp_path_factory):
    model = _tiny()
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    root = Path(cache.mkdir("atomtwin-aoti")) if cache is not None else tmp_path_factory.mktemp("atomtwin-aoti")
    key = _cache_key(model)
    cached, info_file = root / f"{key}.pt2", root / f"{key}.json"
    if cached.exists() and info_file.exists():
        return model, cached, json.loads(info_file.read_text())
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(root / "inductor")
    path = tmp_path_factory.mktemp("aoti") / "tiny.pt2"
    try:
        # built in a fresh interpreter, so the package does not depend on the torch state
        # other tests leave on this worker (it inherits the environment: with
        # MKL_NUM_THREADS=2, as in CI, inductor parallelises; see compile.py's cpp.simdlen)
        built = _build_in_fresh_process(path)
    finally:
        if old is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = old
    info = built["info"]
    assert not HAS_TRITON or any("--kernel on CPU" in w for w in built["warnings"])
    shutil.copyfile(path, cached)
    info_file.write_text(json.dumps(info))
    return model, cached, info


@pytest.mark.slow
def test_package_matches_eager_on_unseen_sizes(package):
    model, path, info = package
    assert max(info["self_check"].values()) <= TOL
    pot = load_compiled(path)
    for n, nstruct, seed in ((3, 1, 5), (17, 1, 6), (40, 3, 7)):  # traced with 12+13 atoms
        b = example_graph(model, n, seed=seed, n_struct=nstruct)
        ref = model(b)
        got = pot(b)
        for key in ("energy", "atom_energy", "forces", "stress", "virial"):
            assert got[key].shape == ref[key].shape, key
            scale = float(ref[key].abs().max())
            assert float((got[key] - ref[key]).abs().max()) <= TOL * scale, (key, n)


@pytest.mark.slow
def test_metadata_in_package(package):
    model, path, _ = package
    meta = read_metadata(path)
    assert meta["species"] == ["Si", "O"] and meta["r_max"] == 3.0
    assert meta["model_hash"] == model_hash(model)
    assert meta["atomtwin_version"] == atomtwin.engines.__version__
    assert meta["units"]["forces"] == "eV/Angstrom" and meta["units"]["stress"] == "eV/Angstrom^3"
    assert meta["device"] == "cpu" and meta["dtype"] == "float64"
    assert not HAS_TRITON or (meta["kernel"] is True and meta["kernel_impl"] == "torch-cpu")
    # the hash sees the weights: a perturbed model hashes differently
    other = _tiny()
    with torch.no_grad():
        next(other.parameters()).add_(1e-12)
    assert model_hash(other) != meta["model_hash"]


@pytest.mark.slow
def test_refuses_other_device_and_version(package, tmp_path):
    _, path, _ = package
    with pytest.raises(ValueError, match="compiled for 'cpu' and cannot run on 'cuda'"):
        load_compiled(path, device="cuda")
    bad = tmp_path / "old.pt2"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("metadata.json"):
                raw = json.loads(data)
                meta = json.loads(raw["atomtwin"])
                meta["atomtwin_version"] = "0.0.1"
                raw["atomtwin"] = json.dumps(meta)
                data = json.dumps(raw).encode()
            zout.writestr(item, data)
    with pytest.raises(ValueError, match="compiled by atomtwin 0.0.1"):
        load_compiled(bad)


def test_refuses_files_that_are_not_packages(tmp_path):
    f = tmp_path / "x.pt2"
    f.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an AOTInductor package"):
        load_compiled(f)
    with pytest.raises(FileNotFoundError):
        load_compiled(tmp_path / "missing.pt2")


def test_cli_refuses_cuda_without_cuda(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from atomtwin.toolkit.cli import main

    ck = tmp_path / "m.ckpt"
    save_checkpoint(ck, _tiny())
    assert main(["compile", str(ck), str(tmp_path / "m.pt2"), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "m.pt2").exists()


@pytest.mark.slow
def test_compiled_calculator_matches_eager_calculator(package):
    from ase import Atoms
    from atomtwin.engines.mlip.calculator import Calculator

    model, path, _ = package
    rng = np.random.default_rng(3)
    b = example_graph(model, 21, seed=9)
    sym = ["Si" if t == 0 else "O" for t in b["atom_types"].tolist()]
    atoms = Atoms(sym, positions=b["pos"].numpy() + rng.normal(0, 0.02, (21, 3)),
                  cell=b["cell"][0].numpy(), pbc=True)
    atoms.calc = Calculator(model)
    e_ref, f_ref, s_ref = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = CompiledCalculator(path)
    e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert abs(e - e_ref) <= TOL * abs(e_ref)
    assert np.abs(f - f_ref).max() <= TOL * np.abs(f_ref).max()
    assert np.abs(s - s_ref).max() <= TOL * np.abs(s_ref).max()


def test_export_keeps_the_sparse_op_as_one_node():
    """With the kernel switched on, the exported program calls ``atomtwin::tp_sparse`` (so the
    package below really contains the op's code, not the reference path)."""
    from atomtwin.engines.mlip.compile import EnergyAndGradients, _export, _inputs
    from atomtwin.engines.mlip.kernels import use_kernel

    model = _tiny()
    assert use_kernel(model, allow_cpu=True)
    for p in model.parameters():
        p.requires_grad_(False)
    ep = _export(EnergyAndGradients(model).eval(),
                 _inputs(example_graph(model, 12, seed=1, n_struct=2), torch.float64))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert any("tp_sparse" in t for t in targets), sorted(targets)


@pytest.mark.slow
@needs_triton
def test_kernel_package_runs_in_a_process_that_never_imports_the_kernels(package, tmp_path):
    """A fresh interpreter loads the --kernel package and evaluates forces equal to the
    eager model's (TOL), without ``atomtwin.engines.mlip.kernels`` ever being imported."""
    import subprocess
    import sys

    model, path, _ = package
    b = example_graph(model, 19, seed=12)
    ref = model(b)["forces"].detach()
    torch.save({"b": b, "f": ref}, tmp_path / "ref.pt")
    code = (
        "import sys, torch\n"
        "from atomtwin.engines.mlip.compiled import load_compiled\n"
        f"pot = load_compiled({str(path)!r})\n"
        f"d = torch.load({str(tmp_path / 'ref.pt')!r})\n"
        "f = pot(d['b'])['forces']\n"
        "assert not [m for m in sys.modules if m.endswith('mlip.kernels') or '.kernels.' in m]\n"
        "print(float((f - d['f']).abs().max() / d['f'].abs().max()))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout.strip().splitlines()[-1]) <= TOL
