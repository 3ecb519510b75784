"""``atomtwin train``: train a potential from a YAML config (thin wrapper over
:func:`atomtwin.engines.mlip.train.train`)."""

from __future__ import annotations

import argparse

__all__ = ["register_compile", "register_train"]


def _run_train(args: argparse.Namespace) -> int:
    import torch.distributed as dist
    from atomtwin.engines.mlip.config import load_config
    from atomtwin.engines.mlip.train import train

    cfg = load_config(args.config)
    if args.no_progress or args.json:
        cfg = _with(cfg, progress=False)
    ddp = _maybe_init_distributed()
    rank = dist.get_rank() if ddp else 0
    try:
        result = train(cfg, resume=args.resume, overwrite=args.force)
    finally:
        if ddp:
            dist.destroy_process_group()
    if args.json and rank == 0:
        from atomtwin.toolkit.cli import emit_json

        emit_json(result)
    return 0


def _with(cfg, **changes):
    """A copy of a config with some fields changed (pydantic model or dataclass)."""
    if hasattr(cfg, "model_copy"):
        return cfg.model_copy(update=changes)
    from dataclasses import replace

    return replace(cfg, **changes)


def _maybe_init_distributed() -> bool:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1)."""
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        import torch

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return True
    return False


def register_train(sub) -> None:
    """Add ``atomtwin train config.yaml [--resume] [--json]``."""
    p = sub.add_parser(
        "train", help="train an equivariant interatomic potential",
        description="Train a NequIP- or Allegro-style potential from a YAML config "
                    "(keys: atomtwin.engines.mlip.config.TrainConfig; model keys: ModelConfig). "
                    "Writes last.ckpt every epoch, best.ckpt and metrics.csv in output_dir "
                    "(a previous run there is kept unless --resume or --force). "
                    "Data-parallel: torchrun --nproc_per_node=K -m atomtwin.toolkit.cli train config.yaml",
    )
    p.add_argument("config", help="YAML file with the training config")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from output_dir/last.ckpt")
    again.add_argument("--force", action="store_true",
                       help="start over when output_dir holds a previous run (replaces its best.ckpt, "
                            "last.ckpt and metrics.csv); without it, or --resume, that is an error")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=_run_train)


def register_compile(sub) -> None:
    """Add ``atomtwin compile CHECKPOINT OUT.pt2 [--device cpu|cuda] [--kernel] [--json]``
    (the work is in :mod:`atomtwin.engines.mlip.compile`, imported only when the command runs)."""
    p = sub.add_parser(
        "compile", help="export a trained potential to an AOTInductor package (.pt2)",
        description="Export energy, per-atom energy, forces and stress of a trained potential "
                    "with torch.export + AOTInductor (any number of atoms/edges), embed its "
                    "metadata and check it against the eager model. Load with "
                    "atomtwin.engines.mlip.compiled.load_compiled or Calculator.from_compiled.",
    )
    p.add_argument("checkpoint", help="training checkpoint (best.ckpt / last.ckpt)")
    p.add_argument("out", help="output package, e.g. model.pt2")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="device type the package runs on (default cpu)")
    p.add_argument("--kernel", action="store_true",
                   help="embed the sparse tensor-product op atomtwin::tp_sparse (Allegro): the "
                        "Triton kernel on cuda, its torch implementation on cpu; loading needs "
                        "no Python import")
    p.add_argument("--target", choices=("atomtwin", "lammps"), default="atomtwin",
                   help="atomtwin: the package our Python engines load (default); lammps: the "
                        "package pair_style atomtwin loads (edge-vector inputs, ghost-shell metadata)")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=_run_compile)


def _run_compile(args: argparse.Namespace) -> int:
    if getattr(args, "target", "atomtwin") == "lammps":
        return _run_compile_lammps(args)
    from atomtwin.engines.mlip.compile import _run

    return _run(args)


def _run_compile_lammps(args: argparse.Namespace) -> int:
    from atomtwin.engines.lammps.export import compile_lammps

    res = compile_lammps(args.checkpoint, args.out, device=args.device, kernel=args.kernel)
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json({k: v for k, v in res.items() if k != "model_config"})
    else:
        print(f"wrote {res['path']} for LAMMPS ({res['architecture']}, {res['dtype']}, "
              f"{res['device']}, ghost cutoff {res['ghost_cutoff']:g} A) in "
              f"{res['compile_time_s']:.1f} s; self-check max relative error "
              f"{max(res['self_check'].values()):.1e}; use: pair_coeff * * {res['path']} "
              f"{' '.join(res['species'])}")
    return 0
