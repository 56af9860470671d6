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

Ray (`curation classify --engine ray`), in one run, side by side:

    python benchmarks/classify_speed.py --engine ray --actors 1,2 [--sizes 2000,20000] [--address ADDR]

For the tfidf model (trained on the bundled MedXpertQA labels) and the MiniLM model above,
on pools of `--sizes` questions (the bundled sample repeated with distinct ids), end to end
through `curation.services.learn.classify(..., input=...)` (read, load, score), device
``auto``: the single-process path (``local``) and ``--engine ray`` with each `--actors`
count, questions/s and the largest |p_ray - p_local|. The overheads are stated apart: the
cluster start (`ray.init` of a local cluster with max(actors) CPUs; the benchmark starts it
once and every job reuses it, as `curation.ray_scoring.cluster` does with a caller's
cluster) and each engine's fixed cost per job (a 16-question job: Ray starts the actors,
each imports torch and loads the model). The marginal rate (questions/s after the fixed
cost) gives the pool size where Ray starts to win, if it does on this machine. Writes
benchmarks/results/classify_speed_ray.json.

Here (2 CPU cores) one actor gets one core (Ray sets 1 torch thread per 1-CPU actor)
where the local path uses both, and two actors share the same two cores, so Ray cannot
beat the local path: the table measures its overhead. On a multi-GPU node each actor
holds its own GPU and the marginal rate grows with the number of GPUs:

    ray start --head --num-gpus=<n_gpus>        # once, on the node (or join a cluster)
    python benchmarks/classify_speed.py --engine ray --address auto --actors <n_gpus> --sizes 20000,200000
    curation classify --model DIR --engine ray --address auto --actors <n_gpus>
