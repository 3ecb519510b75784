"""Bond criteria: per species-pair distances at which a bond forms and breaks.

Defaults come from covalent radii.  The table below holds the radii of Cordero et al.,
"Covalent radii revisited", Dalton Trans. 2008, 2832-2838 (Table 2; C is the sp3 value,
Mn/Fe/Co the low-spin values), typed in by hand.  Those radii were fitted so that
``R_a + R_b`` reproduces some 228,000 experimental bond lengths of the Cambridge Structural
Database, most within 0.1 Å.

Hysteresis
----------
A bond **forms** when the pair comes closer than ``r_form`` and **breaks** only when it
separates beyond ``r_break > r_form``; between the two, a pair keeps the state it had in the
previous frame (in the first frame, the state of the nearer edge of the band).  The
defaults are

    r_form  = 1.15 (R_a + R_b)        r_break = 1.35 (R_a + R_b)

Why these factors.  A bond at its equilibrium length ``~R_a + R_b`` vibrates thermally
with amplitude ``sigma = sqrt(kT / k_bond)``: for P-S (stretch ~500 cm^-1, k ~ 14 eV/Å²)
sigma = 0.07 Å at 800 K; for C-H (~3000 cm^-1, k ~ 31 eV/Å²) sigma = 0.03 Å at 300 K.
``r_form`` sits 0.15 (R_a + R_b) = 0.32 Å (P-S) and 0.16 Å (C-H) above equilibrium,
4.6-5.5 sigma, so a bonded pair in frame 0 is found bonded.  The band between the two
cutoffs, 0.20 (R_a + R_b) = 0.42 Å (P-S) or 0.21 Å (C-H), is 6-7 sigma wide: an
intact bond that wanders past ``r_form`` is not counted as broken, and a broken one is
not counted as re-formed on its first close approach.  ``r_break`` stays below the
second-neighbour distances that must never count as bonds: S...S inside a PS4 unit
(3.3 Å vs 2.84 Å), a hydrogen bond H...O (1.8 Å vs 1.31 Å), 1,3 C...C (2.5 Å vs 2.05 Å).
Ionic contacts get the same factors: Li-S 2.68/3.15 Å, Li-Cl 2.65/3.11 Å, Li-P
2.70/3.17 Å (r_form/r_break).  The first shells of Li2S (Li-S 2.47 Å), LiCl (Li-Cl
2.57 Å) and Li3P (Li-P about 2.5-2.9 Å) lie inside r_form, their second shells (4.4 Å
and beyond) far outside r_break.  A contact whose usual distance falls *inside* the band
(a Li 3.0 Å from a P, say) is counted in frame 0 only if closer than the middle of the
band and then flickers rarely; give such a pair its own cutoff if it matters.

Which bonds define species
--------------------------
In an ionic solid every atom is linked to every other one through Li-S or Li-Cl contacts,
so chemical species (connected components) are built from the *covalent* pairs only: by
default every pair that involves no alkali or alkaline-earth metal.  Coordination numbers
use every pair, so "Cl by Li" and "S by Li" are still counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from atomtwin.toolkit.errors import InputError

__all__ = [
    "COVALENT_RADII",
    "FORM_FACTOR",
    "BREAK_FACTOR",
    "IONIC_ELEMENTS",
    "BondCutoffs",
    "bond_cutoffs",
    "parse_cutoffs",
    "parse_pairs",
]

#: covalent radii in Å, Cordero et al., Dalton Trans. 2008, 2832 (Table 2)
COVALENT_RADII: dict[str, float] = {
    "H": 0.31,
    "He": 0.28,
    "Li": 1.28,
    "Be": 0.96,
    "B": 0.84,
    "C": 0.76,
    "N": 0.71,
    "O": 0.66,
    "F": 0.57,
    "Ne": 0.58,
    "Na": 1.66,
    "Mg": 1.41,
    "Al": 1.21,
    "Si": 1.11,
    "P": 1.07,
    "S": 1.05,
    "Cl": 1.02,
    "Ar": 1.06,
    "K": 2.03,
    "Ca": 1.76,
    "Sc": 1.70,
    "Ti": 1.60,
    "V": 1.53,
    "Cr": 1.39,
    "Mn": 1.39,
    "Fe": 1.32,
    "Co": 1.26,
    "Ni": 1.24,
    "Cu": 1.32,
    "Zn": 1.22,
    "Ga": 1.22,
    "Ge": 1.20,
    "As": 1.19,
    "Se": 1.20,
    "Br": 1.20,
    "Kr": 1.16,
    "Rb": 2.20,
    "Sr": 1.95,
    "Y": 1.90,
    "Zr": 1.75,
    "Nb": 1.64,
    "Mo": 1.54,
    "Tc": 1.47,
    "Ru": 1.46,
    "Rh": 1.42,
    "Pd": 1.39,
    "Ag": 1.45,
    "Cd": 1.44,
    "In": 1.42,
    "Sn": 1.39,
    "Sb": 1.39,
    "Te": 1.38,
    "I": 1.39,
    "Xe": 1.40,
    "Cs": 2.44,
    "Ba": 2.15,
    "La": 2.07,
    "Hf": 1.75,
    "Ta": 1.70,
    "W": 1.62,
    "Re": 1.51,
    "Os": 1.44,
    "Ir": 1.41,
    "Pt": 1.36,
    "Au": 1.36,
    "Hg": 1.32,
    "Tl": 1.45,
    "Pb": 1.46,
    "Bi": 1.48,
    "Po": 1.40,
    "At": 1.50,
    "Rn": 1.50,
}

#: r_form = FORM_FACTOR * (R_a + R_b); see the module docstring for the argument
FORM_FACTOR = 1.15
#: r_break = BREAK_FACTOR * (R_a + R_b)
BREAK_FACTOR = 1.35
#: a pair involving one of these is ionic: counted in coordination, not in species
IONIC_ELEMENTS = frozenset({"Li", "Na", "K", "Rb", "Cs", "Be", "Mg", "Ca", "Sr", "Ba"})


def pair_name(a: str, b: str) -> str:
    """Canonical name of a species pair: alphabetical, ``"P-S"``, ``"Li-S"``."""
    return "-".join(sorted((a, b)))


@dataclass(frozen=True)
class BondCutoffs:
    """Resolved bond criteria for the species of one trajectory.

    Attributes
    ----------
    species : tuple of str
        Species, in the order of the matrices' rows.
    r_form, r_break : (n_species, n_species) float64
        Å; symmetric.  0 for a pair that is never bonded (not in ``pairs``).
    covalent : (n_species, n_species) bool
        Pairs whose bonds join atoms into species.
    """

    species: tuple[str, ...]
    r_form: np.ndarray
    r_break: np.ndarray
    covalent: np.ndarray

    @property
    def max_cutoff(self) -> float:
        """The longest ``r_break``, Å: the radius of the neighbour search."""
        return float(self.r_break.max()) if self.r_break.size else 0.0

    def pairs(self) -> list[str]:
        """Names of the pairs that can bond, ``["Li-S", "P-S", ...]``."""
        out = []
        for a in range(len(self.species)):
            for b in range(a, len(self.species)):
                if self.r_form[a, b] > 0:
                    out.append(pair_name(self.species[a], self.species[b]))
        return out

    def table(self) -> dict[str, dict]:
        """``{"P-S": {"r_form": 2.44, "r_break": 2.86, "covalent": True}, ...}`` (Å)."""
        idx = {s: k for k, s in enumerate(self.species)}
        out = {}
        for name in self.pairs():
            a, b = (idx[s] for s in name.split("-"))
            out[name] = {
                "r_form": float(self.r_form[a, b]),
                "r_break": float(self.r_break[a, b]),
                "covalent": bool(self.covalent[a, b]),
            }
        return out


def _split_pair(text: str, where: str) -> tuple[str, str]:
    parts = [p.strip() for p in str(text).split("-")]
    if len(parts) != 2 or not all(parts):
        raise InputError(
            f"{where}: '{text}' is not a species pair. Fix: write pairs as A-B, e.g. P-S or Li-Cl."
        )
    return parts[0], parts[1]


def parse_pairs(text: str | Iterable[str] | None) -> list[str] | None:
    """``"P-S,S-S"`` or ``["P-S", "S-S"]`` -> canonical pair names (``None`` stays ``None``)."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    return [pair_name(*_split_pair(t, "pairs")) for t in items if str(t).strip()]


