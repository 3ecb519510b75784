"""``atomtwin demo``: an interface study end to end, on the embedded default data.

The system is a Pd | Au bimetallic slab (fcc(100) layers stacked along z, free surfaces on
both sides, periodic in the plane), the kind of interface whose degradation by Pd/Au
intermixing and segregation decides the life of a bimetallic catalyst (arXiv:2407.13607).
The reference calculator is ASE's EMT for Pd and Au (Jacobsen, Stoltze & Nørskov, Surf. Sci.
366, 394 (1996)): milliseconds per call, offline, and it describes both metals, their
surfaces and their alloy at the level of a tight-binding second-moment model.

Stages (each resumable; a rerun continues from the finished ones):

1. ``structure``   build the slab;
2. ``reference``   EMT molecular dynamics at the study temperature and below: labelled frames;
3. ``model``       the small Allegro-style potential shipped in ``atomtwin.data`` (``demo/``,
                   made by ``data/demo/make_model.py`` with this code; checked against its
                   SHA-256 and metadata), or with ``--retrain`` one trained on the reference
                   frames for ``train_epochs`` epochs;
4. ``md``          Langevin MD of the slab with the trained potential;
5. ``nve``         a short NVE continuation: energy conservation of the integrator + model;
6. ``check``       EMT against the model on frames of the model's own trajectory;
7. ``analysis``    local-environment clustering into phases, their fractions and profiles
                   along the interface normal, the interphase thickness against time with a
                   growth-law fit, diffusion in the interface plane against across it, RDFs;
8. ``report``      figures (PNG + PDF), ``report.md``, ``results.nc`` and a terminal summary.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from atomtwin.data import path as data_path
from atomtwin.toolkit.errors import InputError

STAGES = ("structure", "reference", "model", "md", "nve", "check", "analysis", "report")
DATA_DIR = data_path("demo")
STATE_FILE = ".atomtwin-demo.json"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and physics of the demo (``small()`` for the test suite)."""

    nx: int = 4  # in-plane repeats of the fcc(100) surface cell
    n_pd: int = 5  # Pd layers
    n_au: int = 5  # Au layers
    a: float = 4.0  # Å, common in-plane lattice constant (EMT: Pd 3.94, Au 4.07)
    vacuum: float = 10.0  # Å of vacuum above the slab
    temperature: float = 1250.0  # K: the Au side disorders from its surface, Pd stays crystalline
    ref_temperatures: tuple[float, ...] = (800.0, 1250.0, 1500.0)
    ref_steps: int = 600  # EMT MD steps per reference temperature
    ref_every: int = 20  # keep every n-th frame as training data
    timestep: float = 0.004  # ps
    md_steps: int = 1500
    stride: int = 10
    nve_steps: int = 250
    train_epochs: int = 15  # only with --retrain (the shipped model is used otherwise)
    r_max: float = 4.5
    seed: int = 7

    @classmethod
    def small(cls) -> DemoConfig:
        return cls(nx=3, n_pd=3, n_au=3, ref_steps=200, ref_every=10, md_steps=200, stride=10,
                   nve_steps=60, train_epochs=15)


def _say(msg: str) -> None:
    print(f"[atomtwin demo] {msg}", file=sys.stderr, flush=True)


# -- stage bookkeeping -------------------------------------------------------------------
class Stages:
    """Which stages are done, for which configuration (a rerun with the same configuration
    continues; one with another configuration is refused, see :meth:`check_same`)."""

    def __init__(self, out: Path, cfg: DemoConfig, retrain: bool = False):
        self.path = out / STATE_FILE
        # as stored (tuples become lists); the model's source is part of the configuration
        self.cfg = json.loads(json.dumps(asdict(cfg) | {"retrain": bool(retrain)}))
        state = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.previous = state.get("config")
        self.done: dict = state.get("done", {}) if self.previous == self.cfg else {}

    def check_same(self) -> None:
        """Refuse to continue a previous demo made with other settings: its files (the
        model, the trajectories) would be mixed into this one."""
        if self.previous is not None and self.previous != self.cfg:
            diff = sorted(k for k in set(self.cfg) | set(self.previous)
                          if self.cfg.get(k) != self.previous.get(k))
            raise InputError(
                f"'{self.path.parent}' holds a demo run with other settings ({', '.join(diff)} "
                "differ). Fix: pass --force to start it over, or choose another --out.")

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


