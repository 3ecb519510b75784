"""LAMMPS unit styles and their conversion to atomtwin's Å, ps, eV.

Source: the LAMMPS manual, ``units`` command (https://docs.lammps.org/units.html), which
defines for each style the unit of distance, time, energy, velocity and force:

==========  ===========  ===========  =======================  ==========================  ==============================
style       distance     time         energy                   velocity                    force
==========  ===========  ===========  =======================  ==========================  ==============================
metal       Å            ps           eV                       Å/ps                        eV/Å
real        Å            fs           kcal/mol                 Å/fs                        kcal/(mol Å)
si          m            s            J                        m/s                         N
cgs         cm           s            erg                      cm/s                        dyne
electron    Bohr         fs           Hartree                  Bohr/atomic time unit       Hartree/Bohr
micro       µm           µs           pg µm²/µs²               µm/µs                       pg µm/µs²
nano        nm           ns           ag nm²/ns²               nm/ns                       ag nm/ns²
lj          reduced (σ, ε, m): no conversion without the model's σ, ε, m
==========  ===========  ===========  =======================  ==========================  ==============================

The ``electron`` style's atomic time unit is 1.03275e-15 s as that page states.
Constants are CODATA 2018 (``scipy.constants``): 1 eV = 1.602176634e-19 J,
N_A = 6.02214076e23 /mol, so 1 kcal/mol = 4184 J / N_A = 0.0433641 eV.
"""

from __future__ import annotations

from dataclasses import dataclass

from atomtwin.toolkit import units as U
from atomtwin.toolkit.errors import InputError
from scipy import constants as _c

__all__ = ["LAMMPS_UNIT_STYLES", "LammpsUnits", "lammps_units"]

_J = 1.0 / _c.e  # eV per joule
_KCAL_MOL = 4184.0 / _c.N_A * _J  # eV per kcal/mol
_ELECTRON_TIME_S = 1.03275e-15  # LAMMPS manual, units command, style electron


@dataclass(frozen=True)
class LammpsUnits:
    """Factors that turn one LAMMPS unit style's numbers into atomtwin units.

    Attributes
    ----------
    name
        The LAMMPS style.
    distance
        Å per distance unit (positions, box).
    time
        ps per time unit.
    energy
        eV per energy unit.
    velocity
        (Å/ps) per velocity unit.
    force
        (eV/Å) per force unit.
    """

    name: str
    distance: float
    time: float
    energy: float
    velocity: float
    force: float


_STYLES = {
    "metal": LammpsUnits("metal", 1.0, 1.0, 1.0, 1.0, 1.0),
    "real": LammpsUnits("real", 1.0, 1e-3, _KCAL_MOL, 1e3, _KCAL_MOL),
    "si": LammpsUnits("si", 1e10, 1e12, _J, 1e10 / 1e12, _J / 1e10),
    "cgs": LammpsUnits("cgs", 1e8, 1e12, 1e-7 * _J, 1e8 / 1e12, 1e-7 * _J / 1e8),
    "electron": LammpsUnits(
        "electron", U.BOHR, 1e-3, U.HARTREE, U.BOHR / (_ELECTRON_TIME_S * 1e12), U.HARTREE / U.BOHR
    ),
    # picogram µm²/µs² = 1e-15 kg * 1e-12 m² / 1e-12 s² = 1e-15 J; pg µm/µs² = 1e-9 N
    "micro": LammpsUnits("micro", 1e4, 1e6, 1e-15 * _J, 1e4 / 1e6, 1e-9 * _J / 1e10),
    # attogram nm²/ns² = 1e-21 kg * 1e-18 m² / 1e-18 s² = 1e-21 J; ag nm/ns² = 1e-12 N
    "nano": LammpsUnits("nano", 10.0, 1e3, 1e-21 * _J, 10.0 / 1e3, 1e-12 * _J / 1e10),
}

#: The LAMMPS unit styles a dump can be read in (``read(..., units=...)``, CLI ``--units``).
LAMMPS_UNIT_STYLES: tuple[str, ...] = tuple(_STYLES)


def lammps_units(style: str) -> LammpsUnits:
    """The conversion factors of a LAMMPS unit style (see the module table).

    Raises
    ------
    InputError
        For ``lj`` (reduced units have no conversion without the model's σ, ε and mass)
        and for names LAMMPS does not define.
    """
    key = str(style).strip().lower()
    if key == "lj":
        raise InputError(
            "LAMMPS 'lj' units are reduced units (multiples of the model's sigma, epsilon and "
            "mass), so they cannot be converted to Å, ps and eV without those three numbers. Fix: "
            "read with units='metal' to keep the numbers as written and scale them yourself "
            "(positions x sigma, times x sigma*sqrt(m/epsilon), energies x epsilon), or rerun "
            "LAMMPS with a physical unit style."
        )
    if key not in _STYLES:
        raise InputError(
            f"unknown LAMMPS unit style '{style}'. Fix: use one of {', '.join(LAMMPS_UNIT_STYLES)} "
            "(the style of the input script's `units` command)."
        )
    return _STYLES[key]