"""

from __future__ import annotations

import argparse
import json
import logging
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


def minilm_model(arg: str | None, tmp: Path) -> Path:
    """`--model`, else benchmarks/.cache/minilm_model, else the bundled MiniLM with an untrained head."""
    model_dir = Path(arg) if arg else ROOT / "benchmarks" / ".cache" / "minilm_model"
    if not (model_dir / M.MODEL_FILE).exists():
        tok, mdl = M.load_base("minilm")
        info = M.ModelInfo("transformer", "minilm-untrained-head", "minilm", 0.5, M.Calibrator().to_dict(), 256)
        model_dir = M.TransformerClassifier(tok, mdl, info, M.select_device("cpu")).save(tmp / "model")
    return model_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="ray: local vs `--engine ray` with each --actors count (see the docstring)")
    ap.add_argument("--actors", default="1,2", help="with --engine ray: comma-separated actor counts")
    ap.add_argument("--sizes", default="2000,20000", help="with --engine ray: comma-separated pool sizes")
    ap.add_argument("--address", default=None, help="with --engine ray: a running cluster (default: start a local one)")
    args = ap.parse_args()
    if args.engine == "ray":
        ray_comparison(args)
        return
    import torch
    from transformers import pipeline

    tmp = Path(tempfile.mkdtemp(prefix="classify_speed_"))
    model_dir = minilm_model(args.model, tmp)
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


# ----------------------------------------------------------------------------------------
# --engine ray: local vs Ray actors, side by side
# ----------------------------------------------------------------------------------------
LABELED = ROOT / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"
FIXED_N = 16  # questions in the job that measures an engine's fixed cost


def pool(n: int, path: Path) -> Path:
    """`n` questions: the bundled sample repeated, each copy with its own ids."""
    base = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows = [{"id": f"{r['id']}~{k}", "question": r["question"], "options": r["options"]}
            for k in range(-(-n // len(base))) for r in base][:n]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def timed_classify(model_dir: Path, inp: Path, **engine: object) -> tuple[float, np.ndarray, np.ndarray]:
    """Seconds, probabilities and decisions of one end-to-end `classify` call."""
    from curation.services.learn import classify as score

    t = time.perf_counter()
    res = score(model_dir, input=inp, device="auto", **engine)  # type: ignore[arg-type]
    sec = time.perf_counter() - t
    return sec, np.array([r["reasoning_prob"] for r in res["rows"]]), np.array([r["is_reasoning"] for r in res["rows"]])


def ray_models(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    rows = [json.loads(x) for x in LABELED.read_text(encoding="utf-8").splitlines() if x.strip()]
    tfidf = M.train([format_for_model(r["question"], r["options"]) for r in rows], [r["label"] for r in rows],
                    M.TrainConfig(base="tfidf")).save(tmp / "tfidf")
    return {"tfidf": tfidf, "minilm": minilm_model(args.model, tmp)}


def crossover(fixed_local: float, fixed_ray: float, qps_local: float, qps_ray: float) -> float | None:
    """Pool size where both engines take as long (fixed cost + n / marginal rate); None if Ray's
    marginal rate is not higher."""
    if qps_ray <= qps_local:
        return None
    return max(0.0, (fixed_ray - fixed_local) / (1 / qps_local - 1 / qps_ray))


def ray_comparison(args: argparse.Namespace) -> None:
    import ray

    from curation import ray_scoring

    actors = [int(x) for x in args.actors.split(",") if x.strip()]
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="classify_speed_ray_"))
    models = ray_models(args, tmp)
    small = pool(FIXED_N, tmp / "fixed.jsonl")
    load_at_start = os.getloadavg()[0]
    ray_scoring.require_ray()
    t = time.perf_counter()
    if args.address:
        ray.init(address=args.address, log_to_driver=False, logging_level=logging.ERROR)
    else:
        ray.init(num_cpus=max(actors), include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    cluster_s = time.perf_counter() - t
    engines: list[tuple[str, dict[str, object]]] = [("local", {})] + [(f"ray x{a}", {"engine": "ray", "actors": a}) for a in actors]
    runs: list[dict[str, object]] = []
    fixed: dict[str, dict[str, float]] = {}
    try:
        for name, model_dir in models.items():
            timed_classify(model_dir, small)  # warm: the bf16 probe, file caches
            fixed[name] = {label: timed_classify(model_dir, small, **kw)[0] for label, kw in engines}
            for n in sizes:
                inp = pool(n, tmp / f"pool_{n}.jsonl")
                ref: tuple[np.ndarray, np.ndarray] | None = None
                for label, kw in engines:
                    sec, p, d = timed_classify(model_dir, inp, **kw)
                    ref = (p, d) if ref is None else ref
                    spent = sec - fixed[name][label]  # beyond the fixed cost; too small to tell at small n
                    runs.append({"model": name, "n": n, "engine": label, "seconds": sec, "qps": n / sec,
                                 "marginal_qps": (n - FIXED_N) / spent if spent > 0.2 * sec else None,
                                 "max_abs_prob_diff_vs_local": float(np.max(np.abs(p - ref[0]))),
                                 "decisions_flipped_vs_local": int((d != ref[1]).sum())})
    finally:
        ray.shutdown()
    report_ray(args, runs, fixed, cluster_s, load_at_start, sizes)


def report_ray(args: argparse.Namespace, runs: list[dict], fixed: dict[str, dict[str, float]], cluster_s: float,
               load_at_start: float, sizes: list[int]) -> None:
    import torch

    print(f"Ray scoring vs the single-process path: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()} "
          f"(local) / 1 per actor (Ray), load average at start {load_at_start:.2f}")
    print(f"cluster start (ray.init, {'--address ' + args.address if args.address else 'local'}): {cluster_s:.1f} s")
    print(f"{'model':<8}{'n':>7}  {'engine':<9}{'seconds':>9}{'q/s':>9}{'vs local':>10}{'marginal q/s':>14}"
          f"{'max|dp|':>10}{'flipped':>9}")
    for r in runs:
        base = next(x for x in runs if x["model"] == r["model"] and x["n"] == r["n"] and x["engine"] == "local")
        r["speedup_vs_local"] = base["seconds"] / r["seconds"]
        marginal = "-" if r["marginal_qps"] is None else f"{r['marginal_qps']:.0f}"
        print(f"{r['model']:<8}{r['n']:>7}  {r['engine']:<9}{r['seconds']:>9.1f}{r['qps']:>9.0f}"
              f"{r['speedup_vs_local']:>9.2f}x{marginal:>14}{r['max_abs_prob_diff_vs_local']:>10.1e}"
              f"{r['decisions_flipped_vs_local']:>9}")
    cross: dict[str, dict[str, float | None]] = {}
    for name, f in fixed.items():
        print(f"{name}: fixed cost per job ({FIXED_N} questions): " + ", ".join(f"{k} {v:.1f} s" for k, v in f.items()))
        big = {r["engine"]: r for r in runs if r["model"] == name and r["n"] == max(sizes)}
        q_local = big["local"]["marginal_qps"] or big["local"]["qps"]
        cross[name] = {k: crossover(f["local"], f[k], q_local, big[k]["marginal_qps"] or big[k]["qps"])
                       for k in f if k != "local"}
        for k, c in cross[name].items():
            print(f"  {k}: " + ("Ray's marginal rate is not higher here: no crossover on this machine" if c is None
                                else f"Ray wins above ~{c:,.0f} questions (fixed costs + marginal rates at n={max(sizes)})"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "classify_speed_ray.json").write_text(json.dumps({
        "cpus": os.cpu_count(), "load_average_1min_at_start": round(load_at_start, 2), "address": args.address,
        "cluster_start_s": cluster_s, "fixed_cost_n": FIXED_N, "fixed_cost_s": fixed, "sizes": sizes,
        "runs": runs, "crossover_questions": cross,
    }, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
