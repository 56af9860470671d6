"""Limits of the store, round two: a stuck holder, a mistyped --db, a question in two splits,
and who may read the store's files.

- Every wait for the store ends within `CURATION_LOCK_TIMEOUT`, whoever holds it (here a
  process stopped with SIGSTOP while it holds the file), in an error naming the holder.
- `--db` (or `CURATION_DB`) naming a missing file is an error, except for the commands that
  create a store (`ingest`, `demo`, `store init`); nothing is created on disk.
- Ingesting a question already stored under another split is refused, naming the ids and
  both splits: an id is never both training and evaluation data.
- The store file, its write-ahead log and its `.lock`/`.wait` files are private (0600): the
  store holds password hashes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from curation.cli import app
from curation.errors import ConfigError, IngestError, StoreBusyError
from curation.ingest import ingest_paths
from curation.store import Store, close_all

pytestmark = pytest.mark.reliability
runner = CliRunner()

HOLDER = r"""
import os, signal, sys
from curation.store import Store
def hold(con):
    con.execute("SELECT count(*) FROM questions").fetchall()
    os.kill(os.getpid(), signal.SIGSTOP)  # stuck while holding the store
Store(sys.argv[1]).run(hold)
"""


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def _bounded(fn: Callable[[], Any], limit: float) -> tuple[Any, BaseException | None, float]:
    """Run `fn` in a thread; fail the test (instead of hanging it) if it is still blocked after
    `limit` seconds. Returns (result, exception, seconds)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    t0 = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    seconds = time.monotonic() - t0
    assert not thread.is_alive(), f"still blocked after {seconds:.0f} s: the wait for the store has no limit"
    return out.get("result"), out.get("error"), seconds


