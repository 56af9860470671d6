"""Agreement coefficients against published values, edge cases, bootstrap and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from curation import agreement as ag
from curation.agreement import LabelRow
from curation.errors import InputError

pytestmark = pytest.mark.unit


# ----------------------------------------------------------------------------- fixtures

# Fleiss (1971) as tabulated on Wikipedia ("Fleiss' kappa", worked example): 10 subjects,
# 14 raters, 5 categories; P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", sec. C: 4 observers,
# 12 units, missing data; nominal alpha = 0.743 (values spelled as in the krippendorff docs).
# fmt: off
KRIPP_2011 = [
    ["very low", "low", "mid", "mid", "low", "very low", "high", "very low", "low", None, None, None],
    ["very low", "low", "mid", "mid", "low", "low", "high", "very low", "low", "very high", None, "mid"],
    [None, "mid", "mid", "mid", "low", "mid", "high", "low", "low", "very high", "very low", None],
    ["very low", "low", "mid", "mid", "low", "high", "high", "very low", "low", "very high", "very low", None],
]
# fmt: on

# Wikipedia "Krippendorff's alpha" example: 3 coders, 15 units (values 1-4), nominal 0.691.
KRIPP_WIKI = [
    [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
    [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
    [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
]


COEFFICIENTS = (
    ag.percent_agreement,
    ag.fleiss_kappa,
    ag.krippendorff_alpha,
    ag.mean_pairwise_cohen,
)


def fleiss_rows() -> list[LabelRow]:
    rows: list[LabelRow] = []
    for i, counts in enumerate(FLEISS_TABLE):
        r = 0
        for c, n in enumerate(counts):
            for _ in range(n):
                rows.append((f"s{i:02d}", f"r{r:02d}", f"cat{c}"))
                r += 1
    return rows


def matrix_rows(matrix: list[list[object]]) -> list[LabelRow]:
    """Observer x unit matrix (None = missing) -> rows."""
    return [
        (f"u{j:02d}", f"obs{i}", str(v))
        for i, row in enumerate(matrix)
        for j, v in enumerate(row)
        if v is not None
    ]


def wiki_cohen() -> tuple[list[str], list[str]]:
    """Wikipedia "Cohen's kappa", 50 proposals: yes/yes 20, A yes B no 5, A no B yes 10,
    no/no 15. p_o = 0.7, p_e = 0.5, kappa = 0.4."""
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    return a, b


def two_raters(a: list[str], b: list[str]) -> list[LabelRow]:
    """Rater A gave a[i] and rater B gave b[i] to item i."""
    return [(f"p{i:03d}", "A", x) for i, x in enumerate(a)] + [
        (f"p{i:03d}", "B", y) for i, y in enumerate(b)
    ]


def simulated(n_items: int, n_raters: int = 5, per_item: int = 3, p: float = 0.8, seed: int = 1):
    """Raters that copy a hidden truth with probability p."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    rows: list[LabelRow] = []
    for i in range(n_items):
        for r in rng.choice(n_raters, per_item, replace=False):
            lab = truth[i] if rng.random() < p else 1 - truth[i]
            rows.append((f"q{i:05d}", f"ann{r}", ("reasoning", "knowledge")[lab]))
    return rows


# ------------------------------------------------------------------- published values


def test_fleiss_kappa_matches_fleiss_1971_wikipedia_example() -> None:
    rows = fleiss_rows()
    assert ag.fleiss_kappa(rows) == pytest.approx(0.210, abs=5e-4)
    assert ag.percent_agreement(rows) == pytest.approx(0.378, abs=5e-4)


