"""Equivariant machine-learning interatomic potential: NequIP- and Allegro-style models,
neighbour lists, data, training and an ASE calculator.

The contract (what the MD, TD-SCHA and phonon engines code against)
-------------------------------------------------------------------
``load_model(path, device="cpu") -> torch.nn.Module`` (eval mode, EMA weights) with
``model.species: list[str]`` and ``model.r_max: float`` (Å).

``model(data) -> dict`` where ``data`` holds, for B structures with N atoms and E edges:

=====================  ============  =====  ===================================================
key                    shape         dtype  meaning
=====================  ============  =====  ===================================================
``pos``                (N, 3)        float  positions, Å
``atom_types``         (N,)          long   index into ``model.species``
``cell``               (B, 3, 3)     float  lattice vectors as rows, Å (zeros if isolated)
``pbc``                (B, 3)        bool   periodicity (informational: edges encode it)
``batch``              (N,)          long   structure of each atom, 0..B-1
``edge_index``         (2, E)        long   ``[i, j]``: i = centre, j = neighbour
``edge_cell_shift``    (E, 3)        float  integer image shifts S:
                                            ``r_ij = pos[j] - pos[i] + S @ cell[batch[i]]``
=====================  ============  =====  ===================================================

Outputs (always all present, in the model's dtype; inputs are cast to it):
``energy`` (B,) eV; ``atom_energy`` (N,) eV; ``forces`` (N, 3) eV/Å = -dE/dpos;
``stress`` (B, 3, 3) eV/Å³ = (1/V) dE/dε, ASE's sign (negative under compression; zero for
structures whose cell has zero volume); ``virial`` (B, 3, 3) eV = -dE/dε.  A
``compute_stress`` key is accepted and ignored: the strain derivative costs one extra
gradient slot and is always returned.  Edges beyond ``r_max`` contribute exactly zero, so
lists built with a skin (:class:`neighbors.NeighborListCache`) are valid.

``neighbors.neighbor_list(pos, cell, pbc, r_max) -> (edge_index, edge_cell_shift)`` builds the
edges of one structure; ``data.collate(items, r_max=None, species=None)`` batches graphs,
frames or ``ase.Atoms``.  ``Calculator.from_checkpoint(path, device=...)`` is the ASE route.
The model is a plain ``torch.nn.Module`` whose forward uses only tensors, ints and tuples;
the tensor products live in :mod:`atomtwin.engines.mlip.tp` (reference implementation).
``model.set_lean_memory(True)`` trades 11-15 % of a NequIP-style model's eager speed for
~30 % less peak memory (a run-time choice; the Allegro-style model runs lean at inference).
"""

from __future__ import annotations

from importlib import import_module

#: public name -> module; imported on first use, so ``import atomtwin.engines.mlip.cli`` (the CLI
#: plug-in) does not load torch
_EXPORTS = {
    "ModelConfig": "atomtwin.engines.mlip.config", "TrainConfig": "atomtwin.engines.mlip.config",
    "load_config": "atomtwin.engines.mlip.config", "collate": "atomtwin.engines.mlip.data",
    "Potential": "atomtwin.engines.mlip.model", "build_model": "atomtwin.engines.mlip.model",
    "load_model": "atomtwin.engines.mlip.model", "save_checkpoint": "atomtwin.engines.mlip.model",
    "save_model": "atomtwin.engines.mlip.model", "export_model": "atomtwin.engines.mlip.model",
    "read_model_file": "atomtwin.engines.mlip.model",
    "neighbor_list": "atomtwin.engines.mlip.neighbors", "NeighborListCache": "atomtwin.engines.mlip.neighbors",
    "Calculator": "atomtwin.engines.mlip.calculator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'atomtwin.engines.mlip' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
