"""An exactly solvable polar model crystal: rock-salt AB with rigid-ion and bond charges.

Why a model crystal rather than DFT/pyscf data: every quantity the electric-enthalpy model
learns (H, forces, P, Z*, alpha) is known here to rounding, at any configuration and field,
so the learned model can be judged against the truth itself, and the TO frequency, eps_inf,
eps_0 and the LO frequency have closed forms to compare spectra with.  A periodic crystal
(what the paper's alpha-SiO2 is) also exercises what molecules cannot: periodic images,
Born charges of a crystal and the acoustic sum rule in a cell.

The crystal (species A = "Na" cation, B = "Cl" anion, real masses):

* energy: Morse pairs ``D [(1 - exp(-a (r - r0)))^2 - 1]`` between unlike nearest neighbours
  (r0 = d0) and like second neighbours (r0 = sqrt(2) d0), each times a C2 switch that leaves its
  own shell untouched and ends before the next shell of its kind;
  the ideal lattice is a stationary point with zero stress in these two shells;
* polarization ``P = sum_a q_a u_a + sum_bonds mu_b + alpha E``: rigid ions of charge +-q
  displaced by u_a from their (strain-following) lattice sites, plus a bond dipole
  ``mu_b = -eta s(r) (r - d0) r_hat`` on every cation->anion bond (the dynamic charge transfer
  of a stretched bond), plus the electronic polarizability alpha_s I per atom;
* electric enthalpy ``H = U - E . (P_ion + P_bond) - 1/2 E . alpha . E``.

Known results at the ideal lattice: Z*_A = -Z*_B = (q + 2 eta) I (the bond term adds 2 eta:
the six bonds sum to sum_b r_hat r_hat = 2 I); only unlike bonds along the displacement stretch
in the Γ optical mode, so omega_TO^2 = 2 k1 / mu with k1 = 2 D1 a1^2; eps_inf = 1 +
(alpha_A + alpha_B) / (eps0 V_pair); eps_0 = eps_inf + Z*^2 / (eps0 V_pair mu omega_TO^2)
(the Lorentz oscillator) and omega_LO^2 = omega_TO^2 eps_0 / eps_inf (Lyddane–Sachs–Teller).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from atomtwin.engines.mlip.electric import EnthalpyModel, edge_vectors
from atomtwin.engines.mlip.nn import scatter_sum
from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError
from torch import Tensor

__all__ = ["RockSaltCrystal", "random_frames"]


def _switch(r: Tensor, r_on: float, r_off: float) -> Tensor:
    x = ((r - r_on) / (r_off - r_on)).clamp(0.0, 1.0)
    return 1 - x**3 * (10 - 15 * x + 6 * x * x)


class RockSaltCrystal(EnthalpyModel):
    """The exact model crystal as an :class:`~atomtwin.engines.mlip.electric.EnthalpyModel`
    (same inputs and outputs as the learned model).

    Parameters
    ----------
    n_rep
        Repetitions of the 8-atom conventional cubic cell (the structure this instance
        describes: its lattice sites are fixed, up to homogeneous strain).
    d0
        Nearest-neighbour distance, Å.
    q, eta
        Rigid-ion charge and bond-dipole strength, e.
    alpha
        Electronic polarizability per atom (cation, anion), e Å^2/V.
    morse_ab, morse_like
        (D eV, a 1/Å) of the unlike first-neighbour and like second-neighbour Morse pairs.
    switch_ab, switch_like
        C2 switches (on, off) of the unlike pairs (between the first and third shells: the
        first-neighbour well is unswitched, no other unlike pair is in range) and of the like
        pairs (between the second and fourth shells), Å.
    """

    def __init__(self, n_rep: int = 1, *, d0: float = 2.8, q: float = 1.0, eta: float = 0.1,
                 alpha: tuple[float, float] = (0.05, 0.25), morse_ab: tuple[float, float] = (0.5, 0.85),
                 morse_like: tuple[float, float] = (0.1, 1.0), switch_ab: tuple[float, float] = (3.2, 4.0),
                 switch_like: tuple[float, float] = (4.2, 4.5)) -> None:
        super().__init__()
        (r_on, r_c), (l_on, l_c) = switch_ab, switch_like
        if not (d0 < r_on < r_c < math.sqrt(3) * d0 and math.sqrt(2) * d0 < l_on < l_c < 2 * d0):
            raise InputError(f"the unlike switch {switch_ab} Å must lie between the first ({d0} Å) and third "
                             f"({math.sqrt(3) * d0:.3f} Å) neighbour shells and the like switch {switch_like} Å "
                             f"between the second ({math.sqrt(2) * d0:.3f} Å) and fourth ({2 * d0} Å).")
        self.species = ["Na", "Cl"]
        self.r_max = float(max(r_c, l_c))
        self.switch_ab, self.switch_like = (float(r_on), float(r_c)), (float(l_on), float(l_c))
        self.n_rep, self.d0, self.q, self.eta = int(n_rep), float(d0), float(q), float(eta)
        self.alpha_atom = tuple(float(a) for a in alpha)
        self.morse_ab, self.morse_like = tuple(morse_ab), tuple(morse_like)
        atoms = self.ideal_structure()
        self.register_buffer("frac0", torch.as_tensor(atoms.get_scaled_positions(), dtype=torch.float64))
        self.register_buffer("charges", torch.tensor([q, -q], dtype=torch.float64))
        self.register_buffer("alphas", torch.tensor(alpha, dtype=torch.float64))
        self.eval()  # outputs without autograd graph unless the positions require grad

    def ideal_structure(self):
        """The ideal lattice, ``ase.Atoms`` (8 n_rep^3 atoms, cubic cell 2 d0 n_rep)."""
        from ase.build import bulk

        return bulk("NaCl", "rocksalt", a=2 * self.d0, cubic=True).repeat(self.n_rep)

    # --- closed forms -------------------------------------------------------------------
    @property
    def reduced_mass(self) -> float:
        from ase.data import atomic_masses, atomic_numbers

        ma, mb = (atomic_masses[atomic_numbers[s]] for s in self.species)
        return ma * mb / (ma + mb)

    @property
    def pair_volume(self) -> float:
        """Volume per ion pair, Å^3 (a quarter of the conventional cell)."""
        return 2 * self.d0**3

    def born_charge(self) -> float:
        """Z* of the cation at the ideal lattice, e (isotropic; the anion's is minus it)."""
        return self.q + 2 * self.eta

    def nu_to(self) -> float:
        """Γ transverse-optical frequency, THz: omega^2 = 2 k1 / mu, k1 = 2 D a^2."""
        d, a = self.morse_ab
        k1 = 2 * d * a * a
        return math.sqrt(2 * k1 / self.reduced_mass * U.EV_A_AMU_TO_A_PS2) / (2 * math.pi)

    def eps_inf(self) -> float:
        """Electronic dielectric constant 1 + (alpha_A + alpha_B) / (eps0 V_pair)."""
        return 1 + sum(self.alpha_atom) / (U.EPSILON0 * self.pair_volume)

    def eps_static(self) -> float:
        """Static dielectric constant (Lorentz oscillator): eps_inf + Z*^2 / (eps0 V mu omega_TO^2)."""
        k = self.reduced_mass * (2 * math.pi * self.nu_to()) ** 2 * U.AMU_A2_PS2_TO_EV  # eV/Å^2
        return self.eps_inf() + self.born_charge() ** 2 / (U.EPSILON0 * self.pair_volume * k)

    def nu_lo(self) -> float:
        """Γ longitudinal-optical frequency (Lyddane–Sachs–Teller), THz."""
        return self.nu_to() * math.sqrt(self.eps_static() / self.eps_inf())

    # --- the enthalpy ---------------------------------------------------------------------
    def enthalpy_terms(self, pos: Tensor, cell: Tensor, data: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        types = data["atom_types"]
        batch = data["batch"]
        n0 = self.frac0.shape[0]
        if pos.shape[0] % n0 or torch.any(types != types.new_tensor([0, 1]).repeat(4 * self.n_rep**3)[
                torch.arange(pos.shape[0], device=pos.device) % n0]):
            raise InputError(f"RockSaltCrystal(n_rep={self.n_rep}) describes its own {n0}-atom lattice (atoms in the "
                             "order of ideal_structure()). Fix: build structures from model.ideal_structure().")
        centre, neighbour = data["edge_index"][0], data["edge_index"][1]
        vec = edge_vectors(pos, cell, data)
        r = vec.norm(dim=-1)
        unlike = types[centre] != types[neighbour]
        s = torch.where(unlike, _switch(r, *self.switch_ab), _switch(r, *self.switch_like))
        d_ab, a_ab = self.morse_ab
        d_ll, a_ll = self.morse_like
        dd = torch.where(unlike, d_ab, d_ll)
        aa = torch.where(unlike, a_ab, a_ll)
        r0 = torch.where(unlike, self.d0, math.sqrt(2) * self.d0)
        phi = dd * ((1 - torch.exp(-aa * (r - r0))) ** 2 - 1)
        n = pos.shape[0]
        e = 0.5 * scatter_sum(phi * s, centre, n)
        # rigid ions: displacement from the lattice site (minimum image, in the current cell)
        inv = torch.linalg.inv(cell)
        frac = torch.einsum("nx,nxy->ny", pos, inv[batch])
        df = frac - self.frac0[torch.arange(n, device=pos.device) % n0]
        df = df - torch.round(df.detach())
        u = torch.einsum("ny,nyx->nx", df, cell[batch])
        p = self.charges[types][:, None] * u
        bond = unlike & (types[centre] == 0)  # cation -> anion, each bond once
        mu = -self.eta * (s * (r - self.d0) / r)[:, None] * vec * bond[:, None]
        p = p + scatter_sum(mu, centre, n)
        a = self.alphas[types][:, None, None] * torch.eye(3, dtype=pos.dtype, device=pos.device)
        return e, p, a


def random_frames(crystal: RockSaltCrystal, n_frames: int, *, sigma: tuple[float, float] = (0.03, 0.15),
                  field_max: float = 0.05, strain_max: float = 0.0, seed: int = 0) -> list[dict[str, Any]]:
    """Labelled frames of the model crystal: random displacements and fields.

    Each frame: displacements N(0, s^2) per component with s uniform in ``sigma`` (Å), a field
    uniform in the ball ``|E| <= field_max`` (V/Å), an optional random symmetric strain
    (components uniform in +-``strain_max``).  Labels from the exact model (float64):
    ``energy`` eV (the enthalpy H), ``forces`` eV/Å, ``polarization`` e Å, ``born_charges``
    (N, 3, 3) e, ``polarizability`` (3, 3) e Å^2/V, and the ``field`` (3,) V/Å.
    """
    from atomtwin.engines.mlip.data import collate

    rng = np.random.default_rng(seed)
    ideal = crystal.ideal_structure()
    frames = []
    for k in range(n_frames):
        at = ideal.copy()
        if strain_max > 0:
            eps = rng.uniform(-strain_max, strain_max, (3, 3))
            at.set_cell(at.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        at.positions += rng.normal(0.0, rng.uniform(*sigma), at.positions.shape)
        v = rng.normal(size=3)
        field = v / np.linalg.norm(v) * field_max * rng.uniform() ** (1 / 3)
        b = collate([at], r_max=crystal.r_max, species=crystal.species)
        b["field"] = torch.as_tensor(field[None])
        out = crystal(b)
        frames.append({
            "numbers": at.numbers.copy(), "pos": at.positions.copy(), "cell": at.cell.array.copy(),
            "pbc": np.ones(3, bool), "source": "RockSaltCrystal", "index": k,
            "energy": float(out["energy"][0]), "forces": out["forces"].numpy().copy(),
            "polarization": out["polarization"][0].numpy().copy(),
            "born_charges": out["born_charges"].numpy().copy(),
            "polarizability": out["polarizability"][0].numpy().copy(), "field": field,
        })
    return frames
