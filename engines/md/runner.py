"""Run MD from a config: stream frames through :class:`atomtwin.toolkit.io.TrajectoryWriter`, write
checkpoints a restart continues from bit for bit, stop cleanly on a blow-up.

Restart determinism: at every checkpoint the force providers drop their neighbour lists
(``reset``), so the original run and a run restarted from that checkpoint rebuild them
at the same step and sum forces in the same order.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from atomtwin.engines.md.config import MDConfig, PotentialConfig
from atomtwin.engines.md.forces import ASEForceProvider, PairForceProvider
from atomtwin.engines.md.integrators import (
    Langevin,
    NoseHooverChain,
    StochasticCellRescaling,
    VelocityVerlet,
)
from atomtwin.engines.md.state import MDState, make_state, move_tensors, temperature
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import ConfigError, FileFormatError, InputError

CHECKPOINT_FORMAT = "atomtwin-md-checkpoint"


class MDBlowUp(RuntimeError):
    """The dynamics became unphysical (NaN, huge force, temperature runaway)."""


@dataclass
class MDResult:
    """What a run returns: the final state and performance figures."""

    state: MDState
    output: Path | None
    n_frames: int
    steps: int
    wall_s: float
    ns_per_day: float
    atom_steps_per_s: float


def build_provider(pc: PotentialConfig):
    """The force provider a :class:`PotentialConfig` describes."""
    if pc.kind in ("lj", "morse"):
        return PairForceProvider(pc.kind, pc.params, r_cut=pc.r_cut, r_on=pc.r_on, part=pc.part,
                                 split=pc.split, skin=pc.skin)
    if pc.kind == "emt":
        from ase.calculators.emt import EMT, parameters

        return ASEForceProvider(EMT(**pc.kwargs), species=tuple(parameters))
    if pc.kind == "ase":
        from importlib import import_module

        mod, _, cls = pc.calculator.partition(":")
        return ASEForceProvider(getattr(import_module(mod), cls)(**pc.kwargs))
    from atomtwin.engines.md.mlip_provider import MLIPForceProvider

    return MLIPForceProvider(pc.model, device=pc.device, skin=pc.skin)


def build_integrator(cfg: MDConfig, slow=None):
    """The integrator of ``cfg`` (RESPA when ``cfg.mts``; ``slow`` its slow provider)."""
    if cfg.mts is not None:
        from atomtwin.engines.md.mts import RESPA

        t = cfg.temperature if cfg.ensemble == "langevin" else None
        return RESPA(cfg.timestep, cfg.mts.k, slow, temperature=t, friction=cfg.friction)
    if cfg.ensemble == "nve":
        return VelocityVerlet(cfg.timestep)
    if cfg.ensemble == "langevin":
        return Langevin(cfg.timestep, cfg.temperature, cfg.friction)
    if cfg.ensemble == "nhc":
        return NoseHooverChain(cfg.timestep, cfg.temperature, cfg.tdamp, cfg.chain)
    return StochasticCellRescaling(cfg.timestep, cfg.temperature, cfg.pressure, cfg.compressibility,
                                   cfg.tau_p, cfg.friction, anisotropic=cfg.ensemble == "npt-aniso")


def initial_state(cfg: MDConfig, atoms=None) -> MDState:
    """The starting state from ``cfg.structure`` (or ``atoms``), masses and temperature."""
    from ase.data import atomic_masses, atomic_numbers

    if atoms is None:
        from ase.io import read

        if not Path(cfg.structure).is_file():
            raise ConfigError(f"structure: the file '{cfg.structure}' does not exist. Fix: correct "
                              "`structure:` (relative paths start at the YAML file's folder).")
        try:
            atoms = read(cfg.structure, index=-1)
        except (ValueError, KeyError, IndexError, StopIteration, UnicodeDecodeError) as err:
            raise FileFormatError(cfg.structure, f"ASE cannot read the starting structure ({err})",
                                  "give a structure file ASE reads (extxyz, cif, POSCAR ...)") from None
    symbols = atoms.get_chemical_symbols()
    masses = []
    for s in symbols:
        if s in cfg.masses:
            masses.append(float(cfg.masses[s]))
        elif atomic_numbers.get(s, 0) > 0:  # 'X' (Z = 0) is ASE's dummy: no mass
            masses.append(float(atomic_masses[atomic_numbers[s]]))
        else:
            raise ConfigError(f"masses: no mass for species '{s}'. Fix: add `masses: {{{s}: <amu>}}` to the config.")
    if cfg.ensemble.startswith("npt") and not (atoms.cell.rank == 3 and all(atoms.pbc)):
        raise InputError(
            f"NPT needs a structure periodic in all three directions with a cell (pbc={atoms.pbc.tolist()}). "
            "Fix: give a periodic cell, or use ensemble nve/langevin/nhc for a cluster or slab."
        )
    t0 = cfg.initial_temperature if cfg.initial_temperature is not None else cfg.temperature
    cell = atoms.cell[:] if atoms.cell.rank == 3 else None
    pbc = tuple(atoms.pbc) if cell is not None else (False,) * 3
    kw = {"temperature_K": t0} if t0 else {}
    if not t0 and atoms.has("momenta"):
        kw["velocities"] = atoms.get_velocities() / U.ASE_TIME_TO_PS
    return make_state(atoms.positions, symbols, masses=masses, cell=cell, pbc=pbc, seed=cfg.seed,
                      device=cfg.device, **kw)


# -- checkpoints ------------------------------------------------------------------------
def save_checkpoint(path: Path, state: MDState, cfg: MDConfig, n_frames: int) -> None:
    """Write the state atomically (temporary name, then rename)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "device": state.positions.device.type,
        "state": {f.name: getattr(state, f.name) for f in fields(state)},
        "physics": cfg.physics(),
        "n_frames": n_frames,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, cfg: MDConfig, device: str | None = None) -> tuple[MDState, int]:
    """(state, frames written) from a checkpoint; a clear error if it belongs to another run.

    Every tensor of the state (RESPA's slow forces in ``aux`` included) is put on
    ``device`` (default: the config's, :attr:`MDConfig.device`); the generator state stays
    the one saved, so the run continues bit for bit on a device of the type it was saved on.
    """
    device = torch.device(device or cfg.device)
    try:
        ck = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 (any unreadable file: the same advice)
        raise FileFormatError(path, f"cannot read the MD checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})",
                              "start over with overwrite=True (it deletes the checkpoint)") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(path, "is not an atomtwin MD checkpoint", "point `checkpoint:` elsewhere")
    mine = cfg.physics()
    diff = sorted(k for k in set(mine) | set(ck["physics"]) if mine.get(k) != ck["physics"].get(k))
    if diff:
        detail = ", ".join(f"{k}: checkpoint {ck['physics'].get(k)!r} vs config {mine.get(k)!r}" for k in diff)
        raise InputError(
            f"checkpoint '{path}' does not match the config ({detail}). Fix: restore those settings "
            "to resume, or start a new run with another `checkpoint:` and `output:`."
        )
    saved = ck.get("device", "cpu")
    if saved != device.type:
        raise InputError(f"checkpoint '{path}' holds a {saved} run; this config runs on {device}. "
                         f"Fix: resume on {saved} (potential.device), or start a new run.")
    state = move_tensors(MDState(**ck["state"]), device)
    return state, int(ck["n_frames"])


