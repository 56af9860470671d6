"""The PostgreSQL store: the same store API (`run(fn)`, `connect()`, the query modules) on a
server that many app replicas, workers and commands share, on any number of hosts.

`--db postgresql://user@host:port/db` (or `CURATION_DB=postgresql://...`) selects it; a file
path keeps the embedded DuckDB file (`curation.store.Store` makes the choice).

How the DuckDB-based code runs unchanged here:
- The query modules take a connection and call `execute(sql, params).fetchall()`,
  `executemany`, `register(name, arrow_table)` and `sql(...).to_arrow_table()`. `PgConnection`
  offers exactly these over a pooled psycopg 3 connection, translating each statement with
  `curation.store.dialect.to_postgres` (one list of migrations, one spelling of each query).
- Concurrency. The DuckDB file is held by one process per unit of work; here units run at
  once, each in a SERIALIZABLE transaction: PostgreSQL detects any interleaving that no
  serial order could give and aborts one side, and `PgStore.run` retries the whole unit
  (as `Store.run` retries a DuckDB write conflict). So every rule the queue and the
  append-only tables rely on holds across replicas with row-level concurrency instead of a
  file lock. The queue's lease/submit transactions also take an advisory lock
  (`QUEUE_LOCK_KEY`, before their transaction begins): they are short, and queueing them is
  cheaper than aborting and retrying them under load.
- Results read back as DuckDB returns them: `numeric` (PostgreSQL's `sum` and `avg`) as int
  or float, JSON columns as the text written (they are TEXT here), timestamps naive UTC.
- Connections come from a `psycopg_pool.ConnectionPool` per process and URL (rebuilt in a
  forked child); the pool's size is `CURATION_PG_POOL` (default 8).

The password in a URL is never printed: messages and `key` use `redact(url)`.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from curation.config import lock_timeout_seconds
from curation.errors import StoreBusyError, StoreError, StoreMissingError
from curation.store import LOCK_STATS, Store, _backoff, utcnow
from curation.store.dialect import to_postgres
from curation.store.migrations import apply_migrations

T = TypeVar("T")

SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEMES)


def redact(url: str) -> str:
    """The URL without its password (for messages, logs and cache keys)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreError(
            "a postgresql:// store needs psycopg 3: pip install \"curation[postgres]\""
        ) from exc
    return psycopg


# -- reading values back as DuckDB gives them ----------------------------------------------

_ARROW_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 25: pa.string(),
    1043: pa.string(), 700: pa.float32(), 701: pa.float64(), 1700: pa.float64(),
    1114: pa.timestamp("us"), 1009: pa.list_(pa.string()), 1015: pa.list_(pa.string()),
    1016: pa.list_(pa.int64()), 1022: pa.list_(pa.float64()),
}
_PG_TYPES: list[tuple[Callable[[pa.DataType], bool], str]] = [
    (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_int64, "BIGINT"), (pa.types.is_integer, "INTEGER"),
    (pa.types.is_floating, "DOUBLE PRECISION"), (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_string, "TEXT"), (pa.types.is_large_string, "TEXT"), (pa.types.is_null, "TEXT"),
]


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _pg_type(t.value_type) + "[]"
    for test, name in _PG_TYPES:
        if test(t):
            return name
    raise StoreError(f"no PostgreSQL column type for Arrow type {t}")


def _configure(con: Any) -> None:
    """Every pooled connection: autocommit (units say BEGIN/COMMIT themselves, as on
    DuckDB), serializable transactions, UTC, and numeric read back as int or float."""
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            return int(text) if text.lstrip("-").isdigit() else float(text)

    con.autocommit = True
    con.adapters.register_loader("numeric", NumericLoader)
    con.execute("SET default_transaction_isolation TO 'serializable'")
    con.execute("SET TIME ZONE 'UTC'")


