"""Benchmark: IR spectrum of a large trajectory out of core (time and peak memory).

The trajectory is generated lazily with dask (never written to disk): every atom oscillates
at one of two frequencies (6 and 15 THz) plus white noise, with per-frame Born charges +-1 in
the schema layout (frame, atom, xyz, xyz2).  ``atomtwin``'s :func:`atomtwin.toolkit.spectra.ir_spectrum`
streams the current sum Z*.v chunk by chunk; the peer is the plain in-core route: materialise
the arrays with numpy, ``einsum``, then ``tidynamics.acf`` and an FFT.  Each side runs in its
own process so that its peak RSS is its own.  Wall time is that of the spectrum alone; CPU
time (user + system, the whole process) is the figure to compare on a shared machine.

    python tests/benchmarks/bench_spectra.py --small          # 500 atoms x 10,000 frames
    python tests/benchmarks/bench_spectra.py                  # 10,000 atoms x 100,000 frames (ours only:
                                                              #  the peer would need ~96 GB of RAM)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

DT = 0.002  # ps between frames (Nyquist 250 THz)
NU = (6.0, 15.0)  # THz
CHUNK_BYTES = 64 * 2**20


def lazy_arrays(n_atoms: int, n_frames: int, seed: int = 0):
    """Dask velocities (frame, atom, 3) Å/ps and Born charges (frame, atom, 3, 3) e."""
    import dask.array as da

    chunk = max(1, CHUNK_BYTES // (n_atoms * 3 * 8))
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, (n_atoms, 3))
    omega = 2 * np.pi * np.where(np.arange(n_atoms) % 4 < 2, NU[0], NU[1])[:, None]

    def block(block_info=None):
        (f0, f1), (a0, a1), _ = block_info[None]["array-location"]
        t = np.arange(f0, f1)[:, None, None] * DT
        noise = np.random.default_rng([seed, f0, a0]).standard_normal((f1 - f0, a1 - a0, 3))
        return 5.0 * np.cos(omega[a0:a1] * t + phase[a0:a1]) + noise

    chunks = ((chunk,) * (n_frames // chunk) + ((n_frames % chunk,) if n_frames % chunk else ()), (n_atoms,), (3,))
    vel = da.map_blocks(block, chunks=chunks, dtype=float, meta=np.empty((0, 0, 0)))
    q = np.where(np.arange(n_atoms) % 2 == 0, 1.0, -1.0)[:, None, None] * np.eye(3)
    born = da.broadcast_to(da.from_array(q, chunks=(n_atoms, 3, 3)), (n_frames, n_atoms, 3, 3),
                           chunks=(chunks[0], (n_atoms,), (3,), (3,)))
    return vel, born


def dataset(n_atoms: int, n_frames: int):
    import xarray as xr
    from atomtwin.toolkit import schema as S

    vel, born = lazy_arrays(n_atoms, n_frames)
    species = np.array(["Na", "Cl"] * (n_atoms // 2) + ["Na"] * (n_atoms % 2))
    pos = vel[..., :] * 0.0  # lazy zeros: positions are required by the schema, never computed here
    ds = xr.Dataset(
        {S.POSITIONS: (S.VARIABLES[S.POSITIONS].dims, pos), S.VELOCITIES: (S.VARIABLES[S.VELOCITIES].dims, vel),
         S.BORN_CHARGES: (S.VARIABLES[S.BORN_CHARGES].dims, born),
         S.CELL: (S.VARIABLES[S.CELL].dims, da_cell(n_frames, pos.chunks[0]))},
        coords={S.SPECIES: (S.ATOM, species), S.MASS: (S.ATOM, np.where(species == "Na", 22.99, 35.45)),
                S.TIME: (S.FRAME, np.arange(n_frames) * DT), S.XYZ: ["x", "y", "z"]},
    )
    return S.validate(ds)


def da_cell(n_frames, chunks):
    import dask.array as da

    side = 100.0
    return da.broadcast_to(da.from_array(np.eye(3) * side), (n_frames, 3, 3), chunks=(chunks, (3,), (3,)))


def run_ours(n_atoms: int, n_frames: int) -> dict:
    import dask
    from atomtwin.toolkit.spectra import ir_spectrum

    ds = dataset(n_atoms, n_frames)
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        res = ir_spectrum(ds, temperature=300.0, max_lag=2.0, n_blocks=4, unit="THz", max_frequency=30.0)
    elapsed = time.perf_counter() - t0
    a, nu = res["absorption"].values, res["frequency"].values
    return {"time_s": elapsed, "peak": [float(nu[np.argmax(np.where(abs(nu - f) < 3, a, 0))]) for f in NU],
            "height": float(a.max())}


def run_peer(n_atoms: int, n_frames: int) -> dict:
    import tidynamics
    from atomtwin.toolkit import units as U
    from scipy import fft as sfft

    vel, born = lazy_arrays(n_atoms, n_frames)
    t0 = time.perf_counter()
    v, z = vel.compute(), born.compute()  # in core
    j = np.einsum("faij,faj->fi", z, v)
    n_lags = int(round(2.0 / DT)) + 1
    blocks = np.array_split(j[: (n_frames // 4) * 4], 4)
    specs = []
    for b in blocks:
        c = sum(tidynamics.acf(b[:, i])[:n_lags] for i in range(3))
        w = np.cos(0.5 * np.pi * np.arange(n_lags) / (n_lags - 1)) ** 2
        npad = sfft.next_fast_len(8 * n_lags)
        s = np.zeros(npad)
        s[:n_lags] = c * w
        s[npad - n_lags + 1:] = (c * w)[1:][::-1]
        specs.append(DT * sfft.rfft(s).real)
    nu = sfft.rfftfreq(npad, DT)
    beta = 1 / (U.KB * 300.0)
    a = np.mean(specs, axis=0) * beta / (6 * U.SPEED_OF_LIGHT * 100.0**3 * U.EPSILON0) * 1e8
    elapsed = time.perf_counter() - t0
    keep = nu <= 30.0
    a, nu = a[keep], nu[keep]
    return {"time_s": elapsed, "peak": [float(nu[np.argmax(np.where(abs(nu - f) < 3, a, 0))]) for f in NU],
            "height": float(a.max())}


def child(which: str, n_atoms: int, n_frames: int) -> dict:
    cmd = [sys.executable, __file__, "--run", which, "--atoms", str(n_atoms), "--frames", str(n_frames)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="500 atoms x 10,000 frames (seconds)")
    p.add_argument("--atoms", type=int)
    p.add_argument("--frames", type=int)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--run", choices=("ours", "peer"), help=argparse.SUPPRESS)
    a = p.parse_args()
    n_atoms = a.atoms or (500 if a.small else 10_000)
    n_frames = a.frames or (10_000 if a.small else 100_000)
    if a.run:
        res = run_ours(n_atoms, n_frames) if a.run == "ours" else run_peer(n_atoms, n_frames)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        res["max_rss_mb"] = ru.ru_maxrss / 1024
        res["cpu_s"] = ru.ru_utime + ru.ru_stime  # whole process, imports included
        print(json.dumps(res))
        return 0
    data_gb = n_atoms * n_frames * 12 * 8 / 1e9
    print(f"IR spectrum, {n_atoms} atoms x {n_frames} frames (velocities + per-frame Born charges: "
          f"{data_gb:.1f} GB as float64, generated lazily)")
    ours = child("ours", n_atoms, n_frames)
    peer_ok = not a.no_peer and data_gb < 8.0
    peer = child("peer", n_atoms, n_frames) if peer_ok else None
    print(f"{'':24s}{'atomtwin (dask, out of core)':>30s}{'numpy + tidynamics (in core)':>32s}{'ratio':>8s}")
    for key, label in (("time_s", "wall time (s)"), ("cpu_s", "CPU time (s)"), ("max_rss_mb", "peak RSS (MB)")):
        pv = f"{peer[key]:.2f}" if peer else "n/a (too large)"
        ratio = f"{ours[key] / peer[key]:.2f}" if peer else "-"
        print(f"{label:24s}{ours[key]:30.2f}{pv:>32s}{ratio:>8s}")
    print(f"{'peaks (THz)':24s}{str([round(x, 2) for x in ours['peak']]):>30s}"
          f"{(str([round(x, 2) for x in peer['peak']]) if peer else '-'):>32s}")
    if peer:
        print(f"{'max alpha n (cm^-1)':24s}{ours['height']:30.4g}{peer['height']:32.4g}"
              f"{ours['height'] / peer['height']:8.4f}")
    ok = all(abs(x - f) < 0.6 for x, f in zip(ours["peak"], NU, strict=True))
    if peer:
        ok = ok and abs(ours["height"] / peer["height"] - 1) < 1e-6
    print("agreement: " + ("OK" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