def test_cohen_kappa_matches_wikipedia_50_item_example() -> None:
    a, b = wiki_cohen()
    assert ag.cohen_kappa(a, b) == pytest.approx(0.4)
    rows = two_raters(a, b)
    (pair,) = ag.pairwise_cohen(rows, n_boot=200)
    assert pair["rater_a"] == "A" and pair["rater_b"] == "B"
    assert pair["n_items"] == 50
    assert pair["kappa"] == pytest.approx(0.4)
    assert pair["percent_agreement"] == pytest.approx(0.7)
    assert pair["ci_low"] < 0.4 < pair["ci_high"]
    assert ag.mean_pairwise_cohen(rows) == pytest.approx(0.4)


def test_krippendorff_alpha_matches_krippendorff_2011_with_missing_data() -> None:
    assert ag.krippendorff_alpha(matrix_rows(KRIPP_2011)) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_matches_wikipedia_example() -> None:
    assert ag.krippendorff_alpha(matrix_rows(KRIPP_WIKI)) == pytest.approx(0.691358, abs=1e-6)


def test_wilson_interval_matches_newcombe_1998() -> None:
    # Newcombe (1998), Stat Med 17:857, Table I: 81/263 -> 0.2553 to 0.3662; 0/10 -> 0 to 0.2775.
    lo, hi = ag.proportion_ci(81, 263)
    assert (lo, hi) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    lo, hi = ag.proportion_ci(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)
    assert isinstance(lo, float) and isinstance(hi, float)


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_wilson_interval_equals_statsmodels(alpha: float) -> None:
    from statsmodels.stats.proportion import proportion_confint

    for n in (1, 2, 7, 50, 263, 10_000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            if 0 <= k <= n:
                ref = proportion_confint(k, n, alpha=alpha, method="wilson")
                got = ag.proportion_ci(k, n, alpha=alpha)
                assert got == (pytest.approx(max(0.0, ref[0]), abs=1e-12), pytest.approx(min(1.0, ref[1]), abs=1e-12))


# ------------------------------------------------------------ definitions and edge cases


def test_identical_raters_give_one_everywhere() -> None:
    labels = ["reasoning", "knowledge", "knowledge", "reasoning", "knowledge"]
    rows = [(f"q{i}", r, lab) for i, lab in enumerate(labels) for r in ("ann", "bob", "cy")]
    assert ag.percent_agreement(rows) == 1.0
    assert ag.fleiss_kappa(rows) == pytest.approx(1.0)
    assert ag.krippendorff_alpha(rows) == pytest.approx(1.0)
    assert ag.mean_pairwise_cohen(rows) == pytest.approx(1.0)
    assert ag.cohen_kappa(labels, labels) == pytest.approx(1.0)
    rep = ag.agreement_report(rows, n_boot=100)
    for name in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "mean_pairwise_cohen"):
        assert rep["overall"][name]["value"] == pytest.approx(1.0)
        assert rep["overall"][name]["ci"] == [pytest.approx(1.0), pytest.approx(1.0)]


def test_identical_constant_raters_are_defined_as_one() -> None:
    rows = [(f"q{i}", r, "reasoning") for i in range(4) for r in ("a", "b")]
    assert ag.cohen_kappa(["x"] * 3, ["x"] * 3) == 1.0
    assert ag.fleiss_kappa(rows) == 1.0
    assert ag.krippendorff_alpha(rows) == 1.0
    assert ag.mean_pairwise_cohen(rows) == 1.0
    assert ag.bootstrap_ci(rows, ag.fleiss_kappa, n_boot=50) == (1.0, 1.0)


def test_constant_but_different_raters_have_kappa_zero() -> None:
    assert ag.cohen_kappa(["x"] * 4, ["y"] * 4) == 0.0


def test_perfect_disagreement_is_negative() -> None:
    a = ["x", "y"] * 5
    b = ["y", "x"] * 5
    assert ag.cohen_kappa(a, b) == pytest.approx(-1.0)
    rows = two_raters(a, b)
    assert ag.percent_agreement(rows) == 0.0
    assert ag.fleiss_kappa(rows) == pytest.approx(-1.0)
    # alpha = 1 - (n - 1) * sum d_u / (n^2 - sum n_c^2) = 1 - 19 * 20 / 200
    assert ag.krippendorff_alpha(rows) == pytest.approx(-0.9)


