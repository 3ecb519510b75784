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

import math
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from atomtwin.toolkit.config import (
    ConfigPath,
    Count,
    Invalid,
    PositiveCount,
    PositiveFloat,
    config_class,
    load,
    validate,
)
from pydantic import Field, model_validator

SCHEDULERS = ("serial", "threads", "processes", "distributed")


class _Mapping:
    """Read access by key, as the earlier dict form had (``ramp["pressure"]``)."""

    def __getitem__(self, key: str):
        return getattr(self, key)


@config_class
class Ramp(_Mapping):
    """A heating/cooling ramp at ``pressure`` (GPa) through ``temperatures`` (K)."""

    pressure: float
    temperatures: tuple[PositiveFloat, ...]
    direction: Literal["heating", "cooling", "both"] = "both"


@config_class
class Coexistence(_Mapping):
    """A two-phase run at ``pressure`` (GPa), starting from a guess ``temperature`` (K)."""

    pressure: float
    temperature: PositiveFloat


def _check_protocol(protocol: dict) -> None:
    """What holds for any point function: step counts (``*steps``, ``*every``) are whole
    numbers >= 0, times and sizes (``dt``, ``cells``) are positive."""
    for key, value in protocol.items():
        values = value if key == "cells" and isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                if key in ("dt", "cells") or key.endswith(("steps", "every")):
                    raise Invalid(f"protocol.{key}", f"must be a number (got {v!r})", "write a number")
                continue
            if key.endswith(("steps", "every")) or key == "cells":
                if not float(v).is_integer() or v < (1 if key == "cells" or key.endswith("every") else 0):
                    low = 1 if key == "cells" or key.endswith("every") else 0
                    raise Invalid(f"protocol.{key}", f"must be a whole number >= {low} (got {v!r})",
                                  "write an integer such as 100")
            elif key == "dt" and not v > 0:
                raise Invalid("protocol.dt", f"must be > 0 (got {v!r})", "give a positive time step")


@config_class
class PhaseSpec:
    """A validated phase-diagram ensemble (pressures in GPa, temperatures in K).

    ``ramps`` are kept expanded: a ``both`` ramp becomes a heating and a cooling one, each a
    mapping with ``pressure``, ``temperatures`` and ``direction``; ``coexistence`` runs are
    mappings with ``pressure`` and ``temperature``.  A relative ``workdir`` read from YAML is
    taken relative to the YAML file.
    """

    point_function: Any
    temperatures: tuple[PositiveFloat, ...] = ()
    pressures: tuple[float, ...] = ()
    protocol: dict[str, Any] = field(default_factory=dict)
    ramps: tuple[Ramp, ...] = ()
    coexistence: tuple[Coexistence, ...] = ()
    seed: Count = 0
    workdir: ConfigPath = Field(default="phase-runs", validate_default=True)
    scheduler: Literal["serial", "threads", "processes", "distributed"] = "threads"
    n_workers: PositiveCount = 2
    address: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    coexistence_analysis: dict[str, Any] = field(default_factory=dict)
    classify: dict[str, Any] = field(default_factory=dict)
    needs_pressure: bool | None = None

    @model_validator(mode="after")
    def _check(self):
        set_ = object.__setattr__
        fn = self.point_function
        if not callable(fn) and not (isinstance(fn, str) and ":" in fn):
            raise Invalid("point_function", f"{fn!r} is neither a callable nor an import string",
                          "give 'package.module:function', e.g. "
                          "'atomtwin.engines.studies.phase_points:run_point'")
        _check_protocol(self.protocol)
        for i, p in enumerate(self.pressures):
            if not math.isfinite(p):
                raise Invalid(f"pressures[{i}]", f"{p} is not a finite pressure", "give pressures in GPa")
        if self.scheduler == "distributed" and not self.address:
            raise Invalid("address", "scheduler 'distributed' needs the scheduler's address",
                          "add address: tcp://host:8786")
        if self.address and self.scheduler != "distributed":
            set_(self, "scheduler", "distributed")
        needs_p = self.needs_pressure
        if needs_p is None:
            needs_p = self.protocol.get("kind", "npt") != "nvt"
        if self.temperatures and needs_p and not self.pressures:
            raise Invalid(
                "pressures", f"the protocol ({self.protocol.get('kind', 'npt')}) runs at constant "
                "pressure but the spec gives no 'pressures'",
                "add pressures: [..] in GPa, or use protocol kind 'nvt'")
        if not self.temperatures and not self.ramps and not self.coexistence:
            raise Invalid("temperatures", "the spec runs nothing",
                          "give temperatures (with pressures), ramps or coexistence")
        ramps = []
        for r in self.ramps:
            for d in (("heating", "cooling") if r.direction == "both" else (r.direction,)):
                ramps.append({"pressure": float(r.pressure), "temperatures": list(r.temperatures),
                              "direction": d})
        set_(self, "ramps", tuple(ramps))
        set_(self, "coexistence", tuple({"pressure": float(c.pressure), "temperature": float(c.temperature)}
                                        for c in self.coexistence))
        return self

    @classmethod
    def from_dict(cls, d: dict, base: str | Path | None = None) -> PhaseSpec:
        """A spec from a mapping; a relative ``workdir`` is taken relative to ``base``."""
        return validate(cls, d, source=cls.__name__, base=base)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PhaseSpec:
        """Read a spec; a relative ``workdir`` is taken relative to the YAML file."""
        return load(cls, path)
