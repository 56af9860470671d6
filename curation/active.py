"""Active learning: query strategies, the loop object, the stopping rule, label-noise flags,
model-gold agreement. Pure: arrays and ids in, ids and numbers out; no store, no torch.
The simulation is `curation.simulate`; its names are re-exported here.

Query strategies (`query`) pick `k` ids from a pool of unlabeled candidates:

* ``entropy`` / ``margin`` — most uncertain first (binary entropy of p; 1 - |2p - 1|).
* ``kmeans`` — diverse *and* uncertain: k-means with k clusters over the candidates'
  embeddings, weighted by margin uncertainty when probabilities are given (Zhdanov 2019,
  "Diverse mini-batch active learning"); from each cluster the candidate nearest its centre.
* ``badge`` — BADGE (Ash et al. 2020): k-means++ seeding over gradient embeddings
  ``(p - onehot(argmax p)) (x) h`` of the last layer.
* ``random`` — a seeded uniform sample (the baseline).

Every strategy returns ``min(k, n)`` unique ids of the pool, never an excluded id, and the
same ids whatever the order of the pool rows (rows are put in id order first; ties break by
id). small-text and modAL implement these too, but against their own classifier wrappers;
the few lines here work on plain arrays with our pinned NumPy/scikit-learn.

`ActiveLearner` is the loop: ``query -> (people label outside) -> update``, with its state
(labeled, queried, ignored ids) in plain attributes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curation import metrics
from curation.errors import InputError
from curation.simulate import ArrayFit, SimulationResult, logistic_fit, simulate

__all__ = [
    "NEEDS_EMBEDDINGS", "NEEDS_PROBS", "STRATEGIES", "ActiveLearner", "FeatureFn", "FitFn",
    "AUTO", "AUTO_SWITCH", "CHOICES", "DEFAULT_STRATEGY", "DEFAULT_STRATEGY_WHY", "Predictor", "StopDecision", "badge_embeddings", "changed_fraction", "entropy_scores",
    "gold_agreement", "label_noise_flags", "margin_scores", "out_of_fold_probs", "query", "resolve_strategy",
    "stopping_rule", "stratified_folds",
    # re-exported from curation.simulate
    "ArrayFit", "SimulationResult", "logistic_fit", "simulate",
]

STRATEGIES = ("entropy", "margin", "kmeans", "badge", "random")  # what `query` draws with
# `auto`: entropy while the model has fewer than AUTO_SWITCH labels, badge from then on.
# Measured (benchmarks/active_learning.py, 10 seeds, two learners): entropy has the largest
# area under the learning curve over 25-400 labels but plateaus from ~300, where badge
# (and random) overtake it; badge keeps gaining. `resolve_strategy` applies it.
AUTO = "auto"
AUTO_SWITCH = 300
CHOICES = (AUTO, *STRATEGIES)  # what a person may ask for (`al next`, the loop policy)
# what `al next`, a loop round and the demo draw with unless told: the measured winner
DEFAULT_STRATEGY = AUTO
DEFAULT_STRATEGY_WHY = (f"entropy below {AUTO_SWITCH} labels, then badge: the largest area under the learning "
                        "curve in benchmarks/active_learning.py")
NEEDS_EMBEDDINGS = ("kmeans", "badge")
NEEDS_PROBS = ("entropy", "margin", "badge")


# ----------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------
def _as_p(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if p.ndim == 2:
        if p.shape[1] != 2:
            raise InputError(f"probabilities have {p.shape[1]} columns; expected 2 (knowledge, reasoning)")
        p = p[:, 1]
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1 or np.isnan(p).any()):
        raise InputError("probabilities must lie in [0, 1] (no NaN)")
    return p


def entropy_scores(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Binary entropy in bits of p(reasoning): 0 (certain) .. 1 (p = 0.5)."""
    p = np.clip(_as_p(probs), 1e-12, 1 - 1e-12)
    h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.clip(h, 0.0, 1.0)


