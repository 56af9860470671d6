"""Annotations (append-only) and adjudications. Functions take an open connection.

There is deliberately no update or delete here: undo, edits and Label Studio deletions
are new rows. The current label of (question, annotator) is the latest row whose action
is `label` or `retract`; a `retract` means "no label". `CURRENT_LABELS_SQL` is the one
place that rule is written; every reader of current labels selects from it. Which of
them are people's labels is `curation.rules` (`HUMAN_SOURCES`, spliced in by
`human_sql`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import duckdb

from curation import rules
from curation.errors import InputError
from curation.schema import LABELS, Annotation
from curation.store.sql import dicts, in_list

__all__ = ["Annotation", "CURRENT_LABELS_SQL", "GOLD_IDS_SQL", "adjudicate", "append",
           "current_adjudications", "current_labels", "human_sql", "reference_sql"]


_COLUMNS = (
    "event_id, question_id, annotator, action, label, confidence, rationale, source, "
    "source_ref, guidelines_version, suggestion_shown, batch_id, created_at"
)


def append(con: duckdb.DuckDBPyConnection, rows: Sequence[Annotation]) -> int:
    """Append rows; a row whose `event_id` is already stored is skipped (idempotent).

    Returns how many rows were new.
    """
    if not rows:
        return 0
    ids = [r.event_id for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError("duplicate event_id within one append call")
    if len(rows) == 1:
        # the app's path (one label per action): an indexed lookup and a plain insert are
        # ~4x cheaper in DuckDB than INSERT ... ON CONFLICT and two counts
        r = rows[0]
        if con.execute("SELECT 1 FROM annotations WHERE event_id = ?", [r.event_id]).fetchall():
            return 0
        con.execute(
            f"INSERT INTO annotations ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [r.event_id, r.question_id, r.annotator, r.action, r.label, r.confidence, r.rationale,
             r.source, r.source_ref, r.guidelines_version, r.suggestion_shown, r.batch_id, r.created_at],
        )
        return 1
    before = con.execute("SELECT count(*) FROM annotations").fetchall()[0][0]
    values = [
        (
            r.event_id, r.question_id, r.annotator, r.action, r.label, r.confidence, r.rationale,
            r.source, r.source_ref, r.guidelines_version, r.suggestion_shown, r.batch_id, r.created_at,
        )
        for r in rows
    ]
    import pyarrow as pa

    names = [c.strip() for c in _COLUMNS.split(",")]
    types = {"confidence": pa.int32(), "suggestion_shown": pa.bool_(), "created_at": pa.timestamp("us")}
    schema = pa.schema([(n, types.get(n, pa.string())) for n in names])  # typed even when a column is all null
    table = pa.Table.from_pylist([dict(zip(names, v, strict=True)) for v in values], schema=schema)
    con.register("_new_annotations", table)
    try:
        con.execute(
            f"INSERT INTO annotations ({_COLUMNS}) SELECT {_COLUMNS} FROM _new_annotations "
            "ON CONFLICT (event_id) DO NOTHING"
        )
    finally:
        con.unregister("_new_annotations")
    after = con.execute("SELECT count(*) FROM annotations").fetchall()[0][0]
    return int(after - before)



CURRENT_LABELS_SQL = """
    SELECT question_id, annotator, label, source, created_at, confidence, rationale, batch_id
    FROM (
        SELECT *, row_number() OVER (
            PARTITION BY question_id, annotator ORDER BY created_at DESC, seq DESC) AS rn
        FROM annotations WHERE action IN ('label', 'retract')
    ) AS latest WHERE rn = 1 AND action = 'label'
"""


def human_sql(column: str = "source") -> str:
    """SQL condition: the row's label was given by a person (`rules.HUMAN_SOURCES`)."""
    return f"{column} IN {in_list(rules.HUMAN_SOURCES)}"


def reference_sql(column: str = "source") -> str:
    """SQL condition: the row is an imported reference tag (`rules.REFERENCE_SOURCES`)."""
    return f"{column} IN {in_list(rules.REFERENCE_SOURCES)}"


GOLD_IDS_SQL = """SELECT DISTINCT bi.question_id FROM batch_items bi
                  JOIN batches b ON b.id = bi.batch_id WHERE b.kind = 'gold'"""
"""Question ids in any gold batch (the one definition of the gold set)."""


