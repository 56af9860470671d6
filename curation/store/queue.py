"""The annotation queue on DuckDB: gold draw, next item with leases, submit/skip/undo, progress.

The rules are `curation.assign` and the in-memory state `curation.queue_index` (both pure);
this module holds the SQL: reading rows into the index, leases, submit, skip, undo. Each user action is one `Store.run`: submitting a label and fetching
the next question happen in the same transaction. Inside one process (the Streamlit
server) queue transactions are serialized by a lock, so two annotators can never take the
last free slot of an item at once; DuckDB itself lets only one process write the file.

K is a hard limit at every write, not only when the next question is chosen: a label and
an undo (which re-leases) ask `assign.is_open_for` over the index state inside their own
transaction, so a late label after the lease expired, or an undo after someone took the
slot of a skipped item, is refused with a message instead of making K+1 labels.

Labels go through `curation.store.annotations.append` (append-only, idempotent by
`event_id`): a double-submitted form adds one row.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import duckdb

from curation import assign
from curation.errors import ConflictError, InputError, PermissionDenied
from curation.queue_index import Item, QueueIndex, Slot
from curation.schema import LABELS
from curation.store import Store, commit, path_of, utcnow
from curation.store.annotations import Annotation, append, human_sql
from curation.store.postgres import QUEUE_LOCK_KEY, PgStore

_QUEUE_LOCK = threading.RLock()
T = TypeVar("T")


def run_serialized(store: Store, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run `fn(con)` as one transaction, serialized with the other queue transactions of
    this process, so two sessions can never take the last free slot of an item at once.
    (Other processes are kept out of the file by the store's own gate; on PostgreSQL every
    replica's queue transactions take one advisory lock in turn, `PgStore.run(lock=...)`.)

    The file is opened *before* waiting for the lock: threads of one process share a DuckDB
    instance while any of their connections is open, so under load the open costs ~0 ms and
    happens outside the critical section. Under the lock the transaction is restarted (a
    fresh snapshot that sees the previous holder's commit) and committed before the lock is
    released; the empty transaction left behind is what `Store.connect` commits. An error
    inside rolls back through `Store.connect`.
    """
    if isinstance(store, PgStore):  # every replica's queue transactions in turn
        def locked(con: duckdb.DuckDBPyConnection) -> T:
            try:
                return fn(con)
            except BaseException:
                forget_queue_state()
                raise

        return store.run(locked, lock=QUEUE_LOCK_KEY)
    with store.connect() as con, _QUEUE_LOCK:
        con.execute("COMMIT")
        con.execute("BEGIN TRANSACTION")
        try:
            result = fn(con)
            commit(con)  # the write-ahead log it may create stays private (0600)
        except BaseException:
            forget_queue_state()  # it may hold rows of the transaction being rolled back
            raise
        con.execute("BEGIN TRANSACTION")
        return result


# -- the queue state (`curation.queue_index`), refreshed from the store -----------------

_INDEXES: dict[str, QueueIndex] = {}
_INDEXES_LOCK = threading.Lock()
_ROW_COLUMNS = "seq, question_id, annotator, action, created_at, source"


def _index_for(con: duckdb.DuckDBPyConnection) -> QueueIndex:
    key = path_of(con)
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = QueueIndex()
        return index


def _refresh(index: QueueIndex, con: duckdb.DuckDBPyConnection) -> None:
    """Bring `index` in step with the store (see `curation.queue_index`)."""
    n_items, n_rows, seq_sum = con.execute(
        "SELECT (SELECT count(*) FROM batch_items), count(*), coalesce(sum(seq), 0) FROM annotations"
    ).fetchall()[0]
    if index.items_sig != n_items:
        index.set_items(con.execute(
            "SELECT bi.batch_id, bi.question_id, b.kind, b.created_at, bi.position, b.overlap, "
            "b.show_suggestions, bi.suggestion_label, bi.suggestion_prob "
            "FROM batch_items bi JOIN batches b ON b.id = bi.batch_id"
        ).fetchall(), n_items)
    if index.in_step(n_rows, seq_sum):
        return
    new = con.execute(f"SELECT {_ROW_COLUMNS} FROM annotations WHERE seq > ?", [index.last_seq]).fetchall()
    if index.continues(new, n_rows, seq_sum):
        index.fold(new)
    else:
        index.rebuild(con.execute(f"SELECT {_ROW_COLUMNS} FROM annotations").fetchall())


