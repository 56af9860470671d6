"""Questions, aliases, imported labels/predictions and the ingest log. Take an open connection."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from curation.errors import ConflictError, NotFoundError
from curation.rules import IMPORTED_MODEL_KIND
from curation.schema import Question
from curation.store.sql import is_unique_violation

QUESTION_COLUMNS = (
    "id", "dataset_name", "split", "question", "options", "answer_idx", "answer", "source",
    "meta", "text_hash", "n_duplicates", "ingest_id", "ingested_at",
)


# json.dumps(obj, ensure_ascii=False) builds a new encoder per call; this is the same
# encoder made once (3x faster over 100k questions)
_to_json_sorted = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_quote = json.encoder.encode_basestring  # the (C) string quoting json.dumps(ensure_ascii=False) uses


def options_json(options: Mapping[str, str]) -> str:
    """`json.dumps(options, ensure_ascii=False)` for a {letter: text} dict, 3x faster (a test
    checks they are equal): options are the one JSON column written for every question."""
    return "{" + ", ".join(_quote(k) + ": " + _quote(v) for k, v in options.items()) + "}"


# The question columns an ingest converts (the rest are filled when they are written).
CONVERTED_SCHEMA = pa.schema([
    ("id", pa.string()), ("dataset_name", pa.string()), ("split", pa.string()), ("question", pa.string()),
    ("options", pa.string()), ("answer_idx", pa.string()), ("answer", pa.string()), ("source", pa.string()),
    ("meta", pa.string()), ("text_hash", pa.string()),
])


def question_batch(questions: Sequence[Question]) -> pa.RecordBatch:
    """Converted questions as one Arrow batch (`CONVERTED_SCHEMA`): compact, so an ingest
    keeps its rows as Arrow and drops the Python objects chunk by chunk."""
    return pa.record_batch([
        pa.array([q.id for q in questions], pa.string()),
        pa.array([q.dataset_name for q in questions], pa.string()),
        pa.array([q.split for q in questions], pa.string()),
        pa.array([q.question for q in questions], pa.string()),
        pa.array([options_json(q.options) for q in questions], pa.string()),
        pa.array([q.answer_idx for q in questions], pa.string()),
        pa.array([q.answer for q in questions], pa.string()),
        pa.array([q.source for q in questions], pa.string()),
        pa.array([_to_json_sorted(q.meta) if q.meta else "{}" for q in questions], pa.string()),
        pa.array([q.text_hash for q in questions], pa.string()),
    ], schema=CONVERTED_SCHEMA)


def with_write_columns(rows: pa.Table, dup_counts: Mapping[str, int], *, ingest_id: str, now: datetime) -> pa.Table:
    """`CONVERTED_SCHEMA` rows plus n_duplicates, ingest_id and ingested_at (`QUESTION_COLUMNS`)."""
    n = rows.num_rows
    dups = [int(dup_counts.get(i, 0)) for i in rows.column("id").to_pylist()] if dup_counts else [0] * n
    return (rows.append_column("n_duplicates", pa.array(dups, pa.int32()))
                .append_column("ingest_id", pa.array([ingest_id] * n, pa.string()))
                .append_column("ingested_at", pa.array([now] * n, pa.timestamp("us"))))


def insert_questions(
    con: duckdb.DuckDBPyConnection,
    questions: Sequence[Question],
    dup_counts: Mapping[str, int],
    *,
    ingest_id: str,
    now: datetime,
) -> None:
    """Insert questions in one statement (small writes; an ingest stages and `swap_in`s)."""
    if not questions:
        return
    table = with_write_columns(pa.Table.from_batches([question_batch(questions)]), dup_counts,
                               ingest_id=ingest_id, now=now)
    con.register("_new_questions", table)
    try:
        cols = ", ".join(QUESTION_COLUMNS)
        con.execute(f"INSERT INTO question_rows ({cols}) SELECT {cols} FROM _new_questions")
    finally:
        con.unregister("_new_questions")


# -- an ingest in bounded holds: read what exists, stage the rows, show them at once ----
# Rows are written to `question_rows` under a pending ingest id; the view `questions` (what
# every reader reads) hides them until `swap_in` (migration 5, `PENDING_INGESTS`).
def change_marker(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """What an ingest's plan depends on: (ingests, questions, aliases) counts. Every write of
    questions or aliases logs an ingest, so an equal marker means the plan still holds."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM ingests), (SELECT count(*) FROM questions), "
        "(SELECT count(*) FROM question_aliases)"
    ).fetchall()[0]
    return int(row[0]), int(row[1]), int(row[2])


