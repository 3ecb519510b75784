"""The report of the Li | Li6PS5Cl study: ``summary.json`` (every number the report prints,
in the units it prints them), ``report.md`` (findings as sentences with numbers, figures,
methods) and the terminal summary."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["summarise", "findings", "format_summary", "write_report"]


def _ref_label(ref: str) -> str:
    """``"Li6PS5Cl[Cl0 P1 S0]"`` -> ``"Li6PS5Cl (its site with Cl0 P1 S0 within 3 Å)"``."""
    name = ref.split(":")[0]
    if "[" in name:
        phase, key = name.rstrip("]").split("[", 1)
        return f"{phase} (its site with {key} within 3 Å)"
    return name


def _r(x, nd=3):
    return None if x is None else float(f"{float(x):.{nd}g}")


def summarise(cfg, done: dict, wall_s: float | None = None) -> dict:
    """The study's numbers, named, in the units the report prints them (meV, Å, ps, K)."""
    a = done.get("analysis", {})
    md, nve, chk, mdl = (
        done.get("md", {}),
        done.get("nve", {}),
        done.get("check", {}),
        done.get("model", {}),
    )
    rx = a.get("reactions", {})
    s = {
        "system": cfg.system,
        "atoms": done["structure"]["atoms"],
        "composition": done["structure"].get("composition"),
        "temperature_K": cfg.temperature,
        "friction_per_ps": cfg.friction,
        "md_ps": cfg.md_steps * cfg.timestep,
        "timestep_fs": cfg.timestep * 1e3,
        "model": {k: v for k, v in mdl.items() if k in ("source", "species", "r_max_A")},
        "md_steps_per_s": md.get("steps_per_s"),
        "md_wall_s": md.get("wall_s"),
        "nve": {
            "steps": nve.get("steps"),
            "drift_meV_per_atom_per_ps": None if not nve else nve["drift_eV_per_atom_per_ps"] * 1e3,
            "fluctuation_meV_per_atom": None if not nve else nve["fluctuation_eV_per_atom"] * 1e3,
            "temperature_K": nve.get("temperature_K"),
        },
        "check": {}
        if not chk or "skipped" in chk
        else {
            "frames": len(chk["frames"]),
            "force_mae_eV_per_A": chk["force_mae"],
            "force_rmse_eV_per_A": chk["force_rmse"],
            "mean_abs_force_eV_per_A": chk["force_scale"],
            "force_mae_percent_of_mean": 100 * chk["force_mae_relative"],
            "energy_mae_meV_per_atom": chk["energy_mae_per_atom"] * 1e3,
            "energy_offset_meV_per_atom": chk["energy_offset_per_atom"] * 1e3,
        },
        "check_skipped": chk.get("skipped"),
        "phase_fraction_first": a.get("phase_fraction_first", {}),
        "phase_fraction_last": a.get("phase_fraction_last", {}),
        "n_clusters": len(a.get("clusters", [])),
        "clusters": a.get("clusters", []),
        "new_clusters": a.get("new_clusters", []),
        "interphase_growth_A": a.get("interphase_growth_A"),
        "growth_law": a.get("growth_law"),
        "reactions": rx,
        "mobility": a.get("mobility", {}),
        "region_width_A": cfg.region_width,
        "contact_layer_A": cfg.contact_layer,
        "md_temperature_K": md.get("temperature_K"),
        "md_temperature_std_K": md.get("temperature_std_K"),
        "n_segments": cfg.n_segments,
        "wall_s": wall_s,
        "wall_min": None if wall_s is None else wall_s / 60,
    }
    return s


def _grown_sentences(s: dict, top: int = 4) -> list[str]:
    """Clusters that hold at most one atom in the first frame and at least three in the
    last: the environments the run created, whatever they matched."""
    grown = [c for c in s["clusters"] if c["atoms_first"] <= 1 and c["atoms_last"] >= 3]
    grown = sorted(grown, key=lambda c: -c["atoms_last"])[:top]
    out = []
    for c in grown:
        nb = ", ".join(f"{v:g} {k}" for k, v in c["neighbours_3A"].items() if v > 0)
        match = (
            "matching no reference"
            if c["phase"] == "new"
            else f"matched to {_ref_label(c['nearest_reference'])}"
        )
        out.append(
            f"cluster {c['cluster']} ({c['centre_species']} centres, {c['atoms_first']} -> "
            f"{c['atoms_last']} atoms; within 3 Å on average {nb}; {match})"
        )
    return out


def _new_sentences(s: dict, top: int = 3) -> list[str]:
    # clusters empty at both ends (visited only in between) have no neighbour statistics
    new = [
        c for c in s["clusters"] if c["phase"] == "new" and (c["atoms_first"] or c["atoms_last"])
    ]
    new = sorted(new, key=lambda c: -c["atoms_last"])[:top]
    out = []
    for c in new:
        nb = ", ".join(f"{v:g} {k}" for k, v in c["neighbours_3A"].items() if v > 0)
        out.append(
            f"cluster {c['cluster']} ({c['centre_species']} centres, {c['atoms_first']} -> "
            f"{c['atoms_last']} atoms; within 3 Å on average {nb}; nearest reference "
            f"{_ref_label(c['nearest_reference'])} at a normalised distance of "
            f"{c['distance']:.2f}"
            + ("" if c.get("same_first_shell", True) else ", but another first-shell chemistry")
            + ")"
        )
    return out


