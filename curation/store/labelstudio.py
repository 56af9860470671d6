"""Label Studio sync state in the store. Functions take an open connection.

Tables (migration 2): `ls_projects` (projects we push to), `ls_tasks` (task <-> question
map; unique per project and question, which makes push idempotent), `ls_users` (Label
Studio user -> our annotator), `ls_annotation_versions` (append-only: each Label Studio
annotation version already turned into an `annotations` row, and each deletion seen) and
`ls_sync_log` (one row per push or pull, failed ones included).

The labels themselves are ordinary `annotations` rows with `source='label_studio'`.
Every SQL statement of the Label Studio sync (`curation.labelstudio`) is here, including
its reads of other tables: a batch's items to push (`push_items`), which question ids
exist (`existing_questions`), stored label rows a deletion restates
(`label_rows_by_event`) and the completed-task counts of `status`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from curation.errors import InputError
from curation.labelstudio.mapping import TaskRef, VersionRow
from curation.schema import Annotation
from curation.store.sql import dicts


@dataclass(frozen=True)
class ProjectRef:
    """A Label Studio project we push to."""

    server: str
    project_id: int
    name: str
    overlap: int
    show_suggestions: bool
    guidelines_version: str | None
    created_at: datetime
    label_config: str | None = None  # the config we pushed (None: pushed before migration 6)
    retired_at: datetime | None = None
    retired_reason: str | None = None



# -- projects -------------------------------------------------------------------------


def add_project(con: duckdb.DuckDBPyConnection, ref: ProjectRef) -> None:
    con.execute(
        "INSERT INTO ls_projects (server, project_id, name, overlap, show_suggestions, "
        "guidelines_version, created_at, label_config) VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT DO NOTHING",
        [ref.server, ref.project_id, ref.name, ref.overlap, ref.show_suggestions,
         ref.guidelines_version, ref.created_at, ref.label_config],
    )


def projects(
    con: duckdb.DuckDBPyConnection, server: str, *, name: str | None = None,
    batch: str | None = None, include_retired: bool = False,
) -> list[ProjectRef]:
    """Projects recorded for `server`, oldest first: only those titled `name` / holding tasks
    of `batch` when given; retired ones only with `include_retired`."""
    sql = "SELECT * FROM ls_projects p WHERE server = ?"
    params: list[Any] = [server]
    if name is not None:
        sql += " AND name = ?"
        params.append(name)
    if batch is not None:
        sql += (" AND EXISTS (SELECT 1 FROM ls_tasks t WHERE t.server = p.server "
                "AND t.project_id = p.project_id AND t.batch_id = ?)")
        params.append(batch)
    if not include_retired:
        sql += " AND retired_at IS NULL"
    rows = dicts(con.execute(sql + " ORDER BY created_at, project_id", params))
    return [ProjectRef(**r) for r in rows]


def retire_project(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int, reason: str, at: datetime
) -> None:
    """Mark a project retired: no longer pulled or pushed to (its labels stay)."""
    con.execute(
        "UPDATE ls_projects SET retired_at = ?, retired_reason = ? "
        "WHERE server = ? AND project_id = ? AND retired_at IS NULL",
        [at, reason, server, project_id],
    )


def set_label_config(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int, label_config: str
) -> None:
    """Record the label config a project holds as ours (after a push set or checked it)."""
    con.execute(
        "UPDATE ls_projects SET label_config = ? WHERE server = ? AND project_id = ?",
        [label_config, server, project_id],
    )


# -- servers --------------------------------------------------------------------------


def servers(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every server key with its current URL, identity and number of projects."""
    return dicts(con.execute(
        "SELECT s.server, s.url, s.identity, s.created_at, s.updated_at, "
        "(SELECT count(*) FROM ls_projects p WHERE p.server = s.server) AS n_projects "
        "FROM ls_servers s ORDER BY s.created_at, s.server"
    ))


