"""Models and predictions tables, the ids each model saw, and the training labels.

Functions take an open connection (`Store.run(lambda con: ...)`). Predictions are written
in bulk through a registered pyarrow table. Training labels (`training_labels`): each
question's human label by `curation.rules.human_label` (an adjudication wins, else the
strict majority of people's current labels; ties give none). Imported benchmark tags are a
reference, not human labels: with `include_import=True` a question no person labeled takes
its reference tag for training (origin ``reference``), and the model records it.

Every model records the question ids it was trained and validated on (`model_items`):
model-vs-human figures are computed only on the others (`curation.rules.held_out`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from curation import rules
from curation.errors import InputError, NotFoundError
from curation.store.annotations import (
    GOLD_IDS_SQL,
    current_adjudications,
    current_labels,
    human_sql,
)
from curation.store.sql import dicts


@dataclass(frozen=True)
class LabeledQuestion:
    question_id: str
    label: str
    origin: str  # 'adjudication' | 'majority' | 'single' | 'reference'
    n_votes: int
    gold: bool
    question: str
    options: dict[str, str]
    dataset_name: str



def gold_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Question ids in any gold batch."""
    return {r[0] for r in con.execute(GOLD_IDS_SQL).fetchall()}


def human_label_rows(con: duckdb.DuckDBPyConnection, question_ids: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """(question_id, annotator, label) of people's current labels (the raters)."""
    return [
        (r["question_id"], r["annotator"], r["label"])
        for r in current_labels(con, question_ids=question_ids)
    ]


def human_labels(con: duckdb.DuckDBPyConnection) -> dict[str, rules.HumanLabel]:
    """question_id -> its human label (`rules.human_labels` over the store's labels)."""
    adj = {q: a["label"] for q, a in current_adjudications(con).items()}
    return rules.human_labels(human_label_rows(con), adj)


def reference_labels(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """question_id -> (tag, source name) of imported benchmark tags (`rules.reference_tags`)."""
    return rules.reference_tags(current_labels(con, origin="reference"))


def training_labels(con: duckdb.DuckDBPyConnection, *, include_import: bool = False) -> list[LabeledQuestion]:
    """One label per question (see the module docstring), with question text, ordered by id."""
    chosen: dict[str, tuple[str, str, int]] = {}
    for qid, h in human_labels(con).items():
        if h.label is not None:
            origin = "adjudication" if h.label_source == "adjudicated" else str(h.label_source)
            chosen[qid] = (h.label, origin, h.n_annotators)
    if include_import:
        for qid, (label, _src) in reference_labels(con).items():
            chosen.setdefault(qid, (label, "reference", 0))
    if not chosen:
        return []
    gold = gold_ids(con)
    cur = con.execute(
        "SELECT id, question, options, dataset_name FROM questions WHERE id IN (SELECT unnest(?)) ORDER BY id",
        [sorted(chosen)],
    )
    out = []
    for qid, text, options, ds in cur.fetchall():
        label, origin, n = chosen[qid]
        opts = json.loads(options) if isinstance(options, str) else dict(options)
        out.append(LabeledQuestion(qid, label, origin, n, qid in gold, text, opts, ds))
    return out


# -- models -----------------------------------------------------------------------------
def register_model(
    con: duckdb.DuckDBPyConnection,
    *,
    version: str,
    base_model: str,
    kind: str,
    path: str | None,
    n_train: int,
    train_source: str,
    threshold: float,
    metrics: Mapping[str, Any],
    created_at: datetime,
    round: int | None = None,
    seen_ids: Mapping[str, Sequence[str]] | None = None,
) -> int:
    """Add a trained model; `round` defaults to 1 + the number of models trained from the store
    (for store-trained models) else NULL. Returns the round.

    `seen_ids`: role (`train`, `validation`) -> the question ids the model was fitted or
    validated on; alias ids are resolved to the stored question they were merged into.
    """
    if model_exists(con, version):
        raise InputError(f"model version {version!r} is already registered")
    if round is None and train_source == "store":
        round = int(con.execute("SELECT count(*) FROM models WHERE train_source = 'store'").fetchall()[0][0]) + 1
    con.execute(
        "INSERT INTO models (version, base_model, kind, path, round, n_train, train_source, threshold, metrics, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        [version, base_model, kind, path, round, n_train, train_source, threshold,
         json.dumps(metrics, default=str, allow_nan=False) if metrics else None, created_at],
    )
    if seen_ids:
        record_seen_ids(con, version, seen_ids)
    return round or 0


def record_seen_ids(con: duckdb.DuckDBPyConnection, version: str, seen_ids: Mapping[str, Sequence[str]]) -> int:
    """Record which questions model `version` trained/validated on (idempotent)."""
    import pyarrow as pa

    roles, ids = [], []
    for role, qids in seen_ids.items():
        if role not in ("train", "validation"):
            raise InputError(f"role {role!r} is not train or validation")
        roles += [role] * len(qids)
        ids += [str(q) for q in qids]
    if not ids:
        return 0
    con.register("_seen", pa.table({"role": roles, "question_id": ids}))
    try:
        con.execute(
            """INSERT INTO model_items (model_version, question_id, role)
               SELECT DISTINCT ?, coalesce(a.question_id, s.question_id), s.role FROM _seen s
               LEFT JOIN question_aliases a ON a.alias_id = s.question_id
               ON CONFLICT DO NOTHING""",
            [version],
        )
    finally:
        con.unregister("_seen")
    return len(ids)


def seen_ids(con: duckdb.DuckDBPyConnection, version: str) -> set[str]:
    """Question ids model `version` was trained or validated on."""
    return {r[0] for r in con.execute(
        "SELECT question_id FROM model_items WHERE model_version = ?", [version]).fetchall()}


def _model_row(r: dict[str, Any]) -> dict[str, Any]:
    m = r.get("metrics")
    r["metrics"] = json.loads(m) if isinstance(m, str) else (m or {})
    return r


def list_models(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every registered model, oldest first."""
    return [_model_row(r) for r in dicts(con.execute("SELECT * FROM models ORDER BY created_at, version"))]


def model_exists(con: duckdb.DuckDBPyConnection, version: str) -> bool:
    return bool(con.execute("SELECT 1 FROM models WHERE version = ?", [version]).fetchall())


def get_model(con: duckdb.DuckDBPyConnection, version: str) -> dict[str, Any]:
    rows = dicts(con.execute("SELECT * FROM models WHERE version = ?", [version]))
    if not rows:
        raise NotFoundError(f"no model {version!r}; `curation al status` lists models")
    return _model_row(rows[0])


def current_model(
    con: duckdb.DuckDBPyConnection, *, name: str | None = None, scored: bool = False
) -> dict[str, Any] | None:
    """The model callers use when none is named: the newest one trained here (never a set
    of predictions imported with a dataset, never a model withdrawn because its training
    job failed or was cancelled after registering it: `store.jobs.withdrawn_models`),
    optionally the newest that has predictions (`scored`). `name` picks one by version,
    imported and withdrawn ones included; unknown -> NotFoundError."""
    from curation.store.jobs import withdrawn_models

    if name is not None:
        return get_model(con, name)
    withdrawn = withdrawn_models(con)
    sql = f"SELECT * FROM models WHERE kind <> '{rules.IMPORTED_MODEL_KIND}'"
    if scored:
        sql += " AND version IN (SELECT DISTINCT model_version FROM predictions)"
    rows = dicts(con.execute(sql + " ORDER BY created_at DESC, version DESC LIMIT ?", [len(withdrawn) + 1]))
    rows = [r for r in rows if r["version"] not in withdrawn]
    return _model_row(rows[0]) if rows else None


# -- predictions ------------------------------------------------------------------------
def write_predictions(
    con: duckdb.DuckDBPyConnection,
    *,
    model_version: str,
    question_ids: Sequence[str],
    probs: Sequence[float],
    threshold: float,
    created_at: datetime,
) -> int:
    """Bulk-write (replace) this model's predictions for the given questions."""
    import pyarrow as pa

    if len(question_ids) != len(probs):
        raise InputError(f"{len(question_ids)} ids but {len(probs)} probabilities")
    if not question_ids:
        return 0
    p = [min(1.0, max(0.0, float(x))) for x in probs]
    table = pa.table({
        "model_version": pa.array([model_version] * len(p), pa.string()),
        "question_id": pa.array(list(question_ids), pa.string()),
        "reasoning_prob": pa.array(p, pa.float64()),
        "is_reasoning": pa.array([x >= threshold for x in p], pa.bool_()),
        "reasoning_threshold": pa.array([float(threshold)] * len(p), pa.float64()),
        "created_at": pa.array([created_at] * len(p), pa.timestamp("us")),
    })
    con.register("_new_predictions", table)
    try:
        con.execute(
            "INSERT INTO prediction_rows SELECT model_version, question_id, reasoning_prob, "
            "is_reasoning, reasoning_threshold, created_at FROM _new_predictions "
            "ON CONFLICT (model_version, question_id) DO UPDATE SET reasoning_prob = excluded.reasoning_prob, "
            "is_reasoning = excluded.is_reasoning, reasoning_threshold = excluded.reasoning_threshold, "
            "created_at = excluded.created_at"
        )
    finally:
        con.unregister("_new_predictions")
    return len(p)


def has_predictions(con: duckdb.DuckDBPyConnection, model_version: str) -> bool:
    """The version has predictions readers can see (not a first scoring still being written)."""
    return bool(con.execute("SELECT 1 FROM predictions WHERE model_version = ? LIMIT 1", [model_version]).fetchall())


def begin_pending_predictions(con: duckdb.DuckDBPyConnection, model_version: str, *, pid: int,
                              now: datetime, alive: Callable[[int], bool]) -> None:
    """Hide `model_version`'s predictions until `end_pending_predictions` (a first scoring
    written in chunks); a dead process's pending scoring is deleted first (never shown)."""
    for version, owner in con.execute("SELECT model_version, pid FROM pending_predictions").fetchall():
        if not alive(owner):
            abandon_pending_predictions(con, version)
    con.execute("INSERT INTO pending_predictions VALUES (?, ?, ?)", [model_version, pid, now])


def end_pending_predictions(con: duckdb.DuckDBPyConnection, model_version: str) -> None:
    con.execute("DELETE FROM pending_predictions WHERE model_version = ?", [model_version])


def abandon_pending_predictions(con: duckdb.DuckDBPyConnection, model_version: str) -> None:
    """Delete a pending (never shown) first scoring of `model_version`."""
    if con.execute("SELECT 1 FROM pending_predictions WHERE model_version = ?", [model_version]).fetchall():
        con.execute("DELETE FROM prediction_rows WHERE model_version = ?", [model_version])
        end_pending_predictions(con, model_version)


def predictions(con: duckdb.DuckDBPyConnection, model_version: str) -> dict[str, dict[str, Any]]:
    """question_id -> {reasoning_prob, is_reasoning, reasoning_threshold} for one model."""
    rows = con.execute(
        "SELECT question_id, reasoning_prob, is_reasoning, reasoning_threshold FROM predictions "
        "WHERE model_version = ?",
        [model_version],
    ).fetchall()
    return {r[0]: {"reasoning_prob": r[1], "is_reasoning": r[2], "reasoning_threshold": r[3]} for r in rows}


def latest_predictions(con: duckdb.DuckDBPyConnection) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """(model version, predictions) of the newest model that has predictions."""
    m = current_model(con, scored=True)
    if m is None:
        return None, {}
    return m["version"], predictions(con, m["version"])


def prediction_versions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Versions of models trained here that have predictions, newest model first (withdrawn
    ones left out: `store.jobs.withdrawn_models`)."""
    from curation.store.jobs import withdrawn_models

    withdrawn = withdrawn_models(con)
    return [
        r[0]
        for r in con.execute(
            f"SELECT m.version FROM models m WHERE m.kind <> '{rules.IMPORTED_MODEL_KIND}' "
            "AND m.version IN (SELECT DISTINCT model_version FROM predictions) "
            "ORDER BY m.created_at DESC, m.version DESC"
        ).fetchall()
        if r[0] not in withdrawn
    ]


def questions_for_scoring(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """id, question, options (decoded) of every question, ordered by id."""
    out = []
    for qid, text, options in con.execute("SELECT id, question, options FROM questions ORDER BY id").fetchall():
        out.append({"id": qid, "question": text, "options": json.loads(options) if isinstance(options, str) else dict(options)})
    return out


def active_candidates(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Questions eligible for active learning: not in any batch (gold or queued), never
    labeled by a person and not adjudicated (a benchmark's own tag does not make a question
    labeled). Ordered by id."""
    rows = con.execute(
        f"""SELECT q.id, q.question, q.options FROM questions q
           WHERE q.id NOT IN (SELECT question_id FROM batch_items)
             AND q.id NOT IN (SELECT DISTINCT question_id FROM annotations
                              WHERE action = 'label' AND {human_sql()})
             AND q.id NOT IN (SELECT question_id FROM adjudications)
           ORDER BY q.id"""
    ).fetchall()
    return [{"id": r[0], "question": r[1], "options": json.loads(r[2]) if isinstance(r[2], str) else dict(r[2])} for r in rows]


def next_active_round(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT count(*) FROM batches WHERE kind = 'active'").fetchall()[0][0]) + 1


def reasoning_share_by_benchmark(con: duckdb.DuckDBPyConnection, model_version: str | None = None) -> list[dict[str, Any]]:
    """Per benchmark: questions scored, how many `is_reasoning`, the share and its Wilson 95 % CI,
    from one model's predictions (default: the newest model that has predictions)."""
    from curation.metrics import wilson_ci

    if model_version is None:
        m = current_model(con, scored=True)
        if m is None:
            return []
        model_version = m["version"]
    rows = con.execute(
        "SELECT q.dataset_name, count(*), count(*) FILTER (WHERE p.is_reasoning) FROM predictions p "
        "JOIN questions q ON q.id = p.question_id WHERE p.model_version = ? GROUP BY 1 ORDER BY 1",
        [model_version],
    ).fetchall()
    out = []
    for ds, n, k in rows:
        lo, hi = wilson_ci(int(k), int(n))
        out.append({"dataset_name": ds, "model_version": model_version, "n": int(n), "n_reasoning": int(k),
                    "reasoning_share": k / n if n else None, "ci_low": lo, "ci_high": hi})
    return out