def _leases(
    con: duckdb.DuckDBPyConnection, now: datetime, question_id: str | None = None
) -> list[tuple[str, str, datetime]]:
    """Unexpired leases (of one question, if given)."""
    sql = "SELECT question_id, annotator, assigned_at FROM assignments WHERE expires_at > ?"
    params: list[Any] = [now]
    if question_id is not None:
        sql += " AND question_id = ?"
        params.append(question_id)
    return [tuple(r) for r in con.execute(sql, params).fetchall()]  # type: ignore[misc]


def _with_index(con: duckdb.DuckDBPyConnection, fn: Callable[[QueueIndex], T]) -> T:
    index = _index_for(con)
    with index.lock:
        try:
            _refresh(index, con)
            return fn(index)
        except BaseException:
            index.reset()
            raise


def _queue_state(con: duckdb.DuckDBPyConnection, annotator: str, now: datetime) -> tuple[int, int, Item | None]:
    leases = _leases(con, now)
    return _with_index(con, lambda index: index.choose(leases, annotator))


def _slot(
    con: duckdb.DuckDBPyConnection, annotator: str, batch_id: str, question_id: str, now: datetime
) -> Slot | None:
    """The item's slots for `annotator` inside this transaction (`QueueIndex.slot`)."""
    leases = _leases(con, now, question_id)  # the slot needs this question's leases only
    return _with_index(con, lambda index: index.slot(leases, annotator, batch_id, question_id))


def _clock(at: datetime, now: datetime, fmt: str = "%H:%M:%S") -> str:
    """`at` as the screen shows it: the time of day if it is today, else the date too."""
    return f"{at:{fmt}} UTC" if at.date() == now.date() else f"{at:%Y-%m-%d} {at:{fmt}} UTC"


def forget_queue_state() -> None:
    """Drop the in-memory queue state (it is rebuilt from the store on the next action)."""
    with _INDEXES_LOCK:
        for index in _INDEXES.values():
            with index.lock:
                index.reset()


def _lease_upsert(
    con: duckdb.DuckDBPyConnection, batch_id: str, question_id: str, annotator: str,
    now: datetime, minutes: float,
) -> datetime:
    expires = assign.lease_expiry(now, minutes)
    key = [batch_id, question_id, annotator]
    # a lookup then UPDATE or INSERT: ~3x cheaper in DuckDB than INSERT ... ON CONFLICT DO UPDATE
    if con.execute(
        "SELECT 1 FROM assignments WHERE batch_id = ? AND question_id = ? AND annotator = ?", key
    ).fetchall():
        con.execute(
            "UPDATE assignments SET assigned_at = ?, expires_at = ? "
            "WHERE batch_id = ? AND question_id = ? AND annotator = ?",
            [now, expires, *key],
        )
    else:
        con.execute(
            "INSERT INTO assignments (batch_id, question_id, annotator, assigned_at, expires_at) "
            "VALUES (?,?,?,?,?)",
            [*key, now, expires],
        )
    return expires


def next_task_preview(
    con: duckdb.DuckDBPyConnection, annotator: str, *, now: datetime | None = None
) -> tuple[int, int]:
    """`(done, remaining)` for the annotator, without leasing anything."""
    n_open, n_done, _ = _queue_state(con, annotator, now or utcnow())
    return n_done, n_open


def peek_next(con: duckdb.DuckDBPyConnection, annotator: str, *, now: datetime | None = None) -> str | None:
    """The question `next_task` would lease now, without leasing it."""
    top = _queue_state(con, annotator, now or utcnow())[2]
    return top.question_id if top is not None else None


