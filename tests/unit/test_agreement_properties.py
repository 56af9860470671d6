"""Property-based tests (Hypothesis) for the agreement coefficients and their bootstrap."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from curation import agreement as ag
from curation.agreement import LabelRow

pytestmark = pytest.mark.unit

LABELS = ("reasoning", "knowledge", "other")
RATERS = ("ann", "bob", "cy", "dee")
COEFFICIENTS = (
    ag.percent_agreement,
    ag.fleiss_kappa,
    ag.krippendorff_alpha,
    ag.mean_pairwise_cohen,
)

FAST = settings(max_examples=30, deadline=None)
HEAVY = settings(max_examples=20, deadline=None)  # sklearn per rater pair: ~4 ms a call


@st.composite
def label_rows(draw: st.DrawFn, min_items: int = 1, max_items: int = 12) -> list[LabelRow]:
    """Item x rater matrices with missing cells; at least one item has two labels."""
    n_items = draw(st.integers(min_items, max_items))
    n_raters = draw(st.integers(2, len(RATERS)))
    n_labels = draw(st.integers(1, len(LABELS)))
    cell = st.one_of(st.none(), st.sampled_from(LABELS[:n_labels]))
    rows: list[LabelRow] = []
    for i in range(n_items):
        for r in range(n_raters):
            label = draw(cell)
            if label is not None:
                rows.append((f"item{i:02d}", RATERS[r], label))
    per_item = Counter(item for item, _, _ in rows)
    assume(any(n >= 2 for n in per_item.values()))
    return rows


def values(rows: list[LabelRow]) -> list[float]:
    return [fn(rows) for fn in COEFFICIENTS]


def same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-9)


@HEAVY
@given(
    st.lists(st.sampled_from(LABELS), min_size=2, max_size=15),
    st.integers(2, 4),
    st.data(),
)
def test_identical_raters_give_one(truth: list[str], n_raters: int, data: st.DataObject) -> None:
    assume(len(set(truth)) > 1)
    # Raters copy the truth; some skip items, but each item keeps at least two labels.
    rows: list[LabelRow] = []
    for i, label in enumerate(truth):
        raters = data.draw(
            st.lists(st.sampled_from(RATERS[:n_raters]), min_size=2, unique=True), label="raters"
        )
        rows += [(f"q{i}", r, label) for r in raters]
    for fn in COEFFICIENTS[:3]:
        assert fn(rows) == pytest.approx(1.0), fn.__name__
    pairs = ag.pairwise_cohen(rows, n_boot=20)
    for pair in pairs:
        assert pair["kappa"] == pytest.approx(1.0)
    if any(p["n_items"] >= 2 for p in pairs):
        assert ag.mean_pairwise_cohen(rows) == pytest.approx(1.0)
    else:  # undefined: no pair of raters shares two items
        assert math.isnan(ag.mean_pairwise_cohen(rows))
    assert ag.cohen_kappa(truth, truth) == pytest.approx(1.0)


@HEAVY
@given(label_rows(), st.permutations(RATERS))
def test_symmetric_in_rater_order(rows: list[LabelRow], names: list[str]) -> None:
    renamed = [(i, names[RATERS.index(r)], lab) for i, r, lab in rows]
    for x, y in zip(values(rows), values(renamed), strict=True):
        assert same(x, y)
    kappas = sorted(p["kappa"] for p in ag.pairwise_cohen(rows, n_boot=5))
    renamed_kappas = sorted(p["kappa"] for p in ag.pairwise_cohen(renamed, n_boot=5))
    assert kappas == pytest.approx(renamed_kappas)


@FAST
@given(st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS)), min_size=1))
def test_cohen_kappa_is_symmetric_and_bounded(pairs: list[tuple[str, str]]) -> None:
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    k = ag.cohen_kappa(a, b)
    assert k == pytest.approx(ag.cohen_kappa(b, a))
    assert -1.0 - 1e-12 <= k <= 1.0 + 1e-12


@FAST
@given(label_rows(), st.randoms(use_true_random=False))
def test_invariant_to_row_order(rows: list[LabelRow], rnd) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    for x, y in zip(values(rows), values(shuffled), strict=True):
        assert same(x, y)
    for fn in (ag.fleiss_kappa, ag.krippendorff_alpha):
        assert ag.bootstrap_ci(rows, fn, n_boot=30, seed=2) == ag.bootstrap_ci(
            shuffled, fn, n_boot=30, seed=2
        )


@FAST
@given(label_rows())
def test_values_in_range(rows: list[LabelRow]) -> None:
    assert 0.0 <= ag.percent_agreement(rows) <= 1.0
    for fn in COEFFICIENTS[1:]:
        v = fn(rows)
        assert math.isnan(v) or -1.0 - 1e-9 <= v <= 1.0 + 1e-9, fn.__name__
    for fn in COEFFICIENTS:
        lo, hi = ag.bootstrap_ci(rows, fn, n_boot=30)
        if not math.isnan(lo):
            assert -1.0 - 1e-9 <= lo <= hi <= 1.0 + 1e-9


@HEAVY
@given(label_rows(), st.integers(0, 2**32 - 1))
def test_bootstrap_is_deterministic_for_a_seed(rows: list[LabelRow], seed: int) -> None:
    for fn in COEFFICIENTS:
        first = ag.bootstrap_ci(rows, fn, n_boot=25, seed=seed)
        again = ag.bootstrap_ci(rows, fn, n_boot=25, seed=seed)
        assert (math.isnan(first[0]) and math.isnan(again[0])) or first == again
    assert ag.agreement_report(rows, n_boot=25, seed=seed) == ag.agreement_report(
        rows, n_boot=25, seed=seed
    )


@FAST
@given(label_rows())
def test_vectorised_forms_equal_the_libraries_at_unit_weights(rows: list[LabelRow]) -> None:
    enc = ag._pairable(ag._encode(rows))
    ones = np.ones(len(enc.items))
    for fn in COEFFICIENTS:
        assert same(float(ag._FAST[fn](enc, ones)), fn(rows)), fn.__name__


@settings(max_examples=25, deadline=None)
@given(label_rows(max_items=8), st.integers(0, 1000))
def test_vectorised_bootstrap_equals_resampling_rows(rows: list[LabelRow], seed: int) -> None:
    enc = ag._pairable(ag._encode(rows))
    w = ag._weights(len(enc.items), 5, seed)
    for fn in COEFFICIENTS:
        fast = ag._FAST[fn](enc, w)
        slow = ag._slow_replicates(enc, fn, 5, seed)
        np.testing.assert_allclose(fast, slow, atol=1e-9, equal_nan=True, err_msg=fn.__name__)


@FAST
@given(label_rows())
def test_report_is_consistent_with_the_functions(rows: list[LabelRow]) -> None:
    rep = ag.agreement_report(rows, n_boot=20)
    for fn in COEFFICIENTS:
        got = rep["overall"][fn.__name__]["value"]
        want = fn(rows)
        assert (got is None and math.isnan(want)) or got == pytest.approx(want)
    labeled = Counter(item for item, _, _ in rows)
    assert rep["n_items_dropped"] == sum(1 for n in labeled.values() if n < 2)


@FAST
@given(st.lists(st.sampled_from(LABELS), max_size=9), st.randoms(use_true_random=False))
def test_majority_label(labels: list[str], rnd) -> None:
    got = ag.majority_label(labels)
    counts = Counter(labels)
    if got is None:
        assert not labels or sorted(counts.values())[-2:].count(max(counts.values())) == 2
    else:
        assert all(counts[got] > n for lab, n in counts.items() if lab != got)
    shuffled = list(labels)
    rnd.shuffle(shuffled)
    assert ag.majority_label(shuffled) == got


@FAST
@given(st.integers(1, 10_000), st.data())
def test_proportion_ci_contains_the_proportion(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = ag.proportion_ci(k, n)
    assert 0.0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1.0
