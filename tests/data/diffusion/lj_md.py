"""A small, fast Lennard-Jones MD (numpy + atomtwin's neighbour lists) for the diffusion
calibration data: a simple liquid whose atoms are *not* independent random walkers.

Reduced units (sigma = epsilon = m = 1, tau = sigma sqrt(m / epsilon)); the trajectory is
written in argon units (sigma = 3.405 Å, epsilon / k_B = 119.8 K, m = 39.948 amu, so
tau = 2.156 ps).  Potential: LJ truncated and shifted at r_c = 2.5 sigma.  Integrator:
velocity Verlet, dt = 0.005 tau, a Verlet list with a 0.3 sigma skin rebuilt when an atom
has moved half the skin.  Equilibration: velocity rescaling to T* every 10 steps for
``n_equil`` tau from an fcc lattice; production: NVE (no thermostat touches the dynamics).

Run as a script to regenerate the shipped file (see README.md in this folder):

    python tests/data/diffusion/lj_md.py --out tests/data/diffusion/lj_liquid_500.npz
"""

from __future__ import annotations

import argparse
import os
import time as _time

import numpy as np

SIGMA_A = 3.405
EPS_K = 119.8
MASS_AMU = 39.948
TAU_PS = 2.1563  # sigma sqrt(m / epsilon) for these argon parameters
RC = 2.5
SKIN = 0.3
E_SHIFT = 4.0 * (RC**-12 - RC**-6)


def fcc(n_atoms: int, rho: float) -> tuple[np.ndarray, float]:
    """fcc positions (n_atoms, 3) at number density ``rho`` (n_atoms = 4 k^3, else the first n)."""
    k = int(np.ceil((n_atoms / 4) ** (1 / 3)))
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    g = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    frac = ((g + base) / k).reshape(-1, 3)[:n_atoms]
    box = (n_atoms / rho) ** (1 / 3)
    return frac * box, box


def _pairs(x: np.ndarray, box: float):
    from atomtwin.toolkit.neighbors import neighbor_pairs

    p = neighbor_pairs(x, np.eye(3) * box, True, RC + SKIN)
    return p.i, p.j, p.shifts.astype(float) * box


def forces(x, box, nl):
    """LJ forces (n, 3) and potential energy for the Verlet list ``nl``."""
    i, j, sh = nl
    d = x[j] - x[i] + sh
    r2 = np.einsum("pi,pi->p", d, d)
    m = r2 < RC * RC
    d, r2, i, j = d[m], r2[m], i[m], j[m]
    ir6 = r2**-3
    fr = (48.0 * ir6 * ir6 - 24.0 * ir6) / r2  # F_j = fr * d
    fd = fr[:, None] * d
    n = x.shape[0]
    f = np.empty_like(x)
    for c in range(3):
        f[:, c] = np.bincount(j, fd[:, c], n) - np.bincount(i, fd[:, c], n)
    epot = float((4.0 * (ir6 * ir6 - ir6) - E_SHIFT).sum())
    return f, epot


def run(
    n_atoms=500,
    temperature=0.75,
    rho=0.84,
    t_equil=20.0,
    t_prod=200.0,
    dt=0.005,
    stride=20,
    seed=0,
    progress=False,
):
    """Positions (frames, n, 3) unwrapped, in sigma, every ``stride`` steps of NVE, plus energies."""
    rng = np.random.default_rng(seed)
    x, box = fcc(n_atoms, rho)
    x = x + rng.normal(0, 0.01, x.shape)
    v = rng.normal(0, np.sqrt(temperature), x.shape)
    v -= v.mean(0)
    n_eq = int(round(t_equil / dt))
    n_pr = int(round(t_prod / dt))
    nl = _pairs(x, box)
    x_ref = x.copy()
    f, ep = forces(x, box, nl)
    frames, etot = [], []
    t0 = _time.time()
    for step in range(n_eq + n_pr):
        v += 0.5 * dt * f
        x += dt * v
        if np.max(np.einsum("ai,ai->a", x - x_ref, x - x_ref)) > (0.5 * SKIN) ** 2:
            nl = _pairs(x, box)
            x_ref = x.copy()
        f, ep = forces(x, box, nl)
        v += 0.5 * dt * f
        if step < n_eq and step % 10 == 0:
            v *= np.sqrt(temperature / (np.mean(v * v) * n_atoms / (n_atoms - 1)))
        if step >= n_eq and (step - n_eq) % stride == 0:
            frames.append(x.copy())
            etot.append(ep + 0.5 * float((v * v).sum()))
        if progress and step % 5000 == 0:
            print(f"step {step} {_time.time() - t0:.1f}s", flush=True)
    return np.array(frames), box, np.array(etot), dt * stride


def to_dataset(pos, box, dt_frame):
    """An atomtwin trajectory in argon units (Å, ps) from reduced positions."""
    from atomtwin.toolkit.schema import make_dataset

    n = pos.shape[1]
    return make_dataset(
        pos * SIGMA_A,
        ["Ar"] * n,
        cell=np.eye(3) * box * SIGMA_A,
        time=np.arange(pos.shape[0]) * dt_frame * TAU_PS,
        pbc=(True, True, True),
    )


def save_npz(path, pos, box, dt_frame, meta):
    """Quantised (1e-3 sigma), frame-differenced int16 positions; lossless to that step."""
    q = np.rint(pos * 1000).astype(np.int64)
    dq = np.diff(q, axis=0)
    assert np.abs(dq).max() < 32767
    tmp = str(path) + ".tmp.npz"
    np.savez_compressed(
        tmp,
        first=q[0].astype(np.int32),
        diff=dq.astype(np.int16),
        box=box,
        dt_frame=dt_frame,
        **{k: np.asarray(v) for k, v in meta.items()},
    )
    os.replace(tmp, path)


def load_npz(path):
    """(positions (frames, n, 3) in sigma, box, dt_frame in tau) of :func:`save_npz`."""
    z = np.load(path)
    q = np.concatenate([z["first"][None].astype(np.int64), z["diff"].astype(np.int64)]).cumsum(
        axis=0
    )
    return q / 1000.0, float(z["box"]), float(z["dt_frame"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-atoms", type=int, default=500)
    ap.add_argument("--t-prod", type=float, default=200.0)
    ap.add_argument("--stride", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t = _time.time()
    pos, box, et, dtf = run(
        n_atoms=a.n_atoms, t_prod=a.t_prod, stride=a.stride, seed=a.seed, progress=True
    )
    print(f"{_time.time() - t:.1f} s; energy drift {et[-1] - et[0]:.2e} of {et.mean():.3f}")
    save_npz(
        a.out,
        pos,
        box,
        dtf,
        {
            "seed": a.seed,
            "n_atoms": a.n_atoms,
            "T": 0.75,
            "rho": 0.84,
            "dt": 0.005,
            "stride": a.stride,
        },
    )
