"""Formats read through MDAnalysis: DCD, XTC/TRR, AMBER NetCDF, PDB, GRO, LAMMPS data.

A topology (``topology=``: PSF, PDB, GRO, PRMTOP, LAMMPS data...) gives atom names and
species; trajectories without one need ``species=`` (a list of symbols).  MDAnalysis'
units (Å, ps, kJ/mol/Å for forces, Å/ps for velocities) are converted to the schema's.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from atomtwin.toolkit import schema as S
from atomtwin.toolkit.errors import FileFormatError, InputError

#: MDAnalysis base force unit is kJ/(mol Å); to eV/Å
KJ_MOL_TO_EV = 0.010364269656262174


def _species_of(u, species=None, species_map=None) -> np.ndarray:
    from ase.data import atomic_numbers

    if species is not None:
        sp = np.asarray(species, dtype=str)
        if sp.size != u.atoms.n_atoms:
            raise InputError(f"{sp.size} species given for {u.atoms.n_atoms} atoms. Fix: give one symbol per atom.")
        return sp
    ag = u.atoms
    if species_map is not None and hasattr(ag, "types"):
        from atomtwin.toolkit.io.lammps import parse_species_map

        smap = parse_species_map(species_map)
        types = [int(t) for t in ag.types]
        missing = sorted(set(types) - set(smap))
        if missing:
            raise InputError(f"atom type(s) {missing} have no species in {smap}. Fix: add them to the map.")
        return np.array([smap[t] for t in types])
    for attr in ("elements",):
        if hasattr(ag, attr):
            el = np.array([str(e).capitalize() for e in getattr(ag, attr)])
            if all(e in atomic_numbers for e in el):
                return el
    try:
        from MDAnalysis.guesser.default_guesser import DefaultGuesser

        guess = DefaultGuesser(None).guess_atom_element
    except ImportError:  # MDAnalysis < 2.8
        from MDAnalysis.topology.guessers import guess_atom_element as guess
    for attr in ("names", "types"):
        if hasattr(ag, attr):
            el = np.array([str(guess(t)).capitalize() for t in getattr(ag, attr)])
            dummy = np.isin(el, ["Dummy", ""])
            if dummy.any():  # virtual sites (e.g. TIP4P's MW): ASE's dummy element "X"
                warnings.warn(
                    f"{int(dummy.sum())} atoms look like virtual sites (names {sorted(set(getattr(ag, attr)[dummy]))[:5]}); "
                    "they get species 'X'. Select them out with ds.atoms.select([...]) before analysis.",
                    stacklevel=4,
                )
                el[dummy] = "X"
            if all(e in atomic_numbers for e in el):
                return el
    raise InputError(
        "cannot tell the chemical species of the atoms from this topology. Fix: pass species=[...] "
        "(one symbol per atom) or species_map='1=Li,2=S' for numeric types."
    )


def universe_to_dataset(u, *, species=None, species_map=None, frames=None, source: str = "") -> xr.Dataset:
    """Schema Dataset from an MDAnalysis Universe (all atoms, frames selected by a slice)."""
    sp = _species_of(u, species, species_map)
    traj = u.trajectory[frames] if frames is not None else u.trajectory
    pos, cell, time, vel, frc = [], [], [], [], []
    for ts in traj:
        pos.append(ts.positions.astype(float))
        if ts.dimensions is not None and np.all(ts.dimensions[:3] > 0):
            from MDAnalysis.lib.mdamath import triclinic_vectors

            cell.append(triclinic_vectors(ts.dimensions).astype(float))
        time.append(float(ts.time))
        if ts.has_velocities:
            vel.append(ts.velocities.astype(float))
        if ts.has_forces:
            frc.append(ts.forces.astype(float) * KJ_MOL_TO_EV)
    n = len(pos)
    extra = {}
    if len(vel) == n and n:
        extra[S.VELOCITIES] = np.stack(vel)
    if len(frc) == n and n:
        extra[S.FORCES] = np.stack(frc)
    t = np.asarray(time)
    if n > 1 and not np.all(np.diff(t) > 0):
        t = None
    masses = None
    if hasattr(u.atoms, "masses") and np.all(u.atoms.masses > 0):
        masses = u.atoms.masses.astype(float)
    return S.make_dataset(
        np.stack(pos), sp, cell=np.stack(cell) if len(cell) == n else None, time=t,
        masses=masses, attrs={S.SOURCE: source}, **extra,
    )


def read_mda(path, *, topology=None, format=None, species=None, species_map=None, frames=None, **kw) -> xr.Dataset:
    import MDAnalysis as mda

    if topology is None and species is None and str(format).upper() in ("DCD", "XTC", "TRR", "NCDF"):
        raise InputError(
            f"'{path}' ({format}) stores coordinates only, no atoms. Fix: give topology= (a PDB, GRO, PSF, "
            "PRMTOP or LAMMPS data file; CLI --topology) or species=[one symbol per atom]."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = (str(topology), str(path)) if topology is not None else (str(path),)
        if format is not None:
            kw["format"] = format
        try:
            u = mda.Universe(*args, **kw)
        except (FileNotFoundError, MemoryError):
            raise
        except (ValueError, TypeError) as err:
            if topology is None:
                raise InputError(
                    f"MDAnalysis cannot read '{path}' alone ({err}). Fix: give topology= (a PDB, GRO, PSF, "
                    "PRMTOP or LAMMPS data file) for trajectory-only formats like DCD/XTC/TRR/NetCDF."
                ) from err
            raise FileFormatError(path, f"MDAnalysis cannot read it with topology '{topology}' "
                                  f"({type(err).__name__}: {err}).", "check both files belong together.") from err
        except (OSError, EOFError, IndexError, KeyError, UnicodeDecodeError) as err:
            raise FileFormatError(path, f"MDAnalysis cannot read it ({type(err).__name__}: {err}); the file is "
                                  "damaged or not in the format its name says.", "check the file, or pass "
                                  "format=.") from err
    return universe_to_dataset(u, species=species, species_map=species_map, frames=frames, source=str(path))
