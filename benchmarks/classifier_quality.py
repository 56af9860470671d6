"""Classifier quality on held-out MedXpertQA labels: minilm and tfidf vs the majority class.

Train on a stratified 80 % of `curation/data/medxpertqa_labeled_dev.jsonl` (split by
`--seed`), evaluate once on the other 20 %. Inside the 80 %, `curation.model.train` carves
its own stratified 15 % validation split for early stopping, calibration and the threshold
(maximise Cohen's kappa). Nothing is tuned on the 20 %: every number printed is held out.

    python benchmarks/classifier_quality.py [--models tfidf,minilm] [--epochs 3] [--max-length 256] [--device auto|cpu]

The defaults are `curation train`'s own (3 epochs, 256 tokens, device auto), so the numbers
describe what a user gets; on the 2-core development machine with bf16 autocast (AMX) the
minilm run takes a few minutes.

Prints a table and writes `benchmarks/results/classifier_quality.json`; the trained minilm
model is saved to `benchmarks/.cache/minilm_model/` (not for git) (classify_speed.py reuses it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation import model as M  # noqa: E402
from curation.schema import format_for_model  # noqa: E402

DATA = ROOT / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tfidf,minilm")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto (bf16 autocast on CPUs with AMX) or cpu (float32)")
    args = ap.parse_args()
    precision = M.select_device(args.device).label

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [format_for_model(r["question"], r["options"]) for r in rows]
    labels = [r["label"] for r in rows]
    y = M.encode_labels(labels)
    train_idx, test_idx = M.stratified_split(y, 0.2, args.seed)
    tr_t, tr_l = [texts[i] for i in train_idx], [labels[i] for i in train_idx]
    te_t, te_l = [texts[i] for i in test_idx], [labels[i] for i in test_idx]

    results: dict[str, dict[str, float]] = {}
    for name in args.models.split(","):
        t0 = time.perf_counter()
        cfg = M.TrainConfig(base=name, epochs=args.epochs, max_length=args.max_length, seed=args.seed, device=args.device)
        clf = M.train(tr_t, tr_l, cfg)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        m = M.evaluate(clf, te_t, te_l)
        m["train_seconds"] = train_s
        m["eval_seconds"] = time.perf_counter() - t1
        m["threshold"] = clf.threshold
        m["best_epoch"] = clf.info.metrics["training"]["best_epoch"]
        results[name] = m
        if name == "minilm":
            clf.save(ROOT / "benchmarks" / ".cache" / "minilm_model")
        print(f"[{name}] done in {train_s:.0f} s", file=sys.stderr, flush=True)

    cols = ["accuracy", "balanced_accuracy", "kappa", "f1_macro", "ece_before_calibration", "ece_after_calibration", "majority_accuracy", "threshold", "train_seconds"]
    print(f"held-out: {len(te_t)} questions ({sum(lab == 'reasoning' for lab in te_l)} reasoning); train {len(tr_t)} (seed {args.seed}); transformer on {precision}")
    print(f"{'model':<8}" + "".join(f"{c[:14]:>16}" for c in cols))
    for name, m in results.items():
        print(f"{name:<8}" + "".join(f"{m[c]:>16.3f}" for c in cols))
    print(f"{'majority':<8}" + "".join(f"{v:>16}" for v in ["{:.3f}".format(next(iter(results.values()))["majority_accuracy"]), "0.500", "0.000", "-", "-", "-", "-", "-", "-"]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "data": str(DATA.relative_to(ROOT)), "seed": args.seed, "n_train": len(tr_t), "n_test": len(te_t),
        "epochs": args.epochs, "max_length": args.max_length, "device": precision, "models": results,
        "majority_baseline": {"accuracy": next(iter(results.values()))["majority_accuracy"], "balanced_accuracy": 0.5, "kappa": 0.0},
    }
    (RESULTS / "classifier_quality.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