def lookup_keys(
    con: duckdb.DuckDBPyConnection, keys: pa.Table
) -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str, str], str], dict[str, str]]:
    """`lookup` for a table of keys (id, dataset_name, split, text_hash), by joins: the keys
    are registered, not sent as a list. The (dataset, split, hash) map holds only the hashes
    the keys carry."""
    con.register("_keys", keys)
    try:
        aliases = dict(con.execute(
            "SELECT a.alias_id, a.question_id FROM question_aliases a WHERE a.alias_id IN (SELECT id FROM _keys)"
        ).fetchall())
        existing = {qid: (h, split) for qid, h, split in con.execute(
            "SELECT q.id, q.text_hash, q.split FROM questions q WHERE q.id IN (SELECT id FROM _keys) "
            "OR q.id IN (SELECT a.question_id FROM question_aliases a WHERE a.alias_id IN (SELECT id FROM _keys))"
        ).fetchall()}
        by_hash = {(d, s, h): i for d, s, h, i in con.execute(
            "SELECT q.dataset_name, q.split, q.text_hash, min(q.id) FROM questions q "
            "WHERE EXISTS (SELECT 1 FROM _keys k WHERE k.dataset_name = q.dataset_name AND k.split = q.split "
            "AND k.text_hash = q.text_hash) GROUP BY q.dataset_name, q.split, q.text_hash"
        ).fetchall()}
    finally:
        con.unregister("_keys")
    return existing, by_hash, aliases


def drop_stale_pending(con: duckdb.DuckDBPyConnection, alive: Callable[[int], bool]) -> list[str]:
    """Delete the never-shown rows of ingests whose process is gone (killed mid-ingest)."""
    stale = [i for i, pid in con.execute("SELECT ingest_id, pid FROM pending_ingests").fetchall() if not alive(pid)]
    for ingest_id in stale:
        abandon(con, ingest_id)
    return stale


