"""Fine-tuned encoder quality (#20): `curation train`'s own fine-tuning, 5-fold CV + held-out 20 %.

`classifier_quality.py` measures the cheap models (TF-IDF, frozen MiniLM, their stack) with
inner-CV thresholds. This script adds what it could not afford in one run: the encoder
FINE-TUNED with the product's code (`curation.model.train`, the configuration given on the
command line), on the same 5 stratified folds (seed 0) and the same held-out 20 %
(`stratified_split(y, 0.2, 0)`), compared pairwise with the TF-IDF baseline on the same rows.

Per split (fold k, or ``heldout``) the fine-tune is trained once and cached under
`benchmarks/.cache/classifier_finetune/<config>/<split>.npz` (test and validation logits,
threshold, calibration, timing), so an interrupted run resumes where it stopped and the
report (``--report``) costs seconds. Three models are scored on each split's test rows:

* ``finetuned``: the fine-tuned encoder at its own threshold (Platt calibration and a
  kappa-maximising threshold on its 15 % validation split: `curation train` exactly);
* ``tfidf``: TF-IDF + logistic regression (balanced weights, C = 4) on all training rows, the
  threshold chosen by inner 5-fold CV on kappa (`classifier_quality.py`'s best TF-IDF);
* ``stack``: a logistic regression on [finetuned logit, tfidf logit], with the TF-IDF refit
  on the fine-tune's fit rows only, the stack and its kappa threshold fitted on the
  fine-tune's validation rows (neither model trained on them);
* ``mean``: the average of the fine-tune's calibrated probability and that TF-IDF's, the
  threshold chosen on the same validation rows (nothing else fitted).
Nothing sees the test rows.

Metrics: balanced accuracy, Cohen's kappa, AUROC on the pooled out-of-fold predictions with
percentile-bootstrap 95 % CIs, paired bootstrap CIs of the differences vs tfidf, per-fold
t-intervals; train seconds per epoch (the CPU's dtype as `--device auto` picks it).

    python benchmarks/classifier_finetune.py [--base minilm] [--truncation head_tail] \
        [--max-length 256] [--epochs 3] [--splits 0,1,2,3,4,heldout] [--report]

Writes `benchmarks/results/classifier_finetune_<config>.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import classifier_quality as cq  # noqa: E402
from benchmarks import classifier_signal as sig  # noqa: E402
from curation import metrics  # noqa: E402
from curation import model as M  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "classifier_finetune"
FOLDS = 5


def splits(y: np.ndarray, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The CV folds of `classifier_quality.cross_validate` and its held-out 20 %."""
    from sklearn.model_selection import StratifiedKFold

    out = {str(f): (tr, te) for f, (tr, te) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(y, y))}
    out["heldout"] = M.stratified_split(y, 0.2, seed)
    return out


def config_name(a: argparse.Namespace) -> str:
    return f"{a.base}_{a.truncation}_{a.max_length}_{a.epochs}ep_seed{a.seed}"


def train_split(a: argparse.Namespace, texts: list[str], labels: list[str], tr: np.ndarray, te: np.ndarray,
                path: Path) -> None:
    """Fine-tune on `tr` with `curation train`'s code; cache test/validation logits and timing."""
    cfg = M.TrainConfig(base=a.base, epochs=a.epochs, max_length=a.max_length, truncation=a.truncation,
                        seed=a.seed, device=a.device)
    epoch_start: dict[str, float] = {}

    def tick(stage: str, done: int, total: int) -> None:
        if stage.startswith("train epoch"):
            epoch_start.setdefault(stage, time.perf_counter())
    t0 = time.perf_counter()
    clf = M.train([texts[i] for i in tr], [labels[i] for i in tr], cfg, progress=tick)
    train_s = time.perf_counter() - t0
    starts = sorted(epoch_start.values()) + [time.perf_counter()]
    val = tr[np.asarray(clf.fit_rows["validation"], dtype=int)]
    fit = tr[np.asarray(clf.fit_rows["train"], dtype=int)]
    z_te = clf.logits([texts[i] for i in te])
    z_va = clf.logits([texts[i] for i in val])
    meta = {"train_seconds": train_s, "epoch_seconds": list(np.diff(starts)), "threshold": clf.info.threshold,
            "calibration": clf.info.calibration, "device": clf.info.metrics["device"],
            "training": clf.info.metrics["training"], "n_fit": len(fit), "n_val": len(val)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, te=te, z_te=z_te, val=val, z_va=z_va, fit=fit, meta=json.dumps(meta, default=str))
    tmp.replace(path)
    print(f"[{path.stem}] {train_s:.0f} s, epochs {[round(s) for s in meta['epoch_seconds']]} s, "
          f"threshold {clf.info.threshold:.3f}", flush=True)


