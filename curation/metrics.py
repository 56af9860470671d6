"""Classification and interval metrics, defined once. Pure: arrays in, numbers out.

Used by the classifier (`curation.model`), active learning (`curation.active`), agreement
(`curation.agreement`), the release statistics and model-answer scoring (`curation.evaluate`).
Imports only NumPy and the standard library: scikit-learn and statsmodels each take ~3 s to
import, which the CLI, the app and a release build would pay for a 2x2 table. Every
function is tested for equality with the reference library (`tests/unit/test_metrics.py`):

* `cohen_kappa` -- ``sklearn.metrics.cohen_kappa_score`` (any labels);
* `balanced_accuracy` -- ``sklearn.metrics.balanced_accuracy_score``;
* `f1` / `f1_macro` -- ``sklearn.metrics.f1_score`` with ``zero_division=0`` (macro over
  the given labels, by default the two classes 0 = knowledge, 1 = reasoning);
* `wilson_ci` -- ``statsmodels.stats.proportion.proportion_confint(method="wilson")``;
* `percentile_ci` / `bootstrap_ci` -- the percentile bootstrap interval (``numpy.quantile``);
* `finite` -- a JSON-safe copy of a result: NaN and infinities become ``None`` (JSON has no
  NaN), NumPy scalars become Python numbers.

Undefined values: on empty input the point metrics return NaN. When both label sequences
use one and the same category, Cohen's kappa is 0/0; it is defined as 1.0 here (every pair
agrees; scikit-learn returns NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from curation.errors import InputError

__all__ = [
    "balanced_accuracy",
    "bootstrap_ci",
    "check_alpha",
    "cohen_kappa",
    "f1",
    "f1_macro",
    "finite",
    "percentile_ci",
    "wilson_ci",
]

BINARY = (0, 1)
"""The two classes of the project's task: 0 = knowledge, 1 = reasoning."""


def _pair(y: ArrayLike, pred: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    a, b = np.asarray(y), np.asarray(pred)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(
            f"expected two label sequences of equal length, got shapes {a.shape} and {b.shape}; "
            "pass one label per item from each"
        )
    return a, b


def cohen_kappa(a: ArrayLike, b: ArrayLike) -> float:
    """Cohen's kappa of two equal-length label sequences (any hashable labels).

    The closed form ``(p_o - p_e) / (1 - p_e)`` over the confusion matrix, equal to
    ``sklearn.metrics.cohen_kappa_score``. 1.0 when both use one and the same label; NaN on
    empty input.
    """
    x, y = _pair(a, b)
    n = len(x)
    if n == 0:
        return math.nan
    if x.dtype.kind in "bui" and y.dtype.kind in "bui" and min(x.min(), y.min()) >= 0 and max(x.max(), y.max()) < 1024:
        # small non-negative integer codes (the classifier's 0/1) index the table directly:
        # no sort, which `model.choose_threshold` would pay once per candidate threshold
        k = int(max(x.max(), y.max())) + 1
        cx, cy = x.astype(np.int64), y.astype(np.int64)
    else:
        labels, inv = np.unique(np.concatenate([x, y]), return_inverse=True)
        k = len(labels)
        cx, cy = inv[:n], inv[n:]
    confusion = np.bincount(cx * k + cy, minlength=k * k).reshape(k, k).astype(np.float64)
    if np.count_nonzero(confusion.sum(axis=1) + confusion.sum(axis=0)) == 1:
        return 1.0
    total = confusion.sum()
    p_o = np.trace(confusion) / total
    p_e = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / (total * total)
    return float((p_o - p_e) / (1 - p_e))  # p_e < 1: two or more labels occur


def balanced_accuracy(y: ArrayLike, pred: ArrayLike) -> float:
    """Mean over the classes present in `y` of the recall of that class; NaN on empty input."""
    t, p = _pair(y, pred)
    recalls = [float(np.mean(p[t == c] == c)) for c in np.unique(t)]
    return float(np.mean(recalls)) if recalls else math.nan


def f1(y: ArrayLike, pred: ArrayLike, label: Hashable) -> float:
    """F1 of class `label`: ``2 tp / (2 tp + fp + fn)``, 0.0 when there is no true positive."""
    t, p = _pair(y, pred)
    tp = float(np.sum((p == label) & (t == label)))
    fp = float(np.sum((p == label) & (t != label)))
    fn = float(np.sum((p != label) & (t == label)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def f1_macro(y: ArrayLike, pred: ArrayLike, labels: Sequence[Hashable] = BINARY) -> float:
    """Mean of `f1` over `labels` (a class absent from both counts 0.0); NaN on empty input."""
    t, p = _pair(y, pred)
    if len(t) == 0:
        return math.nan
    return sum(f1(t, p, c) for c in labels) / len(labels)


def check_alpha(alpha: float) -> None:
    """Raise `InputError` unless 0 < alpha < 1."""
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1 (0.05 gives a 95 % interval), got {alpha}")


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for ``k`` successes out of ``n``, clipped to [0, 1].

    Equal to statsmodels' ``proportion_confint(k, n, alpha, method="wilson")``.
    """
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (k, n)):
        raise InputError(f"k and n must be integers, got k={k!r}, n={n!r}")
    if n <= 0 or not 0 <= k <= n:
        raise InputError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    check_alpha(alpha)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p, z2 = k / n, z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def percentile_ci(
    replicates: ArrayLike, alpha: float = 0.05, *, method: str = "linear"
) -> tuple[float, float]:
    """The ``alpha/2`` and ``1 - alpha/2`` quantiles of bootstrap replicates, NaNs ignored;
    ``(nan, nan)`` when no replicate is a number.

    `method` is ``numpy.quantile``'s: ``linear`` (the default, interpolating) or, e.g.,
    ``inverted_cdf`` (an observed replicate, as `curation.evaluate` uses).
    """
    reps = np.asarray(replicates, dtype=np.float64).ravel()
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2], method=method)  # type: ignore[call-overload]
    return float(lo), float(hi)


def bootstrap_ci(
    statistic: Callable[[NDArray[Any], NDArray[Any]], float],
    y: ArrayLike,
    pred: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(y, pred)``, resampling items (pairs) with
    replacement ``n_boot`` times from ``numpy.random.default_rng(seed)``.

    Replicates where the statistic is NaN are ignored; ``(nan, nan)`` on empty input or when
    every replicate is NaN.
    """
    check_alpha(alpha)
    t, p = _pair(y, pred)
    n = len(t)
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        reps[b] = statistic(t[idx], p[idx])
    return percentile_ci(reps, alpha)


def finite(obj: Any) -> Any:
    """A JSON-safe copy: NaN and +-inf -> ``None``; NumPy scalars -> ``float``/``int``;
    dicts, lists and tuples (-> lists) converted recursively; anything else unchanged."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
