"""Benchmark: server-side time from "label submitted" to "next question ready".

A store with N questions (default 100,000), a gold batch and an active-learning batch, and
A concurrent simulated annotators (threads, as Streamlit sessions are) labeling with a think
time between actions; some submissions are sent twice (double clicks). Measured per action:
the wall time of the one call the app makes (`annotate.submit_and_next`: record + lease the
next item in one transaction, including waiting for the store). Then it checks that no label
was lost or duplicated and that no item got more than K labels.

Side by side with a naive baseline: two store opens per action (submit, then next) and the
next item chosen in Python over every batch item (`curation.assign.choose_next`).

    python benchmarks/labeling.py [--questions 100000] [--annotators 10] [--actions 25]
                                  [--think-ms 1000] [--out benchmarks/results/labeling.json]

Prints a table and writes JSON. Target: p95 <= 100 ms for ours; lost = duplicated = 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402

from curation import assign  # noqa: E402
from curation.services import annotate
from curation.store import LOCK_STATS, Store, utcnow  # noqa: E402
from curation.store import queue as q  # noqa: E402
from curation.store.batches import BatchItem, create_batch  # noqa: E402

APP_DB_THREADS = 1  # ui.common.APP_DB_THREADS (not imported: that module needs streamlit)

DATASETS = ("medqa", "medmcqa", "pubmedqa", "medxpertqa", "mmlu_pro_health_biology")


def build_store(path: Path, n_questions: int, n_annotators: int, gold: int, active: int,
                threads: int | None) -> Store:
    store = Store(path, threads=threads)

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            """INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer,
                                      source, text_hash, ingested_at)
               SELECT 'bench-' || i,
                      list_extract(?, (i % 5) + 1),
                      CASE WHEN i % 10 < 8 THEN 'test' ELSE 'train' END,
                      'Synthetic question ' || i || ': a 54-year-old presents with findings; what next?',
                      '{"A": "one", "B": "two", "C": "three", "D": "four"}', 'A', 'one', 'bench',
                      md5(i::VARCHAR), now()::TIMESTAMP
               FROM range(?) t(i)""",
            [list(DATASETS), n_questions],
        )
        con.executemany(
            "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?, 'annotator', 'x', false, ?)",
            [[f"ann{i:02d}", utcnow()] for i in range(n_annotators)],
        )

    store.run(work)
    annotate.draw_gold(store, gold, 2, seed=0, batch_id="gold-bench")
    pool = store.run(lambda con: [r[0] for r in con.execute(
        "SELECT id FROM questions WHERE split = 'train' ORDER BY id LIMIT ?", [active]).fetchall()])
    store.run(lambda con: create_batch(
        con, batch_id="active-bench", kind="active", overlap=1, show_suggestions=True, created_at=utcnow(),
        items=[BatchItem(i, "reasoning" if k % 2 else "knowledge", 0.5) for k, i in enumerate(pool)]))
    return store


# -- the naive baseline ---------------------------------------------------------------------


def naive_next(con: duckdb.DuckDBPyConnection, annotator: str, now: datetime) -> str | None:
    """Fetch every batch item's state, choose in Python, lease. (What we do not do.)"""
    best = assign.choose_next(q.candidates(con, annotator, now=now))
    if best is None:
        return None
    q._lease_upsert(con, best.batch_id, best.question_id, annotator, now, 30)
    return best.question_id


def naive_submit_and_next(store: Store, annotator: str, qid: str, label: str, event_id: str) -> str | None:
    with q._QUEUE_LOCK:
        store.run(lambda con: q.submit(con, annotator, qid, action="label", label=label, event_id=event_id))
        return store.run(lambda con: naive_next(con, annotator, utcnow()))


# -- the simulation -------------------------------------------------------------------------


