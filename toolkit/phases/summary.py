"""One vector of order parameters per run, and the analysis of a two-phase coexistence run.

:func:`summarize` reduces a trajectory to scalars averaged over its last frames (the
feature vector the classification works on); :func:`coexistence` measures the state
point a solid–liquid coexistence run settles on (T, P and the liquid density).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.phases import order as O
from atomtwin.toolkit.phases import order_thermo as D

#: order parameters :func:`summarize` returns, with units
FEATURES = {
    "temperature": "K",
    "pressure": "GPa",
    "number_density": "1/Å^3",
    "mass_density": "g/cm^3",
    "q4_bar": "1",
    "q6_bar": "1",
    "solid_fraction": "1",
    "coordination": "1",
    "diffusion": "Å^2/ps",
    "lindemann": "1",
    "largest_cluster_fraction": "1",
    "n_clusters": "1",
}


def summarize(
    ds: xr.Dataset,
    *,
    window: float = 0.5,
    cutoff: float | None = None,
    solid_threshold: float = 0.3,
    segregation: dict | None = None,
    environments=None,
    max_frames: int = 20,
) -> xr.Dataset:
    """Order parameters of one run, averaged over its last ``window`` fraction of frames.

    Parameters
    ----------
    ds
        Trajectory (schema Dataset).
    window
        Fraction of the run, at its end, to average over (0 < window <= 1).
    cutoff
        Neighbour cutoff for Steinhardt/coordination (Å; default first minimum of g(r)).
    solid_threshold
        q̄6 above which an atom counts as solid-like.
    segregation
        ``{"species": "C", "cutoff": 1.9, "min_size": 2}`` to track clusters of a species.
    environments
        A fitted :class:`atomtwin.toolkit.environments.EnvironmentClassifier` or the path of one
        saved with its ``save`` (a spec's ``summary: {environments: clf.pkl}``), or anything whose
        ``predict(ds)`` gives ``(frame, atom)`` cluster labels): adds the mean fraction of
        atoms in each environment cluster k as ``env_fraction_<k>`` (noise: ``_noise``),
        from :func:`atomtwin.toolkit.environments.phase_fractions`.
    max_frames
        Structural order parameters use at most this many frames of the window (evenly
        strided); dynamics (diffusion, Lindemann) use all of them.

    Returns
    -------
    Dataset of scalars (see :data:`FEATURES`); those the trajectory cannot give (no
    velocities, no stress...) are NaN.  ``attrs['n_frames']`` frames were averaged.
    """
    S.validate(ds)
    if not 0 < window <= 1:
        raise InputError(f"window must be in (0, 1], got {window}.")
    nf = ds.sizes[S.FRAME]
    start = min(nf - 1, int(np.floor(nf * (1 - window))))
    tail = ds.isel({S.FRAME: slice(start, None)})
    stride = max(1, tail.sizes[S.FRAME] // max_frames)
    few = tail.isel({S.FRAME: slice(None, None, stride)})
    out = dict.fromkeys(FEATURES, np.nan)
    if S.VELOCITIES in tail:
        out["temperature"] = float(D.temperature(tail).mean())
    if S.STRESS in tail and S.CELL in tail:
        out["pressure"] = float(D.pressure(tail).mean())
    if S.CELL in tail:
        dens = O.density(tail)
        out["number_density"] = float(dens.number_density.mean())
        out["mass_density"] = float(dens.mass_density.mean())
    rc = O._auto_cutoff(few, cutoff)
    st = O.steinhardt(few, cutoff=rc)
    out["q4_bar"] = float(st.q4_bar.mean())
    out["q6_bar"] = float(st.q6_bar.mean())
    out["solid_fraction"] = float(O.solid_fraction(st.q6_bar, solid_threshold).mean())
    out["coordination"] = float(O.coordination(few, cutoff=rc).mean())
    if S.TIME in tail.coords and tail.sizes[S.FRAME] >= 3:
        out["diffusion"] = D.self_diffusion(tail, fit_from=0.3)  # a discriminator: fixed window, no rule
        out["lindemann"] = float(D.lindemann(tail).mean())
    if segregation:
        cl = D.species_clusters(few, **segregation)
        out["largest_cluster_fraction"] = float(cl.largest_fraction.mean())
        out["n_clusters"] = float(cl.n_clusters.mean())
    res = xr.Dataset({k: ((), v, {"units": FEATURES[k]}) for k, v in out.items()})
    if environments is not None:
        from atomtwin.toolkit.environments import EnvironmentClassifier, phase_fractions

        if isinstance(environments, (str, bytes)) or hasattr(environments, "__fspath__"):
            environments = EnvironmentClassifier.load(environments)  # a spec names a saved pipeline
        frac = phase_fractions(environments.predict(few)).mean(S.FRAME)
        for k, v in zip(frac["cluster"].values, frac.values, strict=True):
            name = "env_fraction_noise" if int(k) < 0 else f"env_fraction_{int(k)}"
            res[name] = ((), float(v), {"units": "1"})
    res.attrs.update(n_frames=int(tail.sizes[S.FRAME]), cutoff=rc, solid_threshold=solid_threshold)
    return res


def coexistence(
    ds: xr.Dataset,
    *,
    axis: int = 2,
    n_slabs: int = 12,
    window: float = 0.5,
    cutoff: float | None = None,
    solid_threshold: float = 0.3,
    max_frames: int = 40,
) -> xr.Dataset:
    """State point of a solid–liquid coexistence run (slab geometry, interfaces normal to ``axis``).

    In a microcanonical (NVE) or NPH coexistence run the moving interfaces exchange
    latent heat until the system sits on the melting line; the run's mean T and P over
    its last ``window`` fraction are then a melting point.  The phase densities come from
    slabs (``n_slabs`` along ``axis``) classified by their mean q̄6 against
    ``solid_threshold``: atoms over volume of the interior slabs of each phase (a slab
    whose two neighbours are of its own phase), so that the interfaces are left out.  The pressure normal to the interfaces, −σ_aa, is the
    one both phases share at mechanical equilibrium (``pressure_normal``); the mean
    −tr(σ)/3 also carries the solid's lateral stress.

    Returns
    -------
    Dataset of scalars: ``temperature`` (K), ``pressure`` and ``pressure_normal`` (GPa, with
    ``_sem`` block-averaged standard errors), ``liquid_density`` and ``solid_density``
    (1/Å^3), ``solid_fraction``
    start/end (``solid_fraction_first``, ``solid_fraction_last``) and the per-frame
    ``solid_fraction_t`` (frame) — a run where one phase vanished is no coexistence
    (``coexisting`` = False).
    """
    S.validate(ds, require=(S.CELL, S.VELOCITIES))
    nf = ds.sizes[S.FRAME]
    start = min(nf - 1, int(np.floor(nf * (1 - window))))
    tail = ds.isel({S.FRAME: slice(start, None)})
    stride = max(1, ds.sizes[S.FRAME] // max_frames)
    few = ds.isel({S.FRAME: slice(None, None, stride)})
    st = O.steinhardt(few, cutoff=O._auto_cutoff(few, cutoff))
    solid = st.q6_bar.values > solid_threshold
    frac = solid.mean(axis=1)
    n_s = n_l = v_s = v_l = 0.0
    for f in range(few.sizes[S.FRAME]):
        if f < few.sizes[S.FRAME] * (1 - window):
            continue
        pos = np.asarray(few[S.POSITIONS].isel({S.FRAME: f}).values)
        cell = np.asarray(few[S.CELL].isel({S.FRAME: f}).values)
        s = (pos @ np.linalg.inv(cell))[:, axis] % 1.0
        b = np.minimum((s * n_slabs).astype(int), n_slabs - 1)
        vol = abs(np.linalg.det(cell)) / n_slabs
        n_in = np.bincount(b, minlength=n_slabs)
        qbar = np.bincount(b, weights=st.q6_bar.values[f], minlength=n_slabs) / np.maximum(n_in, 1)
        # interior slabs: this one and both neighbours (periodic) on the same side of the
        # threshold, so that the interfaces are left out; whole slabs summed, so that the
        # crystal's layering averages out
        side = qbar > solid_threshold
        interior = (side == np.roll(side, 1)) & (side == np.roll(side, -1))
        n_s += n_in[interior & side].sum()
        v_s += vol * (interior & side).sum()
        n_l += n_in[interior & ~side].sum()
        v_l += vol * (interior & ~side).sum()
    rho_s = float(n_s / v_s) if v_s > 0 else np.nan
    rho_l = float(n_l / v_l) if v_l > 0 else np.nan
    t = D.temperature(tail).values
    p = D.pressure(tail).values if S.STRESS in tail else np.full(1, np.nan)
    pn = np.full(1, np.nan)
    if S.STRESS in tail and int(tail.attrs.get("stress_includes_kinetic", 0)):
        from atomtwin.toolkit import units as U

        pn = -np.asarray(tail[S.STRESS].values)[:, axis, axis] * U.EV_A3_TO_GPA
    half = frac[frac.size // 2:]
    res = xr.Dataset(
        {
            "temperature": ((), float(t.mean()), {"units": "K"}),
            "temperature_sem": ((), _sem(t), {"units": "K"}),
            "pressure": ((), float(p.mean()), {"units": "GPa"}),
            "pressure_sem": ((), _sem(p), {"units": "GPa"}),
            "pressure_normal": ((), float(pn.mean()), {"units": "GPa"}),
            "pressure_normal_sem": ((), _sem(pn), {"units": "GPa"}),
            "liquid_density": ((), rho_l, {"units": "1/Å^3"}),
            "solid_density": ((), rho_s, {"units": "1/Å^3"}),
            "solid_fraction_first": ((), float(frac[0]), {"units": "1"}),
            "solid_fraction_last": ((), float(frac[-1]), {"units": "1"}),
            "coexisting": ((), bool(half.min() > 0.1 and half.max() < 0.9)),
            "solid_fraction_t": (("sample",), frac, {"units": "1"}),
        }
    )
    return res


def _sem(x: np.ndarray, n_blocks: int = 5) -> float:
    """Standard error of a correlated series by block averaging."""
    x = np.asarray(x, dtype=float)
    if x.size < 2 * n_blocks:
        return float(x.std(ddof=1) / np.sqrt(max(1, x.size - 1))) if x.size > 1 else np.nan
    blocks = np.array_split(x, n_blocks)
    means = np.array([b.mean() for b in blocks])
    return float(means.std(ddof=1) / np.sqrt(n_blocks))
