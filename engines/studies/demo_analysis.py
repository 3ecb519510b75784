"""Analysis and report of ``atomtwin demo`` (see :mod:`atomtwin.engines.studies.demo`): only toolkit calls on
the trajectory the demo wrote, as a user would make them on their own run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr


def _references(cfg):
    """Thermally rattled bulk fcc Pd and Au at the slab's in-plane lattice constant: the
    phases a user knows; anything the clustering finds beyond them is flagged new."""
    from ase.build import bulk

    return {"fcc Pd": bulk("Pd", "fcc", a=cfg.a, cubic=True).repeat(3),
            "fcc Au": bulk("Au", "fcc", a=cfg.a, cubic=True).repeat(3)}


def analyse(ds: xr.Dataset, out: Path, cfg, seed: int = 0) -> dict:
    """Environments, phase fractions and profiles, interphase growth, anisotropic diffusion
    and RDFs of the demo trajectory; results to ``out/results.nc``."""
    from atomtwin.toolkit.dynamics import diffusion, msd
    from atomtwin.toolkit.environments import (
        classify_environments,
        fit_growth_law,
        interphase_thickness,
    )
    from atomtwin.toolkit.phases import rdf

    n_fit = min(6000, min(16, ds.sizes["frame"]) * ds.sizes["atom"])  # fit_frames = 16
    env, clf = classify_environments(
        ds, "soap", references=_references(cfg), axis="z", n_bins=40, seed=seed, n_fit=n_fit,
        max_clusters=6, rattle=0.1,
    )
    clf.save(out / "environments.pkl")
    # clusters matching a bulk reference are crystal; the others (surfaces, the mixed
    # interface region, disordered environments) make up the interphase
    new = [int(c) for c in env["cluster"].values[np.asarray(env["is_new"].values, bool)]]
    info: dict = {
        "clusters": int(env.sizes["cluster"]),
        "cluster_table": [
            {"cluster": int(c), "nearest_reference": str(env["nearest_reference"].values[i]),
             "is_new": bool(env["is_new"].values[i]), "centre_species": str(env["centre_species"].values[i]),
             "overlap": float(np.max(env["overlap"].values[i])) if "overlap" in env else None,
             "fraction_first": float(env["fraction"].isel(frame=0).values[i]),
             "fraction_last": float(env["fraction"].isel(frame=-1).values[i])}
            for i, c in enumerate(env["cluster"].values)
        ],
        "new_clusters": new,
    }
    growth = None
    if new:
        thick = interphase_thickness(env["profile"], new, method="integral", n_interfaces=1)
        env["interphase_thickness"] = thick
        info["interphase_thickness_A"] = [float(thick.values[0]), float(thick.values[-1])]
        try:
            growth = fit_growth_law(thick.isel(frame=slice(1, None)))
            info["growth_exponent"] = [float(growth["n"]), float(growth["n_err"])]
        except ValueError as err:  # too few frames with a positive thickness
            info["growth_exponent"] = None
            info["growth_note"] = str(err)
    # diffusion in the interface plane against across it, per species
    dif = {}
    msds = {}
    for sp in ("Pd", "Au"):
        for axes in ("xy", "z"):
            m = msd(ds, sp, axes=axes)
            msds[(sp, axes)] = m
            try:
                fit = diffusion(ds, sp, axes=axes)
                dif[f"{sp}_{axes}"] = [float(fit["D"]), float(fit["D_err"])]
            except (ValueError, RuntimeError) as err:
                dif[f"{sp}_{axes}"] = None
                info.setdefault("diffusion_notes", []).append(f"{sp} {axes}: {err}")
            # the plateau-free measure: MSD per dimension at the longest well-sampled lag
            half = m.sizes["lag"] // 2
            dif[f"{sp}_{axes}_msd_per_dim_A2"] = float(m.isel(lag=half)) / len(axes)
    info["diffusion_A2_per_ps"] = dif
    info["msd_lag_ps"] = float(msds[("Pd", "xy")]["lag"].isel(lag=msds[("Pd", "xy")].sizes["lag"] // 2))
    # partial RDFs at the start and the end
    n = ds.sizes["frame"]
    head, tail = ds.isel(frame=slice(0, max(2, n // 5))), ds.isel(frame=slice(n - max(2, n // 5), n))
    r_max = 0.45 * float(min(np.linalg.norm(ds["cell"].values[0], axis=1)[:2]))
    rdfs = {}
    for a, b in (("Pd", "Pd"), ("Au", "Au"), ("Pd", "Au")):
        for tag, part in (("start", head), ("end", tail)):
            rdfs[f"g_{a}{b}_{tag}"] = rdf(part, r_max=r_max, n_bins=90, species=(a, b))
    # Pd-Au contacts per atom: the intermixing across the interface
    mix = _unlike_neighbours(ds)
    env["pd_au_contacts"] = mix
    info["pd_au_contacts_per_atom"] = [float(mix.values[0]), float(mix.values[-1])]
    results = env.drop_vars([v for v in env.data_vars if "sample" in v and v != "sample_labels"], errors="ignore")
    for (sp, axes), m in msds.items():
        results[f"msd_{sp}_{axes}"] = m.rename({"lag": f"lag_{sp}_{axes}"})
    for k, g in rdfs.items():
        results[k] = g.rename({"r": "r_" + k})
    from atomtwin.toolkit.io.store import netcdf_safe_attrs

    netcdf_safe_attrs(results).to_netcdf(out / "results.nc.tmp", engine="h5netcdf")
    (out / "results.nc.tmp").replace(out / "results.nc")
    if growth is not None:
        growth.to_netcdf(out / "growth.nc", engine="h5netcdf")
    return info


def _unlike_neighbours(ds: xr.Dataset, cutoff: float = 3.3) -> xr.DataArray:
    """Mean number of Pd–Au pairs within ``cutoff`` (between the first and second fcc
    shells at a = 4.0 Å) per atom, per frame."""
    from atomtwin.toolkit import schema as S
    from atomtwin.toolkit.neighbors import pairs_between

    sp = np.asarray(ds["species"].values).astype(str)
    pd, au = np.flatnonzero(sp == "Pd"), np.flatnonzero(sp == "Au")
    pbc = S.pbc_of(ds)
    vals = []
    for f in range(ds.sizes["frame"]):
        p = pairs_between(np.asarray(ds["positions"].values[f]), np.asarray(ds["cell"].values[f]),
                          pbc, cutoff, pd, au)
        vals.append(2.0 * len(p.i) / len(sp))
    return xr.DataArray(np.asarray(vals), dims=("frame",), attrs={"units": "1", "cutoff_A": cutoff})


# -- report --------------------------------------------------------------------------------
def write_report(out: Path, cfg, done: dict) -> dict:
    """Figures, report.md and summary.json from the finished stages."""
    import matplotlib as mpl
    from atomtwin.toolkit.plot import axis_label, new_figure, save
    from atomtwin.toolkit.plot.environments import plot_phase_fractions, plot_profile_heatmap

    import atomtwin

    res = xr.open_dataset(out / "results.nc", engine="h5netcdf").load()
    figs = []
    # 1 phase fractions and profile heat maps
    names = None
    if "nearest_reference" in res:
        names = {int(c): f"{c}: {str(res['centre_species'].values[i])}, "
                         f"{'not bulk (new)' if bool(res['is_new'].values[i]) else str(res['nearest_reference'].values[i]).split(':')[0]}"
                 for i, c in enumerate(res["cluster"].values)}
    fig, ax = new_figure("single")
    plot_phase_fractions(res["fraction"], names=names, ax=ax)
    figs += save(fig, out / "fig_phase_fractions", formats=("png", "pdf"))
    clusters = [int(c) for c in res["profile"]["cluster"].values]
    fig, axes = new_figure("double", aspect=0.32, ncols=len(clusters), sharey=True)
    axes = np.atleast_1d(axes)
    for i, (ax, c) in enumerate(zip(axes, clusters, strict=True)):
        plot_profile_heatmap(res["profile"], c, ax=ax, colorbar=False)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(3))
        if i:
            ax.set_xlabel("")
            ax.set_ylabel("")
        if "nearest_reference" in res:
            ref = str(res["nearest_reference"].values[i]).split(":")[0]
            new = bool(res["is_new"].values[i])
            sp = str(res["centre_species"].values[i]) if "centre_species" in res else ""
            ax.set_title(f"{c}: {sp}, {'not bulk (new)' if new else ref}", fontsize=7)
        else:
            ax.set_title(f"cluster {c}")
    fig.colorbar(axes[-1].collections[-1], ax=list(axes), label="local fraction of the cluster",
                 fraction=0.02, pad=0.01)
    figs += save(fig, out / "fig_profiles", formats=("png", "pdf"))
    # 2 MSD in plane against across
    fig, ax = new_figure("single")
    for i, sp in enumerate(("Pd", "Au")):
        for axes, ls in (("xy", "-"), ("z", "--")):
            m = res[f"msd_{sp}_{axes}"]
            ax.plot(m[m.dims[0]], m / len(axes), ls, color=f"C{i}", label=f"{sp}, {axes} (per dim.)")
    ax.set_xlabel(axis_label("lag time", "ps"))
    ax.set_ylabel(axis_label("MSD per dimension", "Å^2"))
    ax.legend()
    figs += save(fig, out / "fig_msd_plane_vs_normal", formats=("png", "pdf"))
    # 3 partial RDFs
    fig, axes = new_figure("double", aspect=0.3, ncols=3)
    for ax, pair in zip(axes, ("PdPd", "AuAu", "PdAu"), strict=True):
        for tag, ls in (("start", "-"), ("end", "--")):
            g = res[f"g_{pair}_{tag}"]
            ax.plot(g[g.dims[0]], g, ls, label=tag)
        ax.set_title(f"g$_{{{pair[:2]}-{pair[2:]}}}$(r)")
        ax.set_xlabel(axis_label("r", "Å"))
    axes[0].legend()
    figs += save(fig, out / "fig_rdf", formats=("png", "pdf"))
    # 4 model against EMT on its own trajectory, and NVE energy
    chk = np.load(out / "check_forces.npz")
    fig, (a1, a2) = new_figure("double", aspect=0.4, ncols=2)
    a1.plot(chk["f_ref"].ravel(), chk["f_mod"].ravel(), ".", ms=1.5, alpha=0.5)
    lim = float(np.abs(chk["f_ref"]).max()) * 1.05
    a1.plot([-lim, lim], [-lim, lim], "k-", lw=0.5)
    a1.set_xlabel(axis_label("EMT force component", "eV/Å"))
    a1.set_ylabel(axis_label("model force component", "eV/Å"))
    nve = atomtwin.toolkit.read(out / "nve.nc")
    from atomtwin.engines.studies.demo import energy_drift
    from atomtwin.toolkit import units as U

    ke = 0.5 * np.einsum("a,fai->f", nve["mass"].values, nve["velocities"].values ** 2) * U.AMU_A2_PS2_TO_EV
    etot = (nve["energy"].values + ke) / nve.sizes["atom"]
    a2.plot(nve["time"] - nve["time"][0], (etot - etot[0]) * 1e3, label="total − initial (NVE)")
    epot = nve["energy"].values / nve.sizes["atom"]
    a2.plot(nve["time"] - nve["time"][0], (epot - epot.mean()) * 1e3, alpha=0.6,
            label="potential − its mean")
    a2.set_xlabel(axis_label("time", "ps"))
    a2.set_ylabel(axis_label("energy change", "meV/atom"))
    a2.legend()
    figs += save(fig, out / "fig_model_checks", formats=("png", "pdf"))
    del energy_drift

    summary = _summary(done, cfg)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "report.md").write_text(_markdown(summary, [f.name for f in figs if f.suffix == ".png"]))
    return summary


def _summary(done: dict, cfg) -> dict:
    a = done.get("analysis", {})
    return {
        "system": f"Pd{cfg.n_pd}|Au{cfg.n_au} fcc(100) slab, {done['structure']['atoms']} atoms, "
                  f"{cfg.temperature:.0f} K",
        "model": {k: v for k, v in done.get("model", {}).items() if "mae" in k or "rmse" in k or k in ("epochs", "source")},
        "md": done.get("md", {}),
        "nve": done.get("nve", {}),
        "model_vs_emt_on_md": {k: v for k, v in done.get("check", {}).items() if k != "frames"},
        "clusters": a.get("cluster_table", []),
        "new_clusters": a.get("new_clusters", []),
        "interphase_thickness_A": a.get("interphase_thickness_A"),
        "growth_exponent": a.get("growth_exponent"),
        "diffusion_A2_per_ps": a.get("diffusion_A2_per_ps", {}),
        "pd_au_contacts_per_atom": a.get("pd_au_contacts_per_atom"),
    }


def _fmt(x, digits=3):
    return "–" if x is None else f"{x:.{digits}g}"


def format_summary(s: dict) -> str:
    """A terminal summary of the demo."""
    lines = [f"atomtwin demo: {s['system']}"]
    c = s["model_vs_emt_on_md"]
    if c:
        lines.append(f"  model vs EMT on its own MD: force MAE {_fmt(c['force_mae'])} eV/Å "
                     f"(mean |F| {_fmt(c['force_scale'])}), energy MAE {_fmt(c['energy_mae_per_atom'] * 1e3)} meV/atom")
    n = s["nve"]
    if n:
        lines.append(f"  NVE energy drift {_fmt(n['drift_eV_per_atom_per_ps'] * 1e3)} meV/atom/ps "
                     f"(fluctuation {_fmt(n['fluctuation_eV_per_atom'] * 1e3)} meV/atom)")
    lines.append(f"  {len(s['clusters'])} environment clusters; not matching bulk fcc Pd/Au: {s['new_clusters']}")
    for c in s["clusters"]:
        lines.append(f"    cluster {c['cluster']}: {c['centre_species']} centres, nearest {c['nearest_reference']}"
                     f"{' (NEW)' if c['is_new'] else ''}, fraction {c['fraction_first']:.2f} -> {c['fraction_last']:.2f}")
    if s["interphase_thickness_A"]:
        h = s["interphase_thickness_A"]
        g = s["growth_exponent"]
        lines.append(f"  interphase thickness {h[0]:.1f} -> {h[1]:.1f} Å"
                     + (f", growth h ~ t^n with n = {g[0]:.2f} ± {g[1]:.2f}" if g else ""))
    d = s["diffusion_A2_per_ps"]
    for sp in ("Pd", "Au"):
        xy, z = d.get(f"{sp}_xy"), d.get(f"{sp}_z")
        lines.append(f"  {sp}: MSD per dimension in plane {_fmt(d.get(f'{sp}_xy_msd_per_dim_A2'))} Å² vs across "
                     f"{_fmt(d.get(f'{sp}_z_msd_per_dim_A2'))} Å²; D_xy = {_fmt(xy[0] if xy else None)}, "
                     f"D_z = {_fmt(z[0] if z else None)} Å²/ps")
    m = s.get("pd_au_contacts_per_atom")
    if m:
        lines.append(f"  Pd–Au contacts per atom {m[0]:.2f} -> {m[1]:.2f}")
    return "\n".join(lines)


def _markdown(s: dict, pngs: list[str]) -> str:
    body = ["# atomtwin demo report", "", "```", format_summary(s), "```", ""]
    body += [
        "## What was done",
        "",
        "A Pd | Au fcc(100) slab with free surfaces was simulated with an Allegro-style equivariant",
        "potential trained on EMT energies and forces (EMT: Jacobsen, Stoltze & Nørskov 1996), by",
        "Langevin MD.  The model was checked against EMT on frames of its own trajectory, and its",
        "energy conservation in NVE.  Local environments (SOAP) were clustered (Gaussian mixture, BIC)",
        "and matched to thermally rattled bulk fcc Pd and Au; clusters matching neither form the",
        "interphase, whose thickness is followed in time.  Mean squared displacements in the",
        "interface plane and across it compare the mobility along and through the interface.",
        "",
        "## Figures",
        "",
    ]
    body += [f"![{p}]({p})" for p in pngs]
    body += ["", "## Numbers", "", "```json", json.dumps(s, indent=1, default=float), "```", ""]
    return "\n".join(body)