# -- 1 structure -------------------------------------------------------------------------
def build_slab(cfg: DemoConfig):
    """Pd layers below Au layers, fcc(100), common lattice constant, vacuum above."""
    from ase.build import fcc100

    n = cfg.n_pd + cfg.n_au
    slab = fcc100("Pd", size=(cfg.nx, cfg.nx, n), a=cfg.a, periodic=True)  # ABAB stacking throughout
    layer = np.round(slab.positions[:, 2] / (cfg.a / 2)).astype(int)
    symbols = np.where(layer >= cfg.n_pd, "Au", "Pd")
    slab.set_chemical_symbols(symbols.tolist())
    slab.cell[2, 2] = n * cfg.a / 2 + cfg.vacuum
    slab.positions[:, 2] += cfg.vacuum / 2  # centre the slab in z
    slab.info.pop("adsorbate_info", None)  # ase.build's site table: extxyz cannot store it
    return slab


# -- 2 reference -------------------------------------------------------------------------
def emt_frames(slab, cfg: DemoConfig, progress: bool):
    """EMT Langevin MD at each reference temperature; every ``ref_every``-th frame labelled."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from atomtwin.engines.md import ASEForceProvider, Langevin, make_state

    frames = []
    for k, temp in enumerate(cfg.ref_temperatures):
        prov = ASEForceProvider(EMT())
        st = make_state(slab.positions, slab.get_chemical_symbols(), cell=slab.cell[:],
                        temperature_K=temp, seed=cfg.seed + k)
        integ = Langevin(cfg.timestep, temp, 5.0)
        st = integ.init(st, prov)
        for step in range(1, cfg.ref_steps + 1):
            st = integ.step(st, prov)
            if step % cfg.ref_every == 0:
                a = slab.copy()
                a.positions = st.positions.detach().cpu().numpy()
                f = st.forces.detach().cpu().numpy()
                a.calc = SinglePointCalculator(a, energy=float(st.energy), forces=f)
                frames.append(a)
        if progress:
            _say(f"reference: EMT MD at {temp:.0f} K done ({len(frames)} labelled frames)")
    return frames


# -- 3 model -----------------------------------------------------------------------------
def model_config(cfg: DemoConfig, out: Path, files: list[str], epochs: int) -> dict:
    """The demo's training config: ``epochs`` epochs (cosine schedule over them), no wall-clock
    limit, so that the result depends only on the data, the seed and the versions."""
    return {
        "train_files": files,
        "val_fraction": 0.15,
        "output_dir": str(out / "model"),
        "seed": cfg.seed,
        "batch_size": 2,
        "max_epochs": int(epochs),
        "max_time_s": None,
        "lr": 0.01,
        "schedule": "cosine",
        "ema_decay": 0.99,
        "energy_weight": 1.0,
        "force_weight": 10.0,
        "progress": False,
        # Allegro-style: strictly local, ~4x the throughput of the NequIP-style model here
        "model": {"architecture": "allegro", "species": ["Pd", "Au"], "r_max": cfg.r_max,
                  "num_layers": 2, "lmax": 1, "mul": 8, "latent": 32, "mlp_hidden": 32,
                  "num_basis": 8, "dtype": "float32"},
    }


def train_model(cfg: DemoConfig, out: Path, files: list[str], epochs: int) -> dict:
    """Train the demo potential on ``files`` for ``epochs`` epochs into ``out/model``."""
    from atomtwin.engines.mlip.train import train

    res = train(model_config(cfg, out, files, epochs), overwrite=True)  # the demo owns its folder
    return {k: (float(v) if isinstance(v, (int, float, np.floating)) else str(v)) for k, v in res.items()}


RETRAIN_FIX = ("run `atomtwin demo --retrain` (EMT reference data and an epoch-bounded training "
               "inside the run), or reinstall atomtwin to restore the shipped model.")


def shipped_model(cfg: DemoConfig) -> Path:
    """The shipped demo potential, after checking its SHA-256 (``atomtwin.data``'s manifest)
    and that its metadata fit ``cfg`` (a model file for Pd and Au with ``r_max == cfg.r_max``).

    Raises
    ------
    InputError
        Missing, changed or unfitting model; the message names the fix (``--retrain``).
    """
    from atomtwin.data import verified_path
    from atomtwin.engines.mlip.model import read_model_file

    path = verified_path("demo", "model.ckpt", fix=RETRAIN_FIX)
    try:
        head = read_model_file(path)
    except InputError as err:
        raise InputError(f"{err} Or: {RETRAIN_FIX}") from err
    species, r_max = sorted(head["species"]), float(head["r_max"])
    if species != ["Au", "Pd"] or abs(r_max - cfg.r_max) > 1e-9:
        raise InputError(
            f"shipped model '{path}' is for species {species} with r_max {r_max} Å; this demo "
            f"needs ['Au', 'Pd'] with r_max {cfg.r_max} Å. Fix: {RETRAIN_FIX}")
    return path


# -- 5/6 checks --------------------------------------------------------------------------
def energy_drift(ds) -> tuple[float, float]:
    """Linear drift of the total energy (eV/atom/ps) of an NVE trajectory, and the
    standard deviation of the total energy (eV/atom)."""
    from atomtwin.toolkit import units as U

    m = np.asarray(ds["mass"].values)
    v = np.asarray(ds["velocities"].values)
    ke = 0.5 * np.einsum("a,fai->f", m, v**2) * U.AMU_A2_PS2_TO_EV
    etot = (np.asarray(ds["energy"].values) + ke) / ds.sizes["atom"]
    t = np.asarray(ds["time"].values)
    slope = np.polyfit(t - t[0], etot, 1)[0]
    return float(slope), float(np.std(etot - np.polyval(np.polyfit(t, etot, 1), t)))


def model_vs_emt(ds, model_path: Path, n: int = 6) -> dict:
    """Force and energy errors of the model against EMT on ``n`` frames of its own MD."""
    from ase.calculators.emt import EMT
    from atomtwin.engines.mlip import Calculator
    from atomtwin.toolkit.io.ase_io import dataset_to_atoms

    calc = Calculator.from_checkpoint(str(model_path))
    idx = np.linspace(0, ds.sizes["frame"] - 1, n).astype(int)
    f_ref, f_mod, e_err = [], [], []
    for i in idx:
        a = dataset_to_atoms(ds, int(i))
        a.calc = EMT()
        e0, f0 = a.get_potential_energy(), a.get_forces()
        a.calc = calc
        e1, f1 = a.get_potential_energy(), a.get_forces()
        f_ref.append(f0)
        f_mod.append(f1)
        e_err.append((e1 - e0) / len(a))
    f_ref, f_mod = np.concatenate(f_ref), np.concatenate(f_mod)
    e_err = np.asarray(e_err)
    return {
        "force_mae": float(np.abs(f_mod - f_ref).mean()),
        "force_rmse": float(np.sqrt(((f_mod - f_ref) ** 2).mean())),
        "force_scale": float(np.abs(f_ref).mean()),
        "energy_mae_per_atom": float(np.abs(e_err - e_err.mean()).mean()),
        "energy_offset_per_atom": float(e_err.mean()),
        "frames": idx.tolist(),
        "f_ref": f_ref,
        "f_mod": f_mod,
    }


def toolkit_frames(path: Path) -> int:
    import atomtwin
    return int(atomtwin.toolkit.open(path).sizes["frame"])


# -- the run ------------------------------------------------------------------------------
def run_demo(out: str | Path = "demo-out", *, small: bool = False, force: bool = False,
             retrain: bool = False, progress: bool = True, config: DemoConfig | None = None,
             until: str | None = None) -> dict:
    """Run (or continue) the demo in ``out``; returns the summary dict.

    ``until`` (one of :data:`STAGES`) stops after that stage and returns
    ``{"stages": {stage: info}}`` for the stages done so far (a later call continues).
    """
    if until is not None and until not in STAGES:
        raise InputError(f"unknown demo stage '{until}'. Fix: use one of {', '.join(STAGES)}.")
    import torch
    from atomtwin.engines.studies.demo_analysis import analyse, write_report

    out = Path(out)
    cfg = config or (DemoConfig.small() if small else DemoConfig())
    if not force:
        previous = Stages(out, cfg, retrain)
        previous.check_same()
        model_done = "model" in previous.done
    else:
        model_done = False
    # the shipped model is checked before anything is written or deleted
    shipped = None if retrain or model_done else shipped_model(cfg)
    prepare_output(out, force)
    st = Stages(out, cfg, retrain)
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
        slab = build_slab(cfg)
        write(structure, slab)
        st.finish("structure", {"atoms": len(slab), "cell_A": slab.cell.lengths().tolist()})
    if until == "structure":
        return {"stages": st.done}
    slab = read(structure)

    ref_file = out / "reference.extxyz"
    if begin("reference"):
        if shipped is not None:
            st.finish("reference", {"frames": 0, "note": "shipped model used; no new reference data"})
        else:
            frames = emt_frames(slab, cfg, progress)
            write(ref_file, frames)
            st.finish("reference", {"frames": len(frames)})
    if until == "reference":
        return {"stages": st.done}

    model_path = out / "model" / "best.ckpt"
    if begin("model"):
        model_path.parent.mkdir(exist_ok=True)
        if shipped is not None:
            shutil.copy(shipped, model_path)
            meta = DATA_DIR / "model.json"
            info = json.loads(meta.read_text()) if meta.exists() else {}
            info["source"] = "atomtwin.data: demo/model.ckpt"
        else:
            info = train_model(cfg, out, [str(ref_file)], cfg.train_epochs)
        st.finish("model", info)
    if until == "model":
        return {"stages": st.done}

    from atomtwin.engines.md import run as md_run

    md_file = out / "md.nc"
    if begin("md") and md_file.exists():  # finished before the stage was recorded
        st.finish("md", {"frames": toolkit_frames(md_file), "note": "recovered finished trajectory"})
    elif "md" not in st.done:
        import warnings

        from atomtwin.engines.md.restart import ResumeNotice

        # the demo always asks to resume: on a first run there is nothing to say about it
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no earlier output", category=ResumeNotice)
            res = md_run({
                "structure": str(structure), "potential": {"kind": "mlip", "model": str(model_path)},
                "ensemble": "langevin", "timestep": cfg.timestep, "steps": cfg.md_steps,
                "temperature": cfg.temperature, "friction": 2.0, "stride": cfg.stride,
                "output": str(md_file), "checkpoint": str(out / "md.ckpt"),
                "checkpoint_every": cfg.stride * 10, "seed": cfg.seed, "progress": progress,
            }, resume=True)  # continues from md.ckpt; without one, restarts its own partial run
        st.finish("md", {"frames": res.n_frames, "wall_s": res.wall_s, "ns_per_day": res.ns_per_day,
                         "atom_steps_per_s": res.atom_steps_per_s})
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
        res = md_run({
            "structure": str(structure), "potential": {"kind": "mlip", "model": str(model_path)},
            "ensemble": "nve", "timestep": cfg.timestep / 2, "steps": cfg.nve_steps, "stride": 2,
            "output": str(nve_file), "progress": False, "seed": cfg.seed,
            "write": ["positions", "velocities", "energy", "cell"],
            "max_temperature": 3 * cfg.temperature,
        }, atoms=last)
        nve = atomtwin.toolkit.read(nve_file)
        drift, noise = energy_drift(nve)
        st.finish("nve", {"drift_eV_per_atom_per_ps": drift, "fluctuation_eV_per_atom": noise,
                          "timestep_ps": cfg.timestep / 2, "steps": cfg.nve_steps})
    if until == "nve":
        return {"stages": st.done}

    if begin("check"):
        chk = model_vs_emt(ds, model_path)
        np.savez(out / "check_forces.npz", f_ref=chk.pop("f_ref"), f_mod=chk.pop("f_mod"))
        st.finish("check", chk)
    if until == "check":
        return {"stages": st.done}

    if begin("analysis"):
        info = analyse(ds, out, cfg, seed=cfg.seed)
        st.finish("analysis", info)
    if until == "analysis":
        return {"stages": st.done}

    if begin("report"):
        summary = write_report(out, cfg, st.done)
        st.finish("report", {"wall_s": time.perf_counter() - t_start})
    summary = json.loads((out / "summary.json").read_text())
    return summary


# -- CLI ------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("demo", help="an interface study end to end on the embedded data (Pd | Au, EMT reference)")
    p.add_argument("--out", default="demo-out", help="output folder (report.md, figures, results.nc)")
    p.add_argument("--force", action="store_true", help="delete the output folder's contents first")
    p.add_argument("--small", action="store_true", help="tiny sizes (seconds; for tests)")
    p.add_argument("--retrain", action="store_true",
                   help="generate EMT reference data and train the potential (a fixed number of "
                        "epochs) instead of using the shipped model")
    p.add_argument("--until", choices=STAGES, metavar="STAGE",
                   help=f"stop after this stage ({', '.join(STAGES)}); a later call continues")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    summary = run_demo(args.out, small=args.small, force=args.force, retrain=args.retrain,
                       progress=not (args.json or args.no_progress), until=args.until)
    if args.json or args.until:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        from atomtwin.engines.studies.demo_analysis import format_summary

        print(format_summary(summary))
    return 0
