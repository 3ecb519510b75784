"""``atomtwin environments TRAJ``: classify local environments, match references, save labels."""

from __future__ import annotations

import sys
from contextlib import contextmanager


def register(sub) -> None:
    from atomtwin.toolkit.cli.io_commands import add_reader_arguments

    p = sub.add_parser(
        "environments", help="unsupervised classification of local atomic environments"
    )
    p.add_argument("traj")
    add_reader_arguments(p)
    p.add_argument("--species", nargs="+", help="centre species (default: all)")
    p.add_argument("--neighbours", nargs="+", help="neighbour species (default: all)")
    p.add_argument("--descriptor", default="soap", choices=("soap", "acsf"))
    p.add_argument("--r-cut", type=float, default=4.5, help="descriptor cutoff in Å")
    p.add_argument("--method", default="gmm", choices=("gmm", "kmeans", "hdbscan"))
    p.add_argument("--n-clusters", type=int, help="fixed number of clusters (default: BIC for gmm)")
    p.add_argument("--n-fit", type=int, help="environments in the fit subsample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--references", help="extxyz of reference crystals (info 'name' per frame)")
    p.add_argument("--rattle", type=float, default=0.08, help="reference rattle in Å")
    p.add_argument(
        "--site-species",
        help="split each reference into sites by its neighbours of these species within "
        "--site-shell (e.g. P,S: a crystal's S bonded to P and its free S are two references)",
    )
    p.add_argument(
        "--site-shell", type=float, default=3.0, help="shell of --site-species in Å (3.0)"
    )
    p.add_argument("--axis", choices=("x", "y", "z"), help="also compute profiles along this axis")
    p.add_argument("--out", help="labels and results (*.nc)")
    p.add_argument("--save-pipeline", help="pickle the fitted pipeline here")
    p.add_argument("--pipeline", help="reuse a saved pipeline instead of fitting")
    p.add_argument(
        "--cache",
        nargs="?",
        const=True,
        metavar="DIR",
        help="reuse descriptors across runs: a folder, or the user cache dir when no folder is given",
    )
    p.add_argument(
        "--chunk-frames",
        type=int,
        help="frames per task (default: about 64 MB of descriptors); also the cache's unit",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="processes: 1 = this one; N >= 2 starts a local dask cluster of N single-thread "
        "worker processes, so the descriptors (which hold Python's GIL) use N cores; default: "
        f"every usable core from {AUTO_WORKERS_ENVIRONMENTS:,} environments on, else 1",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_environments)


AUTO_WORKERS_ENVIRONMENTS = 200_000  # ~10 s of SOAP on one core: worth a ~2 s worker start


def auto_workers(ds, species) -> int:
    """Worker processes for ``--workers`` not given: every usable core for a trajectory of at
    least :data:`AUTO_WORKERS_ENVIRONMENTS` environments (centres x frames), else 1."""
    import os

    import numpy as np
    from atomtwin.toolkit import schema as S

    symbols = np.asarray(ds[S.SPECIES].values).astype(str)
    centres = symbols.size if not species else int(np.isin(symbols, species).sum())
    if centres * int(ds.sizes[S.FRAME]) < AUTO_WORKERS_ENVIRONMENTS:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, int(cpus or 1))


@contextmanager
def local_cluster(n_workers: int):
    """A dask distributed client on ``n_workers`` local single-thread processes for the
    duration of the block (none for ``n_workers <= 1``); on leaving (also on Ctrl-C or an
    error) the client and every worker process are closed."""
    if n_workers <= 1:
        yield None
        return
    import logging
    import signal
    import threading

    from distributed import Client, LocalCluster

    # The workers start with Ctrl-C ignored (an ignored signal stays ignored in a spawned
    # process): a Ctrl-C in a terminal reaches every process of the group, and only this one
    # should act on it, by cancelling the tasks and closing the workers (no traceback from
    # each worker).  A Ctrl-C during the ~1 s start of the workers is ignored too.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    with cluster, Client(cluster) as client:
        yield client


