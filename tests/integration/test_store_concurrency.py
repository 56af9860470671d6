"""The store under contention: threads of one process and a second process write at once;
every acknowledged label is stored exactly once and nobody fails on a lock."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from curation.store import LOCK_STATS, Store, utcnow
from curation.store.annotations import Annotation, append

pytestmark = pytest.mark.integration

WRITER = r"""
import sys, uuid
from curation.store import Store, utcnow
from curation.store.annotations import Annotation, append
store = Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    ev = f"proc-{i}"
    store.run(lambda con, ev=ev: append(con, [Annotation(
        question_id=f"q{i % 50}", annotator="proc", action="label", label="reasoning",
        source="app", created_at=utcnow(), event_id=ev)]))
    print(ev, flush=True)
"""


def test_threads_and_a_second_process_lose_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.duckdb", lock_timeout=60)
    store.run(lambda con: None)
    acked: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def annotator(n: int) -> None:
        try:
            for i in range(40):
                ev = f"t{n}-{i}-{uuid.uuid4().hex[:6]}"
                store.run(lambda con, ev=ev, i=i: append(con, [Annotation(
                    question_id=f"q{i}", annotator=f"a{n}", action="label", label="knowledge",
                    source="app", created_at=utcnow(), event_id=ev)]))
                with lock:
                    acked.append(ev)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), "150"],
                            stdout=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=annotator, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and not errors, errors
    acked += out.split()
    stored = store.run(lambda con: [r[0] for r in con.execute("SELECT event_id FROM annotations").fetchall()])
    assert sorted(stored) == sorted(acked) and len(stored) == 8 * 40 + 150
    assert LOCK_STATS.max_wait_s < 60
