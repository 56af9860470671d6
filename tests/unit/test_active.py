"""Property-based and example tests of curation.active (pure: arrays in, ids out)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation import active
from curation.errors import InputError

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pools(draw: st.DrawFn, min_size: int = 0, max_size: int = 30) -> tuple[list[str], np.ndarray, np.ndarray, set[str], int, int]:
    n = draw(st.integers(min_size, max_size))
    ids = draw(st.lists(st.text("abcdefghij0123456789", min_size=1, max_size=6), min_size=n, max_size=n, unique=True))
    probs = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)), dtype=float)
    emb = np.array(draw(st.lists(st.lists(st.floats(-3, 3), min_size=3, max_size=3), min_size=n, max_size=n)), dtype=float).reshape(n, 3)
    labeled = set(draw(st.lists(st.sampled_from(ids), unique=True))) if ids else set()
    k = draw(st.integers(0, n + 3))
    seed = draw(st.integers(0, 5))
    return ids, probs, emb, labeled, k, seed


@pytest.mark.parametrize("strategy", active.STRATEGIES)
@SETTINGS
@given(data=pools())
def test_query_returns_k_unique_unlabeled_ids(strategy: str, data: tuple) -> None:
    ids, probs, emb, labeled, k, seed = data
    picked = active.query(strategy, ids, k, probs=probs, embeddings=emb, exclude=labeled, seed=seed)
    assert len(picked) == len(set(picked)) == min(k, len(set(ids) - labeled))
    assert set(picked) <= set(ids) - labeled


@pytest.mark.parametrize("strategy", active.STRATEGIES)
@SETTINGS
@given(data=pools(min_size=1), perm_seed=st.integers(0, 100))
def test_query_is_independent_of_row_order(strategy: str, data: tuple, perm_seed: int) -> None:
    ids, probs, emb, labeled, k, seed = data
    perm = np.random.default_rng(perm_seed).permutation(len(ids))
    a = active.query(strategy, ids, k, probs=probs, embeddings=emb, exclude=labeled, seed=seed)
    b = active.query(strategy, [ids[i] for i in perm], k, probs=probs[perm], embeddings=emb[perm], exclude=labeled, seed=seed)
    assert a == b


@SETTINGS
@given(p=st.lists(st.floats(0, 1), max_size=50))
def test_scores_in_range(p: list[float]) -> None:
    for fn in (active.entropy_scores, active.margin_scores):
        s = fn(p)
        assert s.shape == (len(p),) and np.all((s >= 0) & (s <= 1))
    if p:
        assert np.argmax(active.entropy_scores([0.5] + p)) == 0


def test_entropy_picks_most_uncertain_and_bad_input() -> None:
    ids = ["a", "b", "c", "d"]
    assert active.query("entropy", ids, 2, probs=[0.99, 0.5, 0.1, 0.6]) == ["b", "d"]
    assert active.query("margin", ids, 2, probs=[0.99, 0.5, 0.1, 0.6]) == ["b", "d"]
    assert active.query("entropy", [], 5, probs=[]) == []  # empty pool
    with pytest.raises(InputError, match="needs model probabilities"):
        active.query("entropy", ids, 2)
    with pytest.raises(InputError, match="needs embeddings"):
        active.query("kmeans", ids, 2, probs=[0.5] * 4)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        active.query("entropy", ids, 2, probs=[1.5, 0, 0, 0])
    with pytest.raises(InputError, match="twice"):
        active.query("random", ["a", "a"], 1)
    with pytest.raises(InputError, match="not one of"):
        active.query("coreset", ids, 1)


def test_kmeans_spreads_over_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    emb = np.concatenate([c + rng.normal(0, 0.1, (20, 2)) for c in centres])
    ids = [f"q{i:03d}" for i in range(60)]
    picked = active.query("kmeans", ids, 3, embeddings=emb)
    assert {int(p[1:]) // 20 for p in picked} == {0, 1, 2}
    g = active.query("badge", ids, 3, probs=np.full(60, 0.5), embeddings=emb)
    assert {int(p[1:]) // 20 for p in g} == {0, 1, 2}


def test_identical_embeddings_still_give_k_ids() -> None:
    ids = [str(i) for i in range(10)]
    for s in ("kmeans", "badge"):
        assert len(set(active.query(s, ids, 4, probs=np.full(10, 0.3), embeddings=np.ones((10, 2))))) == 4


def _fit(ids: list[str], y: np.ndarray):  # returns a fit function
    share = float(np.mean(y)) if len(y) else 0.5
    return lambda q: np.array([0.5 if int(i) % 2 else share for i in q], dtype=float)


def test_active_learner_state_machine() -> None:
    pool = [str(i) for i in range(20)]
    al = active.ActiveLearner(pool, _fit, strategy="entropy", seed=0)
    assert al.predictor is None and len(al.unlabeled()) == 20
    first = al.query(3)  # no model yet: random
    assert len(first) == 3 and al.queried == first
    al.initialize({first[0]: "reasoning"})  # single class: fit still works
    assert al.labeled == {first[0]: 1} and al.predictor is not None
    al.update({first[1]: "knowledge", first[2]: 0})
    assert not al.queried and len(al.labeled) == 3 and al.rounds[-1] == {"n_labeled": 3, "n_new": 2}
    nxt = al.query(4)
    assert all(int(i) % 2 for i in nxt)  # the uncertain ones (p = 0.5)
    assert not set(nxt) & set(al.labeled)
    al.ignore(nxt[:2])
    assert al.queried == nxt[2:] and set(nxt[:2]) == al.ignored
    assert not set(al.unlabeled()) & (al.ignored | set(al.queried) | set(al.labeled))
    with pytest.raises(InputError, match="not in the pool"):
        al.update({"zzz": "reasoning"})
    with pytest.raises(InputError, match="not reasoning or knowledge"):
        al.update({nxt[2]: "maybe"})
    al2 = active.ActiveLearner(pool[:2], _fit)
    al2.initialize({"0": 1, "1": 0})
    assert al2.query(5) == []  # empty pool


def test_stopping_rule_names_each_condition() -> None:
    d = active.stopping_rule(0.70, 0.65, 0.005)
    assert d.stop and d.kappa_reached and d.predictions_stable and d.message.startswith("STOP")
    d = active.stopping_rule(0.60, 0.65, 0.005)
    assert not d.stop and not d.kappa_reached and d.predictions_stable and "0.600 < human" in d.message
    d = active.stopping_rule(0.70, 0.65, 0.02)
    assert not d.stop and d.kappa_reached and not d.predictions_stable and "2.00%" in d.message
    d = active.stopping_rule(None, None, None)
    assert not d.stop and "not measurable" in d.message and "two model rounds" in d.message
    assert active.changed_fraction({"a": True, "b": False}, {"a": True, "b": True, "c": True}) == 0.5
    assert active.changed_fraction({}, {"a": True}) is None


def test_label_noise_flags_from_out_of_fold() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, (40, 2)), rng.normal(2, 0.5, (40, 2))])
    y = np.array([0] * 40 + [1] * 40)
    y_noisy = y.copy()
    y_noisy[[3, 50]] = 1 - y_noisy[[3, 50]]

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        return active.logistic_fit(x[tr], y_noisy[tr])(x[te])

    oof = active.out_of_fold_probs(y_noisy, fit_predict, n_splits=5, seed=0)
    assert not np.isnan(oof).any()
    flags = active.label_noise_flags([f"q{i}" for i in range(80)], y_noisy, oof, min_confidence=0.9)
    assert {f["id"] for f in flags} == {"q3", "q50"}
    assert flags[0]["model_confidence"] >= flags[-1]["model_confidence"]
    with pytest.raises(InputError):
        active.out_of_fold_probs(y[:3], fit_predict, n_splits=5)


def test_gold_agreement_with_cis() -> None:
    gold = {f"q{i}": ("reasoning" if i % 3 else "knowledge") for i in range(30)}
    pred = {q: (lab == "reasoning") for q, lab in gold.items()}
    pred["q1"] = not pred["q1"]
    humans = [(q, "ann", lab) for q, lab in gold.items()] + [(q, "bob", lab) for q, lab in gold.items()]
    r = active.gold_agreement(gold, pred, humans, n_boot=200)
    assert r["n_gold"] == 30 and r["accuracy"] == pytest.approx(29 / 30)
    assert r["kappa_ci"][0] <= r["kappa"] <= r["kappa_ci"][1] and r["kappa"] < 1
    assert r["human_kappa"] == 1.0
    assert r["accuracy_ci"][0] < r["accuracy"] <= r["accuracy_ci"][1]
    empty = active.gold_agreement({}, {}, [])
    assert empty["n_gold"] == 0 and empty["human_kappa"] is None


def test_simulation_learning_curve() -> None:
    rng = np.random.default_rng(1)
    n = 400
    y = (rng.random(n) < 0.3).astype(int)
    x = rng.normal(0, 1, (n, 5)) + y[:, None] * 1.5
    res = active.simulate(x[:300], y[:300], x[300:], y[300:], strategies=["entropy", "random"],
                          budgets=[30, 60], seeds=[0, 1], init_size=10, step=10)
    assert len(res.rows) == 2 * 2 * 2
    curve = res.curve()
    assert {(c["strategy"], c["n_labels"]) for c in curve} == {(s, b) for s in ("entropy", "random") for b in (30, 60)}
    assert all(0 <= c["mean"] <= 1 and c["n_seeds"] == 2 for c in curve)
    reach = res.labels_to_reach(0.5)
    assert reach["random"] == 30
    assert all(not math.isnan(v) for v in res.full_data.values())
    with pytest.raises(InputError, match="exceeds"):
        active.simulate(x[:20], y[:20], x[300:], y[300:], strategies=["random"], budgets=[50], seeds=[0])


def test_simulation_cold_start_coarse_steps_and_c() -> None:
    """init="kmeans" starts from the k-means picks (rows named <strategy>@kmeans0); coarse
    steps change how many labels each query adds after the threshold; `c` reaches the learner."""
    rng = np.random.default_rng(2)
    n = 400
    y = (rng.random(n) < 0.3).astype(int)
    x = rng.normal(0, 1, (n, 5)) + y[:, None] * 1.5
    seen: list[np.ndarray] = []

    def fit(xs: np.ndarray, ys: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        seen.append(xs)
        return active.logistic_fit(xs, ys)
    res = active.simulate(x[:300], y[:300], x[300:], y[300:], strategies=["random"], budgets=[10, 30, 90], seeds=[0],
                          init_size=10, step=10, init="kmeans", coarse=(30, 60), fit=fit)
    assert {r["strategy"] for r in res.rows} == {"random@kmeans0"}
    assert [r["n_labeled_actual"] for r in res.rows] == [10, 30, 90]
    # the full-data fit, then refits at 10, 20, 30 labels and one coarse step of 60 to 90
    assert [len(s) for s in seen] == [300, 10, 20, 30, 90]
    picks = [int(q) for q in active.query("kmeans", [f"{i:07d}" for i in range(300)], 10, embeddings=x[:300], seed=0)]
    rows = {tuple(r) for r in seen[1]}
    assert rows == {tuple(r) for r in x[picks]}  # the first fit saw exactly the k-means picks
    assert rows != {tuple(r) for r in x[np.random.default_rng(0).permutation(300)[:10]]}
    rand = active.simulate(x[:300], y[:300], x[300:], y[300:], strategies=["random"], budgets=[10], seeds=[0],
                           init_size=10, step=10)
    assert rand.rows[0]["strategy"] == "random"
    with pytest.raises(InputError, match="init"):
        active.simulate(x[:300], y[:300], x[300:], y[300:], strategies=["random"], budgets=[10], seeds=[0], init="typiclust")
    strong, weak = active.logistic_fit(x[:300], y[:300], c=100.0), active.logistic_fit(x[:300], y[:300], c=1e-4)
    assert np.ptp(strong(x[300:])) > np.ptp(weak(x[300:]))


def test_auto_strategy_switches_from_entropy_to_badge() -> None:
    """auto: entropy below AUTO_SWITCH labels, badge from it; `query` refuses it unresolved;
    the learner draws exactly what the resolved strategy draws."""
    assert active.resolve_strategy("auto", active.AUTO_SWITCH - 1) == "entropy"
    assert active.resolve_strategy("auto", active.AUTO_SWITCH) == "badge"
    assert active.resolve_strategy("margin", 0) == "margin"
    with pytest.raises(InputError, match="not one of"):
        active.resolve_strategy("typiclust", 0)
    ids = [f"q{i:03d}" for i in range(400)]
    with pytest.raises(InputError, match="resolve_strategy"):
        active.query("auto", ids, 3, probs=np.full(400, 0.5))
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(400, 4))
    probs = 1 / (1 + np.exp(-emb[:, 0]))
    by_id = dict(zip(ids, probs, strict=True))
    index = {q: i for i, q in enumerate(ids)}

    def learner(n_labeled: int) -> active.ActiveLearner:
        al = active.ActiveLearner(ids, lambda sel, y: lambda q: np.array([by_id[i] for i in q]), strategy="auto",
                                  seed=3, features=lambda q: emb[[index[i] for i in q]])
        al.initialize({q: int(by_id[q] > 0.5) for q in ids[:n_labeled]})
        return al
    for n, expect in ((50, "entropy"), (active.AUTO_SWITCH, "badge")):
        al = learner(n)
        rest = ids[n:]
        want = active.query(expect, rest, 5, probs=probs[n:], embeddings=emb[n:], seed=3)
        assert al.query(5) == want
    with pytest.raises(InputError, match="features"):
        active.ActiveLearner(ids, lambda sel, y: lambda q: np.zeros(len(q)), strategy="auto")


def test_labels_to_reach_first_vs_sustained() -> None:
    res = active.SimulationResult(full_data={0: 1.0})
    for n, ba in [(50, 0.80), (100, 0.96), (150, 0.90), (200, 0.95), (300, 0.97)]:
        res.rows.append({"strategy": "lucky", "seed": 0, "n_labels": n, "balanced_accuracy": ba, "kappa": 0.0})
    for n, ba in [(50, 0.5), (100, 0.6), (150, 0.7), (200, 0.8), (300, 0.9)]:
        res.rows.append({"strategy": "never", "seed": 0, "n_labels": n, "balanced_accuracy": ba, "kappa": 0.0})
    assert res.labels_to_reach(0.95) == {"lucky": 100, "never": None}
    assert res.labels_to_reach(0.95, sustained=True) == {"lucky": 200, "never": None}
    res.rows.append({"strategy": "lucky", "seed": 0, "n_labels": 400, "balanced_accuracy": 0.5, "kappa": 0.0})
    assert res.labels_to_reach(0.95) == {"lucky": 100, "never": None}
    assert res.labels_to_reach(0.95, sustained=True)["lucky"] is None  # falls back below at the end
