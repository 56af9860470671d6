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

Many app replicas (issue #16): `--backend postgres --replicas 3 --annotators 30` spreads the
annotators over 3 OS processes (each one app replica, its annotators threads in it) and runs
the same load twice in one run: on a PostgreSQL store (a throwaway server from
tests/pgserver.py, made durable: fsync and synchronous commit on, as the DuckDB file is; or
`--pg-url`) and on the DuckDB file shared by the same 3 processes. Writes
benchmarks/results/labeling_backends.json (p50/p95/p99, labels/s, errors, store retries,
ratios); `--profile` adds where PostgreSQL's time goes (per statement, and cProfile of one
annotator thread). `--backend duckdb --replicas N` runs the DuckDB side alone.
Target: PostgreSQL p95 <= 100 ms at 100k questions and below DuckDB's multi-process p95.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from curation import assign  # noqa: E402
from curation.services import annotate  # noqa: E402
from curation.store import LOCK_STATS, Store, utcnow  # noqa: E402
from curation.store import queue as q  # noqa: E402
from curation.store.batches import BatchItem, create_batch  # noqa: E402

APP_DB_THREADS = 1  # ui.common.APP_DB_THREADS (not imported: that module needs streamlit)

DATASETS = ("medqa", "medmcqa", "pubmedqa", "medxpertqa", "mmlu_pro_health_biology")
QUESTION_COLUMNS = ("id", "dataset_name", "split", "question", "options", "answer_idx", "answer",
                    "source", "text_hash", "ingested_at")


def seed_table(n: int) -> pa.Table:
    """`n` synthetic question rows (80 % test, 20 % train, five benchmarks) as Arrow."""
    now = utcnow()
    ids = [f"bench-{i}" for i in range(n)]
    return pa.table({
        "id": ids,
        "dataset_name": [DATASETS[i % 5] for i in range(n)],
        "split": ["test" if i % 10 < 8 else "train" for i in range(n)],
        "question": [f"Synthetic question {i}: a 54-year-old presents with findings; what next?" for i in range(n)],
        "options": ['{"A": "one", "B": "two", "C": "three", "D": "four"}'] * n,
        "answer_idx": ["A"] * n, "answer": ["one"] * n, "source": ["bench"] * n,
        "text_hash": [hashlib.md5(str(i).encode()).hexdigest() for i in range(n)],
        "ingested_at": pa.array([now] * n, pa.timestamp("us")),
    })


def build_store(location: Path | str, n_questions: int, n_annotators: int, gold: int, active: int,
                threads: int | None) -> Store:
    """A store (a DuckDB file path or a postgresql:// URL) seeded in bulk: the questions
    through one registered Arrow table (COPY on PostgreSQL), then the two batches."""
    store = Store(location, threads=threads, create=True)
    rows = seed_table(n_questions)
    cols = ", ".join(QUESTION_COLUMNS)

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.register("bench_seed", rows)
        try:
            con.execute(f"INSERT INTO question_rows ({cols}) SELECT {cols} FROM bench_seed")
        finally:
            con.unregister("bench_seed")
        con.executemany(
            "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?, 'annotator', 'x', false, ?)",
            [[f"ann{i:02d}", utcnow()] for i in range(n_annotators)],
        )

    store.run(work)
    if store.backend == "postgres":  # what autovacuum does a minute after an ingest
        store.run(lambda con: con.execute("ANALYZE"))
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


def run_annotators(store: Store, mode: str, indices: Sequence[int], actions: int, think_ms: float,
                   double_every: int, seed: int, on_ready: Callable[[], Any] | None = None,
                   profiled: cProfile.Profile | None = None) -> dict[str, Any]:
    """Annotators `ann{i}` for i in `indices` as threads of this process, all starting
    together once each holds a first question (then `on_ready` runs, once). `profiled`
    profiles the first annotator's thread."""
    latencies: list[float] = []
    submitted: dict[str, tuple[str, str]] = {}  # event_id -> (annotator, question)
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(indices), action=on_ready)

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

    def first(idx: int) -> None:
        assert profiled is not None
        profiled.runcall(annotator, idx)

    threads = [threading.Thread(target=first if profiled is not None and k == 0 else annotator, args=(i,))
               for k, i in enumerate(indices)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "submitted": submitted, "errors": errors,
            "wall_s": time.perf_counter() - t0}


