"""D and its error bar against kinisi (Bayesian regression with an estimated MSD
covariance, McCluskey et al.) on the same Brownian trajectory and the same fit window."""

from __future__ import annotations

import numpy as np
import pytest
from atomtwin.toolkit.dynamics import diffusion
from atomtwin.toolkit.schema import make_dataset


@pytest.mark.peer
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_diffusion_and_error_bar_agree_with_kinisi():
    pytest.importorskip("kinisi")
    sc = pytest.importorskip("scipp")
    from ase import Atoms
    from kinisi.analyze import DiffusionAnalyzer

    n_atoms, n_frames, box, D, dt = 32, 400, 20.0, 0.05, 0.1  # D in Å^2/ps, dt in ps
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, np.sqrt(2 * D * dt), (n_frames, n_atoms, 3)), axis=0)
    wrapped = np.mod(x, box)
    traj = [Atoms(f"Li{n_atoms}", positions=p, cell=np.eye(3) * box, pbc=True) for p in wrapped]
    lags = sc.array(dims=["time interval"], values=np.arange(1, n_frames // 2) * dt, unit="ps")
    k = DiffusionAnalyzer.from_ase(traj, specie="Li", time_step=sc.scalar(dt, unit="ps"),
                                   step_skip=sc.scalar(1), dt=lags, progress=False)
    k.diffusion(start_dt=sc.scalar(2.0, unit="ps"), progress=False, n_samples=500,
                random_state=np.random.RandomState(0))
    to_a2ps = {"cm^2/s": 1e4, "Å^2/ps": 1.0}[str(k.D.unit)]  # 1 cm^2/s = 1e16 Å^2 / 1e12 ps
    d_k, e_k = float(np.mean(k.D.values)) * to_a2ps, float(np.std(k.D.values)) * to_a2ps
    # same data, same window [2, 19.9] ps, both remove the centre-of-mass drift
    ours = diffusion(make_dataset(wrapped, ["Li"] * n_atoms, cell=np.eye(3) * box, time=np.arange(n_frames) * dt),
                     "Li", start=2.0, stop=19.9)
    d_o, e_o = float(ours.D), float(ours.D_err)
    # Calibration of this comparison over 40 seeds of exactly this set-up (run once, by hand):
    #   ours:   empirical scatter of D 0.00250, mean reported error 0.00242 (calibrated);
    #   kinisi: empirical scatter 0.00334, mean reported error 0.00442 (conservative by 1.3x),
    #           its estimator being ~1.3x less efficient here than the exact-covariance GLS;
    #   per seed, kinisi's error / ours = 1.83 +- 0.10 and the two D differ by 0.0024 (std),
    #   about half their combined error.
    # So: D agrees within the combined error, and the ratio of error bars lies in
    # 1.83 +- 0.4 (4 per-seed standard deviations).
    assert abs(d_k - d_o) < np.hypot(e_k, e_o)
    assert 1.4 < e_k / e_o < 2.3
    # and each covers the truth within 3 of its own error bars
    assert abs(d_o - D) < 3 * e_o and abs(d_k - D) < 3 * e_k
