"""Child processes for the reliability tests and the soak benchmark (run as scripts).

Each worker prints one line per acknowledged unit of work *after* its transaction has
committed, and flushes it, so a parent that SIGKILLs the worker knows exactly which work
the worker was told had been saved:

    python tests/reliability/workers.py queue  --db D --annotators a,b [--max N]
        label through the app's queue API (`annotate.fetch_next` / `submit_and_next`), one
        thread per annotator; prints `ACK <event_id>` per recorded label.
    python tests/reliability/workers.py append --db D --annotator A --questions q1,q2,... | --questions-file F
        one `annotations.append` transaction per label; prints `ACK <event_id>`.
    python tests/reliability/workers.py ingest --db D FILE...
        `ingest_paths` (one all-or-nothing transaction); prints `DONE <ingest_id>`.
    python tests/reliability/workers.py ls-pull --db D --url U --project P
        `curation.labelstudio` pull; prints `DONE`.

The last line is `STATS {json}` (lock waits seen by this process) when the worker ends.
Labels are deterministic per question (`label_for`) so majority votes never tie.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from curation.services import annotate  # noqa: E402
from curation.store import LOCK_STATS, Store, utcnow  # noqa: E402

_PRINT = threading.Lock()


def label_for(question_id: str) -> str:
    """A fixed label per question (so every annotator agrees and majorities never tie)."""
    return "reasoning" if hashlib.md5(question_id.encode()).digest()[0] % 2 else "knowledge"


def say(line: str) -> None:
    with _PRINT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def queue_annotator(
    store: Store, annotator: str, max_labels: int | None, latencies: list[float] | None = None,
    double_every: int = 0, ack: Any = None, until: float | None = None,
) -> list[str]:
    """Label through the queue until it is empty (or `max_labels`); return acknowledged ids.

    Every `double_every`-th label is submitted twice with the same event id (a double click):
    the second call must report `recorded=False`.
    """

    done: list[str] = []
    state = annotate.fetch_next(store, annotator)
    n = 0
    while state["task"] is not None and (max_labels is None or n < max_labels) and (
        until is None or time.monotonic() < until
    ):
        qid = state["task"]["question_id"]
        eid = f"{annotator}:{qid}:{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        state = annotate.submit_and_next(store, annotator, qid, action="label", event_id=eid, label=label_for(qid))
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
        if not state["recorded"]:
            raise AssertionError(f"{eid}: first submit not recorded")
        done.append(eid)
        if ack is not None:
            ack(eid)
        n += 1
        if double_every and n % double_every == 0:
            again = annotate.submit_and_next(store, annotator, qid, action="label", event_id=eid, label=label_for(qid))
            if again["recorded"]:
                raise AssertionError(f"{eid}: a repeated event id was recorded twice")
            state = again
    return done


def cmd_queue(args: argparse.Namespace) -> None:
    store = Store(args.db)
    errors: list[BaseException] = []
    until = time.monotonic() + args.seconds if args.seconds else None

    def run(name: str) -> None:
        try:
            queue_annotator(store, name, args.max, double_every=args.double_every,
                            ack=lambda eid: say(f"ACK {eid}"), until=until)
        except BaseException as exc:  # reported below, the parent fails the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in args.annotators.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def cmd_append(args: argparse.Namespace) -> None:
    from curation.store.annotations import Annotation, append

    if args.questions_file:
        qids = Path(args.questions_file).read_text().split()
    else:
        qids = args.questions.split(",")
    store = Store(args.db)
    for qid in qids:
        eid = f"{args.annotator}:{qid}"
        row = Annotation(qid, args.annotator, "label", label_for(qid), "import", utcnow(), event_id=eid)

        def write(con: Any, row: Annotation = row) -> int:
            return append(con, [row])

        store.run(write)
        say(f"ACK {eid}")


def cmd_ingest(args: argparse.Namespace) -> None:
    from curation.ingest import ingest_paths

    report = ingest_paths(Store(args.db), args.paths)
    say(f"DONE {report.ingest_id} {report.n_new}")


def cmd_ls_pull(args: argparse.Namespace) -> None:
    from curation import labelstudio as lsmod

    results = lsmod.pull(Store(args.db), lsmod.open_api(args.url, args.key), project=args.project,
                         page_size=args.page_size)
    say(f"DONE {len(results)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("queue")
    a.add_argument("--db", required=True)
    a.add_argument("--annotators", required=True)
    a.add_argument("--max", type=int, default=None)
    a.add_argument("--double-every", type=int, default=0)
    a.add_argument("--seconds", type=float, default=None, help="stop after this long")
    a.set_defaults(fn=cmd_queue)
    b = sub.add_parser("append")
    b.add_argument("--db", required=True)
    b.add_argument("--annotator", required=True)
    b.add_argument("--questions", default="")
    b.add_argument("--questions-file", default=None)
    b.set_defaults(fn=cmd_append)
    c = sub.add_parser("ingest")
    c.add_argument("--db", required=True)
    c.add_argument("paths", nargs="+")
    c.set_defaults(fn=cmd_ingest)
    d = sub.add_parser("ls-pull")
    d.add_argument("--db", required=True)
    d.add_argument("--url", required=True)
    d.add_argument("--key", required=True)
    d.add_argument("--project", default=None)
    d.add_argument("--page-size", type=int, default=1000)
    d.set_defaults(fn=cmd_ls_pull)
    args = p.parse_args(argv)
    args.fn(args)
    say("STATS " + json.dumps({"max_wait_s": LOCK_STATS.max_wait_s, "total_wait_s": LOCK_STATS.total_wait_s,
                               "retries": LOCK_STATS.retries}))


if __name__ == "__main__":
    main()
