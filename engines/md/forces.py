"""Force providers: what an MD step calls to get energy, forces and stress.

A provider maps (positions, cell, pbc) to a :class:`ForceResult`.  Three kinds ship here:

* :class:`ASEForceProvider` wraps any ASE calculator (a numpy view per call, no copy);
* :class:`PairForceProvider` is an analytic Lennard-Jones / Morse pair potential in torch,
  optionally split smoothly into a short- and a long-range part (a known scale separation
  for multiple-time-step tests);
* :class:`DifferenceProvider` is ``a - b`` (the slow correction "large minus small");
* :class:`SumProvider` is ``a + b + ...`` (a co-trained pair evaluated as one potential:
  the single-time-step reference of a multiple-time-step run).

The native provider for ``atomtwin.engines.mlip`` models is in :mod:`atomtwin.engines.md.mlip_provider`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from atomtwin.engines.md.neighbors import VerletList
from atomtwin.engines.md.state import DTYPE
from atomtwin.toolkit.errors import InputError


@dataclass(frozen=True)
class ForceResult:
    """Energy (eV), forces (n_atoms, 3) eV/Å and stress (3, 3) eV/Å^3 (ASE sign) or None."""

    energy: float
    forces: torch.Tensor
    stress: torch.Tensor | None = None


@runtime_checkable
class ForceProvider(Protocol):
    """What the integrators need from a potential.

    ``species`` lists the symbols it knows (None: any).  ``compute`` returns the results at
    the given configuration; ``reset`` drops cached state (neighbour lists) so that the next
    call starts afresh (used at checkpoints: a restart then reproduces the run bit for bit).
    ``n_calls`` counts ``compute`` calls.
    """

    species: tuple[str, ...] | None
    n_calls: int

    def compute(
        self, positions: torch.Tensor, cell: torch.Tensor, pbc: tuple[bool, bool, bool],
        species: Sequence[str], *, stress: bool = False,
    ) -> ForceResult: ...

    def reset(self) -> None: ...


def check_species(provider: ForceProvider, species: Sequence[str]) -> None:
    """Raise a clear error when ``provider`` does not know a species of the system."""
    known = getattr(provider, "species", None)
    if known is None:
        return
    unknown = sorted(set(species) - set(known))
    if unknown:
        raise InputError(
            f"the force provider {type(provider).__name__} does not know species {unknown} "
            f"(it knows {sorted(known)}). Fix: use a potential trained/parametrised for them."
        )


class ASEForceProvider:
    """Any ASE calculator as a force provider.

    Parameters
    ----------
    calc
        An ASE calculator (EMT, LennardJones, a DFT code ...).
    species
        Symbols it knows, for an early error (None: not checked).
    """

    def __init__(self, calc, species: Sequence[str] | None = None):
        self._pristine = copy.deepcopy(calc)
        self.calc = calc
        self.species = tuple(species) if species is not None else None
        self.n_calls = 0
        self._atoms = None

    def reset(self) -> None:
        self.calc = copy.deepcopy(self._pristine)
        self._atoms = None

    def _sync(self, positions, cell, pbc, species):
        from ase import Atoms

        pos = positions.detach().cpu().numpy()
        c = cell.detach().cpu().numpy()
        if self._atoms is None or len(self._atoms) != len(species):
            self._atoms = Atoms(list(species), positions=pos, cell=c, pbc=pbc)
            self._atoms.calc = self.calc
        else:
            self._atoms.positions = pos
            if not np.array_equal(self._atoms.cell[:], c):
                self._atoms.set_cell(c, scale_atoms=False)
        return self._atoms

    def compute(self, positions, cell, pbc, species, *, stress=False) -> ForceResult:
        atoms = self._sync(positions, cell, pbc, species)
        self.n_calls += 1
        e = float(atoms.get_potential_energy())
        f = torch.as_tensor(atoms.get_forces(), dtype=DTYPE, device=positions.device)
        s = None
        if stress:
            from ase.stress import voigt_6_to_full_3x3_stress

            s = torch.as_tensor(
                voigt_6_to_full_3x3_stress(atoms.get_stress()), dtype=DTYPE, device=positions.device
            )
        return ForceResult(e, f, s)


def _switch(r: torch.Tensor, r_on: float, r_off: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Quintic switch S (1 below r_on, 0 above r_off, C2) and dS/dr."""
    if r_off <= r_on:
        one = torch.ones_like(r)
        return torch.where(r < r_off, one, 0 * one), 0 * one
    x = ((r - r_on) / (r_off - r_on)).clamp(0.0, 1.0)
    s = 1 - x**3 * (10 - 15 * x + 6 * x * x)
    ds = -30 * x * x * (1 - x) ** 2 / (r_off - r_on)
    return s, ds


