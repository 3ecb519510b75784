"""summarize(): environment cluster fractions as order parameters; coexistence slabs."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from atomtwin.toolkit import make_dataset
from atomtwin.toolkit.phases import summarize


class _Halves:
    """Labels a quarter of the atoms 1, one atom noise (-1), the rest 0 (a stand-in for a
    fitted EnvironmentClassifier: summarize needs only ``predict(ds) -> (frame, atom)``)."""

    def predict(self, ds):
        import xarray as xr

        n = ds.sizes["atom"]
        lab = np.zeros((ds.sizes["frame"], n), int)
        lab[:, : n // 4] = 1
        lab[:, -1] = -1
        return xr.DataArray(lab, dims=("frame", "atom"))


def test_environment_fractions_enter_the_feature_vector(rng):
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((3, 3, 3))
    x0 = atoms.positions
    nf = 12
    pos = x0 + rng.normal(0, 0.05, (nf, *x0.shape))
    ds = make_dataset(pos, atoms.get_chemical_symbols(), cell=atoms.cell[:], time=np.arange(nf) * 0.1)
    s = summarize(ds, cutoff=4.5, environments=_Halves())
    n = len(atoms)
    # exact counts: n/4 in cluster 1, one noise atom, the rest in 0; rows sum to one
    assert float(s.env_fraction_1) == (n // 4) / n
    assert float(s.env_fraction_noise) == 1 / n
    assert abs(float(s.env_fraction_0 + s.env_fraction_1 + s.env_fraction_noise) - 1) < 1e-12
    # a rattled fcc crystal: solid by q̄6, 12 neighbours, not diffusing (D ~ 0 against a
    # liquid's ~ 0.1-1 Å²/ps; the 0.05 Å rattle gives |D| << 1e-2)
    assert float(s.solid_fraction) == 1.0
    assert float(s.coordination) == 12.0
    assert abs(float(s.diffusion)) < 1e-2