def add_server(
    con: duckdb.DuckDBPyConnection, server: str, url: str, identity: str | None, at: datetime
) -> None:
    con.execute("INSERT INTO ls_servers VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                [server, url, identity, at, at])


def update_server(
    con: duckdb.DuckDBPyConnection, server: str, *, at: datetime, url: str | None = None,
    identity: str | None = None,
) -> None:
    """Set a server key's URL and/or identity (the key, and so every stored row, stays)."""
    con.execute(
        "UPDATE ls_servers SET url = coalesce(?, url), identity = coalesce(?, identity), "
        "updated_at = ? WHERE server = ?",
        [url, identity, at, server],
    )


# -- tasks ----------------------------------------------------------------------------


def add_tasks(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int, tasks: Sequence[TaskRef],
    pushed_at: datetime,
) -> int:
    """Record pushed tasks; a (project, question) or task already mapped is kept. Returns new."""
    if not tasks:
        return 0
    import pyarrow as pa

    before = con.execute("SELECT count(*) FROM ls_tasks").fetchall()[0][0]
    table = pa.Table.from_pylist([
        {"server": server, "project_id": project_id, "task_id": t.task_id,
         "question_id": t.question_id, "batch_id": t.batch_id,
         "suggestion_shown": t.suggestion_shown, "pushed_at": pushed_at}
        for t in tasks
    ], schema=pa.schema([("server", pa.string()), ("project_id", pa.int64()), ("task_id", pa.int64()),
                         ("question_id", pa.string()), ("batch_id", pa.string()),
                         ("suggestion_shown", pa.bool_()), ("pushed_at", pa.timestamp("us"))]))
    con.register("_ls_tasks", table)
    try:
        con.execute(
            "INSERT INTO ls_tasks SELECT server, project_id, task_id, question_id, batch_id, "
            "suggestion_shown, pushed_at FROM _ls_tasks ON CONFLICT DO NOTHING"
        )
    finally:
        con.unregister("_ls_tasks")
    after = con.execute("SELECT count(*) FROM ls_tasks").fetchall()[0][0]
    return int(after - before)


def task_map(con: duckdb.DuckDBPyConnection, server: str, project_id: int) -> dict[int, TaskRef]:
    """task id -> TaskRef for one project."""
    rows = con.execute(
        "SELECT t.task_id, t.question_id, t.batch_id, t.suggestion_shown, "
        "CASE WHEN t.suggestion_shown THEN bi.suggestion_label END FROM ls_tasks t "
        "LEFT JOIN batch_items bi ON bi.batch_id = t.batch_id AND bi.question_id = t.question_id "
        "WHERE t.server = ? AND t.project_id = ?",
        [server, project_id],
    ).fetchall()
    return {int(r[0]): TaskRef(int(r[0]), r[1], r[2], bool(r[3]), r[4]) for r in rows}


def push_items(con: duckdb.DuckDBPyConnection, batch_id: str) -> list[dict[str, Any]]:
    """A batch's items in position order, with the question fields a task carries."""
    return dicts(con.execute(
        "SELECT bi.question_id, bi.position, bi.suggestion_label, bi.suggestion_prob, "
        "q.question, q.options, q.dataset_name FROM batch_items bi "
        "JOIN questions q ON q.id = bi.question_id WHERE bi.batch_id = ? ORDER BY bi.position",
        [batch_id],
    ))


def existing_questions(con: duckdb.DuckDBPyConnection, question_ids: Sequence[str]) -> set[str]:
    """The ids among `question_ids` that are questions of the store."""
    return {
        r[0] for r in con.execute(
            "SELECT id FROM questions WHERE id IN (SELECT unnest(?))", [list(question_ids)]
        ).fetchall()
    }


# -- users ----------------------------------------------------------------------------


def user_map(con: duckdb.DuckDBPyConnection, server: str) -> dict[int, str]:
    """Label Studio user id -> our annotator name."""
    rows = con.execute(
        "SELECT ls_user_id, annotator FROM ls_users WHERE server = ?", [server]
    ).fetchall()
    return {int(r[0]): r[1] for r in rows}


def add_users(
    con: duckdb.DuckDBPyConnection, server: str, users: Iterable[tuple[int, str | None, str]],
    created_at: datetime,
) -> None:
    """Record automatic mappings `(ls_user_id, email, annotator)`; existing ones are kept."""
    rows = [[server, uid, email, annotator, False, created_at] for uid, email, annotator in users]
    if rows:
        con.executemany("INSERT INTO ls_users VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows)


def set_user(
    con: duckdb.DuckDBPyConnection, server: str, ls_user_id: int, email: str | None,
    annotator: str, created_at: datetime,
) -> None:
    """Set the annotator of a Label Studio user explicitly (affects rows pulled from now on)."""
    if not annotator.strip():
        raise InputError("annotator name is empty")
    con.execute(
        "INSERT INTO ls_users VALUES (?,?,?,?,?,?) ON CONFLICT (server, ls_user_id) DO UPDATE SET "
        "email = excluded.email, annotator = excluded.annotator, explicit = excluded.explicit, "
        "created_at = excluded.created_at",
        [server, ls_user_id, email, annotator, True, created_at],
    )


def known_annotators(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of our app's users (to map a Label Studio user whose email or username matches)."""
    return {r[0] for r in con.execute("SELECT name FROM users").fetchall()}


# -- annotation versions ----------------------------------------------------------------


def live_versions(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int,
    task_ids: Sequence[int] | None = None,
) -> dict[int, VersionRow]:
    """Latest stored version of each Label Studio annotation not yet seen deleted (of the
    tasks `task_ids` only, when given)."""
    only_tasks = "" if task_ids is None else "AND task_id IN (SELECT unnest($t))"
    params: dict[str, Any] = {"s": server, "p": project_id}
    if task_ids is not None:
        params["t"] = list(task_ids)
    rows = dicts(con.execute(
        f"""SELECT * FROM (
               SELECT *, row_number() OVER (
                   PARTITION BY ls_annotation_id ORDER BY updated_at DESC, seen_at DESC) AS rn
               FROM ls_annotation_versions
               WHERE server = $s AND project_id = $p AND kind = 'version' {only_tasks}
                 AND ls_annotation_id NOT IN (
                     SELECT ls_annotation_id FROM ls_annotation_versions
                     WHERE server = $s AND project_id = $p AND kind = 'deleted')) AS latest
           WHERE rn = 1""",
        params,
    ))
    return {int(r["ls_annotation_id"]): VersionRow(**{k: v for k, v in r.items() if k != "rn"}) for r in rows}


def live_count(con: duckdb.DuckDBPyConnection, server: str, project_id: int) -> int:
    """How many Label Studio annotations of a project the store holds as live (latest
    version stored, not seen deleted): skips included, as Label Studio counts them."""
    row = con.execute(
        "SELECT count(DISTINCT ls_annotation_id) FROM ls_annotation_versions "
        "WHERE server = ? AND project_id = ? AND kind = 'version' AND ls_annotation_id NOT IN ("
        "SELECT ls_annotation_id FROM ls_annotation_versions WHERE server = ? AND project_id = ? "
        "AND kind = 'deleted')",
        [server, project_id, server, project_id],
    ).fetchone()
    return int(row[0]) if row else 0


def known_versions(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int
) -> set[tuple[int, str]]:
    """(ls_annotation_id, updated_at) of every version already stored for a project."""
    rows = con.execute(
        "SELECT ls_annotation_id, updated_at FROM ls_annotation_versions "
        "WHERE server = ? AND project_id = ? AND kind = 'version'",
        [server, project_id],
    ).fetchall()
    return {(int(r[0]), str(r[1])) for r in rows}


def label_rows_by_event(
    con: duckdb.DuckDBPyConnection, event_ids: Sequence[str]
) -> dict[str, Annotation]:
    """event id -> its stored `annotations` row (the fields a deletion may restate)."""
    cur = con.execute(
        "SELECT event_id, question_id, annotator, action, label, confidence, rationale, "
        "created_at, source FROM annotations WHERE event_id IN (SELECT unnest(?))",
        [list(event_ids)],
    )
    return {
        r[0]: Annotation(
            question_id=r[1], annotator=r[2], action=r[3], label=r[4], source=r[8],
            created_at=r[7], event_id=r[0], confidence=r[5], rationale=r[6],
        )
        for r in cur.fetchall()
    }


_VERSION_COLUMNS = (
    "server, project_id, ls_annotation_id, updated_at, kind, task_id, question_id, annotator, "
    "event_id, seen_at, ls_completed_by, ls_updated_by, edited_from, lead_time, "
    "accepted_prediction, ground_truth"
)


def latest_contents(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int
) -> dict[int, tuple[Any, ...]]:
    """Annotation id -> (event id, *`mapping.row_content`) of its latest stored version, for
    annotations not seen deleted: a new version saying the same is no new row."""
    rows = con.execute(
        """SELECT v.ls_annotation_id, v.event_id, a.action, a.label, a.confidence, a.rationale
           FROM (SELECT *, row_number() OVER (PARTITION BY ls_annotation_id
                                              ORDER BY updated_at DESC, seen_at DESC) rn
                 FROM ls_annotation_versions WHERE server = ? AND project_id = ?) v
           JOIN annotations a ON a.event_id = v.event_id
           WHERE v.rn = 1 AND v.kind = 'version'""",
        [server, project_id],
    ).fetchall()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def _version_schema() -> Any:
    """`VersionRow` as Arrow types: typed even when a column is all null (PostgreSQL does
    not cast a text column into an integer one)."""
    import pyarrow as pa

    types = {"project_id": pa.int64(), "ls_annotation_id": pa.int64(), "task_id": pa.int64(),
             "seen_at": pa.timestamp("us"), "ls_completed_by": pa.int64(), "ls_updated_by": pa.int64(),
             "lead_time": pa.float64(), "accepted_prediction": pa.bool_(), "ground_truth": pa.bool_()}
    return pa.schema([(f.name, types.get(f.name, pa.string())) for f in dataclasses.fields(VersionRow)])


def add_versions(con: duckdb.DuckDBPyConnection, rows: Sequence[VersionRow]) -> None:
    if not rows:
        return
    import pyarrow as pa

    table = pa.Table.from_pylist([r.__dict__ for r in rows], schema=_version_schema())
    con.register("_ls_versions", table)
    try:
        con.execute(
            f"INSERT INTO ls_annotation_versions ({_VERSION_COLUMNS}) "
            f"SELECT {_VERSION_COLUMNS} FROM _ls_versions ON CONFLICT DO NOTHING"
        )
    finally:
        con.unregister("_ls_versions")


# -- sync log -------------------------------------------------------------------------


def log_sync(
    con: duckdb.DuckDBPyConnection,
    *,
    server: str,
    project_id: int | None,
    direction: str,
    status: str,
    started_at: datetime,
    finished_at: datetime,
    batch_id: str | None = None,
    n_tasks: int = 0,
    n_new_rows: int = 0,
    n_deleted: int = 0,
    n_pages: int = 0,
    message: str | None = None,
) -> None:
    con.execute(
        "INSERT INTO ls_sync_log (server, project_id, direction, batch_id, status, started_at, "
        "finished_at, n_tasks, n_new_rows, n_deleted, n_pages, message) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [server, project_id, direction, batch_id, status, started_at, finished_at, n_tasks,
         n_new_rows, n_deleted, n_pages, message],
    )


def last_complete_pull(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int
) -> datetime | None:
    """When the latest complete pull of a project started (our clock, naive UTC); None if
    there was none. A pull is logged `ok` only once everything it listed is stored; a
    failed or skipped one is logged `failed`."""
    row = con.execute(
        "SELECT max(started_at) FROM ls_sync_log WHERE server = ? AND project_id = ? "
        "AND direction = 'pull' AND status = 'ok'",
        [server, project_id],
    ).fetchone()
    return row[0] if row else None


def last_syncs(
    con: duckdb.DuckDBPyConnection, server: str, *, limit: int = 20
) -> list[dict[str, Any]]:
    return dicts(con.execute(
        "SELECT * FROM ls_sync_log WHERE server = ? ORDER BY seq DESC LIMIT ?", [server, limit]
    ))


# `cur`: the latest version of each Label Studio annotation of server `$s` not seen deleted
# (project_id, task_id, ls_annotation_id, annotator, action of its row). Shared by the
# status queries below: only `label` rows fill an overlap slot (a skip or an empty
# submission does not).
_CURRENT_VERSIONS = """WITH cur AS (
               SELECT v.project_id, v.task_id, v.ls_annotation_id, v.annotator, a.action FROM (
                   SELECT *, row_number() OVER (PARTITION BY project_id, ls_annotation_id
                                                ORDER BY updated_at DESC, seen_at DESC) rn
                   FROM ls_annotation_versions WHERE server = $s AND kind = 'version') v
               JOIN annotations a ON a.event_id = v.event_id
               WHERE v.rn = 1 AND NOT EXISTS (
                   SELECT 1 FROM ls_annotation_versions d
                   WHERE d.server = $s AND d.kind = 'deleted' AND d.project_id = v.project_id
                     AND d.ls_annotation_id = v.ls_annotation_id)),
           per_task AS (SELECT project_id, task_id, count(*) FILTER (WHERE action = 'label') n
                        FROM cur GROUP BY project_id, task_id)"""


def project_counts(con: duckdb.DuckDBPyConnection, server: str) -> list[dict[str, Any]]:
    """Per project (retired ones too): tasks pushed, tasks with a current Label Studio label,
    labels, skips, tasks with K labels (`n_completed`) and with more (`n_over_k`), last syncs."""
    return dicts(con.execute(
        _CURRENT_VERSIONS + """
           SELECT p.project_id, p.name, p.overlap, p.show_suggestions, p.retired_at,
                  p.retired_reason,
                  (SELECT count(*) FROM ls_tasks t
                    WHERE t.server = $s AND t.project_id = p.project_id) AS n_tasks,
                  (SELECT count(*) FROM per_task pt WHERE pt.project_id = p.project_id
                    AND pt.n > 0) AS n_annotated_tasks,
                  (SELECT count(*) FROM cur WHERE cur.project_id = p.project_id
                    AND cur.action = 'label') AS n_annotations,
                  (SELECT count(*) FROM cur WHERE cur.project_id = p.project_id
                    AND cur.action = 'skip') AS n_skips,
                  (SELECT count(*) FROM per_task pt WHERE pt.project_id = p.project_id
                    AND pt.n >= p.overlap) AS n_completed,
                  (SELECT count(*) FROM per_task pt WHERE pt.project_id = p.project_id
                    AND pt.n > p.overlap) AS n_over_k,
                  (SELECT max(finished_at) FROM ls_sync_log l WHERE l.server = $s
                    AND l.project_id = p.project_id AND l.direction = 'pull' AND l.status = 'ok')
                    AS last_pull,
                  (SELECT max(finished_at) FROM ls_sync_log l WHERE l.server = $s
                    AND l.project_id = p.project_id AND l.direction = 'push' AND l.status = 'ok')
                    AS last_push
           FROM ls_projects p WHERE p.server = $s ORDER BY p.created_at, p.project_id""",
        {"s": server},
    ))


def over_k_tasks(
    con: duckdb.DuckDBPyConnection, server: str, project_id: int, overlap: int
) -> list[dict[str, Any]]:
    """Tasks of a project with more current labels than its overlap K (Label Studio does not
    enforce K against a direct POST), with the annotators of those labels."""
    return dicts(con.execute(
        _CURRENT_VERSIONS + """
           SELECT cur.task_id, min(t.question_id) AS question_id,
                  array_agg(cur.annotator ORDER BY cur.annotator) AS annotators
           FROM cur JOIN ls_tasks t ON t.server = $s AND t.project_id = cur.project_id
                                   AND t.task_id = cur.task_id
           WHERE cur.project_id = $p AND cur.action = 'label'
           GROUP BY cur.task_id HAVING count(*) > $k ORDER BY cur.task_id""",
        {"s": server, "p": project_id, "k": overlap},
    ))