class PairForceProvider:
    """Lennard-Jones or Morse pair potential in torch, with an optional range split.

    Energy ``Σ_pairs φ(r) w(r)`` with ``w = S(r; r_on, r_cut)`` a C2 quintic cutoff switch,
    times ``S(r; r_split_in, r_split_out)`` for ``part="short"`` or ``1 - S(...)`` for
    ``part="long"``; so short + long = full exactly.

    Parameters
    ----------
    kind
        ``"lj"`` (params per species: ``(epsilon eV, sigma Å)``, Lorentz–Berthelot mixing)
        or ``"morse"`` (params per species: ``(D eV, a 1/Å, r0 Å)``, arithmetic mixing).
    params
        ``{symbol: tuple}``.
    r_cut, r_on
        Cutoff radius and switch start (Å).
    part, split
        ``"full"``, ``"short"`` or ``"long"`` and the split switch ``(r_in, r_out)`` (Å).
    skin
        Verlet-list skin (Å); the list is rebuilt when atoms move more than skin/2.
    """

    def __init__(
        self, kind: str, params: Mapping[str, Sequence[float]], *, r_cut: float,
        r_on: float | None = None, part: str = "full", split: tuple[float, float] | None = None,
        skin: float = 0.5,
    ):
        if kind not in ("lj", "morse"):
            raise InputError(f"unknown pair potential '{kind}'. Fix: use 'lj' or 'morse'.")
        if part not in ("full", "short", "long"):
            raise InputError(f"part must be 'full', 'short' or 'long', not '{part}'.")
        if part != "full" and split is None:
            raise InputError("a short/long part needs split=(r_in, r_out) in Å.")
        self.kind, self.part, self.split = kind, part, split
        self.params = {str(k): tuple(float(x) for x in v) for k, v in params.items()}
        self.species = tuple(self.params)
        self.r_cut = float(r_cut)
        self.r_on = float(r_on) if r_on is not None else 0.9 * self.r_cut
        # a short part needs neighbours only up to where its switch ends
        self.r_list = min(self.r_cut, split[1]) if part == "short" else self.r_cut
        self.nlist = VerletList(self.r_list, skin)
        self.n_calls = 0
        self._table: tuple | None = None

    def reset(self) -> None:
        self.nlist.reset()

    def _pair_table(self, species, device):
        key = (tuple(species), str(device))
        if self._table is None or self._table[0] != key:
            check_species(self, species)
            names = sorted(set(species))
            idx = torch.tensor([names.index(s) for s in species], device=device)
            p = np.array([self.params[s] for s in names])  # (S, k)
            if self.kind == "lj":
                eps = np.sqrt(p[:, 0][:, None] * p[:, 0][None, :])
                sig = 0.5 * (p[:, 1][:, None] + p[:, 1][None, :])
                tab = np.stack([eps, sig], -1)
            else:
                tab = 0.5 * (p[:, None, :] + p[None, :, :])
                tab[..., 0] = np.sqrt(p[:, 0][:, None] * p[:, 0][None, :])
            self._table = (key, idx, torch.as_tensor(tab, dtype=DTYPE, device=device))
        return self._table[1], self._table[2]

    def _phi(self, r, prm):
        if self.kind == "lj":
            eps, sig = prm[:, 0], prm[:, 1]
            sr6 = (sig / r) ** 6
            return 4 * eps * (sr6 * sr6 - sr6), 4 * eps * (-12 * sr6 * sr6 + 6 * sr6) / r
        d, a, r0 = prm[:, 0], prm[:, 1], prm[:, 2]
        ex = torch.exp(-a * (r - r0))
        return d * (ex * ex - 2 * ex), d * (-2 * a * ex * ex + 2 * a * ex)

    def compute(self, positions, cell, pbc, species, *, stress=False) -> ForceResult:
        self.n_calls += 1
        idx, tab = self._pair_table(species, positions.device)
        i, j, vec = self.nlist.pairs(positions, cell, pbc)
        r = vec.norm(dim=1)
        keep = r < self.r_cut
        i, j, vec, r = i[keep], j[keep], vec[keep], r[keep]
        prm = tab[idx[i], idx[j]]
        phi, dphi = self._phi(r, prm)
        w, dw = _switch(r, self.r_on, self.r_cut)
        if self.part != "full":
            s, ds = _switch(r, *self.split)
            if self.part == "long":
                s, ds = 1 - s, -ds
            w, dw = w * s, dw * s + w * ds
        e = phi * w
        de = dphi * w + phi * dw  # dE_pair/dr
        fvec = (de / r)[:, None] * vec  # gradient wrt r_j of the pair energy
        forces = torch.zeros_like(positions)
        forces.index_add_(0, i, fvec).index_add_(0, j, -fvec)
        st = None
        if stress:
            vol = float(abs(torch.linalg.det(cell)))
            if vol == 0:
                raise InputError("stress needs a periodic cell with a volume.")
            st = (vec.T @ fvec) / vol
        return ForceResult(float(e.sum()), forces, st)


