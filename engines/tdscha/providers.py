"""The system a (TD-)SCHA run works on, and the providers of energies and forces.

Coordinates: a :class:`System` has ``n`` Cartesian degrees of freedom ``x`` (Å) with masses
(amu) and a reference configuration ``x0``.  Internally (TD-)SCHA uses mass-scaled
displacements ``R = sqrt(m) (x - x0)`` with the mass in eV ps²/Å² (``m_amu *
AMU_A2_PS2_TO_EV``), so that R is in sqrt(eV) ps, its momentum P = dR/dt in sqrt(eV), the
kinetic energy is |P|²/2 in eV and hbar (eV ps) needs no further factor.

Covariances live in a ``basis`` Q (n, n_r) with orthonormal columns (mass-scaled space):
for a periodic crystal Q spans the complement of the three rigid translations, whose
fluctuations are not bound; for models Q is the identity.

Providers evaluate a batch of configurations: ``provider.evaluate(x)`` with ``x`` (S, n) Å
returns energies (S,) eV, forces (S, n) eV/Å and stress (S, 3, 3) eV/Å³ or None.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.units import AMU_A2_PS2_TO_EV


class TDSCHAError(RuntimeError):
    """A (TD-)SCHA run stopped: the message names the step and the fix.

    Attributes
    ----------
    step
        Step or iteration at which the problem was detected (None before the run).
    partial
        The result Dataset up to the last good step (None when nothing was computed).
    """

    def __init__(self, message: str, step: int | None = None, partial=None):
        super().__init__(message)
        self.step = step
        self.partial = partial


class ProviderError(RuntimeError):
    """The energy/force provider failed for a configuration."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class System:
    """Degrees of freedom, masses and field coupling of a (TD-)SCHA problem.

    Parameters
    ----------
    x0
        Reference configuration (n,), Å.
    masses
        Mass of each degree of freedom (n,), amu.
    born_charges
        Field coupling (n, 3), e: the force on dof i from a field E (V/Å) is
        ``born_charges[i] @ E`` (eV/Å).
    basis
        Orthonormal columns (n, n_r) spanning the mass-scaled fluctuation space; None = all.
    species, cell, pbc
        Atomistic metadata (None for model systems): species (n_atoms,), cell (3, 3) Å.
    names
        Label of each dof.
    """

    x0: np.ndarray
    masses: np.ndarray
    born_charges: np.ndarray
    basis: np.ndarray | None = None
    species: tuple[str, ...] | None = None
    cell: np.ndarray | None = None
    pbc: tuple[bool, bool, bool] | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        x0 = np.asarray(self.x0, dtype=float).ravel()
        n = x0.size
        m = np.broadcast_to(np.asarray(self.masses, dtype=float), (n,)).copy()
        if np.any(~np.isfinite(m)) or np.any(m <= 0):
            raise InputError("every mass must be positive and finite (amu).")
        z = np.asarray(self.born_charges, dtype=float).reshape(n, 3)
        object.__setattr__(self, "x0", x0)
        object.__setattr__(self, "masses", m)
        object.__setattr__(self, "_sqrt_m", np.sqrt(m * AMU_A2_PS2_TO_EV))
        object.__setattr__(self, "born_charges", z)
        q = np.eye(n) if self.basis is None else np.asarray(self.basis, dtype=float)
        if q.shape[0] != n or not np.allclose(q.T @ q, np.eye(q.shape[1]), atol=1e-10):
            raise InputError("basis must have orthonormal columns (n, n_r).")
        object.__setattr__(self, "basis", q)
        if not self.names:
            object.__setattr__(self, "names", tuple(f"dof{i}" for i in range(n)))

    @property
    def n(self) -> int:
        """Number of Cartesian degrees of freedom."""
        return self.x0.size

    @property
    def n_reduced(self) -> int:
        """Dimension of the fluctuation space (columns of ``basis``)."""
        return self.basis.shape[1]

    @property
    def sqrt_m(self) -> np.ndarray:
        """sqrt of the masses in eV ps²/Å² (n,)."""
        return self._sqrt_m

    @property
    def is_atomistic(self) -> bool:
        return self.species is not None

    def to_cartesian(self, r: np.ndarray) -> np.ndarray:
        """Mass-scaled displacements (..., n) -> Cartesian configurations (..., n) Å."""
        return self.x0 + np.asarray(r) / self.sqrt_m

    def to_mass_scaled(self, x: np.ndarray) -> np.ndarray:
        """Cartesian configurations (..., n) Å -> mass-scaled displacements (..., n)."""
        return (np.asarray(x) - self.x0) * self.sqrt_m

    def field_force(self, field: np.ndarray) -> np.ndarray:
        """Mass-scaled force (n,) from a field (3,) V/Å."""
        return self.born_charges @ np.asarray(field, dtype=float) / self.sqrt_m

    @classmethod
    def from_model(cls, model) -> System:
        """System of a :class:`~atomtwin.engines.tdscha.models.PolynomialModel` (x0 = 0)."""
        return cls(x0=np.zeros(model.n), masses=model.masses, born_charges=model.born_charges,
                   names=model.names)

    @classmethod
    def from_atoms(cls, atoms, born_charges: np.ndarray | None = None,
                   remove_translations: bool | None = None) -> System:
        """System of an ASE ``Atoms``; Born charges (n_atoms, 3, 3) [a, i, j] = dP_i/dr_aj (e).

        Rigid translations are removed from the fluctuation space when the cell is fully
        periodic (``remove_translations=None``) or when asked.
        """
        na = len(atoms)
        masses = np.repeat(atoms.get_masses(), 3)
        if born_charges is None:
            z = np.zeros((na * 3, 3))
        else:
            zb = np.asarray(born_charges, dtype=float)
            if zb.shape != (na, 3, 3):
                raise InputError(f"born_charges have shape {zb.shape}; expected ({na}, 3, 3) in e.")
            z = np.transpose(zb, (0, 2, 1)).reshape(na * 3, 3)  # [(a, j), i]
        pbc = tuple(bool(p) for p in atoms.pbc)
        if remove_translations is None:
            remove_translations = all(pbc)
        basis = None
        if remove_translations:
            sm = np.sqrt(masses)
            t = np.zeros((na * 3, 3))
            for k in range(3):
                t[k::3, k] = sm[k::3]
            t /= np.linalg.norm(t, axis=0)
            # complement of span(t): the last n-3 left singular vectors of t
            u, _, _ = np.linalg.svd(t, full_matrices=True)
            basis = u[:, 3:]
        names = tuple(f"{s}{a}.{c}" for a, s in enumerate(atoms.get_chemical_symbols()) for c in "xyz")
        return cls(x0=atoms.get_positions().ravel(), masses=masses, born_charges=z, basis=basis,
                   species=tuple(atoms.get_chemical_symbols()), cell=np.array(atoms.cell[:]),
                   pbc=pbc, names=names)


