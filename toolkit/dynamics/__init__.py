"""Transport and rotation statistics: MSD, diffusion (with honest errors), Arrhenius,
conductivity and Haven ratio, van Hove, site hops, polyanion rotations, protons and
hydrogen bonds, event cross-correlations.

Every function takes a schema Dataset first (or the result of another one) and returns
xarray with units in attrs; the ones taking a trajectory are also ``ds.atoms.<name>``.
"""

from __future__ import annotations

from atomtwin.toolkit.dynamics.diffusion import arrhenius, diffusion, fit_diffusion, msd_covariance
from atomtwin.toolkit.dynamics.events import event_cross_correlation
from atomtwin.toolkit.dynamics.hbonds import (
    assign_hydrogens,
    hbond_lifetime,
    hydrogen_bonds,
    oh_reorientations,
    proton_transfers,
)
from atomtwin.toolkit.dynamics.hops import assign_sites, find_sites, hop_rate, hops, residence_times
from atomtwin.toolkit.dynamics.msd import msd
from atomtwin.toolkit.dynamics.rotations import (
    bond_vectors,
    event_rate,
    find_polyanions,
    fit_relaxation,
    orientational_correlation,
    rate_components,
    reorientation_events,
    rotation_mechanism,
    waiting_times,
)
from atomtwin.toolkit.dynamics.transport import charge_msd, conductivity
from atomtwin.toolkit.dynamics.vanhove import van_hove_self

__all__ = [
    "arrhenius", "assign_hydrogens", "assign_sites", "bond_vectors", "charge_msd", "conductivity",
    "diffusion", "event_cross_correlation", "event_rate", "find_polyanions", "find_sites",
    "fit_diffusion", "fit_relaxation", "hbond_lifetime", "hop_rate", "hops", "hydrogen_bonds", "msd",
    "msd_covariance", "oh_reorientations", "orientational_correlation", "proton_transfers",
    "rate_components", "reorientation_events", "residence_times", "rotation_mechanism", "van_hove_self", "waiting_times",
]

#: functions that take the trajectory first, exposed as ``ds.atoms.<name>``
__accessor__ = (
    "msd", "diffusion", "charge_msd", "conductivity", "van_hove_self", "find_sites", "assign_sites",
    "find_polyanions", "bond_vectors", "orientational_correlation", "reorientation_events",
    "rotation_mechanism",
    "assign_hydrogens", "hydrogen_bonds", "oh_reorientations",
)
