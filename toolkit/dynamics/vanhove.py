"""Self part of the van Hove correlation function, G_s(r, t)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.dynamics.msd import (
    ATOM_CHUNK,
    com_drift,
    continuous_positions,
    species_indices,
)
from atomtwin.toolkit.errors import InputError


def van_hove_self(ds: xr.Dataset, species: str, lags, *, r_max: float = 10.0, n_bins: int = 100,
                  remove_drift: bool = True, unwrap="auto", atom_chunk: int = ATOM_CHUNK) -> xr.DataArray:
    """G_s(r, t) = < delta(r - |r_i(t0 + t) - r_i(t0)|) > / (4 pi r^2), all origins.

    Parameters
    ----------
    species
        Atoms whose displacements are histogrammed.
    lags
        Times t in ps (rounded to whole frames).
    r_max, n_bins
        Radial grid [0, r_max) Å.

    Returns
    -------
    DataArray (lag, r) in Å^-3, normalised so that sum(4 pi r^2 G_s dr) = 1 (minus the
    fraction displaced beyond ``r_max``, given per lag in coordinate ``beyond``).
    The radial probability density is ``4 pi r^2 G_s`` (Å^-1).
    """
    S.validate(ds)
    dt = S.uniform_timestep(ds)
    n = ds.sizes[S.FRAME]
    frames = np.rint(np.atleast_1d(np.asarray(lags, dtype=float)) / dt).astype(int)
    if np.any(frames < 1) or np.any(frames >= n):
        raise InputError(f"lags {list(np.atleast_1d(lags))} ps must lie in [{dt:g}, {(n - 1) * dt:g}] ps "
                         f"(1 to {n - 1} frames of {dt:g} ps).")
    idx = species_indices(ds, species)
    drift = com_drift(ds, unwrap, atom_chunk) if remove_drift else None
    edges = np.linspace(0.0, r_max, n_bins + 1)
    hist = np.zeros((frames.size, n_bins))
    total = np.zeros(frames.size)
    for a in range(0, idx.size, atom_chunk):
        pos = continuous_positions(ds.isel({S.ATOM: idx[a:a + atom_chunk]}), unwrap)
        if drift is not None:
            pos = pos - drift[:, None, :]
        for j, m in enumerate(frames):
            r = np.linalg.norm(pos[m:] - pos[:-m], axis=-1).ravel()
            hist[j] += np.histogram(r, bins=edges)[0]
            total[j] += r.size
    rc = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / total[:, None] / shell
    return xr.DataArray(
        g, dims=("lag", "r"),
        coords={"lag": ("lag", frames * dt, {"units": "ps"}), "r": ("r", rc, {"units": "Å"}),
                "beyond": ("lag", 1.0 - hist.sum(axis=1) / total)},
        name="van_hove_self",
        attrs={"units": "Å^-3", "species": species, "long_name": "self van Hove function G_s(r, t)"},
    )
