"""Light-induced polar order in a quantum paraelectric: TD-SCHA against classical dynamics.

The model (:func:`soft_hard_lattice`, parameters in :class:`SoftHardLattice`) is a periodic
chain of ``n_cells`` cells, each with a soft polar coordinate s_i (a shallow double well,
polarised along z) and a hard infrared-active coordinate h_i (polarised along x, Born
charge ``z_hard``), coupled biquadratically (allowed by cubic symmetry):

    V = sum_i [ a s_i²/2 + b s_i⁴ + J (s_i - s_{i+1})²/2 + k_h h_i²/2 + b_h h_i⁴ + g s_i² h_i² ]

At T = 0 the SCHA Gaussian sits at s = 0 (:func:`ground_state`): the fluctuation term
12 b <ds²> makes the soft curvature positive although the classical minima are at
±sqrt(-a/4b).  A mid-IR pulse along x drives h only and keeps the s -> -s symmetry.  With
g < 0 the pumped <h²> lowers the soft curvature a + 12 b (<s>² + <ds²>) + 2 g <h²>; when it
turns negative a seeded centroid grows, its width contracts as it enters a well, and the
reduced fluctuations keep it there after the pulse (a metastable polar state).

Drivers: :func:`pump_tdscha` (TD-SCHA with exact Gaussian averages from the T = 0 SCHA
state, a tiny seed on the soft centroid), :func:`pump_classical` (classical MD of the same
lattice under the same pulse, from the Wigner distribution of the same initial state:
the "truncated Wigner" classical limit), :func:`scan_pulses` (final centroid over pulse
amplitude and frequency) and :func:`is_polar` (the criterion used).  Figures are in
:mod:`atomtwin.engines.tdscha.light_order_plot`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import xarray as xr
from atomtwin.engines.tdscha.averages import ExactAverager
from atomtwin.engines.tdscha.dynamics import TDSCHAState
from atomtwin.engines.tdscha.models import PolynomialModel
from atomtwin.engines.tdscha.providers import System, TDSCHAError
from atomtwin.engines.tdscha.pulses import GaussianPulse, external_force
from atomtwin.engines.tdscha.runner import run_tdscha
from atomtwin.toolkit.errors import InputError
from atomtwin.toolkit.units import AMU_A2_PS2_TO_EV, HBAR


def soft_hard_lattice(
    n_cells: int = 4,
    a: float = -1.0,
    b: float = 18.0,
    J: float = 0.5,
    k_hard: float = 18.0,
    b_hard: float = 300.0,
    g: float = -100.0,
    m_soft: float = 30.0,
    m_hard: float = 16.0,
    z_hard: float = 6.0,
    z_soft: float = 7.0,
) -> PolynomialModel:
    """Chain of soft polar (s, along z) and hard IR-active (h, along x) modes; see the module doc.

    Parameters are in eV, Å, amu, e: ``a`` (eV/Å², < 0 for a double well), ``b`` (eV/Å⁴),
    ``J`` (eV/Å², nearest-neighbour soft-mode coupling), ``k_hard`` (eV/Å²), ``b_hard`` (eV/Å⁴,
    a quartic b_hard h⁴ that keeps V bounded below when g < 0: needs g² < 4 b b_hard),
    ``g`` (eV/Å⁴, biquadratic s²h²), masses (amu), Born charges (e):
    h couples to a field along x, s to one along z.  Coordinates are ordered s_0..s_{n-1},
    h_0..h_{n-1}.
    """
    if n_cells < 1 or b <= 0 or k_hard <= 0 or b_hard < 0:
        raise InputError("soft_hard_lattice needs n_cells >= 1, b > 0, k_hard > 0 and b_hard >= 0.")
    if g < 0 and g * g >= 4.0 * b * b_hard:
        raise InputError(
            f"g = {g} eV/Å⁴ < 0 makes V unbounded below along h unless g² < 4 b b_hard "
            f"(= {4 * b * b_hard:g}). Fix: raise b_hard above {g * g / (4 * b):.4g} eV/Å⁴."
        )
    n = 2 * n_cells
    K = np.zeros((n, n))
    T4 = np.zeros((n, n, n, n))
    for i in range(n_cells):
        j, h = (i + 1) % n_cells, n_cells + i
        K[i, i] += a
        K[h, h] = k_hard
        if n_cells > 1:
            K[i, i] += J
            K[j, j] += J
            K[i, j] -= J
            K[j, i] -= J
        T4[i, i, i, i] = 24.0 * b
        T4[h, h, h, h] = 24.0 * b_hard
        for p in set(itertools.permutations((i, i, h, h))):
            T4[p] = 4.0 * g  # d4(g s² h²)/ds² dh² = 4 g
    z = np.zeros((n, 3))
    z[:n_cells, 2] = z_soft
    z[n_cells:, 0] = z_hard
    masses = np.r_[np.full(n_cells, m_soft), np.full(n_cells, m_hard)]
    names = tuple(f"s{i}" for i in range(n_cells)) + tuple(f"h{i}" for i in range(n_cells))
    return PolynomialModel(K=K, T4=T4, masses=masses, born_charges=z, names=names)


@dataclass(frozen=True)
class SoftHardLattice:
    """Parameters of the soft/hard-mode chain (eV, Å, amu, e); see :func:`soft_hard_lattice`.

    The defaults are SrTiO3-like anchors: a Ti-O soft polar mode (reduced mass 30 amu) in a
    3.5 meV double well with minima at ±0.118 Å, quantum paraelectric at T = 0 (the
    symmetric Gaussian is the only SCHA minimum; SCHA Gamma frequency 1.25 THz), and a hard
    polar Ti-O stretching mode (16 amu, Born charge 6 e) at 18.6 THz, the mid-IR pump
    resonance.
    """

    n_cells: int = 4
    a: float = -1.0
    b: float = 18.0
    J: float = 0.5
    k_hard: float = 18.0
    b_hard: float = 300.0
    g: float = -100.0
    m_soft: float = 30.0
    m_hard: float = 16.0
    z_hard: float = 6.0
    z_soft: float = 7.0

    def model(self) -> PolynomialModel:
        """The :class:`PolynomialModel` (coordinates s_0..s_{n-1}, h_0..h_{n-1})."""
        return soft_hard_lattice(**self.__dict__)

    @property
    def classical_minimum(self) -> float:
        """|s| (Å) at the classical minimum of the uniform soft mode, sqrt(-a / 4 b)."""
        return float(np.sqrt(-self.a / (4.0 * self.b))) if self.a < 0 else 0.0

    def describe(self) -> str:
        """The parameters on one line (for figure notes)."""
        return (
            f"{self.n_cells} cells: a = {self.a:g} eV/Å², b = {self.b:g} eV/Å⁴, J = {self.J:g} eV/Å², "
            f"k_h = {self.k_hard:g} eV/Å², b_h = {self.b_hard:g} eV/Å⁴, g = {self.g:g} eV/Å⁴, "
            f"m_s = {self.m_soft:g} amu, m_h = {self.m_hard:g} amu, Z_h = {self.z_hard:g} e"
        )

    @property
    def barrier(self) -> float:
        """Classical double-well barrier per cell, a² / 16 b (eV)."""
        return self.a**2 / (16.0 * self.b) if self.a < 0 else 0.0


@dataclass(frozen=True)
class GroundState:
    """The T = 0 SCHA state of the symmetric (paraelectric) lattice.

    Attributes
    ----------
    kappa_soft, kappa_hard
        Self-consistent local curvatures <d²V/ds_i²> and <d²V/dh_i²>, eV/Å².
    var_soft, var_hard
        Zero-point variances <ds_i²>, <dh_i²>, Å².
    soft_thz, hard_thz
        SCHA frequencies of the uniform (Gamma) soft and hard modes, THz.
    soft_zpe
        Zero-point energy of the soft branch per cell, sum_q hbar omega_q / (2 N), eV.
    phi
        Mass-scaled SCHA force constants (n, n), 1/ps².
    A, B
        Mass-scaled position and momentum covariances of the pure Gaussian (n, n).
    """

    kappa_soft: float
    kappa_hard: float
    var_soft: float
    var_hard: float
    soft_thz: float
    hard_thz: float
    soft_zpe: float
    phi: np.ndarray
    A: np.ndarray
    B: np.ndarray


def ground_state(lattice: SoftHardLattice, tol: float = 1e-13, max_iter: int = 500) -> GroundState:
    """T = 0 SCHA state of a :class:`SoftHardLattice` at the symmetric centroid (s = h = 0).

    The lattice is translation invariant, so the SCHA force constants are those of the
    harmonic lattice with the local curvatures renormalised:

        kappa_s = a + 12 b <ds²> + 2 g <dh²>,   kappa_h = k_h + 12 b_h <dh²> + 2 g <ds²>,
        <ds²> = (1/N) sum_q hbar / (2 sqrt(m_s (kappa_s + d_q))),  <dh²> = hbar / (2 sqrt(m_h kappa_h)),

    with d_q the eigenvalues of the J coupling.  The soft equation is solved by bracketing
    (its right side falls monotonically with kappa_s, and on a finite chain the Gamma
    term of <ds²> diverges as kappa_s -> 0, so one root kappa_s > 0 exists); the weak
    hard-soft feedback by fixed point.  This is the symmetric stationary point; whether a
    polar Gaussian lies lower is what :func:`energy_profile` answers.
    """
    from scipy.optimize import brentq

    p = lattice
    model = p.model()
    n = p.n_cells
    ms, mh = p.m_soft * AMU_A2_PS2_TO_EV, p.m_hard * AMU_A2_PS2_TO_EV
    J_part = model.K[:n, :n] - p.a * np.eye(n)  # the J coupling (a Laplacian)
    d_q = np.clip(np.linalg.eigvalsh(J_part), 0.0, None)  # its dispersion, 0 at Gamma

    def var_s(k):
        return float(np.mean(HBAR / (2.0 * np.sqrt(ms * (k + d_q)))))

    def var_h(k):
        return HBAR / (2.0 * np.sqrt(mh * k))

    kh = p.k_hard
    ks = 0.0
    for _ in range(max_iter):
        h2 = var_h(kh)
        f = lambda k, h2=h2: p.a + 12.0 * p.b * var_s(k) + 2.0 * p.g * h2 - k  # noqa: E731
        hi = 1.0
        while f(hi) > 0:
            hi *= 4.0
        ks_new = brentq(f, 1e-14, hi, xtol=1e-15, rtol=1e-15)
        kh_new = p.k_hard + 12.0 * p.b_hard * h2 + 2.0 * p.g * var_s(ks_new)
        if kh_new <= 0:
            raise TDSCHAError(
                "the hard mode is unstable in the SCHA ground state (kappa_h <= 0). "
                "Fix: raise k_hard or reduce |g|."
            )
        done = abs(ks_new - ks) < tol * max(1.0, ks) and abs(kh_new - kh) < tol * kh
        ks, kh = ks_new, kh_new
        if done:
            break
    else:
        raise TDSCHAError(
            f"the symmetric SCHA ground state did not converge in {max_iter} iterations."
        )
    K_eff = np.zeros((2 * n, 2 * n))
    K_eff[:n, :n] = J_part + ks * np.eye(n)
    K_eff[n:, n:] = kh * np.eye(n)
    sm = np.sqrt(model.masses * AMU_A2_PS2_TO_EV)
    phi = K_eff / sm[:, None] / sm[None, :]
    w2, v = np.linalg.eigh(phi)
    w = np.sqrt(w2)
    A = (v * (0.5 * HBAR / w)) @ v.T
    B = (v * (0.5 * HBAR * w)) @ v.T
    zpe = float(np.mean(0.5 * HBAR * np.sqrt((ks + d_q) / ms)))
    return GroundState(
        ks,
        kh,
        var_s(ks),
        var_h(kh),
        float(np.sqrt(ks / ms) / (2 * np.pi)),
        float(np.sqrt(kh / mh) / (2 * np.pi)),
        zpe,
        phi,
        A,
        B,
    )


def _pulse(
    lattice: SoftHardLattice,
    gs: GroundState,
    amplitude: float,
    frequency: float | None,
    width: float,
    t0: float | None,
) -> GaussianPulse:
    return GaussianPulse(
        amplitude=amplitude,
        frequency=gs.hard_thz if frequency is None else frequency,
        t0=3.0 * width if t0 is None else t0,
        width=width,
        polarization=(1.0, 0.0, 0.0),
    )


def pump_tdscha(
    lattice: SoftHardLattice,
    amplitude: float,
    frequency: float | None = None,
    width: float = 0.3,
    duration: float = 8.0,
    seed: float = 1e-3,
    *,
    t0: float | None = None,
    dt: float = 2e-3,
    output_every: int = 10,
    ground: GroundState | None = None,
) -> xr.Dataset:
    """TD-SCHA of the lattice from its T = 0 SCHA state under a Gaussian pulse along x.

    Parameters
    ----------
    lattice
        The :class:`SoftHardLattice`.
    amplitude
        Peak field (inside the crystal), V/Å; 0 runs without a pulse.
    frequency
        Carrier, THz; default the SCHA frequency of the hard mode (resonant).
    width
        Standard deviation of the Gaussian envelope, ps (centred at ``t0``, default 3 width).
    duration
        Length of the run, ps.
    seed
        Initial uniform displacement of the soft centroid, Å: the symmetry-breaking seed
        (s -> -s is a symmetry of the model and of the pulse, so s = 0 exactly stays 0).
    dt
        Time step, ps (omega_hard dt ~ 0.23 at the default).

    Returns
    -------
    xarray.Dataset
        :func:`run_tdscha`'s Dataset plus ``polarization`` (frame) = mean soft centroid, Å,
        ``soft_variance`` (frame) = mean <ds_i²>, Å², ``hard_centroid`` (frame), Å, and the
        lattice, pulse and seed in attrs.
    """
    gs = ground_state(lattice) if ground is None else ground
    model = lattice.model()
    system = System.from_model(model)
    n = lattice.n_cells
    R = np.zeros(model.n)
    R[:n] = seed * system.sqrt_m[:n]
    state = TDSCHAState.from_covariances(R, None, gs.A, gs.B)
    pulse = _pulse(lattice, gs, amplitude, frequency, width, t0) if amplitude else None
    attrs = {f"lattice_{k}": v for k, v in lattice.__dict__.items()}
    attrs.update(
        pulse_amplitude=amplitude,
        pulse_frequency=(gs.hard_thz if frequency is None else frequency),
        pulse_width=width,
        seed=seed,
    )
    ds = run_tdscha(
        system,
        state,
        ExactAverager(model, system),
        dt,
        int(round(duration / dt)),
        pulse=pulse,
        output_every=output_every,
        covariances="diagonal",
        modes=None,
        attrs=attrs,
    )
    return _summarise(ds, n, ds.centroid.values, ds.position_variance.values)


def _summarise(ds: xr.Dataset, n: int, centroid: np.ndarray, variance: np.ndarray) -> xr.Dataset:
    return ds.assign(
        polarization=(
            "frame",
            centroid[:, :n].mean(1),
            {"units": "Å", "description": "mean soft centroid"},
        ),
        soft_variance=(
            "frame",
            variance[:, :n].mean(1),
            {"units": "Å^2", "description": "mean <ds_i^2>"},
        ),
        hard_centroid=("frame", centroid[:, n:].mean(1), {"units": "Å"}),
    )


def pump_classical(
    lattice: SoftHardLattice,
    amplitude: float,
    frequency: float | None = None,
    width: float = 0.3,
    duration: float = 8.0,
    seed: float = 1e-3,
    *,
    n_traj: int = 256,
    rng=0,
    t0: float | None = None,
    dt: float = 2e-3,
    output_every: int = 10,
    ground: GroundState | None = None,
) -> xr.Dataset:
    """Classical MD of the same lattice under the same pulse, from the same initial distribution.

    The ``n_traj`` initial conditions are drawn from the Wigner function of the TD-SCHA
    initial state (positions ~ N(seed, A), momenta ~ N(0, B)): the classical system has the
    same mean, fluctuations and energy as the quantum one at t = 0, and only the equations of
    motion differ (Newton's for each member instead of the Gaussian's).  Antithetic pairs in
    the fluctuations keep the ensemble symmetric about the seed.

    Returns
    -------
    xarray.Dataset
        ``polarization`` (frame) = ensemble mean of the cell-averaged s, Å; ``soft_variance``
        (frame) = ensemble variance of s_i averaged over cells, Å²; ``hard_centroid`` (frame),
        Å; ``polarization_final`` (traj) = each member's cell-averaged s at the end, Å.
    """
    if n_traj < 2 or n_traj % 2:
        raise InputError(f"n_traj={n_traj}: give an even number >= 2 (antithetic pairs).")
    gs = ground_state(lattice) if ground is None else ground
    model = lattice.model()
    system = System.from_model(model)
    n = lattice.n_cells
    sm = system.sqrt_m
    gen = np.random.default_rng(rng)
    half = gen.standard_normal((n_traj // 2, 2 * model.n))
    xi = np.concatenate([half, -half])
    La, Lb = np.linalg.cholesky(gs.A), np.linalg.cholesky(gs.B)
    R = xi[:, : model.n] @ La.T
    R[:, :n] += seed * sm[:n]
    P = xi[:, model.n :] @ Lb.T
    pulse = _pulse(lattice, gs, amplitude, frequency, width, t0) if amplitude else None
    fext = external_force(system, pulse)

    def force(R):
        return model.evaluate(R / sm)[1] / sm

    f = force(R)
    n_steps = int(round(duration / dt))
    rec_t, rec_c, rec_v = [], [], []

    def record(t, R):
        x = R / sm
        rec_t.append(t)
        rec_c.append(x.mean(0))
        rec_v.append(x.var(0))

    record(0.0, R)
    t = 0.0
    for step in range(1, n_steps + 1):
        P += 0.5 * dt * (f + fext(t))
        R += dt * P
        f = force(R)
        t = step * dt
        P += 0.5 * dt * (f + fext(t))
        if not np.all(np.isfinite(P)):
            raise TDSCHAError(
                f"classical MD became non-finite at step {step}. Fix: reduce dt.", step
            )
        if step % output_every == 0:
            record(t, R)
    c, v = np.array(rec_c), np.array(rec_v)
    ds = xr.Dataset(
        {
            "centroid": (("frame", "dof"), c, {"units": "Å"}),
            "position_variance": (("frame", "dof"), v, {"units": "Å^2"}),
            "polarization_final": ("traj", (R / sm)[:, :n].mean(1), {"units": "Å"}),
        },
        coords={"time": ("frame", np.array(rec_t), {"units": "ps"}), "dof": list(model.names)},
        attrs={
            "engine": "atomtwin.tdscha.light_order.classical",
            "n_traj": n_traj,
            "pulse_amplitude": amplitude,
            "seed": seed,
        },
    )
    return _summarise(ds, n, c, v)


def late_polarization(ds: xr.Dataset, window: float = 3.0) -> float:
    """Mean ``polarization`` (Å) over the last ``window`` ps of a run."""
    t = ds.time.values
    return float(ds.polarization.values[t >= t[-1] - window].mean())


def is_polar(ds: xr.Dataset, lattice: SoftHardLattice, window: float = 3.0) -> bool:
    """True when the soft centroid stayed in one well over the last ``window`` ps.

    Criterion: ``polarization`` keeps one sign in the window and its mean there exceeds half
    the classical minimum sqrt(-a/4b).  A centroid that still swings through zero (hot,
    symmetric) or never left it (weak or off-resonant pump) fails it.
    """
    t = ds.time.values
    p = ds.polarization.values[t >= t[-1] - window]
    return bool(
        (np.all(p > 0) or np.all(p < 0)) and abs(p.mean()) > 0.5 * lattice.classical_minimum
    )


def scan_pulses(
    lattice: SoftHardLattice,
    amplitudes,
    frequencies,
    width: float = 0.3,
    duration: float = 10.0,
    seed: float = 1e-3,
    window: float = 3.0,
    **kwargs,
) -> xr.Dataset:
    """Map TD-SCHA's late polarization over pulse amplitude (V/Å) and carrier frequency (THz).

    Returns
    -------
    xarray.Dataset
        ``late_polarization`` (amplitude, frequency), Å: mean soft centroid over the last
        ``window`` ps; ``polar`` (amplitude, frequency), bool: :func:`is_polar`;
        ``absorbed`` (amplitude, frequency), eV per cell: the work done by the pulse.
    """
    gs = ground_state(lattice)
    amplitudes, frequencies = np.asarray(amplitudes, float), np.asarray(frequencies, float)
    late = np.zeros((amplitudes.size, frequencies.size))
    polar = np.zeros_like(late, dtype=bool)
    work = np.zeros_like(late)
    for i, amp in enumerate(amplitudes):
        for j, freq in enumerate(frequencies):
            ds = pump_tdscha(lattice, amp, freq, width, duration, seed, ground=gs, **kwargs)
            late[i, j] = late_polarization(ds, window)
            polar[i, j] = is_polar(ds, lattice, window)
            work[i, j] = ds.work.values[-1] / lattice.n_cells
    coords = {
        "amplitude": ("amplitude", amplitudes, {"units": "V/Å"}),
        "frequency": ("frequency", frequencies, {"units": "THz"}),
    }
    return xr.Dataset(
        {
            "late_polarization": (("amplitude", "frequency"), late, {"units": "Å"}),
            "polar": (("amplitude", "frequency"), polar),
            "absorbed": (("amplitude", "frequency"), work, {"units": "eV"}),
        },
        coords=coords,
        attrs={
            "pulse_width": width,
            "duration": duration,
            "seed": seed,
            "hard_thz": gs.hard_thz,
            "soft_thz": gs.soft_thz,
        },
    )


def energy_profile(
    lattice: SoftHardLattice,
    centroids,
    tol: float = 1e-11,
    max_iter: int = 5000,
    ground: GroundState | None = None,
) -> np.ndarray:
    """T = 0 SCHA energy (eV per cell) against a uniform soft centroid, relative to s = 0.

    At each centroid c (Å; s_i = c, h_i = 0) the pure Gaussian's force constants are relaxed
    to self-consistency, phi = <d²V>(c, A(phi)) with A = hbar/2 phi^(-1/2) (mass-scaled),
    by damped fixed point with exact averages, and E(c) = <V> + tr(B)/2 is the SCHA free
    energy at T = 0 constrained to that centroid.  A quantum paraelectric has E(c) > 0 for
    every c != 0; a polar SCHA minimum (the first-order transition of the SCHA in a double
    well) shows up as E(c) < 0.
    """
    gs = ground_state(lattice) if ground is None else ground
    model = lattice.model()
    sm = np.sqrt(model.masses * AMU_A2_PS2_TO_EV)
    n = lattice.n_cells

    def energy(c, phi):
        x = np.zeros(model.n)
        x[:n] = c
        for _ in range(max_iter):
            w2, v = np.linalg.eigh(phi)
            if w2.min() <= 0:
                raise TDSCHAError(f"no stable Gaussian at centroid {c:g} Å (SCHA curvature < 0).")
            A = (v * (0.5 * HBAR / np.sqrt(w2))) @ v.T
            e, _, hess = model.gaussian_averages(x, A / sm[:, None] / sm[None, :])
            new = hess / sm[:, None] / sm[None, :]
            if np.abs(new - phi).max() < tol * np.abs(phi).max():
                break
            phi = 0.7 * phi + 0.3 * new
        else:
            raise TDSCHAError(
                f"SCHA at fixed centroid {c:g} Å did not converge in {max_iter} steps."
            )
        w2, v = np.linalg.eigh(new)
        return e + 0.25 * HBAR * float(np.sum(np.sqrt(w2))), new

    e0, _ = energy(0.0, gs.phi)
    out, phi = [], gs.phi
    for c in np.asarray(centroids, float):
        e, phi = energy(c, phi)
        out.append((e - e0) / n)
    return np.array(out)
