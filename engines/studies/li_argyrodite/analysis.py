"""The analysis of the Li | Li6PS5Cl study: only toolkit calls on the trajectory, as a user
would make them on their own run (a LAMMPS dump read with ``atomtwin.toolkit.read`` works
the same way).

1. Environments: SOAP of every atom, clustered without labels (Gaussian mixture, BIC), each
   cluster matched to references at the run temperature (bcc Li, Li6PS5Cl, Li2S, Li3P,
   LiCl; equilibrated by MD with the study's potential, or Einstein-rattled); a cluster no reference claims is flagged new, with its
   neighbour composition and representative environments (extxyz).
2. Where the phases are: fractions against time, profiles against the signed distance from
   the initial contact plane (negative: metal; both contacts folded together), the
   interphase thickness per contact and its growth law.
3. Reactions (``atomtwin.toolkit.reactions``): P-S bonds, PS4 units, S without P, P without
   S, coordination of P, S and Cl; bulk PS4 against contact PS4.
4. Li mobility by region (interface, bulk Li, bulk electrolyte), in plane against across.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["PHASES", "PHASE_LABELS", "analyse", "phase_of_clusters", "mobility_by_region"]

#: phase categories of an environment, in plot order (colours in ``figures.PHASE_COLOURS``)
PHASES = ("Li", "Li6PS5Cl", "Li2S", "Li3P", "LiCl", "new")
PHASE_LABELS = {
    "Li": "bcc Li",
    "Li6PS5Cl": "Li$_6$PS$_5$Cl",
    "Li2S": "Li$_2$S-like",
    "Li3P": "Li$_3$P-like",
    "LiCl": "LiCl-like",
    "new": "unmatched (new)",
}
#: the categories that make up the interphase (reaction products and unmatched environments),
#: with any environment of the other bulk than the atom started in (see :func:`analyse`)
INTERPHASE = ("Li2S", "Li3P", "LiCl", "new")
REGIONS = ("bulk Li", "interface", "bulk electrolyte")


def phase_of_clusters(
    env: xr.Dataset,
    min_overlap: float = 0.5,
    near: float = 1.0,
    claim_distance: float = 1.5,
    shell_ok: np.ndarray | None = None,
) -> list[str]:
    """Phase category of each cluster of ``identify_phases``' table.

    ``distances`` is the separation of the cluster's mean from a reference's mean over their
    combined spread (below 1: closer than the spread).  A cluster is matched to

    1. its nearest reference when that distance is at most ``near``; else
    2. the nearest of the references that "claim" it (at least ``min_overlap`` of their
       rattled environments are classified into it) within ``claim_distance``: a bulk
       cluster broadened by the reaction stays matched to the bulk that fills it;
    3. otherwise it is ``"new"``: a reference's environments that fit no cluster well
       still land in some cluster, so a claim alone is not a match.

    ``shell_ok`` (cluster, reference) bool, when given, removes the references whose first
    shell has another chemistry (see :func:`first_shell_agrees`) from both rules.
    """
    ov = np.asarray(env["overlap"].values)
    dist = np.asarray(env["distances"].values)
    if shell_ok is not None:
        dist = np.where(shell_ok, dist, np.inf)
    names = [reference_phase(r) for r in env["reference"].values]
    out = []
    for k in range(ov.shape[0]):
        d = np.where(np.isfinite(dist[k]), dist[k], np.inf)
        j = int(np.argmin(d))
        claim = (ov[k] >= min_overlap) & (d <= claim_distance)
        if d[j] <= near:
            out.append(names[j])
        elif claim.any():
            out.append(names[int(np.argmin(np.where(claim, d, np.inf)))])
        else:
            out.append("new")
    return out


#: classifier settings of each centre species' pipeline (see :func:`_environments`)
#: 6 PCA components keep a full-covariance mixture affordable for BIC (21 covariance
#: parameters per component instead of 136 with 16), so a product (isolated S among Li)
#: is not lumped with the bulk site it resembles (the argyrodite's free S2-); components
#: are merged only when they overlap by more than 30 % (the toolkit default 5 % reunites
#: liquids, and merged those two here)
CLASSIFIER = {"n_components": 6, "merge_overlap": 0.3, "max_clusters": 8}
#: SOAP settings of the environments.  r_cut 3.5 Å holds the first coordination shell of
#: every site here (P-S 2.05, Li-S 2.4-2.6, Li-P 2.5-2.9, Li-Cl 2.6, Li-Li 2.95 and 3.41 Å
#: in bcc Li) and little beyond: the reaction products at the contact are a few Å across
#: and disordered, and with 5 Å their environments were dominated by what surrounds them
#: (the argyrodite's free S2- and a product S among Li fell into one cluster; on the CHGNet
#: reference run, Li2S- and Li3P-like environments then appear from zero only at 3.5 Å)
DESCRIPTOR = {"r_cut": 3.5, "n_max": 4, "l_max": 4, "sigma": 0.5}


#: neighbour species whose first-shell count a match must reproduce (Li-Li distances are
#: soft and vary between the phases at the same chemistry; the anions are not)
SHELL_SPECIES = ("Cl", "P", "S")
SHELL_R = 3.0  # Å: first shell of every pair here (P-S 2.05, Li-S 2.45, Li-P 2.6, Li-Cl 2.6)


def reference_phase(ref_name) -> str:
    """The phase of a reference entry: ``"Li6PS5Cl[Cl0 P1 S0]"`` (a site) or
    ``"Li6PS5Cl:S"`` -> ``"Li6PS5Cl"``."""
    return str(ref_name).split(":")[0].split("[")[0]


def site_shell(ref_name) -> dict[str, float] | None:
    """The first shell a site reference is named by: ``"Li6PS5Cl[Cl0 P1 S0]"`` ->
    ``{"Cl": 0, "P": 1, "S": 0}``; None for a reference without sites."""
    import re

    m = re.search(r"\[([^\]]*)\]", str(ref_name))
    if m is None:
        return None
    return {k: float(v) for k, v in re.findall(r"([A-Z][a-z]?)(\d+)", m.group(1))}


def reference_shells(refs: dict, centre: str) -> dict[str, dict[str, float]]:
    """Mean number of neighbours of each species within :data:`SHELL_R` around the
    ``centre`` atoms of each reference (``{reference: {species: count}}``)."""
    from ase.neighborlist import neighbor_list

    out = {}
    for name, atoms in refs.items():
        sym = np.asarray(atoms.get_chemical_symbols())
        c = sym == centre
        if not c.any():
            continue
        i, j = neighbor_list("ij", atoms, SHELL_R)
        out[name] = {x: float(np.sum(c[i] & (sym[j] == x)) / c.sum()) for x in SHELL_SPECIES}
    return out


def first_shell_agrees(cluster: dict[str, float], ref: dict[str, float]) -> bool:
    """A cluster and a reference have the same first-shell chemistry: for each anion species
    the mean neighbour counts differ by at most one neighbour or half the reference's count
    (a Li with three S around it is not bcc Li, however close the descriptors)."""
    return all(
        abs(cluster.get(x, 0.0) - ref.get(x, 0.0)) <= max(1.0, 0.5 * ref.get(x, 0.0))
        for x in SHELL_SPECIES
    )


def _environments(ds: xr.Dataset, cfg, seed: int, references: dict | None = None):
    """One classifier per centre species (its own BIC: the 8 P of the cell are not outvoted
    by the 150 Li), each matched to the references holding that species.

    Returns global labels (frame, atom), per-cluster phase / species / nearest reference /
    distance / overlap, the classifiers and each one's label offset.
    """
    from atomtwin.toolkit import schema as S
    from atomtwin.toolkit.environments import SOAP, classify_environments, neighbour_composition

    refs = dict(references) if references is not None else _references(cfg, seed)
    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    nf = ds.sizes["frame"]
    lab = np.full((nf, sp.size), -2, np.int16)
    rows, clfs = [], []
    for centre in sorted(set(sp)):
        n_c = int((sp == centre).sum())
        env, clf = classify_environments(
            ds,
            SOAP(**DESCRIPTOR),
            species=[centre],
            references=refs,
            rattle=0.0,
            seed=seed,
            fit_frames=None,
            n_fit=min(4000, nf * n_c),
            max_clusters=CLASSIFIER["max_clusters"] if n_c >= 8 else 4,
            n_components=min(CLASSIFIER["n_components"], max(2, nf * n_c // 40)),
            merge_overlap=CLASSIFIER["merge_overlap"],
            # each site of a reference on its own: Li6PS5Cl's S bonded to P and its free
            # S2- among Li only are two references, not one mixture (whose wide spread took
            # in product S with 7 Li and no P as "Li6PS5Cl")
            site_species=SHELL_SPECIES,
            site_shell=SHELL_R,
        )
        local = np.asarray(env["labels"].values)
        comp = neighbour_composition(ds, env["labels"], r_cut=SHELL_R)
        shells = reference_shells(refs, centre)
        ok = np.zeros(env["distances"].shape, bool)
        for i in range(env.sizes["cluster"]):
            cl = {
                str(x): float(v)
                for x, v in zip(comp["neighbour_species"].values, comp.values[i], strict=True)
            }
            for j, rn in enumerate(env["reference"].values):
                name = reference_phase(rn)
                shell = site_shell(rn) or shells.get(name)
                ok[i, j] = shell is not None and first_shell_agrees(cl, shell)
        phase = phase_of_clusters(env, shell_ok=ok)
        off = len(rows)
        mask = local >= 0
        lab[mask] = local[mask] + off
        lab[(local == -1)] = -1
        dist = np.asarray(env["distances"].values)
        for i in range(env.sizes["cluster"]):
            j = int(np.argmin(dist[i]))
            rows.append(
                {
                    "phase": phase[i],
                    "centre_species": centre,
                    "nearest_reference": str(env["reference"].values[j]),
                    "distance": float(dist[i, j]),
                    "same_first_shell": bool(ok[i, j]),
                    "overlap": float(np.max(env["overlap"].values[i])),
                }
            )
        clfs.append((clf, off))
    return lab, rows, clfs


def _references(cfg, seed: int) -> dict:
    """One Einstein-rattled frame (run temperature) of each reference phase, repeated to at
    least 200 atoms so that every centre species has tens of environments."""
    from atomtwin.engines.studies.li_argyrodite.references import reference_environments
    from atomtwin.toolkit.io.ase_io import dataset_to_atoms

    refs = reference_environments(
        cfg.temperature, seed=seed, n_frames=1, lattice=cfg.lattice, min_atoms=200
    )
    return {name: dataset_to_atoms(d, 0) for name, d in refs.items()}


def _profiles(s: np.ndarray, cat: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(frame, phase, bin) local fraction of each phase category along ``s``."""
    nf = s.shape[0]
    nb = edges.size - 1
    out = np.full((nf, len(PHASES), nb), np.nan)
    ok = np.isfinite(s)  # NaN: an atom left out (the other contact's side)
    b = np.clip(np.digitize(np.where(ok, s, edges[0]), edges) - 1, 0, nb - 1)
    for f in range(nf):
        tot = np.bincount(b[f, ok[f]], minlength=nb).astype(float)
        for k in range(len(PHASES)):
            cnt = np.bincount(b[f, ok[f] & (cat[f] == k)], minlength=nb)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f, k] = np.where(tot > 0, cnt / tot, np.nan)
    return out


