"""Releases (built export folders) and their publications. Functions take an open connection."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from curation.errors import InputError, NotFoundError
from curation.store.sql import dicts


def record_release(
    con: duckdb.DuckDBPyConnection,
    *,
    version: str,
    path: str,
    manifest: dict[str, Any],
    content_hash: str,
    created_at: datetime,
) -> bool:
    """Record a built release. Returns False if the same version with the same content is
    already recorded (a byte-identical rebuild); raises if it was recorded with other content."""
    existing = con.execute(
        "SELECT content_hash, path FROM releases WHERE version = ?", [version]
    ).fetchall()
    if existing:
        if existing[0][0] == content_hash:
            return False
        raise InputError(
            f"release {version!r} was already built from other content (at {existing[0][1]}); "
            "choose a new --version: a published version must never change"
        )
    con.execute(
        "INSERT INTO releases (version, path, manifest, content_hash, created_at) VALUES (?,?,?,?,?)",
        [version, path, json.dumps(manifest, sort_keys=True, ensure_ascii=False), content_hash, created_at],
    )
    return True


def release_paths(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every recorded release version -> the folder it was built into."""
    return dict(con.execute("SELECT version, path FROM releases ORDER BY version").fetchall())


def get_release(con: duckdb.DuckDBPyConnection, version: str) -> dict[str, Any]:
    rows = dicts(con.execute("SELECT * FROM releases WHERE version = ?", [version]))
    if not rows:
        raise NotFoundError(f"no release {version!r}; `curation release build --version {version}` makes one")
    row = rows[0]
    row["manifest"] = json.loads(row["manifest"])
    return row


def list_releases(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """All releases, newest first, with their manifests parsed."""
    rows = dicts(
        con.execute("SELECT version, path, manifest, content_hash, created_at FROM releases ORDER BY created_at DESC, version")
    )
    for r in rows:
        r["manifest"] = json.loads(r["manifest"])
    return rows


def record_publication(
    con: duckdb.DuckDBPyConnection,
    *,
    release_version: str,
    repo_id: str,
    endpoint: str,
    private: bool,
    revision: str | None,
    commit_sha: str | None,
    tag: str | None,
    published_at: datetime,
) -> None:
    con.execute(
        "INSERT INTO publications (release_version, repo_id, endpoint, private, revision, commit_sha, tag, "
        "published_at) VALUES (?,?,?,?,?,?,?,?)",
        [release_version, repo_id, endpoint, private, revision, commit_sha, tag, published_at],
    )


def list_publications(con: duckdb.DuckDBPyConnection, release_version: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM publications"
    params: list[Any] = []
    if release_version is not None:
        sql += " WHERE release_version = ?"
        params.append(release_version)
    sql += " ORDER BY published_at DESC, repo_id"
    return dicts(con.execute(sql, params))


# -- what a release build reads (one transaction: `curation.release.snapshot`) -------------


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    rel = con.sql(sql, params=params) if params else con.sql(sql)
    return rel.to_arrow_table()


# Traces a release carries, read from `questions.meta` (ingest keeps unknown fields there):
# BioMed-R1-Eval's adversarial traces and BioMed-R1-Train's `reasoning`. Null when absent.
TRACE_FIELDS = ("adversarial_trace_0", "adversarial_trace_1", "adversarial_trace_2", "reasoning")


def question_table(con: duckdb.DuckDBPyConnection) -> Any:
    """Every question as an Arrow table (options as JSON text, the `TRACE_FIELDS` of its
    meta as text columns: a string as it is, another JSON value as compact JSON text)."""
    import pyarrow as pa

    table = _arrow(
        con,
        "SELECT id, dataset_name, split, question, CAST(options AS VARCHAR) AS options, answer_idx, "
        "answer, source, text_hash, CAST(meta AS VARCHAR) AS meta FROM questions",
    )
    metas = [json.loads(m) if m else {} for m in table.column("meta").to_pylist()]
    table = table.drop_columns(["meta"])
    for field in TRACE_FIELDS:
        values = [_trace_text(m.get(field) if isinstance(m, dict) else None) for m in metas]
        table = table.append_column(field, pa.array(values, pa.string()))
    return table


def _trace_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def alias_table(con: duckdb.DuckDBPyConnection) -> Any:
    """Ids merged at ingest as exact duplicates (`alias_id`) and the id kept (`question_id`)."""
    return _arrow(con, "SELECT alias_id, question_id FROM question_aliases ORDER BY alias_id")


def prediction_table(con: duckdb.DuckDBPyConnection, model_version: str | None) -> Any:
    """One model's predictions as an Arrow table (empty without a model)."""
    return _arrow(
        con,
        "SELECT question_id, reasoning_prob, is_reasoning, reasoning_threshold FROM predictions "
        "WHERE model_version = ?",
        [model_version or ""],
    )


def batch_table(con: duckdb.DuckDBPyConnection) -> Any:
    return _arrow(con, "SELECT id, kind, overlap, show_suggestions FROM batches")


def store_info(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts and times that say what state of the store a release was built from."""
    info = con.execute(
        """SELECT (SELECT max(version) FROM schema_migrations),
                  (SELECT count(*) FROM questions),
                  (SELECT count(*) FROM annotations),
                  (SELECT count(*) FROM adjudications),
                  (SELECT max(created_at) FROM ingests),
                  (SELECT max(created_at) FROM annotations),
                  (SELECT max(created_at) FROM adjudications),
                  (SELECT max(ingested_at) FROM questions)"""
    ).fetchall()[0]
    guidelines = con.execute(
        "SELECT DISTINCT guidelines_version FROM annotations WHERE guidelines_version IS NOT NULL ORDER BY 1"
    ).fetchall()
    times = [t for t in info[4:] if t is not None]
    return {
        "schema_version": info[0],
        "n_questions": info[1],
        "n_annotations": info[2],
        "n_adjudications": info[3],
        "last_ingest_at": info[4].isoformat() if info[4] else None,
        "last_annotation_at": info[5].isoformat() if info[5] else None,
        "data_as_of": max(times).isoformat() if times else None,
        "guidelines_versions": [g[0] for g in guidelines],
    }
