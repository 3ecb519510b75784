"""Chunked labelling: descriptors -> reduced space -> labels, one task per chunk of frames.

A task computes (or reads from the cache) the float32 descriptors of its frames, projects
them and labels them, and returns only the int16 labels: memory is one chunk per worker
whatever the trajectory length, and the descriptors are never computed twice.  The cache
stores each chunk's descriptors under a key made of the descriptor settings and a content
hash of the chunk's positions and cell, written atomically (temporary name + rename).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
from atomtwin.toolkit.environments.descriptors import _block, _hash_array

NOISE = -1


def user_cache_dir() -> Path:
    """``$ATOMTWIN_CACHE`` or ``$XDG_CACHE_HOME/atomtwin`` (``~/.cache/atomtwin``) + ``/descriptors``."""
    root = os.environ.get("ATOMTWIN_CACHE")
    if not root:
        root = os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "atomtwin"
        )
    return Path(root) / "descriptors"


def resolve_cache(cache) -> str | None:
    """Cache folder from ``None``/``False`` (off), ``True`` (user cache dir) or a path."""
    if cache is None or cache is False:
        return None
    path = user_cache_dir() if cache is True else Path(cache)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def chunk_key(settings: str, positions: np.ndarray, cells: np.ndarray | None) -> str:
    """Cache key of one chunk: descriptor settings + content of positions (Å) and cell (Å)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(settings.encode())
    h.update(_hash_array(np.asarray(positions, dtype=np.float64)).encode())
    if cells is not None:
        h.update(_hash_array(np.asarray(cells, dtype=np.float64)).encode())
    return h.hexdigest()


def cache_load(root: str | None, key: str) -> np.ndarray | None:
    if root is None:
        return None
    path = Path(root) / f"{key}.npy"
    if not path.is_file():
        return None
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):  # a foreign or damaged file: recompute (and overwrite)
        return None


def cache_store(root: str | None, key: str, block: np.ndarray) -> None:
    if root is None:
        return
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(block, dtype=np.float32))
        os.replace(tmp, Path(root) / f"{key}.npy")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def chunk_descriptors(positions, cells, spec: dict, cache: str | None) -> np.ndarray:
    """Float32 descriptors (frames, env, feature) of one chunk, from the cache when there."""
    positions = np.asarray(positions)
    cells = None if cells is None else np.asarray(cells)
    key = chunk_key(spec["settings"], positions, cells) if cache else ""
    block = cache_load(cache, key) if cache else None
    if block is None:
        block = _block(
            positions,
            cells,
            spec["symbols"],
            spec["pbc"],
            spec["desc"],
            spec["centre_index"],
            spec["neighbours"],
            spec["centres"],
            spec["n_feat"],
        )
        cache_store(cache, key, block)
    return block


def sample_rows(positions, cells, offset: int, env_rows: np.ndarray, spec: dict, cache: str | None):
    """Float32 descriptors (n, n_features) of the centres ``env_rows`` of frame ``offset`` of a
    chunk: from the cached chunk when there, else computed for those centres only."""
    positions = np.asarray(positions)
    cells = None if cells is None else np.asarray(cells)
    if cache:
        block = cache_load(cache, chunk_key(spec["settings"], positions, cells))
        if block is not None:
            return np.asarray(block[offset, env_rows])
    frame_cells = None if cells is None else cells[offset : offset + 1]
    return _block(
        positions[offset : offset + 1],
        frame_cells,
        spec["symbols"],
        spec["pbc"],
        spec["desc"],
        spec["centre_index"][env_rows],
        spec["neighbours"],
        spec["centres"],
        spec["n_feat"],
    )[0]


