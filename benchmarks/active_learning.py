"""Active learning on the bundled MedXpertQA labels: learning-curve area, labels to target, cold start.

For each seed the 1,700 labels are split stratified 80/20 (`stratified_split(y, 0.2, seed)`:
the 1,360 are the oracle pool, the 340 the evaluation set; nothing is tuned on them). Each
strategy starts from a first batch of 25 labels -- ``random`` (a seeded sample) or
``kmeans`` (cold start: k-means with 25 clusters over the pool's features, the question
nearest each centre: the typical question of each region, as TypiClust does, without a
model) -- then queries 25 at a time up to 400 labels and 200 at a time beyond, refitting
after every batch; balanced accuracy on the evaluation set is recorded at every budget.

Learner (a documented proxy: refitting the encoder ~40 times per run is out of reach on
CPU): `curation.simulate.logistic_fit`, class-balanced logistic regression (C = `--c`,
default 4 as the product's TF-IDF; the 10-seed run of session 6 used C = 1), on
``tfidf`` (default; the product's TF-IDF 1-2 grams fitted on the pool's text; kmeans,
badge and the cold start use a 64-d SVD of it) or ``minilm`` (frozen, mean-pooled
all-MiniLM-L6-v2, head 256 tokens).

Strategies: `curation.active`'s entropy, kmeans, badge, random, and ``auto`` (the product's
default: entropy below `AUTO_SWITCH` = 300 labels, badge from then on; its switch point was
read off this benchmark's own curves, so its figures here are in-sample).

Figures, per strategy (``<strategy>`` = random first batch, ``<strategy>@kmeans0`` =
k-means first batch):
* AULC: the area under balanced accuracy vs labels over budgets 25..400 (trapezoid,
  divided by the width: a mean balanced accuracy), mean over seeds with a 95 % t-interval,
  and the per-seed paired ratio to ``random``'s AULC (mean, 95 % t-interval);
* labels to reach 95 % and 100 % of the full-pool balanced accuracy, per seed (its own
  full-pool figure; median, quartiles, min, max, how many seeds reach it within the
  budgets), and on the mean curve over seeds (the previous run's figure, ``first`` and
  ``sustained``);
* the previous run (minilm features, 3 seeds, first batch 20: random reached the 95 %
  target at 200 of 1,360 labels) is copied into the JSON under ``previous``.

    python benchmarks/active_learning.py [--features tfidf|minilm] [--strategies entropy,kmeans,badge,random,auto] \
        [--cold-start random,badge] [--seeds 0-9] [--out-stem active_learning]

Prints the tables; writes benchmarks/results/<stem>.json, <stem>.csv and <stem>.png (the
learning curves of the random-first-batch runs).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation import active, metrics  # noqa: E402
from curation import model as M  # noqa: E402
from curation.schema import format_for_model  # noqa: E402

DATA = ROOT / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / ".cache"
AULC_RANGE = (25, 400)
PREVIOUS = {
    "source": "benchmarks/results/active_learning.json and active_learning_5seeds.json at commit 02359ed",
    "features": "minilm (frozen, head 256)", "init_size": 20, "step": 25,
    "3_seeds": {"seeds": [0, 1, 2], "full_pool_balanced_accuracy_mean": 0.7246,
                "labels_to_95pct_first": {"badge": 150, "entropy": 125, "kmeans": 125, "random": 200},
                "labels_to_95pct_sustained": {"badge": 150, "entropy": 125, "kmeans": 500, "random": 200}},
    "5_seeds": {"seeds": [0, 1, 2, 3, 4], "full_pool_balanced_accuracy_mean": 0.7375,
                "labels_to_95pct_first": {"badge": 175, "entropy": 400, "kmeans": 500, "random": 225},
                "labels_to_95pct_sustained": {"badge": 175, "entropy": 600, "kmeans": 500, "random": 275}},
}


# ---- pure helpers (tests/unit/test_benchmark_helpers.py) --------------------------------
def aulc(budgets: Sequence[int], values: Sequence[float], lo: int, hi: int) -> float:
    """Mean height of the curve (budgets, values) over [lo, hi]: trapezoid area / (hi - lo).
    Both ends must be budgets on the curve."""
    b = np.asarray(budgets, dtype=float)
    v = np.asarray(values, dtype=float)
    if lo not in budgets or hi not in budgets or hi <= lo:
        raise ValueError(f"the curve must include budgets {lo} and {hi}")
    keep = (b >= lo) & (b <= hi)
    order = np.argsort(b[keep])
    x, y = b[keep][order], v[keep][order]
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (hi - lo))


def first_reach(budgets: Sequence[int], values: Sequence[float], target: float, *, sustained: bool = False) -> int | None:
    """Smallest budget whose value is >= target (``sustained``: and every larger budget's
    too); None when none is."""
    hit: int | None = None
    for b, v in sorted(zip(budgets, values, strict=True)):
        if v >= target:
            hit = b if hit is None else hit
        elif sustained:
            hit = None
    return hit


def t_interval(values: Sequence[float]) -> dict[str, float]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "lo": float(v.mean() - half), "hi": float(v.mean() + half), "n": len(v)}


def spread(values: Sequence[int | None]) -> dict[str, Any]:
    """Median, quartiles, min and max of the seeds that reached the target; how many did."""
    got = np.asarray([v for v in values if v is not None], dtype=float)
    if got.size == 0:
        return {"reached": 0, "of": len(values)}
    q1, med, q3 = np.percentile(got, [25, 50, 75])
    return {"reached": int(got.size), "of": len(values), "median": float(med), "q1": float(q1), "q3": float(q3),
            "min": float(got.min()), "max": float(got.max())}


# ---- the simulation (curation.simulate.simulate) ---------------------------------------
def split_features(kind: str, texts: list[str], pool: np.ndarray, ev: np.ndarray, seed: int) -> tuple[Any, Any, np.ndarray]:
    from sklearn.decomposition import TruncatedSVD

    if kind == "minilm":
        path = CACHE / f"minilm_frozen_{len(texts)}.npy"
        if not path.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            np.save(path, M.frozen_embeddings("minilm", texts, max_length=256))
        e = np.load(path)
        return e[pool], e[ev], e[pool]
    vec = M.TfidfClassifier.make_vectorizer()
    xp = vec.fit_transform([texts[i] for i in pool])
    ep = TruncatedSVD(64, random_state=seed).fit_transform(xp)
    ep /= np.maximum(np.linalg.norm(ep, axis=1, keepdims=True), 1e-12)
    return xp, vec.transform([texts[i] for i in ev]), ep


def summarise(rows: list[dict[str, Any]], full: dict[int, float], budgets: Sequence[int]) -> dict[str, Any]:
    """AULC (mean, CI, paired ratio to random), labels to 95 % / 100 % per seed and on the mean curve."""
    curves: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for r in rows:
        curves.setdefault(r["strategy"], {}).setdefault(r["seed"], []).append((r["n_labels"], r["balanced_accuracy"]))
    area = {s: {seed: aulc([b for b, _ in c], [v for _, v in c], *AULC_RANGE) for seed, c in per.items()}
            for s, per in curves.items()}
    sim = active.SimulationResult(rows=rows, full_data=full)
    out: dict[str, Any] = {}
    for s, per in curves.items():
        seeds = sorted(per)
        row: dict[str, Any] = {"aulc": t_interval([area[s][k] for k in seeds])}
        if "random" in area:
            row["aulc_ratio_to_random"] = t_interval([area[s][k] / area["random"][k] for k in seeds])
            row["aulc_minus_random"] = t_interval([area[s][k] - area["random"][k] for k in seeds])
        for frac in (0.95, 1.0):
            for sus in (False, True):
                reach = [first_reach([b for b, _ in per[k]], [v for _, v in per[k]], frac * full[k], sustained=sus)
                         for k in seeds]
                key = f"labels_to_{round(frac * 100)}pct" + ("_sustained" if sus else "")
                row[key] = spread(reach) | {"per_seed": reach,
                                            "mean_curve": sim.labels_to_reach(frac, sustained=sus).get(s)}
        out[s] = row
    return out


def _fmt(ci: dict[str, float]) -> str:
    return f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"


def _reach(r: dict[str, Any], budgets: Sequence[int]) -> str:
    if not r["reached"]:
        return f"none of {r['of']} <= {budgets[-1]}"
    mc = r["mean_curve"] or f">{budgets[-1]}"
    return f"{r['median']:.0f} [{r['q1']:.0f}-{r['q3']:.0f}] {r['reached']}/{r['of']}  mean-curve {mc}"


def print_tables(summary: dict[str, Any], curve: list[dict[str, Any]], full: dict[int, float], budgets: Sequence[int],
                 features: str) -> None:
    mean_full = float(np.mean(list(full.values())))
    print(f"features={features}  seeds={len(full)}  full-pool balanced accuracy {mean_full:.3f} (seeds {min(full.values()):.3f}-{max(full.values()):.3f})")
    names = list(summary)
    cells = {(r["strategy"], r["n_labels"]): r for r in curve}
    print("mean balanced accuracy (± std over seeds)")
    print(f"{'labels':>7}" + "".join(f"{s:>20}" for s in names))
    for b in budgets:
        print(f"{b:>7}" + "".join(f"{cells[s, b]['mean']:>14.3f}±{cells[s, b]['std']:.3f}" for s in names))
    print(f"\n{'strategy':<18}{'AULC 25-400 [95% CI]':>26}{'ratio to random':>26}{'minus random':>28}")
    for s, r in summary.items():
        print(f"{s:<18}{_fmt(r['aulc']):>26}{_fmt(r['aulc_ratio_to_random']):>26}{_fmt(r['aulc_minus_random']):>28}")
    for key in ("labels_to_95pct", "labels_to_95pct_sustained", "labels_to_100pct", "labels_to_100pct_sustained"):
        print(f"\n{key}: median [quartiles] seeds-reached, and on the mean curve")
        for s, r in summary.items():
            print(f"  {s:<18}{_reach(r[key], budgets)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", default="tfidf", choices=["minilm", "tfidf"])
    ap.add_argument("--strategies", default="entropy,kmeans,badge,random,auto")
    ap.add_argument("--cold-start", default="random,badge",
                    help="strategies also run with a k-means first batch (cold start); '' for none")
    ap.add_argument("--budgets", default=",".join(str(b) for b in [*range(25, 401, 25), 600, 800, 1000, 1200]))
    ap.add_argument("--big-step", type=int, default=200, help="batch size beyond 400 labels")
    ap.add_argument("--c", type=float, default=4.0,
                    help="the learner's inverse regularisation (default: the product's TrainConfig.tfidf_c)")
    ap.add_argument("--seeds", default="0-9", help="a range a-b or a list 0,1,2")
    ap.add_argument("--out-stem", default="active_learning", help="file name stem under benchmarks/results/")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows_in = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [format_for_model(r["question"], r["options"]) for r in rows_in]
    y = M.encode_labels([r["label"] for r in rows_in])
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in args.seeds.split(",")]
    budgets = sorted(int(b) for b in args.budgets.split(","))
    strategies = args.strategies.split(",")
    cold = [s for s in args.cold_start.split(",") if s]
    rows: list[dict[str, Any]] = []
    full: dict[int, float] = {}
    fit = functools.partial(active.logistic_fit, c=args.c)
    for seed in seeds:
        pool, ev = M.stratified_split(y, 0.2, seed)
        xp, xe, ep = split_features(args.features, texts, pool, ev, seed)
        for init, names in (("random", strategies), ("kmeans", cold)):
            if names:
                res = active.simulate(xp, y[pool], xe, y[ev], strategies=names, budgets=budgets, seeds=[seed],
                                      init_size=25, step=25, init=init, coarse=(AULC_RANGE[1], args.big_step),
                                      fit=fit, embeddings=ep)
                rows += res.rows
                full[seed] = res.full_data[seed]
        print(f"[seed {seed}] done at {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    summary = summarise(rows, full, budgets)
    curve = active.SimulationResult(rows=rows, full_data=full).curve()
    print_tables(summary, curve, full, budgets, args.features)
    mean_full = float(np.mean(list(full.values())))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / args.out_stem
    stem.with_suffix(".json").write_text(json.dumps(metrics.finite({
        "features": args.features, "learner": "class-balanced logistic regression (curation.simulate.logistic_fit; proxy)", "c": args.c,
        "pool": "stratified 80 % of 1,700 per seed (1,360), evaluation the other 20 % (340)",
        "strategies": strategies, "cold_start_strategies": cold, "budgets": budgets, "seeds": seeds,
        "init_size": 25, "step": {"<= 400": 25, "> 400": args.big_step}, "aulc_range": list(AULC_RANGE),
        "ci": "t-interval over seeds (95 %); ratios and differences paired by seed (same split, same first batch)",
        "full_pool_balanced_accuracy": full, "full_pool_balanced_accuracy_mean": mean_full,
        "summary": summary, "curve": curve, "rows": rows, "previous": PREVIOUS,
        "elapsed_seconds": time.perf_counter() - t0,
    }), indent=2) + "\n", encoding="utf-8")
    from curation.services.learn import write_learning_curve

    write_learning_curve([c for c in curve if "@" not in c["strategy"]], stem, target=0.95 * mean_full)


if __name__ == "__main__":
    main()
