"""Every YAML config (md, train, scha/tdscha, phase-diagram spec) through one validated
schema: a bad value or key gives one ConfigError line naming the file, the key path, the
problem and the fix (with the closest valid key for a typo); numbers written ``1e-3`` are
numbers; relative paths start at the YAML file's folder, whatever the working directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from atomtwin.engines.md.config import MDConfig
from atomtwin.engines.mlip.config import ModelConfig, TrainConfig, load_config
from atomtwin.engines.tdscha.config import RunConfig
from atomtwin.toolkit.config import load_yaml
from atomtwin.toolkit.errors import ConfigError, InputError
from atomtwin.toolkit.phases.spec import PhaseSpec

MD = "structure: a.xyz\npotential: {kind: lj, params: {Ar: [0.0104, 3.405]}, r_cut: 8.5}\n"
PH = "point_function: a.b:c\npressures: [0.1]\ntemperatures: [100]\n"
LOADERS = {"md": MDConfig.from_yaml, "train": load_config, "tdscha": RunConfig.from_yaml,
           "phase": PhaseSpec.from_yaml}

# (kind, YAML text, substrings the one line must hold: key path, problem, fix)
BAD = [
    ("md", MD + "temprature: 300", ["temprature: unknown key", "Fix: did you mean 'temperature'?"]),
    ("md", MD + "steps: 20.7", ["steps: must be a whole number (got 20.7)", "Fix: write an integer"]),
    ("md", MD + "steps: -5", ["steps: must be >= 0 (got -5)", "Fix: "]),
    ("md", MD + "timestep: -2e-3", ["timestep: must be > 0 (got -0.002)", "Fix: give a positive value"]),
    ("md", MD + "timestep: 2", ["timestep: 2.0 ps is above 0.05 ps", "Fix: give the time step in ps"]),
    ("md", MD + "timestep: fast", ["timestep: must be a finite number (got 'fast')", "e.g. 0.001 or 1e-3"]),
    ("md", MD + "stride: 0", ["stride: must be >= 1 (got 0)", "Fix: "]),
    ("md", MD + "ensemble: langevn\ntemperature: 300", ["ensemble: 'langevn' is not one of",
                                                         "Fix: did you mean 'langevin'?"]),
    ("md", MD + "ensemble: nhc", ["temperature: ensemble 'nhc' needs a target temperature",
                                  "Fix: add temperature: <K>"]),
    ("md", MD + "temperature: -10", ["temperature: must be >= 0 (got -10)", "cannot be negative"]),
    ("md", MD.replace("r_cut", "rcut"), ["potential.rcut: unknown key", "did you mean 'r_cut'?"]),
    ("md", MD + "mts: {slow: {kind: emt}, k: 3}", ["stride: 10 is not a multiple of mts.k = 3",
                                                    "Fix: give a multiple of 3"]),
    ("md", MD + "mts: {slow: {kind: emt}, kk: 3}", ["mts.kk: unknown key", "did you mean 'k'?"]),
    ("md", MD + "masses: {Ar: -1}", ["masses.Ar: must be > 0 (got -1)", "Fix: "]),
    ("md", MD + "output: traj.xyz", ["traj.xyz' is neither *.nc nor *.zarr", "Fix: name the trajectory"]),
    ("md", "potential: {kind: emt}", ["structure: required key missing", "Fix: add `structure:"]),
    ("train", "lr: -1e-3", ["lr: must be > 0 (got -0.001)", "Fix: give a positive value"]),
    ("train", "batch_size: 2.5", ["batch_size: must be a whole number (got 2.5)", "Fix: "]),
    ("train", "max_epochs: -3", ["max_epochs: must be >= 1 (got -3)", "Fix: "]),
    ("train", "epochs: 3", ["epochs: unknown key", "did you mean 'max_epochs'?"]),
    ("train", "model: {rmax: 4}", ["model.rmax: unknown key", "did you mean 'r_max'?"]),
    ("train", "model: {lmax: 9}", ["model.lmax: must be <= 6 (got 9)", "Fix: "]),
    ("train", "model: {num_layers: 1.5}", ["model.num_layers: must be a whole number", "Fix: "]),
    ("train", "schedule: cosin", ["schedule: 'cosin' is not one of", "did you mean 'cosine'?"]),
    ("train", "ema_decay: 1.5", ["ema_decay: must be < 1 (got 1.5)", "Fix: "]),
    ("train", "force_weight: -1", ["force_weight: must be >= 0 (got -1)", "Fix: "]),
    ("tdscha", "model: {kind: quartc}", ["model.kind: 'quartc' is not one of", "did you mean 'quartic'?"]),
    ("tdscha", "model: {kind: quartic, quartc: 1}", ["model.quartc: unknown key", "did you mean 'quartic'?"]),
    ("tdscha", "model: {kind: quartic, quartic: -1}", ["model: quartic: quartic < 0", "Fix: give quartic >= 0"]),
    ("tdscha", "model: {kind: quartic}\ntdscha: {dt: 0.0005, nsteps: 4}",
     ["tdscha.nsteps: unknown key", "did you mean 'n_steps'?"]),
    ("tdscha", "model: {kind: quartic}\ntdscha: {n_steps: -4}", ["tdscha.n_steps: must be >= 0", "Fix: "]),
    ("tdscha", "model: {kind: quartic}\ntdscha: {dt: 0}", ["tdscha.dt: must be > 0 (got 0)", "Fix: "]),
    ("tdscha", "model: {kind: quartic}\naverages: {n_configs: 3}", ["averages.n_configs: 3 is not an even",
                                                                    "Fix: use 4"]),
    ("tdscha", "model: {kind: quartic}\ntemperature: -1", ["temperature: must be >= 0", "Fix: "]),
    ("tdscha", "model: {kind: ase, structure: x.xyz}", ["averages.kind: exact averages need a polynomial",
                                                         "Fix: set averages: {kind: ensemble}"]),
    ("tdscha", "model: {kind: quartic}\npulse: {kind: gaussian, amplitud: 1}",
     ["pulse.amplitud: unknown key", "did you mean 'amplitude'?"]),
    ("tdscha", "model: {kind: quartic}\nschaa: {tol: 1e-6}", ["schaa: unknown key", "did you mean 'scha'?"]),
    ("phase", PH + "temperatures: [-5]", None),  # duplicate key: refused by the reader
    ("phase", PH.replace("[100]", "[-5]"), ["temperatures[0]: must be > 0 (got -5)", "Fix: "]),
    ("phase", PH + "schedular: serial", ["schedular: unknown key", "did you mean 'scheduler'?"]),
    ("phase", PH + "scheduler: thread", ["scheduler: 'thread' is not one of", "did you mean 'threads'?"]),
    ("phase", PH + "n_workers: 0", ["n_workers: must be >= 1 (got 0)", "Fix: "]),
    ("phase", PH + "protocol: {kind: npt, steps: -5}", ["protocol.steps: must be a whole number >= 0 (got -5)",
                                                         "Fix: "]),
    ("phase", PH + "protocol: {steps: 20.7}", ["protocol.steps: must be a whole number", "Fix: "]),
    ("phase", PH + "protocol: {dt: -1e-3}", ["protocol.dt: must be > 0 (got -0.001)", "Fix: "]),
    ("phase", PH + "seed: 1.5", ["seed: must be a whole number (got 1.5)", "Fix: "]),
    ("phase", PH + "ramps: [{pressure: 0.1, temps: [80, 90]}]", ["ramps[0].temps: unknown key",
                                                                  "did you mean 'temperatures'?"]),
    ("phase", PH.replace("pressures: [0.1]\n", ""), ["pressures: the protocol (npt) runs at constant pressure",
                                                      "Fix: add pressures"]),
    ("phase", "point_function: nocolon\ntemperatures: [100]\nprotocol: {kind: nvt}",
     ["point_function: 'nocolon' is neither a callable nor an import string", "Fix: give 'package.module"]),
]


@pytest.mark.parametrize(("kind", "text", "expect"), BAD, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(BAD)])
def test_bad_config_is_one_line_with_key_problem_and_fix(kind, text, expect, tmp_path):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        LOADERS[kind](path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    assert " Fix: " in msg
    if expect is None:
        assert "given twice" in msg
    for part in expect or ():
        assert part in msg, msg


def test_yaml_reader_errors_name_the_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("lr: 1\nmodel: {r_max: [1\n")
    with pytest.raises(ConfigError, match=r"c.yaml: line \d+, column \d+: not valid YAML .* Fix: "):
        load_config(p)
    p.write_text("lr: 1\nlr: 2\n")
    with pytest.raises(ConfigError, match=r"line 2: the key 'lr' is given twice \(first on line 1\)"):
        load_config(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping of keys to values, not list"):
        MDConfig.from_yaml(p)
    with pytest.raises(ConfigError, match=r"nope.yaml: the config file does not exist"):
        PhaseSpec.from_yaml(tmp_path / "nope.yaml")
    assert issubclass(ConfigError, InputError) and issubclass(ConfigError, ValueError)


def test_numbers_written_with_exponents_are_numbers(tmp_path):
    p = tmp_path / "n.yaml"
    p.write_text("a: 1e-3\nb: 2E+5\nc: -3e2\nd: .5\ne: 1.0e-8\nf: 7\ng: 1e3x\nh: '1e-3'\n")
    d = load_yaml(p)
    assert d == {"a": 0.001, "b": 200000.0, "c": -300.0, "d": 0.5, "e": 1e-8, "f": 7, "g": "1e3x",
                 "h": "1e-3"}
    assert all(type(d[k]) is float for k in "abcde") and type(d["f"]) is int
    md = tmp_path / "md.yaml"
    md.write_text(MD + "timestep: 2e-3\nsteps: 1e3\ntemperature: 3e2\nensemble: langevin\n")
    cfg = MDConfig.from_yaml(md)
    assert cfg.timestep == 0.002 and type(cfg.timestep) is float
    assert cfg.steps == 1000 and type(cfg.steps) is int and cfg.temperature == 300.0
    tr = tmp_path / "t.yaml"
    tr.write_text("lr: 1e-3\nweight_decay: 1e-6\nmodel: {r_max: 4.5e0}\n")
    t = load_config(tr)
    assert (t.lr, t.weight_decay, t.model.r_max) == (0.001, 1e-6, 4.5)
    td = tmp_path / "td.yaml"
    td.write_text("model: {kind: quartic, k: 6e-1}\nscha: {tol: 1e-10}\ntdscha: {dt: 5e-4}\n")
    r = RunConfig.from_yaml(td)
    assert (r.model["k"], r.scha.tol, r.tdscha.dt) == (0.6, 1e-10, 5e-4)


def test_relative_paths_start_at_the_yaml_folder(tmp_path, monkeypatch):
    cfgdir, elsewhere = tmp_path / "cfg", tmp_path / "elsewhere"
    cfgdir.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    base = cfgdir.resolve()
    (cfgdir / "md.yaml").write_text(
        "structure: s.xyz\noutput: out/t.nc\ncheckpoint: run.ckpt\n"
        "potential: {kind: mlip, model: models/small.ckpt}\nmts: {slow: {kind: mlip, model: big.ckpt}, k: 1}\n")
    md = MDConfig.from_yaml(cfgdir / "md.yaml")
    assert (md.structure, md.output, md.checkpoint) == (str(base / "s.xyz"), str(base / "out/t.nc"),
                                                          str(base / "run.ckpt"))
    assert md.potential.model == str(base / "models/small.ckpt") and md.mts.slow.model == str(base / "big.ckpt")
    (cfgdir / "t.yaml").write_text("train_files: d.xyz\nval_files: [v.xyz, /abs/w.xyz]\nresidual_of: s.ckpt\n")
    t = load_config(cfgdir / "t.yaml")
    assert t.train_files == (str(base / "d.xyz"),) and t.val_files == (str(base / "v.xyz"), "/abs/w.xyz")
    assert t.output_dir == str(base / "mlip-run") and t.residual_of == str(base / "s.ckpt")
    (cfgdir / "td.yaml").write_text("model: {kind: ase, structure: c.xyz}\naverages: {kind: ensemble}\n"
                                    "output: td.nc\n")
    r = RunConfig.from_yaml(cfgdir / "td.yaml")
    assert r.output == str(base / "td.nc") and r.model["structure"] == str(base / "c.xyz")
    (cfgdir / "p.yaml").write_text(PH)
    assert PhaseSpec.from_yaml(cfgdir / "p.yaml").workdir == str(base / "phase-runs")
    # built in Python, paths stay as written (relative to the working directory)
    assert MDConfig(structure="s.xyz", potential={"kind": "emt"}).output == "traj.zarr"


def test_python_api_keeps_working_and_validates_alike():
    m = ModelConfig(species=("Cu",), r_max=4.0)
    t = TrainConfig(model=m, train_files="a.xyz", lr=1e-3)
    assert t.train_files == ("a.xyz",) and t.to_dict()["model"]["species"] == ["Cu"]
    assert dataclasses.replace(t, progress=False).progress is False
    assert ModelConfig.from_dict(m.to_dict()) == m
    md = MDConfig.from_dict({"structure": "a.xyz", "potential": {"kind": "emt"}, "mts": None})
    assert dataclasses.replace(md, progress=False).potential == md.potential
    assert md.to_dict()["potential"]["kind"] == "emt"
    with pytest.raises(ConfigError, match=r"^TrainConfig: batch_size: must be >= 1 \(got 0\)"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match=r"^MDConfig: temprature: unknown key.*'temperature'"):
        dataclasses.replace(md, temprature=3)
    with pytest.raises(ConfigError, match=r"^ModelConfig: species: \['Cu'\] listed more than once"):
        ModelConfig(species=("Cu", "Cu"))
    spec = PhaseSpec(point_function="a:b", pressures=[0.1], temperatures=[100],
                     ramps=[{"pressure": 0.1, "temperatures": [80, 120]}])
    assert [r["direction"] for r in spec.ramps] == ["heating", "cooling"]
    assert dataclasses.replace(spec, n_workers=3).ramps == spec.ramps
    r = RunConfig.from_dict({"model": {"kind": "harmonic"}}, base_dir="/data")
    assert r.base_dir == "/data" and r.averages.kind == "exact"
    with pytest.raises(ConfigError, match="base_dir: unknown key"):
        RunConfig.from_dict({"model": {"kind": "harmonic"}, "base_dir": "/x"})
    assert Path(MDConfig(structure="a", potential={"kind": "emt"}).structure) == Path("a")