class CallableProvider:
    """Wrap ``fn(x (S, n)) -> (energies (S,), forces (S, n)[, stress (S, 3, 3)])``: a batched
    force provider (e.g. a torch potential evaluating the whole ensemble at once)."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def evaluate(self, x: np.ndarray):
        try:
            out = self.fn(np.asarray(x, dtype=float))
        except Exception as err:  # noqa: BLE001 - report any provider failure with context
            raise ProviderError(f"{type(err).__name__}: {err}") from err
        e, f = np.asarray(out[0], dtype=float), np.asarray(out[1], dtype=float)
        s = None if len(out) < 3 or out[2] is None else np.asarray(out[2], dtype=float)
        return e, f.reshape(e.size, -1), s


class ASEProvider:
    """Energies, forces and (when the calculator gives it) stress from any ASE calculator.

    Parameters
    ----------
    atoms
        Reference structure (its positions are not modified).
    calculator
        Any ASE calculator.  When it has a ``calculate_batch(list_of_atoms)`` method returning
        ``(energies, forces[, stress])`` the whole ensemble is evaluated in one call;
        otherwise configurations are evaluated one by one.
    stress
        Ask for the stress (only for periodic cells; ignored when the calculator has none).
    copies
        Keep one copy of the calculator (``copy.deepcopy``) per ensemble member.  In a
        correlated TD-SCHA run configuration s moves smoothly along the trajectory, so a
        calculator that caches neighbour lists (EMT, LJ, most ASE potentials) rebuilds its
        list only when that member has moved by the skin; one shared calculator instead
        jumps between configurations spread by the whole quantum width and rebuilds its
        list at nearly every call (measured: ~60 % of a 40-atom EMT step at 300 K).  Set False for
        calculators that are heavy or cannot be copied (external codes, or a torch model:
        use :class:`~atomtwin.engines.tdscha.mlip_provider.MLIPProvider` for atomtwin MLIPs); a
        calculator whose deepcopy fails falls back to the shared one.
    max_copies
        At most this many copies; member s uses copy ``s % max_copies`` (finite-difference
        Hessians evaluate 6 n_atoms configurations once and need no copy each).
    """

    def __init__(self, atoms, calculator, *, stress: bool = True, batch_size: int = 64, copies: bool = True,
                 max_copies: int = 128):
        self.atoms = atoms.copy()
        self.atoms.calc = calculator
        self.calculator = calculator
        self.want_stress = stress and all(atoms.pbc) and "stress" in getattr(
            calculator, "implemented_properties", ())
        self.batch_size = batch_size
        self.copies = copies
        self.max_copies = max(1, int(max_copies))
        self._slots: list = []  # one Atoms (with its own calculator) per ensemble member

    def _slot(self, s: int):
        """The Atoms object that evaluates ensemble member ``s``."""
        if not self.copies:
            return self.atoms
        s = s % self.max_copies
        while len(self._slots) <= s:
            a = self.atoms.copy()
            try:
                a.calc = copy.deepcopy(self.calculator)
            except Exception:  # noqa: BLE001 - uncopyable calculator: share the original
                self.copies = False
                return self.atoms
            self._slots.append(a)
        return self._slots[s]

    def _one(self, xi: np.ndarray, s: int = 0):
        atoms = self._slot(s)
        atoms.set_positions(xi.reshape(-1, 3))
        # stress first: calculators compute energy and forces with it, so they are reused
        st = atoms.get_stress(voigt=False) if self.want_stress else None
        e = atoms.get_potential_energy()
        f = atoms.get_forces().ravel()
        return e, f, st

    def evaluate(self, x: np.ndarray):
        x = np.asarray(x, dtype=float).reshape(-1, 3 * len(self.atoms))
        batch = getattr(self.calculator, "calculate_batch", None)
        if batch is not None:
            frames = []
            for xi in x:
                a = self.atoms.copy()
                a.set_positions(xi.reshape(-1, 3))
                frames.append(a)
            try:
                out = batch(frames)
            except Exception as err:  # noqa: BLE001 - report any calculator failure
                raise ProviderError(f"the batched calculator failed: {err}") from err
            return CallableProvider(lambda _x: out).evaluate(x)
        es, fs, ss = [], [], []
        # a single configuration (classical MD, finite differences) always uses slot 0
        for s in range(x.shape[0]):
            try:
                e, f, st = self._one(x[s], s)
            except Exception as err:  # noqa: BLE001 - report any calculator failure
                raise ProviderError(f"the calculator failed for configuration {s}: {err}", s) from err
            es.append(e)
            fs.append(f)
            ss.append(st)
        stress = np.array(ss) if self.want_stress else None
        return np.array(es), np.array(fs), stress


def evaluate_checked(provider, x: np.ndarray, step: int | None, what: str):
    """Call ``provider.evaluate`` and turn failures or non-finite output into a TDSCHAError."""
    at = f" at {what} {step}" if step is not None else ""
    try:
        e, f, s = provider.evaluate(x)
    except ProviderError as err:
        raise TDSCHAError(f"force provider failed{at}: {err}. Fix: check the calculator on that "
                          "configuration (too close atoms mean the fluctuations are too large: lower "
                          "the temperature, the pulse amplitude or the time step).", step) from err
    e = np.asarray(e, dtype=float)
    f = np.asarray(f, dtype=float).reshape(x.shape[0], -1)
    bad = ~np.isfinite(e) | ~np.all(np.isfinite(f), axis=1)
    if bad.any():
        raise TDSCHAError(f"force provider returned NaN/inf{at} for configuration "
                          f"{int(np.argmax(bad))} of {x.shape[0]}. Fix: check the calculator there; "
                          "a blow-up usually means the time step is too large.", step)
    return e, f, s
