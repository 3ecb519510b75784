"""TD-SCHA steps per second: a 40-atom crystal with EMT, and batched vs per-configuration evaluation.

No TD-SCHA peer is installed (python-sscha/tdscha are not dependencies), so the comparison
rows are: (1) TD-SCHA against classical MD on the same calculator (the ideal cost ratio is
the ensemble size, since a TD-SCHA step evaluates every configuration once); (2) the same
ensemble evaluated in one batched call against one call per configuration.

    .venv/bin/python tests/benchmarks/bench_tdscha.py [--small]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _time(fn, repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="fast smoke run")
    args = ap.parse_args()
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from engines.tdscha import (
        ASEProvider,
        CallableProvider,
        EnsembleAverager,
        SingleCyclePulse,
        System,
        polar_lattice,
        run_classical,
        run_tdscha,
        scha,
    )

    n_steps = 3 if args.small else 20
    n_conf = 8 if args.small else 32
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 2, 5))  # 40 atoms
    z = np.array([np.eye(3) * (1.0 if i % 2 else -1.0) for i in range(len(atoms))])
    s = System.from_atoms(atoms, z)
    prov = ASEProvider(atoms, EMT())
    res = scha(s, 300.0, provider=prov, n_configs=n_conf, rng=0, max_iter=2, tol=0.0, fix_centroid=True)
    pulse = SingleCyclePulse(amplitude=0.05, t0=0.02, width=0.01)
    avg = EnsembleAverager(prov, s, n_conf, rng=1, phi_ref=res.phi)
    t_td = _time(lambda: run_tdscha(s, res.state(), avg, 2e-3, n_steps, pulse=pulse, covariances="diagonal"))
    t_md = _time(lambda: run_classical(s, prov, 2e-3, n_steps, pulse=pulse))
    rows = [("TD-SCHA 40-atom Cu EMT", f"N={n_conf}", n_steps / t_td, "classical MD", n_steps / t_md)]

    # batched vs per-configuration: a 40-coordinate SrTiO3-like polynomial lattice
    m = polar_lattice(n_cells=20)
    sm = System.from_model(m)
    batched = CallableProvider(m.evaluate)
    looped = CallableProvider(lambda x: tuple(np.concatenate(c) for c in zip(*[m.evaluate(xi[None])[:2] for xi in x],
                                                                             strict=True)))
    st = scha(sm, 100.0, model=m).state()
    k = 64 if not args.small else 16
    tb = _time(lambda: run_tdscha(sm, st, EnsembleAverager(batched, sm, k, rng=0), 2e-4, n_steps, covariances="none"))
    tl = _time(lambda: run_tdscha(sm, st, EnsembleAverager(looped, sm, k, rng=0), 2e-4, n_steps, covariances="none"))
    rows.append(("TD-SCHA 40-dof polar lattice", f"N={k} batched", n_steps / tb, "one call per config", n_steps / tl))

    print(f"{'case':32s} {'ensemble':16s} {'ours steps/s':>13s} {'reference':>22s} {'ref steps/s':>12s} {'ratio':>8s}")
    for case, ens, ours, ref, refv in rows:
        print(f"{case:32s} {ens:16s} {ours:13.2f} {ref:>22s} {refv:12.2f} {ours / refv:8.3f}")


if __name__ == "__main__":
    main()
