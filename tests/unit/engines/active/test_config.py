"""The learn config: mistakes are one-line ConfigErrors naming the key; the CLI plugs in."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest
from atomtwin.engines.active.config import LearnConfig, load_config
from atomtwin.toolkit.errors import ConfigError

BASE = {
    "seed_frames": "seed.xyz",
    "walkers": [{"structure": "start.xyz"}],
    "uncertainty": {"threshold": 0.2},
}


def test_paths_resolve_against_the_yaml_folder(tmp_path):
    import yaml

    (tmp_path / "learn.yaml").write_text(yaml.safe_dump(BASE))
    cfg = load_config(tmp_path / "learn.yaml")
    assert cfg.seed_frames == (str(tmp_path / "seed.xyz"),)
    assert cfg.walkers[0].structure == str(tmp_path / "start.xyz")
    assert cfg.uncertainty.trigger == 0.2


@pytest.mark.parametrize(
    "change, key",
    [
        ({"uncertainty": {}}, "uncertainty.threshold"),
        ({"uncertainty": {"threshold_rel": 3.0}}, "uncertainty.noise_floor"),
        ({"uncertainty": {"threshold": 0.1, "threshold_rel": 3.0}}, "uncertainty.threshold_rel"),
        ({"uncertainty": {"threshold": 0.1, "n_models": 1}}, "uncertainty.n_models"),
        ({"walkers": []}, "walkers"),
        ({"walkers": [{"structure": "s.xyz", "ensemble": "nve"}]}, "walkers[0].ensemble"),
        ({"max_calls": 0}, "max_calls"),
        ({"uncertainty": {"threshold_train": 1.0}}, "uncertainty.threshold_train"),
        ({"uncertainty": {"threshold": 0.1, "min_gap": -1}}, "uncertainty.min_gap"),
        ({"uncertainty": {"threshold": 0.1, "features": "first"}}, "uncertainty.features"),
    ],
)
def test_mistakes_name_the_key(change, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        LearnConfig.from_dict(BASE | change)


def test_relative_threshold():
    cfg = LearnConfig.from_dict(BASE | {"uncertainty": {"threshold_rel": 4.0, "noise_floor": 0.05}})
    assert cfg.uncertainty.trigger == pytest.approx(0.2)


def test_threshold_relative_to_the_training_frames():
    """threshold_train alone is a trigger (no fixed part); with threshold, the larger wins."""
    cfg = LearnConfig.from_dict(BASE | {"uncertainty": {"threshold_train": 3.0, "min_gap": 50}})
    assert cfg.uncertainty.trigger == 0.0 and cfg.uncertainty.min_gap == 50
    assert cfg.uncertainty.features == "all"


def test_a_state_of_an_older_version_resumes_as_it_started():
    """A state written before ``features`` existed: the GP keeps the features it had
    (``last``) and the keys added since take their defaults, so the configs compare equal."""
    from atomtwin.engines.active.loop import _resumable_config

    cfg = LearnConfig.from_dict(BASE | {"uncertainty": {"threshold": 0.2, "kind": "gp"}})
    old = cfg.to_dict()
    for k in ("features", "threshold_train", "min_gap"):
        del old["uncertainty"][k]
    got = _resumable_config(old, cfg)
    assert got.uncertainty.features == "last" and got.to_dict() == old
    new = cfg.to_dict()
    assert _resumable_config(new, cfg) is cfg
    # a state written before ``floor`` existed resumes with the pooled level it had
    old = cfg.to_dict()
    del old["uncertainty"]["floor"]
    got = _resumable_config(old, cfg)
    assert got.uncertainty.floor == "pooled" and got.to_dict() == old


def test_cli_registers_learn():
    from atomtwin.engines.active.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["learn", "c.yaml", "--resume", "--cluster", "tcp://h:8786"])
    assert args.resume and args.cluster == "tcp://h:8786" and callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["learn", "c.yaml", "--resume", "--force"])


class _LevelsGP:
    """Held-out per-atom sigmas given per training frame (the trigger's only input)."""

    def __init__(self, levels):
        self.levels = levels

    def heldout_sigma(self, graphs):
        return [np.full(4, v) for v in self.levels]


def test_a_floor_per_walker_follows_each_walkers_own_frames():
    """Two walkers: walker 1 melted (its frames' held-out sigma 0.30-0.55 eV/Å), walker 0
    stayed cold (0.04-0.06); two seed frames at 0.05.  The pooled level is the median of
    all eleven frames, which the melt sets (0.30); the per-walker level of walker 0 is the
    median of its own and the seed frames, so its trigger stays at threshold_train x 0.05,
    not x 0.30, and walker 1's rises to x 0.375."""
    from atomtwin.engines.active.calibration import Calibration
    from atomtwin.engines.active.loop import _Run

    levels = [0.05, 0.05, 0.04, 0.06, 0.05, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55]
    owners = [-1, -1, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    two = BASE | {"walkers": [{"structure": "a.xyz"}, {"structure": "b.xyz"}]}
    for mode, want0, want1 in (("pooled", 0.30, 0.30), ("walker", 0.05, 0.375)):
        cfg = LearnConfig.from_dict(
            two | {"uncertainty": {"threshold_train": 2.0, "floor": mode, "kind": "gp"}}
        )
        run = _Run(cfg)
        run.estimator = _LevelsGP(levels)
        run.calib = Calibration()
        run.frames = [{"info": {"walker": w}} for w in owners]
        run.update_floor()
        assert run.floor == pytest.approx(0.30)
        assert run.threshold(0) == pytest.approx(2.0 * want0)
        assert run.threshold(1) == pytest.approx(2.0 * want1)
        assert run.threshold() == pytest.approx(0.60)  # the pooled level without a walker
