"""Training: weighted energy/force/stress loss, AdamW, plateau/cosine schedules, EMA,
early stopping, a checkpoint every epoch with exact resume, CSV metrics, and
data-parallel training under ``torchrun`` (gloo or NCCL).

Exact resume: the shuffling of epoch ``k`` is drawn from ``seed`` and ``k`` alone, and
the checkpoint holds weights, EMA weights, optimizer, scheduler and stopping state, so a
run resumed from epoch ``k`` continues exactly as the uninterrupted run.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from atomtwin.engines.mlip.config import ModelConfig, TrainConfig
from atomtwin.engines.mlip.data import (
    FrameDataset,
    collate,
    read_frames,
    species_of,
    split_indices,
    statistics,
)
from atomtwin.engines.mlip.model import (
    Potential,
    build_model,
    load_model,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from atomtwin.toolkit.errors import InputError

__all__ = ["check_output_dir", "evaluate", "loss_terms", "train"]

QUANTITIES = ("energy", "forces", "stress")


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _allreduce(t: torch.Tensor) -> torch.Tensor:
    if _world()[1] > 1:
        dist.all_reduce(t)
    return t


def loss_terms(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Sums of squared and absolute errors and their counts, per quantity.

    Energy errors are per atom (eV/atom), forces per component (eV/Å), stress per
    component (eV/Å³).  Returns ``{q: (sum_sq, sum_abs, count)}`` as a (3,) tensor each.
    """
    terms = {}
    if "ref_energy" in batch:
        d = (out["energy"] - batch["ref_energy"].to(out["energy"])) / batch["num_atoms"].to(out["energy"])
        terms["energy"] = torch.stack([(d * d).sum(), d.abs().sum().detach(), d.new_tensor(d.numel())])
    if "ref_forces" in batch:
        d = out["forces"] - batch["ref_forces"].to(out["forces"])
        terms["forces"] = torch.stack([(d * d).sum(), d.abs().sum().detach(), d.new_tensor(d.numel())])
    if "ref_stress" in batch:
        d = out["stress"] - batch["ref_stress"].to(out["stress"])
        terms["stress"] = torch.stack([(d * d).sum(), d.abs().sum().detach(), d.new_tensor(d.numel())])
    return terms


def _weights(cfg: TrainConfig) -> dict[str, float]:
    return {"energy": cfg.energy_weight, "forces": cfg.force_weight, "stress": cfg.stress_weight}


def evaluate(model: Potential, dataset: FrameDataset, batch_size: int = 8,
             indices: list[int] | None = None) -> dict[str, float]:
    """MAE and RMSE of energy/atom (eV), forces (eV/Å), stress (eV/Å³) over ``dataset``
    (or the given indices); keys like ``forces_mae``.  Under DDP each rank evaluates its
    share and the sums are reduced."""
    rank, world = _world()
    idx = list(range(len(dataset))) if indices is None else list(indices)
    idx = idx[rank::world]
    dtype = model.shift.dtype
    acc = {q: torch.zeros(3, dtype=torch.float64) for q in QUANTITIES}
    was = model.training
    model.eval()
    for s in range(0, len(idx), batch_size):
        b = collate([dataset[i] for i in idx[s:s + batch_size]])
        b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}
        out = model(b)
        for q, t in loss_terms(out, b).items():
            acc[q] += t.detach().double()
    model.train(was)
    res = {}
    for q in QUANTITIES:
        a = _allreduce(acc[q])
        if a[2] > 0:
            res[f"{q}_mae"] = float(a[1] / a[2])
            res[f"{q}_rmse"] = float(torch.sqrt(a[0] / a[2]))
    return res


def _residual_frames(frames: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Subtract a trained (small) model's predictions from the labels."""
    small = load_model(path)
    dtype = small.shift.dtype
    from atomtwin.engines.mlip.data import to_graph

    out_frames = []
    for fr in frames:
        g = to_graph(fr, small.species, small.r_max)
        b = collate([g])
        b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}
        o = small(b)
        new = dict(fr)
        if "energy" in fr:
            new["energy"] = fr["energy"] - float(o["energy"][0])
        if "forces" in fr:
            new["forces"] = fr["forces"] - o["forces"].detach().double().numpy()
        if "stress" in fr and np.all(fr["pbc"]):
            new["stress"] = fr["stress"] - o["stress"][0].detach().double().numpy()
        out_frames.append(new)
    return out_frames


