"""Drafts on the Label page in the `drafts` table. Functions take an open connection (`Store.run`).

A row per (annotator, question): what the annotator has typed or chosen for a question leased
to them and not yet submitted (rationale, label, confidence), so that a reload of the page
shows it again. A draft is not a label: it is never read into `annotations`, agreement or a
release, and it is deleted when the question is labeled or skipped, or when the lease has
moved on. The text is untrusted (whatever was typed): the app shows it only inside the text
box it came from. When a draft is kept or dropped is `curation.services.annotate`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from curation.store.sql import dicts


def leased_to(con: duckdb.DuckDBPyConnection, annotator: str, question_id: str, now: datetime) -> bool:
    """Whether `question_id` is under a live lease of `annotator` (a draft is kept only then)."""
    return bool(con.execute(
        "SELECT 1 FROM assignments WHERE annotator = ? AND question_id = ? AND expires_at > ? LIMIT 1",
        [annotator, question_id, now],
    ).fetchall())


def save(
    con: duckdb.DuckDBPyConnection, annotator: str, question_id: str, *, rationale: str | None,
    label: str | None, confidence: int | None, now: datetime,
) -> None:
    """Insert or replace the annotator's draft for the question (values already checked)."""
    key = [annotator, question_id]
    values = [rationale, label, confidence, now]
    # a lookup then UPDATE or INSERT (cheaper in DuckDB than INSERT ... ON CONFLICT DO UPDATE)
    if con.execute("SELECT 1 FROM drafts WHERE user_name = ? AND question_id = ?", key).fetchall():
        con.execute("UPDATE drafts SET rationale = ?, label = ?, confidence = ?, updated_at = ? "
                    "WHERE user_name = ? AND question_id = ?", [*values, *key])
    else:
        con.execute("INSERT INTO drafts (user_name, question_id, rationale, label, confidence, updated_at) "
                    "VALUES (?,?,?,?,?,?)", [*key, *values])


def get(con: duckdb.DuckDBPyConnection, annotator: str, question_id: str) -> dict[str, Any] | None:
    """The draft {"question_id", "rationale", "label", "confidence", "updated_at"}, or None."""
    rows = dicts(con.execute(
        "SELECT question_id, rationale, label, confidence, updated_at FROM drafts "
        "WHERE user_name = ? AND question_id = ?", [annotator, question_id],
    ))
    return rows[0] if rows else None


def delete(con: duckdb.DuckDBPyConnection, annotator: str, question_id: str) -> None:
    con.execute("DELETE FROM drafts WHERE user_name = ? AND question_id = ?", [annotator, question_id])


def delete_unleased(con: duckdb.DuckDBPyConnection, annotator: str, now: datetime) -> int:
    """Drop the annotator's drafts whose question is no longer under their live lease (the
    lease expired or moved on); returns how many."""
    where = ("user_name = ? AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.annotator = drafts.user_name "
             "AND a.question_id = drafts.question_id AND a.expires_at > ?)")
    n = int(con.execute(f"SELECT count(*) FROM drafts WHERE {where}", [annotator, now]).fetchall()[0][0])
    if n:
        con.execute(f"DELETE FROM drafts WHERE {where}", [annotator, now])
    return n


def count(con: duckdb.DuckDBPyConnection, annotator: str | None = None) -> int:
    """How many drafts are kept (of one annotator, if given)."""
    sql, params = "SELECT count(*) FROM drafts", []
    if annotator is not None:
        sql, params = sql + " WHERE user_name = ?", [annotator]
    return int(con.execute(sql, params).fetchall()[0][0])