def stage(con: duckdb.DuckDBPyConnection, ingest_id: str, rows: pa.Table, *, pid: int, now: datetime) -> None:
    """Write `QUESTION_COLUMNS` rows of the pending ingest `ingest_id` (registered as pending
    with its first rows, so they are never shown before `swap_in`). An id another pending
    ingest is writing is a `ConflictError`."""
    con.execute("INSERT INTO pending_ingests VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [ingest_id, pid, now])
    con.register("_stage_rows", rows)
    try:
        cols = ", ".join(QUESTION_COLUMNS)
        con.execute(f"INSERT INTO question_rows ({cols}) SELECT {cols} FROM _stage_rows")
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
        raise ConflictError(
            "another ingest is writing some of these question ids right now; nothing of this ingest "
            f"was kept: run it again when that one has finished ({str(exc).splitlines()[0][:200]})") from None
    finally:
        con.unregister("_stage_rows")


def abandon(con: duckdb.DuckDBPyConnection, ingest_id: str) -> None:
    """Delete the rows of a pending ingest (never shown) and its pending mark."""
    con.execute("DELETE FROM question_rows WHERE ingest_id = ? AND ingest_id IN (SELECT ingest_id FROM pending_ingests)",
                [ingest_id])
    con.execute("DELETE FROM pending_ingests WHERE ingest_id = ?", [ingest_id])


def swap_in(con: duckdb.DuckDBPyConnection, ingest_id: str) -> int:
    """Show every row the pending ingest `ingest_id` wrote (one small delete: the view
    `questions` stops hiding them); in the caller's transaction, with the rest of the ingest."""
    con.execute("DELETE FROM pending_ingests WHERE ingest_id = ?", [ingest_id])
    return int(con.execute("SELECT count(*) FROM question_rows WHERE ingest_id = ?", [ingest_id]).fetchall()[0][0])


def move_splits(con: duckdb.DuckDBPyConnection, moves: Sequence[tuple[str, str, str]]) -> int:
    """Move stored questions to another split: (id, from_split, to_split). Each move checks
    the split it expects, so a concurrent change is an error, not a silent overwrite."""
    moved = 0
    for qid, old, new in moves:
        rows = con.execute("UPDATE question_rows SET split = ? WHERE id = ? AND split = ? RETURNING id",
                           [new, qid, old]).fetchall()
        if len(rows) != 1:
            raise ConflictError(f"question {qid!r} is no longer in split {old!r}; run the ingest again")
        moved += 1
    return moved


def insert_aliases(
    con: duckdb.DuckDBPyConnection,
    aliases: Sequence[tuple[str, str]],
    dup_counts: Mapping[str, int],
    new_ids: set[str],
    *,
    ingest_id: str,
    now: datetime,
) -> None:
    """Record merged duplicates; bump `n_duplicates` of questions that were already stored."""
    if aliases:
        table = pa.table({
            "alias_id": pa.array([a for a, _ in aliases], pa.string()),
            "question_id": pa.array([q for _, q in aliases], pa.string()),
            "ingest_id": pa.array([ingest_id] * len(aliases), pa.string()),
            "created_at": pa.array([now] * len(aliases), pa.timestamp("us")),
        })
        con.register("_new_aliases", table)
        try:
            con.execute("INSERT INTO question_aliases (alias_id, question_id, ingest_id, created_at) "
                        "SELECT alias_id, question_id, ingest_id, created_at FROM _new_aliases")
        finally:
            con.unregister("_new_aliases")
    bumps = [[n, qid] for qid, n in dup_counts.items() if qid not in new_ids and n]
    if bumps:
        con.executemany("UPDATE question_rows SET n_duplicates = n_duplicates + ? WHERE id = ?", bumps)


def import_labels(
    con: duckdb.DuckDBPyConnection, labels: Sequence[tuple[str, str, str]], *, now: datetime
) -> int:
    """Append imported labels (source 'import'); the same label re-imported is a no-op."""
    from curation.store.annotations import Annotation, append

    rows = []
    seen: set[str] = set()
    for qid, label, annotator in labels:
        event = "import:" + hashlib.sha256(f"{annotator}\x1f{qid}\x1f{label}".encode()).hexdigest()[:32]
        if event in seen:
            continue
        seen.add(event)
        rows.append(Annotation(question_id=qid, annotator=annotator, action="label", label=label,
                               source="import", created_at=now, event_id=event))
    return append(con, rows)


def import_predictions(
    con: duckdb.DuckDBPyConnection,
    predictions: Sequence[tuple[str, float, float | None]],
    *,
    model_version: str,
    source: str,
    now: datetime,
) -> int:
    """Keep a file's own `reasoning_prob` (BioMed-R1-Eval) as an imported model's predictions."""
    if not predictions:
        return 0
    con.execute(
        "INSERT INTO models (version, base_model, kind, path, threshold, created_at) "
        "VALUES (?, 'imported', ?, ?, ?, ?) ON CONFLICT (version) DO NOTHING",
        [model_version, IMPORTED_MODEL_KIND, source, predictions[0][2] if predictions[0][2] is not None else 0.5, now],
    )
    before = con.execute("SELECT count(*) FROM predictions").fetchall()[0][0]
    last = {qid: (prob, 0.5 if thr is None else thr) for qid, prob, thr in predictions}  # the last row wins
    table = pa.table({
        "model_version": pa.array([model_version] * len(last), pa.string()),
        "question_id": pa.array(list(last), pa.string()),
        "reasoning_prob": pa.array([p for p, _ in last.values()], pa.float64()),
        "is_reasoning": pa.array([p >= t for p, t in last.values()], pa.bool_()),
        "reasoning_threshold": pa.array([t for _, t in last.values()], pa.float64()),
        "created_at": pa.array([now] * len(last), pa.timestamp("us")),
    })
    con.register("_imported_predictions", table)
    try:
        con.execute("INSERT INTO prediction_rows SELECT * FROM _imported_predictions ON CONFLICT DO NOTHING")
    finally:
        con.unregister("_imported_predictions")
    return int(con.execute("SELECT count(*) FROM predictions").fetchall()[0][0] - before)


def log_ingest(
    con: duckdb.DuckDBPyConnection,
    report: Any,
    digests: Mapping[str, str | None],
    *,
    benchmark: str | None,
    split: str | None,
    now: datetime,
) -> None:
    con.execute(
        "INSERT INTO ingests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [report.ingest_id, json.dumps(report.paths), json.dumps(digests), benchmark, split,
         report.n_rows, report.n_new, report.n_duplicates, report.n_unchanged, report.n_skipped,
         report.n_labels, report.n_predictions, now],
    )


