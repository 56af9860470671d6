"""Ingest speed: 100k synthetic questions into a fresh store, re-ingest (idempotent), stats.

Side by side with a naive baseline that inserts the same rows one `INSERT` at a time
(`executemany`, no validation, no dedup) into the same `questions` table.

    python benchmarks/ingest.py [--n 100000]

Prints a table and writes benchmarks/results/ingest.json. Target: <= 10 s to ingest 100k.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from curation.ingest import ingest_paths
from curation.store import Store
from curation.store import questions as qstore

WORDS = ("patient presents with fever cough dyspnea hypertension renal hepatic cardiac "
         "acute chronic infection therapy dose mechanism receptor enzyme deficiency most likely "
         "diagnosis next step management year old man woman history examination shows").split()


def synth(n: int, seed: int = 0) -> list[dict]:  # type: ignore[type-arg]
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(30, 120)))
        opts = {k: " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 5))) + f" {i}{k}" for k in "ABCD"}
        ans = rnd.choice("ABCD")
        rows.append({"id": f"syn-{i:06d}", "dataset_name": rnd.choice(["medqa", "medmcqa", "pubmedqa"]),
                     "question": f"Case {i}: {text}?", "options": opts, "answer_idx": ans,
                     "answer": opts[ans], "source": "synthetic"})
    return rows


def naive_insert(db: Path, rows: list[dict]) -> None:  # type: ignore[type-arg]
    import duckdb

    store = Store(db)
    store.run(lambda con: None)  # create the schema
    con = duckdb.connect(str(db))
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, source, "
        "meta, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?, now())",
        [[r["id"], r["dataset_name"], "test", r["question"], json.dumps(r["options"]), r["answer_idx"],
          r["answer"], r["source"], "{}", ""] for r in rows],
    )
    con.execute("COMMIT")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--baseline-n", type=int, default=10_000,
                    help="rows for the naive baseline (it is slow; its rate is extrapolated)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ingest.json"))
    args = ap.parse_args()
    load_at_start = os.getloadavg()[0]  # a busy machine (load > cores) slows every timing here
    tmp = Path(tempfile.mkdtemp())
    rows = synth(args.n)
    path = tmp / "synthetic.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    store = Store(tmp / "bench.duckdb")

    t0 = time.perf_counter()
    report = ingest_paths(store, [path])
    t_ingest = time.perf_counter() - t0
    assert report.n_new == args.n
    t0 = time.perf_counter()
    again = ingest_paths(store, [path])
    t_reingest = time.perf_counter() - t0
    assert again.n_new == 0
    t0 = time.perf_counter()
    stats = store.run(qstore.stats)
    t_stats = time.perf_counter() - t0
    assert stats["questions"] == args.n

    base_rows = rows[: args.baseline_n]
    t0 = time.perf_counter()
    naive_insert(tmp / "naive.duckdb", base_rows)
    t_naive = time.perf_counter() - t0
    naive_per_row = t_naive / len(base_rows)

    result = {
        "n_questions": args.n,
        "ingest_s": round(t_ingest, 3),
        "ingest_rows_per_s": round(args.n / t_ingest),
        "reingest_idempotent_s": round(t_reingest, 3),
        "stats_s": round(t_stats, 3),
        "naive_executemany_rows": len(base_rows),
        "naive_executemany_s": round(t_naive, 3),
        "naive_extrapolated_s_for_n": round(naive_per_row * args.n, 1),
        "speedup_vs_naive": round(naive_per_row * args.n / t_ingest, 1),
        "target_ingest_s": 10,
        "meets_target": t_ingest <= 10,
        "load_average_1min_at_start": round(load_at_start, 2),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count()},
    }
    table = Table(title=f"Ingest {args.n:,} synthetic questions")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("ingest (validate, dedup, write; one transaction)", f"{t_ingest:.2f} s")
    table.add_row("re-ingest (idempotent no-op)", f"{t_reingest:.2f} s")
    table.add_row("stats", f"{t_stats:.3f} s")
    table.add_row(f"naive row-by-row INSERT, {len(base_rows):,} rows", f"{t_naive:.2f} s")
    table.add_row(f"naive extrapolated to {args.n:,}", f"{naive_per_row * args.n:.1f} s")
    table.add_row("ours vs naive", f"{result['speedup_vs_naive']}x faster")
    table.add_row("target <= 10 s", "met" if result["meets_target"] else "NOT met")
    table.add_row("load average (1 min) at start", f"{load_at_start:.2f} on {os.cpu_count()} cores")
    Console().print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