def check_arguments(args) -> None:
    """Refuse impossible option values before the (long) fit starts."""
    from pathlib import Path

    from atomtwin.toolkit.errors import InputError

    if not args.r_cut > 0:
        raise InputError(f"--r-cut must be > 0 Å, got {args.r_cut}.")
    for flag, value in (("--n-clusters", args.n_clusters), ("--n-fit", args.n_fit)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}.")
    if args.chunk_frames is not None and args.chunk_frames < 1:
        raise InputError(f"--chunk-frames must be >= 1, got {args.chunk_frames}.")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}.")
    if args.rattle < 0:
        raise InputError(f"--rattle must be >= 0 Å, got {args.rattle}.")
    if args.site_shell <= 0:
        raise InputError(f"--site-shell must be > 0 Å, got {args.site_shell}.")
    if args.site_species is not None and not args.references:
        raise InputError("--site-species needs --references. Fix: give the reference crystals.")
    if args.out:
        out = Path(args.out)
        if not out.name.lower().endswith((".nc", ".nc4")) or out.is_dir():
            raise InputError(f"--out '{out}' must be a netCDF file name (*.nc), not a folder.")
        if not out.parent.is_dir():
            raise InputError(
                f"the folder of --out '{out}' does not exist. Fix: create '{out.parent}' first."
            )
    for flag, path in (("--pipeline", args.pipeline), ("--references", args.references)):
        if path and not Path(path).is_file():
            raise InputError(f"{flag} '{path}': no such file.")


def cmd_environments(args) -> int:
    import numpy as np
    from atomtwin.toolkit.cli.io_commands import open_input, require_species, write_result
    from atomtwin.toolkit.environments import (
        ACSF,
        SOAP,
        EnvironmentClassifier,
        identify_phases,
        phase_fractions,
        spatial_profiles,
    )

    check_arguments(args)
    ds = open_input(args, lazy=True)
    require_species(ds, species=args.species, neighbours=args.neighbours)
    workers = args.workers if args.workers is not None else auto_workers(ds, args.species)
    with local_cluster(workers):
        if args.pipeline:
            clf = EnvironmentClassifier.load(args.pipeline)
            clf.cache = args.cache if args.cache else getattr(clf, "cache", None)
            if args.chunk_frames:
                clf.chunk_frames = args.chunk_frames
            labels = clf.predict(ds)
        else:
            desc = SOAP(r_cut=args.r_cut) if args.descriptor == "soap" else ACSF(r_cut=args.r_cut)
            clf = EnvironmentClassifier(
                desc,
                species=args.species,
                neighbours=args.neighbours,
                method=args.method,
                n_clusters=args.n_clusters,
                n_fit=args.n_fit,
                seed=args.seed,
                cache=args.cache,
                chunk_frames=args.chunk_frames,
            )
            labels = clf.fit_predict(ds)
    frac = phase_fractions(labels)
    out = labels.to_dataset(name="labels")
    out["fraction"] = frac
    summary = {
        "traj": str(args.traj),
        "frames": int(labels.sizes["frame"]),
        "n_clusters": clf.n_clusters_,
        "method": clf.method,
        "mean_fraction": {
            int(k): float(v)
            for k, v in zip(frac.cluster.values, frac.mean("frame").values, strict=True)
        },
    }
    if args.axis:
        out["profile"] = spatial_profiles(ds, labels, axis=args.axis)
    if args.references:
        sites = (
            None
            if args.site_species is None
            else tuple(x.strip() for x in args.site_species.split(",") if x.strip())
        )
        ph = identify_phases(
            clf,
            args.references,
            rattle=args.rattle,
            seed=args.seed,
            site_species=sites,
            site_shell=args.site_shell,
        )
        out["nearest_reference"] = ph["nearest_reference"]
        out["is_new"] = ph["is_new"].astype(np.int8)
        out["distance"] = ph["distance"]
        summary["phases"] = [
            {
                "cluster": int(k),
                "nearest_reference": str(r),
                "distance": float(d),
                "is_new": bool(n),
            }
            for k, r, d, n in zip(
                ph.cluster.values,
                ph.nearest_reference.values,
                ph.distance.values,
                ph.is_new.values,
                strict=True,
            )
        ]
    if args.out:
        write_result(out, args.out, "--out")
        summary["out"] = str(args.out)
    if args.save_pipeline:
        summary["pipeline"] = str(clf.save(args.save_pipeline))
    if args.json:
        from atomtwin.toolkit.cli import emit_json

        emit_json(summary)
    else:
        print(f"{args.traj}: {clf.n_clusters_} clusters ({clf.method})", file=sys.stderr)
        for k, v in summary["mean_fraction"].items():
            print(f"  cluster {k:3d}: mean fraction {v:.3f}")
        for p in summary.get("phases", []):
            tag = "NEW?" if p["is_new"] else p["nearest_reference"]
            print(f"  cluster {p['cluster']:3d}: {tag} (distance {p['distance']:.2f})")
    return 0