def _read_labelled(path: str, weights: dict[str, float]) -> list[dict[str, Any]]:
    """The frames of one data file, refused when they hold nothing the loss can fit, or
    when a weighted label is in some frames and not in others (a batch without it would
    silently drop that term)."""
    frames = read_frames(path)
    if not frames:
        raise InputError(f"training file '{path}' holds no frame. Fix: check the file.")
    held = {q: [k for k, fr in enumerate(frames) if q in fr] for q in QUANTITIES}
    if not any(held.values()):
        raise InputError(
            f"training file '{path}' has no labels: none of its {len(frames)} frame(s) has an energy, "
            "forces or a stress, so there is nothing to fit. Fix: give a file with reference labels "
            "(e.g. extxyz written from a calculator, with energy and forces per frame)."
        )
    for q in ("energy", "forces"):
        if weights[q] > 0 and 0 < len(held[q]) < len(frames):
            k = next(i for i in range(len(frames)) if i not in set(held[q]))
            raise InputError(
                f"training file '{path}': frame {k} has no {q} while {len(held[q])} of its "
                f"{len(frames)} frames have one. Fix: label every frame, or remove the unlabelled ones."
            )
    return frames


def _check_loss_has_labels(frames: list[dict[str, Any]], files: tuple[str, ...],
                           weights: dict[str, float]) -> None:
    present = [q for q in QUANTITIES if any(q in fr for fr in frames)]
    if not any(weights[q] > 0 for q in present):
        weighted = [f"{q} (weight {weights[q]:g})" for q in QUANTITIES if weights[q] > 0]
        raise InputError(
            f"training files {list(files)} hold only {', '.join(present)}, which the loss does not use "
            f"(it fits {', '.join(weighted) or 'nothing'}). Fix: set the weight of "
            f"{' or '.join(present)} above 0, or give data with the weighted labels."
        )


def _load_data(cfg: TrainConfig) -> tuple[list, list]:
    if not cfg.train_files:
        raise InputError("train_files is empty. Fix: list at least one extxyz/netCDF file in the config.")
    weights = _weights(cfg)
    train = [fr for p in cfg.train_files for fr in _read_labelled(p, weights)]
    _check_loss_has_labels(train, cfg.train_files, weights)
    if cfg.val_files:
        val = [fr for p in cfg.val_files for fr in _read_labelled(p, weights)]
        _check_loss_has_labels(val, cfg.val_files, weights)
    else:
        ti, vi = split_indices(len(train), cfg.val_fraction, cfg.seed)
        train, val = [train[i] for i in ti], [train[i] for i in vi]
    if cfg.residual_of:
        train = _residual_frames(train, cfg.residual_of)
        val = _residual_frames(val, cfg.residual_of)
    return train, val


def _epochs_in_csv(path: Path) -> int:
    try:
        with open(path, newline="") as fh:
            return sum(1 for _ in csv.DictReader(fh))
    except (FileNotFoundError, csv.Error):
        return 0


