"""Phase identification: match clusters to user references, composition, representative
environments, candidate new phases, bootstrap stability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.environments.descriptors import frame_atoms
from atomtwin.toolkit.environments.pipeline import CLUSTER, EnvironmentClassifier
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import neighbor_pairs


def load_references(references) -> dict[str, object]:
    """References as ``{name: ase.Atoms}`` from a dict, a list of Atoms or an extxyz path.

    Names come from ``atoms.info['name']`` (or ``config_type``), else the chemical formula.
    """
    import ase.io

    if isinstance(references, str | Path):
        if not Path(references).exists():
            raise FileNotFoundError(f"no such references file: '{references}'.")
        references = ase.io.read(str(references), index=":")
    if isinstance(references, dict):
        return dict(references)
    out = {}
    for a in references:
        name = str(a.info.get("name", a.info.get("config_type", a.get_chemical_formula())))
        out[name] = a
    return out


def reference_descriptors(
    clf: EnvironmentClassifier,
    references,
    *,
    rattle: float = 0.08,
    n_rattle: int = 4,
    seed: int = 0,
    min_length: float | None = None,
    site_species=None,
    site_shell: float = 3.0,
    min_site_fraction: float = 0.1,
):
    """Descriptors of thermally rattled references, with the classifier's settings.

    Parameters
    ----------
    clf
        A fitted classifier (its descriptor, centre and neighbour species are used).
    references
        ``{name: Atoms}``, a list of Atoms or an extxyz file (periodic cells).
    rattle
        Standard deviation of the Gaussian displacements in Å (match the trajectory's
        thermal amplitude, sqrt(kT / (m w^2))).
    n_rattle
        Independent rattled copies of each reference.
    min_length
        Each reference is repeated until every cell width is at least this (default 2 x the
        descriptor cutoff).
    site_species
        When given (e.g. the anions ``("Cl", "P", "S")``), each reference's environments
        of a centre species are split into *sites* by how many neighbours of each of these
        species lie within ``site_shell`` Å (counted on the reference as given, before
        rattling), and each site is named ``"<name>[<species><count> ...]"``: a crystal
        with two kinds of S (Li6PS5Cl: S bonded to P in PS4 units, and free S2- among Li
        only) is then two references instead of one mixture, whose mean lies between both
        and whose spread is wide enough to take in either.  Sites holding less than
        ``min_site_fraction`` of their (reference, centre species) environments (thermal
        fluctuations of the count) are merged into the largest site.

    Returns
    -------
    features : ndarray (n, n_features), species : ndarray (n,), names : ndarray (n,)
    """
    clf._check()
    refs = load_references(references)
    if not refs:
        raise InputError("no reference structures given.")
    allowed = set(clf.neighbours_) | set(clf.species_)
    rng = np.random.default_rng(seed)
    feats, species, names = [], [], []
    r_cut = getattr(clf.descriptor, "r_cut", 5.0)
    min_length = 2 * r_cut if min_length is None else min_length
    for name, atoms in refs.items():
        sym = set(atoms.get_chemical_symbols())
        other = sorted(sym - allowed)
        if other:
            raise InputError(
                f"reference '{name}' holds species {other} that the trajectory/classifier does not "
                f"({sorted(allowed)}). Fix: give references of the trajectory's species only."
            )
        if clf.descriptor.periodic and atoms.cell.rank < 3:
            raise InputError(
                f"reference '{name}' has no cell. Fix: give periodic reference crystals."
            )
        if atoms.cell.rank == 3:
            widths = atoms.cell.volume / np.linalg.norm(
                np.cross(atoms.cell[[1, 2, 0]], atoms.cell[[2, 0, 1]]), axis=1
            )
            atoms = atoms.repeat(tuple(int(np.ceil(min_length / w)) for w in widths))
        sp = np.asarray(atoms.get_chemical_symbols())
        centre = np.flatnonzero(np.isin(sp, clf.species_))
        if centre.size == 0:
            continue
        neigh = tuple(s for s in clf.neighbours_)
        site_names = (
            np.full(centre.size, name, dtype=object)
            if site_species is None
            else _site_names(
                atoms, centre, name, tuple(site_species), site_shell, min_site_fraction
            )
        )
        for _ in range(n_rattle):
            a = atoms.copy()
            a.positions += rng.normal(0.0, rattle, a.positions.shape)
            feats.append(clf.descriptor.compute(a, centre, neigh, tuple(clf.species_)))
            species.append(sp[centre])
            names.append(site_names.astype(str))
    if not feats:
        raise InputError(f"no reference holds a centre species {clf.species_}.")
    return np.vstack(feats), np.concatenate(species), np.concatenate(names)


def _site_names(atoms, centre, name, site_species, shell, min_fraction) -> np.ndarray:
    """``"<name>[<species><count> ...]"`` for each centre atom of ``atoms`` (see
    :func:`reference_descriptors`); small sites merged into the largest of their species."""
    from ase.neighborlist import neighbor_list

    sym = np.asarray(atoms.get_chemical_symbols())
    i, j = neighbor_list("ij", atoms, shell)
    out = np.empty(centre.size, dtype=object)
    for c, atom in enumerate(centre):
        nb = sym[j[i == atom]]
        out[c] = f"{name}[" + " ".join(f"{x}{int(np.sum(nb == x))}" for x in site_species) + "]"
    for centre_species in np.unique(sym[centre]):
        m = sym[centre] == centre_species
        keys, counts = np.unique(out[m].astype(str), return_counts=True)
        big = keys[np.argmax(counts)]
        small = set(keys[counts < min_fraction * m.sum()])
        out[m] = [big if k in small else k for k in out[m]]
    return out


def identify_phases(
    clf: EnvironmentClassifier,
    references,
    *,
    min_overlap: float = 0.5,
    rattle: float = 0.08,
    n_rattle: int = 4,
    seed: int = 0,
    site_species=None,
    site_shell: float = 3.0,
) -> xr.Dataset:
    """Match each cluster to its nearest reference; flag unmatched clusters as new phases.

    For cluster k (centre species c) and reference environment set r (same centre species)
    the distance is ``|mu_k - mu_r| / sqrt(s_k^2 + s_r^2)`` in the standardised feature
    space, ``mu`` the mean and ``s^2`` the mean squared distance to the mean (the spread).
    Below ~1 the two means are closer than the combined spread.  The decision uses the
    fitted pipeline itself: the rattled reference environments are classified, and a
    reference claims the cluster receiving at least ``min_overlap`` of them (nearest
    reference = that one).  A cluster claimed by no reference is flagged ``is_new`` (a
    candidate new phase, or interface/surface environments); its ``nearest_reference`` is
    then the one at the smallest distance.

    ``site_species`` / ``site_shell`` split each reference into its sites (see
    :func:`reference_descriptors`); each site is then matched as a reference of its own,
    named ``"<name>[<species><count> ...]"``.

    Returns
    -------
    Dataset on ``cluster``: ``nearest_reference`` (str), ``distance`` (1), ``is_new``
    (bool), ``centre_species``, ``size`` and ``overlap`` (fraction of the reference's
    environments the pipeline puts in the cluster); ``distances`` (cluster, reference).
    """
    X, sp, names = reference_descriptors(
        clf,
        references,
        rattle=rattle,
        n_rattle=n_rattle,
        seed=seed,
        site_species=site_species,
        site_shell=site_shell,
    )
    Zr = clf._augment(X, sp)
    pred = clf.predict_features(X, sp)
    Zs = clf._augment(clf.sample_features_, clf.sample_species_)
    lab = clf.sample_labels_
    keys = sorted(set(zip(names.tolist(), sp.tolist(), strict=True)))
    ref_names = [f"{n}:{s}" if len(clf.species_) > 1 else n for n, s in keys]
    K = clf.n_clusters_
    D = np.full((K, len(keys)), np.inf)
    overlap = np.zeros((K, len(keys)))
    csp = []
    for k in range(K):
        m = lab == k
        mu, s2 = Zs[m].mean(0), ((Zs[m] - Zs[m].mean(0)) ** 2).sum(1).mean()
        vals, counts = np.unique(clf.sample_species_[m], return_counts=True)
        csp.append(str(vals[np.argmax(counts)]))
        for j, (n, s) in enumerate(keys):
            r = (names == n) & (sp == s)
            overlap[k, j] = float(np.mean(pred[r] == k))
            if s != csp[-1]:
                continue
            mr = Zr[r].mean(0)
            sr2 = ((Zr[r] - mr) ** 2).sum(1).mean()
            D[k, j] = np.linalg.norm(mu - mr) / np.sqrt(s2 + sr2)
    # a reference claims the cluster that receives most of its rattled environments; a
    # cluster claimed by no reference (overlap < min_overlap) is a candidate new phase
    claimed = overlap.max(axis=1) >= min_overlap if len(keys) else np.zeros(K, bool)
    best = np.where(claimed, np.argmax(overlap, axis=1), np.argmin(D, axis=1))
    dist = D[np.arange(K), best]
    return xr.Dataset(
        {
            "nearest_reference": (
                CLUSTER,
                np.array(
                    [
                        ref_names[b] if np.isfinite(d) else ""
                        for b, d in zip(best, dist, strict=True)
                    ]
                ),
            ),
            "distance": (
                CLUSTER,
                dist,
                {"units": "1", "long_name": "normalised distance to nearest reference"},
            ),
            "is_new": (CLUSTER, ~claimed, {"long_name": "candidate new phase"}),
            "centre_species": (CLUSTER, np.array(csp)),
            "size": (CLUSTER, np.array([int(np.sum(lab == k)) for k in range(K)]), {"units": "1"}),
            "distances": ((CLUSTER, "reference"), D, {"units": "1"}),
            "overlap": ((CLUSTER, "reference"), overlap, {"units": "1"}),
        },
        coords={CLUSTER: np.arange(K), "reference": ref_names},
        attrs={"min_overlap": min_overlap, "rattle_A": rattle},
    )


def neighbour_composition(
    ds: xr.Dataset, labels: xr.DataArray, r_cut: float, *, max_frames: int = 4
) -> xr.DataArray:
    """Mean number of neighbours of each species within ``r_cut`` (Å) per cluster.

    Computed on up to ``max_frames`` evenly spaced frames.  Returns DataArray
    ``(cluster, neighbour_species)``.
    """
    S.validate(ds)
    nf = ds.sizes[S.FRAME]
    frames = np.unique(np.linspace(0, nf - 1, min(nf, max_frames)).round().astype(int))
    species = np.asarray(ds[S.SPECIES].values).astype(str)
    present = sorted(set(species))
    lab = np.asarray(labels.values)
    K = int(lab.max()) + 1 if (lab >= 0).any() else 0
    sums = np.zeros((K, len(present)))
    counts = np.zeros(K)
    for f in frames:
        atoms = frame_atoms(ds, int(f))
        p = neighbor_pairs(atoms.positions, atoms.cell.array, atoms.pbc, r_cut, full=True)
        i, j = p.i, p.j
        cnt = np.zeros((len(atoms), len(present)))
        np.add.at(cnt, (i, np.searchsorted(present, species[j])), 1)
        for k in range(K):
            m = lab[f] == k
            sums[k] += cnt[m].sum(0)
            counts[k] += m.sum()
    return xr.DataArray(
        sums / np.maximum(counts, 1)[:, None],
        dims=(CLUSTER, "neighbour_species"),
        coords={CLUSTER: np.arange(K), "neighbour_species": present},
        attrs={"units": "1", "r_cut_A": r_cut, "long_name": "mean neighbour count"},
    )


def representative_environments(
    ds: xr.Dataset,
    clf: EnvironmentClassifier,
    *,
    n_per_cluster: int = 3,
    r_cut: float | None = None,
    path=None,
) -> list:
    """The sampled atoms nearest each cluster centre, as small non-periodic clusters.

    Each is an :class:`ase.Atoms` of the centre (first atom, at the origin) and its
    neighbours within ``r_cut`` Å (minimum image), ``info`` holding ``cluster``, ``frame``,
    ``atom``.  Written to ``path`` (extxyz) when given.
    """
    from ase import Atoms

    clf._check()
    r_cut = r_cut or getattr(clf.descriptor, "r_cut", 5.0)
    out = []
    cache: dict[int, tuple] = {}
    for k in range(clf.n_clusters_):
        m = np.flatnonzero(clf.sample_labels_ == k)
        d = ((clf.sample_reduced_[m] - clf.centres_[k]) ** 2).sum(1)
        for idx in m[np.argsort(d)[:n_per_cluster]]:
            f, a = int(clf.sample_frame_[idx]), int(clf.sample_atom_[idx])
            if f not in cache:
                atoms = frame_atoms(ds, f)
                p = neighbor_pairs(
                    atoms.positions, atoms.cell.array, atoms.pbc, r_cut, full=True, sort=True
                )
                cache[f] = (atoms, p.i, p.j, p.vectors)
            atoms, i, jn, D = cache[f]
            sel = np.flatnonzero(i == a)
            sym = np.asarray(atoms.get_chemical_symbols())
            env = Atoms(
                symbols=[sym[a], *sym[jn[sel]]],
                positions=np.vstack([np.zeros(3), D[sel]]),
                pbc=False,
            )
            env.info.update({"cluster": k, "frame": f, "atom": a})
            out.append(env)
    if path is not None:
        import ase.io

        ase.io.write(str(path), out, format="extxyz")
    return out


def bootstrap_stability(
    clf: EnvironmentClassifier, *, n_boot: int = 10, seed: int = 0
) -> xr.DataArray:
    """Adjusted Rand index of bootstrap refits against the fitted labels.

    Each replicate resamples the fit subsample with replacement, refits standardisation,
    reduction and clustering (same settings, seed + b), and labels the original subsample;
    ARI = 1 means the partition is reproduced exactly.  Returns DataArray ``(bootstrap,)``
    with ``mean`` and ``std`` attrs.
    """
    from sklearn.metrics import adjusted_rand_score

    clf._check()
    rng = np.random.default_rng(seed)
    X, sp = clf.sample_features_, clf.sample_species_
    scores = []
    for b in range(n_boot):
        idx = rng.integers(0, X.shape[0], X.shape[0])
        Xb = xr.DataArray(
            X[idx][None],
            dims=(S.FRAME, "env", "feature"),
            coords={"atom_index": ("env", np.arange(idx.size)), "centre_species": ("env", sp[idx])},
            attrs={"species": clf.species_, "neighbours": clf.neighbours_},
        )
        rep = EnvironmentClassifier(
            clf.descriptor,
            method=clf.method,
            n_clusters=clf.n_clusters,
            max_clusters=clf.max_clusters,
            reducer=clf.reducer,
            n_components=clf.n_components,
            merge_overlap=clf.merge_overlap,
            min_cluster_size=clf.min_cluster_size,
            noise=clf.noise,
            seed=clf.seed + b + 1,
            kpca_max=clf.kpca_max,
        )
        rep.fit(Xb)
        scores.append(adjusted_rand_score(clf.sample_labels_, rep.predict_features(X, sp)))
    s = np.array(scores)
    return xr.DataArray(
        s,
        dims=("bootstrap",),
        name="ari",
        attrs={
            "units": "1",
            "mean": float(s.mean()),
            "std": float(s.std(ddof=1)) if s.size > 1 else 0.0,
            "long_name": "adjusted Rand index vs the fitted labels",
        },
    )
