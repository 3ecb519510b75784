"""Figures of the Li | Li6PS5Cl study, one message each, at one-column width, the same
colour for the same phase in every figure (:data:`PHASE_COLOURS`, Okabe-Ito)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["PHASE_COLOURS", "REGION_COLOURS", "make_figures"]

#: one colour per phase category, in every figure
PHASE_COLOURS = {
    "Li": "#8C8C8C",
    "Li6PS5Cl": "#0072B2",
    "Li2S": "#E69F00",
    "Li3P": "#CC79A7",
    "LiCl": "#009E73",
    "new": "#D55E00",
}
REGION_COLOURS = {"bulk Li": "#8C8C8C", "interface": "#D55E00", "bulk electrolyte": "#0072B2"}
FORMATS = ("png", "pdf")


def _labels():
    from atomtwin.engines.studies.li_argyrodite.analysis import PHASE_LABELS

    return PHASE_LABELS


def fig_phase_fractions(res: xr.Dataset, out: Path) -> list[Path]:
    """Fraction of all atoms in each phase category against time."""
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    lab = _labels()
    fig, ax = new_figure("single", aspect=0.8)
    t = res["time"].values
    for p in res["phase"].values:
        y = res["phase_fraction"].sel(phase=p).values
        if np.nanmax(y) <= 0:
            continue
        ax.plot(t, y, color=PHASE_COLOURS[str(p)], label=lab[str(p)])
    ax.set_xlabel(axis_label("time", "ps"))
    ax.set_ylabel("fraction of atoms")
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, None)
    fig.legend(
        loc="outside lower center",
        ncol=3,
        frameon=False,
        fontsize=7,
        handlelength=1.5,
        columnspacing=1.0,
    )
    return save(fig, out / "fig_phase_fractions", formats=FORMATS)


def fig_profiles(res: xr.Dataset, out: Path) -> list[Path]:
    """Where the phases are: stacked local fractions against the distance from the initial
    contact plane, at the start and at the end of the run."""
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    lab = _labels()
    nf = res.sizes["frame"]
    n = max(1, nf // 10)
    fig, axes = new_figure("single", aspect=1.15, nrows=2, sharex=True)
    x = res["position"].values
    t = res["time"].values
    for ax, sl, title in (
        (axes[0], slice(0, n), f"start ({t[0]:.2f}-{t[n - 1]:.2f} ps)"),
        (axes[1], slice(nf - n, nf), f"end ({t[nf - n]:.2f}-{t[-1]:.2f} ps)"),
    ):
        prof = res["profile"].isel(frame=sl).mean("frame", skipna=True).fillna(0.0)
        base = np.zeros(x.size)
        for p in res["phase"].values:
            y = prof.sel(phase=p).values
            ax.fill_between(
                x, base, base + y, color=PHASE_COLOURS[str(p)], lw=0, label=lab[str(p)], step="mid"
            )
            base = base + y
        ax.axvline(0.0, color="k", lw=0.6, ls="--")
        ax.set_ylim(0, 1)
        ax.set_ylabel("local fraction")
        ax.set_title(title, fontsize=7, loc="left")
    axes[1].set_xlabel(axis_label("distance from the initial contact (metal < 0)", "Å"))
    axes[1].set_xlim(x[0], x[-1])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=3,
        frameon=False,
        fontsize=7,
        handlelength=1.2,
        columnspacing=1.0,
    )
    return save(fig, out / "fig_phase_profiles", formats=FORMATS)


def fig_interphase(res: xr.Dataset, growth: dict | None, out: Path) -> list[Path]:
    """Interphase growth against time with the spread of the two contacts and the fit."""
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    fig, ax = new_figure("single", aspect=0.75)
    t = res["time"].values - res["time"].values[0]
    h, e = res["interphase_thickness"].values, res["interphase_thickness_err"].values
    ax.fill_between(
        t,
        h - e,
        h + e,
        color=PHASE_COLOURS["new"],
        alpha=0.25,
        lw=0,
        label="spread of the two contacts",
    )
    ax.plot(t, h, color=PHASE_COLOURS["new"], label="mean of the two contacts")
    if growth and "n" in growth:
        ax.plot(
            t,
            res["interphase_fit"].values,
            "k--",
            lw=0.8,
            label=f"fit $h = A t^n$, n = {growth['n']:.2f} ± {growth['n_err']:.2f}",
        )
    ax.axhline(0, color="k", lw=0.4)
    ax.set_xlabel(axis_label("time", "ps"))
    ax.set_ylabel(axis_label("interphase growth h", "Å"))
    ax.set_xlim(t[0], t[-1])
    fig.legend(loc="outside lower center", ncol=2, frameon=False, fontsize=7)
    return save(fig, out / "fig_interphase_growth", formats=FORMATS)


def fig_reactions(res: xr.Dataset, out: Path) -> list[Path]:
    """The reduction of PS4: P-S bonds and units, and what they leave behind."""
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    fig, ax = new_figure("single", aspect=0.8)
    t = res["time"].values
    ax.step(t, res["ps_bonds"], where="post", color="k", label="P–S bonds")
    ax.step(
        t, res["n_PS4"], where="post", color=PHASE_COLOURS["Li6PS5Cl"], label="PS$_4$ units, all"
    )
    ax.step(
        t,
        res["n_PS4_bulk"],
        where="post",
        color=PHASE_COLOURS["Li6PS5Cl"],
        ls=":",
        label="PS$_4$ units, deeper layers",
    )
    ax.step(
        t, res["n_S_isolated"], where="post", color=PHASE_COLOURS["Li2S"], label="S bonded to no P"
    )
    ax.step(t, res["n_P_bare"], where="post", color=PHASE_COLOURS["Li3P"], label="P bonded to no S")
    ax.set_xlabel(axis_label("time", "ps"))
    ax.set_ylabel("count in the cell")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, None)
    fig.legend(loc="outside lower center", ncol=2, frameon=False, fontsize=7)
    return save(fig, out / "fig_reactions", formats=FORMATS)


def fig_coordination(res: xr.Dataset, out: Path) -> list[Path]:
    """P trades its S for Li; Cl keeps its Li shell."""
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    fig, ax = new_figure("single", aspect=0.75)
    t = res["time"].values
    ax.plot(t, res["cn_P_S"], color=PHASE_COLOURS["Li6PS5Cl"], label="S around P")
    ax.plot(t, res["cn_P_Li"], color=PHASE_COLOURS["Li3P"], label="Li around P")
    ax.plot(t, res["cn_Cl_Li"], color=PHASE_COLOURS["LiCl"], label="Li around Cl")
    ax.set_xlabel(axis_label("time", "ps"))
    ax.set_ylabel("mean bonded neighbours")
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, None)
    fig.legend(loc="outside lower center", ncol=3, frameon=False, fontsize=7)
    return save(fig, out / "fig_coordination", formats=FORMATS)


def fig_mobility(res: xr.Dataset, out: Path) -> list[Path]:
    """Li mobility by region, in plane against across the interface, with error bars."""
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    fig, ax = new_figure("single", aspect=0.75)
    regions = [str(r) for r in res["region"].values]
    x = np.arange(len(regions))
    w = 0.38
    for k, (d, hatch) in enumerate((("in plane", None), ("across", "//"))):
        y = res["li_D_eff"].sel(direction=d).values
        e = res["li_D_eff_err"].sel(direction=d).values
        ax.bar(
            x + (k - 0.5) * w,
            y,
            w,
            yerr=e,
            capsize=2,
            color=[REGION_COLOURS[r] for r in regions],
            hatch=hatch,
            edgecolor="white",
            lw=0.0,
            error_kw={"lw": 0.8},
            label=d,
        )
    ax.set_xticks(x, [r.replace(" ", "\n") for r in regions])
    ax.set_ylabel(axis_label("Li $D_{eff}$ per dimension", "Å^2/ps"))
    ax.axhline(0, color="k", lw=0.4)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(facecolor="#BBBBBB", label="in plane (x, y)"),
            Patch(facecolor="#BBBBBB", hatch="//", edgecolor="white", label="across (z)"),
        ],
        loc="upper left",
        frameon=False,
        fontsize=7,
    )
    return save(fig, out / "fig_li_mobility", formats=FORMATS)


def fig_model_check(out: Path, check: dict) -> list[Path]:
    """Model against CHGNet on frames of the model's own trajectory (parity)."""
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    chk = np.load(out / "check_forces.npz")
    fig, ax = new_figure("single", aspect=1.0)
    fr, fm = chk["f_ref"].ravel(), chk["f_mod"].ravel()
    ax.plot(fr, fm, ".", ms=1.5, alpha=0.4, color=PHASE_COLOURS["Li6PS5Cl"], rasterized=True)
    lim = float(np.abs(np.r_[fr, fm]).max()) * 1.05
    ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel(axis_label("CHGNet force component", "eV/Å"))
    ax.set_ylabel(axis_label("model force component", "eV/Å"))
    ax.text(
        0.04,
        0.96,
        f"MAE {check['force_mae']:.3f} eV/Å\n"
        f"= {100 * check['force_mae_relative']:.0f} % of mean |F|",
        transform=ax.transAxes,
        va="top",
        fontsize=7,
    )
    return save(fig, out / "fig_model_vs_chgnet", formats=FORMATS)


