"""The DuckDB adapter: the only package that opens the store file.

DuckDB lets one process at a time hold a database file, so no process here keeps it from
another longer than one unit of work. `Store.run(fn)` takes the file, runs `fn(con)` inside
a transaction and commits. Query functions for each area live in the sibling modules
(`questions`, `annotations`, ...) and take an open connection.

Taking turns between processes (`_FileGate`). Every unit of work first takes an exclusive
`flock` on `<store>.lock`: a process waiting for the store sleeps in the kernel and is
woken when the holder lets go, instead of polling DuckDB's own lock (which a busy process
could hold almost continuously, starving the others). While it waits it also holds a
shared `flock` on `<store>.wait`, which is how the holder learns that someone is waiting.

Keeping the file warm. Opening a DuckDB instance costs ~35 ms on this machine whatever the
file holds (building the built-in function catalog), and a cold instance has an empty
buffer pool, so opening per unit of work would dominate a labeling action (see
`benchmarks/labeling.py`). A process therefore keeps its instance open after a unit
finishes for at most `linger` seconds (`CURATION_STORE_LINGER_S`, default 2) and hands the
file over as soon as another process is waiting: an idle holder checks `<store>.wait`
every few milliseconds, closes its instance (checkpointing the write-ahead log) and
unlocks. Threads of one process share the open instance (a cursor each); a hold that has
lasted longer than `SHARE_WINDOW_S` admits no new threads while another process waits, so
it drains and the file is handed over, and each side waits at most about one unit of work
per thread. DuckDB's own lock errors (another program holding the file outside this
protocol) are still retried with backoff until `lock_timeout`.
"""

import atexit
import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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
POLL_S = 0.005


def linger_seconds() -> float:
    """How long an idle process keeps the store open when nobody else wants it."""
    raw = os.environ.get("CURATION_STORE_LINGER_S", "2")
    try:
        value = float(raw)
    except ValueError as exc:
        raise StoreError(f"CURATION_STORE_LINGER_S={raw!r} is not a number of seconds") from exc
    return max(0.0, value)


