"""`curation.metrics` against the reference libraries (scikit-learn, statsmodels, NumPy) on
random inputs, plus the conventions the libraries do not cover (empty input, one label)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score

from curation import metrics
from curation.errors import InputError

pytestmark = pytest.mark.unit

PROPS = settings(max_examples=150, deadline=None)


@st.composite
def paired_labels(draw: st.DrawFn, labels: tuple[object, ...] = (0, 1), min_size: int = 1) -> tuple[list, list]:
    """Two equal-length label lists drawn from `labels`, often agreeing (like real raters)."""
    y = draw(st.lists(st.sampled_from(labels), min_size=min_size, max_size=60))
    flips = draw(st.lists(st.booleans(), min_size=len(y), max_size=len(y)))
    other = draw(st.lists(st.sampled_from(labels), min_size=len(y), max_size=len(y)))
    return y, [o if f else v for v, f, o in zip(y, flips, other, strict=True)]


binary = paired_labels()
strings = paired_labels(("reasoning", "knowledge", "unclear"))


# --------------------------------------------------------------------------- kappa


@PROPS
@given(st.one_of(binary, strings))
def test_cohen_kappa_equals_sklearn_and_is_symmetric(pair: tuple[list, list]) -> None:
    a, b = pair
    k = metrics.cohen_kappa(a, b)
    if len(set(a) | set(b)) > 1:
        assert k == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    else:
        assert k == 1.0  # one shared label: 0/0, defined as perfect agreement
    assert k == metrics.cohen_kappa(b, a)
    assert -1.0 - 1e-12 <= k <= 1.0 + 1e-12


def test_cohen_kappa_on_integer_codes_equals_on_strings() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 17, 500):
        y = rng.integers(0, 2, n)
        p = np.where(rng.random(n) < 0.3, 1 - y, y)
        names = np.array(["knowledge", "reasoning"])
        assert metrics.cohen_kappa(y, p) == metrics.cohen_kappa(list(names[y]), list(names[p]))
        assert metrics.cohen_kappa(y.astype(bool), p.astype(bool)) == metrics.cohen_kappa(y, p)
    # codes that do not index a small table (negative, large) take the general path
    a, b = [-1, 5000, 5000, 3, -1], [-1, 5000, 3, 3, 5000]
    assert metrics.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert metrics.cohen_kappa([2, 2], [2, 2]) == 1.0  # one label, not code 0


def test_cohen_kappa_conventions() -> None:
    assert math.isnan(metrics.cohen_kappa([], []))
    assert metrics.cohen_kappa(["x"] * 3, ["x"] * 3) == 1.0
    assert metrics.cohen_kappa(["x"] * 4, ["y"] * 4) == 0.0
    assert metrics.cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    with pytest.raises(InputError, match="equal length"):
        metrics.cohen_kappa([0, 1], [0])


# --------------------------------------------------------------- balanced accuracy, F1


@PROPS
@given(binary)
def test_balanced_accuracy_equals_sklearn(pair: tuple[list, list]) -> None:
    y, p = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when pred has a class y lacks
        ref = balanced_accuracy_score(y, p)
    assert metrics.balanced_accuracy(y, p) == pytest.approx(ref, abs=1e-12)


@PROPS
@given(strings)
def test_balanced_accuracy_equals_sklearn_with_string_labels(pair: tuple[list, list]) -> None:
    y, p = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = balanced_accuracy_score(y, p)
    assert metrics.balanced_accuracy(y, p) == pytest.approx(ref, abs=1e-12)


@PROPS
@given(binary)
def test_f1_equals_sklearn(pair: tuple[list, list]) -> None:
    y, p = pair
    macro = f1_score(y, p, labels=[0, 1], average="macro", zero_division=0)
    assert metrics.f1_macro(y, p) == pytest.approx(macro, abs=1e-12)
    for c in (0, 1):
        ref = f1_score(y, p, labels=[c], average="macro", zero_division=0)
        assert metrics.f1(y, p, c) == pytest.approx(ref, abs=1e-12)


@PROPS
@given(strings)
def test_f1_macro_over_given_labels_equals_sklearn(pair: tuple[list, list]) -> None:
    y, p = pair
    labels = ["knowledge", "reasoning", "unclear"]
    ref = f1_score(y, p, labels=labels, average="macro", zero_division=0)
    assert metrics.f1_macro(y, p, labels) == pytest.approx(ref, abs=1e-12)


def test_point_metrics_on_edge_cases() -> None:
    for fn in (metrics.balanced_accuracy, metrics.f1_macro, metrics.cohen_kappa):
        assert math.isnan(fn([], []))
    y = np.array([1, 1, 1])
    assert metrics.balanced_accuracy(y, y) == 1.0
    assert metrics.f1_macro(y, y) == 0.5  # class 0 never occurs: its F1 counts 0
    assert metrics.f1(y, y, 1) == 1.0 and metrics.f1(y, y, 0) == 0.0


# ------------------------------------------------------------------------ Wilson


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_wilson_ci_equals_statsmodels(alpha: float) -> None:
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(7)
    for n in [1, 2, 3, 10, 263, 10_000, *rng.integers(1, 5000, 30).tolist()]:
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n, int(rng.integers(0, n + 1))}):
            if 0 <= k <= n:
                lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
                got = metrics.wilson_ci(k, n, alpha=alpha)
                assert got == (pytest.approx(max(0.0, lo), abs=1e-12), pytest.approx(min(1.0, hi), abs=1e-12))


def test_wilson_ci_rejects_bad_input() -> None:
    for k, n, alpha in ((5, 3, 0.05), (0, 0, 0.05), (1.5, 3, 0.05), (True, 3, 0.05), (1, 3, 1.0)):
        with pytest.raises(InputError):
            metrics.wilson_ci(k, n, alpha)  # type: ignore[arg-type]
    assert metrics.wilson_ci(np.int64(3), np.int64(10)) == metrics.wilson_ci(3, 10)


# --------------------------------------------------------------------- bootstrap


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(-5, 5), st.just(math.nan)), max_size=80), st.sampled_from([0.05, 0.1, 0.5]))
def test_percentile_ci_equals_numpy_quantile_ignoring_nan(reps: list[float], alpha: float) -> None:
    clean = [r for r in reps if not math.isnan(r)]
    for method in ("linear", "inverted_cdf"):
        got = metrics.percentile_ci(reps, alpha, method=method)
        if not clean:
            assert all(math.isnan(v) for v in got)
            continue
        ref = np.quantile(clean, [alpha / 2, 1 - alpha / 2], method=method)
        assert got == (float(ref[0]), float(ref[1]))
        if method == "inverted_cdf":
            assert set(got) <= set(clean)  # an observed replicate


def test_bootstrap_ci_resamples_pairs_from_the_seed() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    p = np.where(rng.random(60) < 0.2, 1 - y, y)
    got = metrics.bootstrap_ci(metrics.balanced_accuracy, y, p, n_boot=300, seed=4)
    # the same resamples by hand
    draw = np.random.default_rng(4)
    reps = []
    for _ in range(300):
        idx = draw.integers(0, 60, 60)
        reps.append(metrics.balanced_accuracy(y[idx], p[idx]))
    assert got == metrics.percentile_ci(reps)
    assert got[0] <= metrics.balanced_accuracy(y, p) <= got[1]
    assert got == metrics.bootstrap_ci(metrics.balanced_accuracy, y, p, n_boot=300, seed=4)
    assert got != metrics.bootstrap_ci(metrics.balanced_accuracy, y, p, n_boot=300, seed=5)


def test_bootstrap_ci_skips_undefined_replicates_and_empty_input() -> None:
    assert all(math.isnan(v) for v in metrics.bootstrap_ci(metrics.f1_macro, [], []))
    lo, hi = metrics.bootstrap_ci(lambda y, p: math.nan if y.sum() == 0 else 1.0, [0, 1], [0, 1], n_boot=50)
    assert (lo, hi) == (1.0, 1.0)
    with pytest.raises(InputError, match="alpha"):
        metrics.bootstrap_ci(metrics.f1_macro, [0], [0], alpha=0)


# ------------------------------------------------------------------------ finite


def test_finite_makes_results_json_safe() -> None:
    obj = {"a": math.nan, "b": [1.5, math.inf, -math.inf, np.float32(2.0)], "c": (np.int64(3), "x", None, True),
           "d": {"e": np.float64("nan")}, "f": 7}
    out = metrics.finite(obj)
    assert out == {"a": None, "b": [1.5, None, None, 2.0], "c": [3, "x", None, True], "d": {"e": None}, "f": 7}
    assert type(out["c"][0]) is int and type(out["b"][3]) is float and out["c"][3] is True
    json.dumps(out, allow_nan=False)
    assert metrics.finite(0.25) == 0.25 and metrics.finite(math.nan) is None