def parse_cutoffs(text: str | Mapping | None) -> dict[str, tuple[float, float | None]]:
    """Cutoff overrides -> ``{"P-S": (r_form, r_break or None)}`` (Å).

    Accepts ``"P-S=2.4,Li-S=2.9:3.3"`` (one value: ``r_form``; ``a:b``: ``r_form:r_break``)
    or a mapping ``{"P-S": 2.4, "Li-S": (2.9, 3.3)}``.
    """
    if text is None:
        return {}
    if isinstance(text, str):
        items = {}
        for tok in (t.strip() for t in text.split(",")):
            if not tok:
                continue
            if "=" not in tok:
                raise InputError(
                    f"cutoff '{tok}' has no value. Fix: write PAIR=R_FORM or "
                    "PAIR=R_FORM:R_BREAK in Å, e.g. P-S=2.4 or P-S=2.4:2.8."
                )
            key, val = tok.split("=", 1)
            items[key] = tuple(val.split(":")) if ":" in val else val
    else:
        items = dict(text)
    out: dict[str, tuple[float, float | None]] = {}
    for key, val in items.items():
        name = pair_name(*_split_pair(key, "cutoffs"))
        vals = list(val) if isinstance(val, (tuple, list)) else [val]
        if len(vals) not in (1, 2):
            raise InputError(f"cutoff {name}: give r_form or (r_form, r_break) in Å, got {val!r}.")
        try:
            nums = [float(v) for v in vals]
        except (TypeError, ValueError):
            raise InputError(
                f"cutoff {name}: {val!r} is not a distance. Fix: give a number in Å, "
                f"e.g. {name}=2.4."
            ) from None
        if not all(np.isfinite(nums)) or min(nums) <= 0:
            raise InputError(
                f"cutoff {name}: distances must be positive and finite (Å), got "
                f"{val!r}. Fix: give e.g. {name}=2.4."
            )
        if len(nums) == 2 and nums[1] < nums[0]:
            raise InputError(
                f"cutoff {name}: r_break {nums[1]:g} Å is shorter than r_form "
                f"{nums[0]:g} Å; a bond must break farther out than it forms. Fix: "
                f"give r_form <= r_break, e.g. {name}={nums[0]:g}:{nums[0] * 1.17:.2f}."
            )
        out[name] = (nums[0], nums[1] if len(nums) == 2 else None)
    return out


