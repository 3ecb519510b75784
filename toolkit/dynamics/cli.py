"""``atomtwin diffusion``, ``atomtwin rotations``, ``atomtwin hops``, ``atomtwin hbonds``:
thin wrappers over :mod:`atomtwin.toolkit.dynamics`."""

from __future__ import annotations

import sys

import numpy as np
from atomtwin.toolkit.cli.io_commands import add_reader_arguments, open_input, require_species


def _common(p) -> None:
    p.add_argument("traj", help="trajectory file (any format atomtwin reads)")
    add_reader_arguments(p)
    p.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    p.add_argument("--plot", help="write a figure to this path (png/pdf)")


def register(sub) -> None:
    p = sub.add_parser("diffusion", help="MSD and diffusion coefficient (with its error) per species")
    _common(p)
    p.add_argument("--species", required=True, nargs="+", help="species, e.g. Li")
    p.add_argument("--axes", default="xyz", help="components: xyz, xy, z ...")
    p.add_argument("--region", help="slab, e.g. z=10:20 (Å)")
    p.add_argument("--method", default="gls", choices=("gls", "blocks"))
    p.add_argument("--start", type=float, help="fit window start (ps)")
    p.add_argument("--stop", type=float, help="fit window end (ps)")
    p.add_argument("--no-drift-removal", action="store_true")
    p.set_defaults(func=cmd_diffusion)

    p = sub.add_parser("rotations", help="polyanion orientational correlations and reorientation rates")
    _common(p)
    p.add_argument("--centre", required=True, help="centre species, e.g. P")
    p.add_argument("--ligand", required=True, help="ligand species, e.g. O")
    p.add_argument("--n-ligands", type=int, default=4)
    p.add_argument("--threshold", type=float, default=60.0, help="jump angle threshold (degrees)")
    p.add_argument("--frame-chunk", type=int, help="frames read at a time (default: as many as fit, up to 256)")
    p.set_defaults(func=cmd_rotations)

    p = sub.add_parser("hops", help="site-based hops: sites, rates, residence times")
    _common(p)
    p.add_argument("--species", required=True)
    p.add_argument("--reference", help="structure file whose SPECIES positions are the sites (default: density maxima)")
    p.add_argument("--r-site", type=float, help="site radius (Å)")
    p.add_argument("--frame-chunk", type=int, help="frames read at a time (default: as many as fit, up to 256)")
    p.set_defaults(func=cmd_hops)

    p = sub.add_parser("hbonds", help="geometric hydrogen bonds, lifetimes and proton transfers")
    _common(p)
    p.add_argument("--donor", default="O")
    p.add_argument("--hydrogen", default="H")
    p.add_argument("--acceptor", default="O")
    p.add_argument("--d-da", type=float, default=3.0, help="max donor-acceptor distance (Å)")
    p.add_argument("--angle", type=float, default=150.0, help="min D-H-A angle (degrees)")
    p.add_argument("--frame-chunk", type=int, help="frames read at a time (default: as many as fit, up to 256)")
    p.set_defaults(func=cmd_hbonds)


def _emit(args, result: dict, lines: list[str]) -> int:
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(result)
    else:
        print("\n".join(lines))
    return 0


def _number(x: float):
    """A float for JSON: NaN/inf become null (JSON has no NaN)."""
    x = float(x)
    return x if np.isfinite(x) else None


