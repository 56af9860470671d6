"""The DuckDB adapter: the only package that opens the store file.

DuckDB lets one process at a time hold a database file, so no process here keeps it from
another longer than one unit of work. `Store.run(fn)` takes the file, runs `fn(con)` inside
a transaction and commits. Query functions for each area live in the sibling modules
(`questions`, `annotations`, ...) and take an open connection.

Taking turns between processes (`FileGate`). Every unit of work first takes an exclusive
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

Every wait has a limit. The kernel wait for `<store>.lock` happens in a helper thread
(`curation-store-wait`, at most one per process and file); the threads that want the file
wait on a condition with their own deadline (`lock_timeout`, `CURATION_LOCK_TIMEOUT`), so a
holder that never lets go (stopped, hung) ends in `StoreBusyError` instead of a hang. The
holder writes who it is (pid, start time, command line) into `<store>.lock` when it takes
the file and clears it when it lets go; the error quotes it. If every waiting thread gave
up, the helper hands the file straight back once it gets it.

Private files. The store holds password hashes: the store file, its write-ahead log and the
`.lock`/`.wait` files are created with mode 0600 (the process umask is narrowed only around
the DuckDB calls that create files), and an older store found with wider modes is narrowed.
`Store(path, create=False)` refuses a missing file instead of creating it (the CLI's
default: only `ingest`, `demo` and `store init` create a store).
"""

import atexit
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from curation.config import db_path, lock_timeout_seconds
from curation.errors import StoreBusyError, StoreError, StoreMissingError
from curation.store.gate import (
    LOCK_STATS,
    FileGate,
    LockStats,
    narrow,
    private_files,
    reset_after_fork,
)
from curation.store.migrations import apply_migrations

__all__ = ["LOCK_STATS", "LockStats", "Store", "close_all", "commit", "creating_stores",
           "linger_seconds", "path_of", "threads_setting", "utcnow"]

T = TypeVar("T")

_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


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


_GATES: dict[str, FileGate] = {}
_OPEN: dict[int, Path] = {}  # id(connection) -> store path, for connections handed out by Store.connect
_GATES_LOCK = threading.Lock()


def _gate(path: Path) -> FileGate:
    with _GATES_LOCK:
        gate = _GATES.get(str(path))
        if gate is None:
            gate = _GATES[str(path)] = FileGate(path)
        return gate


def path_of(con: duckdb.DuckDBPyConnection) -> str:
    """The store file behind a connection from `Store.connect` (else asks DuckDB)."""
    key = getattr(con, "store_key", None)
    if key is not None:  # a PostgreSQL connection
        return str(key)
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
    reset_after_fork()


atexit.register(close_all)
os.register_at_fork(after_in_child=_forget_after_fork)


def utcnow() -> datetime:
    """Naive UTC timestamp (DuckDB TIMESTAMP columns hold UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def commit(con: duckdb.DuckDBPyConnection) -> None:
    """COMMIT the transaction of `con`; the write-ahead log the commit may create is private
    (0600). Code that commits inside a unit of work (`queue.run_serialized`) calls this."""
    with private_files():
        con.execute("COMMIT")


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


_CREATE = {"missing": True}  # what `Store(create=None)` does with a missing file (creating_stores)


@contextmanager
def creating_stores(allowed: bool) -> Iterator[None]:
    """Within: a `Store` made without `create=` creates a missing store file only if
    `allowed` (the CLI runs its commands with False; `ingest`, `demo`, `store init` pass True)."""
    saved = _CREATE["missing"]
    _CREATE["missing"] = allowed
    try:
        yield
    finally:
        _CREATE["missing"] = saved


class Store:
    """A DuckDB store file. Cheap to create; the file is taken per unit of work.

    `Store("postgresql://...")` (or `CURATION_DB` set to such a URL) gives a
    `curation.store.postgres.PgStore` instead: the same API on a PostgreSQL server."""

    backend = "duckdb"

    def __new__(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> "Store":
        if cls is Store:
            from curation.store.postgres import PgStore, is_postgres_url

            if is_postgres_url(path if path not in (None, "") else os.environ.get("CURATION_DB")):
                return super().__new__(PgStore)
        return super().__new__(cls)

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float | None = None,
        linger: float | None = None,
        threads: int | None = None,
        create: bool | None = None,
    ) -> None:
        self.path = db_path(path).expanduser().resolve()
        self.lock_timeout = lock_timeout_seconds(lock_timeout)
        # a missing file: create it (folders and schema) or refuse (`creating_stores`)
        self.create = _CREATE["missing"] if create is None else create
        self.linger = linger_seconds() if linger is None else max(0.0, linger)
        # applies when this Store opens the process's instance of the file (the first unit
        # of work after the file was handed over); a process should use one setting
        self.threads = threads_setting(threads)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def key(self) -> str:
        """What names this store in messages and caches (the file; a URL without password)."""
        return str(self.path)

    @property
    def location(self) -> str:
        """What `--db` / `CURATION_DB` take to open this store again (another process)."""
        return str(self.path)

    @property
    def home(self) -> Path:
        """Where files that go with the store live by default (model folders, demo files)."""
        return self.path.parent

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def writer(self) -> Iterator[int]:
        """Within: a long write in several transactions (an ingest, a first scoring) is owned
        by the number this yields, recorded in its pending row; `owner_alive` tells later
        whether that owner still runs. Here: this process's pid (one host holds the file)."""
        yield os.getpid()

    def owner_alive(self, con: duckdb.DuckDBPyConnection, owner: int) -> bool:
        from curation.staging import pid_alive

        return pid_alive(owner)

    def require_file(self) -> None:
        """Raise `StoreMissingError` if there is no store file here and this Store may not create one."""
        if self.create or self.path.is_file():
            return
        raise StoreMissingError(
            f"{self.path}: no store here (a typo in --db or CURATION_DB?); nothing was created. "
            f"Create one with `curation store init --db {self.path}`, or load questions into a new "
            f"one with `curation ingest FILE --db {self.path}`"
        )

    def init(self) -> dict[str, Any]:
        """Take the file once: create it (folders, schema) if missing and allowed; report."""
        created = not self.path.exists()
        version = self.run(lambda con: con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0])
        return {"path": str(self.path), "created": created, "schema_version": version}

    # -- connections -------------------------------------------------------------------
    def _open(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if read_only and not self.path.exists():
            raise StoreError(
                f"{self.path}: no store here yet; run `curation ingest` first or pass --db / set CURATION_DB"
            )
        self.require_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        error: duckdb.Error | None = None
        for retries in _backoff(self.lock_timeout):  # noqa: B007 (read after the loop)
            try:
                with private_files():
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
        for suffix in ("", ".wal", ".lock", ".wait"):  # made by an older version: narrow them
            narrow(self.path.with_name(self.path.name + suffix))
        with private_files():
            self._migrate(con)
        return con

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        key = str(self.path)
        if key in _MIGRATED:
            return
        with _MIGRATE_LOCK:
            if key in _MIGRATED:
                return
            apply_migrations(con, utcnow)
            _MIGRATED.add(key)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Take the file for one unit of work inside a transaction; commit, then let go."""
        self.require_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        gate = _gate(self.path)
        waited = gate.acquire(self.lock_timeout)
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
                commit(con)
                narrow(self.path.with_name(self.path.name + ".wal"))  # if a COMMIT inside made it
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
