"""Collective charge MSD, ionic conductivity (Nernst–Einstein and collective) and the
Haven ratio.

    sigma     = lim 1/(2 d V kB T) d/dt < |sum_i q_i (r_i(t0+t) - r_i(t0))|^2 >
    sigma_NE  = 1/(V kB T) sum_s N_s q_s^2 D_s
    H         = sigma_NE / sigma          (Haven ratio; 1 for uncorrelated ions)

Units: q in e, r in Å, V in Å^3, kB T in eV, t in ps -> e^2/(eV Å ps), converted to S/cm
with :data:`atomtwin.toolkit.units.E2_EV_A_PS_TO_S_CM`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import geometry as G
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U
from atomtwin.toolkit.correlation import msd_sums
from atomtwin.toolkit.dynamics.diffusion import fit_diffusion
from atomtwin.toolkit.dynamics.msd import (
    auto_atom_chunk,
    load_positions,
    parse_axes,
    species_indices,
)
from atomtwin.toolkit.errors import InputError


def _volume(ds: xr.Dataset) -> float:
    cell = G.cell_array(ds)
    return float(np.abs(np.linalg.det(cell)).mean())


def charge_msd(ds: xr.Dataset, charges: dict[str, float], *, axes: str = "xyz", remove_drift: bool = True,
               unwrap="auto", atom_chunk: int | None = None) -> xr.DataArray:
    """MSD of the charge displacement sum_i q_i r_i over all time origins, in e^2 Å^2.

    Parameters
    ----------
    charges
        Formal (or effective) charge in e per species, e.g. ``{"Li": 1, "Cl": -1}``; species
        not listed carry no charge.  Every listed species must be present.
    remove_drift
        Subtract the mass-weighted centre-of-mass path of all atoms (exactly, in the same
        pass over the atoms: the charge sum of x_i - d(t) is Q(t) - (sum_i q_i) d(t)).
    atom_chunk
        Atoms loaded at a time (``None``: :func:`atomtwin.toolkit.dynamics.msd.auto_atom_chunk`).

    Returns
    -------
    DataArray over ``lag`` (ps) with attrs for :func:`fit_diffusion` (``n_atoms`` = 1: a
    single collective walker).
    """
    S.validate(ds)
    dt = S.uniform_timestep(ds)
    comps = parse_axes(axes)
    n = ds.sizes[S.FRAME]
    n_atoms = ds.sizes[S.ATOM]
    q = np.zeros(n_atoms)
    for sp, qs in charges.items():
        q[species_indices(ds, sp)] = float(qs)
    # one pass: each atom chunk is loaded and unwrapped once; with drift removal the
    # charge sum of y_i = x_i - d(t) is Q(t) - (sum_i q_i) d(t), exactly
    load = np.arange(n_atoms) if remove_drift else np.flatnonzero(q != 0)
    mass = (np.asarray(ds[S.MASS].values, dtype=float) if S.MASS in ds.coords else np.ones(n_atoms))
    X = np.zeros((n, 3))
    com = np.zeros((n, 3))
    chunk = atom_chunk or auto_atom_chunk(n, load.size)
    for a in range(0, load.size, chunk):
        idx = load[a:a + chunk]
        pos = load_positions(ds, idx, unwrap)
        X += np.einsum("fai,a->fi", pos, q[idx])
        if remove_drift:
            com += np.einsum("fai,a->fi", pos, mass[idx])
    if remove_drift:
        com /= mass.sum()
        X -= q.sum() * (com - com[0])
    sums = msd_sums(X[:, None, comps])
    counts = n - np.arange(n)
    return xr.DataArray(
        sums / counts, dims=("lag",),
        coords={"lag": ("lag", np.arange(n) * dt, {"units": "ps"}), "n_pairs": ("lag", counts)},
        name="charge_msd",
        attrs={"units": "e^2*Å^2", "n_frames": n, "n_atoms": 1, "n_dims": len(comps), "timestep_ps": dt,
               "axes": axes, "charges": str(dict(charges)), "region": "",
               "long_name": "collective charge mean squared displacement"},
    )


def conductivity(ds: xr.Dataset, charges: dict[str, float], temperature: float, *, axes: str = "xyz",
                 start: float | None = None, stop: float | None = None, remove_drift: bool = True,
                 unwrap="auto") -> xr.Dataset:
    """Ionic conductivity from the collective charge MSD and by Nernst–Einstein; Haven ratio.

    Parameters
    ----------
    ds
        Periodic trajectory (the cell gives the volume, Å^3).
    charges
        Charge in e per mobile species.
    temperature
        K.
    start, stop
        Fit window in ps (default: the rule of :mod:`atomtwin.toolkit.dynamics.diffusion`); the
        same window is used for the self and the collective fits.

    Returns
    -------
    Dataset: ``sigma``, ``sigma_err`` (collective), ``sigma_ne``, ``sigma_ne_err``
    (Nernst–Einstein) in S/cm, ``haven_ratio`` and its error (first-order propagation),
    ``D`` and ``D_err`` per species (Å^2/ps).
    """
    from atomtwin.toolkit.dynamics.msd import msd

    if temperature <= 0:
        raise InputError(f"temperature must be positive (K), got {temperature}.")
    V = _volume(ds)
    kT = U.KB * float(temperature)
    parse_axes(axes)
    cm = charge_msd(ds, charges, axes=axes, remove_drift=remove_drift, unwrap=unwrap)
    fc = fit_diffusion(cm, start=start, stop=stop)
    t0, t1 = float(fc.fit_start), float(fc.fit_stop)
    # fit_diffusion returns slope / (2 d); sigma = slope / (2 d V kT)
    conv = U.E2_EV_A_PS_TO_S_CM / (V * kT)
    sigma, sigma_err = float(fc.D) * conv, float(fc.D_err) * conv
    names = list(charges)
    Ds, Derr = [], []
    ne, ne_var = 0.0, 0.0
    for sp in names:
        f = fit_diffusion(msd(ds, sp, axes=axes, remove_drift=remove_drift, unwrap=unwrap), start=t0, stop=t1)
        n_s = species_indices(ds, sp).size
        q2 = float(charges[sp]) ** 2
        Ds.append(float(f.D))
        Derr.append(float(f.D_err))
        ne += n_s * q2 * float(f.D)
        ne_var += (n_s * q2 * float(f.D_err)) ** 2
    s_ne, s_ne_err = ne * U.E2_EV_A_PS_TO_S_CM / (V * kT), np.sqrt(ne_var) * U.E2_EV_A_PS_TO_S_CM / (V * kT)
    H = s_ne / sigma
    H_err = abs(H) * np.sqrt((s_ne_err / s_ne) ** 2 + (sigma_err / sigma) ** 2)
    return xr.Dataset(
        {
            "sigma": ((), sigma, {"units": "S/cm", "long_name": "conductivity (collective)"}),
            "sigma_err": ((), sigma_err, {"units": "S/cm"}),
            "sigma_ne": ((), s_ne, {"units": "S/cm", "long_name": "Nernst–Einstein conductivity"}),
            "sigma_ne_err": ((), s_ne_err, {"units": "S/cm"}),
            "haven_ratio": ((), H, {"units": "1"}),
            "haven_ratio_err": ((), H_err, {"units": "1"}),
            "D": (("species",), Ds, {"units": "Å^2/ps"}),
            "D_err": (("species",), Derr, {"units": "Å^2/ps"}),
            "charge_msd": cm,
        },
        coords={"species": names},
        attrs={"temperature_K": float(temperature), "volume_A3": V, "fit_start": t0, "fit_stop": t1,
               "note": "Haven ratio error neglects the correlation of self and collective estimates"},
    )
