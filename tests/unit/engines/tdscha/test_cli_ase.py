"""The CLI commands and a real crystal through an ASE calculator (EMT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atomtwin.engines.tdscha import (
    ASEProvider,
    EnsembleAverager,
    SingleCyclePulse,
    System,
    run_classical,
    run_tdscha,
    scha,
)
from atomtwin.toolkit.cli import main


def test_cli_scha_and_tdscha(tmp_path, capsys):
    cfg = tmp_path / "q.yaml"
    cfg.write_text("model: {kind: quartic, k: 0.6, quartic: 0.5}\ntemperature: 100\n"
                   "tdscha: {dt: 0.0005, n_steps: 40, output_every: 10}\n"
                   "pulse: {kind: single_cycle, amplitude: 0.3, t0: 0.01, width: 0.005}\n"
                   f"classical: true\noutput: {tmp_path / 'q.nc'}\n")
    assert main(["scha", str(cfg), "--json", "--out", str(tmp_path / "s.nc")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] and len(out["frequencies_THz"]) == 1
    assert main(["tdscha", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 5 and (tmp_path / "q.nc").exists() and (tmp_path / "q.classical.nc").exists()
    import xarray as xr

    with xr.open_dataset(tmp_path / "q.nc", engine="h5netcdf") as ds:
        assert {"centroid", "A", "B", "C", "mode_energy", "field"} <= set(ds.variables)


def test_cli_bad_config(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: {kind: quartic}\ntdscha: {dt: 0.0005, nsteps: 4}\n")
    assert main(["tdscha", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "tdscha.nsteps: unknown key" in err and "did you mean 'n_steps'" in err
    cfg.write_text("model: {kind: ase, structure: x.xyz}\n")
    assert main(["scha", str(cfg)]) == 2
    assert "exact averages need a polynomial model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cu_crystal():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)  # 4 atoms
    z = np.array([np.eye(3) * (1.0 if i % 2 else -1.0) for i in range(4)])  # acoustic sum rule
    return atoms, EMT(), z


def test_ase_crystal_scha_and_tdscha(cu_crystal):
    atoms, calc, z = cu_crystal
    s = System.from_atoms(atoms, z)
    assert s.n_reduced == s.n - 3  # rigid translations removed for a periodic cell
    prov = ASEProvider(atoms, calc)
    from atomtwin.engines.tdscha.scha import _harmonic_phi

    harm = np.sqrt(np.linalg.eigvalsh(_harmonic_phi(s, np.zeros(s.n), None, prov))) / (2 * np.pi)
    res = scha(s, 300.0, provider=prov, n_configs=16, rng=0, tol=5e-2, max_iter=6, fix_centroid=True)
    # Cu is weakly anharmonic: at 300 K the SCHA frequencies of this cell (Gamma and X
    # phonons) stay within 10% of the harmonic ones (measured shift ~1-3%, plus the noise of
    # 16 configurations with the harmonic control variate)
    np.testing.assert_allclose(res.frequencies, harm, rtol=0.1)
    assert res.stress is not None and res.stress.shape == (3, 3)
    pulse = SingleCyclePulse(amplitude=0.05, t0=0.02, width=0.01)
    avg = EnsembleAverager(prov, s, 16, rng=1, phi_ref=res.phi)
    ds = run_tdscha(s, res.state(), avg, 2e-3, 20, pulse=pulse)
    # schema trajectory fields for the toolkit, stress, and energy balance E - W conserved
    # to 1e-3 eV (Verlet error (w dt)^2 ~ 1e-3 of the ~0.1 eV fluctuation energy)
    from atomtwin.toolkit.schema import validate

    validate(ds, require=("cell",))
    assert ds.stress.shape == (21, 3, 3)
    e = ds.energy.values - ds.work.values
    assert np.abs(e - e[0]).max() < 1e-3
    # zero net Born charge: the field exerts no net force, the centre of mass does not move
    m = s.masses.reshape(-1, 3)[:, 0]
    com = np.einsum("a,fai->fi", m, ds.positions.values) / m.sum()
    np.testing.assert_allclose(com - com[0], 0.0, atol=1e-10)
    cl = run_classical(s, prov, 2e-3, 20, pulse=pulse)
    assert np.abs(cl.energy.values - cl.work.values - cl.energy.values[0]).max() < 1e-3
