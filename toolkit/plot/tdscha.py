"""Figures for SCHA and TD-SCHA results (xarray in, Figure and Axes out).

The inputs are the Datasets the TD-SCHA engine writes (the toolkit does not import it):

- TD-SCHA trajectory: ``centroid`` (frame, dof) Å, ``position_variance`` (frame, dof) Å²,
  ``mode_energy``/``mode_occupation`` (frame, mode), ``mode_frequency`` (mode) THz,
  ``field`` (frame, xyz) V/Å, ``energy``/``work`` eV, coordinate ``time`` (frame) ps.
- Classical MD under the same pulse: ``centroid`` (frame, dof), ``time``.
- Exact 1D quantum dynamics: ``x_mean`` Å and ``x_var`` Å² against ``time``.
- SCHA temperature scan: ``free_energy`` (temperature) eV, optional ``free_energy_error``,
  ``harmonic_free_energy``, ``exact_free_energy``; ``frequency`` (temperature, mode) THz
  and optional ``physical_frequency``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.plot.style import PALETTE, axis_label, new_figure

#: 1 V/Å = 100 MV/cm, the unit of THz-pump experiments
V_PER_A_TO_MV_PER_CM = 100.0


def _time(ds: xr.Dataset) -> np.ndarray:
    if "time" not in ds.coords and "time" not in ds:
        raise InputError("the Dataset has no 'time' coordinate (ps). Fix: pass a TD-SCHA, classical MD or "
                         "exact-dynamics result.")
    return np.asarray(ds["time"].values, float)


def _dof(ds: xr.Dataset, dof) -> int:
    names = [str(n) for n in ds["dof"].values] if "dof" in ds.coords else []
    if isinstance(dof, str):
        if dof not in names:
            raise InputError(f"dof '{dof}' not in the result ({names[:6]}...). Fix: pass a name or an index.")
        return names.index(dof)
    return int(dof)


def plot_centroid_and_variance(tdscha: xr.Dataset, *, exact: xr.Dataset | None = None,
                               classical: xr.Dataset | None = None, dof: int | str = 0, axes=None):
    """Centroid <x>(t) and position variance <dx²>(t) of one coordinate, TD-SCHA beside the
    exact quantum dynamics and classical MD (two stacked panels).

    Parameters
    ----------
    tdscha
        TD-SCHA result (``centroid``, ``position_variance``).
    exact
        Exact 1D dynamics (``x_mean``, ``x_var``), optional.
    classical
        Classical MD (``centroid``; ``position_variance`` too when it is an ensemble), optional.
    dof
        Index or name of the coordinate.

    Returns
    -------
    (Figure, array of 2 Axes)
    """
    if axes is None:
        fig, axes = new_figure(width="single", aspect=1.1, nrows=2, sharex=True)
    else:
        fig = axes[0].figure
    i = _dof(tdscha, dof)
    t = _time(tdscha)
    if exact is not None:
        te = _time(exact)
        axes[0].plot(te, exact["x_mean"].values, color=PALETTE[7], lw=1.6, alpha=0.35, label="exact quantum")
        axes[1].plot(te, exact["x_var"].values, color=PALETTE[7], lw=1.6, alpha=0.35)
    axes[0].plot(t, tdscha["centroid"].values[:, i], color=PALETTE[0], lw=0.9, label="TD-SCHA")
    axes[1].plot(t, tdscha["position_variance"].values[:, i], color=PALETTE[0], lw=0.9)
    if classical is not None:
        tc = _time(classical)
        axes[0].plot(tc, classical["centroid"].values[:, _dof(classical, dof)], color=PALETTE[1], lw=0.9,
                     ls="--", label="classical")
        if "position_variance" in classical:
            axes[1].plot(tc, classical["position_variance"].values[:, _dof(classical, dof)], color=PALETTE[1],
                         lw=0.9, ls="--")
    axes[0].set_ylabel(axis_label(r"$\langle x\rangle$", "Å"))
    axes[1].set_ylabel(axis_label(r"$\langle\delta x^2\rangle$", "Å^2"))
    axes[1].set_xlabel(axis_label("Time", "ps"))
    axes[0].legend(frameon=False, fontsize=6)
    return fig, axes


def plot_mode_energies(tdscha: xr.Dataset, *, modes=None, occupation: bool = False, total: bool = True,
                       subtract_initial: bool = False, ax=None, linestyle: str = "-", label_suffix: str = ""):
    """Energy (eV) or occupation of each reference phonon mode against time: the energy flow
    from the pumped (infrared-active) modes into the others.

    Parameters
    ----------
    tdscha
        TD-SCHA result with ``mode_energy`` / ``mode_occupation`` (frame, mode) and
        ``mode_frequency`` (mode) THz.
    modes
        Mode indices to show (default: all, at most 8, the most energetic).
    occupation
        Plot occupations n (E = hbar w (n + 1/2)) instead of energies.
    total
        Also draw the sum over all modes (energies only).
    subtract_initial
        Draw E(t) - E(0): the energy each mode gained (removes the zero-point energy).
    ax, linestyle, label_suffix
        Draw into an existing Axes (e.g. classical MD dashed beside TD-SCHA).
    """
    key = "mode_occupation" if occupation else "mode_energy"
    if key not in tdscha:
        raise InputError(f"'{key}' is not in the result. Fix: run run_tdscha with modes='initial'.")
    fig, ax = new_figure() if ax is None else (ax.figure, ax)
    t = _time(tdscha)
    e = tdscha[key].values
    if subtract_initial:
        e = e - e[:1]
    if modes is None:
        gain = np.nanmax(e, axis=0) - e[0]
        modes = np.argsort(np.nan_to_num(gain, nan=-np.inf))[::-1][: min(8, e.shape[1])]
    freq = tdscha["mode_frequency"].values if "mode_frequency" in tdscha else None
    for k, m in enumerate(modes):
        lab = f"mode {int(m)}" + (f" ({freq[m]:.2f} THz)" if freq is not None else "") + label_suffix
        ax.plot(t, e[:, m], color=PALETTE[k % len(PALETTE)], lw=0.8, ls=linestyle, label=lab)
    if total and not occupation:
        ax.plot(t, e.sum(axis=1), color="0.4", lw=0.8, ls=":", label="all modes" + label_suffix)
    ax.set_xlabel(axis_label("Time", "ps"))
    ylab = "Occupation" if occupation else ("Mode energy gained" if subtract_initial else "Mode energy")
    ax.set_ylabel(ylab if occupation else axis_label(ylab, "eV"))
    ax.legend(frameon=False, fontsize=5.5)
    return fig, ax


def plot_pulse(ds: xr.Dataset, *, component: int | None = None, ax=None):
    """The electric field of the pump against time, in MV/cm (1 V/Å = 100 MV/cm).

    ``component`` None draws every non-zero Cartesian component."""
    if "field" not in ds:
        raise InputError("'field' (frame, xyz) V/Å is not in the result.")
    fig, ax = new_figure(aspect=0.45) if ax is None else (ax.figure, ax)
    t = _time(ds)
    f = ds["field"].values * V_PER_A_TO_MV_PER_CM
    comps = [component] if component is not None else [k for k in range(3) if np.any(f[:, k])] or [0]
    for k in comps:
        ax.plot(t, f[:, k], color=PALETTE[k], lw=0.9, label=f"$E_{'xyz'[k]}$")
    ax.axhline(0, color="0.7", lw=0.4)
    ax.set_xlabel(axis_label("Time", "ps"))
    ax.set_ylabel(axis_label("Field", "MV/cm"))
    if len(comps) > 1:
        ax.legend(frameon=False, fontsize=6)
    return fig, ax


def plot_scha_temperature(scan: xr.Dataset, *, axes=None, per: float = 1.0):
    """SCHA free energy (left) and phonon frequencies (right) against temperature.

    Left: SCHA free energy (with its stochastic error band), the quantum harmonic crystal and
    the exact free energy when present, all divided by ``per`` (e.g. the number of cells).
    Right: SCHA auxiliary frequencies (solid) and, when present, the physical ones from the
    free-energy Hessian (dashed; negative = imaginary, the soft-mode signature).
    """
    if axes is None:
        fig, axes = new_figure(width="double", aspect=0.32, ncols=2)
    else:
        fig = axes[0].figure
    T = np.asarray(scan["temperature"].values, float)
    F = scan["free_energy"].values / per
    ax = axes[0]
    ax.plot(T, F, color=PALETTE[0], marker="o", ms=2.5, lw=0.9, label="SCHA")
    if "free_energy_error" in scan and np.any(scan["free_energy_error"].values > 0):
        err = scan["free_energy_error"].values / per
        ax.fill_between(T, F - err, F + err, color=PALETTE[0], alpha=0.25, lw=0)
    if "harmonic_free_energy" in scan and np.any(np.isfinite(scan["harmonic_free_energy"].values)):
        ax.plot(T, scan["harmonic_free_energy"].values / per, color=PALETTE[1], ls="--", lw=0.9, label="harmonic")
    if "exact_free_energy" in scan:
        ax.plot(T, scan["exact_free_energy"].values / per, color=PALETTE[7], lw=1.6, alpha=0.35, label="exact")
    ax.set_xlabel(axis_label("Temperature", "K"))
    ax.set_ylabel(axis_label("Free energy" + (" per cell" if per != 1 else ""), "eV"))
    ax.legend(frameon=False, fontsize=6)
    ax = axes[1]
    f = scan["frequency"].values
    for m in range(f.shape[1]):
        ax.plot(T, f[:, m], color=PALETTE[0], lw=0.8, label="SCHA auxiliary" if m == 0 else None)
    if "physical_frequency" in scan:
        p = scan["physical_frequency"].values
        for m in range(p.shape[1]):
            ax.plot(T, p[:, m], color=PALETTE[1], lw=0.8, ls="--", label="physical (Hessian)" if m == 0 else None)
        ax.axhline(0, color="0.7", lw=0.4)
    ax.set_xlabel(axis_label("Temperature", "K"))
    ax.set_ylabel(axis_label("Frequency", "THz"))
    ax.legend(frameon=False, fontsize=6)
    return fig, axes
