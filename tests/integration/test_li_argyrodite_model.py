"""The shipped Li-P-S-Cl potential of the Li | Li6PS5Cl study (issue 18) and the script
that reproduces it (``engines/studies/li_argyrodite/make_model.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from atomtwin.data import path, verified_path

FOLDER = path("li_argyrodite")


@pytest.fixture(scope="module")
def shipped():
    ckpt = verified_path("li_argyrodite", "model.ckpt")  # raises unless the SHA matches
    meta = json.loads((FOLDER / "model.json").read_text())
    return ckpt, meta


def test_shipped_model_matches_manifest_and_metadata(shipped):
    from atomtwin.engines.mlip import Calculator
    from atomtwin.engines.mlip.model import load_model

    ckpt, meta = shipped
    model = load_model(ckpt)
    assert list(model.species) == meta["model"]["species"] == ["Cl", "Li", "P", "S"]
    assert model.r_max == pytest.approx(meta["model"]["r_max"])
    assert model.config.dtype == "float32"
    assert Calculator.from_checkpoint(ckpt) is not None
    # the dataset ships beside it and holds what model.json says the run labelled
    assert verified_path("li_argyrodite", "dataset.extxyz").stat().st_size > 0


def test_shipped_model_forces_on_held_out_reacting_sandwich(shipped):
    """Force error of the shipped model against CHGNet on frames of the CHGNet run of the
    reacting sandwich (none of them was used for training or calibration: the AL run only
    labels its own walkers' frames).  Five frames from before, during and after the contact
    PS4 are reduced (0, 0.5, 1, 1.5, 2 ps); CHGNet's forces are in the file, so no CHGNet is
    needed here."""
    from atomtwin.engines.mlip.data import read_frames
    from atomtwin.engines.mlip.model import load_model
    from atomtwin.engines.studies.li_argyrodite.make_model import errors_on

    ckpt, meta = shipped
    frames = read_frames(FOLDER / "chgnet_small_400K.nc")[::50]
    assert len(frames) == 5
    err = errors_on(load_model(ckpt), frames)
    # Bound 1 (physics): a model whose force MAE is half the mean |F| component would not
    # tell a bond that pulls from one that pushes.  The shipped model measured 0.18x on the
    # whole 2 ps run (model.json); 0.35x leaves room for the scatter of five frames while
    # failing a model that is clearly worse than the one that reproduced the reaction.
    assert err["forces_mae"] < 0.35 * err["mean_abs_force_component"]
    # Bound 2 (the shipped numbers): five frames out of 201 scatter around the mean MAE of
    # the whole run model.json reports; 1.5x of it catches a model that is not the measured
    # one (or a changed data file), not the scatter of five frames.
    whole = meta["validation"]["errors"]["sandwich_0-2ps"]["forces_mae"]
    assert err["forces_mae"] < 1.5 * whole
    assert np.isfinite(err["energy_mae"])


def test_learn_potential_small_end_to_end(tmp_path):
    """The demo's ``--retrain --small`` path: active learning against CHGNet on small cells,
    end to end, returns a checkpoint that loads and predicts finite forces."""
    pytest.importorskip("chgnet")
    from atomtwin.engines.mlip import Calculator
    from atomtwin.engines.studies.li_argyrodite import small_interface
    from atomtwin.engines.studies.li_argyrodite.make_model import learn_potential

    ckpt = learn_potential(tmp_path / "m", small=True, progress=False)
    assert ckpt.exists() and (tmp_path / "m" / "dataset.extxyz").exists()
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    al = meta["active_learning"]
    # every call that succeeded became a frame; beyond the 6 seed structures (5 phases and
    # the sandwich) the walkers made calls of their own
    assert al["frames"] == al["calls"] - al["failed_calls"]
    assert al["calls"] > 6
    atoms = small_interface("chgnet", gap=2.5).atoms
    atoms.calc = Calculator.from_checkpoint(ckpt)
    assert np.isfinite(atoms.get_forces()).all()