def test_missing_labels_and_single_rated_items_are_handled() -> None:
    rows = [
        ("q1", "a", "reasoning"), ("q1", "b", "reasoning"), ("q1", "c", "knowledge"),
        ("q2", "a", "knowledge"), ("q2", "c", "knowledge"),
        ("q3", "b", "reasoning"), ("q3", "c", "reasoning"),
        ("q4", "a", "knowledge"),  # single label: dropped
        ("q5", "b", "knowledge"), ("q5", "a", "reasoning"),
    ]  # fmt: skip
    pairable = [r for r in rows if r[0] != "q4"]
    for fn in COEFFICIENTS:
        assert fn(rows) == fn(pairable)
    # percent agreement: q1 1/3, q2 1, q3 1, q5 0 -> mean 7/12
    assert ag.percent_agreement(rows) == pytest.approx(7 / 12)
    rep = ag.agreement_report(rows, n_boot=50)
    assert rep["n_items_total"] == 5 and rep["n_items_dropped"] == 1
    assert rep["overall"]["n_items"] == 4 and rep["overall"]["n_labels"] == 9


def test_fleiss_with_unequal_rater_counts_uses_gwet_generalisation() -> None:
    rows = [
        ("q1", "a", "x"), ("q1", "b", "x"), ("q1", "c", "y"),
        ("q2", "a", "y"), ("q2", "b", "y"),
        ("q3", "a", "x"), ("q3", "c", "x"),
        ("q4", "b", "y"), ("q4", "c", "x"),
    ]  # fmt: skip
    # Hand computation (Gwet 2014): item agreement 1/3, 1, 1, 0 -> po = 7/12;
    # pi_x = mean(2/3, 0, 1, 1/2) = 13/24, pi_y = 11/24; pe = (169 + 121) / 576.
    po, pe = 7 / 12, 290 / 576
    assert ag.fleiss_kappa(rows) == pytest.approx((po - pe) / (1 - pe))


def test_fleiss_generalisation_equals_statsmodels_on_equal_counts() -> None:
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

    rng = np.random.default_rng(0)
    cases = [fleiss_rows()]
    for n_raters, n_cat in ((2, 2), (3, 2), (5, 3), (14, 5)):
        cases.append([(f"q{i}", f"r{j}", f"c{int(rng.integers(n_cat))}")
                      for i in range(40) for j in range(n_raters)])
    for rows in cases:
        enc = ag._pairable(ag._encode(rows))
        dense = np.sort(enc.codes, axis=1)[:, -int(enc.n_per_item[0]):]
        table, _ = aggregate_raters(dense, n_cat=len(enc.categories))
        assert ag.fleiss_kappa(rows) == pytest.approx(float(sm_fleiss_kappa(table, method="fleiss")), abs=1e-12)


def test_two_raters_per_item_fleiss_is_scotts_pi() -> None:
    a, b = wiki_cohen()
    rows = two_raters(a, b)
    # Scott's pi: pe from pooled marginals: yes = (25 + 30) / 100
    pe = 0.55**2 + 0.45**2
    assert ag.fleiss_kappa(rows) == pytest.approx((0.7 - pe) / (1 - pe))


def test_cohen_kappa_agrees_with_sklearn_and_is_symmetric() -> None:
    rng = np.random.default_rng(3)
    for n_cat, n in ((2, 5), (2, 40), (3, 40), (5, 300)):
        for _ in range(10):
            a = [str(x) for x in rng.integers(0, n_cat, n)]
            b = [str(x) if rng.random() < 0.3 else y for x, y in zip(rng.integers(0, n_cat, n), a, strict=True)]
            if len(set(a) | set(b)) > 1:
                assert ag.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
            assert ag.cohen_kappa(a, b) == pytest.approx(ag.cohen_kappa(b, a), abs=1e-12)
    assert ag.cohen_kappa(["x"] * 4, ["y"] * 4) == pytest.approx(cohen_kappa_score(["x"] * 4, ["y"] * 4))