def fig_nve(out: Path) -> list[Path]:
    """Total energy of the NVE continuation (conservation of the model + integrator)."""
    from atomtwin.toolkit import units as U
    from atomtwin.toolkit.plot import axis_label, new_figure, save

    import atomtwin

    nve = atomtwin.toolkit.read(out / "nve.nc")
    ke = 0.5 * np.einsum("a,fai->f", nve["mass"].values, nve["velocities"].values ** 2)
    etot = (nve["energy"].values + ke * U.AMU_A2_PS2_TO_EV) / nve.sizes["atom"]
    epot = nve["energy"].values / nve.sizes["atom"]
    t = nve["time"].values - nve["time"].values[0]
    fig, ax = new_figure("single", aspect=0.7)
    ax.plot(t, (epot - epot.mean()) * 1e3, color="#8C8C8C", lw=0.8, label="potential − its mean")
    ax.plot(t, (etot - etot[0]) * 1e3, color="k", label="total − initial")
    ax.set_xlabel(axis_label("time", "ps"))
    ax.set_ylabel(axis_label("energy per atom", "meV"))
    ax.set_xlim(t[0], t[-1])
    slope = np.polyfit(t, etot, 1)[0] * 1e3
    ax.text(
        0.98,
        0.96,
        f"drift {slope:.3f} meV/atom/ps",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=7,
    )
    fig.legend(loc="outside lower center", ncol=2, frameon=False, fontsize=7)
    return save(fig, out / "fig_nve_energy", formats=FORMATS)


def make_figures(out: Path, growth: dict | None, check: dict) -> list[Path]:
    """Every figure of the study from ``out/results.nc`` (and the check/NVE files)."""
    import matplotlib.pyplot as plt

    res = xr.open_dataset(out / "results.nc", engine="h5netcdf").load()
    files = []
    for fn in (
        lambda: fig_phase_fractions(res, out),
        lambda: fig_profiles(res, out),
        lambda: fig_interphase(res, growth, out),
        lambda: fig_reactions(res, out),
        lambda: fig_coordination(res, out),
        lambda: fig_mobility(res, out),
        lambda: fig_model_check(out, check) if check else [],
        lambda: fig_nve(out),
    ):
        files += fn()
        plt.close("all")
    return files