def findings(s: dict) -> list[str]:
    """The report's sentences, each stating what was found with its numbers."""
    out = [
        f"The {s['atoms']}-atom Li | Li6PS5Cl sandwich ran for {s['md_ps']:.2f} ps at "
        f"{s['temperature_K']:.0f} K (Langevin, friction {s['friction_per_ps']:g} per ps, "
        f"{s['timestep_fs']:g} fs steps) at {s['md_steps_per_s']:.1f} MD steps per second; "
        f"its kinetic temperature over the second half was {s['md_temperature_K']:.0f} ± "
        f"{s['md_temperature_std_K']:.0f} K (the reaction heat against the thermostat)."
    ]
    c = s["check"]
    if c:
        out.append(
            f"On {c['frames']} frames of its own trajectory the model's forces differ from "
            f"CHGNet's by {c['force_mae_eV_per_A']:.3f} eV/Å (MAE; RMSE "
            f"{c['force_rmse_eV_per_A']:.3f} eV/Å), {c['force_mae_percent_of_mean']:.0f} % of "
            f"the mean |F| of {c['mean_abs_force_eV_per_A']:.3f} eV/Å; energies differ by "
            f"{c['energy_mae_meV_per_atom']:.1f} meV/atom after a constant offset of "
            f"{c['energy_offset_meV_per_atom']:.1f} meV/atom."
        )
    elif s.get("check_skipped"):
        out.append(f"The model was not checked against CHGNet: {s['check_skipped']}.")
    n = s["nve"]
    if n.get("steps"):
        out.append(
            f"Continued without thermostat for {n['steps']} steps, the total energy drifts by "
            f"{n['drift_meV_per_atom_per_ps']:.3f} meV/atom/ps (fluctuation "
            f"{n['fluctuation_meV_per_atom']:.3f} meV/atom) at {n['temperature_K']:.0f} K."
        )
    r = s["reactions"]
    if r:
        brk = r.get("ps_break") or {}
        frm = r.get("ps_form") or {}
        out.append(
            f"P-S bonds fall from {r['ps_bonds'][0]} to {r['ps_bonds'][1]} and PS4 units from "
            f"{r['n_PS4'][0]} to {r['n_PS4'][1]} (in the layer facing the metal, P within "
            f"{s['contact_layer_A']:g} Å of the contact, {r['n_PS4_contact'][0]} -> "
            f"{r['n_PS4_contact'][1]}; deeper {r['n_PS4_bulk'][0]} -> {r['n_PS4_bulk'][1]}); {brk.get('n_events', 0)} P-S bonds broke "
            f"({brk.get('rate', 0):.1f} ± {brk.get('rate_err', 0):.1f} per ps) and "
            f"{frm.get('n_events', 0)} formed."
        )
        out.append(
            f"S bonded to no P grows from {r['n_S_isolated'][0]} to {r['n_S_isolated'][1]} atoms "
            f"and P bonded to no S from {r['n_P_bare'][0]} to {r['n_P_bare'][1]}; on average each "
            f"P goes from {r['cn_P_S'][0]:.2f} to {r['cn_P_S'][1]:.2f} S and from "
            f"{r['cn_P_Li'][0]:.2f} to {r['cn_P_Li'][1]:.2f} Li (reduction towards Li3P), while "
            f"Cl goes from {r['cn_Cl_Li'][0]:.2f} to {r['cn_Cl_Li'][1]:.2f} Li and "
            f"{r['n_Cl_Li_only'][1]} Cl are bonded to Li only at the end."
        )
    f0, f1 = s["phase_fraction_first"], s["phase_fraction_last"]
    if f0:
        names = {
            "Li": "bcc Li",
            "Li6PS5Cl": "Li6PS5Cl",
            "Li2S": "Li2S-like",
            "Li3P": "Li3P-like",
            "LiCl": "LiCl-like",
            "new": "unmatched",
        }
        parts = ", ".join(f"{names[p]} {f0[p]:.2f} -> {f1[p]:.2f}" for p in f0)
        out.append(
            f"The {s['n_clusters']} environment clusters, matched to the reference "
            f"crystals equilibrated at the run temperature, give these fractions of all atoms (start -> end): {parts}."
        )
        gg = _grown_sentences(s)
        if gg:
            out.append(
                "Environments the run created (clusters from at most 1 atom to at least 3): "
                + "; ".join(gg)
                + "."
            )
        nn = _new_sentences(s)
        if nn:
            out.append(
                f"{len(s['new_clusters'])} clusters match no reference; the largest: "
                + "; ".join(nn)
                + "."
            )
    h, g = s["interphase_growth_A"], s["growth_law"]
    if h:
        txt = (
            f"The interphase (environments no longer those of the bulk their atom started "
            f"in: product-like, unmatched, or the other bulk's) grew by {h[0]:.1f} ± {h[1]:.1f} Å per contact"
        )
        if g and "n" in g:
            txt += (
                f"; a growth law h = A t^n fits n = {g['n']:.2f} ± {g['n_err']:.2f} (the "
                f"contacts alone: {g['n_per_contact'][0]:.2f} and {g['n_per_contact'][1]:.2f})"
            )
        out.append(txt + ".")
    m = s["mobility"]
    if m:

        def dd(key):
            v = m[key]
            return f"{v['D_eff']:.3f} ± {v['D_eff_err']:.3f}"

        out.append(
            f"Li mobility (MSD slope per dimension at lags up to {m['lag_ps']:.3g} ps, errors "
            f"from {s['n_segments']} time segments): at the interface (within "
            f"{s['region_width_A']:g} Å of the contact) {dd('interface in plane')} Å²/ps in "
            f"plane against {dd('interface across')} across; bulk Li "
            f"{dd('bulk Li in plane')} in plane, {dd('bulk Li across')} across; bulk "
            f"electrolyte {dd('bulk electrolyte in plane')} in plane, "
            f"{dd('bulk electrolyte across')} across."
        )
    if s.get("wall_s"):
        out.append(
            f"The whole study took {s['wall_s']:.0f} s ({s['wall_min']:.1f} min) of wall time."
        )
    return out