def test_majority_label() -> None:
    assert ag.majority_label(["reasoning", "knowledge", "reasoning"]) == "reasoning"
    assert ag.majority_label(["knowledge"]) == "knowledge"
    assert ag.majority_label(["reasoning", "knowledge"]) is None
    assert ag.majority_label(["a", "a", "b", "b", "c"]) is None
    assert ag.majority_label([]) is None


# -------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no labels"),
        ([("q1", "a", "x"), ("q2", "a", "y")], "at least two raters"),
        ([("q1", "a", "x"), ("q1", "b", "x"), ("q1", "a", "y")], "labeled item 'q1' twice"),
        ([("q1", "a")], "triple"),
        ([("q1", "a", "")], "label must be a non-empty string"),
        ([("q1", 7, "x")], "rater must be a non-empty string"),
    ],
)
def test_invalid_rows_raise_input_error(rows: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ag.fleiss_kappa(rows)


def test_duplicate_label_error_names_both_rows() -> None:
    rows = [("q1", "a", "x"), ("q1", "b", "x"), ("q1", "a", "y")]
    with pytest.raises(InputError) as err:
        ag.agreement_report(rows)
    assert err.value.location == "rows[2]"
    assert "rows[0]" in str(err.value)


def test_other_invalid_arguments() -> None:
    with pytest.raises(InputError, match="differ in length"):
        ag.cohen_kappa(["a"], ["a", "b"])
    with pytest.raises(InputError, match="no shared items"):
        ag.cohen_kappa([], [])
    with pytest.raises(InputError, match="k <= n"):
        ag.proportion_ci(5, 3)
    with pytest.raises(InputError, match="n > 0"):
        ag.proportion_ci(0, 0)
    with pytest.raises(InputError, match="integers"):
        ag.proportion_ci(1.5, 3)  # type: ignore[arg-type]
    rows = fleiss_rows()
    with pytest.raises(InputError, match="n_boot"):
        ag.bootstrap_ci(rows, ag.fleiss_kappa, n_boot=0)
    with pytest.raises(InputError, match="alpha"):
        ag.bootstrap_ci(rows, ag.fleiss_kappa, alpha=1.5)
    with pytest.raises(InputError, match="no group"):
        ag.agreement_report(rows, item_groups={"s00": "medqa"}, n_boot=10)


# ---------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("statistic", COEFFICIENTS)
def test_bootstrap_ci_contains_estimate_and_shrinks_with_more_items(statistic) -> None:
    small = simulated(100, seed=5)
    large = simulated(1600, seed=5)
    point_s, point_l = statistic(small), statistic(large)
    lo_s, hi_s = ag.bootstrap_ci(small, statistic, n_boot=400, seed=1)
    lo_l, hi_l = ag.bootstrap_ci(large, statistic, n_boot=400, seed=1)
    assert lo_s <= point_s <= hi_s
    assert lo_l <= point_l <= hi_l
    # 16x the items -> about a quarter of the width; allow slack for sampling noise.
    assert (hi_l - lo_l) < 0.4 * (hi_s - lo_s)


@pytest.mark.parametrize("statistic", COEFFICIENTS)
def test_vectorised_bootstrap_equals_recomputing_on_resampled_rows(statistic) -> None:
    rows = matrix_rows(KRIPP_2011) + simulated(25, n_raters=3, per_item=2, seed=9)
    # The public path: a lambda is not registered, so it recomputes on resampled rows.
    fast = ag.bootstrap_ci(rows, statistic, n_boot=15, seed=4)
    slow = ag.bootstrap_ci(rows, lambda r: statistic(r), n_boot=15, seed=4)
    assert fast == pytest.approx(slow, abs=1e-9)
    enc = ag._pairable(ag._encode(rows))
    reps_fast = ag._FAST[statistic](enc, ag._weights(len(enc.items), 15, 4))
    reps_slow = ag._slow_replicates(enc, statistic, 15, 4)
    np.testing.assert_allclose(reps_fast, reps_slow, atol=1e-9, equal_nan=True)


def test_bootstrap_is_deterministic_and_seed_dependent() -> None:
    rows = simulated(200)
    first = ag.bootstrap_ci(rows, ag.krippendorff_alpha, n_boot=200, seed=7)
    assert ag.bootstrap_ci(rows, ag.krippendorff_alpha, n_boot=200, seed=7) == first
    assert ag.bootstrap_ci(list(reversed(rows)), ag.krippendorff_alpha, n_boot=200, seed=7) == first
    assert ag.bootstrap_ci(rows, ag.krippendorff_alpha, n_boot=200, seed=8) != first


def test_bootstrap_is_nan_safe_for_any_statistic() -> None:
    rows = simulated(30)
    calls = {"n": 0}

    def flaky(r: list[LabelRow]) -> float:
        calls["n"] += 1
        return math.nan if calls["n"] % 2 else ag.percent_agreement(r)

    lo, hi = ag.bootstrap_ci(rows, flaky, n_boot=40)
    assert 0.0 <= lo <= hi <= 1.0
    assert ag.bootstrap_ci(rows, lambda r: math.nan, n_boot=10) == (
        pytest.approx(math.nan, nan_ok=True),
        pytest.approx(math.nan, nan_ok=True),
    )


def test_bootstrap_with_undefined_replicates_ignores_them() -> None:
    # Pairs sharing one item only: mean pairwise Cohen is NaN in many replicates.
    rows = [("q1", "a", "x"), ("q1", "b", "y"), ("q2", "a", "x"), ("q2", "b", "x"),
            ("q3", "c", "x"), ("q3", "d", "y")]  # fmt: skip
    lo, hi = ag.bootstrap_ci(rows, ag.mean_pairwise_cohen, n_boot=200)
    assert -1.0 <= lo <= hi <= 1.0


# ------------------------------------------------------------------------------ report


def test_agreement_report_structure_is_json_ready() -> None:
    rows = simulated(120, n_raters=4) + [("lonely", "ann0", "reasoning")]
    groups = {f"q{i:05d}": ("medqa" if i % 2 else "pubmedqa") for i in range(120)}
    groups["lonely"] = "medqa"
    rep = ag.agreement_report(rows, item_groups=groups, n_boot=200, seed=3)
    text = json.dumps(rep, allow_nan=False)
    assert json.loads(text) == rep
    assert rep["n_rows"] == len(rows) and rep["n_items_dropped"] == 1
    assert rep["categories"] == ["knowledge", "reasoning"]
    overall = rep["overall"]
    assert overall["n_items"] == 120 and overall["n_raters"] == 4 and overall["n_labels"] == 360
    for name in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "mean_pairwise_cohen"):
        v = overall[name]
        assert v["ci"][0] <= v["value"] <= v["ci"][1]
    assert overall["fleiss_kappa"]["value"] == pytest.approx(ag.fleiss_kappa(rows))
    assert overall["percent_agreement"]["value"] == pytest.approx(ag.percent_agreement(rows))
    assert overall["mean_pairwise_cohen"]["value"] == pytest.approx(ag.mean_pairwise_cohen(rows))
    assert set(rep["per_group"]) == {"medqa", "pubmedqa"}
    assert rep["per_group"]["medqa"]["n_items"] == 60
    assert rep["per_group"]["medqa"]["n_items_dropped"] == 1
    medqa_rows = [r for r in rows if groups[r[0]] == "medqa"]
    assert rep["per_group"]["medqa"]["krippendorff_alpha"]["value"] == pytest.approx(
        ag.krippendorff_alpha(medqa_rows)
    )
    assert rep["per_group"]["medqa"]["mean_pairwise_cohen"]["value"] == pytest.approx(
        ag.mean_pairwise_cohen(medqa_rows)
    )
    assert len(rep["pairwise"]) == 6
    assert rep["pairwise"] == json.loads(json.dumps(ag.pairwise_cohen(rows, n_boot=200, seed=3)))
    for p in rep["pairwise"]:
        assert p["ci_low"] <= p["kappa"] <= p["ci_high"]
    assert set(rep["per_annotator"]) == {"ann0", "ann1", "ann2", "ann3"}
    ann0 = rep["per_annotator"]["ann0"]
    assert ann0["n_items"] == sum(1 for r in rows if r[1] == "ann0" and r[0] != "lonely")
    assert 0 < ann0["n_items_vs_majority"] <= ann0["n_items"]
    lo, hi = ann0["kappa_vs_majority_of_others"]["ci"]
    assert lo <= ann0["kappa_vs_majority_of_others"]["value"] <= hi


