"""Calibration, the decision threshold and held-out metrics of the reasoning classifier.

Pure: NumPy arrays in, numbers out (SciPy's optimiser for Platt/temperature scaling,
scikit-learn's isotonic regression on request); no torch. `curation.model` trains and scores,
then calls these on the validation split (see its docstring for the documented rules) and
re-exports every name here.

* `Calibrator` / `fit_calibrator` -- raw logit z of ``reasoning`` -> calibrated probability:
  Platt scaling (``platt``), temperature (``temperature``), isotonic (``isotonic``) or the
  plain sigmoid (``none``).
* `choose_threshold` -- the threshold on calibrated probabilities that maximises the rule's
  metric (`THRESHOLD_RULES`), ties to the candidate closest to 0.5.
* `classification_metrics`, `expected_calibration_error` -- what training and evaluation
  report (kappa, balanced accuracy and F1 are `curation.metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from curation import metrics
from curation.errors import InputError

__all__ = [
    "CALIBRATIONS",
    "THRESHOLD_RULES",
    "Calibrator",
    "choose_threshold",
    "classification_metrics",
    "expected_calibration_error",
    "fit_calibrator",
]

THRESHOLD_RULES = ("kappa", "balanced_accuracy", "f1_macro", "fixed")
CALIBRATIONS = ("platt", "temperature", "isotonic", "none")


# ----------------------------------------------------------------------------------------
# Metrics (kappa, balanced accuracy and F1 are `curation.metrics`)
# ----------------------------------------------------------------------------------------
def expected_calibration_error(probs: Sequence[float] | np.ndarray, y: Sequence[int] | np.ndarray, bins: int = 10) -> float:
    """ECE of the positive-class probability: sum over 10 equal-width bins of
    (bin share) x |mean predicted probability - observed positive rate|."""
    p = np.asarray(probs, dtype=float)
    t = np.asarray(y, dtype=float)
    if len(p) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - t[m].mean())
    return float(total)


def classification_metrics(y: Sequence[int] | np.ndarray, probs: Sequence[float] | np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, balanced accuracy, Cohen's kappa, macro-F1, ECE, majority baseline (y: 1=reasoning)."""
    t = np.asarray(y, dtype=int)
    p = np.asarray(probs, dtype=float)
    pred = (p >= threshold).astype(int)
    n = len(t)
    majority = max(float(np.mean(t == 1)), float(np.mean(t == 0))) if n else float("nan")
    return {
        "n": n,
        "accuracy": float(np.mean(pred == t)) if n else float("nan"),
        "balanced_accuracy": metrics.balanced_accuracy(t, pred),
        "kappa": metrics.cohen_kappa(t, pred),
        "f1_macro": metrics.f1_macro(t, pred),
        "ece": expected_calibration_error(p, t),
        "majority_accuracy": majority,
        "majority_balanced_accuracy": 0.5,
        "reasoning_share_true": float(np.mean(t == 1)) if n else float("nan"),
        "reasoning_share_pred": float(np.mean(pred == 1)) if n else float("nan"),
    }


def choose_threshold(y: Sequence[int] | np.ndarray, probs: Sequence[float] | np.ndarray, rule: str = "kappa", fixed: float = 0.5) -> float:
    """The decision threshold on calibrated probabilities, chosen on validation data.

    Candidates are the midpoints between consecutive distinct probabilities (plus 0.5);
    the one maximising the rule's metric wins, ties going to the candidate closest to 0.5.
    ``fixed`` returns `fixed`. Single-class or empty validation data falls back to 0.5.
    """
    if rule == "fixed":
        return float(fixed)
    if rule not in THRESHOLD_RULES:
        raise InputError(f"threshold rule {rule!r} is not one of {', '.join(THRESHOLD_RULES)}")
    t = np.asarray(y, dtype=int)
    p = np.asarray(probs, dtype=float)
    if len(t) == 0 or len(np.unique(t)) < 2:
        return 0.5
    u = np.unique(p)
    cands = np.concatenate([(u[:-1] + u[1:]) / 2, [0.5]]) if len(u) > 1 else np.array([0.5])
    score: Callable[[np.ndarray, np.ndarray], float] = {"kappa": metrics.cohen_kappa, "balanced_accuracy": metrics.balanced_accuracy,
                                                         "f1_macro": metrics.f1_macro}[rule]
    best, best_score = 0.5, -math.inf
    for c in cands:
        pred = (p >= c).astype(int)
        s = score(t, pred)
        if s > best_score + 1e-12 or (abs(s - best_score) <= 1e-12 and abs(c - 0.5) < abs(best - 0.5)):
            best, best_score = float(c), s
    return best


# ----------------------------------------------------------------------------------------
# Calibration of a raw score z (the logit of "reasoning")
# ----------------------------------------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


@dataclass
class Calibrator:
    """Maps a raw logit z to a calibrated probability of `reasoning`."""

    method: str = "none"
    a: float = 1.0  # platt slope (temperature: 1/T)
    b: float = 0.0  # platt intercept
    iso_x: list[float] = field(default_factory=list)
    iso_y: list[float] = field(default_factory=list)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        if self.method == "isotonic":
            if not self.iso_x:
                return _sigmoid(z)
            return np.clip(np.interp(_sigmoid(z), self.iso_x, self.iso_y), 0.0, 1.0)
        return _sigmoid(self.a * z + self.b)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        return cls(**d)


def fit_calibrator(z: np.ndarray, y: np.ndarray, method: str = "platt") -> Calibrator:
    """Fit on validation logits. Platt: sigmoid(a z + b); temperature: sigmoid(z / T);
    isotonic: monotone map of sigmoid(z). Degenerate data (one class, < 4 rows) -> identity."""
    from scipy.optimize import minimize

    z = np.asarray(z, dtype=float)
    t = np.asarray(y, dtype=float)
    if method == "none" or len(t) < 4 or len(np.unique(t)) < 2:
        return Calibrator("none" if method == "none" else method)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        s = _sigmoid(z)
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, t)
        return Calibrator("isotonic", iso_x=[float(v) for v in iso.X_thresholds_], iso_y=[float(v) for v in iso.y_thresholds_])

    def nll(params: np.ndarray) -> float:
        a = math.exp(params[0])  # slope kept positive: calibration never flips the ranking
        b = params[1] if method == "platt" else 0.0
        q = np.clip(_sigmoid(a * z + b), 1e-7, 1 - 1e-7)
        return float(-np.mean(t * np.log(q) + (1 - t) * np.log(1 - q)) + 1e-4 * params[1] ** 2)

    res = minimize(nll, x0=np.array([0.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-5, "fatol": 1e-8, "maxiter": 2000})
    a = float(math.exp(res.x[0]))
    b = float(res.x[1]) if method == "platt" else 0.0
    return Calibrator(method, a=a, b=b)
