"""Run TD-SCHA and classical MD trajectories under a pulse, with output as xarray."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.engines.tdscha.dynamics import (
    Modes,
    TDSCHAState,
    _frame,
    check_timestep,
    cholesky_of,
    frames_to_dataset,
    tdscha_energy,
    verlet_step,
)
from atomtwin.engines.tdscha.providers import System, TDSCHAError, evaluate_checked
from atomtwin.engines.tdscha.pulses import external_force
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.progress import progress


def write_result(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a result Dataset to netCDF (``*.nc``) or zarr (``*.zarr``) atomically.

    An existing result at ``path`` (a file, or a zarr store) is replaced; any other folder
    there is refused, never deleted.
    """
    path = Path(path)
    if path.suffix not in (".nc", ".zarr"):
        raise InputError(f"output '{path}' must be named *.nc (netCDF) or *.zarr.")
    if path.is_dir() and not any((path / m).exists() for m in (".zgroup", ".zmetadata", "zarr.json")):
        raise InputError(f"output '{path}' is a folder that is not a zarr store; it is left as it is. "
                         "Fix: give another output name, or move the folder away.")
    if not path.parent.is_dir():
        raise InputError(f"the folder of output '{path}' does not exist. Fix: create '{path.parent}' first.")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    ds = ds.copy()
    ds.attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in ds.attrs.items() if v is not None}
    try:
        if path.suffix == ".zarr":
            ds.to_zarr(tmp, mode="w")
        else:
            ds.to_netcdf(tmp, engine="h5netcdf")
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise
    return path


def run_tdscha(system: System, state: TDSCHAState, averager, dt: float, n_steps: int, *, pulse=None,
               screening: float | None = None, output_every: int = 1, modes: Modes | str | None = "initial",
               covariances: str = "full", max_omega_dt: float = 1.0, check_every: int = 10,
               output: str | os.PathLike | None = None, attrs: dict | None = None) -> xr.Dataset:
    """Integrate TD-SCHA with velocity Verlet and return the trajectory as a Dataset.

    Parameters
    ----------
    system
        The :class:`System`.
    state
        Initial :class:`TDSCHAState` (e.g. ``scha(...).state()``).
    averager
        :class:`~atomtwin.engines.tdscha.averages.ExactAverager` or ``EnsembleAverager``.
    dt
        Time step, ps.
    n_steps
        Number of steps.
    pulse
        Callable t (ps) -> field (3,) V/Å, or None.
    screening
        Electronic dielectric constant dividing the field (None = unscreened).
    output_every
        Store every k-th step.
    modes
        Reference modes for energies/occupations: ``"initial"`` (eigenmodes of the initial
        average curvature about the initial centroid), a :class:`Modes`, or None.
    covariances
        Store ``"full"`` A, B, C (frame, dof, dof2), their ``"diagonal"`` or ``"none"``.
    max_omega_dt
        Largest allowed omega_max * dt (checked every ``check_every`` steps).
    output
        Path written at the end, and on failure with the frames up to the failing step.

    Returns
    -------
    xarray.Dataset
        ``centroid`` (frame, dof) Å, ``centroid_velocity`` Å/ps, mass-scaled covariances
        ``A`` (eV ps²), ``B`` (eV), ``C`` (eV ps), ``position_variance`` (frame, dof) Å²,
        ``energy`` (conserved TD-SCHA energy, eV), ``potential_energy``, ``work`` (integral of
        F.P dt, eV), ``field`` (frame, xyz) V/Å, ``mode_energy``/``mode_occupation``
        (frame, mode), ``stress`` when available; for crystals also ``positions``/``cell``.

    Raises
    ------
    TDSCHAError
        With ``.step`` and ``.partial`` (the Dataset so far, also written to ``output``).
    """
    if not dt > 0 or n_steps < 0 or output_every < 1:
        raise InputError(f"dt must be > 0 ps, n_steps >= 0 and output_every >= 1; got dt={dt}, "
                         f"n_steps={n_steps}, output_every={output_every}.")
    if covariances not in ("full", "diagonal", "none"):
        raise InputError(f"covariances must be 'full', 'diagonal' or 'none', got {covariances!r}.")
    fext = external_force(system, pulse, screening)
    field_of = (lambda t: np.zeros(3)) if pulse is None else (lambda t: np.asarray(pulse(t)) / (screening or 1.0))
    avg = averager(state.R, cholesky_of(state, 0), 0)
    check_timestep(avg.kappa, dt, 0, max_omega_dt)
    if isinstance(modes, str):
        modes = Modes.from_kappa(avg.kappa, state.R)
    meta = {"engine": "atomtwin.tdscha", "timestep_ps": dt * output_every, "dt_ps": dt, "n_steps": n_steps,
            "averages": "exact" if getattr(averager, "exact", False) else
            f"ensemble of {getattr(averager, 'n_configs', '?')} ({'correlated' if getattr(averager, 'correlated', True) else 'uncorrelated'})",
            "screening": screening or 1.0, **(attrs or {})}
    frames, work = [], 0.0
    power_prev = float(fext(state.t) @ state.P)

    def record(st, av):
        frames.append(_frame_of(system, st, av, work, field_of(st.t), modes, covariances))

    record(state, avg)
    step = 0
    try:
        for step in progress(range(1, n_steps + 1), total=n_steps, desc="TD-SCHA", unit="step"):
            state, avg = verlet_step(state, avg, averager, dt, fext, step)
            power = float(fext(state.t) @ state.P)
            work += 0.5 * dt * (power_prev + power)
            power_prev = power
            e = tdscha_energy(state, avg.energy)
            if not np.isfinite(e):
                raise TDSCHAError(f"the TD-SCHA energy became non-finite at step {step}. Fix: reduce dt.", step)
            if step % check_every == 0:
                check_timestep(avg.kappa, dt, step, max_omega_dt)
            if step % output_every == 0:
                record(state, avg)
    except TDSCHAError as err:
        meta["status"] = f"stopped at step {step}: {err}"
        err.partial = frames_to_dataset(frames, system, meta, modes, covariances)
        if output is not None:
            write_result(err.partial, output)
        raise
    meta["status"] = "completed"
    ds = frames_to_dataset(frames, system, meta, modes, covariances)
    if output is not None:
        write_result(ds, output)
    return ds