def cmd_diffusion(args) -> int:
    """D ± error per species, or "not diffusive" with the reason (no number) when the MSD
    has no diffusive regime (a crystal, a glass, a run too short to resolve the motion)."""
    from atomtwin.toolkit.dynamics import fit_diffusion, msd

    ds = open_input(args)
    require_species(ds, species=args.species)
    res, lines = {}, []
    curves = {}
    for sp in args.species:
        m = msd(ds, sp, axes=args.axes, region=args.region, remove_drift=not args.no_drift_removal,
                n_blocks=5 if args.method == "blocks" else None)
        f = fit_diffusion(m, start=args.start, stop=args.stop, not_diffusive="nan")
        curves[sp] = (m, f)
        ok = bool(f["diffusive"])
        res[sp] = {k: _number(f[k]) for k in ("D", "D_err", "intercept", "fit_start", "fit_stop", "chi2_red",
                                             "inflation")}
        res[sp].update(status=f.attrs["status"], reason=f.attrs["reason"] or None,
                       units={"D": "Å^2/ps", "fit": "ps"}, method=f.attrs["method"], axes=args.axes,
                       region=args.region or "", D_cm2_s=_number(f.D * 1e-4), D_err_cm2_s=_number(f.D_err * 1e-4))
        if ok:
            lines.append(f"{sp}: D = {float(f.D):.4g} ± {float(f.D_err):.2g} Å^2/ps "
                         f"({float(f.D) * 1e-4:.3g} cm^2/s), fit {float(f.fit_start):g}-{float(f.fit_stop):g} ps, "
                         f"{f.attrs['method']}")
        else:
            lines.append(f"{sp}: not diffusive: {f.attrs['reason']}")
    if args.plot:
        from atomtwin.toolkit.plot.dynamics import plot_msd
        from atomtwin.toolkit.plot.style import save

        sp0 = args.species[0]
        m0, f0 = curves[sp0]
        fig, _ = plot_msd(m0, fit=f0 if bool(f0["diffusive"]) else None)
        save(fig, args.plot)
    return _emit(args, res, lines)


def cmd_rotations(args) -> int:
    from atomtwin.toolkit.dynamics import (
        event_rate,
        fit_relaxation,
        orientational_correlation,
        reorientation_events,
    )

    ds = open_input(args)  # lazy: analyses read a chunk of frames at a time
    require_species(ds, centre=args.centre, ligand=args.ligand)
    c = orientational_correlation(ds, args.centre, args.ligand, n_ligands=args.n_ligands)  # bond vectors chunked
    res = {"n_groups": int(c.attrs["n_groups"])}
    lines = [f"{res['n_groups']} {args.centre}{args.ligand}{args.n_ligands} groups"]
    for ell in c["l"].values:
        try:
            f = fit_relaxation(c.sel(l=ell), model="stretched")
            res[f"C{ell}"] = {"tau_ps": float(f.tau), "beta": float(f.beta), "mean_tau_ps": float(f.mean_tau)}
            lines.append(f"C_{ell}: tau = {float(f.tau):.4g} ps, beta = {float(f.beta):.3f}, <tau> = {float(f.mean_tau):.4g} ps")
        except (ValueError, RuntimeError) as err:
            res[f"C{ell}"] = {"error": str(err)}
            lines.append(f"C_{ell}: no fit ({err})")
    ev = reorientation_events(ds, args.centre, args.ligand, n_ligands=args.n_ligands, threshold_deg=args.threshold,
                              frame_chunk=args.frame_chunk)
    mech = ev.attrs["mechanism"]
    res["mechanism"] = {"verdict": mech, "count_ratio": _number(ev.attrs["count_ratio"]),
                        "tau1_over_tau2": _number(ev.attrs["tau_ratio"])}
    if mech == "continuous":  # threshold crossings of rotational diffusion are not events
        res["rotational_diffusion"] = {"D_r_rad2_per_ps": _number(ev.attrs["D_r"]),
                                       "tau_1_ps": _number(ev.attrs["tau_1_ps"]),
                                       "tau_2_ps": _number(ev.attrs["tau_2_ps"])}
        lines.append(f"reorientation: continuous rotational diffusion (crossing-count ratio "
                     f"{ev.attrs['count_ratio']:.2f}, tau1/tau2 {ev.attrs['tau_ratio']:.2f}), no jump events: "
                     f"D_r = {ev.attrs['D_r']:.4g} rad^2/ps")
    elif mech == "unresolved":
        lines.append("reorientation: frames too far apart (C_1 decorrelates within the smoothing window): "
                     "no events reported; store frames more often")
    else:
        r = event_rate(ev)
        res["reorientation"] = {"rate_per_ps": float(r.rate), "rate_err": float(r.rate_err),
                                "n_events": int(r.n_events)}
        word = "jump-like" if mech == "jump" else "undetermined (too few crossings to test for jumps)"
        lines.append(f"reorientations ({word}): {int(r.n_events)} events, rate {float(r.rate):.4g} ± "
                     f"{float(r.rate_err):.2g} /ps per group")
        # mechanisms by the number of distinct bonds that move in one event (for a tetrahedron:
        # 3 for a C3 about a bond, 4 for a C2), each with its own rate
        by = {}
        nb = np.asarray(ev["n_bonds"].values)
        for k in np.unique(nb):
            rk = event_rate(ev.isel(event=np.flatnonzero(nb == k)), n_units=ev.attrs["n_groups"],
                            duration=ev.attrs["duration_ps"])
            by[str(int(k))] = {"rate_per_ps": float(rk.rate), "rate_err": float(rk.rate_err),
                               "n_events": int(rk.n_events)}
            lines.append(f"  {int(k)} bond(s) moved: {int(rk.n_events)} events, rate {float(rk.rate):.4g} ± "
                         f"{float(rk.rate_err):.2g} /ps per group")
        res["reorientation"]["by_n_bonds"] = by
    if args.plot:
        from atomtwin.toolkit.plot.dynamics import plot_orientational_correlation
        from atomtwin.toolkit.plot.style import save

        save(plot_orientational_correlation(c)[0], args.plot)
    return _emit(args, res, lines)