def _region_of(s: np.ndarray, width: float) -> np.ndarray:
    """0 bulk Li (s < -width), 1 interface (|s| <= width), 2 bulk electrolyte (s > width)."""
    return np.where(s < -width, 0, np.where(s > width, 2, 1))


def mobility_by_region(
    pos: np.ndarray,
    s: np.ndarray,
    masses: np.ndarray,
    li: np.ndarray,
    dt: float,
    lag: float,
    width: float,
    n_segments: int,
) -> xr.Dataset:
    """Li mean squared displacement per dimension at ``lag`` (ps), by region and direction.

    ``pos`` (frame, atom, 3) unwrapped Å, ``s`` (frame, atom) signed distance from the
    contact (Å), ``li`` the Li indices.  A displacement from origin frame k to k + m is
    counted in the region of the atom at frame k (the region it starts in); the centre of
    mass drift of the whole cell is removed.  In plane: (dx^2 + dy^2) / 2, across: dz^2.
    ``D_eff`` per dimension is the slope between lags m/2 and m, [MSD(m) - MSD(m/2)] /
    (2 * m dt / 2), which removes the vibrational plateau a solid reaches in ~0.1 ps.

    Error bars: the time origins are split into ``n_segments`` contiguous segments; each
    segment gives its own mean, and the error is their standard deviation / sqrt(segments).
    Segments far apart are nearly independent, and a mobility that changes during the run
    (the reaction) shows up as a larger error, not a hidden bias.
    """
    m = max(2, int(round(lag / dt)))
    h = m // 2
    nf = pos.shape[0]
    if nf <= m + n_segments:
        raise ValueError(
            f"{nf} frames are too few for a lag of {m} frames in {n_segments} segments"
        )
    com = np.einsum("a,fai->fi", masses, pos) / masses.sum()
    rel = pos[:, li] - com[:, None, :]
    reg = _region_of(s[:, li], width)
    origins = np.arange(nf - m)
    seg = np.array_split(origins, n_segments)
    vals = np.full((len(REGIONS), 2, 2, n_segments), np.nan)  # region, dir, (msd, D), segment
    npairs = np.zeros((len(REGIONS), n_segments), int)
    for j, ks in enumerate(seg):
        d_m = rel[ks + m] - rel[ks]
        d_h = rel[ks + h] - rel[ks]
        r0 = reg[ks]
        for r in range(len(REGIONS)):
            sel = r0 == r
            if sel.sum() < 3:
                continue
            npairs[r, j] = int(sel.sum())
            for di, comp in enumerate(((0, 1), (2,))):
                msd_m = float((d_m[sel][:, comp] ** 2).sum(-1).mean() / len(comp))
                msd_h = float((d_h[sel][:, comp] ** 2).sum(-1).mean() / len(comp))
                vals[r, di, 0, j] = msd_m
                vals[r, di, 1, j] = (msd_m - msd_h) / (2 * (m - h) * dt)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(vals)
        n_ok = ok.sum(-1)
        mean = np.nanmean(np.where(ok, vals, np.nan), axis=-1)
        err = np.nanstd(np.where(ok, vals, np.nan), axis=-1, ddof=1) / np.sqrt(np.maximum(n_ok, 1))
    coords = {"region": list(REGIONS), "direction": ["in plane", "across"]}
    return xr.Dataset(
        {
            "li_msd": (
                ("region", "direction"),
                mean[:, :, 0],
                {"units": "Å^2", "long_name": f"Li MSD per dimension at lag {m * dt:.3g} ps"},
            ),
            "li_msd_err": (("region", "direction"), err[:, :, 0], {"units": "Å^2"}),
            "li_D_eff": (
                ("region", "direction"),
                mean[:, :, 1],
                {
                    "units": "Å^2/ps",
                    "long_name": "MSD slope per dimension between lag/2 and lag, / 2",
                },
            ),
            "li_D_eff_err": (("region", "direction"), err[:, :, 1], {"units": "Å^2/ps"}),
            "li_pairs": (
                ("region",),
                npairs.sum(1),
                {"units": "1", "long_name": "(atom, origin) pairs behind each value"},
            ),
        },
        coords=coords,
        attrs={"lag_ps": m * dt, "n_segments": n_segments, "region_width_A": width},
    )