def _frame_of(system, state, avg, work, field, modes, covariances):
    return _frame(system, state, avg, tdscha_energy(state, avg.energy), work, field, modes, covariances)


def run_classical(system: System, provider, dt: float, n_steps: int, *, x_init: np.ndarray | None = None,
                  v_init: np.ndarray | None = None, pulse=None, screening: float | None = None,
                  output_every: int = 1, modes: Modes | None = None) -> xr.Dataset:
    """Classical velocity-Verlet MD of the same system under the same pulse (for comparison).

    Parameters
    ----------
    x_init, v_init
        Initial Cartesian positions (n,) Å (default ``system.x0``) and velocities (n,) Å/ps (0).
    modes
        Reference modes (e.g. those of a TD-SCHA run, ``Modes(ds.mode_frequency...)`` or the
        :class:`Modes` given to it): ``mode_energy`` (frame, mode) eV = p²/2 + w² q²/2 of
        the classical displacement projected on them, comparable with TD-SCHA's.

    Returns
    -------
    xarray.Dataset
        ``centroid`` (frame, dof) Å (the classical position), ``centroid_velocity`` Å/ps,
        ``energy`` (kinetic + potential, eV), ``potential_energy``, ``work``, ``field``, and
        ``mode_energy``/``mode_frequency`` with ``modes``.
    """
    fext = external_force(system, pulse, screening)
    sm = system.sqrt_m
    R = system.to_mass_scaled(system.x0 if x_init is None else x_init)
    P = np.zeros(system.n) if v_init is None else np.asarray(v_init, float) * sm

    def forces(R, step):
        e, f, _ = evaluate_checked(provider, system.to_cartesian(R)[None], step, "classical step")
        return float(e[0]), f[0] / sm

    e, f = forces(R, 0)
    t, work, out = 0.0, 0.0, []

    def rec():
        fld = np.zeros(3) if pulse is None else np.asarray(pulse(t)) / (screening or 1.0)
        out.append((t, system.to_cartesian(R), P / sm, 0.5 * P @ P + e, e, work, fld))

    rec()
    for step in progress(range(1, n_steps + 1), total=n_steps, desc="classical MD", unit="step"):
        p0 = fext(t) @ P
        P = P + 0.5 * dt * (f + fext(t))
        R = R + dt * P
        e, f = forces(R, step)
        P = P + 0.5 * dt * (f + fext(t + dt))
        t += dt
        work += 0.5 * dt * (p0 + fext(t) @ P)
        if step % output_every == 0:
            rec()
    cols = list(zip(*out, strict=True))
    extra = {}
    if modes is not None:
        nr = system.n_reduced
        zero = np.zeros((nr, 2 * nr))
        em = [modes.energies(TDSCHAState(0.0, system.to_mass_scaled(x), v * sm, zero, zero), system.basis)[0]
              for x, v in zip(cols[1], cols[2], strict=True)]
        extra = {"mode_energy": (("frame", "mode"), np.array(em), {"units": "eV"}),
                 "mode_frequency": ("mode", modes.omega / (2 * np.pi), {"units": "THz"})}
    return xr.Dataset(
        {"centroid": (("frame", "dof"), np.array(cols[1]), {"units": "Å"}),
         "centroid_velocity": (("frame", "dof"), np.array(cols[2]), {"units": "Å/ps"}),
         "energy": ("frame", np.array(cols[3]), {"units": "eV"}),
         "potential_energy": ("frame", np.array(cols[4]), {"units": "eV"}),
         "work": ("frame", np.array(cols[5]), {"units": "eV"}),
         "field": (("frame", "xyz"), np.array(cols[6]), {"units": "V/Å"}), **extra},
        coords={"time": ("frame", np.array(cols[0]), {"units": "ps"}), "dof": np.array(system.names),
                "xyz": ["x", "y", "z"]},
        attrs={"engine": "atomtwin.tdscha.classical", "dt_ps": dt, "timestep_ps": dt * output_every},
    )