def check_output_dir(output_dir: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Refuse to start over a previous run's output without ``overwrite``, and to resume
    when there is nothing to resume.

    A previous run is a ``last.ckpt`` or ``best.ckpt`` in ``output_dir``, or a
    ``metrics.csv`` with at least one epoch (a run killed before its first epoch ended
    leaves only the header, and is no run to keep).
    """
    out = Path(output_dir)
    last, best, csv_path = out / "last.ckpt", out / "best.ckpt", out / "metrics.csv"
    n = _epochs_in_csv(csv_path)
    found = [p.name for p in (last, best) if p.exists()] + ([f"metrics.csv ({n} epochs)"] if n else [])
    if resume:
        if last.exists():
            return
        if found:
            raise InputError(f"cannot resume: '{out}' has no last.ckpt (it holds {', '.join(found)}). "
                             "Fix: start over with overwrite=True, or use another output_dir.")
        raise InputError(f"nothing to resume: '{out}' holds no checkpoint (the run never finished an "
                         "epoch there). Fix: run without resume=True to start the training.")
    if found and not overwrite:
        raise InputError(f"'{out}' holds a previous training run ({', '.join(found)}); nothing was changed. "
                         "Fix: resume=True to continue it, overwrite=True to start over and replace it, "
                         "or another output_dir.")


class _EMA:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        self.n = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for pe, p in zip(self.model.parameters(), model.parameters(), strict=True):
            pe.mul_(d).add_(p.detach(), alpha=1 - d)


def _make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer):
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.lr_factor, patience=cfg.lr_patience)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _columns() -> list[str]:
    cols = ["epoch", "lr", "train_loss", "val_loss", "wall_s"]
    for split in ("train", "val"):
        for q in QUANTITIES:
            cols += [f"{split}_{q}_mae", f"{split}_{q}_rmse"]
    return cols


def train(config: TrainConfig | dict[str, Any], resume: bool = False, *,
          overwrite: bool = False) -> dict[str, Any]:
    """Train a potential.

    Parameters
    ----------
    config
        A :class:`TrainConfig` (or a dict of its fields).
    resume
        Continue from ``output_dir/last.ckpt`` (its config must match); an error when there
        is none.
    overwrite
        Start over when ``output_dir`` holds a previous run (its ``best.ckpt`` is replaced
        and ``metrics.csv`` restarted); with ``False`` (the default, as ``atomtwin train``
        without ``--force``) a previous run is an error and nothing is touched.

    Returns
    -------
    dict with ``best_checkpoint``, ``last_checkpoint``, ``epochs`` run in total,
    ``best_val_loss`` and the final validation metrics (``val_forces_mae`` etc.).
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    rank, world = _world()
    out_dir = Path(cfg.output_dir)
    last_path, best_path, csv_path = out_dir / "last.ckpt", out_dir / "best.ckpt", out_dir / "metrics.csv"
    check_output_dir(out_dir, resume, overwrite)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)

    train_frames, val_frames = _load_data(cfg)
    mcfg = cfg.model
    species = list(mcfg.species) or species_of(train_frames + val_frames)
    missing = sorted(set(species_of(train_frames + val_frames)) - set(species))
    if missing:
        raise InputError(f"the data hold species {missing} that model.species {species} lacks. "
                         "Fix: add them to model.species or leave it empty.")
    train_ds = FrameDataset(train_frames, species, mcfg.r_max, cache_graphs=True)
    val_ds = FrameDataset(val_frames, species, mcfg.r_max, cache_graphs=True)

    state: dict[str, Any] | None = None
    if resume:
        state = read_checkpoint(last_path)
        if not _resume_compatible(state.get("train_config") or {}, cfg):
            raise InputError(f"cannot resume from '{last_path}': its training config differs from this one. "
                             "Fix: resume with the same config, or start a new output_dir.")
        if state["epoch"] >= cfg.max_epochs:
            raise InputError(f"nothing to resume: '{last_path}' has finished {state['epoch']} epochs and "
                             f"max_epochs is {cfg.max_epochs}. Fix: raise max_epochs to train longer.")
        model = model_from_checkpoint(state, last_path, weights="raw")
    else:
        stats = statistics(train_ds)
        mcfg = ModelConfig.from_dict(mcfg.to_dict() | {
            "species": species,
            "avg_num_neighbors": mcfg.avg_num_neighbors or float(stats["avg_num_neighbors"]),
        })
        torch.manual_seed(cfg.seed)
        model = build_model(mcfg)
        model.set_statistics(torch.as_tensor(stats["shift"]), torch.as_tensor(stats["scale"]))
    mcfg = model.config
    dtype = model.shift.dtype
    model.train()
    if world > 1:  # identical initial weights on every rank
        for p in model.parameters():
            dist.broadcast(p.data, 0)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _make_scheduler(cfg, opt)
    ema = _EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    start_epoch, best, bad_epochs = 0, math.inf, 0
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema_state_dict") is not None:
            ema.model.load_state_dict(state["ema_state_dict"])
            ema.n = state["ema_n"]
        start_epoch, best, bad_epochs = state["epoch"], state["best_val_loss"], state["bad_epochs"]
    if state is not None and rank == 0 and cfg.progress:
        print(f"resuming '{last_path}' after epoch {start_epoch}, up to max_epochs {cfg.max_epochs}",
              file=sys.stderr)
    if rank == 0:  # the data and the config are checked: only now is anything written
        out_dir.mkdir(parents=True, exist_ok=True)
        _prepare_csv(csv_path, start_epoch)

    weights = _weights(cfg)
    t0 = time.perf_counter()
    n = len(train_ds)
    epoch = start_epoch
    val_metrics: dict[str, float] = {}
    stopped = "max_epochs"
    for epoch in range(start_epoch, cfg.max_epochs):
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        acc = {q: torch.zeros(3, dtype=torch.float64) for q in QUANTITIES}
        loss_sum = 0.0
        bar = _bar(range(0, n, cfg.batch_size), cfg.progress and rank == 0, f"epoch {epoch + 1}")
        for s in bar:
            items = perm[s:s + cfg.batch_size][rank::world]
            batch = collate([train_ds[i] for i in items]) if items else None
            loss, terms = _step_loss(model, batch, weights, dtype)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            if world > 1:
                for p in model.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(model)
            for q, t in terms.items():
                acc[q] += t.detach().double()
            loss_sum += float(_allreduce(loss.detach().clone()))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(loss):.4g}")
        train_metrics = {}
        for q in QUANTITIES:
            a = _allreduce(acc[q])
            if a[2] > 0:
                train_metrics[f"{q}_mae"] = float(a[1] / a[2])
                train_metrics[f"{q}_rmse"] = float(torch.sqrt(a[0] / a[2]))
        eval_model = ema.model if ema is not None else model
        val_metrics = evaluate(eval_model, val_ds, cfg.batch_size) if len(val_ds) else train_metrics
        val_loss = sum(weights[q] * val_metrics.get(f"{q}_rmse", 0.0) ** 2 for q in QUANTITIES)
        lr = opt.param_groups[0]["lr"]
        if cfg.schedule == "plateau":
            sched.step(val_loss)
        else:
            sched.step()
        improved = val_loss < best
        if improved:
            best, bad_epochs = val_loss, 0
        else:
            bad_epochs += 1
        extra = {
            "train_config": cfg.to_dict() | {"model": mcfg.to_dict()},
            "epoch": epoch + 1, "best_val_loss": best, "bad_epochs": bad_epochs,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "ema_state_dict": ema.model.state_dict() if ema is not None else None,
            "ema_n": ema.n if ema is not None else 0, "residual_of": cfg.residual_of,
            "val_metrics": val_metrics,
        }
        if rank == 0:
            save_checkpoint(last_path, model, extra)
            if improved:
                save_checkpoint(best_path, model, extra)
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / max(1, math.ceil(n / cfg.batch_size)),
                   "val_loss": val_loss, "wall_s": time.perf_counter() - t0}
            row |= {f"train_{k}": v for k, v in train_metrics.items()}
            row |= {f"val_{k}": v for k, v in val_metrics.items()}
            with open(csv_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=_columns()).writerow(row)
            if cfg.progress:
                print(f"epoch {epoch + 1}: val forces MAE {val_metrics.get('forces_mae', float('nan')):.4g} eV/Å, "
                      f"energy MAE {val_metrics.get('energy_mae', float('nan')):.4g} eV/atom", file=sys.stderr)
        if world > 1:
            dist.barrier()
        if cfg.early_stopping_patience and bad_epochs >= cfg.early_stopping_patience:
            stopped = "early_stopping"
            break
        if cfg.max_time_s is not None and time.perf_counter() - t0 > cfg.max_time_s:
            stopped = "max_time_s"
            break
    return {
        "best_checkpoint": str(best_path), "last_checkpoint": str(last_path),
        "epochs": epoch + 1, "best_val_loss": best, "stopped": stopped,
        **{f"val_{k}": v for k, v in val_metrics.items()},
    }