def split_scores(texts: list[str], y: np.ndarray, tr: np.ndarray, c: Any, seed: int) -> dict[str, dict[str, Any]]:
    """Test-row probabilities and thresholds of finetuned, tfidf and stack on one split."""
    te, val, fit = c["te"], c["val"], c["fit"]
    meta = json.loads(str(c["meta"]))
    p_ft = M.Calibrator.from_dict(meta["calibration"])(c["z_te"])
    tf = cq.tfidf_fit(texts, y, "balanced", seed)
    t_tf = M.choose_threshold(y[tr], cq.oof(tf, y, tr, FOLDS, seed), "kappa")
    p_tf = tf(tr, te)
    # stack: TF-IDF on the fine-tune's fit rows; stack + threshold on its validation rows
    tf_fit_va, tf_fit_te = tf(fit, val), tf(fit, te)
    zs_va = np.column_stack([c["z_va"], cq.logit(tf_fit_va)])
    zs_te = np.column_stack([c["z_te"], cq.logit(tf_fit_te)])
    stack = cq.linear_fit(np.vstack([zs_va, zs_te]), np.concatenate([y[val], y[te]]), None, seed)
    pos_va, pos_te = np.arange(len(val)), np.arange(len(val), len(val) + len(te))
    p_st, p_st_va = stack(pos_va, pos_te), stack(pos_va, pos_va)
    t_st = M.choose_threshold(y[val], p_st_va, "kappa")
    # mean: the two probabilities averaged (no weights to fit), the threshold on the validation rows
    cal = M.Calibrator.from_dict(meta["calibration"])
    p_mean_va, p_mean = (cal(c["z_va"]) + tf_fit_va) / 2, (p_ft + tf_fit_te) / 2
    t_mean = M.choose_threshold(y[val], p_mean_va, "kappa")
    return {"finetuned": {"p": p_ft, "t": float(meta["threshold"])}, "tfidf": {"p": p_tf, "t": t_tf},
            "stack": {"p": p_st, "t": t_st}, "mean": {"p": p_mean, "t": t_mean}, "_meta": meta}


def summarize(y: np.ndarray, probs: dict[str, np.ndarray], preds: dict[str, np.ndarray], n_boot: int) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for name in probs:
        r = cq.scored(y, probs[name], preds[name], n_boot)
        if name != "tfidf":
            r["vs_tfidf"] = {
                "balanced_accuracy": cq.paired_diff(y, preds[name], preds["tfidf"], metrics.balanced_accuracy, n_boot),
                "kappa": cq.paired_diff(y, preds[name], preds["tfidf"], metrics.cohen_kappa, n_boot),
                "auroc": cq.paired_diff(y, probs[name], probs["tfidf"], cq.auroc, n_boot)}
        res[name] = r
    return res