def _truncate_partial(partial: Path, n: int) -> None:
    """Drop frames a killed run wrote after its last checkpoint (they are re-made identically)."""
    from atomtwin.toolkit.io.store import truncate_partial

    truncate_partial(partial, n)


# -- the run ----------------------------------------------------------------------------
def _frame(state: MDState, write: tuple[str, ...]) -> dict:
    out = {"cell": state.cell.cpu().numpy() if any(state.pbc) else None, "time": state.time}
    if "velocities" in write:
        out["velocities"] = state.velocities.cpu().numpy()
    if "forces" in write:
        out["forces"] = state.forces.cpu().numpy()
    if "energy" in write:
        out["energy"] = np.float64(state.energy)
    if "stress" in write and state.stress is not None:
        out["stress"] = state.stress.cpu().numpy()
    return out


def _check(state: MDState, cfg: MDConfig, t_max: float, integ) -> None:
    fmax = float(state.forces.abs().max())
    problem = None
    if not math.isfinite(fmax) or not math.isfinite(float(state.energy)):
        problem = "forces or energy became NaN/inf"
    elif fmax > cfg.max_force:
        problem = f"the largest force component is {fmax:.3g} eV/Å (> max_force {cfg.max_force:g})"
    elif state.step % 10 == 0:
        t = temperature(state)
        if not t < t_max:
            problem = f"the temperature reached {t:.4g} K (> max_temperature {t_max:.4g} K)"
    if problem:
        hint = ("the time step is likely too large for this system: halve `timestep`"
                if cfg.ensemble == "nve" else "reduce `timestep`, check the potential and the structure")
        raise MDBlowUp(
            f"MD blew up at step {state.step} (t = {state.time:.6g} ps): {problem}. "
            f"Every frame written before is kept in '{cfg.output}'. Fix: {hint}."
        )


