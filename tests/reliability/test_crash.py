"""SIGKILL at random points: nothing acknowledged is lost, nothing is half-written, and the
next run completes without duplicates.

The child (tests/reliability/workers.py) prints `ACK <event_id>` only after the
transaction holding that label has committed, so everything the parent read before the
kill was acknowledged to the user and must survive it.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from relkit import acks, seed_questions, worker

from curation.store import Store

pytestmark = pytest.mark.reliability

SEEDS = (1, 2, 3)


def _kill_after_acks(proc: Any, n_acks: int, extra_s: float, timeout: float = 120) -> list[str]:
    """Read ACK lines until `n_acks` were seen, wait `extra_s` more, SIGKILL; return all ACKs read."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while len(seen) < n_acks and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("ACK "):
            seen.append(line.split(" ", 1)[1].strip())
    time.sleep(extra_s)
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    return seen + acks(rest)


def _labels(store: Store) -> list[tuple[str, str, str]]:
    return store.run(lambda con: con.execute(
        "SELECT event_id, question_id, annotator FROM annotations ORDER BY seq").fetchall())


@pytest.mark.parametrize("seed", SEEDS)
def test_labeling_process_killed(tmp_path: Path, seed: int, db_location: str) -> None:
    rng = random.Random(seed)
    db = db_location  # a DuckDB file, then a PostgreSQL database (a replica killed mid-write)
    store = Store(db)
    qids = seed_questions(store, 60, prefix="k")
    qfile = tmp_path / "qids.txt"
    qfile.write_text("\n".join(qids))
    args = ["append", "--db", str(db), "--annotator", "ann", "--questions-file", str(qfile)]
    acked = _kill_after_acks(worker(args), rng.randint(1, 40), rng.uniform(0.0, 0.3))

    rows = _labels(store)  # the store opens after the kill
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored))
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged labels lost, e.g. {sorted(missing)[:3]}"

    # the next run (same deterministic event ids) completes: every label exactly once
    proc = worker(args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    rows = _labels(store)
    assert sorted(r[0] for r in rows) == sorted(f"ann:{q}" for q in qids)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_queue_process_killed(tmp_path: Path, seed: int, db_location: str) -> None:
    """The app's queue path (lease + label in one transaction) under SIGKILL."""
    rng = random.Random(seed)
    db = db_location
    store = Store(db)
    qids = seed_questions(store, 20, prefix="kq", batch_id="b", overlap=2)
    args = ["queue", "--db", str(db), "--annotators", "ann1,ann2"]
    acked = _kill_after_acks(worker(args), rng.randint(1, 25), rng.uniform(0.0, 0.3))
    stored = [r[0] for r in _labels(store)]
    assert len(stored) == len(set(stored))
    assert not set(acked) - set(stored)
    proc = worker(args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    rows = _labels(store)
    pairs = [(r[1], r[2]) for r in rows]
    assert len(pairs) == len(set(pairs)), "a question labeled twice by one annotator after the restart"
    assert set(pairs) == {(q, a) for q in qids for a in ("ann1", "ann2")}


def _big_file(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "id": f"big-{i:06d}", "dataset_name": "medmcqa", "split": "train",
                "question": f"Synthetic question {i}: which of the following is associated with finding {i * 7919 % 100003}?",
                "options": {"A": f"alpha {i}", "B": f"beta {i}", "C": f"gamma {i}", "D": f"delta {i}"},
                "answer_idx": "B", "answer": f"beta {i}",
            }) + "\n")
    return path


def _counts(store: Store) -> tuple[int, int, int]:
    return store.run(lambda con: con.execute(
        "SELECT (SELECT count(*) FROM questions), (SELECT count(DISTINCT id) FROM questions), "
        "(SELECT count(*) FROM ingests)").fetchall()[0])


N_BIG = 6000


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A large ingest file and how long a full ingest of it takes here."""
    d = tmp_path_factory.mktemp("big")
    path = _big_file(d / "big.jsonl", N_BIG)
    proc = worker(["ingest", "--db", str(d / "ref.duckdb"), str(path)])
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return path, time.monotonic() - t0


@pytest.mark.parametrize("seed", SEEDS)
def test_ingest_killed(tmp_path: Path, big_file: tuple[Path, float], seed: int, db_location: str) -> None:
    path, full_s = big_file
    db = db_location
    store = Store(db)
    seed_questions(store, 3, prefix="pre")  # the store already holds other work
    proc = worker(["ingest", "--db", str(db), str(path)])
    time.sleep(random.Random(seed).uniform(0.3, max(0.5, full_s * 0.95)))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    total, distinct, ingests = _counts(store)
    assert total == distinct
    assert total in (3, 3 + N_BIG), f"half-ingested: {total - 3} of {N_BIG} rows"
    if "DONE" in out:
        assert total == 3 + N_BIG
    # the next run completes without duplicates
    proc = worker(["ingest", "--db", str(db), str(path)])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    total, distinct, _ = _counts(store)
    assert total == distinct == 3 + N_BIG
