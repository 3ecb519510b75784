"""The Li metal | Li6PS5Cl argyrodite study (issue 18): structures built from published
Wyckoff positions, the periodic Li(100) | Li6PS5Cl(100) sandwich, rattled reference
phases, and a CHGNet reference run."""

from __future__ import annotations

from atomtwin.engines.studies.li_argyrodite.interface import (
    Interface,
    build_interface,
    electrolyte_slab,
    li100_slab,
    relax_apart,
    small_interface,
)
from atomtwin.engines.studies.li_argyrodite.structures import (
    ARGYRODITE_WYCKOFF,
    LATTICE,
    argyrodite,
    bcc_li,
    einstein_sigma,
    li2s,
    li3p,
    licl,
    min_distances,
    rattle,
    reference_phases,
)

__all__ = [
    "ARGYRODITE_WYCKOFF",
    "LATTICE",
    "Interface",
    "argyrodite",
    "bcc_li",
    "build_interface",
    "einstein_sigma",
    "electrolyte_slab",
    "li100_slab",
    "li2s",
    "li3p",
    "licl",
    "min_distances",
    "rattle",
    "reference_phases",
    "relax_apart",
    "small_interface",
]