def bond_cutoffs(
    species: Iterable[str],
    *,
    cutoffs: str | Mapping | None = None,
    pairs: str | Iterable[str] | None = None,
    covalent: str | Iterable[str] | None = None,
    form_factor: float = FORM_FACTOR,
    break_factor: float = BREAK_FACTOR,
    hysteresis: bool = True,
) -> BondCutoffs:
    """Bond criteria for every pair of ``species``.

    Parameters
    ----------
    species
        Species present (chemical symbols).
    cutoffs
        Overrides, ``{"P-S": 2.4}`` or ``{"P-S": (2.4, 2.8)}`` or ``"P-S=2.4,Li-S=2.9:3.3"``
        (Å).  A single value is ``r_form``; ``r_break`` then keeps the default ratio
        ``break_factor / form_factor``.
    pairs
        Pairs that can bond at all (default: every pair of ``species`` except those of two
        alkali/alkaline-earth metals, such as Li-Li: in Li metal its nearest neighbours sit
        at 3.0 Å, right at ``r_form`` = 2.94 Å, and every vibration would be an "event").
    covalent
        Pairs whose bonds define species (default: the bondable pairs without an alkali or
        alkaline-earth metal, :data:`IONIC_ELEMENTS`).
    form_factor, break_factor
        ``r_form`` and ``r_break`` as multiples of the sum of covalent radii.
    hysteresis
        ``False`` sets ``r_break = r_form`` (one cutoff: every vibration across it counts;
        for comparison only).

    Raises
    ------
    InputError
        A species in ``cutoffs``/``pairs``/``covalent`` that is not in ``species``, a
        non-positive distance, ``r_break < r_form``, or an element without a tabulated
        radius and no explicit cutoff.
    """
    sp = tuple(dict.fromkeys(str(s) for s in species))
    if not (np.isfinite(form_factor) and form_factor > 0 and np.isfinite(break_factor)):
        raise InputError(f"form_factor must be positive, got {form_factor!r}.")
    if break_factor < form_factor:
        raise InputError(
            f"break_factor {break_factor:g} is smaller than form_factor "
            f"{form_factor:g}: bonds would break closer than they form. Fix: give "
            f"break_factor >= form_factor (default {BREAK_FACTOR} vs {FORM_FACTOR})."
        )
    over = parse_cutoffs(cutoffs)
    allowed = parse_pairs(pairs)
    cov = parse_pairs(covalent)
    present = set(sp)
    for what, names in (("cutoffs", list(over)), ("pairs", allowed or []), ("covalent", cov or [])):
        for name in names:
            missing = [s for s in name.split("-") if s not in present]
            if missing:
                raise InputError(
                    f"{what}: species {', '.join(repr(m) for m in missing)} of pair "
                    f"{name} is not in the trajectory (it holds {', '.join(sp)}). "
                    "Fix: name pairs of those species only."
                )
    n = len(sp)
    r_form, r_break = np.zeros((n, n)), np.zeros((n, n))
    is_cov = np.zeros((n, n), bool)
    ratio = break_factor / form_factor if hysteresis else 1.0
    for a in range(n):
        for b in range(a, n):
            name = pair_name(sp[a], sp[b])
            if allowed is not None and name not in allowed:
                continue
            if allowed is None and {sp[a], sp[b]} <= IONIC_ELEMENTS and name not in over:
                continue  # metal-metal (Li-Li): a contact, not a bond; name it in pairs= to add it
            if name in over:
                f, br = over[name]
                br = f * ratio if br is None else (br if hysteresis else f)
            else:
                missing = [s for s in (sp[a], sp[b]) if s not in COVALENT_RADII]
                if missing:
                    raise InputError(
                        f"no covalent radius tabulated for {', '.join(missing)} "
                        f"(pair {name}). Fix: give its cutoff, e.g. cutoffs="
                        f"'{name}=2.5', or leave the pair out with pairs=."
                    )
                s = COVALENT_RADII[sp[a]] + COVALENT_RADII[sp[b]]
                f = form_factor * s
                br = (break_factor if hysteresis else form_factor) * s
            r_form[a, b] = r_form[b, a] = f
            r_break[a, b] = r_break[b, a] = br
            c = (name in cov) if cov is not None else not ({sp[a], sp[b]} & IONIC_ELEMENTS)
            is_cov[a, b] = is_cov[b, a] = c
    if cov is not None:
        unbonded = [c for c in cov if c not in (allowed if allowed is not None else [c])]
        if unbonded:
            raise InputError(
                f"covalent pair(s) {', '.join(unbonded)} are not among the bondable "
                "pairs. Fix: add them to pairs= as well."
            )
    return BondCutoffs(sp, r_form, r_break, is_cov)
