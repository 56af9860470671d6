"""Scoring speed: `curation classify` vs a naive `transformers.pipeline("text-classification")`.

Same model, same 2,000 bundled questions (`curation/data/benchmarks_sample.jsonl`, first
2,000 rows, text = `format_for_model`), same truncation (the model's `max_length`), one
run, CPU, side by side:

* ours: `curation.cli.model.classify(model_dir, input=..., output=...)` end to end (load,
  tokenize, length-sorted batches of 64 with dynamic padding under `torch.inference_mode`,
  calibration, JSONL written), with ``--device auto`` (weights in bf16 when the CPU has
  AMX) and with ``--device cpu`` (float32);
* naive: `pipeline("text-classification", model=dir)` called on the list of texts with its
  defaults (batch size 1, float32) and `truncation=True, max_length=<the model's>`.

Checks that the float32 path gives the pipeline's probabilities (max difference) and how
far auto's bf16 moves them (max difference, share of flipped decisions over all rows).
Also measures the machine's matmul FLOP/s (2048x2048 `torch.mm`, float32 and bf16) and the
fraction of the matching peak that classify reaches (forward FLOPs counted as 2 x
non-embedding parameters per processed token + attention scores/values 4 x layers x len^2 x
hidden per sequence, padding included) over the end-to-end time.

    python benchmarks/classify_speed.py [--model DIR] [--n 2000]

Default model: benchmarks/.cache/minilm_model (from classifier_quality.py), else the
bundled MiniLM with an untrained 2-class head (identical speed). Prints a table and writes
benchmarks/results/classify_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation import model as M  # noqa: E402
from curation.cli.model import classify  # noqa: E402
from curation.readers import read_jsonl  # noqa: E402
from curation.schema import format_for_model  # noqa: E402

DATA = ROOT / "curation" / "data" / "benchmarks_sample.jsonl"
RESULTS = ROOT / "benchmarks" / "results"


def matmul_flops(dtype: str = "float32", n: int = 2048, repeats: int = 10) -> float:
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
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


def read_probs(path: Path) -> dict[str, tuple[float, bool]]:
    return {r.data["id"]: (r.data["reasoning_prob"], r.data["is_reasoning"]) for r in read_jsonl(path)}


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
    auto = M.select_device("auto")
    load_at_start = os.getloadavg()[0]

    peak = {"float32": matmul_flops("float32"), "bfloat16": matmul_flops("bfloat16")}
    timings: dict[str, float] = {}
    for device in ("auto", "cpu"):
        t = time.perf_counter()
        res = classify(model_dir, input=inp, output=tmp / f"out_{device}.jsonl", device=device)
        timings[device] = time.perf_counter() - t
    clf = M.load(model_dir, device="cpu")
    assert isinstance(clf, M.TransformerClassifier)
    max_length = clf.info.max_length
    flops = forward_flops(clf, texts)
    z = clf.logits(texts[:64])  # float32, for the agreement check with the pipeline

    pipe = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir), device=-1, top_k=None)
    t = time.perf_counter()
    out = pipe(texts, truncation=True, max_length=max_length)
    naive_s = time.perf_counter() - t
    p_naive = np.array([next(d["score"] for d in o if d["label"] == "reasoning") for o in out[:64]])
    max_diff_fp32 = float(np.max(np.abs(p_naive - 1 / (1 + np.exp(-z)))))
    pa, pc = read_probs(tmp / "out_auto.jsonl"), read_probs(tmp / "out_cpu.jsonl")
    max_diff_auto = max(abs(pa[k][0] - pc[k][0]) for k in pc)
    flipped = sum(pa[k][1] != pc[k][1] for k in pc) / len(pc)

    n = len(texts)
    auto_label = f"auto = {auto.label}"
    table = [
        (f"curation classify, {auto_label}", timings["auto"]),
        ("curation classify, cpu = float32", timings["cpu"]),
        ("naive transformers.pipeline, float32", naive_s),
    ]
    print(f"{n} questions, model {res['model_version']} ({model_dir}), max_length {max_length}, torch threads {torch.get_num_threads()}")
    print(f"{'method (end to end)':<44}{'seconds':>9}{'questions/s':>13}{'vs naive':>10}")
    for name, sec in table:
        print(f"{name:<44}{sec:>9.1f}{n / sec:>13.1f}{naive_s / sec:>9.2f}x")
    print("target: >= 3x the naive pipeline")
    auto_peak = peak[auto.amp_dtype or "float32"]
    print(f"matmul peak float32 {peak['float32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s; "
          f"classify auto {flops / timings['auto'] / 1e9:.0f} GFLOP/s = {flops / timings['auto'] / auto_peak:.1%} of its peak, "
          f"cpu {flops / timings['cpu'] / 1e9:.0f} GFLOP/s = {flops / timings['cpu'] / peak['float32']:.1%} of float32 peak")
    print(f"max |p_float32 - p_pipeline| over 64 questions = {max_diff_fp32:.2e}")
    print(f"auto vs float32 over {n}: max |dp| = {max_diff_auto:.2e}, decisions flipped {flipped:.2%}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "classify_speed.json").write_text(json.dumps({
        "n": n, "model": str(model_dir), "model_version": res["model_version"], "max_length": max_length,
        "torch_threads": torch.get_num_threads(), "load_average_1min_at_start": round(load_at_start, 2), "auto_device": auto.device, "auto_amp_dtype": auto.amp_dtype,
        "ours_auto_s": timings["auto"], "ours_float32_s": timings["cpu"], "naive_pipeline_s": naive_s,
        "ours_auto_qps": n / timings["auto"], "ours_float32_qps": n / timings["cpu"], "naive_qps": n / naive_s,
        "speedup_auto_vs_naive": naive_s / timings["auto"], "speedup_float32_vs_naive": naive_s / timings["cpu"],
        "target_speedup": 3.0, "matmul_peak_flops": peak, "classify_flops": flops,
        "fraction_of_peak_auto": flops / timings["auto"] / auto_peak,
        "fraction_of_peak_float32": flops / timings["cpu"] / peak["float32"],
        "max_prob_diff_float32_vs_pipeline": max_diff_fp32,
        "max_prob_diff_auto_vs_float32": max_diff_auto, "decisions_flipped_auto_vs_float32": flipped,
    }, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