def _reactions(ds: xr.Dataset, s0: np.ndarray, layer: float) -> tuple[xr.Dataset, dict]:
    """Reaction products and events from the reactions module, with the coordination
    indicators, and the PS4 of the layer facing the metal (P within ``layer`` Å of the
    initial contact plane) against those of the deeper layers."""
    from atomtwin.toolkit.reactions import coordination_numbers, reactions

    r = reactions(ds, progress=False, contact_events=False)
    t = r.bonds["time"]
    sp = r.species

    def count(formula):
        return (
            sp.sel(formula=formula).values
            if formula in sp["formula"].values
            else np.zeros(t.size, int)
        )

    cn_ps = coordination_numbers(ds, "P", "S", progress=False)
    cn_pli = coordination_numbers(ds, "P", "Li", progress=False)
    cn_sp = coordination_numbers(ds, "S", "P", progress=False)
    cn_cli = coordination_numbers(ds, "Cl", "Li", progress=False)
    cn_cls = coordination_numbers(ds, "Cl", "S", progress=False)
    cn_clp = coordination_numbers(ds, "Cl", "P", progress=False)
    p_idx = np.asarray(cn_ps["atom"].values)
    p_bulk = s0[p_idx] > layer
    out = xr.Dataset(
        {
            "ps_bonds": ("frame", r.bonds.sel(pair="P-S").values, {"units": "bonds"}),
            "n_PS4": ("frame", count("PS4"), {"units": "units"}),
            "n_S_isolated": (
                "frame",
                count("S"),
                {"units": "atoms", "long_name": "S bonded to no P or S"},
            ),
            "n_P_bare": ("frame", count("P"), {"units": "atoms", "long_name": "P bonded to no S"}),
            "n_S_without_P": ("frame", (cn_sp.values == 0).sum(1), {"units": "atoms"}),
            "cn_P_S": ("frame", cn_ps.values.mean(1), {"units": "bonds per P"}),
            "cn_P_Li": ("frame", cn_pli.values.mean(1), {"units": "bonds per P"}),
            "cn_S_P": ("frame", cn_sp.values.mean(1), {"units": "bonds per S"}),
            "cn_Cl_Li": ("frame", cn_cli.values.mean(1), {"units": "bonds per Cl"}),
            "n_Cl_Li_only": (
                "frame",
                ((cn_cls.values == 0) & (cn_clp.values == 0) & (cn_cli.values > 0)).sum(1),
                {"units": "atoms"},
            ),
            "n_PS4_bulk": (
                "frame",
                (cn_ps.values[:, p_bulk] == 4).sum(1),
                {
                    "units": "units",
                    "long_name": "P with 4 S whose P started in the bulk electrolyte",
                },
            ),
            "n_PS4_contact": ("frame", (cn_ps.values[:, ~p_bulk] == 4).sum(1), {"units": "units"}),
            "ps_bonds_from_cn": ("frame", cn_ps.values.sum(1), {"units": "bonds"}),
        },
        coords={"time": ("frame", np.asarray(t.values), {"units": "ps"})},
    )
    summ = r.summary()
    info = {
        "n_P_bulk": int(p_bulk.sum()),
        "n_P_contact": int((~p_bulk).sum()),
        "reactions_top": summ.get("reactions", {}),
        "ps_break": summ["events"].get("P-S break"),
        "ps_form": summ["events"].get("P-S form"),
        "species_last": {k: v["last"] for k, v in summ.get("species", {}).items()},
    }
    return out, info


