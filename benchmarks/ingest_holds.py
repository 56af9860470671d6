"""How long an ingest makes everyone else wait, and how much memory it takes (issue #19).

One synthetic JSONL of N tiny questions (default 1M) is ingested into a fresh store twice,
each in its own process, while a second process reads the store every 20 ms the way the app
does (a short `Store.run`) and records how long each read waited:

- ours: chunked holds (`LOOKUP_CHUNK` keys, `STAGE_CHUNK` rows), rows hidden until the last;
- one hold: the same code with both chunk sizes set above N, i.e. the whole write in one
  hold, as ingest did before (the baseline).

Per variant: wall time, the longest store hold of the ingest, the reader's p50 / p95 / max
wait, and the ingest process's peak RSS. Ratios compare the two in one run (the machine is
shared: absolute times move with its load, which is printed).

    python benchmarks/ingest_holds.py [--n 1000000]

Writes benchmarks/results/ingest_holds.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

INGEST = r"""
import json, resource, sys, time
from curation import ingest
from curation.store import Store
db, path, chunked = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if not chunked:
    ingest.LOOKUP_CHUNK = ingest.STAGE_CHUNK = 10**12
holds = []
real = Store.run
def run(self, fn):
    def timed(con):
        t = time.perf_counter()
        try:
            return fn(con)
        finally:
            holds.append(time.perf_counter() - t)
    return real(self, timed)
Store.run = run
t = time.perf_counter()
report = ingest.ingest_paths(Store(db), [path])
print(json.dumps({"wall_s": time.perf_counter() - t, "n_new": report.n_new, "holds": len(holds),
                  "longest_hold_s": max(holds), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

READER = r"""
import json, sys, time
from curation.store import Store
db, stop = sys.argv[1], sys.argv[2]
store = Store(db, create=False, lock_timeout=600)
waits = []
import os
while not os.path.exists(stop):
    t = time.perf_counter()
    store.run(lambda con: con.execute("SELECT count(*) FROM questions WHERE id = 'x'").fetchall())
    waits.append(time.perf_counter() - t)
    time.sleep(0.02)
print(json.dumps(waits))
"""


def synth(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"t-{i}", "dataset_name": "medqa", "question": f"Question {i}: which one?",
                                "options": {"A": f"a{i}", "B": f"b{i}"}, "answer_idx": "A"}) + "\n")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def variant(tmp: Path, data: Path, chunked: bool) -> dict[str, float]:
    from curation.store import Store

    db = tmp / f"{'chunked' if chunked else 'onehold'}.duckdb"
    Store(db, create=True).run(lambda con: None)
    stop = tmp / f"{db.stem}.stop"
    env = dict(os.environ, PYTHONPATH=str(ROOT), CURATION_STORE_LINGER_S="0")
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db), str(stop)], stdout=subprocess.PIPE, text=True, env=env)
    time.sleep(2.0)  # the reader is warm
    out = subprocess.run([sys.executable, "-c", INGEST, str(db), str(data), "1" if chunked else "0"],
                         capture_output=True, text=True, env=env, check=True)
    stop.touch()
    waits = json.loads(reader.communicate(timeout=600)[0])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(reader_reads=len(waits), reader_p50_ms=pct(waits, 0.5) * 1e3, reader_p95_ms=pct(waits, 0.95) * 1e3,
                  reader_max_ms=max(waits) * 1e3)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ingest_holds.json"))
    args = ap.parse_args()
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "tiny.jsonl"
    synth(data, args.n)
    ours, base = variant(tmp, data, True), variant(tmp, data, False)
    result = {
        "n_questions": args.n, "file_mb": round(data.stat().st_size / 1e6, 1),
        "ours_chunked": {k: round(v, 3) for k, v in ours.items()},
        "baseline_one_hold": {k: round(v, 3) for k, v in base.items()},
        "ratios_baseline_over_ours": {k: round(base[k] / ours[k], 2) for k in
                                      ("longest_hold_s", "reader_max_ms", "reader_p95_ms", "wall_s", "peak_rss_mb")},
        "load_average_1min_at_start": round(load, 2),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    table = Table(title=f"Ingest {args.n:,} tiny questions ({result['file_mb']} MB) while an app-like reader polls")
    for col in ("measure", "ours (chunked)", "one hold (baseline)", "baseline / ours"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for key, label, fmt in (("wall_s", "ingest wall time", "{:.1f} s"), ("holds", "store holds", "{:.0f}"),
                            ("longest_hold_s", "longest hold", "{:.2f} s"), ("reader_p50_ms", "reader wait p50", "{:.0f} ms"),
                            ("reader_p95_ms", "reader wait p95", "{:.0f} ms"), ("reader_max_ms", "reader wait max", "{:.0f} ms"),
                            ("peak_rss_mb", "ingest peak RSS", "{:.0f} MB")):
        ratio = f"{base[key] / ours[key]:.2f}x" if ours[key] else "-"
        table.add_row(label, fmt.format(ours[key]), fmt.format(base[key]), ratio)
    Console().print(table)
    Console().print(f"load average (1 min) at start: {load:.2f} on {os.cpu_count()} cores")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