def candidates(
    con: duckdb.DuckDBPyConnection, annotator: str, *, now: datetime | None = None
) -> list[assign.Candidate]:
    """Every batch item as `assign.Candidate`s for `annotator`, computed in Python.

    The slow, obvious version of what `_QueueIndex` does incrementally: tests check that
    `assign.choose_next(candidates(...))` agrees with `peek_next`, and the benchmark uses it
    as the naive baseline.
    """
    now = now or utcnow()
    items = con.execute(
        "SELECT bi.batch_id, bi.question_id, b.kind, b.created_at, bi.position, b.overlap "
        "FROM batch_items bi JOIN batches b ON b.id = bi.batch_id"
    ).fetchall()
    latest: dict[tuple[str, str], str] = {}
    latest_lab: dict[tuple[str, str], str] = {}
    for qid, ann, action in con.execute(
        f"SELECT question_id, annotator, action FROM annotations WHERE {human_sql()} ORDER BY created_at, seq"
    ).fetchall():
        latest[(qid, ann)] = action
        if action in ("label", "retract"):
            latest_lab[(qid, ann)] = action
    n_labels: dict[str, int] = {}
    for (qid, _), action in latest_lab.items():
        n_labels[qid] = n_labels.get(qid, 0) + (action == "label")
    n_leases: dict[str, int] = {}
    mine: dict[str, datetime] = {}
    for qid, ann, at in con.execute(
        "SELECT question_id, annotator, assigned_at FROM assignments WHERE expires_at > ?", [now]
    ).fetchall():
        if latest.get((qid, ann)) in ("label", "skip"):
            continue
        if ann == annotator:
            mine[qid] = max(at, mine.get(qid, at))
        else:
            n_leases[qid] = n_leases.get(qid, 0) + 1
    return [
        assign.Candidate(
            batch_id=b, question_id=qid, kind=kind, batch_created_at=created, position=pos,
            overlap=overlap, n_labels=n_labels.get(qid, 0), n_leases=n_leases.get(qid, 0),
            done_by_me=latest.get((qid, annotator)) in ("label", "skip"), my_assigned_at=mine.get(qid),
        )
        for b, qid, kind, created, pos, overlap in items
    ]


def next_task(
    con: duckdb.DuckDBPyConnection,
    annotator: str,
    *,
    now: datetime | None = None,
    lease_minutes: float | None = None,
) -> dict[str, Any]:
    """Lease the next question for `annotator` and return it with their progress.

    Returns `{"task": {...} | None, "done": n, "remaining": m, "progress": 0..1}`; the task
    holds the question, its options, the answer (the page hides it until asked), the batch
    and the model suggestion if this batch shows one (never for gold).
    """
    now = now or utcnow()
    minutes = assign.lease_minutes(lease_minutes)
    n_open, n_done, top = _queue_state(con, annotator, now)
    out: dict[str, Any] = {
        "task": None,
        "done": n_done,
        "remaining": n_open,
        "progress": assign.progress(n_done, n_open),
    }
    if top is None:
        return out
    batch_id, qid, kind = top.batch_id, top.question_id, top.kind
    expires = _lease_upsert(con, batch_id, qid, annotator, now, minutes)
    # a primary-key lookup (a join would scan the whole questions table)
    dataset_name, split, text, options, answer_idx, answer = con.execute(
        "SELECT dataset_name, split, question, options, answer_idx, answer FROM questions WHERE id = ?",
        [qid],
    ).fetchall()[0]
    suggest = bool(top.show_suggestions) and kind != "gold" and top.suggestion_label is not None
    out["task"] = {
        "batch_id": batch_id,
        "batch_kind": kind,
        "question_id": qid,
        "dataset_name": dataset_name,
        "split": split,
        "question": text,
        "options": json.loads(options) if isinstance(options, str) else dict(options),
        "answer_idx": answer_idx,
        "answer": answer,
        "suggestion_label": top.suggestion_label if suggest else None,
        "suggestion_prob": top.suggestion_prob if suggest else None,
        "suggestion_shown": suggest,
        "lease_expires_at": expires,
    }
    return out