def _instance_config(threads: int | None) -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB settings for a new instance: `threads` worker threads if given."""
    return {} if threads is None else {"threads": threads}


def threads_setting(explicit: int | None = None) -> int | None:
    """Worker threads for this process's DuckDB instance: `explicit`, else
    `$CURATION_DB_THREADS`, else DuckDB's default (one per core). The app uses 1: its many
    small queries run ~2x faster without scheduling between cores (benchmarks/labeling.py),
    while batch commands (ingest, release, stats) gain from every core."""
    if explicit is None:
        raw = os.environ.get("CURATION_DB_THREADS", "").strip()
        if not raw:
            return None
        if not raw.isdigit():
            raise StoreError(f"CURATION_DB_THREADS={raw!r} is not a positive whole number")
        explicit = int(raw)
    if explicit < 1:
        raise StoreError(f"DuckDB threads must be >= 1, got {explicit}")
    return explicit


class _FileGate:
    """Cross-process turn-taking on a store file, and the warm instance (module docstring)."""

    def __init__(self, path: Path) -> None:
        self.lock_path = path.with_name(path.name + ".lock")
        self.wait_path = path.with_name(path.name + ".wait")
        self.local = threading.local()  # per-thread depth: a nested unit reuses the hold
        self.cond = threading.Condition()
        self.holders = 0
        self.fd: int | None = None  # our exclusive flock on <store>.lock, while we hold the file
        self.since = 0.0  # when this hold began
        self.idle_since = 0.0
        self.draining = False
        self.instance: duckdb.DuckDBPyConnection | None = None  # keeps the instance open
        self.watcher: threading.Thread | None = None
        self.linger = 0.0

    # -- is another process waiting? ------------------------------------------------------
    def others_waiting(self) -> bool:
        try:
            fd = os.open(self.wait_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe lock too
        return False

    def _take_file(self) -> None:
        """Block (in the kernel) until this process holds `<store>.lock`."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                wait_fd = os.open(self.wait_path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(wait_fd, fcntl.LOCK_SH)  # tell the holder we are waiting
                    fcntl.flock(fd, fcntl.LOCK_EX)
                finally:
                    os.close(wait_fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.since = time.monotonic()

    def _let_go(self) -> None:
        """Close the instance (checkpoint) and unlock. Caller holds `cond`, holders == 0."""
        if self.instance is not None:
            with suppress(duckdb.Error):
                self.instance.close()
            self.instance = None
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        handed_over = self.draining
        self.draining = False
        self.cond.notify_all()
        if handed_over:
            # let the process that was woken by the unlock take its turn first
            time.sleep(0.002)

    # -- threads ----------------------------------------------------------------------------
    def acquire(self) -> float:
        """Block until this thread may use the file; return the seconds waited."""
        start = time.monotonic()
        depth = getattr(self.local, "depth", 0)
        self.local.depth = depth + 1
        if depth:
            return 0.0
        try:
            with self.cond:
                while True:
                    if self.fd is None:
                        self._take_file()
                        break
                    if self.draining:
                        self.cond.wait(0.5)
                        continue
                    if time.monotonic() - self.since > SHARE_WINDOW_S and self.others_waiting():
                        if self.holders:
                            self.draining = True  # admit nobody new; the last one out hands over
                            self.cond.wait(0.5)
                            continue
                        self.draining = True  # idle and someone waits: hand over, then queue behind
                        self._let_go()
                        continue
                    break
                self.holders += 1
        except BaseException:
            self.local.depth = depth
            raise
        return time.monotonic() - start

    def release(self, linger: float) -> None:
        self.local.depth -= 1
        if self.local.depth:
            return
        with self.cond:
            self.holders -= 1
            if self.holders:
                return
            if self.draining or linger <= 0 or self.instance is None or self.others_waiting():
                self._let_go()
                return
            self.idle_since = time.monotonic()
            self.linger = linger
            if self.watcher is None or not self.watcher.is_alive():
                self.watcher = threading.Thread(target=self._watch, name="curation-store-linger", daemon=True)
                self.watcher.start()

    def _watch(self) -> None:
        """While the process holds the file idle: hand it over when asked or when bored."""
        while True:
            time.sleep(POLL_S)
            with self.cond:
                if self.fd is None:
                    self.watcher = None
                    return
                if self.holders:
                    continue
                if time.monotonic() - self.idle_since > self.linger or self.others_waiting():
                    self._let_go()
                    self.watcher = None
                    return

    def cursor(self, open_instance: Callable[[], duckdb.DuckDBPyConnection]) -> duckdb.DuckDBPyConnection:
        """A new connection on the warm instance (opened on first use by this hold)."""
        with self.cond:
            if self.instance is None:
                self.instance = open_instance()
            return self.instance.cursor()

    def close(self) -> None:
        with self.cond:
            if self.holders == 0 and self.fd is not None:
                self._let_go()


_GATES: dict[str, _FileGate] = {}
_OPEN: dict[int, Path] = {}  # id(connection) -> store path, for connections handed out by Store.connect
_GATES_LOCK = threading.Lock()


def _gate(path: Path) -> _FileGate:
    with _GATES_LOCK:
        gate = _GATES.get(str(path))
        if gate is None:
            gate = _GATES[str(path)] = _FileGate(path)
        return gate


def path_of(con: duckdb.DuckDBPyConnection) -> str:
    """The store file behind a connection from `Store.connect` (else asks DuckDB)."""
    path = _OPEN.get(id(con))
    if path is not None:
        return str(path)
    rows = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return str(rows[0][0]) if rows else ""


def close_all() -> None:
    """Hand back every store file this process keeps warm (checkpointing each)."""
    with _GATES_LOCK:
        gates = list(_GATES.values())
    for gate in gates:
        gate.close()


def _forget_after_fork() -> None:
    # a forked child must not touch the parent's instance or locks
    global _GATES_LOCK
    _GATES.clear()
    _GATES_LOCK = threading.Lock()


atexit.register(close_all)
os.register_at_fork(after_in_child=_forget_after_fork)


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


def _backoff(timeout: float) -> Iterator[int]:
    """Attempt numbers for a retry loop: 0 at once, then 1, 2, ... each after a jittered
    exponential sleep (5 ms doubling to 250 ms, times 0.5-1.5 so that waiting processes do
    not retry in step). Ends, without a sleep, once an attempt fails more than `timeout`
    seconds after the first began; the caller breaks out (or returns) on success."""
    start = time.monotonic()
    delay = 0.005
    attempt = 0
    while True:
        yield attempt
        if time.monotonic() - start > timeout:
            return
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)
        attempt += 1


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
    """A DuckDB store file. Cheap to create; the file is taken per unit of work."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float | None = None,
        linger: float | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = db_path(path).expanduser().resolve()
        if lock_timeout is None:
            lock_timeout = float(os.environ.get("CURATION_LOCK_TIMEOUT", "120"))
        self.lock_timeout = lock_timeout
        self.linger = linger_seconds() if linger is None else max(0.0, linger)
        # applies when this Store opens the process's instance of the file (the first unit
        # of work after the file was handed over); a process should use one setting
        self.threads = threads_setting(threads)

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
        error: duckdb.Error | None = None
        for retries in _backoff(self.lock_timeout):  # noqa: B007 (read after the loop)
            try:
                con = duckdb.connect(str(self.path), config=_instance_config(self.threads))
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"{self.path}: cannot open the store: {exc}") from exc
                error = exc
        else:
            waited = time.monotonic() - start
            LOCK_STATS.record(waited, retries)
            raise StoreBusyError(
                f"{self.path}: another process has held the store for {waited:.0f} s; "
                "retry when it finishes (raise CURATION_LOCK_TIMEOUT to wait longer)"
            ) from error
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
        """Take the file for one unit of work inside a transaction; commit, then let go."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        gate = _gate(self.path)
        waited = gate.acquire()
        if waited > 0.001:
            LOCK_STATS.record(waited, 0)
        try:
            con = gate.cursor(self._open)
            _OPEN[id(con)] = self.path
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                _OPEN.pop(id(con), None)
                con.close()
        finally:
            gate.release(self.linger)

    def run(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `fn(con)` as one transaction, retrying the whole unit on a write conflict
        (with `_backoff`, until `lock_timeout`; then the conflict is raised)."""
        error: duckdb.Error | None = None
        for retries in _backoff(self.lock_timeout):
            if retries:
                LOCK_STATS.record(0.0, 1)
            try:
                with self.connect() as con:
                    return fn(con)
            except duckdb.Error as exc:
                if not _is_conflict(exc):
                    raise
                error = exc
        assert error is not None  # _backoff yields at least once
        raise error

    def close(self) -> None:
        """Hand the file back now instead of after the linger (e.g. before a long computation)."""
        _gate(self.path).close()