class PgResult:
    """What `PgConnection.execute` returns: the rows of one statement."""

    def __init__(self, rows: list[tuple[Any, ...]], description: Any) -> None:
        self._rows = rows
        self.description = description

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def to_arrow_table(self) -> pa.Table:
        names = [d.name for d in self.description or []]
        columns = list(zip(*self._rows, strict=True)) if self._rows else [() for _ in names]
        arrays = []
        for d, values in zip(self.description or [], columns, strict=True):
            t = _ARROW_TYPES.get(d.type_code)
            arrays.append(pa.array(list(values), type=t) if t is not None else pa.array(list(values)))
        return pa.Table.from_arrays(arrays, names=names)


class PgConnection:
    """The part of DuckDB's connection API the query modules use, on one psycopg connection."""

    def __init__(self, raw: Any, key: str) -> None:
        self.raw = raw
        self.store_key = key

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> PgResult:
        with self.raw.cursor() as cur:
            try:
                cur.execute(to_postgres(sql), params if params is not None else [])
            except Exception as exc:
                exc.add_note(f"in the statement: {' '.join(sql.split())[:400]}")
                raise
            rows = cur.fetchall() if cur.description is not None else []
            return PgResult(rows, cur.description)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(to_postgres(sql), params)

    def sql(self, sql: str, params: Sequence[Any] | None = None) -> PgResult:
        return self.execute(sql, params)

    def register(self, name: str, table: pa.Table) -> None:
        """`table` as a temporary table `name` for the rest of the transaction."""
        cols = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in table.schema)
        with self.raw.cursor() as cur:
            cur.execute(f'CREATE TEMP TABLE "{name}" ({cols}) ON COMMIT DROP')
            names = ", ".join(f'"{n}"' for n in table.column_names)
            with cur.copy(f'COPY "{name}" ({names}) FROM STDIN') as copy:
                for batch in table.to_batches(max_chunksize=10_000):
                    for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                        copy.write_row(row)

    def unregister(self, name: str) -> None:
        from psycopg.pq import TransactionStatus

        if self.raw.info.transaction_status == TransactionStatus.INERROR:
            return  # the rollback that follows drops it (and a DROP would hide the first error)
        self.raw.execute(f'DROP TABLE IF EXISTS "{name}"')

    def close(self) -> None:  # the pool takes the connection back
        pass


_POOLS: dict[str, Any] = {}
_POOLS_LOCK = threading.Lock()
_MIGRATED: set[str] = set()


def _forget_after_fork() -> None:
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(lambda: close_pools())


def pool_size() -> int:
    raw = os.environ.get("CURATION_PG_POOL", "8").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise StoreError(f"CURATION_PG_POOL={raw!r} is not a positive whole number")
    return int(raw)


def close_pools() -> None:
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _retryable(exc: BaseException) -> bool:
    psycopg = _psycopg()
    return isinstance(exc, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected)


QUEUE_LOCK_KEY = 7_274_221  # pg_advisory_xact_lock key of the queue's lease/submit transactions


