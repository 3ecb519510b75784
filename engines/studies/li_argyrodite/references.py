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

__all__ = ["PHASES", "reference_environments", "chgnet"]

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


def chgnet(device: str = "cpu"):
    """CHGNet 0.3.0 as a quiet ASE calculator (see ``engines/active/references.py``)."""
    from atomtwin.engines.active.references import chgnet_calculator

    return chgnet_calculator("0.3.0", device=device)