class Projector:
    """Standardise -> append the weighted one-hot species -> PCA of a fitted pipeline as one
    float32 GEMM: ``Y = X @ W + b[species]``.  Needs only the reducer, not the clusters, so
    the workers can project every environment while the clusters are being fitted.

    :meth:`raw` (``X @ W``, float32, what crosses processes: 4 bytes x ``n_components`` per
    environment) and :meth:`finish` (``+ b``, float64) together equal the pipeline's
    projection; ``None`` from :meth:`of` when the reducer is not a plain PCA.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, species: np.ndarray):
        self.W, self.b, self.species = W, b, species

    @classmethod
    def of(cls, clf) -> Projector | None:
        if clf.reducer_ is None or clf.reducer != "pca" or getattr(clf.reducer_, "whiten", False):
            return None
        comp = clf.reducer_.components_  # (nc, n_aug)
        nf = clf.mean_.size
        W = (comp[:, :nf].T / clf.scale_[:, None]).astype(np.float32)
        base = -(clf.mean_ / clf.scale_) @ comp[:, :nf].T - clf.reducer_.mean_ @ comp.T
        if len(clf.species_) > 1:
            w = 10.0 * np.sqrt(nf + 0.0)
            b = np.stack([base + w * comp[:, nf + i] for i in range(len(clf.species_))])
        else:
            b = base[None]
        return cls(W, b, np.asarray(clf.species_))

    def raw(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32) @ self.W

    def finish(self, Y0: np.ndarray, centre_species: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.species, centre_species) if len(self.species) > 1 else 0
        return Y0.astype(np.float64) + self.b[idx]


class Labeller:
    """The fitted part a worker needs (no fit sample): projection and cluster assignment.

    ``Y = X @ W + b[species]`` equals standardise -> append the weighted one-hot species ->
    PCA of the fitted pipeline (one float32 GEMM instead of three passes over the features).
    """

    def __init__(self, clf):
        self.species = np.asarray(clf.species_)
        self.relabel = clf.relabel_
        self.method, self.noise = clf.method, clf.noise
        self.centres = clf.centres_
        self.clf = None
        self.projector = Projector.of(clf)
        if self.projector is None:
            self.clf = clf  # kpca / no reducer: the pipeline's own path
        if clf.method == "hdbscan":
            from atomtwin.toolkit.environments.assign import FastHDBSCANAssigner

            self.model = FastHDBSCANAssigner(clf.model_)
        else:
            self.model = clf.model_
            self.merge = getattr(clf, "merge_", None)

    def reduce(self, X: np.ndarray, centre_species: np.ndarray) -> np.ndarray:
        if self.projector is None:
            return self.clf._reduce(self.clf._augment(np.asarray(X, float), centre_species))
        return self.projector.finish(self.projector.raw(X), centre_species)

    def labels(self, X: np.ndarray, centre_species: np.ndarray) -> np.ndarray:
        """Labels (n,) int16 of feature rows (n, n_features)."""
        return self.assign(self.reduce(X, np.asarray(centre_species).astype(str)))

    def assign(self, Y: np.ndarray) -> np.ndarray:
        """Labels (n,) int16 of reduced rows (n, n_components)."""
        if self.method == "hdbscan":
            raw = self.model.predict(Y)
        elif self.method == "gmm":
            raw = self.merge[self.model.predict(Y)]
        else:
            raw = self.model.predict(Y)
        raw = np.asarray(raw, dtype=np.int64)
        size = max([*self.relabel, int(raw.max(initial=-1))]) + 2
        lut = np.full(size, NOISE, dtype=np.int16)  # raw label + 1 -> canonical label
        for k, v in self.relabel.items():
            lut[k + 1] = v
        lab = lut[raw + 1]
        if self.noise == "nearest" and len(self.centres) and np.any(lab == NOISE):
            m = lab == NOISE
            d = ((Y[m, None, :] - self.centres[None]) ** 2).sum(-1)
            lab[m] = np.argmin(d, axis=1)
        return lab


def label_chunk(positions, cells, spec: dict, cache: str | None, labeller: Labeller) -> np.ndarray:
    """Labels (frames, env) int16 of one chunk of frames."""
    block = chunk_descriptors(positions, cells, spec, cache)
    nf, ne, nfeat = block.shape
    lab = labeller.labels(
        np.asarray(block).reshape(nf * ne, nfeat), np.tile(spec["centre_species"], nf)
    )
    return lab.reshape(nf, ne)


def project_chunk(positions, cells, spec: dict, cache: str | None, projector: Projector):
    """Raw projections ``X @ W`` (frames x env, n_components) float32 of one chunk: the
    descriptors are reduced where they are computed; only these rows leave the worker."""
    block = chunk_descriptors(positions, cells, spec, cache)
    nf, ne, nfeat = block.shape
    return projector.raw(np.asarray(block).reshape(nf * ne, nfeat))


def assign_rows(Y0: np.ndarray, centre_species: np.ndarray, labeller: Labeller) -> np.ndarray:
    """Labels (frames, env) int16 of the raw projections of one chunk (:func:`project_chunk`)."""
    ne = centre_species.size
    nf = Y0.shape[0] // max(ne, 1)
    Y = labeller.projector.finish(Y0, np.tile(centre_species, nf))
    return labeller.assign(Y).reshape(nf, ne)


def gather(client, futures: list, desc: str) -> list:
    """Results of distributed ``futures`` in order, with a progress bar over them; Ctrl-C (or
    any error) cancels every future still queued or running, then re-raises."""
    from atomtwin.toolkit import progress as P
    from distributed import as_completed

    index = {f.key: i for i, f in enumerate(futures)}
    out: list = [None] * len(futures)
    try:
        for fut in P.progress(as_completed(futures), total=len(futures), desc=desc, unit="chunk"):
            out[index[fut.key]] = fut.result()
    except BaseException:
        client.cancel(futures)
        raise
    return out


def run_tasks(tasks: list, desc: str) -> list:
    """Compute dask delayed ``tasks`` on the current scheduler with a per-chunk progress bar
    (when progress is on); Ctrl-C cancels what is queued and re-raises (cache files are
    written by rename, so none is left half-written)."""
    import dask
    from atomtwin.toolkit import progress as P

    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        return gather(client, client.compute(tasks), desc)
    if not P.enabled():
        return list(dask.compute(*tasks))
    from dask.callbacks import Callback

    class _Bar(Callback):
        def _start(self, dsk):
            self.bar = iter(
                P.progress(range(len(tasks)), total=len(tasks), desc=desc, unit="chunk")
            )
            self.keys = {t.key for t in tasks}

        def _posttask(self, key, result, dsk, state, worker_id):
            if key in self.keys:
                next(self.bar, None)

        def _finish(self, dsk, state, errored):
            for _ in self.bar:
                pass

    with _Bar():
        return list(dask.compute(*tasks))
