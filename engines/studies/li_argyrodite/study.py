"""Settings and building blocks of the Li | Li6PS5Cl interface study (``atomtwin demo``).

The choices, and why (issue 18):

* **Structure.**  :func:`build_interface` with CHGNet's lattice constants (10.00 / 3.408 Å),
  so both bulks start unstrained for the reference the potential was learned from: Li(100)
  3x3, 12 layers, on two Li6PS5Cl cells cut between whole PS4 units (212 atoms, two
  contacts per cell); the test size is the 106-atom sandwich (6 layers, one cell) of the
  shipped CHGNet reference run.  The gap is 2.5 Å, as in that reference run: relaxing the
  joined sandwich at 0 K already starts the reaction, and at 2.5 Å the largest CHGNet force
  at the start is 0.79 eV/Å (no overlapping atoms), so the start needs no relaxation and is
  the very configuration the model was validated on.
* **Temperature 400 K.**  Below the melting point of Li (453.7 K), so the metal stays
  crystalline and "bulk Li" stays a bcc reference; the contact still reacts within about
  1 ps (CHGNet: all four contact PS4 reduced by 0.7 ps at 400 K).
* **Thermostat.**  Langevin, friction 20 /ps (the reference run's 0.02 /fs): the reaction
  releases ~0.23 eV/atom within ~1 ps; the thermostat removes the excess kinetic energy at
  a rate ~ 3 k_B dT gamma per atom, so the run stays dT ~ 0.23 eV/ps / (3 k_B gamma) ~ 45 K
  above the set point (CHGNet: 430 +- 38 K), below melting.  A weaker coupling (2 /ps) would
  run ~450 K hot.  Mobilities are compared between regions under the same friction.
* **Length.**  2.5 ps at 1 fs (Li is light; the reference used 1 fs): the contact reaction
  is over (PS4 of the contact layer gone) after ~1 ps, leaving 1.5 ps of a reacted
  interface for the mobility.  Small: 1 ps, the contact PS4 half reduced (CHGNet: 16 -> 7
  P-S bonds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "StudyConfig",
    "signed_distance",
    "contact_planes",
    "energy_drift",
    "model_vs_chgnet",
    "SPECIES",
]

#: the model's species, sorted
SPECIES = ["Cl", "Li", "P", "S"]


@dataclass(frozen=True)
class StudyConfig:
    """Sizes and physics of the study (``small()`` for the test suite)."""

    n_cells: int = 2  # Li6PS5Cl cubic cells along z
    li_layers: int = 12  # bcc Li(100) layers
    gap: float = 2.5  # Å between the slabs at each contact
    lattice: str = "chgnet"
    temperature: float = 400.0  # K
    friction: float = 20.0  # 1/ps
    timestep: float = 0.001  # ps
    md_steps: int = 2500
    stride: int = 10  # a frame every 10 fs
    nve_steps: int = 400
    reference_steps: int = 500  # MD steps of each reference bulk (thermal_references)
    check_frames: int = 6  # frames of the model's own MD recomputed with CHGNet
    region_width: float = 3.0  # Å each side of a contact plane: the interface region
    contact_layer: float = 5.0  # Å: P closer to the contact at the start face the metal
    msd_lag: float = 0.5  # ps: the lag of the mobility comparison
    n_segments: int = 4  # time segments of the mobility error bars
    seed: int = 18

    @classmethod
    def small(cls) -> StudyConfig:
        # two electrolyte cells (158 atoms), so that a bulk electrolyte exists beyond the
        # contact layer (the 106-atom sandwich of the CHGNet reference run has one cell, all
        # of whose PS4 face a contact); 1 ps: at 0.4 ps only one or two P-S bonds have broken
        # (CHGNet), too few product environments to form clusters of their own
        return cls(
            n_cells=2,
            li_layers=6,
            md_steps=1000,
            stride=10,
            nve_steps=100,
            check_frames=4,
            msd_lag=0.2,
            n_segments=4,
        )

    @property
    def system(self) -> str:
        return (
            f"Li(100) {self.li_layers} layers | Li6PS5Cl(100) {self.n_cells} cell"
            f"{'s' if self.n_cells > 1 else ''}, {self.temperature:.0f} K"
        )


def build_structure(cfg: StudyConfig):
    """The sandwich of ``cfg`` as an :class:`Interface` (``atoms.arrays['region']``: 0 metal,
    1 electrolyte)."""
    from atomtwin.engines.studies.li_argyrodite.interface import build_interface

    return build_interface(
        cfg.lattice, n_cells=cfg.n_cells, li_layers=cfg.li_layers, gap=cfg.gap, seed=0
    )


def contact_planes(
    positions_z: np.ndarray, region: np.ndarray, cell_z: float
) -> tuple[float, float]:
    """z (Å) of the two contact planes of a sandwich at its start: the middle of each gap
    between the metal (region 0) and the electrolyte (region 1).

    Returns ``(z_top, z_bottom)``: the contact above the metal and the one below it (the
    latter may be negative: it is periodic).
    """
    zm = positions_z[region == 0]
    ze = positions_z[region == 1]
    z_top = 0.5 * (zm.max() + ze.min())
    z_bot = 0.5 * (zm.min() + ze.max() - cell_z)
    return float(z_top), float(z_bot)


def signed_distance(z: np.ndarray, planes: tuple[float, float], cell_z: float) -> np.ndarray:
    """Signed distance (Å) of positions ``z`` (any shape) from the nearest contact plane:
    negative on the metal side, positive on the electrolyte side (the metal lies between
    ``planes[1]`` and ``planes[0]``, periodic along z with period ``cell_z``)."""
    top, bot = planes
    u = np.mod(np.asarray(z, float) - bot, cell_z)  # 0 at the bottom contact, metal first
    width = top - bot  # metal thickness between the two contact planes
    in_metal = u < width
    d_metal = -np.minimum(u, width - u)
    v = u - width  # distance above the top contact, through the electrolyte
    d_elec = np.minimum(v, cell_z - width - v)
    return np.where(in_metal, d_metal, d_elec)


def energy_drift(ds) -> tuple[float, float]:
    """Linear drift of the total energy (eV/atom/ps) of an NVE trajectory, and the standard
    deviation of the total energy about the line (eV/atom)."""
    from atomtwin.toolkit import units as U

    m = np.asarray(ds["mass"].values)
    v = np.asarray(ds["velocities"].values)
    ke = 0.5 * np.einsum("a,fai->f", m, v**2) * U.AMU_A2_PS2_TO_EV
    etot = (np.asarray(ds["energy"].values) + ke) / ds.sizes["atom"]
    t = np.asarray(ds["time"].values)
    coef = np.polyfit(t - t[0], etot, 1)
    return float(coef[0]), float(np.std(etot - np.polyval(coef, t - t[0])))


def model_vs_chgnet(ds, model_path, n: int = 6, calc=None) -> dict:
    """Force and energy errors of the model against CHGNet 0.3.0 on ``n`` evenly spaced
    frames of the model's own trajectory ``ds`` (the configurations it actually visited,
    reacted ones included).

    Returns force MAE and RMSE (eV/Å, per component), the mean |F| of CHGNet (eV/Å, per
    component: the scale of the MAE), their ratio, energy MAE per atom after removing the
    mean offset (meV-level: CHGNet and the model may differ by a constant reference energy)
    and the offset (eV/atom); ``f_ref``/``f_mod`` (n x atoms, 3) for the parity plot.
    """
    from atomtwin.engines.mlip import Calculator
    from atomtwin.engines.studies.li_argyrodite.references import chgnet
    from atomtwin.toolkit.io.ase_io import dataset_to_atoms

    ref = calc or chgnet()
    mod = Calculator.from_checkpoint(str(model_path))
    idx = np.unique(np.linspace(0, ds.sizes["frame"] - 1, n).round().astype(int))
    f_ref, f_mod, e_ref, e_mod, times = [], [], [], [], []
    for i in idx:
        a = dataset_to_atoms(ds, int(i))
        a.calc = ref
        e0, f0 = a.get_potential_energy(), a.get_forces()
        a.calc = mod
        e1, f1 = a.get_potential_energy(), a.get_forces()
        f_ref.append(f0)
        f_mod.append(f1)
        e_ref.append(e0 / len(a))
        e_mod.append(e1 / len(a))
        times.append(float(ds["time"].values[i]))
    f_ref, f_mod = np.concatenate(f_ref), np.concatenate(f_mod)
    e_err = np.asarray(e_mod) - np.asarray(e_ref)
    scale = float(np.abs(f_ref).mean())
    mae = float(np.abs(f_mod - f_ref).mean())
    return {
        "force_mae": mae,
        "force_rmse": float(np.sqrt(((f_mod - f_ref) ** 2).mean())),
        "force_scale": scale,
        "force_mae_relative": mae / scale,
        "energy_mae_per_atom": float(np.abs(e_err - e_err.mean()).mean()),
        "energy_offset_per_atom": float(e_err.mean()),
        "frames": idx.tolist(),
        "times_ps": times,
        "energy_ref_per_atom": [float(x) for x in e_ref],
        "energy_model_per_atom": [float(x) for x in e_mod],
        "f_ref": f_ref,
        "f_mod": f_mod,
    }
