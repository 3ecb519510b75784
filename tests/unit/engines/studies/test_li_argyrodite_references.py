"""Rattled reference environments and the CHGNet reference of the Li | Li6PS5Cl study."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.engines.studies.li_argyrodite.references import PHASES, reference_environments
from atomtwin.engines.studies.li_argyrodite.structures import einstein_sigma, reference_phases
from atomtwin.toolkit import schema as S


def test_reference_environments_rattled_at_temperature():
    envs = reference_environments(400.0, seed=1, n_frames=3)
    assert tuple(envs) == PHASES
    ideal = reference_phases()
    for name, ds in envs.items():
        S.validate(ds)
        assert ds.sizes["frame"] == 3 and ds.attrs["phase"] == name
        u = ds.positions.values - ideal[name].positions[None]
        li = np.asarray(ds.species.values) == "Li"
        # RMS Li displacement at 400 K, theta_E = 300 K: 0.18 Å; with >= 3 * 3 * 18 Li
        # components the standard error of the RMS is < 6 %, 20 % is > 3 sigma
        assert np.sqrt(np.mean(u[:, li] ** 2)) == pytest.approx(
            einstein_sigma(6.94, 400.0), rel=0.2
        ), name
    again = reference_environments(400.0, seed=1, n_frames=3)
    np.testing.assert_array_equal(again["Li2S"].positions.values, envs["Li2S"].positions.values)


@pytest.mark.slow
def test_chgnet_on_small_interface():
    pytest.importorskip("chgnet")
    from atomtwin.engines.studies.li_argyrodite.interface import small_interface
    from atomtwin.engines.studies.li_argyrodite.references import chgnet

    at = small_interface("chgnet", gap=3.0).atoms
    at.calc = chgnet()
    f = at.get_forces()
    assert np.isfinite(f).all() and np.isfinite(at.get_potential_energy())
    # the bulk-like start is near a minimum for CHGNet (its own lattice constants, no
    # atoms closer than in the bulks): no force near the ~10 eV/Å of overlapping atoms
    assert np.abs(f).max() < 5.0


def test_shipped_chgnet_run_is_consistent():
    """The shipped CHGNet reference run (data/li_argyrodite): intact start, reaction."""
    from pathlib import Path

    import atomtwin.data
    from atomtwin.engines.studies.li_argyrodite.make_reference_run import bond_statistics
    from atomtwin.toolkit.reactions import coordination_numbers

    import atomtwin

    path = Path(atomtwin.data.__file__).parent / "li_argyrodite" / "chgnet_small_400K.nc"
    ds = atomtwin.read(path)
    S.validate(ds)
    st = bond_statistics(ds)
    n_p = int((np.asarray(ds.species.values) == "P").sum())
    # it starts from intact PS4 units: 4 bonds per P
    assert st["P-S"][0] == 4 * n_p and st["PS4"][0] == n_p
    # bonds counted from the pair list equal the P-by-S coordination summed over P
    cn = coordination_numbers(ds, "P", "S")
    np.testing.assert_array_equal(np.asarray(cn).sum(axis=-1), st["P-S"])
    # the contact reduces PS4 (issue 18's probe: about 10 P-S bonds break per ps at
    # 300-800 K): after 2 ps fewer than half the P-S bonds are left
    assert st["P-S"][-1] < 2 * n_p


def test_shipped_bulk_control_does_not_react():
    """Bulk Li6PS5Cl at 400 K (data/li_argyrodite/chgnet_bulk_400K.nc): thermal motion
    only, so the hysteresis bond criterion must count no P-S event in 1 ps."""
    from pathlib import Path

    import atomtwin.data
    from atomtwin.engines.studies.li_argyrodite.make_reference_run import bond_statistics

    import atomtwin

    path = Path(atomtwin.data.__file__).parent / "li_argyrodite" / "chgnet_bulk_400K.nc"
    ds = atomtwin.read(path)
    st = bond_statistics(ds)
    assert set(np.asarray(st["P-S"]).tolist()) == {16}
    assert st["summary"]["events"]["P-S break"]["n_events"] == 0
    # the atoms did move at ~400 K: RMS displacement from frame 0 well above 0.05 Å
    u = ds.positions.values[1:] - ds.positions.values[0]
    assert np.sqrt(np.mean(u**2)) > 0.05