def simulate(store: Store, mode: str, n_annotators: int, actions: int, think_ms: float,
             double_every: int, seed: int) -> dict[str, Any]:
    latencies: list[float] = []
    submitted: dict[str, tuple[str, str]] = {}  # event_id -> (annotator, question)
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_annotators)

    def annotator(idx: int) -> None:
        rng = random.Random(seed * 1000 + idx)
        name = f"ann{idx:02d}"
        try:
            task = annotate.fetch_next(store, name)["task"]
            qid = task["question_id"] if task else None
            barrier.wait()
            for n in range(actions):
                if qid is None:
                    break
                if think_ms:
                    time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)
                event = annotate.new_event_id()
                label = rng.choice(("reasoning", "knowledge"))
                t0 = time.perf_counter()
                if mode == "ours":
                    nxt = annotate.submit_and_next(store, name, qid, action="label", label=label, event_id=event)["task"]
                    new_qid = nxt["question_id"] if nxt else None
                else:
                    new_qid = naive_submit_and_next(store, name, qid, label, event)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    submitted[event] = (name, qid)
                if double_every and n % double_every == 0:  # a double click: same event again
                    if mode == "ours":
                        annotate.submit_and_next(store, name, qid, action="label", label=label, event_id=event)
                    else:
                        naive_submit_and_next(store, name, qid, label, event)
                qid = new_qid
        except Exception as exc:  # noqa: BLE001 - reported in the result
            with lock:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=annotator, args=(i,)) for i in range(n_annotators)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0

    def check(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        stored = {r[0]: (r[1], r[2]) for r in con.execute(
            "SELECT event_id, annotator, question_id FROM annotations WHERE source = 'app'").fetchall()}
        dup_pairs = con.execute(
            "SELECT count(*) FROM (SELECT question_id, annotator FROM annotations WHERE action = 'label' "
            "GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
        over = con.execute(
            """SELECT count(*) FROM (
                 SELECT a.question_id, count(DISTINCT a.annotator) n, max(b.overlap) k
                 FROM annotations a JOIN batch_items bi ON bi.question_id = a.question_id
                 JOIN batches b ON b.id = bi.batch_id WHERE a.action = 'label' GROUP BY a.question_id)
               WHERE n > k""").fetchall()[0][0]
        lost = sum(1 for e, v in submitted.items() if stored.get(e) != v)
        return {"stored": len(stored), "lost": lost, "duplicated": int(dup_pairs) + (len(stored) - len(
            set(stored))), "over_overlap": int(over)}

    checks = store.run(check)
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1000 if lat else float("nan")

    return {
        "mode": mode, "think_ms": think_ms, "actions": len(lat), "wall_s": round(wall, 2),
        "p50_ms": round(pct(50), 1), "p95_ms": round(pct(95), 1), "p99_ms": round(pct(99), 1),
        "max_ms": round(max(lat) * 1000, 1) if lat else None,
        "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
        "submitted": len(submitted), **checks, "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=100_000)
    ap.add_argument("--annotators", type=int, default=10)
    ap.add_argument("--actions", type=int, default=25, help="label submissions per annotator")
    ap.add_argument("--think-ms", type=float, default=1000.0, help="mean pause between actions")
    ap.add_argument("--gold", type=int, default=2000, help="gold batch size (K=2)")
    ap.add_argument("--active", type=int, default=1000, help="active batch size (K=1)")
    ap.add_argument("--double-every", type=int, default=5, help="send every n-th submission twice")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--db-threads", type=int, default=APP_DB_THREADS,
                    help="DuckDB threads, as the app sets them (ui.common.APP_DB_THREADS)")
    ap.add_argument("--stress", action="store_true", help="also run with no think time")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "labeling.json")
    args = ap.parse_args(argv)

    runs: list[dict[str, Any]] = []
    modes = ["ours"] + ([] if args.no_baseline else ["naive"])
    thinks = [args.think_ms] + ([0.0] if args.stress else [])
    with tempfile.TemporaryDirectory() as tmp:
        for think in thinks:
            for mode in modes:
                t0 = time.perf_counter()
                store = build_store(Path(tmp) / f"{mode}-{int(think)}.duckdb", args.questions,
                                    args.annotators, args.gold, args.active, args.db_threads)
                build_s = time.perf_counter() - t0
                res = simulate(store, mode, args.annotators, args.actions, think, args.double_every, seed=1)
                store.close()  # hand the file back now (it lingers otherwise) before the next run
                res["build_s"] = round(build_s, 1)
                runs.append(res)
    result = {
        "benchmark": "labeling: submit -> next question ready (server side)",
        "questions": args.questions, "annotators": args.annotators, "gold": args.gold,
        "active": args.active, "db_threads": args.db_threads, "target_p95_ms": 100, "machine": {
            "python": platform.python_version(), "cpus": __import__("os").cpu_count(),
            "duckdb": duckdb.__version__, "loadavg_at_end": list(__import__("os").getloadavg())},
        "lock_retries": LOCK_STATS.retries, "runs": runs,
    }
    ours = [r for r in runs if r["mode"] == "ours"]
    naive = [r for r in runs if r["mode"] == "naive"]
    for o, n in zip(ours, naive, strict=False):
        o["naive_over_ours_p95"] = round(n["p95_ms"] / o["p95_ms"], 2) if o["p95_ms"] else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")

    cols = ("mode", "think_ms", "actions", "p50_ms", "p95_ms", "p99_ms", "max_ms", "submitted",
            "stored", "lost", "duplicated", "over_overlap")
    print(f"{args.questions:,} questions, {args.annotators} concurrent annotators, "
          f"gold {args.gold} (K=2) + active {args.active} (K=1)")
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in runs:
        print(" | ".join(f"{r[c]!s:>12}" for c in cols))
        for e in r["errors"]:
            print("  error:", e)
    for o in ours:
        if "naive_over_ours_p95" in o:
            print(f"naive / ours p95 (think {o['think_ms']:g} ms): {o['naive_over_ours_p95']}x")
    print(f"load average at the end (1/5/15 min): {result['machine']['loadavg_at_end']}")
    print(f"wrote {args.out}")
    ok = all(r["lost"] == 0 and r["duplicated"] == 0 and r["over_overlap"] == 0 and not r["errors"] for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
