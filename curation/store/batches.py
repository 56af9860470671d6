"""Batches: sets of questions put in the annotation queue (gold set, active-learning rounds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from curation.errors import InputError, NotFoundError


@dataclass(frozen=True)
class BatchItem:
    question_id: str
    suggestion_label: str | None = None
    suggestion_prob: float | None = None


def create_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    batch_id: str,
    kind: str,
    items: Sequence[BatchItem],
    overlap: int,
    show_suggestions: bool,
    created_at: datetime,
    created_by: str | None = None,
    strategy: str | None = None,
    model_version: str | None = None,
    note: str | None = None,
) -> None:
    """Create a batch and its items in the caller's transaction.

    Gold batches never show suggestions (the gold set is blind), whatever is asked.
    """
    if kind not in ("gold", "active", "manual"):
        raise InputError(f"batch kind {kind!r} is not gold, active or manual")
    if overlap < 1:
        raise InputError(f"overlap must be >= 1, got {overlap}")
    if not items:
        raise InputError("a batch needs at least one question")
    if con.execute("SELECT 1 FROM batches WHERE id = ?", [batch_id]).fetchall():
        raise InputError(f"batch {batch_id!r} already exists; choose another id")
    ids = [i.question_id for i in items]
    if len(set(ids)) != len(ids):
        raise InputError(f"batch {batch_id!r} lists a question twice")
    known = {
        r[0]
        for r in con.execute(
            "SELECT id FROM questions WHERE id IN (SELECT unnest(?))", [ids]
        ).fetchall()
    }
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFoundError(f"batch {batch_id!r}: unknown question id(s) {missing[:5]}")
    show = bool(show_suggestions) and kind != "gold"
    con.execute(
        "INSERT INTO batches (id, kind, overlap, show_suggestions, strategy, model_version, "
        "created_by, note, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
        [batch_id, kind, overlap, show, strategy, model_version, created_by, note, created_at],
    )
    con.executemany(
        "INSERT INTO batch_items (batch_id, question_id, position, suggestion_label, suggestion_prob) "
        "VALUES (?,?,?,?,?)",
        [
            [batch_id, it.question_id, pos, it.suggestion_label if show else None,
             it.suggestion_prob if show else None]
            for pos, it in enumerate(items)
        ],
    )


def get_batch(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict[str, Any]:
    cur = con.execute("SELECT * FROM batches WHERE id = ?", [batch_id])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        raise NotFoundError(f"no batch {batch_id!r}; `curation stats` lists batches")
    return dict(zip(names, rows[0], strict=True))


def batch_items(con: duckdb.DuckDBPyConnection, batch_id: str) -> list[dict[str, Any]]:
    cur = con.execute(
        "SELECT bi.*, q.dataset_name FROM batch_items bi JOIN questions q ON q.id = bi.question_id "
        "WHERE batch_id = ? ORDER BY position",
        [batch_id],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