class PgStore(Store):
    """A PostgreSQL store (see the module docstring). Cheap to create; connections are
    pooled per process and URL."""

    backend = "postgres"

    def __init__(self, url: str, *, lock_timeout: float | None = None, linger: float | None = None,
                 threads: int | None = None, create: bool | None = None) -> None:
        self.url = url
        self._key = redact(url)
        self.lock_timeout = lock_timeout_seconds(lock_timeout)
        self.create = bool(create)
        self.linger = 0.0
        self.threads = threads

    def __repr__(self) -> str:
        return f"Store({self.key!r})"

    @property
    def key(self) -> str:
        return self._key

    @property
    def location(self) -> str:  # the password too: handed to a child process, never printed
        return self.url

    @property
    def path(self) -> Path:  # type: ignore[override]
        raise StoreError(f"{self.key} is a PostgreSQL store: it has no file (use store.home or store.key)")

    @property
    def home(self) -> Path:
        """Where model folders and demo files go: `$CURATION_HOME`, else the current folder."""
        return Path(os.environ.get("CURATION_HOME") or ".").expanduser().resolve()

    def exists(self) -> bool:
        try:
            self._pool()
        except StoreError:
            return False
        return True

    def _pool(self) -> Any:
        psycopg = _psycopg()
        with _POOLS_LOCK:
            pool = _POOLS.get(self.url)
            if pool is not None:
                return pool
            from psycopg_pool import ConnectionPool

            try:
                with psycopg.connect(self.url, connect_timeout=10):
                    pass
            except psycopg.Error as exc:
                raise StoreMissingError(
                    f"{self.key}: cannot reach the PostgreSQL store ({str(exc).strip().splitlines()[0]}); "
                    "check the URL in --db / CURATION_DB and that the server runs"
                ) from None
            pool = ConnectionPool(self.url, min_size=1, max_size=pool_size(), configure=_configure,
                                  open=True, name=f"curation-{len(_POOLS)}")
            _POOLS[self.url] = pool
            return pool

    def require_file(self) -> None:
        self._pool()

    def init(self) -> dict[str, Any]:
        with self._raw() as raw:
            existed = raw.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        version = self.run(lambda con: con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0])
        return {"path": self.key, "created": not existed, "schema_version": version}

    @contextmanager
    def _raw(self) -> Iterator[Any]:
        from psycopg_pool import PoolTimeout

        pool = self._pool()
        start = time.monotonic()
        try:
            with pool.connection(timeout=self.lock_timeout) as raw:
                waited = time.monotonic() - start
                if waited > 0.001:
                    LOCK_STATS.record(waited, 0)
                yield raw
        except PoolTimeout as exc:
            raise StoreBusyError(
                f"{self.key}: no free connection for {time.monotonic() - start:.0f} s "
                "(raise CURATION_PG_POOL or CURATION_LOCK_TIMEOUT)") from exc

    def _migrate(self, raw: Any) -> None:
        if self.url in _MIGRATED:
            return
        raw.execute("SELECT pg_advisory_lock(%s)", [QUEUE_LOCK_KEY + 1])  # one migrator at a time
        try:
            apply_migrations(PgConnection(raw, self.key), utcnow)
        finally:
            raw.execute("SELECT pg_advisory_unlock(%s)", [QUEUE_LOCK_KEY + 1])
        _MIGRATED.add(self.url)

    @contextmanager
    def connect(self, *, lock: int | None = None) -> Iterator[PgConnection]:  # type: ignore[override]  # duck-types DuckDB's connection
        """One unit of work in one (serializable) transaction: commit, then hand the
        connection back to the pool. With `lock`, the session advisory lock of that key is
        taken *before* the transaction begins (a serializable transaction's snapshot is
        fixed by its first statement: taken after waiting for the lock, it sees the previous
        holder's commit) and let go after it ends; the server lets go of it if the process dies."""
        with self._raw() as raw:
            self._migrate(raw)
            con = PgConnection(raw, self.key)
            if lock is not None:
                raw.execute("SELECT pg_advisory_lock(%s)", [lock])
            try:
                con.execute("BEGIN")
                try:
                    yield con
                except BaseException:
                    if not raw.closed:
                        con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                if lock is not None and not raw.closed:
                    raw.execute("SELECT pg_advisory_unlock(%s)", [lock])

    def run(self, fn: Callable[[Any], T], *, lock: int | None = None) -> T:
        """Run `fn(con)` as one transaction, retrying the whole unit when PostgreSQL
        aborts it to keep transactions serializable (or on a deadlock). `lock`: an advisory
        lock key held around the transaction (`connect`)."""
        error: BaseException | None = None
        for retries in _backoff(self.lock_timeout):
            if retries:
                LOCK_STATS.record(0.0, 1)
            try:
                with self.connect(lock=lock) as con:
                    return fn(con)
            except Exception as exc:
                if not _retryable(exc):
                    raise
                error = exc
        assert error is not None
        raise error

    @contextmanager
    def writer(self) -> Iterator[int]:
        """A long write's owner, across hosts: a dedicated connection held for its duration;
        its server process id is the owner, alive exactly while the connection is (a killed
        writer's connection is closed by the server)."""
        psycopg = _psycopg()
        with psycopg.connect(self.url, autocommit=True) as raw:
            yield int(raw.execute("SELECT pg_backend_pid()").fetchone()[0])

    def owner_alive(self, con: Any, owner: int) -> bool:
        return bool(con.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ?", [owner]).fetchall())

    def close(self) -> None:
        """Nothing to hand back: the pool keeps its connections for the next unit."""

