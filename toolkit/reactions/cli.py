"""``atomtwin reactions``: bonds, species, events and rates of a trajectory on one screen.
A thin wrapper over :func:`atomtwin.toolkit.reactions.reactions`."""

from __future__ import annotations

import sys

from atomtwin.toolkit.cli.io_commands import add_reader_arguments, open_input


def register(sub) -> None:
    p = sub.add_parser(
        "reactions", help="bond graph, species counts, bond-breaking/forming events and rates"
    )
    p.add_argument("traj", help="trajectory file (any format atomtwin reads)")
    add_reader_arguments(p)
    p.add_argument(
        "--pairs",
        help="species pairs that can bond, e.g. P-S,S-S,Li-S (default: all but metal-metal)",
    )
    p.add_argument(
        "--covalent",
        help="pairs whose bonds define species (default: pairs without "
        "an alkali/alkaline-earth metal)",
    )
    p.add_argument(
        "--cutoff", help="override r_form (or r_form:r_break) in Å, e.g. P-S=2.4,Li-S=2.9:3.3"
    )
    p.add_argument(
        "--form-factor",
        type=float,
        default=None,
        help="default r_form as a multiple of the sum of covalent radii (1.15)",
    )
    p.add_argument(
        "--break-factor",
        type=float,
        default=None,
        help="default r_break as a multiple of the sum of covalent radii (1.35)",
    )
    p.add_argument(
        "--no-hysteresis",
        action="store_true",
        help="one cutoff per pair (r_break = r_form): vibrations then count as events",
    )
    p.add_argument(
        "--no-contact-events",
        action="store_true",
        help="record covalent events only (not Li-S/Li-Cl contacts forming and breaking)",
    )
    p.add_argument("--blocks", type=int, default=5, help="time blocks for the block error of rates")
    p.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    p.add_argument(
        "--out",
        help="write every result (bonds, species, coordination, events, rates) to this netCDF file",
    )
    p.set_defaults(func=cmd_reactions)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def cmd_reactions(args) -> int:
    from atomtwin.toolkit.reactions import BREAK_FACTOR, FORM_FACTOR, reactions

    ds = open_input(args)
    r = reactions(
        ds,
        cutoffs=args.cutoff,
        pairs=args.pairs,
        covalent=args.covalent,
        form_factor=FORM_FACTOR if args.form_factor is None else args.form_factor,
        break_factor=BREAK_FACTOR if args.break_factor is None else args.break_factor,
        hysteresis=not args.no_hysteresis,
        contact_events=not args.no_contact_events,
    )
    res = r.summary(n_blocks=args.blocks)
    if args.out:
        from atomtwin.toolkit.cli.io_commands import write_result

        res["out"] = str(write_result(r.to_dataset(args.blocks), args.out, "--out"))
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(res)
        return 0
    lines = [
        f"{res['n_frames']} frames, {res['duration_ps']:.4g} ps; bonds: "
        + ", ".join(
            f"{p} {v['r_form']:.2f}/{v['r_break']:.2f} Å"
            for p, v in res["pairs"].items()
            if res["bonds"][p]["first"] or res["bonds"][p]["last"]
        )
    ]
    if "species" in res:
        lines.append(f"{'species':<14}{'first':>8}{'last':>8}   lifetime (ps)")
        for f, v in res["species"].items():
            lt = (
                ""
                if v["lifetime_ps"] is None
                else f"{_fmt(v['lifetime_ps'])} ± {_fmt(v['lifetime_err_ps'])}"
            )
            lines.append(f"{f:<14}{v['first']:>8}{v['last']:>8}   {lt or '> run'}")
    lines.append(f"{'bonds':<14}{'first':>8}{'last':>8}")
    for p, v in res["bonds"].items():
        if v["first"] or v["last"]:
            lines.append(f"{p:<14}{v['first']:>8}{v['last']:>8}")
    if res.get("reactions"):
        lines.append(f"{'reactions':<30}{'n':>6}")
        lines += [f"{eq:<30}{n:>6}" for eq, n in res["reactions"].items()]
    co = res["coordination"]
    changed = {k: v for k, v in co.items() if abs(v["last"] - v["first"]) > 1e-9}
    shown = changed or dict(list(co.items())[:8])
    if shown:
        what = "changed" if changed else "unchanged"
        lines.append(
            f"{'coordination':<14}{'first':>8}{'last':>8}   (mean per centre atom, {what})"
        )
        for k, v in shown.items():
            lines.append(f"{k:<14}{v['first']:>8.2f}{v['last']:>8.2f}")
    lines.append(f"{'events':<14}{'n':>8}   {'rate (1/ps)':<19}per bond (1/ps)")
    for name, v in res["events"].items():
        k = (
            ""
            if v["rate_constant"] is None
            else f"{_fmt(v['rate_constant'])} ± {_fmt(v['rate_constant_err'])}"
        )
        tag = "" if v["covalent"] else "(contact)"
        rate = f"{_fmt(v['rate'])} ± {_fmt(v['rate_err'])}"
        lines.append(f"{name:<14}{v['n_events']:>8}   {rate:<19}{k:<19}{tag}".rstrip())
    if args.out:
        lines.append(f"results written to {res['out']}")
    print("\n".join(lines))
    print(f"analysed {res['n_frames']} frames", file=sys.stderr)
    return 0