def _step_loss(model, batch, weights, dtype):
    """Loss of one (local) batch, normalised by the global counts (sums over ranks), so
    that summing gradients over ranks equals the single-process gradient."""
    if batch is None:
        zero = sum(p.sum() * 0 for p in model.parameters())
        terms = {}
    else:
        b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in batch.items()}
        out = model(b)
        terms = loss_terms(out, b)
    counts = torch.tensor([float(terms[q][2].detach()) if q in terms else 0.0 for q in QUANTITIES], dtype=torch.float64)
    counts = _allreduce(counts)
    loss = zero if batch is None else 0.0
    for k, q in enumerate(QUANTITIES):
        if q in terms and weights[q] > 0 and counts[k] > 0:
            loss = loss + weights[q] * terms[q][0] / counts[k].to(dtype)
    if not torch.is_tensor(loss):
        loss = sum(p.sum() * 0 for p in model.parameters())
    return loss, terms


_FREE_ON_RESUME = ("max_epochs", "max_time_s", "progress", "model", "train_files", "val_files",
                   "output_dir", "residual_of")


def _resume_compatible(saved: dict[str, Any], cfg: TrainConfig) -> bool:
    """Same training settings (the run length and paths may change) and the same model,
    where the new config's empty species / avg_num_neighbors mean "as trained"."""
    now = cfg.to_dict()
    if any(saved.get(k) != v for k, v in now.items() if k not in _FREE_ON_RESUME):
        return False
    m_saved, m_now = saved.get("model", {}), now["model"]
    for k, v in m_now.items():
        if k == "species" and not v or k == "avg_num_neighbors" and v is None:
            continue
        if m_saved.get(k) != v:
            return False
    return True


def _prepare_csv(path: Path, start_epoch: int) -> None:
    rows = []
    if start_epoch > 0 and path.exists():
        with open(path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) <= start_epoch]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=_columns())
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _bar(it, show: bool, desc: str):
    if not show:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=desc, file=sys.stderr, leave=False)
