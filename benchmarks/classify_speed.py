"""Scoring speed: `curation classify` vs a naive `transformers.pipeline("text-classification")`.

Same model, same 2,000 bundled questions (`curation/data/benchmarks_sample.jsonl`, first
2,000 rows, text = `format_for_model`), same truncation (256 tokens), one run, CPU.

* ours: `curation.cli.model.classify(model_dir, input=..., output=...)` end to end (load,
  tokenize, length-sorted batches of 64 with dynamic padding under `torch.inference_mode`,
  calibration, JSONL written);
* naive: `pipeline("text-classification", model=dir)` called on the list of texts with its
  defaults (batch size 1) and `truncation=True, max_length=256`.

Also measures the machine's float32 matmul FLOP/s (2048x2048 `torch.mm`) and the fraction
of it that classify reaches (forward FLOPs counted as 2 x non-embedding parameters per
processed token + attention scores/values 4 x layers x len^2 x hidden per sequence, padding
included) over the end-to-end time.

    python benchmarks/classify_speed.py [--model DIR] [--n 2000]

Default model: benchmarks/.cache/minilm_model (from classifier_quality.py), else the
bundled MiniLM with an untrained 2-class head (identical speed). Prints a table and writes
benchmarks/results/classify_speed.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation import model as M  # noqa: E402
from curation.cli.model import classify  # noqa: E402
from curation.schema import format_for_model  # noqa: E402

DATA = ROOT / "curation" / "data" / "benchmarks_sample.jsonl"
RESULTS = ROOT / "benchmarks" / "results"


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def forward_flops(clf: M.TransformerClassifier, texts: list[str], batch_size: int = 64) -> float:
    cfg = clf.model.config
    n_params = sum(p.numel() for n, p in clf.model.named_parameters() if "embeddings" not in n)
    lengths = [len(e) for e in clf.encode(texts)]
    total = 0.0
    for batch in M._length_sorted_batches(lengths, batch_size):
        width = max(lengths[i] for i in batch)
        total += len(batch) * (2 * n_params * width + 4 * cfg.num_hidden_layers * width**2 * cfg.hidden_size)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    import torch
    from transformers import pipeline

    tmp = Path(tempfile.mkdtemp(prefix="classify_speed_"))
    model_dir = Path(args.model) if args.model else ROOT / "benchmarks" / ".cache" / "minilm_model"
    if not (model_dir / M.MODEL_FILE).exists():
        tok, mdl = M.load_base("minilm")
        info = M.ModelInfo("transformer", "minilm-untrained-head", "minilm", 0.5, M.Calibrator().to_dict(), 256)
        model_dir = M.TransformerClassifier(tok, mdl, info, M.select_device("cpu")).save(tmp / "model")
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()][: args.n]
    inp = tmp / "in.jsonl"
    inp.write_text("".join(json.dumps({k: r[k] for k in ("id", "question", "options")}) + "\n" for r in rows))
    texts = [format_for_model(r["question"], r["options"]) for r in rows]

    peak = matmul_flops()
    t = time.perf_counter()
    res = classify(model_dir, input=inp, output=tmp / "out.jsonl", device="cpu")
    ours_s = time.perf_counter() - t
    clf = M.load(model_dir, device="cpu")
    assert isinstance(clf, M.TransformerClassifier)
    flops = forward_flops(clf, texts)
    z = clf.logits(texts[:64])  # for the agreement check with the pipeline
    score_s = ours_s  # FLOP/s are computed over the end-to-end time (conservative)

    pipe = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir), device=-1, top_k=None)
    t = time.perf_counter()
    out = pipe(texts, truncation=True, max_length=256)
    naive_s = time.perf_counter() - t
    p_naive = np.array([next(d["score"] for d in o if d["label"] == "reasoning") for o in out[:64]])
    p_ours = 1 / (1 + np.exp(-z))
    max_diff = float(np.max(np.abs(p_naive - p_ours)))

    n = len(texts)
    table = [
        ("curation classify (end to end)", ours_s, n / ours_s),
        ("naive transformers.pipeline", naive_s, n / naive_s),
    ]
    print(f"{n} questions, model {res['model_version']} ({model_dir}), torch threads {torch.get_num_threads()}")
    print(f"{'method':<34}{'seconds':>10}{'questions/s':>14}")
    for name, s, qps in table:
        print(f"{name:<34}{s:>10.1f}{qps:>14.1f}")
    print(f"speed-up end to end vs naive: {naive_s / ours_s:.2f}x (target >= 3x)")
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s; classify (end to end) {flops / score_s / 1e9:.1f} GFLOP/s = {flops / score_s / peak:.1%} of peak")
    print(f"max |p_ours_raw - p_pipeline| over 64 questions = {max_diff:.2e} (same model, same truncation)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "classify_speed.json").write_text(json.dumps({
        "n": n, "model": str(model_dir), "model_version": res["model_version"], "torch_threads": torch.get_num_threads(),
        "ours_end_to_end_s": ours_s, "naive_pipeline_s": naive_s,
        "ours_qps": n / ours_s, "naive_qps": n / naive_s,
        "speedup_end_to_end": naive_s / ours_s,
        "matmul_peak_flops": peak, "classify_flops": flops, "classify_flops_per_s": flops / score_s,
        "fraction_of_peak": flops / score_s / peak, "max_prob_diff_vs_pipeline": max_diff,
    }, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
