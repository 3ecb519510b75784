"""Phonons with any ASE calculator (through phonopy) and projection of trajectories on modes.

- :func:`compute_phonons` -> ``phonopy.Phonopy`` with force constants; :func:`band_structure`,
  :func:`phonon_dos`, :func:`thermal_properties`, :func:`compare_phonons`,
  :func:`set_born_charges` (non-analytic correction) in :mod:`.core`.
- :func:`gamma_modes`: normal modes of the supercell (its Γ point) for :func:`project_modes`,
  :func:`mode_energies` and :func:`spectral_energy_density` (:mod:`.projection`).

The toolkit never imports an engine: pass any calculator object (``ase.calculators.emt.EMT()``,
a DFT calculator, or the learned potential's ASE calculator).
"""

from __future__ import annotations

from atomtwin.toolkit.phonons.core import (
    UnrelaxedStructureWarning,
    band_structure,
    compare_phonons,
    compute_phonons,
    frequencies_at,
    gamma_modes,
    modes_from_force_constants,
    phonon_dos,
    set_born_charges,
    thermal_properties,
)
from atomtwin.toolkit.phonons.projection import (
    mode_energies,
    project_modes,
    spectral_energy_density,
)

__accessor__ = ("compute_phonons", "project_modes", "mode_energies")

__all__ = [
    "UnrelaxedStructureWarning",
    "band_structure",
    "compare_phonons",
    "compute_phonons",
    "frequencies_at",
    "gamma_modes",
    "mode_energies",
    "modes_from_force_constants",
    "phonon_dos",
    "project_modes",
    "set_born_charges",
    "spectral_energy_density",
    "thermal_properties",
]
