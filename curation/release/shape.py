"""Shaping a snapshot into release rows, in an in-memory DuckDB (the export engine).

`memory_db` loads the snapshot plus a per-question label table computed by the one rule
(`curation.rules.human_labels`); `eval_select` is the one SELECT behind every config
(extra columns and a WHERE appended, never string surgery); `copy` writes a query to
parquet with fixed writer options, so two builds of the same snapshot are byte-identical.
`portable_source` keeps a maintainer's local paths out of the released `source` column.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa

from curation import licenses, rules
from curation.release.snapshot import Snapshot
from curation.store.sql import literal

PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3, ROW_GROUP_SIZE 122880"

# Columns of the evaluation configs, in order: BioMed-R1-Eval's 12 fields, then the human
# labels, then provenance (which labels are a benchmark's own tags; which rows the model
# trained on).
EVAL_COLUMNS = (
    "id", "question", "answer", "options", "answer_idx", "dataset_name",
    "adversarial_trace_0", "adversarial_trace_1", "adversarial_trace_2",
    "reasoning_prob", "is_reasoning", "reasoning_threshold",
    "human_label", "n_annotators", "annotator_agreement", "label_source", "model_version",
    "source_label", "source_label_origin", "in_model_training",
)
# BioMed-R1-Train's fields (configs `biomed_r1` and `m23k_clean`), in order.
TRAIN_COLUMNS = ("id", "question", "answer", "options", "answer_idx", "dataset_name", "reasoning_prob", "reasoning")

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_DATA_FILE = re.compile(r"\.(jsonl?|csv|tsv|parquet|arrow|txt|gz|zst|xz|bz2|zip)$", re.I)


def portable_source(source: str) -> str:
    """A question's `source` as a release may show it: a Hub dataset reference
    (`owner/name`, `owner/name@revision:path/in/repo`) is kept; a file path (absolute, or
    relative with a data file's suffix) becomes the file's base name."""
    ref = source.split("@", 1)[0]
    if _HUB_ID.fullmatch(ref) and not _DATA_FILE.search(ref):
        return source
    return re.split(r"[\\/]", source.rstrip("/\\"))[-1] or source


def _portable_questions(questions: pa.Table) -> pa.Table:
    col = questions.column("source").combine_chunks().dictionary_encode()
    names = pa.array([portable_source(s) for s in col.dictionary.to_pylist()], pa.string())
    idx = questions.schema.get_field_index("source")
    return questions.set_column(idx, "source", names.take(col.indices))


def label_table(snap: Snapshot) -> pa.Table:
    """One row per question with a human label, a tie, an adjudication or a reference tag."""
    human = rules.human_labels(
        [(r["question_id"], r["annotator"], r["label"]) for r in snap.human], snap.adjudications
    )
    ref = rules.reference_tags(snap.reference)
    ids = sorted(set(human) | set(ref))
    empty = rules.HumanLabel(None, None, 0, None)
    hl = [human.get(q, empty) for q in ids]
    return pa.table({
        "question_id": pa.array(ids, pa.string()),
        "human_label": pa.array([h.label for h in hl], pa.string()),
        "n_annotators": pa.array([h.n_annotators for h in hl], pa.int32()),
        "annotator_agreement": pa.array([h.agreement for h in hl], pa.float64()),
        "label_source": pa.array([h.label_source for h in hl], pa.string()),
        "source_label": pa.array([ref[q][0] if q in ref else None for q in ids], pa.string()),
        "source_label_origin": pa.array([ref[q][1] if q in ref else None for q in ids], pa.string()),
    })


def memory_db(snap: Snapshot) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with tables questions (`source` made portable), predictions,
    labels, gold, seen, gold_labels, aliases and the macro `is_restricted(dataset_name)`
    (`curation.licenses`)."""
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 1")  # deterministic writer output
    con.execute("SET preserve_insertion_order = true")
    gold_rows = snap.gold_human  # people's labels on gold items, as `curation agreement` reads them
    tables = {
        "questions": _portable_questions(snap.questions),
        "aliases": snap.aliases,
        "predictions": snap.predictions,
        "labels": label_table(snap),
        "gold": pa.table({"question_id": pa.array(sorted(snap.gold), pa.string())}),
        "seen": pa.table({"question_id": pa.array(sorted(snap.seen), pa.string())}),
        "gold_labels": pa.table({
            "question_id": pa.array([r["question_id"] for r in gold_rows], pa.string()),
            "annotator": pa.array([r["annotator"] for r in gold_rows], pa.string()),
            "label": pa.array([r["label"] for r in gold_rows], pa.string()),
        }),
    }
    for name, table in tables.items():
        con.register(f"_{name}", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
    con.execute(f"CREATE MACRO is_restricted(dataset_name) AS {licenses.restricted_sql('dataset_name')}")
    return con


def eval_select(model_version: str | None, where: str, extra_cols: str = "") -> str:
    """The release row of each question matching `where` (columns `EVAL_COLUMNS`, then
    `extra_cols`, e.g. `", q.source"`)."""
    return f"""
        SELECT q.id, q.question, q.answer, q.options, q.answer_idx, q.dataset_name,
               CAST(q.adversarial_trace_0 AS VARCHAR) AS adversarial_trace_0,
               CAST(q.adversarial_trace_1 AS VARCHAR) AS adversarial_trace_1,
               CAST(q.adversarial_trace_2 AS VARCHAR) AS adversarial_trace_2,
               CAST(p.reasoning_prob AS DOUBLE) AS reasoning_prob,
               CAST(p.is_reasoning AS BOOLEAN) AS is_reasoning,
               CAST(p.reasoning_threshold AS DOUBLE) AS reasoning_threshold,
               CAST(l.human_label AS VARCHAR) AS human_label,
               CAST(coalesce(l.n_annotators, 0) AS INTEGER) AS n_annotators,
               CAST(l.annotator_agreement AS DOUBLE) AS annotator_agreement,
               CAST(l.label_source AS VARCHAR) AS label_source,
               CAST(CASE WHEN p.question_id IS NOT NULL THEN {literal(model_version)} END AS VARCHAR) AS model_version,
               CAST(l.source_label AS VARCHAR) AS source_label,
               CAST(l.source_label_origin AS VARCHAR) AS source_label_origin,
               CAST(q.id IN (SELECT question_id FROM seen) AS BOOLEAN) AS in_model_training
               {extra_cols}
        FROM questions q
        LEFT JOIN predictions p ON p.question_id = q.id
        LEFT JOIN labels l ON l.question_id = q.id
        WHERE {where}"""


def copy(con: duckdb.DuckDBPyConnection, select: str, order_by: str, path: Path) -> int:
    """Write `select` ordered by `order_by` to a parquet file; returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = con.execute(f"COPY ({select} ORDER BY {order_by}) TO {literal(str(path))} ({PARQUET_OPTIONS})").fetchall()
    return int(rows[0][0])
