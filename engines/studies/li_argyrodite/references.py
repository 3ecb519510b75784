"""Reference environments and the CHGNet reference for the Li | Li6PS5Cl study.

:func:`reference_environments` gives each reference phase (bcc Li, Li6PS5Cl, Li2S, Li3P,
LiCl) as a schema Dataset of rattled frames at the run's temperature, ready for the
environment matcher of ``toolkit/environments`` (one label per phase).
:func:`chgnet` returns the quiet CHGNet 0.3.0 calculator of the active-learning engine
(weights shipped in chgnet>=0.4.2's wheel, no download).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.engines.studies.li_argyrodite.structures import rattle, reference_phases
from atomtwin.toolkit.io.ase_io import atoms_list_to_dataset

__all__ = ["PHASES", "reference_environments", "thermal_references", "chgnet"]

#: the five reference phases, in the order used for labels and colours
PHASES = ("Li", "Li6PS5Cl", "Li2S", "Li3P", "LiCl")


def reference_environments(
    temperature: float,
    seed: int = 0,
    n_frames: int = 4,
    lattice: str = "experiment",
    min_atoms: int = 50,
    theta_e: float | dict[str, float] = 300.0,
) -> dict[str, xr.Dataset]:
    """Each reference phase as ``n_frames`` Einstein-rattled frames at ``temperature`` (K).

    Returns ``{phase: Dataset}`` (schema trajectories, periodic, ``attrs["phase"]`` set);
    seeded: phase k, frame f uses the stream ``seed`` spawned for (k, f).
    """
    ss = np.random.SeedSequence(seed)
    streams = ss.spawn(len(PHASES) * n_frames)
    out = {}
    for k, (name, at) in enumerate(reference_phases(lattice, min_atoms=min_atoms).items()):
        frames = [
            rattle(at, temperature, np.random.default_rng(streams[k * n_frames + f]), theta_e)
            for f in range(n_frames)
        ]
        ds = atoms_list_to_dataset(frames, source=f"reference {name} rattled at {temperature} K")
        ds.attrs["phase"] = name
        out[name] = ds
    return out


def thermal_references(
    model,
    temperature: float,
    out,
    *,
    steps: int = 500,
    timestep: float = 0.001,
    friction: float = 20.0,
    seed: int = 0,
    lattice: str = "chgnet",
    min_atoms: int = 200,
) -> dict:
    """Each reference phase (bulk, periodic, at least ``min_atoms`` atoms) after ``steps``
    of Langevin MD with the potential ``model`` (a checkpoint or model file) at
    ``temperature`` (K), started from the Einstein-rattled crystal with Maxwell-Boltzmann
    velocities; returns ``{phase: Atoms}`` (the last frame, ``info['name']`` set).

    The trajectories go to ``out/<phase>.nc`` and the frames to ``out/references.extxyz``;
    a finished ``references.extxyz`` written with the same settings is read back instead of
    rerun.  500 steps of 1 fs at friction 20/ps: the velocities relax within 1/friction =
    0.05 ps and the argyrodite's Li disorder within ~0.2 ps (CHGNet bulk run).
    """
    import json
    import warnings
    from pathlib import Path

    import ase.io
    from atomtwin.engines.md import run as md_run
    from atomtwin.engines.md.restart import ResumeNotice
    from atomtwin.toolkit.io import read
    from atomtwin.toolkit.io.ase_io import dataset_to_atoms

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "model": str(model),
        "temperature": float(temperature),
        "steps": int(steps),
        "timestep": float(timestep),
        "friction": float(friction),
        "seed": int(seed),
        "lattice": lattice,
        "min_atoms": int(min_atoms),
    }
    done = out / "references.extxyz"
    meta = out / "references.json"
    if done.exists() and meta.exists() and json.loads(meta.read_text()) == settings:
        return {a.info["name"]: a for a in ase.io.read(done, index=":")}
    ss = np.random.SeedSequence(seed)
    streams = ss.spawn(len(PHASES))
    refs = {}
    for k, (name, at) in enumerate(reference_phases(lattice, min_atoms=min_atoms).items()):
        start = rattle(at, temperature, np.random.default_rng(streams[k]))
        start_file = out / f"{name}_start.extxyz"
        ase.io.write(start_file, start)
        traj = out / f"{name}.nc"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no earlier output", category=ResumeNotice)
            md_run(
                {
                    "structure": str(start_file),
                    "potential": {"kind": "mlip", "model": str(model)},
                    "ensemble": "langevin",
                    "timestep": timestep,
                    "steps": steps,
                    "temperature": temperature,
                    "initial_temperature": temperature,
                    "friction": friction,
                    "stride": steps,
                    "output": str(traj),
                    "seed": int(ss.generate_state(1)[0]) + k,
                    "progress": False,
                    "max_temperature": 3 * temperature,
                    "write": ["positions", "velocities", "energy", "cell"],
                },
                overwrite=True,
            )
        a = dataset_to_atoms(read(traj), -1)
        a.info = {"name": name, "temperature_K": float(temperature), "md_steps": int(steps)}
        a.arrays.pop("momenta", None)
        refs[name] = a
    tmp = done.with_suffix(".extxyz.tmp")
    ase.io.write(tmp, list(refs.values()), format="extxyz")
    tmp.replace(done)
    meta.write_text(json.dumps(settings))
    return refs


def chgnet(device: str = "cpu"):
    """CHGNet 0.3.0 as a quiet ASE calculator (see ``engines/active/references.py``)."""
    from atomtwin.engines.active.references import chgnet_calculator

    return chgnet_calculator("0.3.0", device=device)