def cmd_hops(args) -> int:
    from atomtwin.toolkit.dynamics import assign_sites, find_sites, hop_rate

    ds = open_input(args)  # lazy: analyses read a chunk of frames at a time
    require_species(ds, species=args.species)
    ref = None
    if args.reference:
        from atomtwin.toolkit.io import read

        ref = read(args.reference)
    sites = find_sites(ds, args.species, reference=ref)
    st = assign_sites(ds, args.species, sites, r_site=args.r_site, frame_chunk=args.frame_chunk)
    r = hop_rate(st)
    res = {"n_sites": int(sites.sizes["site"]), "r_site_A": float(st.attrs["r_site"]),
           **{k: float(r[k]) for k in ("rate", "rate_err", "mean_residence", "mean_residence_err")},
           "n_hops": int(r.n_hops), "units": {"rate": "1/ps", "mean_residence": "ps"}}
    lines = [f"{res['n_sites']} sites ({sites.attrs['source']}), r_site {res['r_site_A']:.2f} Å",
             f"{res['n_hops']} hops: rate {res['rate']:.4g} ± {res['rate_err']:.2g} /ps per atom, "
             f"mean residence {res['mean_residence']:.4g} ps"]
    if args.plot:
        from atomtwin.toolkit.dynamics import residence_times
        from atomtwin.toolkit.plot.dynamics import plot_residence_times
        from atomtwin.toolkit.plot.style import save

        save(plot_residence_times(residence_times(st))[0], args.plot)
    return _emit(args, res, lines)


def cmd_hbonds(args) -> int:
    from atomtwin.toolkit.dynamics import (
        assign_hydrogens,
        hbond_lifetime,
        hydrogen_bonds,
        proton_transfers,
    )

    ds = open_input(args)  # lazy: analyses read a chunk of frames at a time
    require_species(ds, donor=args.donor, hydrogen=args.hydrogen, acceptor=args.acceptor)
    hb = hydrogen_bonds(ds, args.donor, args.hydrogen, args.acceptor, d_da=args.d_da, angle=args.angle,
                        frame_chunk=args.frame_chunk)
    cnt = np.asarray(hb["count"].values)
    res = {"mean_count": float(cnt.mean()), "count": cnt.tolist()}
    lines = [f"hydrogen bonds per frame: mean {cnt.mean():.3g} (min {cnt.min()}, max {cnt.max()})"]
    if hb.sizes["bond"] and ds.sizes["frame"] > 2:
        lt = hbond_lifetime(hb)
        res.update(tau_intermittent_ps=float(lt.tau_intermittent), tau_continuous_ps=float(lt.tau_continuous))
        lines.append(f"lifetimes: intermittent {float(lt.tau_intermittent):.4g} ps, continuous {float(lt.tau_continuous):.4g} ps")
    if args.donor == args.acceptor and ds.sizes["frame"] > 1:
        pt = proton_transfers(assign_hydrogens(ds, args.hydrogen, args.donor, frame_chunk=args.frame_chunk))
        res["proton_transfers"] = int(pt.sizes["event"])
        lines.append(f"proton transfers: {int(pt.sizes['event'])}")
    if args.plot:
        from atomtwin.toolkit.plot.dynamics import plot_hbond_counts
        from atomtwin.toolkit.plot.style import save

        save(plot_hbond_counts(hb)[0], args.plot)
    print(f"analysed {ds.sizes['frame']} frames", file=sys.stderr)
    return _emit(args, res, lines)