def format_summary(s: dict) -> str:
    """The terminal summary: the findings, one per line."""
    lines = [f"atomtwin demo: {s['system']}"]
    lines += [f"  - {f}" for f in findings(s)]
    return "\n".join(lines)


METHODS = """## Methods

- **Structure**: periodic Li(100) | Li6PS5Cl(100) sandwich (two contacts per cell) built by
  `atomtwin.engines.studies.li_argyrodite.build_interface` from published Wyckoff positions,
  CHGNet lattice constants, 2.5 Å gaps.
- **Potential**: NequIP-style equivariant model learned by atomtwin's active learning against
  CHGNet 0.3.0; checked on frames of its own trajectory and in NVE.
- **Environments**: SOAP (r_cut 3.5 Å: the first coordination shells; n_max 4, l_max 4) of every atom; each centre species
  clustered on its own (PCA, Gaussian mixture, number by BIC); each cluster matched to
  references at the run temperature (bcc Li, Li6PS5Cl, Li2S, Li3P, LiCl, each a bulk cell of
  at least 200 atoms after 0.5 ps of Langevin MD with the same potential: Einstein rattling
  would keep the argyrodite's Li on their sites, while at 400 K they disorder within 0.2 ps):
  nearest reference when closer than the combined spread, else the nearest reference claiming
  at least half of its environments within 1.5 spreads, else flagged new; a
  reference whose first shell holds other anion counts (Cl, P, S within 3 Å: more than one
  neighbour or 50 % apart) is never a match.
  Representative environments of new clusters: `new_environments.extxyz`.
- **Profiles**: against the signed distance from the initial contact plane (both contacts
  folded); interphase growth per contact = integral of the local fraction of environments no
  longer those of the bulk their atom started in (product-like, unmatched, or the other
  bulk's: a metal Li among S matched to an argyrodite Li site) minus its value over the
  first 5 % of the run; error = spread
  of the two contacts; growth law by `atomtwin.toolkit.environments.fit_growth_law` on the
  mean, its error the larger of the fit's and half the difference of the two contacts' fits.
- **Reactions**: `atomtwin.toolkit.reactions` (covalent-radius cutoffs with hysteresis).
- **Li mobility**: MSD per dimension of Li by the region it starts in (bulk Li, interface,
  bulk electrolyte), centre-of-mass drift removed; D_eff = slope between lag/2 and lag;
  error = standard error over contiguous time segments of origins.
"""


def write_report(out: Path, cfg, done: dict, wall_s: float | None = None) -> dict:
    """Figures, ``summary.json`` and ``report.md`` from the finished stages."""
    from atomtwin.engines.studies.li_argyrodite.figures import make_figures

    out = Path(out)
    chk = done.get("check", {})
    chk_ok = bool(chk) and "skipped" not in chk
    files = make_figures(out, done.get("analysis", {}).get("growth_law"), chk if chk_ok else None)
    s = summarise(cfg, done, wall_s)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(s, indent=1, default=float))
    tmp.replace(out / "summary.json")
    pngs = [f.name for f in files if f.suffix == ".png"]
    body = [
        "# atomtwin demo: the Li | Li6PS5Cl interface",
        "",
        f"{s['system']}.",
        "",
        "## Findings",
        "",
    ]
    body += [f"- {f}" for f in findings(s)]
    body += ["", "## Figures", ""] + [f"![{p}]({p})" for p in pngs]
    body += [
        "",
        METHODS,
        "## Files",
        "",
        "`md.nc` (trajectory), `nve.nc`, `results.nc` (every curve of the figures, labels, "
        "profiles), `summary.json` (every number above), `new_environments.extxyz`, "
        "`check_forces.npz` (model and CHGNet forces of the check).",
        "",
    ]
    tmp = out / "report.md.tmp"
    tmp.write_text("\n".join(body))
    tmp.replace(out / "report.md")
    return s
