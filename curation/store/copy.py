"""Moving a whole store between backends (`curation store copy`): the SQL of listing the
tables, reading and writing them as Arrow, moving the sequences past the copied rows, and
a content hash per table that is the same for the same rows on DuckDB and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa

from curation.store.migrations import SEQUENCES

SKIP = ("schema_migrations",)  # each store keeps its own record of the migrations it ran


def schema_version(con: Any) -> int:
    return int(con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0])


def tables(con: Any) -> list[str]:
    """The store's tables (not its views), in name order."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows if r[0] not in SKIP]


def columns(con: Any, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()
    return [r[0] for r in rows]


def row_counts(con: Any) -> dict[str, int]:
    return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]) for t in tables(con)}


def read_table(con: Any, table: str) -> pa.Table:
    cols = ", ".join(f'"{c}"' for c in columns(con, table))
    return con.sql(f'SELECT {cols} FROM "{table}"').to_arrow_table()


def write_table(con: Any, table: str, data: pa.Table) -> None:
    """Append `data` (columns named as the table's) to `table`."""
    if data.num_rows == 0:
        return
    cols = ", ".join(f'"{c}"' for c in data.column_names)
    con.register("_copy_rows", data)
    try:
        con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _copy_rows')
    finally:
        con.unregister("_copy_rows")


def advance_sequences(con: Any, backend: str) -> None:
    """Make each sequence's next value follow the largest copied key (DuckDB has no
    `setval`: its sequence is drawn up to that value)."""
    for seq, table, column in SEQUENCES:
        top = int(con.execute(f'SELECT coalesce(max("{column}"), 0) FROM "{table}"').fetchall()[0][0])
        if top == 0:
            continue
        if backend == "postgres":
            con.execute("SELECT setval(?, ?)", [seq, top])
        else:
            con.execute(f"SELECT max(nextval('{seq}')) FROM range(?)", [top])


def _canonical(value: Any) -> str:
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return repr(value)


def content_hash(con: Any, table: str) -> str:
    """SHA-256 of the table's rows, independent of row order and backend."""
    cols = ", ".join(f'"{c}"' for c in columns(con, table))
    rows = sorted("\x1f".join(_canonical(v) for v in row)
                  for row in con.execute(f'SELECT {cols} FROM "{table}"').fetchall())
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode("utf-8", "surrogatepass") + b"\x1e")
    return digest.hexdigest()
