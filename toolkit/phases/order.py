"""Structural order parameters per frame and per atom.

All functions take a schema trajectory Dataset (Å, ps) and return xarray objects with
``units`` attributes:

- :func:`density` — number (1/Å^3) and mass (g/cm^3) density per frame;
- :func:`rdf` — radial distribution function g(r), optionally for one species pair;
- :func:`structure_factor` — S(q) from g(r) (Fourier transform with a Lorch window);
- :func:`coordination` — neighbours within a cutoff per atom and frame;
- :func:`steinhardt` — bond-orientational q_l per atom and frame, with the neighbour
  average of Lechner & Dellago, J. Chem. Phys. 129, 114707 (2008);
- :func:`first_minimum` — the first minimum of g(r), the usual neighbour cutoff.

Dynamical and chemical order parameters are in :mod:`atomtwin.toolkit.phases.order_thermo`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.neighbors import full_lists, neighbor_pairs, pair_arrays
from atomtwin.toolkit.neighbors.memory import memory_guard
from atomtwin.toolkit.progress import progress

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660  # 1 amu/Å^3 in g/cm^3 (CODATA 2018 amu)


def pairs(positions: np.ndarray, cell: np.ndarray | None, cutoff: float, pbc):
    """Each pair of distinct atoms closer than ``cutoff`` (Å) once: ``(i, j, d)`` with
    ``i < j`` and ``d = r_j - r_i`` (n_pairs, 3) Å, every image within the cutoff; an atom's
    own periodic images are not pairs (:func:`atomtwin.toolkit.neighbors.neighbor_pairs`)."""
    p = neighbor_pairs(positions, cell, pbc, cutoff)
    keep = p.i != p.j
    return p.i[keep], p.j[keep], p.vectors[keep]


def _frames(ds: xr.Dataset, desc: str = ""):
    """Yield (positions (n,3), cell (3,3) or None) for each frame, loading one at a time."""
    pbc = S.pbc_of(ds)
    has_cell = S.CELL in ds
    n = ds.sizes[S.FRAME]
    for f in progress(range(n), total=n, desc=desc):
        pos = np.asarray(ds[S.POSITIONS].isel({S.FRAME: f}).values, dtype=float)
        cell = np.asarray(ds[S.CELL].isel({S.FRAME: f}).values, dtype=float) if has_cell else None
        yield pos, cell, pbc


def _volume(ds: xr.Dataset) -> np.ndarray:
    if S.CELL not in ds:
        raise S.SchemaError(
            "density needs a periodic cell but the trajectory has none. Fix: read a file that "
            "stores the cell or assign ds['cell']."
        )
    return np.abs(np.linalg.det(np.asarray(ds[S.CELL].values, dtype=float)))


def density(ds: xr.Dataset) -> xr.Dataset:
    """Number and mass density per frame.

    Returns
    -------
    Dataset
        ``number_density`` (frame,) in 1/Å^3 and ``mass_density`` (frame,) in g/cm^3.
    """
    S.validate(ds, require=(S.CELL,))
    vol = _volume(ds)
    n = ds.sizes[S.ATOM]
    mass = float(np.sum(ds[S.MASS].values)) if S.MASS in ds.coords else np.nan
    return xr.Dataset(
        {
            "number_density": ((S.FRAME,), n / vol, {"units": "1/Å^3"}),
            "mass_density": ((S.FRAME,), mass / vol * AMU_PER_A3_TO_G_PER_CM3, {"units": "g/cm^3"}),
        }
    )


def rdf(
    ds: xr.Dataset,
    r_max: float | None = None,
    n_bins: int = 200,
    species: tuple[str, str] | None = None,
) -> xr.DataArray:
    """Radial distribution function averaged over frames.

    Parameters
    ----------
    ds
        Periodic trajectory.
    r_max
        Largest distance in Å (default: just under half the shortest cell length).
    n_bins
        Histogram bins.
    species
        ``("A", "B")`` for the partial g_AB(r); default all atoms.

    Returns
    -------
    DataArray
        g(r) on dim ``r`` (bin centres, Å); dimensionless, tends to 1 in a fluid.
    """
    S.validate(ds, require=(S.CELL,))
    # the narrowest cell of all frames bounds r_max (an NPT box shrinks and grows)
    cells = np.asarray(ds[S.CELL].values, dtype=float).reshape(-1, 3, 3)
    half = 0.5 * min(
        np.min(
            np.abs(np.linalg.det(c)) / np.linalg.norm(np.cross(c[[1, 2, 0]], c[[2, 0, 1]]), axis=1)
        )
        for c in cells
    )
    r_max = float(r_max) if r_max is not None else 0.999 * half
    if r_max >= half:
        raise InputError(f"r_max={r_max:.3g} Å must be below half the cell width ({half:.3g} Å).")
    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    if species is None:
        in_a = in_b = np.ones(sp.size, bool)
    else:
        a, b = species
        for s in (a, b):
            if s not in set(sp):
                raise InputError(
                    f"species '{s}' is not in the trajectory (it has {sorted(set(sp))})."
                )
        in_a, in_b = sp == a, sp == b
    edges = np.linspace(0.0, r_max, n_bins + 1)
    hist = np.zeros(n_bins, dtype=np.int64 if species is None else float)
    norm = 0.0
    inv_dr = n_bins / r_max
    na, nb = int(in_a.sum()), int(in_b.sum())
    n_pairs_ideal = na * nb - int(np.sum(in_a & in_b))  # ordered pairs i != j
    # r_max is below half the narrowest cell width, so no atom meets its own image: every
    # pair of the half list is two distinct atoms, counted once per direction below
    with memory_guard("rdf", "pass a smaller r_max"):
        for pos, cell, pbc in _frames(ds, "rdf"):
            if species is None:
                (r,) = pair_arrays(pos, cell, pbc, r_max, "d")
                w = None
            else:
                i, j, r = pair_arrays(pos, cell, pbc, r_max, "ijd")
                w = (in_a[i] & in_b[j]).astype(float) + (in_b[i] & in_a[j]).astype(float)
            k = np.minimum((r * inv_dr).astype(np.int64), n_bins - 1)  # r < r_max
            h = np.bincount(k, weights=w, minlength=n_bins)
            hist += 2 * h if species is None else h
            norm += n_pairs_ideal / abs(np.linalg.det(cell))
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / (shell * norm)
    centres = 0.5 * (edges[1:] + edges[:-1])
    label = "all" if species is None else f"{species[0]}-{species[1]}"
    return xr.DataArray(
        g,
        dims=("r",),
        coords={"r": ("r", centres, {"units": "Å"})},
        name="g",
        attrs={"units": "1", "pair": label},
    )


def first_minimum(g: xr.DataArray) -> float:
    """Position (Å) of the first minimum of g(r) after its first peak."""
    r = g["r"].values
    y = np.convolve(g.values, np.ones(3) / 3, mode="same")
    peak = int(np.argmax(y))
    after = y[peak:]
    # first local minimum after the main peak
    for k in range(1, after.size - 1):
        if after[k] <= after[k - 1] and after[k] < after[k + 1] and after[k] < 1.0:
            return float(r[peak + k])
    raise InputError(
        "g(r) has no minimum after its first peak within r_max. Fix: pass cutoff= explicitly."
    )


def structure_factor(
    g: xr.DataArray, number_density: float, q: np.ndarray | None = None, lorch: bool = True
) -> xr.DataArray:
    """Static structure factor from g(r): S(q) = 1 + 4πρ ∫ r² [g(r) − 1] sin(qr)/(qr) W(r) dr.

    Parameters
    ----------
    g
        Output of :func:`rdf` (all atoms).
    number_density
        Atoms per Å^3 (e.g. ``density(ds).number_density.mean()``).
    q
        Wave numbers in 1/Å (default 0.2 ... 12 1/Å).
    lorch
        Multiply by the Lorch window W = sin(πr/R)/(πr/R), which damps the ripples
        from cutting the integral at R = r_max (a finite-box S(q) is meaningful only
        for q well above 2π/R).

    Returns
    -------
    DataArray
        S(q) on dim ``q`` (1/Å), dimensionless.
    """
    r = g["r"].values
    dr = r[1] - r[0]
    R = r[-1] + 0.5 * dr
    q = np.linspace(0.2, 12.0, 300) if q is None else np.asarray(q, dtype=float)
    w = np.sinc(r / R) if lorch else np.ones_like(r)  # np.sinc(x) = sin(πx)/(πx)
    kern = np.sinc(np.outer(q, r) / np.pi)  # sin(qr)/(qr)
    s = (
        1.0
        + 4.0
        * np.pi
        * float(number_density)
        * (kern * (r**2 * (g.values - 1.0) * w)).sum(axis=1)
        * dr
    )
    return xr.DataArray(
        s,
        dims=("q",),
        coords={"q": ("q", q, {"units": "1/Å"})},
        name="S",
        attrs={"units": "1", "window": "lorch" if lorch else "none"},
    )


def _auto_cutoff(ds: xr.Dataset, cutoff: float | None) -> float:
    if cutoff is not None:
        if cutoff <= 0:
            raise InputError(f"cutoff must be positive, got {cutoff}.")
        return float(cutoff)
    return first_minimum(rdf(ds.isel({S.FRAME: slice(0, 3)}), n_bins=150))


def coordination(
    ds: xr.Dataset, cutoff: float | None = None, species: tuple[str, str] | None = None
) -> xr.DataArray:
    """Number of neighbours within ``cutoff`` (Å; default the first minimum of g(r)).

    With ``species=("A", "B")`` counts B neighbours around each A atom (other atoms get
    NaN).  Returns a DataArray (frame, atom), dimensionless, ``attrs['cutoff']`` in Å.
    """
    S.validate(ds)
    rc = _auto_cutoff(ds, cutoff)
    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    n = sp.size
    out = np.zeros((ds.sizes[S.FRAME], n))
    for f, (pos, cell, pbc) in enumerate(_frames(ds, "coordination")):
        i, j, _ = pairs(pos, cell, rc, pbc)
        if species is None:
            out[f] = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
        else:
            a, b = species
            out[f] = np.bincount(i, weights=(sp[j] == b), minlength=n) + np.bincount(
                j, weights=(sp[i] == b), minlength=n
            )
            out[f, sp != a] = np.nan
    return xr.DataArray(
        out, dims=(S.FRAME, S.ATOM), name="coordination", attrs={"units": "1", "cutoff": rc}
    )


def _ylm_factors(deg: int, vec: np.ndarray):
    """Yield ``(m, y)`` for m = 0..deg: y (n_bonds,) complex = Y_deg,m(r̂) of the bond vectors.

    Y_lm = N_lm P_l^m(cos θ) e^{imφ} with P_l^m(z) = (1 - z²)^{m/2} p_lm(z) (Condon-Shortley
    phase included) and (1 - z²)^{m/2} e^{imφ} = ((x + iy) / r)^m, so only polynomials in
    z = cos θ and powers of (x + iy)/r are needed: no trigonometric calls.  p_lm follows the
    upward recurrence in l from p_mm = (-1)^m (2m-1)!! (stable for the degrees used here).
    """
    from math import factorial

    r = np.sqrt(np.einsum("pk,pk->p", vec, vec))
    inv = 1.0 / np.where(r > 0, r, 1.0)
    z = vec[:, 2] * inv
    w = (vec[:, 0] + 1j * vec[:, 1]) * inv
    wm = np.ones_like(w)
    pmm = 1.0
    for m in range(deg + 1):
        if m:
            wm = wm * w
            pmm *= -(2 * m - 1)
        # p_lm for l = m..deg
        p_prev, p = np.zeros_like(z), np.full_like(z, pmm)
        for ell in range(m + 1, deg + 1):
            p_prev, p = p, ((2 * ell - 1) * z * p - (ell + m - 1) * p_prev) / (ell - m)
        norm = np.sqrt((2 * deg + 1) / (4 * np.pi) * factorial(deg - m) / factorial(deg + m))
        yield m, (norm * p) * wm


def _qlm(deg: int, vec: np.ndarray, centre: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """q_lm(i) for m = 0..deg (n_atoms, deg+1) complex: mean of Y_lm over the bonds of i."""
    n = counts.size
    q = np.zeros((n, deg + 1), dtype=complex)
    for m, y in _ylm_factors(deg, vec):
        q[:, m] = np.bincount(centre, weights=y.real, minlength=n) + 1j * np.bincount(
            centre, weights=y.imag, minlength=n
        )
    return q / np.maximum(counts, 1)[:, None]


def _ql_from_qlm(deg: int, q: np.ndarray) -> np.ndarray:
    # q_{deg,-m} = (-1)^m conj(q_lm): sum over m = -deg..deg from m >= 0 only
    p = np.abs(q[:, 0]) ** 2 + 2.0 * np.sum(np.abs(q[:, 1:]) ** 2, axis=1)
    return np.sqrt(4.0 * np.pi / (2 * deg + 1) * p)


def steinhardt(
    ds: xr.Dataset, degrees=(4, 6), cutoff: float | None = None, n_neighbours: int | None = None
) -> xr.Dataset:
    """Steinhardt bond-orientational order per atom and frame.

    q_l(i) = sqrt(4π/(2l+1) Σ_m |q_lm(i)|²), q_lm(i) = (1/N_b(i)) Σ_j Y_lm(r̂_ij).
    The averaged q̄_l (Lechner & Dellago 2008) uses q̄_lm(i) = (1/(N_b(i)+1)) Σ_{k ∈ {i} ∪ N(i)} q_lm(k),
    which sharpens the solid/liquid separation.

    Parameters
    ----------
    degrees
        The deg values (e.g. (4, 6)).
    cutoff
        Neighbour cutoff in Å (default: first minimum of g(r)).
    n_neighbours
        Use the N nearest neighbours instead of a cutoff (12 for fcc/hcp, 8 for bcc);
        the cutoff then only bounds the search (default 1.6 x the first minimum).

    Returns
    -------
    Dataset
        ``q{deg}`` and ``q{deg}_bar`` (frame, atom), dimensionless; ``attrs['cutoff']`` (Å).
        Perfect lattices (12 nearest neighbours): fcc q4 = 0.1909, q6 = 0.5745;
        hcp q4 = 0.0972, q6 = 0.4848; a liquid gives q̄6 ≈ 0.1–0.2.
    """
    S.validate(ds)
    degrees = tuple(int(x) for x in np.atleast_1d(degrees))
    if any(x < 0 for x in degrees):
        raise InputError(f"degrees must be non-negative integers, got {degrees}.")
    rc = _auto_cutoff(ds, cutoff)
    search = rc if n_neighbours is None else (1.6 * rc if cutoff is None else rc)
    n = ds.sizes[S.ATOM]
    nf = ds.sizes[S.FRAME]
    res = {f"q{deg}": np.zeros((nf, n)) for deg in degrees}
    res.update({f"q{deg}_bar": np.zeros((nf, n)) for deg in degrees})
    with memory_guard("steinhardt", "pass a smaller cutoff or n_neighbours"):
        for f, (pos, cell, pbc) in enumerate(_frames(ds, "steinhardt")):
            i, j, d = pair_arrays(pos, cell, pbc, search, "ijD")
            i, j = i.astype(np.intp), j.astype(np.intp)
            keep = i != j  # an atom's own periodic images are not bonds
            if not keep.all():
                i, j, d = i[keep], j[keep], d[keep]
            if n_neighbours is not None:
                c, nb, v, counts = _nearest(*full_lists(i, j, d, n), n_neighbours)
            else:  # both directions, unsorted: the sums below are bincounts
                c, nb, v = np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([d, -d])
                counts = np.bincount(c, minlength=n)
            del i, j, d
            for deg in degrees:
                q = _qlm(deg, v, c, counts)
                res[f"q{deg}"][f] = _ql_from_qlm(deg, q)
                qsum = q.copy()
                for m in range(deg + 1):
                    qsum[:, m] += np.bincount(
                        c, weights=q[nb, m].real, minlength=n
                    ) + 1j * np.bincount(c, weights=q[nb, m].imag, minlength=n)
                res[f"q{deg}_bar"][f] = _ql_from_qlm(deg, qsum / (counts + 1)[:, None])
    return xr.Dataset(
        {k: ((S.FRAME, S.ATOM), v, {"units": "1"}) for k, v in res.items()}, attrs={"cutoff": rc}
    )


def _nearest(c, nb, v, counts, k):
    r = np.linalg.norm(v, axis=1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if np.any(counts < k):
        raise InputError(
            f"some atoms have fewer than {k} neighbours within the search radius. "
            "Fix: pass a larger cutoff."
        )
    # rank within each centre's block
    order = np.lexsort((r, c))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - np.repeat(starts, counts)
    keep = rank < k
    return c[keep], nb[keep], v[keep], np.full(counts.size, k)


def solid_fraction(q6_bar: xr.DataArray, threshold: float = 0.3) -> xr.DataArray:
    """Fraction of atoms per frame with q̄6 above ``threshold`` (solid-like).

    The default 0.3 lies between the liquid (q̄6 ≲ 0.2) and the thermally disordered
    fcc/hcp/bcc crystals (q̄6 ≳ 0.35) of simple dense systems; check it against your
    own q̄6 histogram.
    """
    return (q6_bar > threshold).mean(S.ATOM).assign_attrs(units="1", threshold=threshold)