def analyse(
    ds: xr.Dataset,
    out: Path,
    cfg,
    region: np.ndarray,
    seed: int = 0,
    references: dict | None = None,
) -> dict:
    """Run the study's analysis on the trajectory ``ds``; write ``results.nc``,
    ``environments.pkl`` and ``new_environments.extxyz`` to ``out``; return a JSON-ready dict.

    ``region`` (atom,) 0 for the atoms of the metal and 1 for those of the electrolyte at the
    start: it places the two contact planes (:func:`study.contact_planes`).
    ``references`` ``{phase: Atoms}`` (bulk, periodic) to match the clusters against; the
    study passes :func:`references.thermal_references` (MD with its own potential at the
    run temperature), the default is one Einstein-rattled crystal of each phase.
    """
    from atomtwin.engines.studies.li_argyrodite.study import contact_planes, signed_distance
    from atomtwin.toolkit import schema as S
    from atomtwin.toolkit.environments import (
        fit_growth_law,
        interphase_thickness,
        neighbour_composition,
        representative_environments,
    )
    from atomtwin.toolkit.geometry import unwrap
    from atomtwin.toolkit.io.store import netcdf_safe_attrs

    out = Path(out)
    ds = ds.load()
    pos = np.asarray(ds[S.POSITIONS].values, float)
    cell_z = float(ds[S.CELL].values[0, 2, 2])
    planes = contact_planes(pos[0, :, 2], region, cell_z)
    s = signed_distance(pos[..., 2], planes, cell_z)  # (frame, atom)
    # which contact each atom is nearest to (0: above the metal, 1: below it), per frame
    u = np.mod(pos[..., 2] - planes[1], cell_z)
    width = planes[0] - planes[1]  # metal thickness between the contact planes
    contact = np.where(u < 0.5 * width, 1, np.where(u < 0.5 * (width + cell_z), 0, 1))

    # 1 environments
    lab, rows, clfs = _environments(ds, cfg, seed, references)
    phase = [r["phase"] for r in rows]
    code = np.array([PHASES.index(p) for p in phase] + [len(PHASES) - 1])  # noise -> new
    cat = np.where(lab == -2, len(PHASES) - 1, code[np.where(lab >= 0, lab, len(phase))])
    frac = np.stack([(cat == k).mean(1) for k in range(len(PHASES))], axis=1)
    labels = xr.DataArray(lab, dims=("frame", "atom"))
    comp = neighbour_composition(ds, labels, r_cut=3.0)
    new_ids = [k for k, p in enumerate(phase) if p == "new"]
    new_reps = []
    for clf, off in clfs:
        for a in representative_environments(ds, clf, n_per_cluster=3, r_cut=4.0):
            a.info["cluster"] = int(a.info["cluster"]) + off
            if a.info["cluster"] in new_ids:
                new_reps.append(a)
    if new_reps:
        import ase.io

        ase.io.write(str(out / "new_environments.extxyz.tmp"), new_reps, format="extxyz")
        (out / "new_environments.extxyz.tmp").replace(out / "new_environments.extxyz")
    clusters = []
    for c, row in enumerate(rows):
        row = {
            "cluster": c,
            **row,
            "atoms_first": int((lab[0] == c).sum()),
            "atoms_last": int((lab[-1] == c).sum()),
            "neighbours_3A": {
                str(k): round(float(v), 2)
                for k, v in zip(comp["neighbour_species"].values, comp.values[c], strict=True)
            },
        }
        clusters.append(row)

    # 2 profiles, thickness, growth
    lo, hi = float(np.floor(s.min())), float(np.ceil(s.max()))
    edges = np.arange(lo, hi + 1.0, 1.0)
    prof = _profiles(s, cat, edges)
    posc = 0.5 * (edges[1:] + edges[:-1])
    t = np.asarray(ds[S.TIME].values, float)
    n0 = max(1, t.size // 20)  # the first 5 % of the run: the starting interphase
    # the interphase: every environment that is no longer the bulk its atom started in --
    # a product phase, an unmatched one, or the other bulk's (a metal Li that gained S
    # neighbours and matches an argyrodite Li site: lithium turned into a sulfide).  An S
    # reduced out of a PS4 unit, among ~6.5 Li only, matches the argyrodite's own free S2-
    # site and is not counted here (the reactions module counts it).  Not used: "clusters
    # the run created", since the bulks' thermalisation from the ordered start populates
    # new clusters everywhere (36 % of the deep bulk atoms in the small run)
    start_cat = np.where(np.asarray(region) == 0, PHASES.index("Li"), PHASES.index("Li6PS5Cl"))
    in_inter = np.isin(cat, [PHASES.index(p) for p in INTERPHASE]) | (cat != start_cat[None, :])
    flag = np.where(in_inter, 0, 1)  # two categories: interphase, other
    thick = []
    for c in (0, 1):
        pc = _profiles(np.where(contact == c, s, np.nan), flag, edges)[:, :2]
        da = xr.DataArray(
            pc,
            dims=("frame", "cluster", "position"),
            coords={"cluster": [0, 1], "position": posc, "time": ("frame", t)},
        )
        thick.append(interphase_thickness(da, [0], method="integral").values)
    thick = np.asarray(thick)  # (contact, frame)
    grow = thick - thick[:, :n0].mean(1, keepdims=True)
    h = grow.mean(0)
    h_err = np.abs(grow[0] - grow[1]) / 2  # std of the two contacts / sqrt(2)
    growth = None

    def _fit(y):
        return fit_growth_law(xr.DataArray(y, dims="frame", coords={"time": ("frame", t - t[0])}))

    try:
        g = _fit(h)
        # the fit's error assumes independent frames; consecutive frames are correlated, so
        # the two contacts (independent samples) are fitted on their own too and the error is
        # the larger of the fit's and half their difference
        try:
            n_c = [float(_fit(grow[c])["n"]) for c in (0, 1)]
        except Exception:  # noqa: BLE001 - one contact without enough positive frames
            n_c = [float("nan")] * 2
        spread = abs(n_c[0] - n_c[1]) / 2 if np.all(np.isfinite(n_c)) else float("nan")
        growth = {
            "n": float(g["n"]),
            "n_err": float(np.nanmax([float(g["n_err"]), spread])),
            "n_fit_err": float(g["n_err"]),
            "n_per_contact": n_c,
            "prefactor": float(g["prefactor"]),
            "prefactor_err": float(g["prefactor_err"]),
        }
        fit_curve = np.asarray(g["fit"].values)
    except Exception as err:  # noqa: BLE001 - too few positive frames at small size
        growth = {"note": str(err)}
        fit_curve = np.full(t.size, np.nan)

    # 3 reactions
    rx, rx_info = _reactions(ds, s[0], cfg.contact_layer)

    # 4 Li mobility
    sp = np.asarray(ds[S.SPECIES].values).astype(str)
    upos = np.asarray(unwrap(ds)[S.POSITIONS].values, float)
    mob = mobility_by_region(
        upos,
        s,
        np.asarray(ds[S.MASS].values, float),
        np.flatnonzero(sp == "Li"),
        float(t[1] - t[0]),
        cfg.msd_lag,
        cfg.region_width,
        cfg.n_segments,
    )

    res = xr.Dataset(
        {
            "phase_fraction": (
                ("frame", "phase"),
                frac,
                {"units": "1", "long_name": "fraction of all atoms in each phase category"},
            ),
            "profile": (
                ("frame", "phase", "position"),
                prof,
                {"units": "1", "long_name": "local fraction of each phase category"},
            ),
            "in_interphase": (
                ("frame", "atom"),
                in_inter,
                {
                    "long_name": "environment of a product phase, unmatched, or of a cluster "
                    "the run created"
                },
            ),
            "interphase_per_contact": (("contact", "frame"), grow, {"units": "Å"}),
            "interphase_thickness": (
                "frame",
                h,
                {"units": "Å", "long_name": "interphase growth, mean of the two contacts"},
            ),
            "interphase_thickness_err": ("frame", h_err, {"units": "Å"}),
            "interphase_fit": ("frame", fit_curve, {"units": "Å"}),
            "labels": (("frame", "atom"), lab.astype(np.int16), {"units": "1"}),
            "signed_distance_start": ("atom", s[0], {"units": "Å"}),
            "cluster_phase": ("cluster", np.array(phase)),
            "cluster_species": ("cluster", np.array([r["centre_species"] for r in rows])),
        },
        coords={
            "time": ("frame", t, {"units": "ps"}),
            "phase": list(PHASES),
            "position": (
                "position",
                posc,
                {
                    "units": "Å",
                    "long_name": "signed distance from the initial contact plane (metal < 0)",
                },
            ),
            "cluster": np.arange(len(rows)),
            "contact": [0, 1],
            "species": ("atom", sp),
        },
        attrs={
            "contact_planes_A": json.dumps(planes),
            "cell_z_A": cell_z,
            "region_width_A": cfg.region_width,
        },
    )
    res = xr.merge([res, rx.drop_vars("time"), mob], combine_attrs="drop_conflicts", join="outer")
    netcdf_safe_attrs(res).to_netcdf(out / "results.nc.tmp", engine="h5netcdf")
    (out / "results.nc.tmp").replace(out / "results.nc")

    first, last = frac[:n0].mean(0), frac[-n0:].mean(0)
    return {
        "contact_planes_A": list(planes),
        "clusters": clusters,
        "new_clusters": new_ids,
        "phase_fraction_first": {p: float(first[k]) for k, p in enumerate(PHASES)},
        "phase_fraction_last": {p: float(last[k]) for k, p in enumerate(PHASES)},
        "interphase_growth_A": [float(h[-n0:].mean()), float(np.sqrt((h_err[-n0:] ** 2).mean()))],
        "growth_law": growth,
        "reactions": {
            "ps_bonds": [int(rx["ps_bonds"][0]), int(rx["ps_bonds"][-1])],
            "n_PS4": [int(rx["n_PS4"][0]), int(rx["n_PS4"][-1])],
            "n_PS4_bulk": [int(rx["n_PS4_bulk"][0]), int(rx["n_PS4_bulk"][-1])],
            "n_PS4_contact": [int(rx["n_PS4_contact"][0]), int(rx["n_PS4_contact"][-1])],
            "n_S_isolated": [int(rx["n_S_isolated"][0]), int(rx["n_S_isolated"][-1])],
            "n_P_bare": [int(rx["n_P_bare"][0]), int(rx["n_P_bare"][-1])],
            "cn_P_S": [float(rx["cn_P_S"][0]), float(rx["cn_P_S"][-1])],
            "cn_P_Li": [float(rx["cn_P_Li"][0]), float(rx["cn_P_Li"][-1])],
            "cn_Cl_Li": [float(rx["cn_Cl_Li"][0]), float(rx["cn_Cl_Li"][-1])],
            "n_Cl_Li_only": [int(rx["n_Cl_Li_only"][0]), int(rx["n_Cl_Li_only"][-1])],
            **rx_info,
        },
        "mobility": {
            "lag_ps": float(mob.attrs["lag_ps"]),
            **{
                f"{r} {d}": {
                    "msd": float(mob["li_msd"].sel(region=r, direction=d)),
                    "msd_err": float(mob["li_msd_err"].sel(region=r, direction=d)),
                    "D_eff": float(mob["li_D_eff"].sel(region=r, direction=d)),
                    "D_eff_err": float(mob["li_D_eff_err"].sel(region=r, direction=d)),
                }
                for r in REGIONS
                for d in ("in plane", "across")
            },
        },
    }
