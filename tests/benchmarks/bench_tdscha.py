"""TD-SCHA steps per second on a 40-atom crystal (EMT and an MLIP), against classical MD.

No TD-SCHA peer is installed (python-sscha/tdscha are not dependencies), so the rows are:

1. TD-SCHA on 40-atom fcc Cu with EMT, one calculator copy per ensemble member (ours now)
   against one shared calculator (before: its neighbour list is rebuilt at nearly every
   configuration) and against classical MD on the same calculator.  The ideal cost of a
   TD-SCHA step is N_ens classical steps, so ``x ideal`` = (N_ens * t_MD) / t_TDSCHA: 1.0
   means no overhead beyond the ensemble's force calls.
2. The same crystal with an (untrained, float64) NequIP from atomtwin.engines.mlip: the whole
   ensemble in one batched model call (:class:`MLIPProvider`) against one ASE-calculator
   call per configuration.
3. The 40-coordinate polar lattice model: batched polynomial evaluation against one call
   per configuration.

Timings are CPU seconds (``time.process_time``, single thread) so that a shared machine
does not distort them; wall seconds are printed beside.

    OMP_NUM_THREADS=1 .venv/bin/python tests/benchmarks/bench_tdscha.py [--small]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _time(fn) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="fast smoke run")
    args = ap.parse_args()
    import torch
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from atomtwin.engines.mlip import ModelConfig, build_model
    from atomtwin.engines.mlip.calculator import Calculator
    from atomtwin.engines.tdscha import (
        ASEProvider,
        CallableProvider,
        EnsembleAverager,
        MLIPProvider,
        SingleCyclePulse,
        System,
        polar_lattice,
        run_classical,
        run_tdscha,
        scha,
    )

    torch.set_num_threads(1)
    n_steps = 3 if args.small else 20
    n_conf = 8 if args.small else 32
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 2, 5))  # 40 atoms
    z = np.array([np.eye(3) * (1.0 if i % 2 else -1.0) for i in range(len(atoms))])
    s = System.from_atoms(atoms, z)
    res = scha(s, 300.0, provider=ASEProvider(atoms, EMT()), n_configs=n_conf, rng=0, max_iter=2, tol=0.0,
               fix_centroid=True)
    pulse = SingleCyclePulse(amplitude=0.05, t0=0.02, width=0.01)
    state = res.state()
    run_tdscha(s, state, EnsembleAverager(ASEProvider(atoms, EMT()), s, 2, rng=1), 2e-3, 1)  # imports warm-up

    def td(provider, n):
        avg = EnsembleAverager(provider, s, n, rng=1, phi_ref=res.phi)
        return _time(lambda: run_tdscha(s, state, avg, 2e-3, n_steps, pulse=pulse, covariances="diagonal"))

    n_md = 10 * n_steps
    md = _time(lambda: run_classical(s, ASEProvider(atoms, EMT()), 2e-3, n_md, pulse=pulse))
    md_step = md[0] / n_md
    rows = []
    for label, copies in (("shared calculator (before)", False), ("copy per member (now)", True)):
        c, w = td(ASEProvider(atoms, EMT(), copies=copies), n_conf)
        rows.append((f"EMT Cu40 N={n_conf} {label}", n_steps / c, n_steps / w, "classical MD", 1 / md_step,
                     n_conf * md_step / (c / n_steps)))

    cfg = ModelConfig(species=("Cu",), r_max=4.0, num_layers=2, lmax=1, mul=8, avg_num_neighbors=40.0,
                      dtype="float64")
    torch.manual_seed(0)
    model = build_model(cfg)
    n_ml = max(2, n_steps // 4)
    ml_prov = ASEProvider(atoms, Calculator(model))
    run_classical(s, ml_prov, 2e-3, 2, pulse=pulse)  # torch warm-up
    ml_md = _time(lambda: run_classical(s, ml_prov, 2e-3, 4 * n_ml, pulse=pulse))[0] / (4 * n_ml)
    for label, prov in (("one call per config", ASEProvider(atoms, Calculator(model), copies=False)),
                        ("batched (MLIPProvider)", MLIPProvider(model, atoms))):
        avg = EnsembleAverager(prov, s, n_conf, rng=1, phi_ref=res.phi)
        c, w = _time(lambda avg=avg: run_tdscha(s, state, avg, 2e-3, n_ml, pulse=pulse, covariances="diagonal",
                                                max_omega_dt=1e9))
        rows.append((f"NequIP Cu40 N={n_conf} {label}", n_ml / c, n_ml / w, "classical MD", 1 / ml_md,
                     n_conf * ml_md / (c / n_ml)))

    m = polar_lattice(n_cells=20)
    sm = System.from_model(m)
    batched = CallableProvider(m.evaluate)
    looped = CallableProvider(lambda x: tuple(np.concatenate(c) for c in zip(*[m.evaluate(xi[None])[:2] for xi in x],
                                                                             strict=True)))
    st = scha(sm, 100.0, model=m).state()
    k = 64 if not args.small else 16
    tl = _time(lambda: run_tdscha(sm, st, EnsembleAverager(looped, sm, k, rng=0), 2e-4, n_steps, covariances="none"))
    tb = _time(lambda: run_tdscha(sm, st, EnsembleAverager(batched, sm, k, rng=0), 2e-4, n_steps, covariances="none"))
    rows.append((f"polar lattice 40 dof N={k} batched", n_steps / tb[0], n_steps / tb[1], "one call per config",
                 n_steps / tl[0], float("nan")))

    print(f"{'case':48s} {'steps/s cpu':>11s} {'(wall)':>8s} {'reference':>20s} {'ref/s cpu':>10s} "
          f"{'ratio':>7s} {'x ideal':>8s}")
    for case, ours, wall, ref, refv, ideal in rows:
        print(f"{case:48s} {ours:11.2f} {wall:8.2f} {ref:>20s} {refv:10.2f} {ours / refv:7.4f} {ideal:8.2f}")


if __name__ == "__main__":
    main()
