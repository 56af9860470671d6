"""The active-learning simulation: `ActiveLearner` run with an oracle (the pool's known
labels) for every strategy and seed, on fixed features with a fast learner
(`logistic_fit`), recording balanced accuracy and kappa at each label budget.
`SimulationResult` turns the rows into learning curves and "labels to reach 95 % of
full-data accuracy". Pure: arrays in, numbers out; no store, no torch.

`curation.active` re-exports `simulate`, `SimulationResult`, `logistic_fit` and `ArrayFit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from curation import metrics
from curation.errors import InputError

if TYPE_CHECKING:
    from curation.active import Predictor

__all__ = ["ArrayFit", "SimulationResult", "logistic_fit", "simulate"]

ArrayFit = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def logistic_fit(x: np.ndarray, y: np.ndarray, *, c: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """The simulation's fast learner: class-balanced logistic regression on fixed features,
    inverse regularisation `c` (the product's TF-IDF uses `TrainConfig.tfidf_c`).
    One class only -> a constant predictor at that class's smoothed prior."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        p = (np.sum(y) + 1) / (len(y) + 2)
        return lambda z: np.full(len(z), p)
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(x, y)
    return lambda z: lr.predict_proba(z)[:, 1]


@dataclass
class SimulationResult:
    rows: list[dict[str, Any]] = field(default_factory=list)  # strategy, seed, n_labels, balanced_accuracy, kappa
    full_data: dict[int, float] = field(default_factory=dict)  # seed -> balanced accuracy with all pool labels

    def curve(self) -> list[dict[str, Any]]:
        """Mean, std, min, max of balanced accuracy per (strategy, n_labels) over seeds."""
        groups: dict[tuple[str, int], list[float]] = {}
        for r in self.rows:
            groups.setdefault((r["strategy"], r["n_labels"]), []).append(r["balanced_accuracy"])
        return [
            {"strategy": s, "n_labels": n, "mean": float(np.mean(v)), "std": float(np.std(v)),
             "min": float(np.min(v)), "max": float(np.max(v)), "n_seeds": len(v)}
            for (s, n), v in sorted(groups.items())
        ]

    def target(self, fraction: float = 0.95) -> float:
        """`fraction` of the mean full-data balanced accuracy over seeds (NaN with no seeds)."""
        values = list(self.full_data.values())
        return fraction * float(np.mean(values)) if values else float("nan")

    def labels_to_reach(self, fraction: float = 0.95, *, sustained: bool = False) -> dict[str, int | None]:
        """Smallest budget where a strategy's mean balanced accuracy reaches `fraction` of the
        mean full-data balanced accuracy (None: not within the budgets).

        ``sustained=True`` asks for the smallest budget from which the mean stays at or above
        the target at every larger budget: on a flat, noisy learning curve a single lucky
        budget would otherwise count as reaching it."""
        target = self.target(fraction)
        out: dict[str, int | None] = {}
        for row in self.curve():  # sorted by (strategy, n_labels)
            s = row["strategy"]
            out.setdefault(s, None)
            if row["mean"] >= target:
                if out[s] is None:
                    out[s] = row["n_labels"]
            elif sustained:
                out[s] = None
        return out


def simulate(
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    *,
    strategies: Sequence[str],
    budgets: Sequence[int],
    seeds: Sequence[int],
    init_size: int = 20,
    step: int = 25,
    init: str = "random",
    coarse: tuple[int, int] | None = None,
    fit: ArrayFit = logistic_fit,
    embeddings: np.ndarray | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SimulationResult:
    """Run `ActiveLearner` with an oracle (the pool's labels) for every strategy and seed.

    Start from `init_size` labels -- ``init="random"`` (a seeded sample) or ``"kmeans"``
    (cold start: the question nearest each of `init_size` k-means centres, no model needed;
    its rows are named ``<strategy>@kmeans0``) -- then query `step` at a time, or
    ``coarse = (n, k)``: `k` at a time once `n` are labeled. At each budget record balanced
    accuracy and kappa on the evaluation set. `embeddings` (default: `x_pool`) feed
    kmeans/badge and the k-means first batch.
    """
    # Imported when called: curation.active imports this module to re-export its names.
    from curation.active import CHOICES, ActiveLearner

    budgets = sorted(set(int(b) for b in budgets))
    if not budgets or budgets[0] < 1:
        raise InputError("budgets must be positive integers")
    if budgets[-1] > len(y_pool):
        raise InputError(f"budget {budgets[-1]} exceeds the oracle pool of {len(y_pool)} labeled questions")
    if init not in ("random", "kmeans"):
        raise InputError(f"init {init!r} is not one of random, kmeans")
    for s in strategies:
        if s not in CHOICES:
            raise InputError(f"strategy {s!r} is not one of {', '.join(CHOICES)}")
    emb = x_pool if embeddings is None else embeddings
    ids = [f"{i:07d}" for i in range(len(y_pool))]
    index = {q: i for i, q in enumerate(ids)}
    result = SimulationResult()
    for seed in seeds:
        full = fit(x_pool, y_pool)
        result.full_data[seed] = metrics.balanced_accuracy(y_eval, (full(x_eval) >= 0.5).astype(int))
    total = len(strategies) * len(seeds)
    done = 0
    for strategy in strategies:
        for seed in seeds:
            first = _first_batch(init, ids, min(init_size, budgets[0]), emb, seed)
            holder: dict[str, Callable[[np.ndarray], np.ndarray]] = {}

            def fit_ids(sel: Sequence[str], y: np.ndarray, _h: dict[str, Any] = holder) -> Predictor:
                model = fit(x_pool[[index[q] for q in sel]], y)
                _h["model"] = model
                return lambda q: model(x_pool[[index[i] for i in q]])

            learner = ActiveLearner(ids, fit_ids, strategy=strategy, seed=seed,
                                    features=lambda q: emb[[index[i] for i in q]])
            learner.initialize({q: int(y_pool[index[q]]) for q in first})
            for b in budgets:
                while len(learner.labeled) < b:
                    k = coarse[1] if coarse and len(learner.labeled) >= coarse[0] else step
                    asked = learner.query(min(k, b - len(learner.labeled)))
                    if not asked:
                        break
                    learner.update({q: int(y_pool[index[q]]) for q in asked})
                pred = (holder["model"](x_eval) >= 0.5).astype(int)
                result.rows.append({
                    "strategy": strategy if init == "random" else f"{strategy}@{init}0", "seed": seed, "n_labels": b,
                    "n_labeled_actual": len(learner.labeled), "balanced_accuracy": metrics.balanced_accuracy(y_eval, pred),
                    "kappa": metrics.cohen_kappa(y_eval, pred),
                })
            done += 1
            if progress:
                progress("simulate", done, total)
    return result


def _first_batch(init: str, ids: list[str], n: int, emb: np.ndarray, seed: int) -> list[str]:
    """The first `n` labels: a seeded random sample, or the k-means cold start."""
    if init == "kmeans":
        from curation.active import query

        return query("kmeans", ids, n, embeddings=emb, seed=seed)
    return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))[:n]]
