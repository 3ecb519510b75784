"""Projection of a trajectory on normal modes: mode coordinates, per-mode kinetic and
potential energy against time, and the spectral energy density.

With orthonormal mass-weighted eigenvectors e_m (from :func:`atomtwin.toolkit.phonons.gamma_modes`:
the Γ point of the simulation supercell) and displacements u_a(t) from the reference
positions (minimum image),

    Q_m = sum_a sqrt(m_a) e_{m,a} . u_a,      dQ_m/dt = sum_a sqrt(m_a) e_{m,a} . v_a,
    K_m = (dQ_m/dt)^2 / 2,                    V_m = omega_m^2 Q_m^2 / 2,

so that for a harmonic crystal the total energy is the sum over modes of K_m + V_m and in
canonical equilibrium <K_m> = <V_m> = k_B T / 2 (equipartition).  After a pulse the K_m + V_m
against time show where the energy flows.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit import units as U
from atomtwin.toolkit.correlation import autocorrelation
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.spectra.correlation import correlation_spectrum, iter_chunks

#: frames projected at once
CHUNK_FRAMES = 2048


def _check_match(ds: xr.Dataset, modes: xr.Dataset) -> None:
    n = ds.sizes[S.ATOM]
    if modes.sizes["atom"] != n:
        raise InputError(f"the modes are of {modes.sizes['atom']} atoms but the trajectory has {n}. "
                         "Fix: compute the modes for the simulation supercell (same atoms, same order).")
    a = np.asarray(ds[S.SPECIES].values).astype(str)
    b = np.asarray(modes["species"].values).astype(str)
    if not np.array_equal(a, b):
        i = int(np.flatnonzero(a != b)[0])
        raise InputError(f"atom {i} is {a[i]} in the trajectory but {b[i]} in the modes: the atom order differs. "
                         "Fix: build the trajectory from the phonopy supercell or reorder its atoms.")


def project_modes(ds: xr.Dataset, modes: xr.Dataset, *, reference: np.ndarray | None = None) -> xr.Dataset:
    """Mode coordinates, velocities and energies of a trajectory.

    Parameters
    ----------
    ds
        Trajectory of the supercell the modes belong to (same atoms in the same order), with
        ``positions`` and (preferably) ``velocities``; without velocities dQ/dt is the central
        difference of Q.
    modes
        From :func:`atomtwin.toolkit.phonons.gamma_modes` (or
        :func:`atomtwin.toolkit.phonons.core.modes_from_force_constants`).
    reference
        Equilibrium positions (n_atoms, 3) in Å; default ``modes.reference_positions``.

    Returns
    -------
    xarray.Dataset
        ``coordinate`` (frame, mode) in Å amu^1/2, ``velocity`` (frame, mode) in Å amu^1/2/ps,
        ``kinetic`` and ``potential`` (frame, mode) in eV, ``frequency`` (mode) THz.
    """
    S.validate(ds)
    _check_match(ds, modes)
    r0 = np.asarray(modes["reference_positions"].values if reference is None else reference, dtype=float)
    sqm = np.sqrt(np.asarray(modes["mass"].values, dtype=float))
    proj = np.asarray(modes["eigenvector"].values) * sqm[None, :, None]  # (mode, atom, xyz)
    nm = proj.shape[0]
    periodic = S.is_periodic(ds)
    pbc = S.pbc_of(ds)
    nf = ds.sizes[S.FRAME]
    q = np.empty((nf, nm))
    qdot = np.empty((nf, nm)) if S.VELOCITIES in ds else None
    for part in iter_chunks(nf, CHUNK_FRAMES):
        u = np.asarray(ds[S.POSITIONS].isel({S.FRAME: part}).values, dtype=float) - r0
        if periodic:
            from atomtwin.toolkit.geometry import minimum_image

            cell = np.asarray(ds[S.CELL].isel({S.FRAME: part}).values, dtype=float)
            u = minimum_image(u, cell, pbc)
        q[part] = np.einsum("fai,mai->fm", u, proj)
        if qdot is not None:
            v = np.asarray(ds[S.VELOCITIES].isel({S.FRAME: part}).values, dtype=float)
            qdot[part] = np.einsum("fai,mai->fm", v, proj)
    source = "velocities"
    if qdot is None and nf < 2:
        qdot = np.full_like(q, np.nan)
        source = "none (a single frame without velocities)"
    elif qdot is None:
        dt = S.uniform_timestep(ds)
        qdot = np.gradient(q, dt, axis=0)
        source = "central differences of positions"
    nu = np.asarray(modes["frequency"].values, dtype=float)
    omega2 = np.sign(nu) * (2 * np.pi * nu) ** 2
    kin = 0.5 * qdot**2 * U.AMU_A2_PS2_TO_EV
    pot = 0.5 * omega2[None, :] * q**2 * U.AMU_A2_PS2_TO_EV
    coords = {"mode": np.arange(nm), "frequency": ("mode", nu, {"units": "THz"})}
    if S.TIME in ds.coords:
        coords["time"] = (S.FRAME, np.asarray(ds[S.TIME].values), {"units": "ps"})
    return xr.Dataset(
        {"coordinate": ((S.FRAME, "mode"), q, {"units": "Å*amu^0.5"}),
         "velocity": ((S.FRAME, "mode"), qdot, {"units": "Å*amu^0.5/ps"}),
         "kinetic": ((S.FRAME, "mode"), kin, {"units": "eV"}),
         "potential": ((S.FRAME, "mode"), pot, {"units": "eV"})},
        coords=coords, attrs={"mode_velocities": source},
    )


def mode_energies(ds: xr.Dataset, modes: xr.Dataset, **kwargs) -> xr.Dataset:
    """Per-mode kinetic, potential and total energy against time (eV); see :func:`project_modes`."""
    p = project_modes(ds, modes, **kwargs)
    total = (p["kinetic"] + p["potential"]).assign_attrs(units="eV")
    return xr.Dataset({"kinetic": p["kinetic"], "potential": p["potential"], "total": total},
                      attrs=p.attrs)


def spectral_energy_density(projection: xr.Dataset, *, max_lag: float | None = None,
                            window: str = "hann", timestep: float | None = None) -> xr.DataArray:
    """Kinetic spectral energy density per mode, (mode, frequency) in eV/THz.

    The spectrum of each mode velocity's autocorrelation, one-sided, normalised so that
    ``int_0^inf SED_m(nu) d nu = <K_m>``: a harmonic mode shows one line at its frequency,
    anharmonic coupling shifts and broadens it.

    Parameters
    ----------
    projection
        From :func:`project_modes` (needs ``velocity`` and a ``time`` coordinate, or ``timestep``).
    max_lag
        Correlation length in ps (default a third of the run).
    window
        Lag window.
    timestep
        Frame spacing in ps when ``projection`` has no ``time``.
    """
    if timestep is None:
        if "time" not in projection.coords:
            raise InputError("the projection has no 'time'; pass timestep= (ps).")
        t = np.asarray(projection["time"].values)
        timestep = float(t[1] - t[0])
    qd = np.asarray(projection["velocity"].values, dtype=float)
    n = qd.shape[0]
    n_lags = max(2, n // 3) if max_lag is None else min(n, int(round(max_lag / timestep)) + 1)
    c = autocorrelation(qd, n_lags)
    nu, s = correlation_spectrum(c, timestep, window)
    sed = s * U.AMU_A2_PS2_TO_EV  # two-sided S of dQ/dt; one-sided K density = 2 * S / 2
    return xr.DataArray(sed.T, dims=("mode", "frequency"),
                        coords={"mode": projection["mode"].values,
                                "mode_frequency": ("mode", projection["frequency"].values, {"units": "THz"}),
                                "frequency": ("frequency", nu, {"units": "THz"})},
                        name="spectral_energy_density", attrs={"units": "eV/THz", "window": window})
