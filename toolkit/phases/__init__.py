"""Order parameters and phase-diagram construction from many simulations.

- per frame / per atom order parameters (:mod:`.order`, :mod:`.dynamics`): density, g(r),
  S(q), coordination, Steinhardt q4/q6 with Lechner–Dellago averaging, self-diffusion
  (through :mod:`atomtwin.toolkit.dynamics`), environment cluster fractions,
  Lindemann ratio, clusters of one species (segregation);
- one feature vector per run (:func:`summarize`) and the analysis of a solid–liquid
  coexistence run (:func:`coexistence`);
- the ensemble driver (:func:`run_ensemble` on a :class:`PhaseSpec`): (P, T) grids,
  heating/cooling ramps, coexistence runs on dask, resumable;
- classification and boundaries (:func:`classify_phases`, :func:`phase_boundary`,
  :func:`clausius_clapeyron`, :func:`hysteresis`).

The toolkit never imports an engine: the point function is given by the user or named
by an import string in the spec (``atomtwin.engines.studies.phase_points:run_point``).
"""

from __future__ import annotations

from atomtwin.toolkit.phases.classify import (
    clapeyron_slope,
    classify_phases,
    clausius_clapeyron,
    hysteresis,
    phase_boundary,
)
from atomtwin.toolkit.phases.ensemble import EnsembleResult, run_ensemble
from atomtwin.toolkit.phases.order import (
    coordination,
    density,
    first_minimum,
    rdf,
    solid_fraction,
    steinhardt,
    structure_factor,
)
from atomtwin.toolkit.phases.order_thermo import (
    lindemann,
    pressure,
    self_diffusion,
    species_clusters,
    temperature,
)
from atomtwin.toolkit.phases.spec import PhaseSpec
from atomtwin.toolkit.phases.summary import coexistence, summarize

#: functions reachable as ds.atoms.<name>(...)
__accessor__ = (
    "density",
    "rdf",
    "coordination",
    "steinhardt",
    "self_diffusion",
    "lindemann",
    "species_clusters",
    "summarize",
    "coexistence",
)

__all__ = [
    "EnsembleResult",
    "PhaseSpec",
    "clapeyron_slope",
    "clausius_clapeyron",
    "classify_phases",
    "coexistence",
    "coordination",
    "density",
    "first_minimum",
    "hysteresis",
    "lindemann",
    "phase_boundary",
    "pressure",
    "rdf",
    "run_ensemble",
    "self_diffusion",
    "solid_fraction",
    "species_clusters",
    "steinhardt",
    "structure_factor",
    "summarize",
    "temperature",
]
