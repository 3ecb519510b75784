"""``atomtwin scha config.yaml`` and ``atomtwin tdscha config.yaml``: thin wrappers over the API."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from atomtwin.engines.tdscha.config import RunConfig


def scha_start(cfg: RunConfig, system):
    """Keyword arguments of :func:`~atomtwin.engines.tdscha.scha.scha` for the configured start."""
    from atomtwin.toolkit.errors import ConfigError

    o, s, kw = cfg.scha, system, {}
    if o.start_centroid is not None:
        x = np.asarray(o.start_centroid, float)
        if x.shape != (s.n,):
            raise ConfigError(f"scha.start_centroid has {x.size} values; the system has {s.n} coordinates. "
                              f"Fix: give {s.n} Cartesian positions in Å.")
        kw["R0"] = s.to_mass_scaled(x)
    fc = o.start_force_constants
    if fc is not None:
        if isinstance(fc, str):
            p = Path(fc) if Path(fc).is_absolute() else Path(cfg.base_dir) / fc
            if not p.is_file():
                raise ConfigError(f"scha.start_force_constants: the file '{p}' does not exist. Fix: give a "
                                  ".npy file of the (n, n) force constants in eV/Å², or the matrix itself.")
            fc = np.load(p)
        K = np.asarray(fc, float)
        if K.shape != (s.n, s.n):
            raise ConfigError(f"scha.start_force_constants has shape {K.shape}; expected ({s.n}, {s.n}) "
                              "in eV/Å². Fix: give one row per coordinate.")
        Km = 0.5 * (K + K.T) / s.sqrt_m[:, None] / s.sqrt_m[None, :]
        phi = s.basis.T @ Km @ s.basis
        if np.linalg.eigvalsh(phi)[0] <= 0:
            raise ConfigError("scha.start_force_constants is not positive definite on the fluctuation space. "
                              "Fix: give stable force constants, or start_frequencies instead.")
        kw["phi0"] = phi
    if o.start_frequencies is not None:
        f = np.atleast_1d(np.asarray(o.start_frequencies, float))
        if f.size not in (1, s.n_reduced):
            raise ConfigError(f"scha.start_frequencies has {f.size} values; give 1 or {s.n_reduced} (THz).")
        kw["frequencies0"] = f if f.size > 1 else float(f[0])
    return kw


def run_scha_config(cfg: RunConfig, scan_centroid=None):
    """Static SCHA from a :class:`RunConfig`; returns (system, model, provider, SCHAResult).

    Raises :class:`~atomtwin.engines.tdscha.scha.SCHANotConverged` when no start converges.
    """
    from atomtwin.engines.tdscha.scha import scha

    system, model, provider = cfg.build()
    o, a = cfg.scha, cfg.averages
    kw = {"model": model} if a.kind == "exact" else {"provider": provider, "n_configs": a.n_configs,
                                                      "rng": a.seed}
    scan = o.scan_centroid if scan_centroid is None else scan_centroid
    res = scha(system, cfg.temperature, mixing=o.mixing, max_iter=o.max_iter, tol=o.tol,
               ess_threshold=o.ess_threshold, fix_centroid=o.fix_centroid, min_frequency=o.min_frequency,
               scan_centroid=scan, n_jackknife=o.n_jackknife, **scha_start(cfg, system), **kw)
    return system, model, provider, res


def run_tdscha_config(cfg: RunConfig, output: str | None = None):
    """SCHA equilibrium at T, then TD-SCHA under the pulse (and classical MD when asked).

    Returns (tdscha Dataset, classical Dataset or None).
    """
    from atomtwin.engines.tdscha.averages import EnsembleAverager, ExactAverager
    from atomtwin.engines.tdscha.pulses import make_pulse
    from atomtwin.engines.tdscha.runner import run_classical, run_tdscha, write_result

    system, model, provider, res = run_scha_config(cfg)
    a, o = cfg.averages, cfg.tdscha
    avg = (ExactAverager(model, system) if a.kind == "exact"
           else EnsembleAverager(provider, system, a.n_configs, a.seed, a.correlated))
    pulse = make_pulse(cfg.pulse)
    screening = (cfg.pulse or {}).get("screening")
    out = output or cfg.output
    attrs = {"temperature_K": cfg.temperature, "scha_free_energy_eV": res.free_energy,
             "scha_converged": int(res.converged)}
    ds = run_tdscha(system, res.state(), avg, o.dt, o.n_steps, pulse=pulse, screening=screening,
                    output_every=o.output_every, covariances=o.covariances, max_omega_dt=o.max_omega_dt,
                    output=out, attrs=attrs)
    classical = None
    if cfg.classical:
        classical = run_classical(system, provider, o.dt, o.n_steps, x_init=system.to_cartesian(res.R),
                                  pulse=pulse, screening=screening, output_every=o.output_every)
        if out is not None:
            p = Path(out)
            write_result(classical, p.with_name(p.stem + ".classical" + p.suffix))
    return ds, classical


def _check_output(out) -> None:
    """Refuse an output name that cannot be written before the run, not after it."""
    if out is None:
        return
    from atomtwin.toolkit.errors import InputError

    p = Path(out)
    if p.suffix not in (".nc", ".zarr"):
        raise InputError(f"output '{p}' must be named *.nc (netCDF) or *.zarr. Fix: --out run.nc.")
    if not p.parent.is_dir():
        raise InputError(f"the folder of output '{p}' does not exist. Fix: create '{p.parent}' first.")
    if p.is_dir() and not any((p / m).exists() for m in (".zgroup", ".zmetadata", "zarr.json")):
        raise InputError(f"output '{p}' is a folder that is not a zarr store; it is left as it is. "
                         "Fix: give another output name, or move the folder away.")


def _scha_cmd(args) -> int:
    from atomtwin.engines.tdscha.providers import TDSCHAError
    from atomtwin.toolkit.cli import CLIError, emit_json

    cfg = RunConfig.from_yaml(args.config)
    out = args.out or cfg.output
    _check_output(out)
    try:
        _, _, _, res = run_scha_config(cfg, scan_centroid=True if args.scan_centroid else None)
    except TDSCHAError as err:  # SCHANotConverged included: one line, exit 2
        raise CLIError(str(err)) from err
    if out is not None:
        from atomtwin.engines.tdscha.runner import write_result

        write_result(res.to_dataset(), out)
    ferr = res.frequency_error if res.frequency_error is not None else np.zeros(res.frequencies.size)
    minima = [{"free_energy_eV": m["free_energy"], "free_energy_error_eV": m["free_energy_error"],
               "centroid_A": np.round(m["centroid"], 6).tolist(), "converged": bool(m["converged"]),
               "start": m["start"]} for m in res.minima]
    summary = {"free_energy_eV": res.free_energy, "free_energy_error_eV": res.free_energy_error,
               "converged": res.converged, "iterations": len(res.history["free_energy"]),
               "frequencies_THz": np.round(res.frequencies, 6).tolist(),
               "frequency_errors_THz": np.round(ferr, 6).tolist(),
               "centroid_A": res.system.to_cartesian(res.R).tolist(), "minima": minima, "output": out}
    if args.json:
        emit_json(summary)
    else:
        print(f"SCHA at {cfg.temperature} K: F = {res.free_energy:.6f} +- {res.free_energy_error:.1e} eV "
              f"(converged, {summary['iterations']} iterations)", file=sys.stderr)
        sampled = res.frequency_error is not None
        print("frequencies (THz): " + " ".join(f"{f:.3f}" + (f" +- {e:.3f}" if sampled else "")
                                               for f, e in zip(res.frequencies, ferr, strict=True)),
              file=sys.stderr)
        if len(minima) > 1:
            print(f"{len(minima)} minima found (lowest first"
                  + ("; F from the ensembles that ranked them" if sampled else "") + "):", file=sys.stderr)
            for m in minima:
                amb = " (ranking not resolved within the errors)" if res.minima[minima.index(m)].get("ambiguous") else ""
                print(f"  F = {m['free_energy_eV']:.6f} eV at {m['centroid_A'][:6]} Å{amb}"
                      f"{'' if m['converged'] else ' (NOT converged)'}  [start: {m['start']}]", file=sys.stderr)
    return 0


def _tdscha_cmd(args) -> int:
    from atomtwin.engines.tdscha.providers import TDSCHAError
    from atomtwin.toolkit.cli import CLIError, emit_json

    cfg = RunConfig.from_yaml(args.config)
    out = args.out or cfg.output
    _check_output(out)
    try:
        ds, cl = run_tdscha_config(cfg, out)
    except TDSCHAError as err:
        kept = f" The trajectory up to that step is in '{out}'." if out and err.partial is not None else ""
        raise CLIError(f"{err}{kept}") from err
    e = ds.energy.values - ds.work.values
    summary = {"frames": int(ds.sizes["frame"]), "time_ps": float(ds.time.values[-1]),
               "energy_drift_eV": float(np.max(np.abs(e - e[0]))), "output": out,
               "final_centroid_A": ds.centroid.values[-1].tolist()}
    if cl is not None:
        summary["classical_final_A"] = cl.centroid.values[-1].tolist()
    if args.json:
        emit_json(summary)
    else:
        print(f"TD-SCHA: {summary['frames']} frames to {summary['time_ps']:.4g} ps, max |E - W - E0| = "
              f"{summary['energy_drift_eV']:.3g} eV -> {out}", file=sys.stderr)
    return 0


def _add(sub, name: str, help_: str, func):
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("config", help="YAML configuration (see atomtwin.engines.tdscha.config)")
    p.add_argument("--out", default=None, help="output file (*.nc or *.zarr); default: the config's 'output'")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=func)
    return p


def register_scha(sub) -> None:
    """``atomtwin scha config.yaml``: static SCHA free energy and frequencies."""
    p = _add(sub, "scha", "static SCHA: Gaussian variational free energy and phonons at T", _scha_cmd)
    p.add_argument("--scan-centroid", action="store_true",
                   help="also start from symmetry-broken centroids (classical minima along the 3 softest "
                        "modes); every minimum found is listed, the lowest is the result")


def register_tdscha(sub) -> None:
    """``atomtwin tdscha config.yaml``: TD-SCHA quantum nuclear dynamics under a pulse."""
    _add(sub, "tdscha", "TD-SCHA quantum nuclear dynamics under a THz pulse", _tdscha_cmd)
