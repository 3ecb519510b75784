"""Recalibration of predicted uncertainties on held-out data, and the calibration report.

A raw per-atom uncertainty ``s_i`` (committee spread in eV/Å, or a dimensionless GP
leverage) becomes a per-component force standard deviation ``sigma_i`` (eV/Å):

* ``kind="scale"``: ``sigma = c s`` with one factor ``c`` chosen so that a fraction
  erf(1/√2) = 68.27 % of the held-out force components satisfy ``|dF_ic| <= c s_i`` (the
  1-sigma coverage of a Gaussian, matched exactly on the calibration set);
* ``kind="isotonic"``: ``sigma^2 = g(s)`` with ``g`` the monotone (isotonic) regression of
  the mean squared component error on ``s``, interpolated linearly, extrapolated flat.

The report (:func:`calibration_report`): 1- and 2-sigma coverage of the force components
(Gaussian: 0.683, 0.954) and the Spearman rank correlation between ``sigma_i`` and the
per-atom error norm ``|dF_i|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from atomtwin.toolkit.errors import InputError

__all__ = ["Calibration", "calibration_report", "GAUSS_1SIGMA", "GAUSS_2SIGMA"]

GAUSS_1SIGMA = math.erf(1 / math.sqrt(2))
GAUSS_2SIGMA = math.erf(2 / math.sqrt(2))


def _flat(sigma, err) -> tuple[np.ndarray, np.ndarray]:
    s = np.concatenate([np.ravel(x) for x in sigma]) if isinstance(sigma, list) else np.ravel(sigma)
    e = (
        np.concatenate([np.reshape(x, (-1, 3)) for x in err])
        if isinstance(err, list)
        else np.reshape(err, (-1, 3))
    )
    if s.shape[0] != e.shape[0]:
        raise InputError(
            f"{s.shape[0]} uncertainties for {e.shape[0]} atoms' force errors. "
            "Fix: pass one sigma per atom and an (N, 3) error array."
        )
    return s, e


@dataclass
class Calibration:
    """Map from raw per-atom uncertainty to a per-component force std (eV/Å).

    Attributes
    ----------
    kind : ``"scale"`` or ``"isotonic"``.  scale : the factor (``"scale"``).
    x, y : knots of the isotonic map s -> sigma (``"isotonic"``).
    """

    kind: str = "scale"
    scale: float = 1.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    @classmethod
    def fit(cls, sigma, err, kind: str = "scale") -> Calibration:
        """Fit on held-out raw uncertainties ``sigma`` (N,) and force errors ``err`` (N, 3)
        (or lists of per-structure arrays)."""
        s, e = _flat(sigma, err)
        ok = np.isfinite(s)
        s, e = s[ok], e[ok]
        if s.size == 0:
            raise InputError("no finite uncertainty to calibrate on. Fix: give held-out frames.")
        if kind == "scale":
            ratio = (np.abs(e) / np.maximum(s, 1e-300)[:, None]).ravel()
            c = float(np.quantile(ratio, GAUSS_1SIGMA))
            return cls("scale", scale=c if np.isfinite(c) and c > 0 else 1.0)
        if kind == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            order = np.argsort(s)
            iso = IsotonicRegression(increasing=True, out_of_bounds="clip")
            y = iso.fit_transform(s[order], (e[order] ** 2).mean(1))
            # knots: one per distinct fitted level
            keep = np.r_[True, np.diff(y) != 0] | np.r_[np.diff(y) != 0, True]
            return cls(
                "isotonic", x=s[order][keep].tolist(), y=np.sqrt(np.maximum(y[keep], 0)).tolist()
            )
        raise InputError(f"calibration kind {kind!r} is unknown. Fix: 'scale' or 'isotonic'.")

    def __call__(self, sigma) -> np.ndarray:
        s = np.asarray(sigma, dtype=float)
        if self.kind == "scale":
            return self.scale * s
        if not self.x:
            return s
        return np.interp(s, self.x, self.y)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "scale": self.scale, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(
            d.get("kind", "scale"),
            float(d.get("scale", 1.0)),
            list(d.get("x", [])),
            list(d.get("y", [])),
        )


def calibration_report(sigma, err) -> dict[str, float]:
    """Coverage and rank correlation of calibrated per-atom sigmas (eV/Å) against force
    errors (N, 3) eV/Å.

    Returns
    -------
    dict: ``coverage_1sigma``, ``coverage_2sigma`` (fraction of force components with
    ``|dF_ic| <= k sigma_i``), ``spearman`` (sigma_i vs ``|dF_i|``), ``n_atoms``,
    ``force_rmse`` and ``mean_sigma`` (eV/Å).
    """
    from scipy.stats import spearmanr

    s, e = _flat(sigma, err)
    a = np.abs(e)
    rho = spearmanr(s, np.linalg.norm(e, axis=1)).statistic if s.size > 2 else math.nan
    return {
        "coverage_1sigma": float((a <= s[:, None]).mean()),
        "coverage_2sigma": float((a <= 2 * s[:, None]).mean()),
        "spearman": float(rho),
        "n_atoms": int(s.size),
        "force_rmse": float(np.sqrt((e**2).mean())),
        "mean_sigma": float(np.mean(s[np.isfinite(s)])) if np.isfinite(s).any() else math.inf,
    }