def _checked_batch(
    con: duckdb.DuckDBPyConnection, annotator: str, question_id: str, action: str, now: datetime
) -> str:
    """The batch a label/skip of `question_id` by `annotator` goes to, once the checks of a
    write have passed (`submit`'s docstring); raises ConflictError / PermissionDenied."""
    # "finished" as the queue counts it (`assign.Candidate.done_by_me`): the latest own row
    last = con.execute(
        "SELECT action, label, source, created_at FROM annotations WHERE question_id = ? AND annotator = ? "
        "ORDER BY created_at DESC, seq DESC LIMIT 1",
        [question_id, annotator],
    ).fetchall()
    if last and last[0][0] in ("label", "skip"):
        done, done_label, source, at = last[0]
        what = f"labeled {done_label!r}" if done == "label" else "skipped"
        when = _clock(at, now)
        where, fix = (
            (" (another tab or window?)", "Use Undo to change it.") if source == "app"
            else (f" in {source}", f"Change it in {source}.")
        )
        raise ConflictError(
            f"question {question_id} was already {what} by you{where} at {when}; nothing changed. {fix}"
        )
    leased = con.execute(
        "SELECT batch_id, expires_at FROM assignments WHERE annotator = ? AND question_id = ? "
        "ORDER BY assigned_at DESC LIMIT 1",
        [annotator, question_id],
    ).fetchall()
    if not leased:
        raise PermissionDenied(f"question {question_id!r} is not assigned to {annotator!r}")
    batch_id, expires_at = leased[0]
    if action == "label":  # K is a hard limit: the slot must still be this person's
        slot = _slot(con, annotator, batch_id, question_id, now)
        if slot is not None and not assign.is_open_for(False, slot.my_lease, slot.load, slot.overlap):
            by = "labeled" if slot.leases == 0 else "labeled or being labeled"
            raise ConflictError(
                f"question {question_id} is already {by} by {slot.load} of {slot.overlap} people "
                f"(your lease expired at {_clock(expires_at, now, '%H:%M')}); nothing was recorded."
            )
    return str(batch_id)


