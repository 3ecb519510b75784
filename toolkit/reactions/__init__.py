"""Reactions and species: bond graphs, chemical species and their counts, coordination as
product indicators, bond-forming and bond-breaking events with rates, species lifetimes.

A bond between two atoms forms when they come closer than ``r_form`` and breaks when they
move apart beyond ``r_break > r_form`` (hysteresis: vibrations are not reactions).  The
cutoffs default to multiples of the sum of covalent radii (Cordero et al. 2008) and can be
overridden per species pair.  Species are the connected components of the *covalent*
bonds (by default every pair without an alkali or alkaline-earth metal), so PS4 units,
P2S7, S-S pairs, isolated S and Cl, and molecules in a liquid are told apart even in an
ionic solid; coordination counts use every bond, Li included.

Works on any schema trajectory, periodic (any triclinic cell) or not, one chunk of frames
at a time, with memory linear in the number of atoms::

    r = atomtwin.toolkit.reactions.reactions(ds, cutoffs={"P-S": 2.4})
    r.species.sel(formula="PS4")     # (frame,) count of PS4 units
    r.rates()                        # forming/breaking rates with error bars
    ds.atoms.coordination_numbers("P", "S")
"""

from __future__ import annotations

from atomtwin.toolkit.reactions.analysis import (
    MAX_CN,
    ReactionAnalysis,
    bond_events,
    bond_graph,
    coordination_numbers,
    event_rates,
    reactions,
    species_counts,
)
from atomtwin.toolkit.reactions.cutoffs import (
    BREAK_FACTOR,
    COVALENT_RADII,
    FORM_FACTOR,
    IONIC_ELEMENTS,
    BondCutoffs,
    bond_cutoffs,
    pair_name,
)
from atomtwin.toolkit.reactions.graph import hill_formula

__all__ = [
    "BREAK_FACTOR",
    "COVALENT_RADII",
    "FORM_FACTOR",
    "IONIC_ELEMENTS",
    "MAX_CN",
    "BondCutoffs",
    "ReactionAnalysis",
    "bond_cutoffs",
    "bond_events",
    "bond_graph",
    "coordination_numbers",
    "event_rates",
    "hill_formula",
    "pair_name",
    "reactions",
    "species_counts",
]

#: functions that take the trajectory first, exposed as ``ds.atoms.<name>``
__accessor__ = ("reactions", "bond_events", "species_counts", "coordination_numbers", "bond_graph")
