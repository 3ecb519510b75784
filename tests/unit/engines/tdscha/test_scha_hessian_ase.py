"""The free-energy Hessian of a real crystal through an ASE calculator (EMT copper)."""

from __future__ import annotations

import numpy as np
from atomtwin.engines.tdscha import ASEProvider, System, free_energy_hessian, scha
from atomtwin.engines.tdscha.scha import _harmonic_phi


def test_emt_copper_free_energy_hessian():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)  # 4 atoms, 9 modes without translations
    s = System.from_atoms(atoms)
    prov = ASEProvider(atoms, EMT())
    res = scha(s, 50.0, provider=prov, n_configs=64, rng=0, tol=1e-3, fix_centroid=True, n_jackknife=4)
    assert res.converged
    ds = free_energy_hessian(res, provider=prov, n_configs=256, rng=1, n_jackknife=8)
    f, fa, fe = ds["frequency"].values, ds["auxiliary_frequency"].values, ds["frequency_error"].values
    # Cu at 50 K is nearly harmonic: the bubble/D4 corrections are a few per cent at most, and
    # the jackknife error is finite and small against the frequencies (~4-7 THz)
    assert f.shape == (9,) and np.all(np.isfinite(fe)) and np.all(fe < 0.2)
    assert np.all(np.abs(f - fa) < 0.05 * fa + 4 * fe)
    # and close to the harmonic phonons of the same cell
    wh = np.sqrt(np.clip(np.linalg.eigvalsh(_harmonic_phi(s, np.zeros(s.n), None, prov)), 0, None)) / (2 * np.pi)
    assert np.allclose(np.sort(f), wh, rtol=0.1)
    # the Cartesian Hessian obeys the acoustic sum rule (translations are outside the basis)
    H = ds["hessian"].values
    assert np.abs(H.reshape(4, 3, 4, 3).sum(axis=2)).max() < 1e-8 * np.abs(H).max()