class DifferenceProvider:
    """``a - b``: the slow correction of a multiple-time-step split (large minus small)."""

    def __init__(self, a: ForceProvider, b: ForceProvider):
        self.a, self.b = a, b
        ka, kb = getattr(a, "species", None), getattr(b, "species", None)
        self.species = ka if kb is None else (kb if ka is None else tuple(set(ka) & set(kb)))
        self.n_calls = 0

    def reset(self) -> None:
        self.a.reset()
        self.b.reset()

    def compute(self, positions, cell, pbc, species, *, stress=False) -> ForceResult:
        self.n_calls += 1
        ra = self.a.compute(positions, cell, pbc, species, stress=stress)
        rb = self.b.compute(positions, cell, pbc, species, stress=stress)
        st = None if ra.stress is None or rb.stress is None else ra.stress - rb.stress
        return ForceResult(ra.energy - rb.energy, ra.forces - rb.forces, st)


class SumProvider:
    """``a + b + ...``: several providers as one potential (e.g. small + residual model).

    Each part keeps its own neighbour list; ``n_calls`` counts calls of the sum (each part
    counts its own evaluations too).
    """

    def __init__(self, *parts: ForceProvider):
        if not parts:
            raise InputError("SumProvider needs at least one force provider.")
        self.parts = parts
        known = [set(p.species) for p in parts if getattr(p, "species", None) is not None]
        self.species = tuple(sorted(set.intersection(*known))) if known else None
        self.n_calls = 0

    def reset(self) -> None:
        for p in self.parts:
            p.reset()

    def compute(self, positions, cell, pbc, species, *, stress=False) -> ForceResult:
        self.n_calls += 1
        rs = [p.compute(positions, cell, pbc, species, stress=stress) for p in self.parts]
        st = None
        if stress and all(r.stress is not None for r in rs):
            st = sum(r.stress for r in rs[1:]) + rs[0].stress
        forces = rs[0].forces
        for r in rs[1:]:
            forces = forces + r.forces
        return ForceResult(sum(r.energy for r in rs), forces, st)


def lj_argon(r_cut_sigma: float = 2.5, **kw) -> PairForceProvider:
    """Lennard-Jones argon (ε = 0.0104 eV, σ = 3.405 Å; Rahman 1964)."""
    sigma = 3.405
    return PairForceProvider("lj", {"Ar": (0.0104, sigma)}, r_cut=r_cut_sigma * sigma, **kw)


