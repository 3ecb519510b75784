"""Make ``lj_msd.nc``: the MSDs (with their origin-scatter probes) of a Lennard-Jones liquid
near its triple point, over whole runs and independent segments, for the diffusion
calibration test (``tests/regression/test_diffusion_lj.py``).

Four NVE runs of :mod:`lj_md` (500 atoms, T* = 0.75, rho* = 0.84, 20 tau of velocity-rescaled
equilibration then 200 tau of NVE, dt = 0.005 tau; seeds 0-3; about 2 min each on one core)
give positions every 0.05 tau; the MSDs use every 0.1 tau (2000 frames a run).  Stored per
run: the whole-run MSD, and the MSDs of its 8 segments of 25 tau and 4 of 50 tau (each an
independent trajectory of the same NVE state), computed by ``atomtwin.toolkit.dynamics.msd``
(centre-of-mass drift removed), with the ``origin_var`` probes.  Argon units (Å, ps).

    python tests/data/diffusion/make_lj_msd.py [--cache DIR]   # reuses DIR/seed{n}.npz
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lj_md  # noqa: E402

SEEDS = (0, 1, 2, 3)
SEGMENTS = {"full": 1, "seg50": 4, "seg25": 8}


def main() -> None:
    from atomtwin.toolkit.dynamics import msd

    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=str(HERE / "_cache"))
    ap.add_argument("--out", default=str(HERE / "lj_msd.nc"))
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    data = {}
    for seed in SEEDS:
        path = Path(a.cache) / f"seed{seed}.npz"
        if not path.exists():
            pos, box, _, dtf = lj_md.run(n_atoms=500, t_prod=200.0, stride=10, seed=seed)
            lj_md.save_npz(path, pos, box, dtf, {"seed": seed})
        pos, box, dtf = lj_md.load_npz(path)
        pos, dtf = pos[::2], 2 * dtf
        for name, n_seg in SEGMENTS.items():
            size = pos.shape[0] // n_seg
            for s in range(n_seg):
                m = msd(
                    lj_md.to_dataset(pos[s * size : (s + 1) * size], box, dtf), "Ar", unwrap=False
                )
                data.setdefault(name, []).append(m)
    out = xr.Dataset(
        attrs={
            "source": "tests/data/diffusion/make_lj_msd.py (lj_md.py: numpy LJ NVE, r_c 2.5 sigma shifted)",
            "system": "500 LJ atoms, T*=0.75, rho*=0.84, argon units sigma=3.405 A, eps/kB=119.8 K, m=39.948",
            "seeds": list(SEEDS),
            "tau_ps": lj_md.TAU_PS,
        }
    )
    for name, n_seg in SEGMENTS.items():
        ms = data[name]
        lag = ms[0]["lag"].values
        out[f"msd_{name}"] = (
            ("run", f"seg_{name}", f"lag_{name}"),
            np.array([m.values for m in ms]).reshape(len(SEEDS), n_seg, -1),
        )
        out[f"origin_var_{name}"] = (
            ("run", f"seg_{name}", f"lag_{name}"),
            np.array([m["origin_var"].values for m in ms]).reshape(len(SEEDS), n_seg, -1),
        )
        out = out.assign_coords({f"lag_{name}": lag})
        out[f"msd_{name}"].attrs = {
            k: ms[0].attrs[k] for k in ("n_frames", "n_atoms", "n_dims", "timestep_ps")
        }
    tmp = a.out + ".tmp"
    out.to_netcdf(
        tmp, engine="h5netcdf", encoding={v: {"compression": "gzip"} for v in out.data_vars}
    )
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