def test_per_annotator_values_by_hand() -> None:
    rows = [
        ("q1", "a", "x"), ("q1", "b", "x"), ("q1", "c", "x"),
        ("q2", "a", "y"), ("q2", "b", "x"), ("q2", "c", "x"),
        ("q3", "a", "y"), ("q3", "b", "y"), ("q3", "c", "x"),
        ("q4", "a", "y"), ("q4", "b", "y"),
    ]  # fmt: skip
    rep = ag.agreement_report(rows, n_boot=50)
    a = rep["per_annotator"]["a"]
    # a agrees with: q1 2/2, q2 0/2, q3 1/2, q4 1/1 -> mean 0.625
    assert a["n_items"] == 4
    assert a["agreement_with_others"]["value"] == pytest.approx(0.625)
    # others' majority: q1 x, q2 x, q3 tie (skipped), q4 y -> a: x,y,y vs x,x,y
    assert a["n_items_vs_majority"] == 3
    assert a["kappa_vs_majority_of_others"]["value"] == pytest.approx(
        ag.cohen_kappa(["x", "y", "y"], ["x", "x", "y"])
    )
    # With two raters the majority of the others is the other rater: equals pairwise kappa.
    two = [r for r in rows if r[1] in ("a", "b")]
    rep2 = ag.agreement_report(two, n_boot=50)
    (pair,) = rep2["pairwise"]
    assert rep2["per_annotator"]["a"]["kappa_vs_majority_of_others"]["value"] == pytest.approx(
        pair["kappa"]
    )


