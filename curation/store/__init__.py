"""The DuckDB adapter: the only package that opens the store file.

DuckDB lets one process at a time hold a database file, so nothing here keeps it open
longer than one unit of work: `Store.run(fn)` opens the file, runs `fn(con)` inside a
transaction, commits and closes. Query functions for each area live in the sibling
modules (`questions`, `annotations`, ...) and take an open connection.

Taking turns between processes. Every unit of work first takes an exclusive `flock` on
`<store>.lock`: a process waiting for the store sleeps in the kernel and is woken when the
holder finishes, instead of polling DuckDB's own lock (which a busy process could hold
almost continuously, starving the others). Threads of one process share a hold (DuckDB
serves several connections of one process at once), but a hold that has lasted longer than
`SHARE_WINDOW_S` admits no new threads until it drains and the file is handed over, so
another process waits at most about one unit of work per thread. DuckDB's own lock errors
(another program holding the file) are still retried with backoff until `lock_timeout`.
"""

import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from curation.config import db_path
from curation.errors import StoreBusyError, StoreError
from curation.store.migrations import MIGRATIONS

T = TypeVar("T")

_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()
SHARE_WINDOW_S = 0.05


class _FileGate:
    """Cross-process turn-taking on a store file (see the module docstring)."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self.local = threading.local()  # per-thread depth: a nested unit reuses the hold
        self.cond = threading.Condition()
        self.holders = 0
        self.fd: int | None = None
        self.since = 0.0
        self.draining = False

    def acquire(self) -> float:
        """Block until this thread may use the file; return the seconds waited."""
        start = time.monotonic()
        depth = getattr(self.local, "depth", 0)
        self.local.depth = depth + 1
        if depth:
            return 0.0
        with self.cond:
            while self.draining or (self.holders and time.monotonic() - self.since > SHARE_WINDOW_S):
                if self.holders:
                    self.draining = True
                self.cond.wait(0.5)
            if self.holders == 0:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self.fd = fd
                self.since = time.monotonic()
            self.holders += 1
        return time.monotonic() - start

    def release(self) -> None:
        self.local.depth -= 1
        if self.local.depth:
            return
        with self.cond:
            self.holders -= 1
            if self.holders == 0 and self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
                self.fd = None
                handed_over = self.draining
                self.draining = False
                self.cond.notify_all()
                if handed_over:
                    # let a process that was woken by the unlock take its turn first
                    time.sleep(0.002)


_GATES: dict[str, _FileGate] = {}
_GATES_LOCK = threading.Lock()


def _gate(path: Path) -> _FileGate:
    with _GATES_LOCK:
        gate = _GATES.get(str(path))
        if gate is None:
            gate = _GATES[str(path)] = _FileGate(path.with_name(path.name + ".lock"))
        return gate


def utcnow() -> datetime:
    """Naive UTC timestamp (DuckDB TIMESTAMP columns hold UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    if isinstance(exc, duckdb.Error) and "Unique file handle conflict" in text:
        return True  # another thread of this process is opening or closing the file: transient
    return isinstance(exc, duckdb.IOException) and (
        "Could not set lock" in text or "Conflicting lock" in text
    )


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.TransactionException) or (
        "Conflict on" in str(exc) and "write-write" in str(exc).lower()
    )


@dataclass
class LockStats:
    """How long this process waited on other processes' locks (for benchmarks)."""

    retries: int = 0
    total_wait_s: float = 0.0
    max_wait_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, waited: float, retries: int) -> None:
        with self._lock:
            self.retries += retries
            self.total_wait_s += waited
            self.max_wait_s = max(self.max_wait_s, waited)


LOCK_STATS = LockStats()


class Store:
    """A DuckDB store file. Cheap to create; holds no open connection."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, lock_timeout: float | None = None) -> None:
        self.path = db_path(path).expanduser().resolve()
        if lock_timeout is None:
            lock_timeout = float(os.environ.get("CURATION_LOCK_TIMEOUT", "120"))
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- connections -------------------------------------------------------------------
    def _open(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if read_only and not self.path.exists():
            raise StoreError(
                f"{self.path}: no store here yet; run `curation ingest` first or pass --db / set CURATION_DB"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        delay = 0.005
        retries = 0
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"{self.path}: cannot open the store: {exc}") from exc
                waited = time.monotonic() - start
                if waited > self.lock_timeout:
                    LOCK_STATS.record(waited, retries)
                    raise StoreBusyError(
                        f"{self.path}: another process has held the store for {waited:.0f} s; "
                        "retry when it finishes (raise CURATION_LOCK_TIMEOUT to wait longer)"
                    ) from exc
                retries += 1
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)
        if retries:
            LOCK_STATS.record(time.monotonic() - start, retries)
        self._migrate(con)
        return con

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        key = str(self.path)
        if key in _MIGRATED:
            return
        with _MIGRATE_LOCK:
            if key in _MIGRATED:
                return
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
            )
            applied = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
            for migration in MIGRATIONS:
                if migration.version in applied:
                    continue
                con.execute("BEGIN TRANSACTION")
                try:
                    for statement in migration.statements:
                        con.execute(statement)
                    con.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [migration.version, migration.name, utcnow()],
                    )
                    con.execute("COMMIT")
                except Exception:
                    con.execute("ROLLBACK")
                    raise
            _MIGRATED.add(key)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file for one unit of work inside a transaction; commit, then close."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        gate = _gate(self.path)
        waited = gate.acquire()
        if waited > 0.001:
            LOCK_STATS.record(waited, 0)
        try:
            con = self._open()
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()
        finally:
            gate.release()

    def run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `fn(con)` as one transaction, retrying the whole unit on a write conflict."""
        start = time.monotonic()
        delay = 0.005
        attempts = 0
        while True:
            try:
                with self.connect() as con:
                    return fn(con)
            except duckdb.Error as exc:
                if not _is_conflict(exc) or time.monotonic() - start > self.lock_timeout:
                    raise
                attempts += 1
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)
                LOCK_STATS.record(0.0, 1)

    def schema_version(self) -> int:
        return self.run(lambda con: con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0])


def exists(path: str | os.PathLike[str]) -> bool:
    return Path(path).exists()
