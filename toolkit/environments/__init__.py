"""Local atomic environments: descriptors, unsupervised classification, phase labels and
their evolution (fractions, spatial profiles, interphase growth).

Typical use::

    clf = EnvironmentClassifier(SOAP(r_cut=4.5), species=["Li", "S"]).fit(ds)
    labels = clf.predict(ds)                       # (frame, atom)
    phases = identify_phases(clf, "refs.xyz")      # nearest reference, is_new per cluster
    frac = phase_fractions(labels)                 # (frame, cluster)
"""

from __future__ import annotations

import xarray as xr
from atomtwin.toolkit.environments.descriptors import (
    ACSF,
    SOAP,
    ModelFeatures,
    environment_descriptors,
)
from atomtwin.toolkit.environments.evolution import (
    fit_growth_law,
    interphase_thickness,
    phase_fractions,
    spatial_profiles,
)
from atomtwin.toolkit.environments.matching import (
    bootstrap_stability,
    identify_phases,
    load_references,
    neighbour_composition,
    representative_environments,
)
from atomtwin.toolkit.environments.pipeline import NOISE, NOT_CENTRE, EnvironmentClassifier


def classify_environments(
    ds: xr.Dataset,
    descriptor="soap",
    *,
    references=None,
    axis: str | None = None,
    n_bins: int = 50,
    min_overlap: float = 0.5,
    rattle: float = 0.08,
    site_species=None,
    site_shell: float = 3.0,
    **classifier_options,
) -> tuple[xr.Dataset, EnvironmentClassifier]:
    """Fit a classifier on ``ds`` and label every environment, in one call.

    Parameters
    ----------
    ds
        Trajectory.
    descriptor
        See :func:`environment_descriptors`.
    references
        Optional reference structures (``{name: Atoms}``, list or extxyz path) matched by
        :func:`identify_phases`.
    site_species, site_shell
        Match each site of a reference on its own (see :func:`identify_phases`).
    axis
        When given, spatial profiles along this cell axis are added.
    classifier_options
        Passed to :class:`EnvironmentClassifier` (``species``, ``method``, ``seed``...).

    Returns
    -------
    result : Dataset
        ``labels`` (frame, atom), ``fraction`` (frame, cluster), ``reduced``/``sample_labels``
        (the fit subsample, for the map), plus ``profile`` and the phase table when asked.
    clf : EnvironmentClassifier
        The fitted pipeline (save it with ``clf.save(path)``).
    """
    clf = EnvironmentClassifier(descriptor, **classifier_options)
    labels = clf.fit_predict(ds)
    sample = clf.sample_dataset().rename(
        {
            "labels": "sample_labels",
            "atom_index": "sample_atom",
            "frame_index": "sample_frame",
            "centre_species": "sample_species",
        }
    )
    out = xr.merge(
        [labels.to_dataset(name="labels"), phase_fractions(labels).to_dataset(), sample],
        compat="override",
        combine_attrs="drop",
        join="outer",  # a cluster with no labelled environment has no fraction column
    )
    if axis is not None:
        out["profile"] = spatial_profiles(ds, labels, axis=axis, n_bins=n_bins)
    if references is not None:
        ph = identify_phases(
            clf,
            references,
            min_overlap=min_overlap,
            rattle=rattle,
            seed=clf.seed,
            site_species=site_species,
            site_shell=site_shell,
        )
        out = xr.merge(
            [out, ph.rename({"size": "sample_size"})],
            compat="override",
            combine_attrs="drop",
            join="outer",  # the phase table covers every cluster, the fractions those seen
        )
    out.attrs.update(
        {
            "descriptor": clf.descriptor.kind,
            "method": clf.method,
            "n_clusters": clf.n_clusters_,
            "seed": clf.seed,
        }
    )
    return out, clf


__all__ = [
    "ACSF",
    "SOAP",
    "ModelFeatures",
    "environment_descriptors",
    "EnvironmentClassifier",
    "NOISE",
    "NOT_CENTRE",
    "classify_environments",
    "identify_phases",
    "load_references",
    "neighbour_composition",
    "representative_environments",
    "bootstrap_stability",
    "phase_fractions",
    "spatial_profiles",
    "interphase_thickness",
    "fit_growth_law",
]

__accessor__ = (
    "environment_descriptors",
    "classify_environments",
    "spatial_profiles",
    "neighbour_composition",
)