def check_store(store: Store, submitted: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Lost and duplicated labels, and items over their K (portable SQL: either backend)."""

    def check(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        stored = {r[0]: (r[1], r[2]) for r in con.execute(
            "SELECT event_id, annotator, question_id FROM annotations WHERE source = 'app'").fetchall()}
        dup_pairs = con.execute(
            "SELECT count(*) FROM (SELECT question_id, annotator FROM annotations WHERE action = 'label' "
            "GROUP BY question_id, annotator HAVING count(*) > 1) AS d").fetchall()[0][0]
        over = con.execute(
            """SELECT count(*) FROM (
                 SELECT a.question_id, count(DISTINCT a.annotator) AS n, max(b.overlap) AS k
                 FROM annotations a JOIN batch_items bi ON bi.question_id = a.question_id
                 JOIN batches b ON b.id = bi.batch_id WHERE a.action = 'label' GROUP BY a.question_id) AS o
               WHERE n > k""").fetchall()[0][0]
        lost = sum(1 for e, v in submitted.items() if stored.get(e) != v)
        return {"stored": len(stored), "lost": lost, "duplicated": int(dup_pairs) + (len(stored) - len(
            set(stored))), "over_overlap": int(over)}

    return store.run(check)


def latency_stats(latencies: Sequence[float]) -> dict[str, Any]:
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1000 if lat else float("nan")

    return {
        "actions": len(lat), "p50_ms": round(pct(50), 1), "p95_ms": round(pct(95), 1),
        "p99_ms": round(pct(99), 1), "max_ms": round(max(lat) * 1000, 1) if lat else None,
        "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
    }


def simulate(store: Store, mode: str, n_annotators: int, actions: int, think_ms: float,
             double_every: int, seed: int) -> dict[str, Any]:
    run = run_annotators(store, mode, range(n_annotators), actions, think_ms, double_every, seed)
    stats = latency_stats(run["latencies"])
    checks = check_store(store, run["submitted"])
    return {
        "mode": mode, "think_ms": think_ms, "actions": stats.pop("actions"), "wall_s": round(run["wall_s"], 2),
        **stats, "submitted": len(run["submitted"]), **checks, "errors": run["errors"],
    }


# -- many app replicas on one store (--backend) ---------------------------------------------


@contextmanager
def timed_statements(stats: dict[str, list[float]]) -> Iterator[None]:
    """Within: every statement a PostgreSQL store sends from this process is timed, by its
    text (waiting for the queue's advisory lock shows as its own statement)."""
    from curation.store.postgres import PgConnection

    plain = PgConnection.execute
    lock = threading.Lock()

    def execute(self: PgConnection, sql: str, params: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return plain(self, sql, params)
        finally:
            dt = time.perf_counter() - t0
            key = " ".join(sql.split())[:100]
            with lock:
                entry = stats.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += dt

    PgConnection.execute = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        PgConnection.execute = plain  # type: ignore[method-assign]


def replica(location: str, indices: list[int], cfg: dict[str, Any], start: Any, out: Any,
            profile_thread: bool) -> None:
    """One app replica (an OS process): its annotators as threads on one store; puts its
    figures on `out`. All replicas start labeling together (`start`, a process barrier)."""
    store = Store(location, threads=cfg["db_threads"])
    statements: dict[str, list[float]] = {}
    profiler = cProfile.Profile() if profile_thread else None
    started: list[float] = []

    def ready() -> None:
        start.wait(timeout=600)
        started.append(time.time())

    store.run(lambda con: con.execute("SELECT 1").fetchall())  # imports, pool, migrations: not measured
    timing = timed_statements(statements) if cfg["profile"] and store.backend == "postgres" else None
    try:
        if timing is not None:
            timing.__enter__()
        run = run_annotators(store, "ours", indices, cfg["actions"], cfg["think_ms"], cfg["double_every"],
                             cfg["seed"], on_ready=ready, profiled=profiler)
    finally:
        if timing is not None:
            timing.__exit__(None, None, None)
    ended = time.time()
    store.close()
    text = None
    if profiler is not None:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(30)
        text = buf.getvalue()
    out.put({"latencies": run["latencies"], "submitted": run["submitted"], "errors": run["errors"],
             "retries": LOCK_STATS.retries, "store_wait_s": LOCK_STATS.total_wait_s,
             "started": started[0] if started else None, "ended": ended, "statements": statements,
             "profile": text, "pid": os.getpid()})


def run_replicas(location: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The annotators spread over `args.replicas` processes on the store at `location`."""
    import queue as queue_mod

    ctx = mp.get_context("spawn")
    start = ctx.Barrier(args.replicas)
    out = ctx.Queue()
    cfg = {"db_threads": args.db_threads, "actions": args.actions, "think_ms": args.think_ms,
           "double_every": args.double_every, "seed": 1, "profile": args.profile}
    procs = [ctx.Process(target=replica, args=(location, list(range(args.annotators))[r::args.replicas], cfg,
                                               start, out, args.profile and r == 0)) for r in range(args.replicas)]
    for p in procs:
        p.start()
    results: list[dict[str, Any]] = []
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=5))
        except queue_mod.Empty:
            if all(not p.is_alive() for p in procs) and out.empty():
                break
    for p in procs:
        p.join(timeout=60)
    for p in procs:
        if p.exitcode not in (0, None) and len(results) < len(procs):
            results.append({"latencies": [], "submitted": {}, "errors": [f"replica pid {p.pid} exited with "
                            f"{p.exitcode} before reporting"], "retries": 0, "store_wait_s": 0.0,
                            "started": None, "ended": None, "statements": {}, "profile": None, "pid": p.pid})
    return results


def merge_replicas(backend: str, parts: list[dict[str, Any]], store: Store) -> dict[str, Any]:
    """One backend's row: latencies over every replica, the store checked once."""
    latencies = [x for p in parts for x in p["latencies"]]
    submitted = {k: v for p in parts for k, v in p["submitted"].items()}
    errors = [e for p in parts for e in p["errors"]]
    starts = [p["started"] for p in parts if p["started"]]
    ends = [p["ended"] for p in parts if p["ended"]]
    window = max(ends) - min(starts) if starts and ends else float("nan")
    return {
        "backend": backend, "replicas": len(parts), **latency_stats(latencies),
        "labels_per_s": round(len(latencies) / window, 2) if window == window and window > 0 else None,
        "window_s": round(window, 2), "submitted": len(submitted), **check_store(store, submitted),
        "n_errors": len(errors), "errors": errors[:20],
        "retries": sum(p["retries"] for p in parts),
        "store_wait_s": round(sum(p["store_wait_s"] for p in parts), 2),
        "per_replica": [{"pid": p["pid"], **latency_stats(p["latencies"])} for p in parts],
    }


@contextmanager
def postgres_url(args: argparse.Namespace) -> Iterator[tuple[str, dict[str, Any]]]:
    """`--pg-url` (an empty database), else a throwaway server (tests/pgserver.py), durable
    like the DuckDB file unless `--pg-fast`: fsync, full-page writes and synchronous commit
    on (the test server turns them off on its command line, which ALTER SYSTEM cannot undo,
    so it is restarted with them on)."""
    import psycopg

    if args.pg_url:
        yield args.pg_url, {"server": "given (--pg-url)"}
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pgserver import PgServer

    with PgServer() as pg:
        if args.pg_durable:
            opts = (f"-p {pg.port} -k {pg.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                    "-c fsync=on -c synchronous_commit=on -c full_page_writes=on")
            pg._run("pg_ctl", "-D", str(pg.data), "-o", opts, "-l", str(pg.dir / "server.log"), "-w", "restart")
        url = pg.new_database("bench")
        settings: dict[str, Any] = {"server": "tests/pgserver.py (local, 127.0.0.1)"}
        with psycopg.connect(url) as con:
            for name in ("server_version", "fsync", "full_page_writes", "synchronous_commit", "shared_buffers"):
                settings[name] = con.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
        yield url, settings


def top_statements(parts: list[dict[str, Any]], n: int = 12) -> list[dict[str, Any]]:
    total: dict[str, list[float]] = {}
    for p in parts:
        for sql, (count, secs) in p["statements"].items():
            entry = total.setdefault(sql, [0, 0.0])
            entry[0] += count
            entry[1] += secs
    rows = sorted(total.items(), key=lambda kv: -kv[1][1])[:n]
    return [{"sql": sql, "calls": int(c), "total_s": round(s, 2), "mean_ms": round(s / c * 1000, 2)}
            for sql, (c, s) in rows]


def run_backend(backend: str, location: str, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    store = build_store(location, args.questions, args.annotators, args.gold, args.active, args.db_threads)
    build_s = time.perf_counter() - t0
    store.close()  # the DuckDB file handed back before the replicas want it
    parts = run_replicas(location, args)
    row = {**merge_replicas(backend, parts, store), "build_s": round(build_s, 1)}
    store.close()
    if args.profile:
        row["profile"] = {
            "statements_by_total_time": top_statements(parts),
            "cprofile_one_annotator_thread": next((p["profile"] for p in parts if p["profile"]), None),
        }
    return row


def compare_backends(args: argparse.Namespace) -> int:
    """PostgreSQL vs the DuckDB file under the same multi-process load (module docstring)."""
    from curation.store.postgres import close_pools, pool_size

    backends = ["postgres", "duckdb"] if args.backend == "postgres" else ["duckdb"]
    load_start = list(os.getloadavg())
    rows: list[dict[str, Any]] = []
    pg_settings: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "postgres":
                with postgres_url(args) as (url, pg_settings):
                    rows.append(run_backend(backend, url, args))
                    close_pools()
            else:
                rows.append(run_backend(backend, str(Path(tmp) / "replicas.duckdb"), args))
    by = {r["backend"]: r for r in rows}
    ratios: dict[str, Any] = {}
    pg, dk = by.get("postgres"), by.get("duckdb")
    if pg and dk:
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            ratios[f"duckdb_over_postgres_{key[:-3]}"] = round(dk[key] / pg[key], 2) if pg[key] else None
        ratios["postgres_over_duckdb_labels_per_s"] = (
            round(pg["labels_per_s"] / dk["labels_per_s"], 2) if pg["labels_per_s"] and dk["labels_per_s"] else None)
    target = None if pg is None else {
        "postgres_p95_le_100ms": pg["p95_ms"] <= 100,
        "postgres_p95_below_duckdb": None if dk is None else pg["p95_ms"] < dk["p95_ms"]}
    result = {
        "benchmark": "labeling across app replicas: submit -> next question ready (server side)",
        "questions": args.questions, "replicas": args.replicas, "annotators": args.annotators,
        "actions_per_annotator": args.actions, "think_ms": args.think_ms, "gold": args.gold,
        "active": args.active, "double_every": args.double_every, "db_threads": args.db_threads,
        "pg_pool_per_replica": pool_size(), "postgres": pg_settings, "target_p95_ms": 100,
        "target_met": target, "ratios": ratios,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "duckdb": duckdb.__version__,
                    "loadavg_at_start": load_start, "loadavg_at_end": list(os.getloadavg()),
                    "note": "the PostgreSQL server runs on the same machine as the replicas"},
        "backends": rows,
    }
    out = args.out or Path(__file__).resolve().parent / "results" / "labeling_backends.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_backends(result, out)
    ok = all(r["lost"] == 0 and r["duplicated"] == 0 and r["over_overlap"] == 0 and not r["n_errors"] for r in rows)
    return 0 if ok else 1


def print_backends(result: dict[str, Any], out: Path) -> None:
    cols = ("backend", "replicas", "actions", "p50_ms", "p95_ms", "p99_ms", "max_ms", "labels_per_s",
            "retries", "store_wait_s", "lost", "duplicated", "over_overlap", "n_errors", "build_s")
    print(f"{result['questions']:,} questions, {result['annotators']} annotators over {result['replicas']} "
          f"processes, {result['actions_per_annotator']} labels each, think {result['think_ms']:g} ms, "
          f"{result['machine']['cpus']} cores")
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in result["backends"]:
        print(" | ".join(f"{r[c]!s:>12}" for c in cols))
        for e in r["errors"][:5]:
            print("  error:", e)
        for s in r.get("profile", {}).get("statements_by_total_time", [])[:8]:
            print(f"  {s['total_s']:>7} s {s['calls']:>6} x {s['mean_ms']:>7} ms  {s['sql'][:80]}")
    for k, v in result["ratios"].items():
        print(f"{k}: {v}x")
    if result["target_met"] is not None:
        print(f"target (PostgreSQL p95 <= 100 ms, below DuckDB's): {result['target_met']}")
    print(f"load average start {result['machine']['loadavg_at_start']}, end {result['machine']['loadavg_at_end']}")
    print(f"wrote {out}")


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
    ap.add_argument("--backend", choices=("postgres", "duckdb"),
                    help="many app replicas: postgres = PostgreSQL and the DuckDB file side by side; "
                         "duckdb = the file alone (writes labeling_backends.json)")
    ap.add_argument("--replicas", type=int, default=3, help="app processes (with --backend)")
    ap.add_argument("--pg-url", help="an EMPTY PostgreSQL database to use instead of a throwaway server")
    ap.add_argument("--pg-fast", dest="pg_durable", action="store_false",
                    help="keep the throwaway server's test settings (fsync and synchronous commit off)")
    ap.add_argument("--profile", action="store_true",
                    help="with --backend: time PostgreSQL statements, cProfile one annotator thread")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON file (default results/labeling.json, or results/labeling_backends.json with --backend)")
    args = ap.parse_args(argv)
    if args.backend:
        if args.replicas < 1 or args.annotators < args.replicas:
            ap.error("--replicas must be >= 1 and <= --annotators")
        return compare_backends(args)
    args.out = args.out or Path(__file__).resolve().parent / "results" / "labeling.json"
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