def run(config, *, atoms=None, resume: bool = False, overwrite: bool = False,
        steps: int | None = None) -> MDResult:
    """Run the MD a config describes.

    Parameters
    ----------
    config
        :class:`MDConfig`, a dict of its fields, or a YAML path.
    atoms
        Starting structure (``ase.Atoms``) instead of ``config.structure``.
    resume
        Continue from ``config.checkpoint``.  Without a checkpoint (a run stopped before
        its first one) the run discards only its own partial store and starts from step 0,
        saying so with a :class:`~atomtwin.engines.md.restart.ResumeNotice` warning.
    overwrite
        Delete an earlier run's output, partial store and checkpoint, and start over
        (``--force`` on the command line).
    steps
        Override the total number of steps (>= 0).

    Raises
    ------
    InputError
        An earlier run's files are at the output paths and neither ``resume`` nor
        ``overwrite`` is given (nothing is touched), or a bad ``steps``.
    MDBlowUp
        NaN, a force above ``max_force`` or the temperature above ``max_temperature``; the
        trajectory written so far is finalised at ``config.output``.
    """
    from atomtwin.engines.md.restart import plan_start
    from atomtwin.toolkit.io import TrajectoryWriter

    if isinstance(config, (str, Path)):
        cfg = MDConfig.from_yaml(config)
    elif isinstance(config, dict):
        cfg = MDConfig.from_dict(config)
    else:
        cfg = config
    k = cfg.mts.k if cfg.mts else 1
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 0 or steps % k):
        need = f"a whole number >= 0{f' and a multiple of mts.k = {k}' if k > 1 else ''}"
        raise InputError(f"steps={steps!r}: the number of steps must be {need}. "
                         f"Fix: give e.g. {cfg.steps} (the config's `steps`).")
    total = int(steps if steps is not None else cfg.steps)
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    out = Path(cfg.output)
    resume = plan_start(out, ckpt, resume=bool(resume), overwrite=bool(overwrite))
    fast = build_provider(cfg.potential)
    slow = build_provider(cfg.mts.slow) if cfg.mts else None
    integ = build_integrator(cfg, slow)
    n_frames = 0
    if resume:
        state, n_frames = load_checkpoint(ckpt, cfg)
        partial = Path(str(out) + ".partial")
        if partial.exists():
            _truncate_partial(partial, n_frames)
        elif n_frames:
            raise InputError(f"the checkpoint '{ckpt}' expects {n_frames} frames in '{partial}', which is "
                             "missing. Fix: overwrite=True to start over, or restore that store.")
    else:
        state = integ.init(initial_state(cfg, atoms), fast)
    # the runaway threshold scales with the hottest of target, initial draw and the start
    # (an NVE run from a structure with velocities, e.g. a 2000 K liquid, has no target)
    t_ref = max(cfg.temperature or 0.0, cfg.initial_temperature or 0.0, temperature(state), 100.0)
    t_max = cfg.max_temperature or max(10.0 * t_ref, 1000.0)
    writer = TrajectoryWriter(
        out, state.species, masses=state.masses.cpu().numpy(), pbc=state.pbc,
        attrs={"source": "atomtwin md", "md_config": cfg.to_dict(), "timestep_md_ps": cfg.timestep},
        flush_every=1, resume=resume,
    )
    bar = _progress(cfg, total, state.step)
    t0, s0 = time.perf_counter(), state.step
    try:
        if not resume:
            writer.append(state.positions.cpu().numpy(), **_frame(state, cfg.write))
        while state.step < total:
            state = integ.step(state, fast)
            _check(state, cfg, t_max, integ)
            if state.step % cfg.stride == 0:
                writer.append(state.positions.cpu().numpy(), **_frame(state, cfg.write))
            if ckpt is not None and state.step % cfg.checkpoint_every == 0:
                writer.flush()
                save_checkpoint(ckpt, state, cfg, writer.n_frames)
                fast.reset()
                if slow is not None:
                    slow.reset()
            if bar is not None and state.step % max(k, 10) == 0:
                _update(bar, state, t0, s0)
    except MDBlowUp:
        writer.close()
        raise
    except BaseException:
        writer.flush()  # the partial store keeps every frame for a resume
        raise
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    path = writer.close()
    done = state.step - s0
    nsd = done * cfg.timestep * 1e-3 / max(wall, 1e-12) * 86400.0
    return MDResult(state, path, writer.n_frames, done, wall, nsd, done * state.n_atoms / max(wall, 1e-12))


def _progress(cfg: MDConfig, total: int, start: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", file=sys.stderr, dynamic_ncols=True)


def _update(bar, state: MDState, t0: float, s0: int) -> None:
    wall = max(time.perf_counter() - t0, 1e-12)
    done = state.step - s0
    dt = state.time / max(state.step, 1)
    bar.n = state.step
    bar.set_postfix_str(
        f"T={temperature(state):.0f} K, {done * dt * 1e-3 / wall * 86400:.3g} ns/day, "
        f"{done * state.n_atoms / wall:.3g} atom-steps/s", refresh=True)