def submit(
    con: duckdb.DuckDBPyConnection,
    annotator: str,
    question_id: str,
    *,
    action: str,
    event_id: str,
    label: str | None = None,
    confidence: int | None = None,
    rationale: str | None = None,
    guidelines_version: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Record a label or a skip for a question the annotator was assigned.

    Returns True if a row was added, False if `event_id` was already stored (double submit,
    a replayed event). Raises PermissionDenied if the question was never assigned to this
    annotator, and ConflictError (naming the question and what is stored) if the annotator
    has already finished it: their latest row for it is a label or a skip, e.g. made in
    another tab. After an undo (a `retract` is the latest row) it may be labeled again.

    A label must find the item still open for the annotator (`assign.is_open_for`, in this
    transaction): their lease is live, or it expired and the slot is still free (the late
    label is kept). If others filled the K slots meanwhile, ConflictError says so and when
    the lease expired; nothing is recorded. A skip takes no slot: it is always recorded.
    Whether a suggestion was shown is decided here from the batch (never on gold).
    """
    now = now or utcnow()
    if action not in ("label", "skip"):
        raise InputError(f"action {action!r} is not label or skip (undo has its own call)")
    if action == "label" and label not in LABELS:
        raise InputError(f"label {label!r} is not one of {', '.join(LABELS)}")
    # Small indexed lookups: DuckDB runs these ~5x faster than one query joining them.
    if con.execute("SELECT 1 FROM annotations WHERE event_id = ?", [event_id]).fetchall():
        return False
    batch_id = _checked_batch(con, annotator, question_id, action, now)
    kind, show, sug_label = con.execute(
        "SELECT b.kind, b.show_suggestions, bi.suggestion_label FROM batches b "
        "LEFT JOIN batch_items bi ON bi.batch_id = b.id AND bi.question_id = ? WHERE b.id = ?",
        [question_id, batch_id],
    ).fetchall()[0]
    shown = bool(show) and kind != "gold" and sug_label is not None
    rationale = (rationale or "").strip() or None
    row = Annotation(
        question_id=question_id,
        annotator=annotator,
        action=action,
        label=label if action == "label" else None,
        source="app",
        created_at=now,
        event_id=event_id,
        confidence=confidence if action == "label" else None,
        rationale=rationale if action == "label" else None,
        guidelines_version=guidelines_version,
        suggestion_shown=shown,
        batch_id=batch_id,
    )
    return append(con, [row]) == 1


def _own_app_latest(con: duckdb.DuckDBPyConnection, annotator: str) -> list[dict[str, Any]]:
    """Per question, the annotator's latest app row (`assign.undo_target`'s input)."""
    cur = con.execute(
        """SELECT question_id, action, max_seq AS seq, batch_id FROM (
               SELECT question_id, action, batch_id, max(seq) OVER (PARTITION BY question_id) AS max_seq,
                      row_number() OVER (PARTITION BY question_id ORDER BY created_at DESC, seq DESC) AS rn
               FROM annotations WHERE annotator = ? AND source = 'app') AS latest
           WHERE rn = 1""",
        [annotator],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def undo_preview(con: duckdb.DuckDBPyConnection, annotator: str) -> str | None:
    """The question `undo` would re-open now, or None: what the page shows as "Undo last"."""
    return assign.undo_target(_own_app_latest(con, annotator))


def undo(
    con: duckdb.DuckDBPyConnection,
    annotator: str,
    *,
    event_id: str,
    expected: str | None = None,
    now: datetime | None = None,
    lease_minutes: float | None = None,
) -> str | None:
    """Take back the annotator's most recent label or skip made in the app (a `retract` row)
    and lease that question to them again. Returns its id, or None if nothing to undo.

    The question must still be open for them afresh (`assign.is_open_for` without a lease,
    their own label left out): undoing a label always is (the label held the slot); after
    a skip others may have filled the K slots, and then ConflictError says so and nothing
    changes (a retract they could not follow with a label would only lose their answer).

    `expected`: the question the screen showed as the action to undo when it was drawn
    (`undo_preview` then), `""` if it showed nothing to undo, None for no check. If the
    target is now a different question (another tab acted, or a keypress was meant for an
    older screen), ConflictError names both and nothing changes.
    Idempotent by `event_id`; repeated undos (new event ids) walk further back.
    """
    now = now or utcnow()
    prior = con.execute(
        "SELECT question_id FROM annotations WHERE event_id = ?", [event_id]
    ).fetchall()
    if prior:
        return str(prior[0][0])
    latest = _own_app_latest(con, annotator)
    target = assign.undo_target(latest)
    if expected is not None and (target or "") != expected:
        shown = f"not {expected} shown on this screen" if expected else "while this screen showed nothing to undo"
        if target is None:
            raise ConflictError(
                f"Undo not applied: question {expected} shown on this screen has no label or skip of "
                "yours left to undo (undone in another tab or window?); nothing changed."
            )
        raise ConflictError(
            f"Undo not applied: your last action is now question {target}, {shown}. "
            f"Press U again to undo {target}."
        )
    if target is None:
        return None
    row = next(r for r in latest if r["question_id"] == target)
    batch_id = row["batch_id"]
    slot = _slot(con, annotator, batch_id, target, now) if batch_id is not None else None
    if slot is not None and not assign.is_open_for(False, None, slot.load, slot.overlap):
        what = "skipped" if row["action"] == "skip" else "labeled"
        taken = f"{slot.labels} of {slot.overlap} labels done" + (
            f", {slot.leases} being labeled" if slot.leases else "")
        raise ConflictError(
            f"Undo not applied: question {target} was taken by someone else after you {what} it "
            f"({taken}); nothing changed."
        )
    append(con, [Annotation(
        question_id=target, annotator=annotator, action="retract", label=None, source="app",
        created_at=now, event_id=event_id, batch_id=batch_id,
    )])
    if batch_id is not None:
        _lease_upsert(con, batch_id, target, annotator, now, assign.lease_minutes(lease_minutes))
    return target


def change_label(
    con: duckdb.DuckDBPyConnection,
    annotator: str,
    question_id: str,
    *,
    label: str,
    event_id: str,
    confidence: int | None = None,
    rationale: str | None = None,
    guidelines_version: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Change the annotator's own earlier answer to a question (their history on "My
    progress"): a new `label` row; the earlier rows are kept (append-only).

    Only an answer given in the app (a Label Studio label is changed there). A change of a
    label in force keeps the number of raters (the person holds the slot already): always
    allowed. A skipped or undone question becomes labeled, so it must be open for them as a
    new label is (`assign.is_open_for`, their live lease counts): else ConflictError and
    nothing changes. Returns False for a repeated `event_id` (nothing added).
    """
    now = now or utcnow()
    if label not in LABELS:
        raise InputError(f"label {label!r} is not one of {', '.join(LABELS)}")
    if con.execute("SELECT 1 FROM annotations WHERE event_id = ?", [event_id]).fetchall():
        return False
    last = con.execute(
        "SELECT action, label, source, batch_id FROM annotations WHERE question_id = ? AND annotator = ? "
        "ORDER BY created_at DESC, seq DESC LIMIT 1",
        [question_id, annotator],
    ).fetchall()
    if not last or last[0][3] is None:
        raise PermissionDenied(f"question {question_id!r} has no answer of {annotator!r} to change")
    action, old, source, batch_id = last[0]
    if source != "app":
        raise ConflictError(f"question {question_id} was labeled by you in {source}; change it there.")
    if action == "label" and old == label:
        raise ConflictError(f"question {question_id} is already labeled {label!r} by you; nothing changed.")
    if action != "label":  # a skip or an undo: the new label takes a slot
        slot = _slot(con, annotator, batch_id, question_id, now)
        if slot is not None and not assign.is_open_for(False, slot.my_lease, slot.load, slot.overlap):
            raise ConflictError(
                f"question {question_id} is already labeled or being labeled by {slot.load} of "
                f"{slot.overlap} people since you {'skipped' if action == 'skip' else 'undid'} it; "
                "nothing was recorded."
            )
    return append(con, [Annotation(
        question_id=question_id, annotator=annotator, action="label", label=label, source="app",
        created_at=now, event_id=event_id, confidence=confidence,
        rationale=(rationale or "").strip() or None, guidelines_version=guidelines_version,
        suggestion_shown=False, batch_id=batch_id,  # the history page shows no suggestion
    )]) == 1


