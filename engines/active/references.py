"""Reference calls: any ASE calculator labels a frame, and a call that fails is an outcome,
not a crash.

:class:`Reference` runs ``calc.get_potential_energy / get_forces (/ get_stress)`` on a copy
of the structure and returns a :class:`Label`.  A failure — an exception (an SCF that does
not converge raises in ASE's DFT interfaces), non-finite energy or forces, or a call longer
than ``timeout_s`` (SIGALRM in the main thread) — returns a :class:`Label` with
``ok=False`` and the reason; the loop logs it with its frame and continues.
``max_consecutive_failures`` failures in a row raise :class:`ReferenceFailures`.

:func:`make_calculator` builds a calculator from ``"module:Class"`` (or the shorthands
``emt``, ``lj``, ``chgnet``, ``tblite``) and keyword arguments; :class:`QuietCalculator`
silences the warnings and prints some calculators emit on every call (CHGNet).
:func:`label_many` labels several frames, serially or on a dask cluster.
"""

from __future__ import annotations

import contextlib
import io
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import numpy as np
from atomtwin.toolkit.errors import InputError

__all__ = [
    "Label",
    "Reference",
    "ReferenceFailures",
    "ReferenceTimeout",
    "QuietCalculator",
    "make_calculator",
    "label_many",
]

SHORTHANDS = {
    "emt": "ase.calculators.emt:EMT",
    "lj": "ase.calculators.lj:LennardJones",
    "chgnet": "atomtwin.engines.active.references:chgnet_calculator",
    "tblite": "tblite.ase:TBLite",
}


class ReferenceFailures(RuntimeError):
    """The reference failed too many times in a row: the run stops (its state is kept)."""


class ReferenceTimeout(RuntimeError):
    """One reference call ran past its wall-time limit."""


@dataclass
class Label:
    """Outcome of one reference call.

    energy eV, forces (N, 3) eV/Å, stress (3, 3) eV/Å³ or None; ``ok=False`` with ``error``
    (the reason, one line) when the call failed; ``wall_s`` its duration.
    """

    ok: bool
    energy: float = math.nan
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    error: str = ""
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "energy": self.energy,
            "forces": None if self.forces is None else np.asarray(self.forces).tolist(),
            "stress": None if self.stress is None else np.asarray(self.stress).tolist(),
            "error": self.error,
            "wall_s": self.wall_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Label:
        return cls(
            bool(d["ok"]),
            float(d["energy"]),
            None if d.get("forces") is None else np.asarray(d["forces"], dtype=float),
            None if d.get("stress") is None else np.asarray(d["stress"], dtype=float),
            str(d.get("error", "")),
            float(d.get("wall_s", 0.0)),
        )


class QuietCalculator:
    """Wraps an ASE calculator factory so that its calls print and warn nothing.

    Behaves as the wrapped calculator (attribute access is forwarded); ``calculate`` runs
    with warnings ignored and stdout/stderr captured.
    """

    def __init__(self, calc) -> None:
        self.__dict__["_calc"] = calc

    def __getattr__(self, name):
        if name == "_calc" or name.startswith("__"):  # unpickling (dask) asks before _calc exists
            raise AttributeError(name)
        value = getattr(self._calc, name)
        if not callable(value) or isinstance(value, type):
            return value

        def quiet(*args, **kwargs):
            with _quiet():
                return value(*args, **kwargs)

        return quiet

    def __setattr__(self, name, value):
        setattr(self._calc, name, value)

    def get_property(self, name, atoms=None, allow_calculation=True):
        with _quiet():
            return self._calc.get_property(name, atoms, allow_calculation)

    def calculate(self, *args, **kwargs):
        with _quiet():
            return self._calc.calculate(*args, **kwargs)


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


def chgnet_calculator(model: str = "0.3.0", device: str = "cpu", **kwargs):
    """CHGNet's ASE calculator with the weights shipped in its wheel (no download), quiet.

    Needs ``chgnet>=0.4.2`` (it carries the 0.3.0 weights; chgnet 0.3.0 itself does not
    import with current ASE).
    """
    with _quiet():
        try:
            from chgnet.model import CHGNet
            from chgnet.model.dynamics import CHGNetCalculator
        except ImportError as err:
            raise InputError(
                f"CHGNet is not importable ({err}). Fix: pip install 'chgnet>=0.4.2' "
                "(the `reference` extra)."
            ) from err
        # CHGNet builds its layers with torch's default dtype but feeds them float32: a
        # session whose default is float64 (nequip sets it globally) would get a model that
        # cannot run, so the weights are made float32 explicitly
        net = CHGNet.load(model_name=model, verbose=False).float()
        calc = CHGNetCalculator(model=net, use_device=device, **kwargs)
    return QuietCalculator(calc)