def _row_to_question(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    d = dict(zip(names, row, strict=True))
    for key in ("options", "meta"):
        if isinstance(d.get(key), str):
            d[key] = json.loads(d[key])
    return d


def get_question(con: duckdb.DuckDBPyConnection, question_id: str) -> dict[str, Any]:
    cur = con.execute("SELECT * FROM questions WHERE id = ?", [question_id])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        alias = con.execute("SELECT question_id FROM question_aliases WHERE alias_id = ?", [question_id]).fetchall()
        if alias:
            return get_question(con, alias[0][0])
        raise NotFoundError(f"no question {question_id!r} in the store")
    return _row_to_question(names, rows[0])


def list_questions(
    con: duckdb.DuckDBPyConnection,
    *,
    split: str | None = None,
    dataset_names: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Questions ordered by id, with `options`/`meta` decoded."""
    sql = "SELECT * FROM questions WHERE true"
    params: list[Any] = []
    if split is not None:
        sql += " AND split = ?"
        params.append(split)
    if dataset_names is not None:
        sql += " AND dataset_name IN (SELECT unnest(?))"
        params.append(list(dataset_names))
    if ids is not None:
        sql += " AND id IN (SELECT unnest(?))"
        params.append(list(ids))
    cur = con.execute(sql + " ORDER BY id", params)
    names = [d[0] for d in cur.description]
    return [_row_to_question(names, r) for r in cur.fetchall()]


def stats(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Questions per benchmark and split, duplicates merged, labels and predictions so far."""
    from curation.store.annotations import CURRENT_LABELS_SQL, human_sql, reference_sql
    from curation.store.models import current_model

    rows = con.execute(
        f"""
        WITH cur AS ({CURRENT_LABELS_SQL}),
        lab AS (
            SELECT question_id,
                   count(*) FILTER (WHERE {human_sql()}) AS n_human,
                   count(*) FILTER (WHERE {reference_sql()}) AS n_import,
                   count(*) FILTER (WHERE label = 'reasoning') AS n_reasoning
            FROM cur GROUP BY question_id
        )
        SELECT q.dataset_name, q.split, count(*) AS questions,
               sum(q.n_duplicates)::BIGINT AS duplicates_merged,
               count(lab.question_id) FILTER (WHERE lab.n_human > 0) AS human_labeled,
               count(lab.question_id) FILTER (WHERE lab.n_import > 0) AS import_labeled,
               coalesce(sum(lab.n_human + lab.n_import), 0)::BIGINT AS labels
        FROM questions q LEFT JOIN lab ON lab.question_id = q.id
        GROUP BY q.dataset_name, q.split ORDER BY q.dataset_name, q.split
        """
    ).fetchall()
    names = ["dataset_name", "split", "questions", "duplicates_merged", "human_labeled",
             "import_labeled", "labels"]
    per = [dict(zip(names, r, strict=True)) for r in rows]
    label_counts = dict(con.execute(
        f"SELECT label, count(*) FROM ({CURRENT_LABELS_SQL}) AS cur GROUP BY label ORDER BY label"
    ).fetchall())
    by_source = dict(con.execute(
        f"SELECT source, count(*) FROM ({CURRENT_LABELS_SQL}) AS cur GROUP BY source ORDER BY source"
    ).fetchall())
    latest = current_model(con, scored=True)
    share: dict[str, Any] | None = None
    if latest:
        version = latest["version"]
        counts = con.execute(
            "SELECT q.dataset_name, q.split, count(*), count(*) FILTER (WHERE p.is_reasoning), "
            "count(*) FILTER (WHERE q.id IN (SELECT question_id FROM model_items WHERE model_version = $v)) "
            "FROM predictions p JOIN questions q ON q.id = p.question_id WHERE p.model_version = $v "
            "GROUP BY q.dataset_name, q.split ORDER BY 1, 2",
            {"v": version},
        ).fetchall()
        # n_in_training: rows the model trained or validated on (their prediction is in-sample)
        share = {"model_version": version,
                 "per_benchmark": [{"dataset_name": d, "split": sp, "n": n, "n_reasoning": k, "n_in_training": t}
                                   for d, sp, n, k, t in counts]}
    return {
        "reasoning_share": share,
        "questions": sum(r["questions"] for r in per),
        "duplicates_merged": sum(r["duplicates_merged"] for r in per),
        "per_benchmark": per,
        "labels": {"current": sum(label_counts.values()), "by_label": label_counts, "by_source": by_source,
                   "rows": con.execute("SELECT count(*) FROM annotations").fetchall()[0][0]},
        "adjudications": con.execute("SELECT count(DISTINCT question_id) FROM adjudications").fetchall()[0][0],
        "batches": con.execute("SELECT kind, count(*) FROM batches GROUP BY kind ORDER BY kind").fetchall(),
        "models": con.execute("SELECT count(*) FROM models WHERE kind <> ?", [IMPORTED_MODEL_KIND]).fetchall()[0][0],
    }