# -- status for maintainers ----------------------------------------------------------


def batch_status(con: duckdb.DuckDBPyConnection, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per batch: items, overlap, labels needed/done, complete items, active leases
    (people only: `QueueIndex.batch_status`)."""
    leases = _leases(con, now or utcnow())
    return _with_index(con, lambda index: index.batch_status(leases))


def annotator_status(con: duckdb.DuckDBPyConnection, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per annotator: labels, skips and active leases on batch items, last activity."""
    now = now or utcnow()
    cur = con.execute(
        """WITH st AS (
               SELECT question_id, annotator, last_action, last_at FROM (
                   SELECT question_id, annotator, action AS last_action,
                          max(created_at) OVER (PARTITION BY question_id, annotator) AS last_at,
                          row_number() OVER (PARTITION BY question_id, annotator
                                             ORDER BY created_at DESC, seq DESC) AS rn
                   FROM annotations
                   WHERE question_id IN (SELECT question_id FROM batch_items) AND source = 'app'
               ) AS latest WHERE rn = 1)
           SELECT u.name AS annotator, u.role,
                  count(st.question_id) FILTER (WHERE st.last_action = 'label') AS labeled,
                  count(st.question_id) FILTER (WHERE st.last_action = 'skip') AS skipped,
                  (SELECT count(*) FROM assignments a WHERE a.annotator = u.name AND a.expires_at > $now
                     AND NOT EXISTS (SELECT 1 FROM st s2 WHERE s2.annotator = a.annotator
                        AND s2.question_id = a.question_id AND s2.last_action IN ('label','skip'))
                  ) AS active_leases,
                  max(st.last_at) AS last_activity
           FROM users u LEFT JOIN st ON st.annotator = u.name
           GROUP BY u.name, u.role ORDER BY u.name""",
        {"now": now},
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def my_history(con: duckdb.DuckDBPyConnection, annotator: str, limit: int = 50) -> list[dict[str, Any]]:
    """The annotator's own recent app actions (their progress page)."""
    cur = con.execute(
        "SELECT a.created_at, a.question_id, q.dataset_name, a.action, a.label, a.confidence, a.batch_id "
        "FROM annotations a LEFT JOIN questions q ON q.id = a.question_id "
        "WHERE a.annotator = ? ORDER BY a.created_at DESC, a.seq DESC LIMIT ?",
        [annotator, limit],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
