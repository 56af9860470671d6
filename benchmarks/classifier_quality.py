"""Classifier quality (#20): CV-chosen thresholds, class weighting, a stack; the label-noise ceiling.

Data: the 1,700 labels of `curation/data/medxpertqa_labeled_dev.jsonl` (76 % reasoning).
Input: `format_for_model` (stem, blank line, ``A. text`` option lines).

Models (all cheap; none fine-tuned here: `classifier_finetune.py` runs the fine-tuned
encoder on the same folds, one cached fold at a time, ~11 min per fold at head_tail 256 on
2 quiet cores. See also ``--product`` below):

* ``tfidf``: the product's TF-IDF word 1-2 grams (`TfidfClassifier.make_vectorizer`) +
  logistic regression, C = `TrainConfig.tfidf_c` (4); with ``balanced`` class weights it is
  `curation.classifier.train_tfidf` exactly;
* ``minilm``: FROZEN all-MiniLM-L6-v2 embeddings (`curation.model.frozen_embeddings`, the
  input cut to 512 tokens, keeping the head: the best encoder input of
  `classifier_signal.py`; cached under `benchmarks/.cache/classifier_signal/`) + logistic
  regression, C chosen per outer fold by 5-fold CV on AUROC over the training rows only;
* ``stack``: a logistic regression on the logits of tfidf and minilm, fitted on their
  inner 5-fold out-of-fold probabilities (training rows only).

Each with class weights ``balanced`` or ``unweighted``, and three decision thresholds:
``0.5``; ``cv_kappa`` / ``cv_bacc``: the threshold maximising Cohen's kappa / balanced
accuracy (`curation.calibration.choose_threshold`) on the model's inner 5-fold out-of-fold
probabilities over the training rows. Nothing is tuned on the rows being scored.

Evaluations: (a) 5-fold stratified CV (seed 0) over the 1,700 labels, predictions pooled
over folds (each row scored by the fold that held it out, at that fold's threshold);
(b) the held-out 20 % split the benchmark has always used (`stratified_split(y, 0.2, 0)`:
train on 1,360, score 340). 95 % CIs: percentile bootstrap over rows (2,000 resamples,
`curation.metrics.bootstrap_ci`); differences vs tfidf are paired (same resampled rows).

Label-noise ceiling (in the JSON under ``ceiling``): (1) near-duplicate questions (TF-IDF
cosine of the full input, and MiniLM cosine) with different labels; (2) two models trained
on disjoint halves of each CV training fold, scored on the held-out fold: their agreement
with each other vs with the labels.

    python benchmarks/classifier_quality.py [--folds 5] [--seed 0] [--boot 2000]
    python benchmarks/classifier_quality.py --product [--models tfidf,minilm] [--epochs 3] \
        [--max-length 256] [--truncation head] [--train-rows N]

Writes `benchmarks/results/classifier_quality.json`. ``--product`` instead trains with
`curation train`'s own code (`curation.model.train`) on the 1,360 and scores the 340
(the benchmark's old behaviour), writing `classifier_quality_product.json`; with
``--train-rows N --epochs 1`` it times one epoch on a subset.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import classifier_signal as sig  # noqa: E402
from curation import metrics  # noqa: E402
from curation import model as M  # noqa: E402
from curation.schema import format_for_model  # noqa: E402

DATA = ROOT / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"
RESULTS = ROOT / "benchmarks" / "results"
EMB_INPUT = "head_512"
WEIGHTS: dict[str, str | None] = {"balanced": "balanced", "unweighted": None}
KINDS = ("tfidf", "minilm", "stack")
RULES = ("0.5", "cv_kappa", "cv_bacc")
BASELINE = "tfidf/balanced/cv_kappa"
# the held-out figures before this benchmark (commit 817ade9, `curation train` defaults:
# threshold and Platt calibration on one 15 % validation split of the 1,360)
PREVIOUS_HELD_OUT = {
    "tfidf": {"balanced_accuracy": 0.712, "kappa": 0.434},
    "minilm_finetuned_head_256_3_epochs": {"balanced_accuracy": 0.729, "kappa": 0.446, "train_seconds": 445},
}
Fit = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (train rows, test rows) -> p(reasoning)


# ---- pure helpers (tests/unit/test_benchmark_helpers.py) --------------------------------
def flip_rate(disagreement: float) -> float:
    """Symmetric label-flip rate e implied by the disagreement d of pairs that share their
    true class: d = 2 e (1 - e), so e = (1 - sqrt(1 - 2 d)) / 2 (d >= 0.5: no information)."""
    if not 0 <= disagreement < 0.5:
        return math.nan
    return (1 - math.sqrt(1 - 2 * disagreement)) / 2


def noise_ceiling(e: float, prevalence: float) -> dict[str, float]:
    """What a model that predicts the true class perfectly scores against labels flipped at
    symmetric rate `e`, with `prevalence` the observed share of label 1."""
    pi = (prevalence - e) / (1 - 2 * e) if 0 <= e < 0.5 else math.nan  # true share of class 1
    if not 0 <= pi <= 1:  # (also NaN) no true share fits: flips at rate e cannot give this prevalence
        return {"accuracy": math.nan, "balanced_accuracy": math.nan, "kappa": math.nan}
    po = 1 - e
    pe = pi * prevalence + (1 - pi) * (1 - prevalence)
    bacc = (pi * (1 - e) / prevalence + (1 - pi) * (1 - e) / (1 - prevalence)) / 2
    return {"accuracy": po, "balanced_accuracy": bacc, "kappa": (po - pe) / (1 - pe)}


def disattenuated(kappa_with_labels: float, kappa_between_models: float) -> float:
    """Spearman's correction: the agreement with the labels of the signal two independently
    trained models share (kappa taken as a correlation): k_my / sqrt(k_mm)."""
    if kappa_between_models <= 0:
        return math.nan
    return kappa_with_labels / math.sqrt(kappa_between_models)


def near_duplicate_pairs(sim: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    """Pairs i < j with similarity > threshold: count, how many carry different labels, the
    rate with a Wilson 95 % interval, and the rate expected for random pairs."""
    iu = np.triu_indices(len(y), 1)
    hit = sim[iu] > threshold
    a, b = iu[0][hit], iu[1][hit]
    n, k = int(hit.sum()), int(np.sum(y[a] != y[b]))
    p = float(np.mean(y))
    return {"threshold": threshold, "pairs": n, "different_labels": k, "rate": k / n if n else None,
            "rate_ci95": list(metrics.wilson_ci(k, n)) if n else None,
            "random_pair_rate": 2 * p * (1 - p), "questions": int(len(set(a.tolist()) | set(b.tolist())))}


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


# ---- learners ----------------------------------------------------------------------------
def tfidf_fit(texts: list[str], y: np.ndarray, weight: str | None, seed: int) -> Fit:
    from sklearn.linear_model import LogisticRegression

    cfg = M.TrainConfig(base="tfidf", seed=seed)

    def fit(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        vec = M.TfidfClassifier.make_vectorizer(cfg.tfidf_max_features)
        x = vec.fit_transform([texts[i] for i in tr])
        lr = LogisticRegression(C=cfg.tfidf_c, class_weight=weight, max_iter=2000, random_state=seed).fit(x, y[tr])
        return np.asarray(lr.predict_proba(vec.transform([texts[i] for i in te]))[:, 1])
    return fit


def linear_fit(x: np.ndarray, y: np.ndarray, weight: str | None, seed: int, c: float = 1.0) -> Fit:
    from sklearn.linear_model import LogisticRegression

    def fit(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        lr = LogisticRegression(C=c, class_weight=weight, max_iter=3000, random_state=seed).fit(x[tr], y[tr])
        return np.asarray(lr.predict_proba(x[te])[:, 1])
    return fit


def oof(fit: Fit, y: np.ndarray, idx: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold probabilities over the rows `idx` (inner stratified CV)."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(idx))
    for a, b in StratifiedKFold(folds, shuffle=True, random_state=seed + 1).split(idx, y[idx]):
        out[b] = fit(idx[a], idx[b])
    return out


def block(data: dict[str, Any], y: np.ndarray, tr: np.ndarray, te: np.ndarray, *, folds: int, seed: int,
          weights: tuple[str, ...] = tuple(WEIGHTS)) -> dict[str, dict[str, Any]]:
    """Train every model on `tr`, score `te`: per model/weight the scores on `te` and the
    thresholds chosen on the inner out-of-fold scores over `tr`."""
    c = sig.choose_c(data["emb"], y, tr, seed)
    out: dict[str, dict[str, Any]] = {}
    for w in weights:
        inner: dict[str, np.ndarray] = {}
        fits = {"tfidf": tfidf_fit(data["texts"], y, WEIGHTS[w], seed),
                "minilm": linear_fit(data["emb"], y, WEIGHTS[w], seed, c)}
        for kind, fit in fits.items():
            inner[kind] = oof(fit, y, tr, folds, seed)
            out[f"{kind}/{w}"] = {"p": fit(tr, te), "inner": inner[kind]}
        z = np.vstack([np.column_stack([logit(inner[k]) for k in fits]),
                       np.column_stack([logit(out[f"{k}/{w}"]["p"]) for k in fits])])
        zy = np.concatenate([y[tr], y[te]])
        stack = linear_fit(z, zy, WEIGHTS[w], seed)
        pos = np.arange(len(tr))
        out[f"stack/{w}"] = {"p": stack(pos, np.arange(len(tr), len(z))), "inner": oof(stack, zy, pos, folds, seed)}
    for r in out.values():
        r["t"] = {"0.5": 0.5, "cv_kappa": M.choose_threshold(y[tr], r["inner"], "kappa"),
                  "cv_bacc": M.choose_threshold(y[tr], r["inner"], "balanced_accuracy")}
    out["_c"] = {"c": c}
    return out


# ---- metrics with bootstrap CIs ------------------------------------------------------------
def auroc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan


def scored(y: np.ndarray, p: np.ndarray, pred: np.ndarray, n_boot: int) -> dict[str, Any]:
    """Balanced accuracy, kappa (of `pred`) and AUROC (of `p`), each with a bootstrap 95 % CI."""
    out: dict[str, Any] = {}
    for name, fn, v in (("balanced_accuracy", metrics.balanced_accuracy, pred), ("kappa", metrics.cohen_kappa, pred),
                        ("auroc", auroc, p)):
        out[name] = {"value": fn(y, v), "ci95": list(metrics.bootstrap_ci(fn, y, v, n_boot=n_boot))}
    return out


def paired_diff(y: np.ndarray, a: np.ndarray, b: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], float],
                n_boot: int) -> dict[str, Any]:
    """fn(y, a) - fn(y, b) with a paired bootstrap 95 % CI (the same resampled rows)."""
    idx = np.arange(len(y))

    def stat(i: np.ndarray, _: np.ndarray) -> float:
        return fn(y[i], a[i]) - fn(y[i], b[i])
    return {"value": stat(idx, idx), "ci95": list(metrics.bootstrap_ci(stat, idx, idx, n_boot=n_boot))}


def evaluate_all(y: np.ndarray, probs: dict[str, np.ndarray], thr: dict[str, dict[str, np.ndarray]],
                 n_boot: int) -> dict[str, Any]:
    """Every model/weight/threshold rule: metrics and paired differences vs `BASELINE`."""
    res: dict[str, Any] = {}
    preds: dict[str, np.ndarray] = {}
    for mw, p in probs.items():
        for rule in RULES:
            name = f"{mw}/{rule}"
            preds[name] = (p >= thr[mw][rule]).astype(int)
            res[name] = scored(y, p, preds[name], n_boot)
    base_name = BASELINE.rsplit("/", 1)[0]
    for name, r in res.items():
        mw = name.rsplit("/", 1)[0]
        r["vs_" + BASELINE] = {
            "balanced_accuracy": paired_diff(y, preds[name], preds[BASELINE], metrics.balanced_accuracy, n_boot),
            "kappa": paired_diff(y, preds[name], preds[BASELINE], metrics.cohen_kappa, n_boot),
            "auroc": paired_diff(y, probs[mw], probs[base_name], auroc, n_boot)}
    return res


# ---- the two evaluations ---------------------------------------------------------------------
def cross_validate(data: dict[str, Any], y: np.ndarray, folds: int, seed: int, n_boot: int) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    probs: dict[str, np.ndarray] = {}
    thr: dict[str, dict[str, np.ndarray]] = {}
    per_fold: dict[str, list[dict[str, float]]] = {}
    cs = []
    for f, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)):
        b = block(data, y, tr, te, folds=folds, seed=seed)
        cs.append(b.pop("_c")["c"])
        for mw, r in b.items():
            probs.setdefault(mw, np.zeros(len(y)))[te] = r["p"]
            for rule, t in r["t"].items():
                thr.setdefault(mw, {}).setdefault(rule, np.zeros(len(y)))[te] = t
                pred = (r["p"] >= t).astype(int)
                per_fold.setdefault(f"{mw}/{rule}", []).append(
                    {"balanced_accuracy": metrics.balanced_accuracy(y[te], pred), "kappa": metrics.cohen_kappa(y[te], pred),
                     "auroc": auroc(y[te], r["p"]), "threshold": t})
        print(f"[cv] fold {f + 1}/{folds}", file=sys.stderr, flush=True)
    res = evaluate_all(y, probs, thr, n_boot)
    for name, r in res.items():
        r["per_fold"] = per_fold[name]
        r["fold_mean_t95"] = {k: sig.t_interval([m[k] for m in per_fold[name]]) for k in ("balanced_accuracy", "kappa", "auroc")}
    return {"models": res, "minilm_c_per_fold": cs, "oof_probs": probs, "oof_thresholds": thr}


def held_out(data: dict[str, Any], y: np.ndarray, folds: int, seed: int, n_boot: int) -> dict[str, Any]:
    tr, te = M.stratified_split(y, 0.2, seed)
    b = block(data, y, tr, te, folds=folds, seed=seed)
    c = b.pop("_c")["c"]
    res = evaluate_all(y[te], {k: r["p"] for k, r in b.items()},
                       {k: {rule: np.full(len(te), t) for rule, t in r["t"].items()} for k, r in b.items()}, n_boot)
    for k, r in b.items():
        for rule, t in r["t"].items():
            res[f"{k}/{rule}"]["threshold"] = t
    return {"n_train": len(tr), "n_test": len(te), "minilm_c": c, "models": res}


# ---- the label-noise ceiling -------------------------------------------------------------------
def near_duplicates(data: dict[str, Any], y: np.ndarray) -> dict[str, Any]:
    vec = M.TfidfClassifier.make_vectorizer()
    x = vec.fit_transform(data["texts"])
    spaces = {"tfidf_full_input": (np.asarray((x @ x.T).todense()), (0.9, 0.7, 0.5)),
              "minilm_head_512": (data["emb"] @ data["emb"].T, (0.9, 0.85, 0.8))}
    out: dict[str, Any] = {}
    for name, (sim, thresholds) in spaces.items():
        np.fill_diagonal(sim, 0.0)
        rows = []
        for t in thresholds:
            r = near_duplicate_pairs(sim, y, t)
            if r["rate"] is not None:
                e = flip_rate(r["rate"])
                r["implied_flip_rate"] = e
                r["implied_ceiling"] = noise_ceiling(e, float(np.mean(y)))
                # the rate's Wilson bounds, carried through: high disagreement -> low ceiling
                r["implied_ceiling_ci95"] = {k: [noise_ceiling(flip_rate(r["rate_ci95"][1]), float(np.mean(y)))[k],
                                                 noise_ceiling(flip_rate(r["rate_ci95"][0]), float(np.mean(y)))[k]]
                                             for k in ("balanced_accuracy", "kappa")}
            rows.append(r)
        out[name] = rows
    return out


def disjoint_halves(data: dict[str, Any], y: np.ndarray, folds: int, seed: int, n_boot: int) -> dict[str, Any]:
    """In each outer CV fold, models A and B trained on disjoint stratified halves of the
    training rows (balanced weights, cv_kappa threshold) score the held-out fold."""
    from sklearn.model_selection import StratifiedKFold

    pred = {k: np.zeros((2, len(y)), dtype=int) for k in KINDS}
    for f, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)):
        h1, h2 = M.stratified_split(y[tr], 0.5, seed + f)
        for side, half in enumerate((tr[h1], tr[h2])):
            b = block(data, y, half, te, folds=folds, seed=seed, weights=("balanced",))
            for k in KINDS:
                r = b[f"{k}/balanced"]
                pred[k][side, te] = (r["p"] >= r["t"]["cv_kappa"]).astype(int)
        print(f"[halves] fold {f + 1}/{folds}", file=sys.stderr, flush=True)
    out: dict[str, Any] = {}
    for k, (pa, pb) in pred.items():
        kab = metrics.cohen_kappa(pa, pb)
        kay, kby = metrics.cohen_kappa(y, pa), metrics.cohen_kappa(y, pb)
        out[k] = {"kappa_A_B": {"value": kab, "ci95": list(metrics.bootstrap_ci(metrics.cohen_kappa, pa, pb, n_boot=n_boot))},
                  "kappa_A_labels": kay, "kappa_B_labels": kby,
                  "balanced_accuracy_A_labels": metrics.balanced_accuracy(y, pa),
                  "balanced_accuracy_B_labels": metrics.balanced_accuracy(y, pb),
                  "agreement_A_B": float(np.mean(pa == pb)),
                  "disattenuated_kappa": disattenuated((kay + kby) / 2, kab)}
    return out


# ---- printing, main ------------------------------------------------------------------------------
def _ci(r: dict[str, Any]) -> str:
    lo, hi = r["ci95"]
    return f"{r['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def print_table(title: str, models: dict[str, Any]) -> None:
    print(f"\n{title}")
    print(f"{'model/weights/threshold':<32}{'balanced acc':>24}{'kappa':>24}{'AUROC':>24}{'kappa - ' + BASELINE:>40}")
    for name, r in models.items():
        d = r["vs_" + BASELINE]["kappa"]
        print(f"{name:<32}{_ci(r['balanced_accuracy']):>24}{_ci(r['kappa']):>24}{_ci(r['auroc']):>24}{_ci(d):>40}")


def print_ceiling(c: dict[str, Any], best: str, best_cv: dict[str, Any]) -> None:
    print("\nnear-duplicate pairs with different labels (random pairs: "
          f"{c['near_duplicates']['tfidf_full_input'][0]['random_pair_rate']:.3f})")
    for space, rows in c["near_duplicates"].items():
        for r in rows:
            rate = "-" if r["rate"] is None else f"{r['rate']:.3f} [{r['rate_ci95'][0]:.3f}, {r['rate_ci95'][1]:.3f}]"
            ceil = r.get("implied_ceiling", {})
            extra = f"  => flip {r['implied_flip_rate']:.3f}, ceiling bal.acc {ceil['balanced_accuracy']:.3f} kappa {ceil['kappa']:.3f}" if ceil else ""
            print(f"  {space:<18} cos > {r['threshold']:<5} pairs {r['pairs']:>4}  differ {r['different_labels']:>3}  rate {rate}{extra}")
    print("\ndisjoint halves (A, B: each trained on half of each CV training fold; scored on the held-out fold)")
    print(f"{'model':<8}{'kappa(A,B)':>26}{'kappa(A,y)':>12}{'kappa(B,y)':>12}{'disattenuated':>15}")
    for k, r in c["disjoint_halves"].items():
        print(f"{k:<8}{_ci(r['kappa_A_B']):>26}{r['kappa_A_labels']:>12.3f}{r['kappa_B_labels']:>12.3f}{r['disattenuated_kappa']:>15.3f}")
    print(f"\nbest by CV kappa: {best}: balanced acc {_ci(best_cv['balanced_accuracy'])}, kappa {_ci(best_cv['kappa'])}")


def product_run(args: argparse.Namespace, texts: list[str], labels: list[str], y: np.ndarray) -> None:
    """`curation train`'s own training on the 1,360, scored on the 340 (`--product`)."""
    train_idx, test_idx = M.stratified_split(y, 0.2, args.seed)
    if args.train_rows:
        train_idx = np.sort(np.random.default_rng(args.seed).permutation(train_idx)[: args.train_rows])
    results: dict[str, Any] = {}
    for name in args.models.split(","):
        cfg = M.TrainConfig(base=name, epochs=args.epochs, max_length=args.max_length, truncation=args.truncation,
                            seed=args.seed, device=args.device)
        steps: list[tuple[float, int]] = []  # (time, step) of every optimiser step

        def tick(stage: str, done: int, total: int, _s: list[tuple[float, int]] = steps) -> None:
            if stage.startswith("train epoch"):
                _s.append((time.perf_counter(), done))
        t0 = time.perf_counter()
        clf = M.train([texts[i] for i in train_idx], [labels[i] for i in train_idx], cfg, progress=tick)
        train_s = time.perf_counter() - t0
        m: dict[str, Any] = dict(M.evaluate(clf, [texts[i] for i in test_idx], [labels[i] for i in test_idx]))
        if name == "minilm" and not args.train_rows:
            clf.save(ROOT / "benchmarks" / ".cache" / "minilm_model")  # classify_speed.py reuses it
        m |= {"train_seconds": train_s, "threshold": clf.threshold,
              "training": clf.info.metrics["training"], "n_train_rows": len(train_idx),
              "n_fit_rows": clf.info.metrics["n_train"]}
        if len(steps) > 1:  # seconds per optimiser step, first to last step (model loading excluded)
            per_step = (steps[-1][0] - steps[0][0]) / (steps[-1][1] - steps[0][1])
            full_fit_rows = len(y) - len(test_idx) - round(cfg.val_fraction * (len(y) - len(test_idx)))
            m |= {"seconds_per_step": per_step, "batch_size": cfg.batch_size,
                  "extrapolated_epoch_seconds_on_full_80pct": per_step * math.ceil(full_fit_rows / cfg.batch_size),
                  "extrapolation": f"seconds_per_step x ceil({full_fit_rows} fit rows / batch {cfg.batch_size}); "
                                   "excludes the validation passes"}
        results[name] = m
        print(f"[{name}] bal.acc {m['balanced_accuracy']:.3f} kappa {m['kappa']:.3f} in {m['train_seconds']:.0f} s", flush=True)
    out = {"data": str(DATA.relative_to(ROOT)), "seed": args.seed, "n_test": len(test_idx), "epochs": args.epochs,
           "max_length": args.max_length, "truncation": args.truncation, "device": M.select_device(args.device).label,
           "models": results}
    name = "classifier_quality_product" + (f"_{args.train_rows}rows" if args.train_rows else "") + ".json"
    (RESULTS / name).write_text(json.dumps(metrics.finite(out), indent=2, default=str) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--product", action="store_true", help="train with curation train's code on the 80 %% split")
    ap.add_argument("--models", default="tfidf,minilm")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--truncation", default="head")
    ap.add_argument("--train-rows", type=int, default=0, help="--product: train on a random subset of this size")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn 1.8's LogisticRegressionCV notices
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [format_for_model(r["question"], r["options"]) for r in rows]
    labels = [r["label"] for r in rows]
    y = M.encode_labels(labels)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.product:
        product_run(args, texts, labels, y)
        return
    t0 = time.perf_counter()
    emb, _ = sig.embeddings(EMB_INPUT, texts, args.device)
    data = {"texts": texts, "emb": emb}
    cv = cross_validate(data, y, args.folds, args.seed, args.boot)
    ho = held_out(data, y, args.folds, args.seed, args.boot)
    print_table(f"{args.folds}-fold CV on {len(y)} labels (pooled out-of-fold; bootstrap 95 % CI)", cv["models"])
    print_table(f"held-out 20 % ({ho['n_test']} questions; trained on {ho['n_train']})", ho["models"])
    best = max(cv["models"], key=lambda k: cv["models"][k]["kappa"]["value"])
    ceil = {"near_duplicates": near_duplicates(data, y), "disjoint_halves": disjoint_halves(data, y, args.folds, args.seed, args.boot)}
    print_ceiling(ceil, best, cv["models"][best])
    out = {
        "data": str(DATA.relative_to(ROOT)), "n": len(y), "n_reasoning": int(y.sum()), "folds": args.folds, "seed": args.seed,
        "bootstrap_resamples": args.boot, "minilm": f"frozen all-MiniLM-L6-v2, {EMB_INPUT} (not fine-tuned) + logistic regression",
        "thresholds": {"0.5": "fixed", "cv_kappa": "max kappa on inner 5-fold OOF of the training rows",
                       "cv_bacc": "max balanced accuracy on inner 5-fold OOF of the training rows"},
        "ci": "percentile bootstrap over rows (curation.metrics.bootstrap_ci); vs_*: paired bootstrap of the difference",
        "baseline": BASELINE, "best_by_cv_kappa": best,
        "cv": {k: v for k, v in cv.items() if not k.startswith("oof")}, "held_out": ho, "ceiling": ceil,
        "previous_held_out": PREVIOUS_HELD_OUT, "seconds": time.perf_counter() - t0,
    }
    (RESULTS / "classifier_quality.json").write_text(json.dumps(metrics.finite(out), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