def current_labels(
    con: duckdb.DuckDBPyConnection,
    *,
    question_ids: Iterable[str] | None = None,
    origin: str = "person",
    gold_only: bool = False,
    sources: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """The current label per (question, annotator), with the question's benchmark.

    `origin`: "person" (default: labels people gave, the raters), "reference" (imported
    benchmark tags) or "any". `gold_only`: only questions of gold batches. `sources`:
    further restrict to these `annotations.source` values (e.g. only Label Studio's).
    """
    if origin not in ("person", "reference", "any"):
        raise ValueError(f"origin {origin!r} is not person, reference or any")
    sql = (f"SELECT cur.*, q.dataset_name FROM ({CURRENT_LABELS_SQL}) AS cur "
           "LEFT JOIN questions q ON q.id = cur.question_id WHERE true")
    params: list[Any] = []
    if origin == "person":
        sql += " AND " + human_sql("cur.source")
    elif origin == "reference":
        sql += " AND " + reference_sql("cur.source")
    if gold_only:
        sql += f" AND cur.question_id IN ({GOLD_IDS_SQL})"
    if question_ids is not None:
        sql += " AND cur.question_id IN (SELECT unnest(?))"
        params.append(list(question_ids))
    if sources is not None:
        sql += " AND cur.source IN (SELECT unnest(?))"
        params.append(list(sources))
    sql += " ORDER BY cur.question_id, cur.annotator"
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def adjudicate(
    con: duckdb.DuckDBPyConnection,
    *,
    question_id: str,
    label: str,
    maintainer: str,
    note: str | None,
    created_at: datetime,
) -> None:
    """Record a final label for a question (append-only; the latest one counts)."""
    if label not in LABELS:
        raise InputError(f"label {label!r} is not one of {', '.join(LABELS)}")
    con.execute(
        "INSERT INTO adjudications (question_id, label, maintainer, note, created_at) VALUES (?,?,?,?,?)",
        [question_id, label, maintainer, note, created_at],
    )


def current_adjudications(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    rows = con.execute(
        """SELECT question_id, label, maintainer, note, created_at FROM (
               SELECT *, row_number() OVER (PARTITION BY question_id ORDER BY created_at DESC, seq DESC) rn
               FROM adjudications) AS latest WHERE rn = 1"""
    ).fetchall()
    return {
        r[0]: {"label": r[1], "maintainer": r[2], "note": r[3], "created_at": r[4]} for r in rows
    }


# -- reads for agreement, adjudication, exports and plots ---------------------------------


def gold_labels(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """People's current labels on questions of gold batches (the raters: `curation.rules`),
    with benchmark and rationale. Imported benchmark tags are not among them."""
    return current_labels(con, gold_only=True)


def gold_reference_labels(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Imported benchmark tags on gold questions (a reference beside the human labels)."""
    return current_labels(con, gold_only=True, origin="reference")


def all_current_labels(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """People's current labels of every question, with benchmark."""
    return current_labels(con)


def gold_questions(con: duckdb.DuckDBPyConnection, question_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Question text, options and answer for the adjudication page."""
    cur = con.execute(
        "SELECT id, dataset_name, question, options, answer_idx, answer FROM questions "
        "WHERE id IN (SELECT unnest(?))",
        [question_ids],
    )
    out = {}
    for r in dicts(cur):
        opts = r["options"]
        r["options"] = json.loads(opts) if isinstance(opts, str) else dict(opts)
        out[r["id"]] = r
    return out


def annotation_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every annotation row (labels, retractions, skips) with the question's benchmark."""
    return dicts(con.execute(
        "SELECT a.*, q.dataset_name FROM annotations a LEFT JOIN questions q ON q.id = a.question_id "
        "ORDER BY a.seq"
    ))


def annotation_count(con: duckdb.DuckDBPyConnection) -> int:
    """Annotation rows so far (append-only: a new count means something changed)."""
    return int(con.execute("SELECT count(*) FROM annotations").fetchall()[0][0])


def labels_per_day(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Label rows per day and source (for the activity chart)."""
    return dicts(con.execute(
        "SELECT CAST(created_at AS DATE) AS day, source, count(*) AS labels FROM annotations "
        "WHERE action = 'label' GROUP BY CAST(created_at AS DATE), source ORDER BY day, source"
    ))


def own_answers(con: duckdb.DuckDBPyConnection, annotator: str, limit: int = 200) -> list[dict[str, Any]]:
    """Per question, the annotator's latest row given in the app (label, skip or undo), newest
    first, with the question's text and options and how many rows they have for it: the
    history an annotator reopens and changes from (their own rows only)."""
    cur = con.execute(
        """SELECT a.question_id, a.action, a.label, a.confidence, a.rationale, a.created_at, a.batch_id,
                  a.n_rows, q.dataset_name, q.question, q.options
           FROM (SELECT *, row_number() OVER w AS rn, count(*) OVER (PARTITION BY question_id) AS n_rows
                 FROM annotations WHERE annotator = ? AND source = 'app'
                 WINDOW w AS (PARTITION BY question_id ORDER BY created_at DESC, seq DESC)) a
           LEFT JOIN questions q ON q.id = a.question_id
           WHERE a.rn = 1 ORDER BY a.created_at DESC, a.seq DESC LIMIT ?""",
        [annotator, limit],
    )
    out = dicts(cur)
    for r in out:
        opts = r["options"]
        r["options"] = json.loads(opts) if isinstance(opts, str) else dict(opts or {})
    return out


def question_history(con: duckdb.DuckDBPyConnection, question_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row about one question, oldest first: `annotations` (labels, skips, undos of
    every person and every import, with who, when and source) and `adjudications`."""
    rows = dicts(con.execute(
        "SELECT seq, created_at, annotator, action, label, confidence, rationale, source, source_ref, "
        "batch_id, guidelines_version FROM annotations WHERE question_id = ? ORDER BY created_at, seq",
        [question_id],
    ))
    adjudications = dicts(con.execute(
        "SELECT created_at, maintainer, label, note FROM adjudications WHERE question_id = ? "
        "ORDER BY created_at, seq",
        [question_id],
    ))
    return {"annotations": rows, "adjudications": adjudications}
