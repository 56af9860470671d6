"""The `jobs`, `loop_policy` and `loop_rounds` tables (migration 9).

Functions take an open connection (`Store.run(lambda con: ...)`); the rules they apply
(which state may follow which, whether a lease ran out, which job is next) are
`curation.jobs`. A worker's writes (`heartbeat`, `report_progress`, `finish`, `fail`) touch
a job only while it is running under that worker: a job that was cancelled, or re-queued
because the lease ran out, is no longer the worker's and its late writes change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb

from curation import jobs as J
from curation.errors import NotFoundError
from curation.store.annotations import human_sql
from curation.store.sql import dicts

_JSON_COLUMNS = ("params", "result", "policy", "status")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for col in _JSON_COLUMNS:
        if isinstance(row.get(col), str):
            row[col] = json.loads(row[col])
    return row


def _dump(value: Any) -> str:
    return json.dumps(value, default=str, allow_nan=False, sort_keys=True)


# -- jobs -------------------------------------------------------------------------------
def enqueue(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    params: Mapping[str, Any],
    *,
    now: datetime,
    requested_by: str | None = None,
    depends_on: int | None = None,
    loop_round: int | None = None,
    max_attempts: int = J.DEFAULT_MAX_ATTEMPTS,
) -> int:
    """Add a queued job; returns its id."""
    J.check_kind(kind)
    row = con.execute(
        "INSERT INTO jobs (kind, params, state, requested_by, depends_on, loop_round, max_attempts, created_at, message) "
        "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, 'queued') RETURNING id",
        [kind, _dump(dict(params)), requested_by, depends_on, loop_round, max_attempts, now],
    ).fetchall()
    return int(row[0][0])


def get_job(con: duckdb.DuckDBPyConnection, job_id: int) -> dict[str, Any]:
    rows = dicts(con.execute("SELECT * FROM jobs WHERE id = ?", [job_id]))
    if not rows:
        raise NotFoundError(f"no job {job_id}; `curation jobs list` lists jobs")
    return _decode(rows[0])


def list_jobs(con: duckdb.DuckDBPyConnection, *, states: Sequence[str] | None = None,
              loop_round: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Jobs newest first (optionally only some states, or one loop round's)."""
    sql, args = "SELECT * FROM jobs WHERE true", list[Any]()
    if states:
        sql += " AND state IN (SELECT unnest(?))"
        args.append(list(states))
    if loop_round is not None:
        sql += " AND loop_round = ?"
        args.append(loop_round)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(int(limit))
    return [_decode(r) for r in dicts(con.execute(sql, args))]


def requeue_expired(con: duckdb.DuckDBPyConnection, now: datetime) -> list[dict[str, Any]]:
    """Running jobs whose lease ran out: re-queued or failed (`jobs.after_lost_lease`)."""
    expired = dicts(con.execute(
        "SELECT id, worker_id, heartbeat_at, attempts, max_attempts, log_tail FROM jobs "
        "WHERE state = 'running' AND lease_expires_at < ?", [now]))
    out = []
    for job in expired:
        state, reason = J.after_lost_lease(job, now)
        con.execute(
            "UPDATE jobs SET state = ?, message = ?, error = ?, worker_id = NULL, lease_expires_at = NULL, "
            "finished_at = ?, log_tail = ? WHERE id = ?",
            [state, reason, reason if state == "failed" else None, now if state == "failed" else None,
             J.append_log(job["log_tail"], f"{now:%H:%M:%S} {reason}"), job["id"]],
        )
        out.append({"id": job["id"], "state": state, "reason": reason})
    return out


