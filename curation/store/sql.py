"""Writing SQL text safely where a parameter cannot go (DDL, COPY targets, macros).

`literal` is the one quoting helper: every string spliced into SQL goes through it.
`dicts` reads a result as one dict per row. `in_list` turns a rule's tuple of values (e.g. `curation.rules.HUMAN_SOURCES`) into an
`IN (...)` list, so the rule stays written once, in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb


def literal(value: str | None) -> str:
    """A SQL string literal (single quotes doubled), or NULL."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def in_list(values: Iterable[str]) -> str:
    """`('a', 'b')` for `x IN ('a', 'b')`; at least one value is required."""
    items = [literal(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(items) + ")"


def dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every row of an executed query as a dict keyed by column name."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def is_unique_violation(exc: BaseException) -> bool:
    """A duplicate key, as DuckDB or PostgreSQL reports it."""
    if isinstance(exc, duckdb.ConstraintException):
        return True
    return type(exc).__name__ == "UniqueViolation"  # psycopg.errors.UniqueViolation (psycopg is optional)
