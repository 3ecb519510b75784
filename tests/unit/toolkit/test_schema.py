from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit import schema as S

import atomtwin


def _ds(rng, nf=4, na=5):
    return atomtwin.toolkit.make_dataset(
        rng.random((nf, na, 3)) * 5, ["Li", "Li", "S", "P", "Cl"], cell=np.eye(3) * 5,
        time=np.arange(nf) * 0.01,
    )


def test_make_dataset_follows_schema(rng):
    ds = _ds(rng)
    assert ds[S.POSITIONS].dims == (S.FRAME, S.ATOM, S.XYZ)
    assert ds[S.POSITIONS].attrs["units"] == "Å"
    assert ds.attrs[S.TIMESTEP] == pytest.approx(0.01)
    np.testing.assert_allclose(ds[S.MASS].values[0], 6.94, atol=0.01)


def test_validate_names_variable_and_dims(rng):
    ds = _ds(rng).transpose(S.ATOM, S.FRAME, S.XYZ, ...)
    with pytest.raises(S.SchemaError, match=r"'positions' has dims \('atom', 'frame', 'xyz'\)"):
        S.validate(ds)


def test_validate_nonmonotonic_time(rng):
    ds = _ds(rng)
    ds = ds.assign_coords(time=("frame", [0.0, 0.02, 0.01, 0.03]))
    with pytest.raises(S.SchemaError, match="not strictly increasing.*frame 2"):
        S.validate(ds)


def test_validate_nan_positions(rng):
    ds = _ds(rng)
    ds[S.POSITIONS][2, 3, 1] = np.nan
    with pytest.raises(S.SchemaError, match="frame 2, atom 3"):
        S.validate(ds, check_finite=True)


def test_unknown_species_is_named(rng):
    with pytest.raises(S.SchemaError, match=r"unknown chemical symbols \['Xx'\]"):
        atomtwin.toolkit.make_dataset(rng.random((1, 2, 3)), ["Li", "Xx"])


def test_accessor_select_and_missing_species(rng):
    ds = _ds(rng)
    assert ds.atoms.select("Li").sizes[S.ATOM] == 2
    with pytest.raises(S.SchemaError, match=r"species \['Na'\] not in the trajectory"):
        ds.atoms.select("Na")