def _cancel_blocked(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Queued jobs whose dependency failed or was cancelled can never run: cancel them
    (repeated, so a chain is cancelled whole)."""
    while True:
        queued = dicts(con.execute("SELECT id, depends_on FROM jobs WHERE state = 'queued' AND depends_on IS NOT NULL"))
        if not queued:
            return
        states = _states(con, [int(j["depends_on"]) for j in queued])
        changed = False
        for job in queued:
            why = J.blocked(job, states)
            if why is not None:
                con.execute("UPDATE jobs SET state = 'cancelled', message = ?, finished_at = ? WHERE id = ?",
                            [f"cancelled: {why}", now, job["id"]])
                changed = True
        if not changed:
            return


def _states(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {int(i): s for i, s in con.execute(
        "SELECT id, state FROM jobs WHERE id IN (SELECT unnest(?))", [list(ids)]).fetchall()}


def claim(
    con: duckdb.DuckDBPyConnection,
    worker_id: str,
    *,
    now: datetime,
    lease_seconds: float,
    kinds: Sequence[str] | None = None,
    max_running_train: int = J.MAX_RUNNING_TRAIN,
) -> dict[str, Any] | None:
    """In the caller's one transaction: re-queue jobs whose lease ran out, cancel jobs that
    can never run, and take the next job (`jobs.pick_next`) for `worker_id`. Two workers
    never get the same job: the update is conditional on the job still being queued, and
    concurrent claims conflict in DuckDB (`Store.run` retries the loser)."""
    requeue_expired(con, now)
    _cancel_blocked(con, now)
    queued = dicts(con.execute("SELECT id, kind, depends_on FROM jobs WHERE state = 'queued' ORDER BY id"))
    if not queued:
        return None
    running = [r[0] for r in con.execute("SELECT kind FROM jobs WHERE state = 'running'").fetchall()]
    states = _states(con, [int(j["depends_on"]) for j in queued if j["depends_on"] is not None])
    job = J.pick_next(queued, states, running, kinds, max_running_train=max_running_train)
    if job is None:
        return None
    taken = con.execute(
        "UPDATE jobs SET state = 'running', worker_id = ?, attempts = attempts + 1, started_at = ?, "
        "heartbeat_at = ?, lease_expires_at = ?, progress = 0, message = 'started', error = NULL "
        "WHERE id = ? AND state = 'queued' RETURNING id",
        [worker_id, now, now, J.lease_until(now, lease_seconds), job["id"]],
    ).fetchall()
    if not taken:
        return None
    full = get_job(con, int(job["id"]))
    con.execute("UPDATE jobs SET log_tail = ? WHERE id = ?",
                [J.append_log(full["log_tail"], f"{now:%H:%M:%S} {worker_id} started attempt {full['attempts']}"), job["id"]])
    return full


def heartbeat(con: duckdb.DuckDBPyConnection, job_id: int, worker_id: str, *, now: datetime,
              lease_seconds: float) -> bool:
    """Renew the lease; False if the job is no longer running under this worker."""
    return bool(con.execute(
        "UPDATE jobs SET heartbeat_at = ?, lease_expires_at = ? WHERE id = ? AND state = 'running' "
        "AND worker_id = ? RETURNING id", [now, J.lease_until(now, lease_seconds), job_id, worker_id]).fetchall())


def report_progress(con: duckdb.DuckDBPyConnection, job_id: int, worker_id: str, *, fraction: float,
                    message: str, now: datetime, lease_seconds: float, log: bool = False) -> bool:
    """Record progress (and renew the lease); False if the job is no longer this worker's."""
    rows = con.execute("SELECT log_tail FROM jobs WHERE id = ? AND state = 'running' AND worker_id = ?",
                       [job_id, worker_id]).fetchall()
    if not rows:
        return False
    tail = J.append_log(rows[0][0], f"{now:%H:%M:%S} {message}") if log else rows[0][0]
    con.execute(
        "UPDATE jobs SET progress = ?, message = ?, log_tail = ?, heartbeat_at = ?, lease_expires_at = ? WHERE id = ?",
        [max(0.0, min(1.0, fraction)), message, tail, now, J.lease_until(now, lease_seconds), job_id],
    )
    return True


def _end(con: duckdb.DuckDBPyConnection, job_id: int, worker_id: str, *, state: str, now: datetime,
         message: str, result: Any = None, error: str | None = None) -> bool:
    rows = con.execute("SELECT log_tail FROM jobs WHERE id = ? AND state = 'running' AND worker_id = ?",
                       [job_id, worker_id]).fetchall()
    if not rows:
        return False
    con.execute(
        "UPDATE jobs SET state = ?, finished_at = ?, message = ?, result = ?, error = ?, lease_expires_at = NULL, "
        "progress = CASE WHEN ? = 'done' THEN 1 ELSE progress END, log_tail = ? WHERE id = ?",
        [state, now, message, None if result is None else _dump(result), error, state,
         J.append_log(rows[0][0], f"{now:%H:%M:%S} {message}"), job_id],
    )
    return True


def finish(con: duckdb.DuckDBPyConnection, job_id: int, worker_id: str, *, result: Any, now: datetime,
           message: str = "done") -> bool:
    """Mark the job done with its result; False if it is no longer this worker's."""
    return _end(con, job_id, worker_id, state="done", now=now, message=message, result=result)


def fail(con: duckdb.DuckDBPyConnection, job_id: int, worker_id: str, *, error: str, now: datetime) -> bool:
    """Mark the job failed with the reason; False if it is no longer this worker's."""
    return _end(con, job_id, worker_id, state="failed", now=now, message=f"failed: {error}", error=error)


def cancel(con: duckdb.DuckDBPyConnection, job_id: int, *, now: datetime, by: str | None) -> dict[str, Any]:
    """Cancel a queued or running job (a running one's worker stops at its next progress
    report or heartbeat); jobs waiting on it are cancelled with it."""
    job = get_job(con, job_id)
    J.check_transition(job_id, job["state"], "cancelled")
    msg = f"cancelled by {by}" if by else "cancelled"
    con.execute("UPDATE jobs SET state = 'cancelled', finished_at = ?, message = ?, lease_expires_at = NULL, "
                "log_tail = ? WHERE id = ?", [now, msg, J.append_log(job["log_tail"], f"{now:%H:%M:%S} {msg}"), job_id])
    _cancel_blocked(con, now)
    return get_job(con, job_id)


def note_ended(con: duckdb.DuckDBPyConnection, job_id: int, note: str, *, now: datetime,
               result: Mapping[str, Any] | None = None) -> bool:
    """Add `note` to a failed or cancelled job's message (and error, if it failed) and log,
    and set its result if given; False if the job is not failed or cancelled."""
    job = get_job(con, job_id)
    if job["state"] not in ("failed", "cancelled"):
        return False
    error = f"{job['error']}; {note}" if job["state"] == "failed" else job["error"]
    keep = result if result is not None else job["result"]
    con.execute(
        "UPDATE jobs SET message = ?, error = ?, result = ?, log_tail = ? WHERE id = ? AND state = ?",
        [f"{job['message']}; {note}", error, None if keep is None else _dump(keep),
         J.append_log(job["log_tail"], f"{now:%H:%M:%S} {note}"), job_id, job["state"]])
    return True


def withdrawn_models(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Model version -> why, of models a train job registered before it failed or was
    cancelled (`services.loop.settle_train_folder` names them in the job's result): kept in
    `models`, never the current model."""
    out: dict[str, str] = {}
    for (raw,) in con.execute("SELECT result FROM jobs WHERE kind = 'train' AND state IN ('failed', 'cancelled') "
                              "AND result IS NOT NULL").fetchall():
        res = json.loads(raw) if isinstance(raw, str) else raw
        if isinstance(res, dict) and res.get("withdrawn") and res.get("model_version"):
            out[str(res["model_version"])] = str(res["withdrawn"])
    return out


def job_result(con: duckdb.DuckDBPyConnection, job_id: int) -> dict[str, Any]:
    """The result of a done job (what a dependent job reads)."""
    job = get_job(con, job_id)
    if job["state"] != "done":
        raise NotFoundError(f"job {job_id} is {job['state']}, so it has no result")
    return dict(job["result"] or {})


# -- the loop ---------------------------------------------------------------------------
def get_policy(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The loop's policy row (policy, paused, stopped_reason, updated_at, updated_by), or None."""
    rows = dicts(con.execute("SELECT * FROM loop_policy WHERE id = 1"))
    return _decode(rows[0]) if rows else None


def set_policy(con: duckdb.DuckDBPyConnection, policy: Mapping[str, Any], *, paused: bool,
               stopped_reason: str | None, now: datetime, by: str | None) -> None:
    con.execute(
        "INSERT INTO loop_policy (id, policy, paused, stopped_reason, updated_at, updated_by) "
        "VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET policy = excluded.policy, "
        "paused = excluded.paused, stopped_reason = excluded.stopped_reason, "
        "updated_at = excluded.updated_at, updated_by = excluded.updated_by", [_dump(dict(policy)), paused, stopped_reason, now, by])


def label_seq(con: duckdb.DuckDBPyConnection) -> int:
    """The newest annotation row's sequence number (0 in an empty store): a label snapshot."""
    return int(con.execute("SELECT coalesce(max(seq), 0) FROM annotations").fetchall()[0][0])


def new_human_labels(con: duckdb.DuckDBPyConnection, since_seq: int) -> int:
    """Labels given by people (`rules.HUMAN_SOURCES`) after annotation row `since_seq`."""
    return int(con.execute(
        f"SELECT count(*) FROM annotations WHERE seq > ? AND action = 'label' AND {human_sql()}",
        [since_seq]).fetchall()[0][0])


def last_round(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    rows = dicts(con.execute("SELECT * FROM loop_rounds ORDER BY round DESC LIMIT 1"))
    return _decode(rows[0]) if rows else None


def list_rounds(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every round, oldest first."""
    return [_decode(r) for r in dicts(con.execute("SELECT * FROM loop_rounds ORDER BY round"))]


def start_round(con: duckdb.DuckDBPyConnection, *, round_no: int, forced: bool, requested_by: str | None,
                seq: int, n_new: int, policy: Mapping[str, Any], chain: Sequence[tuple[str, Mapping[str, Any]]],
                now: datetime, max_attempts: int = J.DEFAULT_MAX_ATTEMPTS) -> list[int]:
    """Record round `round_no` and queue its jobs, each waiting for the one before."""
    con.execute(
        "INSERT INTO loop_rounds (round, state, forced, requested_by, label_seq, n_new_labels, policy, started_at, message) "
        "VALUES (?, 'running', ?, ?, ?, ?, ?, ?, 'queued')",
        [round_no, forced, requested_by, seq, n_new, _dump(dict(policy)), now])
    ids: list[int] = []
    for kind, params in chain:
        ids.append(enqueue(con, kind, params, now=now, requested_by=requested_by or "loop",
                           depends_on=ids[-1] if ids else None, loop_round=round_no, max_attempts=max_attempts))
    return ids


def end_round(con: duckdb.DuckDBPyConnection, round_no: int, *, state: str, message: str, now: datetime,
              status: Mapping[str, Any] | None, model_version: str | None, batch_id: str | None) -> bool:
    """Close a running round (False if it was closed already)."""
    return bool(con.execute(
        "UPDATE loop_rounds SET state = ?, message = ?, finished_at = ?, status = ?, model_version = ?, batch_id = ? "
        "WHERE round = ? AND state = 'running' RETURNING round",
        [state, message, now, None if status is None else _dump(dict(status)), model_version, batch_id, round_no],
    ).fetchall())