def test_report_without_overlap_returns_none_values() -> None:
    rows = [("q1", "a", "x"), ("q2", "b", "y")]
    rep = ag.agreement_report(rows, item_groups={"q1": "g", "q2": "g"}, n_boot=20)
    json.dumps(rep, allow_nan=False)
    assert rep["overall"]["n_items"] == 0 and rep["n_items_dropped"] == 2
    assert rep["overall"]["fleiss_kappa"] == {"value": None, "ci": [None, None]}
    assert rep["per_group"]["g"]["krippendorff_alpha"]["value"] is None
    assert rep["pairwise"] == [] and rep["per_annotator"] == {}
    empty = ag.agreement_report([], n_boot=20)
    assert empty["overall"]["n_items"] == 0


def test_report_undefined_values_become_none() -> None:
    # Every pair shares one item: mean pairwise Cohen (pairs with >= 2 shared items) is NaN.
    rows = [("q1", "a", "x"), ("q1", "b", "y"), ("q2", "c", "x"), ("q2", "d", "x")]
    rep = ag.agreement_report(rows, n_boot=20)
    json.dumps(rep, allow_nan=False)
    assert rep["overall"]["mean_pairwise_cohen"]["value"] is None
    assert rep["overall"]["fleiss_kappa"]["value"] is not None
