"""The one place for units and physical constants.

atomtwin works in eV, Å, ps, amu, K and e throughout.  Every conversion factor a module
needs lives here, with its source, so no module carries a keyword twin (``dt_fs`` next to
``dt``) or a private constant.

Constants are CODATA 2018 (as in ``scipy.constants``).
"""

from __future__ import annotations

from scipy import constants as _c

# base units of the toolkit
ENERGY = "eV"
LENGTH = "Å"
TIME = "ps"
MASS = "amu"
TEMPERATURE = "K"
CHARGE = "e"
VELOCITY = "Å/ps"
FORCE = "eV/Å"
STRESS = "eV/Å^3"
DIPOLE = "e*Å"

#: Boltzmann constant in eV/K
KB = _c.k / _c.e
#: reduced Planck constant in eV*ps
HBAR = _c.hbar / _c.e * 1e12
#: Planck constant in eV*ps
H_PLANCK = _c.h / _c.e * 1e12
#: 1 amu * (Å/ps)^2 expressed in eV (kinetic energy of atomic units of motion)
AMU_A2_PS2_TO_EV = _c.atomic_mass * 1e-20 / 1e-24 / _c.e
#: 1 eV/Å / amu expressed in Å/ps^2 (acceleration from force / mass)
EV_A_AMU_TO_A_PS2 = 1.0 / AMU_A2_PS2_TO_EV
#: eV/Å^3 to GPa
EV_A3_TO_GPA = _c.e / 1e-30 / 1e9
#: GPa to eV/Å^3
GPA_TO_EV_A3 = 1.0 / EV_A3_TO_GPA
#: bar to eV/Å^3
BAR_TO_EV_A3 = 1e5 / (_c.e / 1e-30)
#: femtosecond in ps
FS = 1e-3
#: ps to ASE's internal time unit (Å*sqrt(amu/eV))
PS_TO_ASE_TIME = 1e-12 / (1e-10 * (_c.atomic_mass / _c.e) ** 0.5)
#: ASE's internal time unit in ps
ASE_TIME_TO_PS = 1.0 / PS_TO_ASE_TIME
#: 1 THz in cm^-1
THZ_TO_INV_CM = 1e12 / (_c.c * 100.0)
#: 1 cm^-1 in THz
INV_CM_TO_THZ = 1.0 / THZ_TO_INV_CM
#: THz to meV (E = h f)
THZ_TO_MEV = _c.h * 1e12 / _c.e * 1e3
#: vacuum permittivity in e^2 / (eV * Å)
EPSILON0 = _c.epsilon_0 / _c.e**2 * _c.e * 1e-10
#: elementary charge * Å in Debye
E_A_TO_DEBYE = 1e-10 * _c.e / (1e-21 / _c.c)
#: e/Å^2 (polarization) to C/m^2
E_A2_TO_C_M2 = _c.e / 1e-20
#: atomic unit of electric field (V/Å)... 1 V/Å is 1 eV/(e*Å)
V_PER_A = 1.0
#: Bohr radius in Å
BOHR = _c.physical_constants["Bohr radius"][0] * 1e10
#: Hartree in eV
HARTREE = _c.physical_constants["Hartree energy in eV"][0]
#: speed of light in Å/ps
SPEED_OF_LIGHT = _c.c * 1e10 / 1e12
#: 1 kJ/mol in eV (per particle)
KJ_MOL_TO_EV = 1e3 / (_c.N_A * _c.e)
#: 1/Å to 1/cm (absorption coefficients)
INV_A_TO_INV_CM = 1e8
#: diffusion coefficient Å^2/ps in cm^2/s
A2_PS_TO_CM2_S = 1e-16 / 1e-12
#: conductivity e^2 / (eV * Å * ps) (from D e^2 / (V kB T)) in S/cm
E2_EV_A_PS_TO_S_CM = _c.e / (1e-10 * 1e-12) / 100.0
