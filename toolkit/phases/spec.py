"""The phase-diagram spec: what to run, how, and where (readable from YAML).

Example ``spec.yaml``::

    point_function: atomtwin.engines.studies.phase_points:run_point   # run_point(P, T, protocol, seed) -> Dataset
    pressures: [0.05, 0.2, 0.4]                 # GPa
    temperatures: [80, 120, 160, 200]           # K
    protocol: {kind: npt, cells: [4, 4, 4], steps: 1000}
    ramps:                                      # optional heating/cooling ramps
      - {pressure: 0.1, temperatures: [80, 120, 160, 200], direction: both}
    coexistence:                                # optional two-phase runs
      - {pressure: 0.2, temperature: 160}
    seed: 1
    workdir: phase-runs                          # finished points are kept here
    scheduler: threads                           # serial | threads | processes | distributed
    n_workers: 2
    address: null                                # tcp://host:8786 for distributed
    summary: {window: 0.5}                       # options of atomtwin.toolkit.phases.summarize
    classify: {method: kmeans, n_phases: 2, features: [q6_bar, diffusion], names: {q6_bar: [liquid, solid]}}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

SCHEDULERS = ("serial", "threads", "processes", "distributed")


@dataclass(frozen=True)
class PhaseSpec:
    """A validated phase-diagram ensemble (pressures in GPa, temperatures in K)."""

    point_function: str | Callable
    temperatures: tuple[float, ...] = ()
    pressures: tuple[float, ...] = ()
    protocol: dict = field(default_factory=dict)
    ramps: tuple[dict, ...] = ()
    coexistence: tuple[dict, ...] = ()
    seed: int = 0
    workdir: str = "phase-runs"
    scheduler: str = "threads"
    n_workers: int = 2
    address: str | None = None
    summary: dict = field(default_factory=dict)
    coexistence_analysis: dict = field(default_factory=dict)
    classify: dict = field(default_factory=dict)
    needs_pressure: bool | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "temperatures", tuple(float(t) for t in self.temperatures))
        set_(self, "pressures", tuple(float(p) for p in self.pressures))
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler {self.scheduler!r} unknown; use one of {SCHEDULERS}.")
        if self.scheduler == "distributed" and not self.address:
            raise ValueError("scheduler 'distributed' needs an address (e.g. tcp://host:8786).")
        if self.address and self.scheduler != "distributed":
            set_(self, "scheduler", "distributed")
        if any(not np.isfinite(t) or t <= 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be positive (K), got {self.temperatures}.")
        needs_p = self.needs_pressure
        if needs_p is None:
            needs_p = self.protocol.get("kind", "npt") != "nvt"
        if self.temperatures and needs_p and not self.pressures:
            raise ValueError(
                f"the protocol ({self.protocol.get('kind', 'npt')}) runs at constant pressure but the "
                "spec gives no 'pressures'. Fix: add pressures: [..] in GPa, or use protocol kind 'nvt'."
            )
        if not self.temperatures and not self.ramps and not self.coexistence:
            raise ValueError("the spec runs nothing: give temperatures (with pressures), ramps or coexistence.")
        ramps = []
        for r in self.ramps:
            r = dict(r)
            missing = {"pressure", "temperatures"} - set(r)
            if missing:
                raise ValueError(f"ramp {r} lacks {sorted(missing)}.")
            d = r.get("direction", "both")
            if d not in ("heating", "cooling", "both"):
                raise ValueError(f"ramp direction {d!r} unknown; use heating, cooling or both.")
            for dd in (("heating", "cooling") if d == "both" else (d,)):
                ramps.append({**r, "direction": dd, "pressure": float(r["pressure"]),
                              "temperatures": [float(t) for t in r["temperatures"]]})
        set_(self, "ramps", tuple(ramps))
        for c in self.coexistence:
            if "pressure" not in c or "temperature" not in c:
                raise ValueError(f"coexistence run {c} needs 'pressure' (GPa) and 'temperature' (K, a guess).")

    @classmethod
    def from_dict(cls, d: dict, base: str | Path | None = None) -> PhaseSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown spec keys {sorted(unknown)}; known: {sorted(known)}.")
        if "point_function" not in d:
            raise ValueError("the spec has no 'point_function'. Fix: e.g. point_function: atomtwin.engines.studies.phase_points:run_point.")
        d = dict(d)
        if base is not None and "workdir" in d and not Path(d["workdir"]).is_absolute():
            d["workdir"] = str(Path(base) / d["workdir"])
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PhaseSpec:
        """Read a spec; a relative ``workdir`` is taken relative to the YAML file."""
        import yaml

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no such spec file: '{path}'.")
        d = yaml.safe_load(path.read_text()) or {}
        if not isinstance(d, dict):
            raise ValueError(f"'{path}' is not a YAML mapping of spec keys.")
        return cls.from_dict(d, base=path.parent)
