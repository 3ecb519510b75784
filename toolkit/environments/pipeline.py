"""The classification pipeline: standardise -> reduce -> cluster, fitted on a subsample.

:class:`EnvironmentClassifier` is a compute object (parameters in ``__init__``, ``fit``
returns ``self``, results as xarray).  It is fitted on a random subsample of environments
drawn from a few evenly spaced frames (descriptors computed for the sampled centres only),
then labels every environment with one dask task per chunk of frames that computes the
chunk's float32 descriptors (or reads them from the optional cache), projects them with one
GEMM and assigns them (HDBSCAN: :mod:`~atomtwin.toolkit.environments.assign`, the same
labels as ``hdbscan.approximate_predict`` several times faster) and returns only the int16
labels: millions of environments are labelled with memory bounded by one chunk per worker,
and no descriptor is computed twice.  On a dask distributed client, :meth:`fit_predict`
starts the workers on the descriptors and their projection as soon as the PCA is fitted,
while this process fits the clusters; the reduced float32 rows stay on the workers and are
assigned there (the same labels as ``fit`` then ``predict``).
Cluster labels are put in a canonical order (largest cluster of the fit sample first), so
two fits with the same seed give identical labels.  ``-1`` marks noise (HDBSCAN), ``-2``
an atom that is not a centre (another species).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.environments.descriptors import (
    ENV,
    FEATURE,
    ModelFeatures,
    as_descriptor,
    default_chunk_frames,
    environment_descriptors,
    settings_key,
)
from atomtwin.toolkit.errors import InputError

NOISE = -1
NOT_CENTRE = -2
CLUSTER = "cluster"
METHODS = ("gmm", "kmeans", "hdbscan")


class EnvironmentClassifier:
    """Unsupervised classifier of local atomic environments.

    Parameters
    ----------
    descriptor
        ``"soap"``, ``"acsf"``, a descriptor object or a callable (see
        :func:`~atomtwin.toolkit.environments.descriptors.environment_descriptors`).
    species, neighbours
        Centre and neighbour species (default: all).  Centres of different species are
        never put in one cluster: the centre species is appended as a one-hot block
        weighted to dominate the standardised features.
    method
        ``"gmm"`` (Gaussian mixtures, number of components chosen by BIC unless
        ``n_clusters`` is given), ``"kmeans"`` (needs ``n_clusters``) or ``"hdbscan"``.
    n_clusters
        Fixed number of clusters (gmm, kmeans).
    max_clusters
        Largest number of mixture components tried by the BIC selection.
    reducer
        ``"pca"``, ``"kpca"`` (RBF kernel PCA, fitted on at most ``kpca_max`` points) or None.
    n_components
        Dimension of the reduced space.
    n_fit
        Environments in the fit subsample (default ``min(20000, available)``); an explicit
        value larger than the environments available raises.
    fit_frames
        Frames (evenly spaced) the subsample is drawn from (default: up to 16).
    merge_overlap
        Gaussian components whose overlap (summed ``min`` of the two posterior
        probabilities over the sample, divided by the smaller component's weight) exceeds
        this are merged into one cluster: a broad non-Gaussian cluster (a liquid) that BIC
        splits into several components is reunited, while well separated crystalline
        components (overlap ~0) stay apart.  None: no merging.
    min_cluster_size
        HDBSCAN's minimum cluster size (default 1 % of the subsample, at least 10).
    noise
        ``"keep"``: HDBSCAN noise stays ``-1``; ``"nearest"``: assigned to the nearest
        cluster centre in the reduced space.
    seed
        Seed of every random choice (subsample, PCA solver, mixtures, k-means).
    chunk_frames
        Frames per dask block (task) of descriptors; default about 64 MB of float32 features.
    cache
        Descriptor cache: None/False (off), True (``$ATOMTWIN_CACHE`` or
        ``~/.cache/atomtwin/descriptors``) or a folder.  Each chunk of frames is stored under a
        key made of the descriptor settings and a hash of its positions and cell, so a later
        fit or predict on the same frames reads them instead of recomputing; a changed
        setting or trajectory misses the cache.  Disk: 4 bytes x environments x features.
    """

    def __init__(
        self,
        descriptor="soap",
        *,
        species=None,
        neighbours=None,
        method: str = "gmm",
        n_clusters: int | None = None,
        max_clusters: int = 8,
        reducer: str | None = "pca",
        n_components: int = 16,
        merge_overlap: float | None = 0.05,
        n_fit: int | None = None,
        fit_frames: int | None = 16,
        min_cluster_size: int | None = None,
        noise: str = "keep",
        seed: int = 0,
        chunk_frames: int | None = None,
        kpca_max: int = 4000,
        cache=None,
    ):
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}. Fix: use one of {METHODS}.")
        if method == "kmeans" and n_clusters is None:
            raise InputError(
                "method='kmeans' needs n_clusters. Fix: give n_clusters=k, or use 'gmm' (BIC)."
            )
        if reducer not in ("pca", "kpca", None):
            raise InputError(f"unknown reducer {reducer!r}. Fix: use 'pca', 'kpca' or None.")
        if noise not in ("keep", "nearest"):
            raise InputError(f"noise must be 'keep' or 'nearest', got {noise!r}.")
        if n_clusters is not None and n_clusters < 1:
            raise InputError(f"n_clusters must be >= 1, got {n_clusters}.")
        self.descriptor = as_descriptor(descriptor)
        self.species, self.neighbours = species, neighbours
        self.method, self.n_clusters, self.max_clusters = method, n_clusters, max_clusters
        self.reducer, self.n_components = reducer, n_components
        self.n_fit, self.fit_frames, self.min_cluster_size = n_fit, fit_frames, min_cluster_size
        self.noise, self.seed, self.chunk_frames, self.kpca_max = (
            noise,
            seed,
            chunk_frames,
            kpca_max,
        )
        self.merge_overlap = merge_overlap
        self.cache = cache
        self.fitted_ = False

    # -- features ------------------------------------------------------------------------
    def descriptors(self, ds: xr.Dataset) -> xr.DataArray:
        """Lazy descriptors ``(frame, env, feature)`` of ``ds`` with this classifier's settings."""
        species = self.species_ if self.fitted_ else self.species
        neighbours = self.neighbours_ if self.fitted_ else self.neighbours
        if self.fitted_:
            present = set(np.asarray(ds[S.SPECIES].values).astype(str))
            missing = sorted(set(neighbours) - present)
            if missing:
                import warnings

                warnings.warn(
                    f"the fitted neighbour species {missing} are absent from this trajectory; "
                    "their density channels are zero.",
                    stacklevel=3,
                )
                neighbours = [s for s in neighbours if s in present]
                if not neighbours:
                    raise InputError(
                        f"none of the fitted neighbour species {self.neighbours_} is in the trajectory."
                    )
            species = [s for s in species if s in present]
            if not species:
                raise InputError(
                    f"none of the fitted centre species {self.species_} is in the trajectory "
                    f"(it has {sorted(present)}). Fix: reuse the pipeline on a trajectory of the same chemistry."
                )
        X = environment_descriptors(
            ds,
            self.descriptor,
            species=species,
            neighbours=neighbours,
            chunk_frames=self.chunk_frames,
        )
        if self.fitted_ and list(X.attrs["neighbours"]) != list(self.neighbours_):
            raise InputError(
                f"neighbour species {X.attrs['neighbours']} differ from the fitted "
                f"{self.neighbours_}; the descriptor layout would not match. Fix: refit."
            )
        return X

    def _augment(self, X: np.ndarray, centre_species: np.ndarray) -> np.ndarray:
        """Standardised features with the weighted one-hot centre species appended."""
        Z = (X - self.mean_) / self.scale_
        if len(self.species_) > 1:
            w = 10.0 * np.sqrt(Z.shape[1])  # >> typical distance between standardised points
            onehot = (centre_species[:, None] == np.asarray(self.species_)[None, :]) * w
            Z = np.hstack([Z, onehot])
        return Z

    # -- fit -----------------------------------------------------------------------------
    def _sample_index(self, X: xr.DataArray, rng: np.random.Generator):
        nf, ne = X.sizes[S.FRAME], X.sizes[ENV]
        k = nf if self.fit_frames is None else min(nf, self.fit_frames)
        frames = np.unique(np.linspace(0, nf - 1, k).round().astype(int))
        available = frames.size * ne
        n = min(20000, available) if self.n_fit is None else int(self.n_fit)
        if n > available:
            raise InputError(
                f"n_fit={n} environments requested but only {available} are available "
                f"({frames.size} fit frames x {ne} centres). Fix: lower n_fit or raise fit_frames."
            )
        if n < 2:
            raise InputError(f"n_fit={n}: need at least 2 environments to fit.")
        flat = np.sort(rng.choice(available, size=n, replace=False))
        fi, ei = np.divmod(flat, ne)
        return frames, fi, ei

    def _sample(self, X: xr.DataArray, rng: np.random.Generator):
        frames, fi, ei = self._sample_index(X, rng)
        block = np.asarray(_compute(X.isel({S.FRAME: frames}).data, "descriptors (fit frames)"))
        return block[fi, ei], frames[fi], ei

    def _sample_dataset(
        self, ds: xr.Dataset, X: xr.DataArray, spec: dict, chunk: int, rng: np.random.Generator
    ):
        """The fit sample computed for the sampled centres only (a few per cent of the work of
        whole frames), or read from the descriptor cache when its chunk is there; one task
        per fit frame on the current dask scheduler (both workers busy)."""
        import dask
        from atomtwin.toolkit.environments import _stream as ST

        frames, fi, ei = self._sample_index(X, rng)
        cache = ST.resolve_cache(getattr(self, "cache", None))
        pos = ds[S.POSITIONS].data
        cell = ds[S.CELL].data if spec["periodic_cell"] else None
        nf = int(ds.sizes[S.FRAME])
        spec_d = dask.delayed(spec, pure=True)
        tasks, where = [], []
        for k in range(frames.size):
            f = int(frames[k])
            rows = np.flatnonzero(fi == k)
            if rows.size == 0:  # more fit frames than sampled environments: none drawn here
                continue
            a = (f // chunk) * chunk
            b = min(nf, a + chunk)
            tasks.append(
                dask.delayed(ST.sample_rows, pure=True)(
                    pos[a:b], None if cell is None else cell[a:b], f - a, ei[rows], spec_d, cache
                )
            )
            where.append(rows)
        out = np.empty((fi.size, spec["n_feat"]), dtype=np.float32)
        for rows, block in zip(where, ST.run_tasks(tasks, "descriptors (fit sample)"), strict=True):
            out[rows] = block
        return out, frames[fi], ei

    def _spec(self, ds: xr.Dataset):
        """Lazy descriptors (checks, species) plus what a worker needs to compute a chunk."""
        X = self.descriptors(ds)
        desc = self.descriptor
        if isinstance(desc, ModelFeatures) and desc.n_features_ is None:
            desc = ModelFeatures(desc.features, int(X.sizes[FEATURE]), desc.periodic)
        symbols = np.asarray(ds[S.SPECIES].values).astype(str)
        periodic_cell = S.CELL in ds and desc.periodic
        pbc = S.pbc_of(ds) if desc.periodic else np.zeros(3, bool)
        centres, neigh = tuple(X.attrs["species"]), tuple(X.attrs["neighbours"])
        centre_index = np.asarray(X["atom_index"].values)
        n_feat = int(X.sizes[FEATURE])
        spec = {
            "desc": desc,
            "symbols": symbols,
            "pbc": pbc,
            "centres": centres,
            "neighbours": neigh,
            "centre_index": centre_index,
            "centre_species": symbols[centre_index],
            "n_feat": n_feat,
            "periodic_cell": periodic_cell,
            "settings": settings_key(desc, centres, neigh, symbols, pbc),
        }
        chunk = self.chunk_frames or default_chunk_frames(centre_index.size, n_feat)
        return X, spec, chunk

    def fit(self, data) -> EnvironmentClassifier:
        """Fit on a subsample of ``data`` (a trajectory Dataset or descriptors DataArray)."""
        return self._fit_finish(self._fit_reduce(data))

    def _fit_reduce(self, data) -> dict:
        """First half of :meth:`fit`: the subsample, standardisation and reducer (fast); the
        projection of every environment can start from here while the clusters are fitted."""
        from sklearn.decomposition import PCA, KernelPCA

        self.fitted_, self._labeller = False, None
        if isinstance(data, xr.Dataset):
            X, spec, chunk = self._spec(data)
        else:
            X, spec, chunk = data, None, None
        if not isinstance(X, xr.DataArray) or X.dims != (S.FRAME, ENV, FEATURE):
            raise TypeError(
                "fit() takes a trajectory Dataset or a descriptors DataArray (frame, env, feature)."
            )
        rng = np.random.default_rng(self.seed)
        self.species_ = list(
            X.attrs.get("species", sorted(set(X["centre_species"].values.astype(str))))
        )
        self.neighbours_ = list(X.attrs.get("neighbours", []))
        if spec is None:
            sample, s_frame, s_env = self._sample(X, rng)
        else:
            sample, s_frame, s_env = self._sample_dataset(data, X, spec, chunk, rng)
        sample = np.asarray(sample, dtype=np.float64)
        centre_sp = np.asarray(X["centre_species"].values).astype(str)[s_env]
        self.mean_ = sample.mean(axis=0)
        sd = sample.std(axis=0)
        self.scale_ = np.where(sd > 1e-12 * max(1.0, float(np.abs(sample).max())), sd, 1.0)
        Z = self._augment(sample, centre_sp)
        nc = max(1, min(self.n_components, Z.shape[1], Z.shape[0] - 1))
        if self.reducer == "pca":
            self.reducer_ = PCA(n_components=nc, random_state=self.seed).fit(Z)
        elif self.reducer == "kpca":
            m = min(self.kpca_max, Z.shape[0])
            idx = rng.choice(Z.shape[0], m, replace=False)
            gamma = 1.0 / (Z.shape[1] * float(Z[idx].var()) or 1.0)
            self.reducer_ = KernelPCA(
                n_components=nc, kernel="rbf", gamma=gamma, random_state=self.seed
            ).fit(Z[idx])
        else:
            self.reducer_ = None
        return {
            "X": X,
            "spec": spec,
            "chunk": chunk,
            "sample": sample,
            "s_frame": s_frame,
            "s_env": s_env,
            "centre_sp": centre_sp,
            "Z": Z,
        }

    def _fit_finish(self, st: dict) -> EnvironmentClassifier:
        """Second half of :meth:`fit`: clusters of the reduced subsample, canonical order."""
        Z, X = st["Z"], st["X"]
        Y = self._reduce(Z)
        # OpenMP inside scikit-learn (k-means) can deadlock after dask worker threads have
        # run OpenMP code (dscribe); clustering a subsample needs no threads.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            labels = self._fit_cluster(Y)
        # canonical order: largest cluster first, ties by first coordinate of the centre
        ids = [c for c in np.unique(labels) if c >= 0]
        order = sorted(ids, key=lambda c: (-np.sum(labels == c), float(Y[labels == c, 0].mean())))
        self.relabel_ = {int(c): i for i, c in enumerate(order)}
        labels = np.array([self.relabel_.get(int(c), NOISE) for c in labels], dtype=np.int16)
        self.n_clusters_ = len(order)
        self.centres_ = np.array([Y[labels == k].mean(axis=0) for k in range(self.n_clusters_)])
        self.feature_centres_ = np.array(
            [Z[labels == k].mean(axis=0) for k in range(self.n_clusters_)]
        )
        self.sample_features_ = st["sample"]
        self.sample_labels_ = labels
        self.sample_reduced_ = Y
        self.sample_frame_ = st["s_frame"]
        self.sample_atom_ = np.asarray(X["atom_index"].values)[st["s_env"]]
        self.sample_species_ = st["centre_sp"]
        self.fitted_ = True
        return self

    def _reduce(self, Z: np.ndarray) -> np.ndarray:
        return Z if self.reducer_ is None else self.reducer_.transform(Z)

    def _fit_cluster(self, Y: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans
        from sklearn.mixture import GaussianMixture

        self.bic_ = None
        if self.method == "kmeans":
            self.model_ = KMeans(self.n_clusters, n_init=4, random_state=self.seed).fit(Y)
            return self.model_.labels_
        if self.method == "gmm":
            ks = [self.n_clusters] if self.n_clusters else list(range(1, self.max_clusters + 1))
            ks = [k for k in ks if k <= Y.shape[0]]
            fits = [
                GaussianMixture(
                    k,
                    covariance_type="full",
                    n_init=2,
                    reg_covar=1e-4,
                    init_params="k-means++",
                    random_state=self.seed,
                ).fit(Y)
                for k in ks
            ]
            bic = np.array([g.bic(Y) for g in fits])
            self.bic_ = xr.DataArray(
                bic,
                dims=("n_clusters",),
                coords={"n_clusters": ks},
                attrs={"units": "1", "long_name": "Bayesian information criterion"},
            )
            self.model_ = fits[int(np.argmin(bic))]
            self.merge_ = np.arange(self.model_.n_components)
            if self.merge_overlap is not None:
                self.merge_ = _merge_components(self.model_.predict_proba(Y), self.merge_overlap)
            return self.merge_[self.model_.predict(Y)]
        import hdbscan

        mcs = self.min_cluster_size or max(10, Y.shape[0] // 100)
        # core_dist_n_jobs=1: the core distances in this process (hdbscan's default starts 4
        # loky processes that compete with the dask workers for the cores); the same values
        self.model_ = hdbscan.HDBSCAN(
            min_cluster_size=int(mcs), prediction_data=True, core_dist_n_jobs=1
        ).fit(Y)
        return self.model_.labels_

    # -- predict -------------------------------------------------------------------------
    def _check(self):
        if not getattr(self, "fitted_", False):
            raise RuntimeError(
                "the classifier is not fitted. Fix: call fit(ds) first (or load a saved one)."
            )

    def predict_features(self, X: np.ndarray, centre_species: np.ndarray) -> np.ndarray:
        """Labels (n,) int16 of feature rows ``X`` (n, n_features) with their centre species."""
        self._check()
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.mean_.size:
            raise InputError(
                f"features have shape {X.shape}; the pipeline was fitted on {self.mean_.size} features."
            )
        if X.shape[0] == 0:
            return np.zeros(0, np.int16)
        return self.labeller().labels(X, np.asarray(centre_species).astype(str))

    def labeller(self):
        """The fitted projection + assignment that workers run (built once, no fit sample)."""
        self._check()
        if getattr(self, "_labeller", None) is None:
            from atomtwin.toolkit.environments._stream import Labeller

            self._labeller = Labeller(self)
        return self._labeller

    def transform_features(self, X: np.ndarray, centre_species: np.ndarray) -> np.ndarray:
        """Reduced coordinates (n, n_components) of feature rows."""
        self._check()
        return self._reduce(
            self._augment(np.asarray(X, float), np.asarray(centre_species).astype(str))
        )

    def predict(self, data, n_atoms: int | None = None) -> xr.DataArray:
        """Labels of every environment: DataArray ``(frame, atom)`` int16.

        ``data`` is a trajectory Dataset (descriptors computed block by block) or a
        descriptors DataArray.  Atoms that are not centres get ``-2``, noise ``-1``.  The
        computation runs on dask's current scheduler (a distributed ``Client`` when one is
        active).
        """
        self._check()
        if isinstance(data, xr.Dataset):
            X, lab = self._predict_dataset(data)
            n_atoms = int(data.sizes[S.ATOM])
        else:
            X = data
            if n_atoms is None:
                n_atoms = int(X["atom_index"].max()) + 1
            sp = np.asarray(X["centre_species"].values).astype(str)
            lab = _compute(
                X.data.rechunk({1: -1, 2: -1}).map_blocks(
                    _predict_block, self.labeller(), sp, drop_axis=2, dtype=np.int16
                ),
                "environments",
            )
        return self._labels_array(X, lab, n_atoms)

    def _labels_array(self, X: xr.DataArray, lab: np.ndarray, n_atoms: int) -> xr.DataArray:
        full = np.full((X.sizes[S.FRAME], n_atoms), NOT_CENTRE, dtype=np.int16)
        full[:, np.asarray(X["atom_index"].values)] = lab
        coords = {S.TIME: X[S.TIME]} if S.TIME in X.coords else {}
        return xr.DataArray(
            full,
            dims=(S.FRAME, S.ATOM),
            coords=coords,
            name="labels",
            attrs={
                "units": "1",
                "noise": NOISE,
                "not_centre": NOT_CENTRE,
                "n_clusters": self.n_clusters_,
                "method": self.method,
                "long_name": "environment cluster",
            },
        )

    def _predict_dataset(self, ds: xr.Dataset):
        """One task per chunk of frames: descriptors (or cache) -> labels; only labels return."""
        import dask
        from atomtwin.toolkit.environments import _stream as ST

        X, spec, chunk = self._spec(ds)
        cache = ST.resolve_cache(getattr(self, "cache", None))
        labeller = dask.delayed(self.labeller(), pure=True)  # shipped once to each worker
        spec_d = dask.delayed(spec, pure=True)
        pos = ds[S.POSITIONS].data
        cell = ds[S.CELL].data if spec["periodic_cell"] else None
        nf = int(ds.sizes[S.FRAME])
        tasks = [
            dask.delayed(ST.label_chunk, pure=True)(
                pos[a : a + chunk],
                None if cell is None else cell[a : a + chunk],
                spec_d,
                cache,
                labeller,
            )
            for a in range(0, nf, chunk)
        ]
        parts = ST.run_tasks(tasks, "environments")
        ne = spec["centre_index"].size
        lab = np.concatenate(parts, axis=0) if parts else np.zeros((0, ne), np.int16)
        return X, lab

    def fit_predict(self, ds: xr.Dataset) -> xr.DataArray:
        """``fit(ds)`` then ``predict(ds)``: the fit sample's descriptors are computed for the
        sampled centres only, every chunk's descriptors once (or read from the cache).

        On a dask distributed ``Client`` (PCA reducer) the workers start computing and
        projecting every chunk as soon as the PCA is fitted, while this process fits the
        clusters; only the reduced float32 rows (``n_components`` per environment) are kept,
        on the workers, and assigned there once the clusters are known.  The labels are those
        of ``fit(ds).predict(ds)``: the same subsample, fit and float32 projection.
        """
        if isinstance(ds, xr.Dataset) and self.reducer == "pca" and _distributed_client():
            return self._fit_predict_overlapped(ds)
        return self.fit(ds).predict(ds)

    def _fit_predict_overlapped(self, ds: xr.Dataset) -> xr.DataArray:
        import dask
        from atomtwin.toolkit.environments import _stream as ST
        from distributed import default_client

        client = default_client()
        st = self._fit_reduce(ds)
        X, spec, chunk = st["X"], st["spec"], st["chunk"]
        projector = ST.Projector.of(self)
        cache = ST.resolve_cache(getattr(self, "cache", None))
        pos = ds[S.POSITIONS].data
        cell = ds[S.CELL].data if spec["periodic_cell"] else None
        nf = int(ds.sizes[S.FRAME])
        spec_d = dask.delayed(spec, pure=True)
        proj_d = dask.delayed(projector, pure=True)
        tasks = [
            dask.delayed(ST.project_chunk, pure=True)(
                pos[a : a + chunk],
                None if cell is None else cell[a : a + chunk],
                spec_d,
                cache,
                proj_d,
            )
            for a in range(0, nf, chunk)
        ]
        projected = client.compute(tasks)  # runs on the workers while the clusters are fitted
        labelled: list = []
        try:
            self._fit_finish(st)
            labeller = client.scatter(self.labeller(), broadcast=True)
            sp = spec["centre_species"]
            labelled = [client.submit(ST.assign_rows, f, sp, labeller) for f in projected]
            parts = ST.gather(client, labelled, "environments")
        except BaseException:
            client.cancel(projected + labelled)
            raise
        del projected, labelled
        ne = spec["centre_index"].size
        lab = np.concatenate(parts, axis=0) if parts else np.zeros((0, ne), np.int16)
        return self._labels_array(X, lab, int(ds.sizes[S.ATOM]))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_labeller"] = None  # rebuilt on first use
        return state

    # -- results -------------------------------------------------------------------------
    def sample_dataset(self) -> xr.Dataset:
        """The fit subsample: reduced coordinates, labels, frame/atom of each point."""
        self._check()
        return xr.Dataset(
            {
                "reduced": (("sample", "component"), self.sample_reduced_, {"units": "1"}),
                "labels": ("sample", self.sample_labels_, {"units": "1"}),
                "frame_index": ("sample", self.sample_frame_),
                "atom_index": ("sample", self.sample_atom_),
                "centre_species": ("sample", self.sample_species_),
            },
            attrs={
                "method": self.method,
                "reducer": str(self.reducer),
                "n_clusters": self.n_clusters_,
            },
        )

    # -- persistence ---------------------------------------------------------------------
    def save(self, path) -> Path:
        """Pickle the fitted pipeline (descriptor settings included) to ``path``."""
        self._check()
        path = Path(path)
        with open(path, "wb") as fh:
            pickle.dump(
                {"format": "atomtwin.EnvironmentClassifier", "version": 1, "object": self}, fh
            )
        return path

    @staticmethod
    def load(path) -> EnvironmentClassifier:
        """Load a pipeline written by :meth:`save` (only load files you trust: pickle)."""
        with open(path, "rb") as fh:
            obj = pickle.load(fh)
        if not isinstance(obj, dict) or obj.get("format") != "atomtwin.EnvironmentClassifier":
            raise InputError(f"'{path}' is not a saved EnvironmentClassifier.")
        return obj["object"]

    def __repr__(self) -> str:
        state = f"{self.n_clusters_} clusters" if self.fitted_ else "unfitted"
        return f"EnvironmentClassifier({self.descriptor.kind}, {self.method}, {state})"


def _compute(arr, desc: str) -> np.ndarray:
    """``arr.compute()`` (a dask or NumPy array) with a progress bar over its dask tasks when
    progress bars are on (:mod:`atomtwin.toolkit.progress`) and dask runs on a local
    scheduler (a distributed ``Client`` has its own dashboard)."""
    from atomtwin.toolkit import progress as P

    if not hasattr(arr, "dask"):
        return np.asarray(arr)
    if not P.enabled() or _distributed_client():
        return arr.compute()
    from dask.callbacks import Callback

    class _Bar(Callback):
        def _start_state(self, dsk, state):
            total = sum(len(state.get(k, ())) for k in ("ready", "waiting", "running", "finished"))
            self.bar = iter(P.progress(range(total), total=total, desc=desc, unit="task"))

        def _posttask(self, key, result, dsk, state, worker_id):
            next(self.bar, None)

        def _finish(self, dsk, state, errored):
            for _ in self.bar:  # close the bar (a task finished twice or cached: complete it)
                pass

    with _Bar():
        return arr.compute()


def _distributed_client() -> bool:
    try:
        from distributed import default_client

        default_client()
    except (ImportError, ValueError):
        return False
    return True


def _predict_block(block: np.ndarray, labeller, species: np.ndarray) -> np.ndarray:
    nf, ne, nfeat = block.shape
    lab = labeller.labels(block.reshape(nf * ne, nfeat), np.tile(species, nf))
    return lab.reshape(nf, ne)


def _merge_components(tau: np.ndarray, threshold: float) -> np.ndarray:
    """Map of mixture component -> merged component (union of pairs overlapping > threshold)."""
    k = tau.shape[1]
    weight = tau.sum(axis=0)
    parent = list(range(k))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(k):
        for j in range(i + 1, k):
            overlap = np.minimum(tau[:, i], tau[:, j]).sum() / max(min(weight[i], weight[j]), 1e-12)
            if overlap > threshold:
                parent[find(i)] = find(j)
    return np.array([find(c) for c in range(k)])
