"""Run many state points as a dask ensemble and gather them into one Dataset.

The toolkit never imports an engine: each state point is run by a *point function*
``run_point(P, T, protocol, seed) -> xarray.Dataset`` (a trajectory in our schema), given
as a callable or as an import string ``"package.module:function"`` (e.g.
``"atomtwin.engines.studies.phase_points:run_point"``).  The driver

- builds the tasks: a (P, T) grid, heating/cooling ramps (each step starts from the
  last frame of the previous one: ``protocol["initial"]``), two-phase coexistence runs;
- runs them with dask on threads, processes or a ``dask.distributed`` cluster by address;
- stores each finished point on disk (``<workdir>/<key>/summary.nc``, written atomically)
  so a killed ensemble resumes without rerunning finished points;
- reports failed or blown-up points (``failed.json`` beside them) and leaves them out of
  every average;
- gathers the order parameters into one Dataset indexed by ``pressure`` and ``temperature``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

import numpy as np
import xarray as xr
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.phases.spec import PhaseSpec

SUMMARY = "summary.nc"
FAILED = "failed.json"


def resolve(fn: str | Callable) -> Callable:
    """A point function from a callable or ``"package.module:function"``."""
    if callable(fn):
        return fn
    if not isinstance(fn, str) or ":" not in fn:
        raise InputError(
            f"point function {fn!r} is neither a callable nor an import string. "
            "Fix: give 'package.module:function', e.g. 'atomtwin.engines.studies.phase_points:run_point'."
        )
    mod, _, name = fn.partition(":")
    try:
        m = import_module(mod)
    except ModuleNotFoundError as err:
        raise InputError(
            f"cannot import '{mod}' for point function '{fn}': {err}. "
            "Fix: check the module path and that it is installed."
        ) from err
    if not hasattr(m, name):
        raise InputError(f"module '{mod}' has no function '{name}' (point function '{fn}').")
    return getattr(m, name)


def protocol_hash(protocol: dict, fn: str | Callable) -> str:
    """Short hash of the protocol and point function: a stored point is reused only when it matches."""
    name = (
        fn
        if isinstance(fn, str)
        else f"{getattr(fn, '__module__', '')}:{getattr(fn, '__qualname__', fn)}"
    )
    clean = {k: v for k, v in protocol.items() if k not in ("output", "initial")}
    text = json.dumps({"fn": name, "protocol": clean}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Task:
    """One state point: key (its folder name), kind, P (GPa), T (K), seed, ramp label and step."""

    key: str
    kind: str  # "grid", "ramp", "coexistence"
    P: float
    T: float
    seed: int
    ramp: str = ""
    step: int = 0


def build_tasks(spec: PhaseSpec) -> list[Task]:
    """The tasks of a spec, in a deterministic order (grid, then ramps, then coexistence)."""
    tasks: list[Task] = []
    for a, P in enumerate(spec.pressures or [np.nan]):
        for b, T in enumerate(spec.temperatures):
            seed = spec.seed + 1000 * a + b
            tasks.append(Task(f"grid_P{P:g}_T{T:g}", "grid", float(P), float(T), seed))
    for r, ramp in enumerate(spec.ramps):
        temps = list(ramp["temperatures"])
        if ramp["direction"] == "cooling":
            temps = sorted(temps, reverse=True)
        elif ramp["direction"] == "heating":
            temps = sorted(temps)
        label = f"{ramp['direction']}_P{ramp['pressure']:g}"
        for s, T in enumerate(temps):
            tasks.append(
                Task(
                    f"ramp_{label}_{s:03d}_T{T:g}",
                    "ramp",
                    float(ramp["pressure"]),
                    float(T),
                    spec.seed + 10**6 + 1000 * r,
                    label,
                    s,
                )
            )
    for c, co in enumerate(spec.coexistence):
        tasks.append(
            Task(
                f"coex_P{co['pressure']:g}_T{co['temperature']:g}",
                "coexistence",
                float(co["pressure"]),
                float(co["temperature"]),
                spec.seed + 2 * 10**6 + c,
            )
        )
    return tasks


def _write_atomic(ds: xr.Dataset, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, path)


def load_point(folder: Path, expect_hash: str | None = None) -> dict | None:
    """A stored point as a result dict, or None when it has not finished."""
    folder = Path(folder)
    if (folder / SUMMARY).exists():
        with xr.open_dataset(folder / SUMMARY, engine="h5netcdf") as s:
            s = s.load()
        if expect_hash and s.attrs.get("protocol_hash") != expect_hash:
            raise InputError(
                f"'{folder}' holds a point run with another protocol or point function "
                f"(hash {s.attrs.get('protocol_hash')} != {expect_hash}). "
                "Fix: use a new workdir, or delete that folder to rerun it."
            )
        return {"status": "ok", "summary": s, "folder": str(folder)}
    if (folder / FAILED).exists():
        return {
            "status": "failed",
            **json.loads((folder / FAILED).read_text()),
            "folder": str(folder),
        }
    return None


def run_task(
    fn: str | Callable,
    task: Task,
    protocol: dict,
    folder: str,
    analysis: dict,
    phash: str,
    previous: dict | None = None,
) -> dict:
    """Run one point (on a worker): simulate, check, summarise, store.  Never raises for a
    failed simulation: the failure is stored and returned."""
    from atomtwin.toolkit import schema as S
    from atomtwin.toolkit.phases.summary import coexistence, summarize

    folder = Path(folder)
    done = load_point(folder)
    if done is not None and done["status"] == "ok":
        return done
    folder.mkdir(parents=True, exist_ok=True)
    proto = dict(protocol)
    proto["output"] = str(folder / "traj.zarr")
    if task.kind == "coexistence":
        proto["kind"] = "coexistence"
    if previous is not None:
        if previous.get("status") != "ok":
            return _fail(folder, task, f"previous ramp step failed ({previous.get('reason', '?')})")
        proto["initial"] = previous["folder"] + "/traj.zarr"
    for stale in (folder / "traj.zarr", folder / "traj.zarr.partial"):
        if stale.exists():
            import shutil

            shutil.rmtree(stale, ignore_errors=True)
    try:
        ds = resolve(fn)(task.P, task.T, proto, task.seed)
        S.validate(ds, check_finite=True)
        if "energy" in ds and not np.all(np.isfinite(ds["energy"].values)):
            raise RuntimeError("non-finite energies in the trajectory")
        if task.kind == "coexistence":
            summ = coexistence(ds, **analysis.get("coexistence", {}))
        else:
            summ = summarize(ds, **analysis.get("summary", {}))
    except Exception as err:  # a failed or blown-up point is reported, not fatal
        return _fail(folder, task, f"{type(err).__name__}: {err}")
    summ.attrs.update(
        key=task.key,
        kind=task.kind,
        pressure_target=task.P,
        temperature_target=task.T,
        seed=task.seed,
        ramp=task.ramp,
        step=task.step,
        protocol_hash=phash,
    )
    _write_atomic(summ, folder / SUMMARY)
    (folder / FAILED).unlink(missing_ok=True)
    return {"status": "ok", "summary": summ, "folder": str(folder)}


def _fail(folder: Path, task: Task, reason: str) -> dict:
    info = {"key": task.key, "P": task.P, "T": task.T, "seed": task.seed, "reason": reason}
    tmp = folder / f".{FAILED}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, folder / FAILED)
    return {"status": "failed", **info, "folder": str(folder)}


@dataclass
class EnsembleResult:
    """Gathered results: ``grid`` (pressure, temperature), ``ramps`` {label: Dataset on
    temperature}, ``coexistence`` (Dataset on ``point``), ``failed`` (list of dicts),
    ``n_run`` points simulated now and ``n_reused`` taken from disk."""

    grid: xr.Dataset | None
    ramps: dict[str, xr.Dataset] = field(default_factory=dict)
    coexistence: xr.Dataset | None = None
    failed: list[dict] = field(default_factory=list)
    n_run: int = 0
    n_reused: int = 0


def _progress_printer(total: int, stream=sys.stderr):
    state = {"n": 0}

    def report(key: str, status: str) -> None:
        state["n"] += 1
        print(f"[phases] {state['n']}/{total} {key}: {status}", file=stream, flush=True)

    return report


def run_ensemble(
    spec: PhaseSpec,
    *,
    client=None,
    progress: Callable[[str, str], None] | bool = True,
    retry_failed: bool = False,
) -> EnsembleResult:
    """Run (or resume) the ensemble of ``spec`` and gather its results.

    Parameters
    ----------
    spec
        :class:`~atomtwin.toolkit.phases.spec.PhaseSpec` (``PhaseSpec.from_yaml(path)``).
    client
        A ``distributed.Client`` to run on (overrides ``spec.scheduler``/``spec.address``).
    progress
        True: a line on stderr per finished point; a callable ``(key, status)``; False: quiet.
    retry_failed
        Rerun points stored as failed (default: report them again, do not rerun).

    Returns
    -------
    EnsembleResult
    """
    import dask

    resolve(spec.point_function)  # a clear error now rather than one failure per point
    workdir = Path(spec.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    phash = protocol_hash(spec.protocol, spec.point_function)
    tasks = build_tasks(spec)
    analysis = {"summary": spec.summary, "coexistence": spec.coexistence_analysis}
    results: dict[str, dict] = {}
    todo: list[Task] = []
    for t in tasks:
        stored = load_point(workdir / t.key, phash)
        if stored is not None and (stored["status"] == "ok" or not retry_failed):
            results[t.key] = stored
        else:
            if stored is not None:
                (workdir / t.key / FAILED).unlink(missing_ok=True)
            todo.append(t)
    n_reused = len(results)
    report = _progress_printer(len(todo)) if progress is True else (progress or None)

    delayed: dict[str, object] = {}
    fn = spec.point_function
    # task keys unique to this call: a distributed scheduler keeps results by key, and a
    # second ensemble on the same client (another workdir or protocol) must never receive
    # the first one's result for an equal point key
    import uuid

    tag = uuid.uuid4().hex[:10]
    for t in todo:
        prev = None
        if t.kind == "ramp" and t.step > 0:
            pkey = next(
                x.key
                for x in tasks
                if x.kind == "ramp" and x.ramp == t.ramp and x.step == t.step - 1
            )
            prev = delayed.get(pkey)
            if prev is None and pkey in results:  # a stored step: pass only what the next needs
                prev = {k: v for k, v in results[pkey].items() if k != "summary"}
        delayed[t.key] = dask.delayed(run_task, pure=False)(
            fn,
            t,
            spec.protocol,
            str(workdir / t.key),
            analysis,
            phash,
            prev,
            dask_key_name=f"phasepoint-{tag}-{t.key}",
        )
    if todo:
        if client is None and spec.scheduler == "distributed":
            client = connect(spec.address)
        out = _execute(delayed, client, spec, report)
        results.update(out)
    return gather(tasks, results, spec, n_run=len(todo), n_reused=n_reused)


def connect(address: str | None, timeout: float = 10.0):
    """A ``distributed.Client`` for a scheduler address; a clear error when nothing answers."""
    from distributed import Client

    if not address:
        raise InputError(
            "scheduler 'distributed' needs an address. Fix: give --cluster tcp://HOST:PORT."
        )
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(
            f"no dask scheduler answers at '{address}' ({type(err).__name__}: {err}). "
            "Fix: start one (`dask scheduler` and `dask worker ADDRESS`), check the address, or run "
            "locally without --cluster. Finished points in the workdir are kept."
        ) from err


def _execute(delayed: dict, client, spec: PhaseSpec, report) -> dict[str, dict]:
    import dask

    keys = list(delayed)
    if client is not None:
        from distributed import as_completed

        futures = client.compute([delayed[k] for k in keys])
        index = {f.key: k for f, k in zip(futures, keys, strict=True)}
        out = {}
        try:
            for fut in as_completed(futures):
                res = fut.result()
                out[index[fut.key]] = res
                if report:
                    report(index[fut.key], res["status"])
        except BaseException:  # Ctrl-C: drop the queued points (finished ones are on disk)
            client.cancel(futures)
            raise
        return out
    from dask.callbacks import Callback

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            name = key[0] if isinstance(key, tuple) else key
            if report and isinstance(name, str) and name.startswith("phasepoint-"):
                report(name.split("-", 2)[2], result["status"])

    scheduler = {"serial": "sync", "threads": "threads", "processes": "processes"}[spec.scheduler]
    kw = {"num_workers": spec.n_workers} if scheduler != "sync" else {}
    if scheduler == "processes":
        # one point per dispatch: dask's process pool otherwise sends tasks in batches of 6
        # (its ``chunksize``), so 16 points on 2 workers run as 6 + 4 on one worker and 6 on
        # the other (wall time of 10 points instead of 8); a point takes seconds, the
        # dispatch microseconds
        kw["chunksize"] = 1
    with _Progress():
        values = dask.compute(*[delayed[k] for k in keys], scheduler=scheduler, **kw)
    return dict(zip(keys, values, strict=True))


def _row(res: dict | None) -> dict:
    if res is None or res.get("status") != "ok":
        return {}
    s = res["summary"]
    return {k: float(v) for k, v in s.data_vars.items() if v.ndim == 0}


def gather(
    tasks: list[Task],
    results: dict[str, dict],
    spec: PhaseSpec,
    *,
    n_run: int = 0,
    n_reused: int = 0,
) -> EnsembleResult:
    """Assemble stored/returned point results into Datasets; failed points become NaN
    with ``status`` = "failed" and are listed in ``failed``."""
    from atomtwin.toolkit.phases.summary import FEATURES

    failed = [dict(r) for r in results.values() if r.get("status") == "failed"]
    for f in failed:
        f.pop("summary", None)
    units = {
        f"{k}_measured" if k in ("pressure", "temperature") else k: u for k, u in FEATURES.items()
    }

    def rename(row: dict) -> dict:
        return {
            f"{k}_measured" if k in ("pressure", "temperature") else k: v for k, v in row.items()
        }

    extra = sorted(
        {
            k
            for r in results.values()
            if r.get("status") == "ok"
            for k in rename(_row(r))
            if k not in units
        }
    )
    units.update(dict.fromkeys(extra, "1"))  # e.g. env_fraction_<k> from summarize(environments=)
    grid = None
    gt = [t for t in tasks if t.kind == "grid"]
    if gt:
        P = np.array(sorted({t.P for t in gt}))
        T = np.array(sorted({t.T for t in gt}))
        data = {k: np.full((P.size, T.size), np.nan) for k in units}
        status = np.full((P.size, T.size), "missing", dtype=object)
        for t in gt:
            a = 0 if np.isnan(t.P) else int(np.searchsorted(P, t.P))
            b = int(np.searchsorted(T, t.T))
            res = results.get(t.key)
            status[a, b] = "missing" if res is None else res["status"]
            for k, v in rename(_row(res)).items():
                if k in data:
                    data[k][a, b] = v
        grid = xr.Dataset(
            {k: (("pressure", "temperature"), v, {"units": units[k]}) for k, v in data.items()},
            coords={
                "pressure": ("pressure", P, {"units": "GPa"}),
                "temperature": ("temperature", T, {"units": "K"}),
            },
        )
        grid["status"] = (("pressure", "temperature"), status.astype(str))
        grid.attrs["n_failed"] = int((status == "failed").sum())
    ramps = {}
    for label in dict.fromkeys(t.ramp for t in tasks if t.kind == "ramp"):
        rt = sorted((t for t in tasks if t.ramp == label), key=lambda t: t.step)
        rows = [rename(_row(results.get(t.key))) for t in rt]
        ds = xr.Dataset(
            {
                k: (("step",), np.array([r.get(k, np.nan) for r in rows]), {"units": units[k]})
                for k in units
            },
            coords={
                "temperature": ("step", [t.T for t in rt], {"units": "K"}),
                "step": np.arange(len(rt)),
            },
            attrs={"pressure": rt[0].P, "direction": label.split("_")[0]},
        )
        ds["status"] = ("step", [results.get(t.key, {}).get("status", "missing") for t in rt])
        ramps[label] = ds
    coex = None
    ct = [t for t in tasks if t.kind == "coexistence"]
    if ct:
        rows = [_row(results.get(t.key)) for t in ct]
        names = [
            "temperature",
            "temperature_sem",
            "pressure",
            "pressure_sem",
            "pressure_normal",
            "pressure_normal_sem",
            "liquid_density",
            "solid_density",
            "solid_fraction_first",
            "solid_fraction_last",
            "coexisting",
        ]
        cunits = {
            "temperature": "K",
            "temperature_sem": "K",
            "pressure": "GPa",
            "pressure_sem": "GPa",
            "pressure_normal": "GPa",
            "pressure_normal_sem": "GPa",
            "liquid_density": "1/Å^3",
            "solid_density": "1/Å^3",
        }
        coex = xr.Dataset(
            {
                k: (
                    ("point",),
                    np.array([r.get(k, np.nan) for r in rows]),
                    {"units": cunits.get(k, "1")},
                )
                for k in names
            },
            coords={
                "pressure_target": ("point", [t.P for t in ct], {"units": "GPa"}),
                "temperature_target": ("point", [t.T for t in ct], {"units": "K"}),
            },
        )
        coex["status"] = ("point", [results.get(t.key, {}).get("status", "missing") for t in ct])
    return EnsembleResult(grid, ramps, coex, failed, n_run, n_reused)
