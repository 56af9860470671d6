"""Soak benchmark: minutes of mixed load on one store, then a consistency check.

Load, all at once against one DuckDB file:
- `--annotators` app sessions (threads of this process, as Streamlit serves them) labeling
  through the app's queue API (`annotate.submit_and_next`), with occasional double submits;
- a second process with 2 more annotators on the same queue (tests/reliability/workers.py);
- the maintainer's commands in a loop as child processes: `curation train --model tfidf`,
  `curation classify`, `curation release build`;
- Label Studio sync (`curation ls push` / `ls pull`) in the loop when LABEL_STUDIO_URL and
  LABEL_STUDIO_API_KEY are set (a running server); otherwise reported as not run.

Prints labels/s, p50/p95/max label latency (submit + next question), lock waits, memory
growth of the app process and the commands' outcomes, then checks every acknowledged label
is stored exactly once and nothing unacknowledged appeared. Writes JSON.

    python benchmarks/soak.py [--minutes 30] [--annotators 20] [--questions 3000]
                              [--out benchmarks/results/soak.json]

Exit code 1 if the consistency check fails or any command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from relkit import CURATION, WORKERS, acks, seed_questions, stats_line  # noqa: E402
from workers import label_for, queue_annotator  # noqa: E402

from curation.store import LOCK_STATS, Store, close_all, utcnow  # noqa: E402
from curation.store.annotations import Annotation, append  # noqa: E402

PROC_ANNOTATORS = ("proc-a", "proc-b")


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def maintainer_loop(db: Path, work: Path, until: float, log: list[dict[str, Any]]) -> None:
    ls = bool(os.environ.get("LABEL_STUDIO_URL") and os.environ.get("LABEL_STUDIO_API_KEY"))
    n = 0
    while time.monotonic() < until:
        n += 1
        model = work / f"model-{n}"
        cmds = [
            ["train", "--labels", "store", "--model", "tfidf", "--out", str(model), "--json"],
            ["classify", "--model", str(model), "--json"],
            ["release", "build", "--version", f"soak-{n}", "--out", str(work / "releases"), "--json"],
        ]
        if ls:
            cmds += [["ls", "push", "soak-batch"], ["ls", "pull"]]
        for args in cmds:
            t0 = time.monotonic()
            p = subprocess.run([str(CURATION), *args, "--db", str(db)], capture_output=True, text=True,
                               timeout=3600)
            log.append({"cmd": " ".join(args[:2]), "rc": p.returncode, "s": round(time.monotonic() - t0, 2),
                        "err": p.stderr[-500:] if p.returncode else ""})
            if time.monotonic() >= until:
                return


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--questions", type=int, default=3000, help="batch size (x (annotators + 2) label slots)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.json")
    ap.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    db = work / "soak.duckdb"
    store = Store(db)
    seed_questions(store, args.questions, prefix="s", batch_id="soak-batch",
                   overlap=args.annotators + len(PROC_ANNOTATORS))
    seeded = seed_questions(store, 12, prefix="seed", split="train")
    store.run(lambda con: append(con, [Annotation(q, "seeder", "label", label_for(q), "app", utcnow(),
                                                  event_id=f"seed:{q}") for q in seeded]))
    seconds = args.minutes * 60
    t0 = time.monotonic()
    until = t0 + seconds
    latencies: list[float] = []
    acked: dict[str, list[str]] = {}
    errors: list[str] = []
    rss: list[tuple[float, float]] = []

    def session(name: str) -> None:
        try:
            acked[name] = queue_annotator(store, name, None, latencies, double_every=11, until=until)
        except BaseException as exc:  # noqa: BLE001 - reported
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    child = subprocess.Popen([sys.executable, str(WORKERS), "queue", "--db", str(db), "--annotators",
                              ",".join(PROC_ANNOTATORS), "--double-every", "7", "--seconds", str(seconds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cmd_log: list[dict[str, Any]] = []
    maint = threading.Thread(target=maintainer_loop, args=(db, work, until, cmd_log), daemon=True)
    threads = [threading.Thread(target=session, args=(f"ann{i:02d}",), daemon=True) for i in range(args.annotators)]
    maint.start()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss.append((round(time.monotonic() - t0, 1), round(rss_mb(), 1)))
        time.sleep(5)
    for t in threads:
        t.join()
    child_out, child_err = child.communicate(timeout=600)
    maint.join(timeout=3600)
    elapsed = time.monotonic() - t0

    # consistency check
    acked_ids = [e for ids in acked.values() for e in ids] + acks(child_out)

    def check(con: Any) -> dict[str, Any]:
        stored = [r[0] for r in con.execute(
            "SELECT event_id FROM annotations WHERE annotator <> 'seeder'").fetchall()]
        dup_pairs = con.execute(
            "SELECT count(*) FROM (SELECT question_id, annotator FROM annotations WHERE annotator <> 'seeder' "
            "GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
        return {"stored": stored, "dup_pairs": int(dup_pairs)}

    got = store.run(check)
    stored = got["stored"]
    lost = len(set(acked_ids) - set(stored))
    extra = len(set(stored) - set(acked_ids))
    dup_events = len(stored) - len(set(stored))
    failed_cmds = [c for c in cmd_log if c["rc"] != 0]
    lat = sorted(latencies)
    warm = [m for s, m in rss if s >= min(30.0, seconds / 4)] or [m for _, m in rss]
    child_stats = stats_line(child_out)
    result = {
        "minutes": round(elapsed / 60, 2),
        "annotators_threads": args.annotators, "annotators_process": len(PROC_ANNOTATORS),
        "labels": len(acked_ids), "labels_per_s": round(len(acked_ids) / elapsed, 2),
        "latency_p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "latency_p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
        "latency_max_ms": round(1000 * lat[-1], 1) if lat else None,
        "lock_wait_max_s_app": round(LOCK_STATS.max_wait_s, 3),
        "lock_wait_total_s_app": round(LOCK_STATS.total_wait_s, 1),
        "lock_conflict_retries_app": LOCK_STATS.retries,
        "lock_wait_max_s_child": child_stats.get("max_wait_s"),
        "rss_mb_start": warm[0] if warm else None, "rss_mb_end": warm[-1] if warm else None,
        "rss_growth_mb": round(warm[-1] - warm[0], 1) if warm else None,
        "commands": {c: sum(1 for x in cmd_log if x["cmd"] == c) for c in sorted({x["cmd"] for x in cmd_log})},
        "command_max_s": {c: max(x["s"] for x in cmd_log if x["cmd"] == c) for c in sorted({x["cmd"] for x in cmd_log})},
        "commands_failed": failed_cmds[:5],
        "label_studio_sync": "run" if any(c["cmd"].startswith("ls") for c in cmd_log) else "not run (no LABEL_STUDIO_URL/API_KEY)",
        "session_errors": errors[:5], "child_rc": child.returncode, "child_err": child_err[-500:] if child.returncode else "",
        "consistency": {"acknowledged": len(acked_ids), "stored": len(stored), "lost": lost,
                        "unacknowledged_extra": extra, "duplicate_event_ids": dup_events,
                        "duplicate_question_annotator": got["dup_pairs"]},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_at_end": os.getloadavg()},
    }
    ok = (lost == extra == dup_events == got["dup_pairs"] == 0 and not failed_cmds and not errors
          and child.returncode == 0)
    result["ok"] = ok
    rows = [("labels", f"{result['labels']:,}"), ("labels/s", result["labels_per_s"]),
            ("label latency p50 / p95 / max (ms)", f"{result['latency_p50_ms']} / {result['latency_p95_ms']} / {result['latency_max_ms']}"),
            ("max lock wait app / child (s)", f"{result['lock_wait_max_s_app']} / {result['lock_wait_max_s_child']}"),
            ("RSS start -> end (MB)", f"{result['rss_mb_start']} -> {result['rss_mb_end']} ({result['rss_growth_mb']:+})"),
            ("commands run", result["commands"]), ("slowest command (s)", result["command_max_s"]),
            ("commands failed", len(failed_cmds)), ("Label Studio sync", result["label_studio_sync"]),
            ("lost / extra / dup events / dup pairs", f"{lost} / {extra} / {dup_events} / {got['dup_pairs']}"),
            ("consistency", "OK" if ok else "FAILED")]
    width = max(len(k) for k, _ in rows)
    print(f"soak: {result['minutes']} min, {args.annotators} app sessions + {len(PROC_ANNOTATORS)} in a second process")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written: {args.out}")
    if not args.keep:
        import shutil

        close_all()  # the store lingers open for a moment after its last use
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