@pytest.fixture
def stopped_holder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A store held by a child process that stopped itself (SIGSTOP) while holding it."""
    db = tmp_path / "x.duckdb"
    Store(db).run(lambda con: None)
    close_all()  # hand the file back now (no linger)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)])
    try:
        deadline = time.monotonic() + 60
        while _state(proc.pid) != "T":
            assert proc.poll() is None and time.monotonic() < deadline, "the holder did not take the store"
            time.sleep(0.05)
        yield db, proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_stopped_holder_gives_a_clear_error_within_the_timeout(stopped_holder: tuple[Path, int]) -> None:
    db, pid = stopped_holder
    store = Store(db, lock_timeout=2)
    _, error, seconds = _bounded(lambda: store.run(lambda con: con.execute("SELECT 1").fetchall()), 20)
    assert isinstance(error, StoreBusyError), error
    assert seconds < 6
    text = str(error)
    assert str(db) in text and f"pid {pid}" in text and "stopped" in text and "CURATION_LOCK_TIMEOUT" in text
    assert "python -c" in text  # the holder's command line, from its record in <store>.lock
    # a second attempt (the annotator clicks again) is bounded too, and no waiting threads pile up
    _, error, seconds = _bounded(lambda: store.run(lambda con: None), 20)
    assert isinstance(error, StoreBusyError) and seconds < 6
    assert sum(t.name == "curation-store-wait" for t in threading.enumerate()) <= 1


def test_many_waiting_sessions_each_give_up_at_their_own_deadline(stopped_holder: tuple[Path, int]) -> None:
    """Eight app sessions (threads of one process) waiting at once: all get the error after
    about the timeout, not one timeout after another."""
    db, _ = stopped_holder
    errors: list[BaseException] = []

    def session() -> None:
        try:
            Store(db, lock_timeout=2).run(lambda con: None)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    def all_sessions() -> None:
        threads = [threading.Thread(target=session) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    _, error, seconds = _bounded(all_sessions, 30)
    assert error is None and seconds < 8
    assert len(errors) == 8 and all(isinstance(e, StoreBusyError) for e in errors)


def test_the_store_is_usable_again_once_the_stuck_holder_is_gone(stopped_holder: tuple[Path, int]) -> None:
    db, pid = stopped_holder
    _, error, _ = _bounded(lambda: Store(db, lock_timeout=1).run(lambda con: None), 20)
    assert isinstance(error, StoreBusyError)
    os.kill(pid, signal.SIGKILL)  # the kernel drops its lock
    t0 = time.monotonic()
    rows, error, _ = _bounded(lambda: Store(db, lock_timeout=10).run(
        lambda con: con.execute("SELECT count(*) FROM questions").fetchall()), 30)
    assert error is None and rows == [(0,)] and time.monotonic() - t0 < 5


def test_cli_commands_stop_waiting_too(stopped_holder: tuple[Path, int]) -> None:
    db, pid = stopped_holder
    env = {"CURATION_LOCK_TIMEOUT": "2"}
    result, error, seconds = _bounded(lambda: runner.invoke(app, ["stats", "--db", str(db)], env=env), 20)
    assert error is None and result.exit_code != 0 and seconds < 6
    assert f"pid {pid}" in result.output and "Traceback" not in result.output


def test_lock_timeout_setting_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATION_LOCK_TIMEOUT", "abc")
    with pytest.raises(ConfigError, match="CURATION_LOCK_TIMEOUT='abc'"):
        Store(tmp_path / "x.duckdb")
    result = runner.invoke(app, ["stats", "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code != 0 and "CURATION_LOCK_TIMEOUT" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("CURATION_LOCK_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match="CURATION_LOCK_TIMEOUT"):
        Store(tmp_path / "x.duckdb")


# --- a mistyped --db ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["stats"], ["users", "list"], ["release", "list"], ["al", "status"], ["agreement"],
    ["train", "--labels", "store", "--model", "tfidf", "--out", "m"],
])
def test_a_missing_db_is_an_error_and_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "nonexistent" / "dir" / "x.duckdb"
    result = runner.invoke(app, [*args, "--db", str(db)])
    assert result.exit_code != 0, result.output
    assert str(db) in result.output and "curation store init" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "nonexistent").exists()


def test_a_missing_curation_db_is_an_error_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATION_DB", str(tmp_path / "typo.duckdb"))
    result = runner.invoke(app, ["stats"])
    assert result.exit_code != 0 and "typo.duckdb" in result.output
    assert list(tmp_path.iterdir()) == []


def test_store_init_and_ingest_create_a_store(tmp_path: Path) -> None:
    db = tmp_path / "new" / "x.duckdb"
    result = runner.invoke(app, ["store", "init", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["created"] is True and db.is_file()
    again = runner.invoke(app, ["store", "init", "--db", str(db), "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["created"] is False
    assert runner.invoke(app, ["stats", "--db", str(db)]).exit_code == 0
    path = _jsonl(tmp_path / "q.jsonl", [_row(1)])
    other = tmp_path / "other" / "y.duckdb"
    assert runner.invoke(app, ["ingest", str(path), "--db", str(other)]).exit_code == 0 and other.is_file()
    dry = tmp_path / "dry.duckdb"
    result = runner.invoke(app, ["ingest", str(path), "--db", str(dry), "--dry-run", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)[0]["n_new"] == 1 and not dry.exists()


# --- a question in two splits -----------------------------------------------------------------

def _row(i: int) -> dict[str, Any]:
    return {"id": f"pq-{i}", "dataset_name": "pubmedqa", "question": f"Does treatment {i} work?",
            "options": {"A": "yes", "B": "no", "C": "maybe"}, "answer_idx": "A", "answer": "yes",
            "source": "t"}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _splits(store: Store) -> dict[str, str]:
    return dict(store.run(lambda con: con.execute("SELECT id, split FROM questions").fetchall()))


def test_a_question_stored_under_another_split_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    train = _jsonl(tmp_path / "train.jsonl", [_row(i) for i in range(3)])
    evaluation = _jsonl(tmp_path / "eval.jsonl", [_row(i) for i in range(5)])  # 3 stored + 2 new
    ingest_paths(store, [train], split="train")
    before = _splits(store)
    with pytest.raises(IngestError) as info:
        ingest_paths(store, [evaluation], split="test")
    text = str(info.value)
    for i in range(3):
        assert f"pq-{i}" in text
    assert "'train'" in text and "'test'" in text and "eval.jsonl:1" in text
    assert _splits(store) == before  # nothing written, the 2 new ones neither
    # the same split again is a plain idempotent re-ingest
    assert ingest_paths(store, [train], split="train").n_unchanged == 3


def test_one_ingest_cannot_put_an_id_in_two_splits(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    a = _jsonl(tmp_path / "a.jsonl", [{**_row(1), "split": "train"}])
    b = _jsonl(tmp_path / "b.jsonl", [{**_row(1), "split": "test"}])
    with pytest.raises(IngestError, match="pq-1.*'train'.*'test'|pq-1.*'test'.*'train'"):
        ingest_paths(store, [a, b])
    assert not store.path.exists() or _splits(store) == {}


def test_cli_names_the_split_conflict(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    path = _jsonl(tmp_path / "q.jsonl", [_row(i) for i in range(2)])
    assert runner.invoke(app, ["ingest", str(path), "--split", "train", "--db", str(db)]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(path), "--split", "test", "--db", str(db)])
    assert result.exit_code == 2 and "pq-0" in result.output and "'train'" in result.output
    assert "unchanged" not in result.output


# --- file modes --------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_store_and_its_side_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    old = os.umask(0o022)
    try:
        store = Store(db, linger=30)  # keep the instance open so the write-ahead log stays
        store.run(lambda con: con.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ('ann', 'annotator', 'h', now())"))
        wal = db.with_name(db.name + ".wal")
        assert wal.exists()
        assert _mode(wal) == 0o600
        store.close()
        assert _mode(db) == 0o600
        assert _mode(db.with_name(db.name + ".lock")) == 0o600
        # a waiter's announcement file
        db.with_name(db.name + ".wait").touch()
        for p in tmp_path.iterdir():
            if p.name.startswith("p.duckdb") and p.is_file():
                os.chmod(p, 0o644)  # a store made by an older version
        Store(db).run(lambda con: None)
        close_all()
        assert _mode(db) == 0o600 and _mode(db.with_name(db.name + ".lock")) == 0o600
        assert _mode(db.with_name(db.name + ".wait")) == 0o600
        # the app's queue commits inside its unit of work (a write-ahead log made there too)
        from curation.store.queue import run_serialized

        assert not wal.exists()
        run_serialized(Store(db, linger=30), lambda con: con.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ('bob', 'annotator', 'h', now())"))
        assert wal.exists() and _mode(wal) == 0o600
        close_all()
    finally:
        os.umask(old)


def test_the_holder_record_hides_secret_options() -> None:
    from curation.store.gate import command_line

    line = command_line(["/venv/bin/curation", "release", "publish", "--token", "hf_SECRET", "--api-key=ls_SECRET",
                         "--repo", "me/x y"])
    assert line == "curation release publish --token *** --api-key=*** --repo 'me/x y'"
    assert command_line(["/x/streamlit/__main__.py", "run", "ui/app.py"]) == "python -m streamlit run ui/app.py"