def margin_scores(probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """1 - |p1 - p0| = 1 - |2p - 1|: 0 (certain) .. 1 (p = 0.5)."""
    p = _as_p(probs)
    return np.clip(1.0 - np.abs(2 * p - 1), 0.0, 1.0)


# ----------------------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------------------
def _top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> list[int]:
    # highest score first, ties by id (ids are already sorted, so by position)
    order = np.lexsort((np.arange(len(ids)), -scores))
    return order[:k].tolist()


def _kmeans_pick(emb: np.ndarray, k: int, seed: int, weights: np.ndarray | None) -> list[int]:
    from sklearn.cluster import KMeans

    n = len(emb)
    if k >= n:
        return list(range(n))
    km = KMeans(n_clusters=k, random_state=seed, n_init=1)
    with warnings.catch_warnings():  # duplicate points -> fewer distinct clusters: handled below
        warnings.simplefilter("ignore")
        km.fit(emb, sample_weight=None if weights is None else np.maximum(weights, 1e-6))
    dist = np.linalg.norm(emb[:, None, :] - km.cluster_centers_[None, :, :], axis=2) if n * k <= 5_000_000 else None
    chosen: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if members.size == 0:
            continue
        d = dist[members, c] if dist is not None else np.linalg.norm(emb[members] - km.cluster_centers_[c], axis=1)
        i = int(members[np.lexsort((members, d))[0]])
        if not taken[i]:
            taken[i] = True
            chosen.append(i)
    if len(chosen) < k:  # empty or duplicate clusters (identical embeddings): fill by weight
        rest = np.flatnonzero(~taken)
        w = np.zeros(len(rest)) if weights is None else weights[rest]
        chosen += rest[np.lexsort((rest, -w))][: k - len(chosen)].tolist()
    return chosen


def badge_embeddings(probs: Sequence[float] | np.ndarray, emb: np.ndarray) -> np.ndarray:
    """Gradient embeddings of the cross-entropy w.r.t. the last layer, at the predicted
    label: row i is ``(p_i - onehot(yhat_i)) (x) h_i`` (2 classes -> 2 * dim columns)."""
    p = _as_p(probs)
    p2 = np.stack([1 - p, p], axis=1)
    yhat = (p >= 0.5).astype(int)
    g = p2.copy()
    g[np.arange(len(p)), yhat] -= 1.0
    return (g[:, :, None] * np.asarray(emb, dtype=float)[:, None, :]).reshape(len(p), -1)


def _kmeanspp_pick(g: np.ndarray, k: int, seed: int) -> list[int]:
    n = len(g)
    if k >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    norms = np.linalg.norm(g, axis=1)
    first = int(np.lexsort((np.arange(n), -norms))[0])
    chosen = [first]
    d2 = np.sum((g - g[first]) ** 2, axis=1)
    d2[first] = 0.0
    while len(chosen) < k:
        total = d2.sum()
        if total <= 1e-18:  # every remaining point coincides with a centre: take in id order
            rest = [i for i in range(n) if i not in set(chosen)]
            chosen += rest[: k - len(chosen)]
            break
        i = int(rng.choice(n, p=d2 / total))
        chosen.append(i)
        d2 = np.minimum(d2, np.sum((g - g[i]) ** 2, axis=1))
        d2[chosen] = 0.0
    return chosen


def resolve_strategy(strategy: str, n_labeled: int) -> str:
    """The strategy to draw with when the model was fitted on `n_labeled` labels: `auto`
    becomes entropy below `AUTO_SWITCH`, badge from it; any other choice stays."""
    if strategy not in CHOICES:
        raise InputError(f"strategy {strategy!r} is not one of {', '.join(CHOICES)}")
    if strategy != AUTO:
        return strategy
    return "entropy" if n_labeled < AUTO_SWITCH else "badge"


def query(
    strategy: str,
    ids: Sequence[str],
    k: int,
    *,
    probs: Sequence[float] | np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    exclude: Iterable[str] = (),
    seed: int = 0,
) -> list[str]:
    """Pick up to `k` ids of the pool `ids` (minus `exclude`) by `strategy`.

    `probs` (p(reasoning) per row) and `embeddings` (one row per id) align with `ids`.
    Returns ids in selection order (most informative first for entropy/margin).
    """
    if strategy == AUTO:
        raise InputError("strategy 'auto' depends on how many labels the model has: resolve_strategy(strategy, n_labeled) first")
    if strategy not in STRATEGIES:
        raise InputError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if k < 0:
        raise InputError(f"k must be >= 0, got {k}")
    ids_arr = np.asarray(list(ids), dtype=object)
    n = len(ids_arr)
    if len(set(ids_arr.tolist())) != n:
        raise InputError("the pool lists an id twice")
    p = None if probs is None else _as_p(probs)
    if p is not None and len(p) != n:
        raise InputError(f"{len(p)} probabilities for {n} ids")
    emb = None if embeddings is None else np.asarray(embeddings, dtype=float)
    if emb is not None and len(emb) != n:
        raise InputError(f"{len(emb)} embedding rows for {n} ids")
    if strategy in NEEDS_PROBS and p is None:
        raise InputError(f"strategy {strategy!r} needs model probabilities; train a model first")
    if strategy in NEEDS_EMBEDDINGS and emb is None:
        raise InputError(f"strategy {strategy!r} needs embeddings")
    excluded = set(exclude)
    keep = np.array([i not in excluded for i in ids_arr.tolist()], dtype=bool) if n else np.zeros(0, bool)
    order = np.flatnonzero(keep)
    order = order[np.argsort(ids_arr[order].astype(str), kind="stable")] if order.size else order
    pool = ids_arr[order]
    m = len(pool)
    k = min(k, m)
    if k == 0:
        return []
    pp = None if p is None else p[order]
    ee = None if emb is None else emb[order]
    if strategy == "random":
        picked = np.random.default_rng(seed).permutation(m)[:k].tolist()
    elif strategy == "entropy":
        assert pp is not None
        picked = _top_k(entropy_scores(pp), pool, k)
    elif strategy == "margin":
        assert pp is not None
        picked = _top_k(margin_scores(pp), pool, k)
    elif strategy == "kmeans":
        assert ee is not None
        picked = _kmeans_pick(ee, k, seed, None if pp is None else margin_scores(pp))
    else:  # badge
        assert pp is not None and ee is not None
        picked = _kmeanspp_pick(badge_embeddings(pp, ee), k, seed)
    return [str(pool[i]) for i in picked]


# ----------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------
Predictor = Callable[[Sequence[str]], np.ndarray]
FitFn = Callable[[Sequence[str], np.ndarray], Predictor]
FeatureFn = Callable[[Sequence[str]], np.ndarray]


def _label_code(value: Any) -> int:
    if value in (1, "reasoning", True):
        return 1
    if value in (0, "knowledge", False):
        return 0
    raise InputError(f"label {value!r} is not reasoning or knowledge")


class ActiveLearner:
    """The active-learning loop as an explicit object (small-text's `PoolBasedActiveLearner`
    shape): ``initialize(labels)`` -> ``query(k)`` -> people label -> ``update(labels)``.

    State is visible: `labeled` (id -> 0/1, 1 = reasoning), `queried` (asked, not yet
    answered), `ignored` (skipped for good), `rounds` (one dict per update). `fit(ids, y)`
    trains a model and returns a predictor ``ids -> p(reasoning)``; `features(ids)` gives
    embeddings for kmeans/badge.
    """

    def __init__(
        self,
        pool_ids: Sequence[str],
        fit: FitFn,
        *,
        strategy: str = "entropy",
        features: FeatureFn | None = None,
        seed: int = 0,
    ) -> None:
        if strategy not in CHOICES:
            raise InputError(f"strategy {strategy!r} is not one of {', '.join(CHOICES)}")
        if (strategy in NEEDS_EMBEDDINGS or strategy == AUTO) and features is None:
            raise InputError(f"strategy {strategy!r} needs a features function")
        self.pool_ids: list[str] = list(dict.fromkeys(pool_ids))
        self._pool = set(self.pool_ids)
        self.fit_fn = fit
        self.strategy = strategy
        self.features = features
        self.seed = seed
        self.labeled: dict[str, int] = {}
        self.queried: list[str] = []
        self.ignored: set[str] = set()
        self.rounds: list[dict[str, Any]] = []
        self.predictor: Predictor | None = None

    # -- state ---------------------------------------------------------------------------
    def unlabeled(self) -> list[str]:
        """Pool ids neither labeled, queried nor ignored (the candidates of the next query)."""
        busy = self.labeled.keys() | set(self.queried) | self.ignored
        return [i for i in self.pool_ids if i not in busy]

    def _check_ids(self, ids: Iterable[str]) -> None:
        unknown = [i for i in ids if i not in self._pool]
        if unknown:
            raise InputError(f"id(s) not in the pool: {unknown[:5]}")

    # -- steps ---------------------------------------------------------------------------
    def initialize(self, labels: Mapping[str, Any]) -> None:
        """Start from labels people already gave (e.g. a random first batch), then fit."""
        self._check_ids(labels)
        self.labeled.update({i: _label_code(v) for i, v in labels.items()})
        self.queried = [i for i in self.queried if i not in self.labeled]
        self._fit()

    def _fit(self) -> None:
        ids = sorted(self.labeled)
        y = np.array([self.labeled[i] for i in ids], dtype=int)
        self.predictor = self.fit_fn(ids, y) if ids else None

    def query(self, k: int) -> list[str]:
        """Choose `k` candidates; they move to `queried` until `update` or `ignore`."""
        cand = self.unlabeled()
        if not cand or k <= 0:
            return []
        seed = self.seed + len(self.rounds)
        chosen = resolve_strategy(self.strategy, len(self.labeled))
        if self.predictor is None or chosen == "random":
            strategy, probs = "random", None
        else:
            strategy, probs = chosen, self.predictor(cand)
        emb = self.features(cand) if strategy in NEEDS_EMBEDDINGS and self.features else None
        if strategy == "kmeans" and probs is None and self.predictor is not None:
            probs = self.predictor(cand)
        picked = query(strategy, cand, k, probs=probs, embeddings=emb, seed=seed)
        self.queried.extend(picked)
        return picked

    def update(self, labels: Mapping[str, Any]) -> None:
        """Record the labels people gave to queried ids, then refit."""
        self._check_ids(labels)
        for i, v in labels.items():
            self.labeled[i] = _label_code(v)
        answered = set(labels)
        self.queried = [i for i in self.queried if i not in answered]
        self._fit()
        self.rounds.append({"n_labeled": len(self.labeled), "n_new": len(answered)})

    def ignore(self, ids: Iterable[str]) -> None:
        """Never ask about these ids again (e.g. annotators skipped them)."""
        ids = list(ids)
        self._check_ids(ids)
        self.ignored.update(ids)
        self.queried = [i for i in self.queried if i not in self.ignored]


# ----------------------------------------------------------------------------------------
# Stopping rule
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StopDecision:
    stop: bool
    kappa_reached: bool
    predictions_stable: bool
    model_kappa: float | None
    human_kappa_ci_low: float | None
    changed_fraction: float | None
    max_changed: float
    message: str


def changed_fraction(previous: Mapping[str, bool], current: Mapping[str, bool]) -> float | None:
    """Share of questions scored by both rounds whose `is_reasoning` flipped (None: no overlap)."""
    common = previous.keys() & current.keys()
    if not common:
        return None
    return sum(bool(previous[i]) != bool(current[i]) for i in common) / len(common)


def stopping_rule(
    model_kappa: float | None,
    human_kappa_ci_low: float | None,
    changed: float | None,
    *,
    max_changed: float = 0.01,
) -> StopDecision:
    """Stop when model-gold kappa >= the lower 95 % CI bound of human-human kappa AND fewer
    than `max_changed` (1 %) of predictions changed since the previous round."""
    ok_kappa = (
        model_kappa is not None and human_kappa_ci_low is not None
        and not math.isnan(model_kappa) and not math.isnan(human_kappa_ci_low)
        and model_kappa >= human_kappa_ci_low
    )
    ok_stable = changed is not None and changed < max_changed
    parts = []
    if model_kappa is None or human_kappa_ci_low is None or (isinstance(model_kappa, float) and math.isnan(model_kappa)) or (isinstance(human_kappa_ci_low, float) and math.isnan(human_kappa_ci_low)):
        parts.append("kappa: not measurable yet (needs a model evaluated on a gold set with >= 2 annotators per item)")
    else:
        parts.append(
            f"kappa: model-gold {model_kappa:.3f} {'>=' if ok_kappa else '<'} human-human lower CI bound {human_kappa_ci_low:.3f}"
        )
    if changed is None:
        parts.append("stability: needs predictions from two model rounds on the same questions")
    else:
        parts.append(f"stability: {changed:.2%} of predictions changed ({'<' if ok_stable else '>='} {max_changed:.0%})")
    stop = ok_kappa and ok_stable
    head = "STOP: both conditions hold" if stop else "CONTINUE: label another batch"
    return StopDecision(stop, ok_kappa, ok_stable, model_kappa, human_kappa_ci_low, changed, max_changed, head + "; " + "; ".join(parts))


# ----------------------------------------------------------------------------------------
# Label-noise flags
# ----------------------------------------------------------------------------------------
def stratified_folds(y: Sequence[int] | np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Fold number per row, classes spread evenly over folds (deterministic for a seed)."""
    t = np.asarray(y)
    folds = np.empty(len(t), dtype=int)
    rng = np.random.default_rng(seed)
    for c in np.unique(t):
        idx = np.flatnonzero(t == c)
        rng.shuffle(idx)
        folds[idx] = np.arange(len(idx)) % n_splits
    return folds


def out_of_fold_probs(
    y: Sequence[int] | np.ndarray,
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    n_splits: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """p(reasoning) for every row from a model that never saw it.

    `fit_predict(train_idx, test_idx)` trains on the rows `train_idx` and returns
    probabilities for `test_idx`.
    """
    t = np.asarray(y, dtype=int)
    if len(t) < n_splits or n_splits < 2:
        raise InputError(f"{len(t)} labeled rows; out-of-fold predictions need at least n_splits={max(n_splits, 2)}")
    folds = stratified_folds(t, n_splits, seed)
    out = np.full(len(t), np.nan)
    for f in range(n_splits):
        te = np.flatnonzero(folds == f)
        tr = np.flatnonzero(folds != f)
        if te.size:
            out[te] = _as_p(fit_predict(tr, te))
    return out


def label_noise_flags(
    ids: Sequence[str],
    y: Sequence[int] | np.ndarray,
    oof_probs: Sequence[float] | np.ndarray,
    *,
    min_confidence: float = 0.8,
) -> list[dict[str, Any]]:
    """Labels the out-of-fold model contradicts with probability >= `min_confidence`,
    most confident contradiction first (ties by id)."""
    t = np.asarray(y, dtype=int)
    p = _as_p(oof_probs)
    flags: list[dict[str, Any]] = []
    for i, qid in enumerate(ids):
        p_other = p[i] if t[i] == 0 else 1 - p[i]
        if p_other >= min_confidence:
            flags.append({
                "id": qid,
                "label": "reasoning" if t[i] == 1 else "knowledge",
                "model_label": "knowledge" if t[i] == 1 else "reasoning",
                "model_confidence": float(p_other),
                "reasoning_prob": float(p[i]),
            })
    flags.sort(key=lambda d: (-float(d["model_confidence"]), str(d["id"])))
    return flags


# ----------------------------------------------------------------------------------------
# Agreement of a model with the gold labels
# ----------------------------------------------------------------------------------------
def gold_agreement(
    gold: Mapping[str, str],
    predicted: Mapping[str, bool],
    human_rows: Sequence[tuple[str, str, str]] = (),
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Model vs gold labels, and human vs human on the same items, with 95 % CIs.

    `gold`: question id -> gold label; `predicted`: id -> is_reasoning; `human_rows`:
    (item, rater, label) of the gold items. Accuracy gets a Wilson interval; kappa,
    balanced accuracy and macro-F1 a percentile bootstrap over items.
    """
    from curation import agreement as ag

    ids = sorted(gold.keys() & predicted.keys())
    out: dict[str, Any] = {"n_gold": len(ids)}
    if ids:
        y = np.array([1 if gold[i] == "reasoning" else 0 for i in ids])
        pr = np.array([1 if predicted[i] else 0 for i in ids])
        k = int(np.sum(y == pr))
        rows = [(i, "gold", gold[i]) for i in ids] + [(i, "model", "reasoning" if predicted[i] else "knowledge") for i in ids]
        kappa = ag.cohen_kappa([gold[i] for i in ids], ["reasoning" if predicted[i] else "knowledge" for i in ids])
        try:
            kci = ag.bootstrap_ci(rows, ag.mean_pairwise_cohen, n_boot=n_boot, seed=seed) if len(ids) >= 2 else (math.nan, math.nan)
        except InputError:
            kci = (math.nan, math.nan)
        out.update({
            "accuracy": k / len(ids),
            "accuracy_ci": list(metrics.wilson_ci(k, len(ids))),
            "balanced_accuracy": metrics.balanced_accuracy(y, pr),
            "balanced_accuracy_ci": list(metrics.bootstrap_ci(metrics.balanced_accuracy, y, pr, n_boot=n_boot, seed=seed)),
            "f1_macro": metrics.f1_macro(y, pr),
            "f1_macro_ci": list(metrics.bootstrap_ci(metrics.f1_macro, y, pr, n_boot=n_boot, seed=seed)),
            "kappa": float(kappa),
            "kappa_ci": list(kci),
        })
    human = [r for r in human_rows if r[0] in gold]
    out["human_kappa"] = None
    out["human_kappa_ci"] = None
    if human:
        try:
            out["human_kappa"] = float(ag.mean_pairwise_cohen(human))
            out["human_kappa_ci"] = list(ag.bootstrap_ci(human, ag.mean_pairwise_cohen, n_boot=n_boot, seed=seed))
            out["human_n_items"] = len({r[0] for r in human})
        except InputError:
            pass  # no item with two human labels yet
    return out