def report(a: argparse.Namespace, texts: list[str], y: np.ndarray, sp: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    folder = CACHE / config_name(a)
    out: dict[str, Any] = {"config": vars(a) | {"name": config_name(a)}, "n": len(y)}
    cv_p: dict[str, np.ndarray] = {}
    cv_pred: dict[str, np.ndarray] = {}
    per_fold: dict[str, list[dict[str, float]]] = {}
    metas = {}
    done = [f for f in map(str, range(FOLDS)) if (folder / f"{f}.npz").exists()]
    for f in done + (["heldout"] if (folder / "heldout.npz").exists() else []):
        tr, te = sp[f]
        s = split_scores(texts, y, tr, np.load(folder / f"{f}.npz"), a.seed)
        metas[f] = s.pop("_meta")
        if f == "heldout":
            preds = {k: (v["p"] >= v["t"]).astype(int) for k, v in s.items()}
            out["held_out"] = {"n_test": len(te), "models": summarize(y[te], {k: v["p"] for k, v in s.items()}, preds, a.boot),
                               "thresholds": {k: v["t"] for k, v in s.items()}}
            continue
        for k, v in s.items():
            pred = (v["p"] >= v["t"]).astype(int)
            cv_p.setdefault(k, np.full(len(y), np.nan))[te] = v["p"]
            cv_pred.setdefault(k, np.zeros(len(y), dtype=int))[te] = pred
            per_fold.setdefault(k, []).append({"balanced_accuracy": metrics.balanced_accuracy(y[te], pred),
                                               "kappa": metrics.cohen_kappa(y[te], pred),
                                               "auroc": cq.auroc(y[te], v["p"]), "threshold": v["t"]})
    if done:
        rows = np.concatenate([sp[f][1] for f in done])
        res = summarize(y[rows], {k: p[rows] for k, p in cv_p.items()}, {k: p[rows] for k, p in cv_pred.items()}, a.boot)
        for k, r in res.items():
            r["per_fold"] = per_fold[k]
            r["fold_mean_t95"] = {m: sig.t_interval([f[m] for f in per_fold[k]]) for m in ("balanced_accuracy", "kappa", "auroc")}
        out["cv"] = {"folds_done": done, "n_rows": len(rows), "models": res}
    out["timing"] = {f: {k: m[k] for k in ("train_seconds", "epoch_seconds", "device", "n_fit", "n_val")} | {"best_epoch": m["training"]["best_epoch"]}
                     for f, m in metas.items()}
    return out


def print_report(out: dict[str, Any]) -> None:
    for title, key in (("5-fold CV (pooled out-of-fold)", "cv"), ("held-out 20 %", "held_out")):
        if key not in out:
            continue
        print(f"\n{out['config']['name']}: {title}")
        print(f"{'model':<10} {'bal. acc [95 % CI]':<24} {'kappa [95 % CI]':<24} {'AUROC':<7} {'kappa - tfidf [95 % CI]'}")
        for name, r in out[key]["models"].items():
            b, k, u = r["balanced_accuracy"], r["kappa"], r["auroc"]
            d = r.get("vs_tfidf", {}).get("kappa")
            ds = f"{d['value']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else "-"
            print(f"{name:<10} {b['value']:.3f} [{b['ci95'][0]:.3f}, {b['ci95'][1]:.3f}]    "
                  f"{k['value']:.3f} [{k['ci95'][0]:.3f}, {k['ci95'][1]:.3f}]    {u['value']:.3f}   {ds}")
    for f, t in out.get("timing", {}).items():
        print(f"[{f}] {t['device']}: {t['train_seconds']:.0f} s, epochs {[round(s) for s in t['epoch_seconds']]} s "
              f"on {t['n_fit']} rows, best epoch {t['best_epoch']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="minilm")
    ap.add_argument("--truncation", default="head_tail")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--splits", default="0,1,2,3,4,heldout", help="which splits to train (cached ones are skipped)")
    ap.add_argument("--report", action="store_true", help="only report what is cached")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    rows = [json.loads(line) for line in cq.DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [cq.format_for_model(r["question"], r["options"]) for r in rows]
    labels = [r["label"] for r in rows]
    y = M.encode_labels(labels)
    sp = splits(y, a.seed)
    if not a.report:
        for s in a.splits.split(","):
            path = CACHE / config_name(a) / f"{s}.npz"
            if not path.exists():
                train_split(a, texts, labels, *sp[s], path)
    out = report(a, texts, y, sp)
    print_report(out)
    cq.RESULTS.mkdir(parents=True, exist_ok=True)
    (cq.RESULTS / f"classifier_finetune_{config_name(a)}.json").write_text(
        json.dumps(metrics.finite(out), indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
