"""``ds.atoms``: a thin accessor that delegates to toolkit functions.

``ds.atoms.msd(species="Li")`` is ``atomtwin.toolkit.dynamics.msd(ds, species="Li")``.  Each analysis
subpackage lists the functions it exposes here in a module-level ``__accessor__`` tuple;
the accessor finds them lazily, so importing the toolkit stays cheap and no subpackage
has to edit this file.
"""

from __future__ import annotations

import importlib
from functools import partial

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S

#: analysis subpackages searched for ``__accessor__`` names, in this order
SUBPACKAGES = (
    "atomtwin.toolkit.dynamics",
    "atomtwin.toolkit.environments",
    "atomtwin.toolkit.spectra",
    "atomtwin.toolkit.phonons",
    "atomtwin.toolkit.phases",
    "atomtwin.toolkit.reactions",
    "atomtwin.toolkit.plot",
)


def _exposed() -> dict[str, str]:
    table: dict[str, str] = {}
    for mod in SUBPACKAGES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name == mod:  # subpackage not part of this installation
                continue
            raise
        for name in getattr(m, "__accessor__", ()):
            table.setdefault(name, mod)
    return table


@xr.register_dataset_accessor("atoms")
class AtomsAccessor:
    """Trajectory helpers and analyses on a schema Dataset (``ds.atoms.<name>``)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # -- basic -------------------------------------------------------------------------
    def validate(self, **kwargs) -> xr.Dataset:
        return S.validate(self._ds, **kwargs)

    @property
    def n_atoms(self) -> int:
        return int(self._ds.sizes[S.ATOM])

    @property
    def n_frames(self) -> int:
        return int(self._ds.sizes[S.FRAME])

    @property
    def species(self) -> list[str]:
        """Distinct species in order of first appearance."""
        sp = np.asarray(self._ds[S.SPECIES].values).astype(str)
        _, idx = np.unique(sp, return_index=True)
        return [str(sp[i]) for i in sorted(idx)]

    def select(self, species: str | list[str]) -> xr.Dataset:
        """Atoms of the given species (error naming the species present when absent)."""
        return select_species(self._ds, species)

    def unwrap(self, **kwargs) -> xr.Dataset:
        from atomtwin.toolkit.geometry import unwrap

        return unwrap(self._ds, **kwargs)

    def wrap(self) -> xr.Dataset:
        from atomtwin.toolkit.geometry import wrap

        return wrap(self._ds)

    def write(self, path, **kwargs):
        from atomtwin.toolkit.io import write

        return write(self._ds, path, **kwargs)

    # -- analyses, found lazily ----------------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        table = _exposed()
        if name not in table:
            raise AttributeError(
                f"ds.atoms has no analysis '{name}'. Available: {sorted(table) or 'none installed'}."
            )
        func = getattr(importlib.import_module(table[name]), name)
        return partial(func, self._ds)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(_exposed()))


def select_species(ds: xr.Dataset, species: str | list[str]) -> xr.Dataset:
    """Subset of ``ds`` holding the atoms of ``species`` (one symbol or a list)."""
    wanted = [species] if isinstance(species, str) else list(species)
    present = np.asarray(ds[S.SPECIES].values).astype(str)
    missing = [s for s in wanted if s not in set(present)]
    if missing:
        raise S.SchemaError(
            f"species {missing} not in the trajectory (it has {sorted(set(present))}). "
            "Fix: choose one of those, or map LAMMPS types to species when reading (species_map=...)."
        )
    return ds.isel({S.ATOM: np.flatnonzero(np.isin(present, wanted))})
