"""The on-the-fly loop: ``learn(config) -> LearnResult``.

Round after round, every unfinished walker runs MD with the current model until its
uncertainty exceeds the threshold (:func:`~atomtwin.engines.active.walkers.advance`); the
uncertain frames are labelled by the reference (serially or on a dask cluster), their
error *before* adding is measured (it also recalibrates the uncertainty), the labelled
frames join the dataset, and the committee is updated — a warm-started fine-tuning, or a
full retrain from fresh weights every ``fit.full_retrain_every`` labelled frames.  The
walkers then resume from before their uncertain step.  The run ends when every walker has
finished its steps or ``max_calls`` reference calls were made.

Everything is deterministic given ``seed`` (the MD noise, the initialisations, the
shuffles), and the state is committed atomically after each round (:mod:`.state`), so a
run killed anywhere and resumed makes the same reference calls in the same order.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from atomtwin.engines.active.calibration import Calibration, calibration_report
from atomtwin.engines.active.config import LearnConfig, load_config
from atomtwin.engines.active.fit import fit, force_errors, new_model
from atomtwin.engines.active.references import (
    Label,
    Reference,
    ReferenceFailures,
    label_many,
    make_calculator,
)
from atomtwin.engines.active.state import (
    CallCache,
    load_state,
    save_state,
    state_from_dict,
    state_to_dict,
    structure_hash,
    write_csv,
    write_dataset,
)
from atomtwin.engines.active.uncertainty import Committee, LastLayerGP
from atomtwin.engines.active.walkers import Trigger, advance, initial_walker_states
from atomtwin.engines.mlip.config import ModelConfig
from atomtwin.engines.mlip.data import read_frames, to_graph
from atomtwin.engines.mlip.model import build_model, save_checkpoint
from atomtwin.toolkit.errors import InputError

__all__ = ["learn", "LearnResult", "ReferenceFailures"]

CALL_COLUMNS = [
    "call",
    "round",
    "walker",
    "step",
    "reason",
    "sigma",
    "ok",
    "error",
    "wall_s",
    "error_before_forces_mae",
    "error_before_forces_rmse",
    "error_before_max",
    "reused",
]
CURVE_COLUMNS = [
    "round",
    "calls",
    "frames",
    "failed_calls",
    "val_forces_mae",
    "val_forces_rmse",
    "val_energy_mae",
    "mean_sigma_triggers",
    "mean_error_before",
    "calibration_scale",
    "threshold",
    "heldout_coverage_1sigma",
    "heldout_coverage_2sigma",
    "heldout_spearman",
    "retrain",
    "wall_s",
]


@dataclass
class LearnResult:
    """What :func:`learn` returns (paths are inside ``output_dir``)."""

    model: Path
    dataset: Path
    calls_csv: Path
    learning_curve_csv: Path
    figure: Path | None
    n_calls: int
    n_failed: int
    n_frames: int
    rounds: int
    reused_calls: int
    finished: bool
    curve: list[dict[str, Any]] = field(default_factory=list)


# -- the run's memory --------------------------------------------------------------------
class _Run:
    def __init__(self, cfg: LearnConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.frames: list[dict[str, Any]] = []
        self.graphs: list[dict[str, torch.Tensor]] = []
        self.calls: list[dict[str, Any]] = []
        self.curve: list[dict[str, Any]] = []
        self.walkers: list[dict[str, Any]] = []  # {"state": MDState, "done": bool}
        self.round = 0
        self.calib: Calibration | None = None
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []  # (raw sigma (N,), error (N,3))
        self.frames_since_retrain = 0
        self.estimator = None
        self.val_graphs: list = []
        self.floor = math.nan  # median calibrated structure sigma of the training frames
        self.walker_floor: dict[int, float] = {}  # the same per walker (``floor: walker``)
        self.observer = None
        self.t0 = time.perf_counter()

    # frames
    def add_frame(self, fr: dict[str, Any]) -> None:
        self.frames.append(fr)
        self.graphs.append(to_graph(fr, self.estimator.model.species, self.estimator.model.r_max))

    # estimator
    def build_estimator(self, models) -> None:
        u = self.cfg.uncertainty
        self.estimator = (
            Committee(models)
            if u.kind == "committee"
            else LastLayerGP(models[0], u.reg, u.features)
        )

    def n_models(self) -> int:
        return self.cfg.uncertainty.n_models if self.cfg.uncertainty.kind == "committee" else 1

    def train_all(self, fresh: bool) -> None:
        f, seed = self.cfg.fit, self.cfg.seed
        models = []
        for k in range(self.n_models()):
            s = seed * 7919 + 101 * k + 13 * self.round
            if fresh or self.estimator is None:
                m = new_model(self.cfg.model, self.frames, seed=s)
                if len(self.graphs) != len(self.frames):
                    self.graphs = [to_graph(fr, m.species, m.r_max) for fr in self.frames]
                epochs = f.epochs
            else:
                m = self.estimator.models[k]
                epochs = f.update_epochs
            fit(
                m,
                self.graphs,
                epochs=epochs,
                lr=f.lr if fresh else f.lr * 0.5,
                batch_size=f.batch_size,
                seed=s,
                energy_weight=f.energy_weight,
                force_weight=f.force_weight,
            )
            models.append(m)
        self.build_estimator(models)
        self.estimator.fit_features(self.graphs)

    def recalibrate(self) -> None:
        pairs = list(self.pairs[-self.cfg.uncertainty.calibration_window :])
        if self.val_graphs:
            for p, g in zip(self.estimator.evaluate(self.val_graphs), self.val_graphs, strict=True):
                pairs.append((p.sigma, p.forces - g["forces"].numpy()))
        if pairs:
            self.calib = Calibration.fit(
                [p[0] for p in pairs], [p[1] for p in pairs], self.cfg.uncertainty.calibration
            )
        self.update_floor()

    def sigma_map(self) -> Calibration | None:
        """Raw -> calibrated sigma for the trigger; ``None`` (the first check calls) before
        any calibration, except for a purely relative trigger (``threshold_train`` alone):
        a ratio of two sigmas needs no scale, so the raw values serve until the first
        labelled frame calibrates them (no call is spent only to calibrate)."""
        u = self.cfg.uncertainty
        if self.calib is None and u.threshold_train is not None and u.trigger == 0.0:
            return Calibration()
        return self.calib

    def update_floor(self) -> None:
        """The model's own uncertainty level: the median calibrated structure sigma (eV/Å)
        of its training frames, each as if left out of the fit for the GP (only needed by
        ``threshold_train``).  With ``floor: walker`` also one level per walker, over the
        frames that walker called and the seed frames (which belong to every walker)."""
        cal = self.sigma_map()
        self.walker_floor = {}
        if self.cfg.uncertainty.threshold_train is None or cal is None:
            self.floor = math.nan
            return
        if hasattr(self.estimator, "heldout_sigma"):  # GP: each frame as if left out
            raw = self.estimator.heldout_sigma(self.graphs)
        else:  # committee: in-sample spread (lower than on new frames like them)
            raw = [p.sigma for p in self.estimator.evaluate(self.graphs)]
        level = np.array([np.max(cal(r)) for r in raw])
        self.floor = float(np.median(level))
        if self.cfg.uncertainty.floor == "walker":
            owner = np.array([_walker_of(fr) for fr in self.frames])
            for w in range(len(_expanded(self.cfg))):
                mine = level[(owner == w) | (owner < 0)]
                self.walker_floor[w] = float(np.median(mine)) if mine.size else self.floor

    def threshold(self, walker: int | None = None) -> float:
        """The trigger (eV/Å) of the next round; for one walker under ``floor: walker``
        (without a walker: the pooled level)."""
        u = self.cfg.uncertainty
        floor = self.walker_floor.get(walker, self.floor) if walker is not None else self.floor
        if u.threshold_train is None or not math.isfinite(floor):
            return u.trigger
        return max(u.trigger, u.threshold_train * floor)

    # persistence
    def payload(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "round": self.round,
            "model_config": self.estimator.model.config.to_dict(),
            "models": [m.state_dict() for m in self.estimator.models],
            "frames": [_frame_to_plain(fr) for fr in self.frames],
            "calls": self.calls,
            "curve": self.curve,
            "walkers": [
                {
                    "state": state_to_dict(w["state"]),
                    "done": w["done"],
                    "last_call": w.get("last_call", -1),
                }
                for w in self.walkers
            ],
            "calibration": self.calib.to_dict() if self.calib is not None else None,
            "pairs": [(torch.as_tensor(s), torch.as_tensor(e)) for s, e in self.pairs],
            "frames_since_retrain": self.frames_since_retrain,
        }

    def restore(self, st: dict[str, Any]) -> None:
        self.round = int(st["round"])
        mcfg = ModelConfig.from_dict(st["model_config"])
        models = []
        for sd in st["models"]:
            m = build_model(mcfg)
            m.load_state_dict(sd)
            models.append(m.eval())
        self.frames = [_frame_from_plain(fr) for fr in st["frames"]]
        self.graphs = [to_graph(fr, models[0].species, models[0].r_max) for fr in self.frames]
        self.build_estimator(models)
        self.estimator.fit_features(self.graphs)
        self.calls, self.curve = list(st["calls"]), list(st["curve"])
        self.walkers = [
            {
                "state": state_from_dict(w["state"]),
                "done": bool(w["done"]),
                "last_call": int(w.get("last_call", -1)),
            }
            for w in st["walkers"]
        ]
        self.calib = Calibration.from_dict(st["calibration"]) if st["calibration"] else None
        self.update_floor()
        self.pairs = [(s.numpy(), e.numpy()) for s, e in st["pairs"]]
        self.frames_since_retrain = int(st["frames_since_retrain"])

    def commit(self) -> None:
        """Derived files first, the state last (its rename is the commit)."""
        out = self.out
        write_dataset(out / "dataset.extxyz", self.frames)
        meta = {"format_note": "atomtwin learn", "calls": len(self.calls), "round": self.round}
        save_checkpoint(out / "model.ckpt", self.estimator.model, {"active_learning": meta})
        if len(self.estimator.models) > 1:
            (out / "committee").mkdir(exist_ok=True)
            for k, m in enumerate(self.estimator.models):
                save_checkpoint(
                    out / "committee" / f"member-{k}.ckpt", m, {"active_learning": meta}
                )
        write_csv(out / "calls.csv", self.calls, CALL_COLUMNS)
        write_csv(out / "learning_curve.csv", self.curve, CURVE_COLUMNS)
        save_state(out / "state.pt", self.payload())


def _walker_of(fr: dict[str, Any]) -> int:
    """The walker whose call labelled a training frame; -1 for seed frames."""
    try:
        return int((fr.get("info") or {}).get("walker", -1))
    except (TypeError, ValueError):
        return -1


def _frame_to_plain(fr: dict[str, Any]) -> dict[str, Any]:
    d = {
        k: (
            torch.as_tensor(np.asarray(v))
            if k in ("numbers", "pos", "cell", "pbc", "forces", "stress")
            else v
        )
        for k, v in fr.items()
        if k in ("numbers", "pos", "cell", "pbc", "energy", "forces", "stress", "info")
    }
    return d


def _frame_from_plain(d: dict[str, Any]) -> dict[str, Any]:
    fr = {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in d.items()}
    fr["source"], fr["index"] = "dataset", 0
    return fr


# -- the loop ----------------------------------------------------------------------------
def _labelled_frame(fr: dict[str, Any], lab: Label, info: dict[str, Any]) -> dict[str, Any]:
    new = {k: fr[k] for k in ("numbers", "pos", "cell", "pbc")}
    new.update(
        energy=float(lab.energy),
        forces=np.asarray(lab.forces, dtype=float),
        info=info,
        source="reference",
        index=0,
    )
    if lab.stress is not None:
        new["stress"] = np.asarray(lab.stress, dtype=float)
    return new


def _atoms(fr: dict[str, Any]):
    from ase import Atoms

    return Atoms(numbers=fr["numbers"], positions=fr["pos"], cell=fr["cell"], pbc=fr["pbc"])


def _label_round(
    run: _Run, ref: Reference, cache: CallCache, jobs: list[tuple[Trigger, int]], client
) -> list[tuple[Trigger, int, Label, bool]]:
    """Labels of ``jobs`` ((trigger, call index)): cached ones from disk, the rest from the
    reference (each result stored as soon as the batch returns)."""
    keys = [structure_hash(t.frame["numbers"], t.frame["pos"], t.frame["cell"]) for t, _ in jobs]
    got = [cache.get(i, k) for (_, i), k in zip(jobs, keys, strict=True)]
    todo = [n for n, g in enumerate(got) if g is None]

    def store(k: int, lab: Label) -> None:  # on disk as soon as it returns
        n = todo[k]
        t, i = jobs[n]
        cache.put(i, keys[n], lab, {"walker": t.walker, "step": t.step, "sigma": t.sigma})
        got[n] = lab

    label_many(ref, [_atoms(jobs[n][0].frame) for n in todo], client, on_result=store)
    return [
        (t, i, lab, n not in todo) for n, ((t, i), lab) in enumerate(zip(jobs, got, strict=True))
    ]


def _init_run(run: _Run, ref: Reference, cache: CallCache, client) -> None:
    cfg = run.cfg
    seeds: list[dict[str, Any]] = []
    for p in cfg.seed_frames:
        seeds.extend(read_frames(p))
    if not seeds:
        raise InputError(
            f"seed_frames {list(cfg.seed_frames)} hold no structure. Fix: give seed structures."
        )
    bare = ["forces" not in fr or "energy" not in fr for fr in seeds]
    unlabelled = [fr for fr, b in zip(seeds, bare, strict=True) if b]
    labelled = [fr for fr, b in zip(seeds, bare, strict=True) if not b]
    for fr in labelled:
        fr["info"] = {"origin": "seed", "walker": -1, "step": -1, "call": -1}
    if unlabelled:  # the reference labels bare seed structures first (logged calls)
        jobs = [(Trigger(-1, -1, math.nan, fr, "seed"), k) for k, fr in enumerate(unlabelled)]
        for t, i, lab, reused in _label_round(run, ref, cache, jobs, client):
            run.calls.append(_call_row(i, 0, t, lab, reused, {}))
            ref.record(lab, f"seed structure {i}")
            if lab.ok:
                labelled.append(
                    _labelled_frame(
                        t.frame, lab, {"origin": "seed", "walker": -1, "step": -1, "call": i}
                    )
                )
    if not labelled:
        raise InputError(
            "no seed structure could be labelled. Fix: check the reference and the seed frames."
        )
    run.frames = labelled
    run.graphs = []
    run.train_all(fresh=True)
    run.walkers = [
        {"state": st, "done": False, "last_call": -1}
        for _, st in initial_walker_states(cfg.walkers, cfg.seed)
    ]
    run.recalibrate()
    run.curve.append(_curve_row(run, [], retrain=True))


def _call_row(
    i: int, rnd: int, t: Trigger, lab: Label, reused: bool, err: dict[str, float]
) -> dict[str, Any]:
    return {
        "call": i,
        "round": rnd,
        "walker": t.walker,
        "step": t.step,
        "reason": t.reason,
        "sigma": t.sigma,
        "ok": lab.ok,
        "error": lab.error,
        "wall_s": round(lab.wall_s, 6),
        "error_before_forces_mae": err.get("mae", math.nan),
        "error_before_forces_rmse": err.get("rmse", math.nan),
        "error_before_max": err.get("max", math.nan),
        "reused": reused,
    }


def _curve_row(run: _Run, rows: list[dict[str, Any]], retrain: bool) -> dict[str, Any]:
    val = force_errors(run.estimator.model, run.val_graphs) if run.val_graphs else {}
    ok = [r for r in rows if r["ok"]]
    return {
        "round": run.round,
        "calls": len(run.calls),
        "frames": len(run.frames),
        "failed_calls": sum(not r["ok"] for r in run.calls),
        "val_forces_mae": val.get("forces_mae", math.nan),
        "val_forces_rmse": val.get("forces_rmse", math.nan),
        "val_energy_mae": val.get("energy_mae", math.nan),
        "mean_sigma_triggers": float(np.mean([r["sigma"] for r in rows])) if rows else math.nan,
        "mean_error_before": float(np.mean([r["error_before_forces_rmse"] for r in ok]))
        if ok
        else math.nan,
        "calibration_scale": run.calib.scale
        if run.calib is not None and run.calib.kind == "scale"
        else math.nan,
        "threshold": run.threshold(),  # eV/Å, the trigger of the next round
        "retrain": retrain,
        "wall_s": round(time.perf_counter() - run.t0, 3),
    }


def learn(
    config: LearnConfig | dict[str, Any] | str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    client=None,
    cluster: str | None = None,
    progress: bool | None = None,
    max_rounds: int | None = None,
    calculator=None,
    observer=None,
) -> LearnResult:
    """Run (or resume) active learning.

    Parameters
    ----------
    config
        :class:`LearnConfig`, a dict of its fields or a YAML path.
    resume
        Continue the run in ``output_dir`` (an error when there is none).
    overwrite
        Delete a previous run in ``output_dir`` and start over.
    client, cluster
        A ``distributed.Client``, or a scheduler address to connect one: reference calls of a
        round run in parallel there.
    progress
        Progress bar on stderr (default: ``config.progress``).
    max_rounds
        Stop after this many rounds in this call (the run can be resumed).
    calculator
        An ASE calculator object used as the reference instead of ``reference.calculator``
        (e.g. a configured DFT calculator; a resumed run must be given the same one).
    observer
        Optional ``observer(walker, step, frame, sigma)`` called at every uncertainty check
        of every walker (frame: numbers, pos, cell, pbc; sigma: calibrated, eV/Å) — e.g. to
        keep the walkers' trajectories.

    Returns
    -------
    :class:`LearnResult` with the paths of the model (``atomtwin compile`` takes it) and of
    the dataset.

    Raises
    ------
    ReferenceFailures
        The reference failed ``reference.max_consecutive_failures`` times in a row (the state
        of the last round is kept; fix the reference and resume).
    """
    if isinstance(config, (str, Path)):
        cfg = load_config(config)
    elif isinstance(config, dict):
        cfg = LearnConfig.from_dict(config)
    else:
        cfg = config
    out = Path(cfg.output_dir)
    state_path = out / "state.pt"
    if resume and not state_path.exists():
        if not (out / "calls").exists():
            raise InputError(
                f"nothing to resume in '{out}' (no state.pt). Fix: run without --resume."
            )
    elif not resume and out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError(
                f"'{out}' holds a previous run; nothing was changed. Fix: --resume to "
                "continue it, --force to start over, or another output_dir."
            )
        for p in (
            "state.pt",
            "dataset.extxyz",
            "model.ckpt",
            "calls.csv",
            "learning_curve.csv",
            "learning_curve.png",
        ):
            (out / p).unlink(missing_ok=True)
        for d in ("calls", "committee"):
            shutil.rmtree(out / d, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    own_client = None
    if cluster and client is None:
        from distributed import Client

        client = own_client = Client(cluster)
    try:
        return _learn(
            cfg, out, state_path, resume, client, progress, max_rounds, calculator, observer
        )
    finally:
        if own_client is not None:  # the one we connected: closed, the cluster keeps running
            own_client.close()


def _learn(cfg, out, state_path, resume, client, progress, max_rounds, calculator, observer):
    torch.manual_seed(cfg.seed)
    rc = cfg.reference
    ref = Reference(
        calculator if calculator is not None else make_calculator(rc.calculator, dict(rc.kwargs)),
        rc.timeout_s,
        rc.stress,
        rc.max_consecutive_failures,
    )
    cache = CallCache(out / "calls")
    run = _Run(cfg)
    run.observer = observer
    for p in cfg.validation_files:
        run.val_graphs.extend(read_frames(p))
    if state_path.exists():  # resume (a run killed during its set-up has no state: start again)
        st = load_state(state_path)
        cfg = _resumable_config(st["config"], cfg)
        run.cfg = cfg
        if st["config"] != cfg.to_dict():
            raise InputError(
                f"'{state_path}' belongs to a run with another config. Fix: resume with the "
                "same config, or --force to start over."
            )
        run.restore(st)
        for row in reversed(run.calls):  # failures in a row so far count on after a resume
            if row["ok"]:
                break
            ref.consecutive += 1
        run.val_graphs = [
            to_graph(fr, run.estimator.model.species, run.estimator.model.r_max)
            for fr in run.val_graphs
        ]
    else:
        run.frames = []
        vals = run.val_graphs
        run.val_graphs = []
        _init_run(run, ref, cache, client)
        run.val_graphs = [
            to_graph(fr, run.estimator.model.species, run.estimator.model.r_max) for fr in vals
        ]
        run.recalibrate()
        run.curve[-1] = _curve_row(run, [], retrain=True)
        run.commit()
    show = cfg.progress if progress is None else progress
    bar = _bar(run, show)
    rounds = 0
    try:
        while _step_round(run, ref, cache, client, bar):
            rounds += 1
            if max_rounds is not None and rounds >= max_rounds:
                break
    finally:
        if bar is not None:
            bar.close()
    finished = all(w["done"] for w in run.walkers) or len(run.calls) >= cfg.max_calls
    fig = None
    if finished:
        from atomtwin.engines.active.report import plot_learning_curve

        fig = plot_learning_curve(run.curve, run.calls, out / "learning_curve.png")
    return LearnResult(
        out / "model.ckpt",
        out / "dataset.extxyz",
        out / "calls.csv",
        out / "learning_curve.csv",
        fig,
        len(run.calls),
        sum(not r["ok"] for r in run.calls),
        len(run.frames),
        run.round,
        cache.reused,
        finished,
        list(run.curve),
    )


def _step_round(run: _Run, ref: Reference, cache: CallCache, client, bar) -> bool:
    """One round; False when there is nothing left to do."""
    cfg = run.cfg
    left = cfg.max_calls - len(run.calls)
    if left <= 0 or all(w["done"] for w in run.walkers):
        return False
    u = cfg.uncertainty
    triggers: list[Trigger] = []
    sigma_of = run.sigma_map()
    last_sigma = math.nan
    for w, (wc, wk) in enumerate(zip(_expanded(cfg), run.walkers, strict=True)):
        if wk["done"]:
            continue
        before = wk["state"].step
        last = wk.get("last_call", -1)
        st, trig, last_sigma = advance(
            w,
            wc,
            wk["state"],
            run.estimator,
            sigma_of,
            run.threshold(w),
            u.check_every,
            cfg.max_force,
            quiet_until=last + u.min_gap if last >= 0 and u.min_gap else -1,
            observer=run.observer,
            min_distance=cfg.min_distance,
        )
        wk["state"] = st
        if trig is None:
            wk["done"] = True
        else:
            triggers.append(trig)
        if bar is not None:
            bar.update(max(st.step - before, 0))
    cap = min(left, cfg.max_calls_per_round or left)
    triggers = triggers[:cap]
    for t in triggers:
        run.walkers[t.walker]["last_call"] = t.step
    run.round += 1
    first = len(run.calls)
    jobs = [(t, first + k) for k, t in enumerate(triggers)]
    rows = []
    new_frames = 0
    n_pairs = len(run.pairs)
    for t, i, lab, reused in _label_round(run, ref, cache, jobs, client):
        err: dict[str, float] = {}
        if lab.ok:
            g = to_graph(t.frame, run.estimator.model.species, run.estimator.model.r_max)
            pred = run.estimator.evaluate([g])[0]
            d = pred.forces - lab.forces
            err = {
                "mae": float(np.abs(d).mean()),
                "rmse": float(np.sqrt((d**2).mean())),
                "max": float(np.linalg.norm(d, axis=1).max()),
            }
            run.pairs.append((pred.sigma, d))
            info = {
                "origin": "active",
                "walker": t.walker,
                "step": t.step,
                "call": i,
                "sigma": t.sigma if math.isfinite(t.sigma) else -1.0,
                "reason": t.reason,
                "error_before_rmse": err["rmse"],
                "error_before_max": err["max"],
            }
            run.add_frame(_labelled_frame(t.frame, lab, info))
            new_frames += 1
        row = _call_row(i, run.round, t, lab, reused, err)
        run.calls.append(row)
        rows.append(row)
        ref.record(lab, f"call {i} (walker {t.walker}, step {t.step})")
    # calibration report on frames the calibration has not seen: this round's labelled
    # frames, their errors measured before adding, under the calibration of the last round
    report = {}
    if run.calib is not None and len(run.pairs) > n_pairs:
        new = run.pairs[n_pairs:]
        report = calibration_report([run.calib(p[0]) for p in new], [p[1] for p in new])
    retrain = False
    if new_frames:
        run.frames_since_retrain += new_frames
        every = cfg.fit.full_retrain_every
        retrain = bool(every) and run.frames_since_retrain >= every
        if retrain:
            run.frames_since_retrain = 0
        run.train_all(fresh=retrain)
    run.recalibrate()
    run.curve.append(
        _curve_row(run, rows, retrain)
        | {
            f"heldout_{k}": report.get(k, math.nan)
            for k in ("coverage_1sigma", "coverage_2sigma", "spearman")
        }
    )
    run.commit()
    if bar is not None:
        last = next((r for r in reversed(run.calls) if r["ok"]), None)
        bar.set_postfix_str(
            f"walkers {sum(not w['done'] for w in run.walkers)}/{len(run.walkers)}, calls {len(run.calls)}"
            f" ({sum(not r['ok'] for r in run.calls)} failed), sigma {last_sigma:.3g} eV/Å, last error "
            f"{last['error_before_forces_rmse'] if last else math.nan:.3g} eV/Å",
            refresh=True,
        )
    return True


def _resumable_config(stored: dict[str, Any], cfg: LearnConfig) -> LearnConfig:
    """``cfg`` as it applies to a state written by an older version: keys that version did
    not have take the behaviour it had (``uncertainty.features``: ``last``), the others
    their defaults, so that an old run resumes as it started."""
    import dataclasses

    unc = stored.get("uncertainty", {})
    if "features" not in unc:
        cfg = dataclasses.replace(
            cfg, uncertainty=dataclasses.replace(cfg.uncertainty, features="last")
        )
    for k, v in cfg.to_dict()["uncertainty"].items():  # keys added since: their defaults
        unc.setdefault(k, v)
    return cfg


def _expanded(cfg: LearnConfig):
    return [wc for wc in cfg.walkers for _ in range(wc.copies)]


def _bar(run: _Run, show: bool):
    if not show:
        return None
    from tqdm import tqdm

    total = sum(wc.steps for wc in _expanded(run.cfg))
    done = sum(w["state"].step for w in run.walkers)
    return tqdm(
        total=total,
        initial=done,
        unit="step",
        desc="active learning",
        file=sys.stderr,
        dynamic_ncols=True,
    )
