"""``atomtwin demo``: the Li metal | Li6PS5Cl interface study end to end (issue 18).

A lithium metal anode against the argyrodite solid electrolyte Li6PS5Cl reacts at contact:
PS4 units are reduced, and an interphase of Li2S-, Li3P- and LiCl-like environments grows
(as experiments on this interface report).  The demo simulates the periodic Li(100) |
Li6PS5Cl(100) sandwich with the Li-P-S-Cl potential that atomtwin's active learning made
against CHGNet 0.3.0 (shipped in ``atomtwin.data``, ``li_argyrodite/``), and runs the
analysis a battery scientist would: see :mod:`atomtwin.engines.studies.li_argyrodite.study`
for every choice (structure, 400 K, thermostat, length) and why.

Stages (each resumable; a rerun continues from the finished ones):

1. ``structure``  the 212-atom sandwich (``--small``: 158 atoms), CHGNet lattice constants;
2. ``model``      the shipped potential (SHA-256 and metadata checked), a model file given
                  with ``--model``, or with ``--retrain`` active learning against CHGNet
                  (:func:`~atomtwin.engines.studies.li_argyrodite.make_model.learn_potential`);
3. ``md``         Langevin MD at 400 K with our MD engine;
4. ``nve``        an NVE continuation: energy conservation of model + integrator;
5. ``check``      CHGNet against the model on frames of the model's own trajectory;
6. ``analysis``   environments clustered and matched to references equilibrated by MD with
                  the same potential at the run temperature, phase fractions
                  and profiles, interphase growth law, reactions, Li mobility by region;
7. ``report``     figures (PNG + PDF), ``report.md``, ``results.nc``, a terminal summary.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from atomtwin.engines.studies.li_argyrodite.study import SPECIES, StudyConfig
from atomtwin.toolkit.errors import InputError

STAGES = ("structure", "model", "md", "nve", "check", "analysis", "report")
STATE_FILE = ".atomtwin-demo.json"
DemoConfig = StudyConfig  # the demo's configuration is the study's


def _say(msg: str) -> None:
    print(f"[atomtwin demo] {msg}", file=sys.stderr, flush=True)


# -- stage bookkeeping -------------------------------------------------------------------
class Stages:
    """Which stages are done, for which configuration (a rerun with the same configuration
    continues; one with another configuration is refused, see :meth:`check_same`)."""

    def __init__(
        self, out: Path, cfg: StudyConfig, retrain: bool = False, model: str | None = None
    ):
        self.path = out / STATE_FILE
        # as stored (tuples become lists); the model's source is part of the configuration
        self.cfg = json.loads(
            json.dumps(
                asdict(cfg)
                | {"retrain": bool(retrain), "model": None if model is None else str(model)}
            )
        )
        state = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.previous = state.get("config")
        self.done: dict = state.get("done", {}) if self.previous == self.cfg else {}

    def check_same(self) -> None:
        """Refuse to continue a previous demo made with other settings: its files (the
        model, the trajectories) would be mixed into this one."""
        if self.previous is not None and self.previous != self.cfg:
            diff = sorted(
                k
                for k in set(self.cfg) | set(self.previous)
                if self.cfg.get(k) != self.previous.get(k)
            )
            raise InputError(
                f"'{self.path.parent}' holds a demo run with other settings ({', '.join(diff)} "
                "differ). Fix: pass --force to start it over, or choose another --out."
            )

    def finish(self, stage: str, info: dict | None = None) -> None:
        self.done[stage] = info or {}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"config": self.cfg, "done": self.done}, indent=1, default=float))
        tmp.replace(self.path)


def prepare_output(out: Path, force: bool) -> None:
    """Refuse a non-empty folder that is not a previous demo, unless ``force``."""
    if out.exists() and any(out.iterdir()):
        if force:
            shutil.rmtree(out)
        elif not (out / STATE_FILE).exists():
            raise InputError(
                f"'{out}' is not empty and holds no previous demo. Fix: choose another --out, or pass "
                "--force to delete its contents."
            )
    out.mkdir(parents=True, exist_ok=True)


# -- 2 model ------------------------------------------------------------------------------
RETRAIN_FIX = (
    "run `atomtwin demo --retrain` (active learning against CHGNet inside the run), "
    "pass your own model file with --model, or reinstall atomtwin to restore the "
    "shipped model."
)


def check_model_file(path: Path, fix: str = RETRAIN_FIX) -> dict:
    """Species and r_max of a model file or training checkpoint; refuse one that is not for
    Cl, Li, P and S."""
    from atomtwin.engines.mlip.model import read_checkpoint, read_model_file
    from atomtwin.toolkit.errors import FileFormatError

    try:
        try:
            head = read_model_file(path)
        except FileFormatError:  # a training checkpoint loads as well (its EMA weights)
            head = read_checkpoint(path)
    except (InputError, FileNotFoundError) as err:
        raise InputError(f"{err} Or: {fix}") from err
    species, r_max = sorted(head["species"]), float(head["r_max"])
    if species != SPECIES:
        raise InputError(
            f"model '{path}' is for species {species} with r_max {r_max} Å; this study needs "
            f"{SPECIES}. Fix: {fix}"
        )
    return {"species": species, "r_max_A": r_max}


def shipped_model() -> Path:
    """The shipped Li-P-S-Cl potential after checking its SHA-256 (``atomtwin.data``'s
    manifest) and its species.

    Raises
    ------
    InputError
        Missing, changed or unfitting model; the message names the fix (``--retrain``).
    """
    from atomtwin.data import verified_path

    path = verified_path("li_argyrodite", "model.ckpt", fix=RETRAIN_FIX)
    check_model_file(path)
    return path


def learn_model(out: Path, small: bool, seed: int, progress: bool) -> tuple[Path, dict]:
    """Active learning against CHGNet into ``out/model`` (part of the study's package)."""
    from atomtwin.engines.mlip.model import export_model, read_model_file
    from atomtwin.engines.studies.li_argyrodite.make_model import learn_potential
    from atomtwin.toolkit.errors import FileFormatError

    ckpt = Path(
        learn_potential(out / "model" / "learning", small=small, seed=seed, progress=progress)
    )
    try:
        read_model_file(ckpt)
        model = ckpt
    except FileFormatError:  # a training checkpoint: keep its EMA weights as a model file
        model = export_model(ckpt, out / "model" / "learned.ckpt")
    return Path(model), {"source": f"--retrain: active learning against CHGNet ({ckpt})"}


def toolkit_frames(path: Path) -> int:
    import atomtwin

    return int(atomtwin.toolkit.open(path).sizes["frame"])


def _temperature(path: Path) -> dict:
    """Mean and standard deviation (K) of the kinetic temperature over the second half."""
    from atomtwin.toolkit import units as U

    import atomtwin

    ds = atomtwin.toolkit.read(path)
    v = np.asarray(ds["velocities"].values)
    ke = 0.5 * np.einsum("a,fai->f", np.asarray(ds["mass"].values), v**2) * U.AMU_A2_PS2_TO_EV
    temp = 2 * ke / (3 * ds.sizes["atom"] * U.KB)
    half = temp[temp.size // 2 :]
    return {"temperature_K": float(half.mean()), "temperature_std_K": float(half.std())}


def _quiet_md(cfg_dict: dict, **kw):
    """``atomtwin.engines.md.run`` without the notice a first resumable run gives."""
    import warnings

    from atomtwin.engines.md import run as md_run
    from atomtwin.engines.md.restart import ResumeNotice

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no earlier output", category=ResumeNotice)
        return md_run(cfg_dict, **kw)


# -- the run ------------------------------------------------------------------------------
def run_demo(
    out: str | Path = "demo-out",
    *,
    small: bool = False,
    force: bool = False,
    retrain: bool = False,
    progress: bool = True,
    config: StudyConfig | None = None,
    until: str | None = None,
    model: str | Path | None = None,
) -> dict:
    """Run (or continue) the study in ``out``; returns the summary dict.

    ``until`` (one of :data:`STAGES`) stops after that stage and returns
    ``{"stages": {stage: info}}`` for the stages done so far (a later call continues).
    ``model`` is a model file to use instead of the shipped one (checked for its species).
    """
    if until is not None and until not in STAGES:
        raise InputError(f"unknown demo stage '{until}'. Fix: use one of {', '.join(STAGES)}.")
    if retrain and model is not None:
        raise InputError("--retrain and --model both choose the potential. Fix: pass one of them.")
    import torch
    from atomtwin.engines.studies.li_argyrodite.study import (
        build_structure,
        energy_drift,
        model_vs_chgnet,
    )

    out = Path(out)
    cfg = config or (StudyConfig.small() if small else StudyConfig())
    model = None if model is None else Path(model).resolve()
    if not force:
        previous = Stages(out, cfg, retrain, model)
        previous.check_same()
        model_done = "model" in previous.done
    else:
        model_done = False
    # the model is checked before anything is written or deleted
    given = None
    if not (retrain or model_done):
        if model is None:
            given = shipped_model()
        else:
            check_model_file(model, fix="pass a model file for Cl, Li, P and S.")
            given = model
    prepare_output(out, force)
    st = Stages(out, cfg, retrain, model)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t_start = time.perf_counter()

    def begin(name: str) -> bool:
        if name in st.done:
            if progress:
                _say(f"{name}: already done, skipped")
            return False
        if progress:
            _say(f"{name}: running ({time.perf_counter() - t_start:.0f} s so far)")
        return True

    from ase.io import read, write

    structure = out / "structure.extxyz"
    if begin("structure"):
        it = build_structure(cfg)
        write(structure, it.atoms)  # region (0 metal, 1 electrolyte) kept as a per-atom array
        st.finish(
            "structure",
            {
                "atoms": len(it.atoms),
                "cell_A": it.atoms.cell.lengths().tolist(),
                "misfit_percent": it.misfit_percent,
                "li_cell": it.li_cell,
                "composition": it.atoms.get_chemical_formula(),
            },
        )
    if until == "structure":
        return {"stages": st.done}
    atoms0 = read(structure)
    region = np.asarray(atoms0.arrays["region"]).astype(int)

    model_path = out / "model" / "model.ckpt"
    if begin("model"):
        model_path.parent.mkdir(exist_ok=True)
        if given is not None:
            shutil.copy(given, model_path)
            info = {
                "source": "atomtwin.data: li_argyrodite/model.ckpt"
                if model is None
                else f"--model {given}"
            }
            if model is None:
                from atomtwin.data import path as data_path

                meta = data_path("li_argyrodite", "model.json")
                if meta.exists():
                    card = json.loads(meta.read_text())
                    info["card"] = {
                        k: v for k, v in card.items() if isinstance(v, (int, float, str))
                    }
        else:
            learned, info = learn_model(out, small, cfg.seed, progress)
            shutil.copy(learned, model_path)
        info.update(check_model_file(model_path))
        st.finish("model", info)
    if until == "model":
        return {"stages": st.done}

    md_file = out / "md.nc"
    plain = out / "start.extxyz"  # the structure without the region array, for the MD engine
    if not plain.exists():
        a = atoms0.copy()
        a.arrays.pop("region", None)
        write(plain, a)
    if begin("md") and md_file.exists():  # finished before the stage was recorded
        st.finish(
            "md", {"frames": toolkit_frames(md_file), "note": "recovered finished trajectory"}
        )
    elif "md" not in st.done:
        c0 = time.process_time()
        res = _quiet_md(
            {
                "structure": str(plain),
                "potential": {"kind": "mlip", "model": str(model_path)},
                "ensemble": "langevin",
                "timestep": cfg.timestep,
                "steps": cfg.md_steps,
                "temperature": cfg.temperature,
                "initial_temperature": cfg.temperature,
                "friction": cfg.friction,
                "stride": cfg.stride,
                "output": str(md_file),
                "checkpoint": str(out / "md.ckpt"),
                "checkpoint_every": cfg.stride * 20,
                "seed": cfg.seed,
                "progress": progress,
                "max_temperature": 3 * cfg.temperature,
            },
            resume=True,
        )  # continues from md.ckpt; without one, restarts its own partial run
        st.finish(
            "md",
            {
                "frames": res.n_frames,
                "wall_s": res.wall_s,
                "cpu_s": time.process_time() - c0,
                "ns_per_day": res.ns_per_day,
                "atom_steps_per_s": res.atom_steps_per_s,
                "steps_per_s": cfg.md_steps / max(res.wall_s, 1e-9),
                **_temperature(md_file),
            },
        )
    if until == "md":
        return {"stages": st.done}

    import atomtwin

    ds = atomtwin.toolkit.read(md_file)
    nve_file = out / "nve.nc"
    if begin("nve"):
        nve_file.unlink(missing_ok=True)  # an interrupted NVE segment is simply redone
        shutil.rmtree(str(nve_file) + ".partial", ignore_errors=True)
        from atomtwin.toolkit.io.ase_io import dataset_to_atoms

        last = dataset_to_atoms(ds, -1)
        _quiet_md(
            {
                "structure": str(plain),
                "potential": {"kind": "mlip", "model": str(model_path)},
                "ensemble": "nve",
                "timestep": cfg.timestep,
                "steps": cfg.nve_steps,
                "stride": 2,
                "output": str(nve_file),
                "progress": False,
                "seed": cfg.seed,
                "write": ["positions", "velocities", "energy", "cell"],
                "max_temperature": 3 * cfg.temperature,
            },
            atoms=last,
        )
        nve = atomtwin.toolkit.read(nve_file)
        drift, noise = energy_drift(nve)
        from atomtwin.toolkit import units as U

        ke = 0.5 * np.einsum("a,fai->f", nve["mass"].values, nve["velocities"].values ** 2)
        temp = 2 * ke * U.AMU_A2_PS2_TO_EV / (3 * nve.sizes["atom"] * U.KB)
        st.finish(
            "nve",
            {
                "drift_eV_per_atom_per_ps": drift,
                "fluctuation_eV_per_atom": noise,
                "timestep_ps": cfg.timestep,
                "steps": cfg.nve_steps,
                "temperature_K": float(temp.mean()),
            },
        )
    if until == "nve":
        return {"stages": st.done}

    if begin("check"):
        try:
            import chgnet  # noqa: F401
        except ImportError:
            st.finish(
                "check", {"skipped": "chgnet is not installed (pip install atomtwin[reference])"}
            )
        else:
            chk = model_vs_chgnet(ds, model_path, n=cfg.check_frames)
            np.savez(out / "check_forces.npz", f_ref=chk.pop("f_ref"), f_mod=chk.pop("f_mod"))
            st.finish("check", chk)
    if until == "check":
        return {"stages": st.done}

    if begin("analysis"):
        from atomtwin.engines.studies.li_argyrodite.analysis import analyse
        from atomtwin.engines.studies.li_argyrodite.references import thermal_references

        c0 = time.process_time()
        t0 = time.perf_counter()
        refs = thermal_references(
            model_path,
            cfg.temperature,
            out / "references",
            steps=cfg.reference_steps,
            timestep=cfg.timestep,
            friction=cfg.friction,
            seed=cfg.seed,
            lattice=cfg.lattice,
        )
        t_refs = time.perf_counter() - t0
        info = analyse(ds, out, cfg, region, seed=cfg.seed, references=refs)
        info["references_wall_s"] = t_refs
        info["cpu_s"] = time.process_time() - c0
        st.finish("analysis", info)
    if until == "analysis":
        return {"stages": st.done}

    if begin("report"):
        from atomtwin.engines.studies.li_argyrodite.report import write_report

        write_report(out, cfg, st.done, wall_s=time.perf_counter() - t_start)
        st.finish("report", {"wall_s": time.perf_counter() - t_start})
    summary = json.loads((out / "summary.json").read_text())
    summary["wall_s_this_call"] = time.perf_counter() - t_start
    return summary


# -- CLI ------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the Li | Li6PS5Cl interface study end to end (shipped "
        "potential learned against CHGNet; about 10 min on 2 cores)",
    )
    p.add_argument(
        "--out", default="demo-out", help="output folder (report.md, figures, results.nc)"
    )
    p.add_argument("--force", action="store_true", help="delete the output folder's contents first")
    p.add_argument(
        "--small", action="store_true", help="6 Li layers on 2 cells (158 atoms), 1 ps (tests)"
    )
    p.add_argument(
        "--retrain",
        action="store_true",
        help="rerun active learning against CHGNet instead of using the shipped model",
    )
    p.add_argument(
        "--model",
        metavar="FILE",
        help="a model file for Cl, Li, P and S to use instead of the shipped one",
    )
    p.add_argument(
        "--until",
        choices=STAGES,
        metavar="STAGE",
        help=f"stop after this stage ({', '.join(STAGES)}); a later call continues",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    summary = run_demo(
        args.out,
        small=args.small,
        force=args.force,
        retrain=args.retrain,
        progress=not (args.json or getattr(args, "no_progress", False)),
        until=args.until,
        model=getattr(args, "model", None),
    )
    if args.json or args.until:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        from atomtwin.engines.studies.li_argyrodite.report import format_summary

        print(format_summary(summary))
        print(
            f"wall time {summary['wall_s_this_call']:.0f} s "
            f"({summary['wall_s_this_call'] / 60:.1f} min)"
        )
    return 0