def make_calculator(spec: str, kwargs: dict[str, Any] | None = None):
    """An ASE calculator from ``"module:Class"`` (a class or a factory function) or a
    shorthand (``emt``, ``lj``, ``chgnet``, ``tblite``)."""
    target = SHORTHANDS.get(spec.lower(), spec)
    mod, _, name = target.partition(":")
    if not name:
        raise InputError(
            f"reference calculator {spec!r} is not 'module:Class'. Fix: e.g. "
            f"'ase.calculators.emt:EMT', or one of {sorted(SHORTHANDS)}."
        )
    try:
        factory = getattr(import_module(mod), name)
    except (ImportError, AttributeError) as err:
        raise InputError(
            f"reference calculator {spec!r} cannot be imported ({err}). Fix: install "
            "its package or correct reference.calculator."
        ) from err
    return factory(**(kwargs or {}))


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Raise :class:`ReferenceTimeout` after ``seconds`` (SIGALRM; only in the main thread,
    elsewhere the limit is checked after the call returns)."""
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def handler(signum, frame):
        raise ReferenceTimeout(f"the call ran past its wall-time limit of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Reference:
    """A reference calculator with failure handling.

    Parameters
    ----------
    calc
        ASE calculator (or a zero-argument factory: called once per label when
        ``fresh=True``, e.g. for a calculator that keeps state between calls).
    timeout_s
        Wall-time limit per call (None: none).
    stress
        Also ask for the stress (periodic cells only).
    max_consecutive_failures
        Failures in a row that stop the run with :class:`ReferenceFailures`.
    """

    calc: Any
    timeout_s: float | None = None
    stress: bool = False
    max_consecutive_failures: int = 5
    consecutive: int = field(default=0)

    def __call__(self, atoms) -> Label:
        """Label one structure (never raises for a failure of the calculator)."""
        a = atoms.copy()
        a.calc = (
            self.calc()
            if callable(self.calc) and not hasattr(self.calc, "get_potential_energy")
            else self.calc
        )
        t0 = time.perf_counter()
        try:
            with _time_limit(self.timeout_s):
                e = float(a.get_potential_energy())
                f = np.array(a.get_forces(), dtype=float)
                s = None
                if self.stress and all(a.pbc):
                    from atomtwin.engines.mlip.data import _voigt_to_full

                    s = _voigt_to_full(np.asarray(a.get_stress(), dtype=float))
        except Exception as err:  # noqa: BLE001  (any failure of the reference is an outcome)
            msg = str(err).splitlines()[0][:300] if str(err) else ""
            return Label(
                False, error=f"{type(err).__name__}: {msg}", wall_s=time.perf_counter() - t0
            )
        wall = time.perf_counter() - t0
        if self.timeout_s is not None and wall > self.timeout_s:
            return Label(
                False,
                error=f"ReferenceTimeout: took {wall:.3g} s > {self.timeout_s:g} s",
                wall_s=wall,
            )
        if not (
            np.isfinite(e) and np.all(np.isfinite(f)) and (s is None or np.all(np.isfinite(s)))
        ):
            return Label(False, error="non-finite energy, forces or stress", wall_s=wall)
        if f.shape != (len(a), 3):
            return Label(False, error=f"forces of shape {f.shape} for {len(a)} atoms", wall_s=wall)
        return Label(True, e, f, s, wall_s=wall)

    def record(self, label: Label, where: str) -> None:
        """Count a result; raise :class:`ReferenceFailures` after too many failures in a row."""
        if label.ok:
            self.consecutive = 0
            return
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive_failures:
            raise ReferenceFailures(
                f"the reference failed {self.consecutive} times in a row (last: {where}: {label.error}). "
                "Every earlier result is kept; fix the reference (calculator, its settings, the "
                "wall-time limit) and continue with --resume."
            )


def _remote_label(ref: Reference, atoms) -> dict[str, Any]:
    import copy

    return copy.deepcopy(ref)(atoms).to_dict()  # a worker's threads never share a calculator


def label_many(ref: Reference, structures: list, client=None, on_result=None) -> list[Label]:
    """Label ``structures``: serially, or in parallel on a dask ``client``
    (``distributed.Client``); results come back in the input order.

    ``on_result(k, label)`` is called as soon as structure ``k``'s label is known (the loop
    stores it on disk there, so a run killed in the middle of a batch loses no finished call).
    """
    out: list[Label | None] = [None] * len(structures)
    if client is None or len(structures) <= 1:
        for k, a in enumerate(structures):
            out[k] = ref(a)
            if on_result is not None:
                on_result(k, out[k])
        return out  # type: ignore[return-value]
    from distributed import as_completed

    futures = {
        client.submit(_remote_label, ref, a, pure=False): k for k, a in enumerate(structures)
    }
    for fut in as_completed(list(futures)):
        k = futures[fut]
        try:
            out[k] = Label.from_dict(fut.result())
        except Exception as err:  # noqa: BLE001  (a lost worker is a failed call, not a crash)
            out[k] = Label(False, error=f"{type(err).__name__} on the cluster: {str(err)[:200]}")
        if on_result is not None:
            on_result(k, out[k])
    return out  # type: ignore[return-value]
