"""The annotation queue on DuckDB: gold draw, next item with leases, submit/skip/undo, progress.

The rules are those of `curation.assign` (pure; `assign.choose_next` is the reference the
SQL here implements). Each user action is one `Store.run`: submitting a label and fetching
the next question happen in the same transaction. Inside one process (the Streamlit
server) queue transactions are serialized by a lock, so two annotators can never take the
last free slot of an item at once; DuckDB itself lets only one process write the file.

Labels go through `curation.store.annotations.append` (append-only, idempotent by
`event_id`): a double-submitted form adds one row.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import duckdb

from curation import assign, rules
from curation.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from curation.schema import LABELS
from curation.store import Store, path_of, utcnow
from curation.store.annotations import Annotation, append, current_labels, human_sql
from curation.store.batches import BatchItem, create_batch

_QUEUE_LOCK = threading.RLock()
T = TypeVar("T")


def _run_serialized(store: Store, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run `fn(con)` as one transaction, serialized with the other queue transactions of
    this process, so two sessions can never take the last free slot of an item at once.
    (Other processes are kept out of the file by the store's own gate.)

    The file is opened *before* waiting for the lock: threads of one process share a DuckDB
    instance while any of their connections is open, so under load the open costs ~0 ms and
    happens outside the critical section. Under the lock the transaction is restarted (a
    fresh snapshot that sees the previous holder's commit) and committed before the lock is
    released; the empty transaction left behind is what `Store.connect` commits. An error
    inside rolls back through `Store.connect`.
    """
    with store.connect() as con, _QUEUE_LOCK:
        con.execute("COMMIT")
        con.execute("BEGIN TRANSACTION")
        try:
            result = fn(con)
            con.execute("COMMIT")
        except BaseException:
            forget_queue_state()  # it may hold rows of the transaction being rolled back
            raise
        con.execute("BEGIN TRANSACTION")
        return result


# Per (question, annotator): latest action of any kind, and latest label/retract action.
# Ordered like `annotations.current_labels` (created_at, then seq). Only people's rows
# count: an imported benchmark tag never fills an overlap slot (`curation.rules`).
_STATE_CTE = """
items AS (
    SELECT bi.batch_id, bi.question_id, bi.position, bi.suggestion_label, bi.suggestion_prob,
           b.kind, b.created_at AS batch_created_at, b.overlap, b.show_suggestions
    FROM batch_items bi JOIN batches b ON b.id = bi.batch_id
),
st AS (
    SELECT question_id, annotator,
           arg_max(action, (created_at, seq)) AS last_action,
           arg_max(action, (created_at, seq)) FILTER (WHERE action IN ('label', 'retract')) AS last_lab
    FROM annotations
    WHERE question_id IN (SELECT question_id FROM items) AND {human}
    GROUP BY ALL
),
lab AS (
    SELECT question_id, count(*) FILTER (WHERE last_lab = 'label') AS n_labels
    FROM st GROUP BY question_id
),
mine AS (
    SELECT question_id, last_action IN ('label', 'skip') AS done
    FROM st WHERE annotator = $me
),
leases AS (
    SELECT a.question_id,
           count(*) FILTER (WHERE a.annotator <> $me) AS n_leases,
           max(a.assigned_at) FILTER (WHERE a.annotator = $me) AS my_assigned_at
    FROM assignments a
    LEFT JOIN st ON st.question_id = a.question_id AND st.annotator = a.annotator
    WHERE a.expires_at > $now AND coalesce(st.last_action NOT IN ('label', 'skip'), true)
    GROUP BY a.question_id
),
cand AS (
    SELECT i.*, coalesce(lab.n_labels, 0) AS n_labels, coalesce(l.n_leases, 0) AS n_leases,
           coalesce(mine.done, false) AS done, l.my_assigned_at,
           NOT coalesce(mine.done, false) AND (
               l.my_assigned_at IS NOT NULL
               OR coalesce(lab.n_labels, 0) + coalesce(l.n_leases, 0) < i.overlap
           ) AS is_open
    FROM items i
    LEFT JOIN lab ON lab.question_id = i.question_id
    LEFT JOIN mine ON mine.question_id = i.question_id
    LEFT JOIN leases l ON l.question_id = i.question_id
)
"""

# -- the queue state, kept in memory and refreshed from the store ---------------------------
#
# Choosing the next item needs every batch item's state (labels, leases, own actions).
# One DuckDB query computing it costs ~17 ms on this machine whatever the data size (the
# engine's fixed cost per operator), which was most of a labeling action. So each process
# keeps the state in memory and brings it up to date inside every queue transaction:
# - batch items: batches and their items are only ever inserted (an item with its batch),
#   so they are reloaded when the number of items changes;
# - annotations: append-only with increasing `seq`; the new rows (`seq > last seen`) are
#   folded in. A row committed late with a lower `seq` (another thread's transaction), or a
#   row of ours that was rolled back, shows up as a different (count, sum of seq) than the
#   cache holds, and the state is then rebuilt from scratch. Snapshots of one database are
#   totally ordered, so equal (count, sum) means the same rows;
# - leases: read fresh every time (they change in place and expire with the clock).
# The rules are `assign.is_open` / `assign.priority`; tests check every choice against
# `assign.choose_next(candidates(...))`.


class _Item(NamedTuple):
    batch_id: str
    question_id: str
    kind: str
    batch_created_at: datetime
    position: int
    overlap: int
    show_suggestions: bool
    suggestion_label: str | None
    suggestion_prob: float | None


class _QueueIndex:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.items_sig: int | None = None
        self.items: list[_Item] = []
        self.n_rows = 0
        self.seq_sum = 0
        self.last_seq = 0
        # (question, annotator) -> ((created_at, seq), action) of the latest row / latest label-or-retract
        self.latest: dict[tuple[str, str], tuple[tuple[datetime, int], str]] = {}
        self.latest_lab: dict[tuple[str, str], tuple[tuple[datetime, int], str]] = {}
        self.n_labels: dict[str, int] = {}

    def _fold(self, rows: list[tuple[int, str, str, str, datetime, str]]) -> None:
        latest, latest_lab, n_labels = self.latest, self.latest_lab, self.n_labels
        is_human = rules.is_human
        for seq, qid, ann, action, created_at, source in rows:
            self.last_seq = max(self.last_seq, seq)
            self.seq_sum += seq
            if not is_human(source):
                continue  # an imported tag is a reference, never a rater: it takes no slot
            key = (created_at, seq)
            pair = (qid, ann)
            cur = latest.get(pair)
            if cur is None or key > cur[0]:
                latest[pair] = (key, action)
            if action in ("label", "retract"):
                cur = latest_lab.get(pair)
                if cur is None or key > cur[0]:
                    was = cur is not None and cur[1] == "label"
                    latest_lab[pair] = (key, action)
                    now_label = action == "label"
                    if was != now_label:
                        n_labels[qid] = n_labels.get(qid, 0) + (1 if now_label else -1)
        self.n_rows += len(rows)

    def refresh(self, con: duckdb.DuckDBPyConnection) -> None:
        n_items, n_rows, seq_sum = con.execute(
            "SELECT (SELECT count(*) FROM batch_items), count(*), coalesce(sum(seq), 0) FROM annotations"
        ).fetchall()[0]
        if self.items_sig != n_items:
            self.items = [
                _Item(*r) for r in con.execute(
                    "SELECT bi.batch_id, bi.question_id, b.kind, b.created_at, bi.position, b.overlap, "
                    "b.show_suggestions, bi.suggestion_label, bi.suggestion_prob "
                    "FROM batch_items bi JOIN batches b ON b.id = bi.batch_id"
                ).fetchall()
            ]
            self.items_sig = n_items
        if (n_rows, seq_sum) == (self.n_rows, self.seq_sum):
            return
        new = con.execute(
            "SELECT seq, question_id, annotator, action, created_at, source FROM annotations WHERE seq > ?",
            [self.last_seq],
        ).fetchall()
        if (self.n_rows + len(new), self.seq_sum + sum(r[0] for r in new)) != (n_rows, seq_sum):
            items, sig = self.items, self.items_sig
            self.reset()
            self.items, self.items_sig = items, sig
            new = con.execute(
                "SELECT seq, question_id, annotator, action, created_at, source FROM annotations"
            ).fetchall()
        self._fold(new)

    def choose(
        self, con: duckdb.DuckDBPyConnection, annotator: str, now: datetime
    ) -> tuple[int, int, _Item | None]:
        """`(open, done, top item)` for `annotator` at `now` (call `refresh` first)."""
        latest = self.latest
        finished = ("label", "skip")
        n_leases: dict[str, int] = {}
        mine: dict[str, datetime] = {}
        for qid, ann, at in con.execute(
            "SELECT question_id, annotator, assigned_at FROM assignments WHERE expires_at > ?", [now]
        ).fetchall():
            row = latest.get((qid, ann))
            if row is not None and row[1] in finished:
                continue
            if ann == annotator:
                if qid not in mine or at > mine[qid]:
                    mine[qid] = at
            else:
                n_leases[qid] = n_leases.get(qid, 0) + 1
        n_labels = self.n_labels
        kind_order = assign.KIND_ORDER
        n_open = n_done = 0
        best: tuple[Any, ...] | None = None
        top: _Item | None = None
        for item in self.items:
            qid = item.question_id
            row = latest.get((qid, annotator))
            if row is not None and row[1] in finished:
                n_done += 1
                continue
            at = mine.get(qid)
            load = n_labels.get(qid, 0) + n_leases.get(qid, 0)
            if at is None and load >= item.overlap:
                continue
            n_open += 1
            key = (  # assign.priority
                0 if at is not None else 1,
                -at.timestamp() if at is not None else 0.0,
                kind_order.get(item.kind, 9),
                item.batch_created_at,
                item.batch_id,
                load,
                item.position,
                qid,
            )
            if best is None or key < best:
                best, top = key, item
        return n_open, n_done, top


_INDEXES: dict[str, _QueueIndex] = {}
_INDEXES_LOCK = threading.Lock()


def _index_for(con: duckdb.DuckDBPyConnection) -> _QueueIndex:
    key = path_of(con)
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = _QueueIndex()
        return index


def _queue_state(
    con: duckdb.DuckDBPyConnection, annotator: str, now: datetime
) -> tuple[int, int, _Item | None]:
    index = _index_for(con)
    with index.lock:
        try:
            index.refresh(con)
            return index.choose(con, annotator, now)
        except BaseException:
            index.reset()
            raise


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
    Whether a suggestion was shown is decided here from the batch (never on gold).
    """
    if action not in ("label", "skip"):
        raise InputError(f"action {action!r} is not label or skip (undo has its own call)")
    if action == "label" and label not in LABELS:
        raise InputError(f"label {label!r} is not one of {', '.join(LABELS)}")
    # Small indexed lookups: DuckDB runs these ~5x faster than one query joining them.
    if con.execute("SELECT 1 FROM annotations WHERE event_id = ?", [event_id]).fetchall():
        return False
    # "finished" as the queue counts it (`assign.Candidate.done_by_me`): the latest own row
    last = con.execute(
        "SELECT action, label, source, created_at FROM annotations WHERE question_id = ? AND annotator = ? "
        "ORDER BY created_at DESC, seq DESC LIMIT 1",
        [question_id, annotator],
    ).fetchall()
    if last and last[0][0] in ("label", "skip"):
        done, done_label, source, at = last[0]
        what = f"labeled {done_label!r}" if done == "label" else "skipped"
        when = f"{at:%H:%M:%S} UTC" if at.date() == (now or utcnow()).date() else f"{at:%Y-%m-%d %H:%M:%S} UTC"
        where, fix = (
            (" (another tab or window?)", "Use Undo to change it.") if source == "app"
            else (f" in {source}", f"Change it in {source}.")
        )
        raise ConflictError(
            f"question {question_id} was already {what} by you{where} at {when}; nothing changed. {fix}"
        )
    leased = con.execute(
        "SELECT batch_id FROM assignments WHERE annotator = ? AND question_id = ? "
        "ORDER BY assigned_at DESC LIMIT 1",
        [annotator, question_id],
    ).fetchall()
    if not leased:
        raise PermissionDenied(f"question {question_id!r} is not assigned to {annotator!r}")
    batch_id = leased[0][0]
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
        created_at=now or utcnow(),
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
        """SELECT question_id, arg_max(action, (created_at, seq)) AS action, max(seq) AS seq,
                  arg_max(batch_id, (created_at, seq)) AS batch_id
           FROM annotations WHERE annotator = ? AND source = 'app' GROUP BY question_id""",
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
    batch_id = next(r["batch_id"] for r in latest if r["question_id"] == target)
    append(con, [Annotation(
        question_id=target, annotator=annotator, action="retract", label=None, source="app",
        created_at=now, event_id=event_id, batch_id=batch_id,
    )])
    if batch_id is not None:
        _lease_upsert(con, batch_id, target, annotator, now, assign.lease_minutes(lease_minutes))
    return target


# -- one call per user action (what the app and the benchmark use) -----------------------


def fetch_next(store: Store, annotator: str, *, lease_minutes: float | None = None) -> dict[str, Any]:
    """Open the store once: lease and return the annotator's next question and progress."""
    return _run_serialized(store, lambda con: next_task(con, annotator, lease_minutes=lease_minutes))


def submit_and_next(
    store: Store,
    annotator: str,
    question_id: str,
    *,
    action: str,
    event_id: str,
    label: str | None = None,
    confidence: int | None = None,
    rationale: str | None = None,
    guidelines_version: str | None = None,
    lease_minutes: float | None = None,
) -> dict[str, Any]:
    """Record a label/skip and lease the next question in one transaction.

    Returns `next_task`'s dict plus `"recorded": bool` (False for a repeated event id).
    """

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        now = utcnow()
        added = submit(
            con, annotator, question_id, action=action, event_id=event_id, label=label,
            confidence=confidence, rationale=rationale, guidelines_version=guidelines_version, now=now,
        )
        out = next_task(con, annotator, now=now, lease_minutes=lease_minutes)
        out["recorded"] = added
        return out

    return _run_serialized(store, work)


def undo_and_next(
    store: Store, annotator: str, *, event_id: str, expected: str | None = None,
    lease_minutes: float | None = None,
) -> dict[str, Any]:
    """Undo the last label/skip and return the re-opened question (served first).

    `expected` as in `undo`. Adds `"undone"` (the re-opened question or None) and
    `"undo_next"` (what a further undo would re-open: `undo_preview` after this one).
    """

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        now = utcnow()
        target = undo(con, annotator, event_id=event_id, expected=expected, now=now,
                      lease_minutes=lease_minutes)
        out = next_task(con, annotator, now=now, lease_minutes=lease_minutes)
        out["undone"] = target
        out["undo_next"] = undo_preview(con, annotator)
        return out

    return _run_serialized(store, work)


def new_event_id() -> str:
    return uuid.uuid4().hex


# -- gold set -------------------------------------------------------------------------


def draw_gold(
    store: Store,
    size: int,
    overlap: int,
    seed: int | None = None,
    *,
    batch_id: str | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Draw a gold batch: `size` random `split='test'` questions not already in a gold batch,
    stratified by `dataset_name`, each to be labeled by `overlap` distinct annotators.

    Suggestions are never shown on gold. Returns the batch id, seed and per-benchmark counts.
    """
    if size < 1:
        raise InputError(f"--size must be >= 1, got {size}")
    if overlap < 1:
        raise InputError(f"--overlap must be >= 1, got {overlap}")
    if seed is None:
        seed = secrets.randbelow(2**31)

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        now = utcnow()
        rows = con.execute(
            """SELECT id, dataset_name FROM questions q WHERE split = 'test' AND NOT EXISTS (
                   SELECT 1 FROM batch_items bi JOIN batches b ON b.id = bi.batch_id
                   WHERE b.kind = 'gold' AND bi.question_id = q.id)"""
        ).fetchall()
        if not rows:
            raise NotFoundError(
                "no eligible questions (split 'test', not already in a gold batch); "
                "ingest benchmarks first with `curation ingest`"
            )
        ids = assign.stratified_sample([(r[0], r[1]) for r in rows], size, seed)
        bid = batch_id or f"gold-{now:%Y%m%dT%H%M%S}-{seed}"
        create_batch(
            con, batch_id=bid, kind="gold", items=[BatchItem(i) for i in ids], overlap=overlap,
            show_suggestions=False, created_at=now, created_by=created_by,
            strategy="random-stratified", note=f"seed={seed}",
        )
        by_ds = dict(
            con.execute(
                "SELECT q.dataset_name, count(*) FROM batch_items bi JOIN questions q ON q.id = bi.question_id "
                "WHERE bi.batch_id = ? GROUP BY 1 ORDER BY 1",
                [bid],
            ).fetchall()
        )
        return {"batch_id": bid, "size": len(ids), "overlap": overlap, "seed": seed,
                "per_dataset": {k: int(v) for k, v in by_ds.items()}}

    return _run_serialized(store, work)


# -- status for maintainers ----------------------------------------------------------


def batch_status(con: duckdb.DuckDBPyConnection, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per batch: items, overlap, labels needed/done, complete items, active leases."""
    now = now or utcnow()
    cur = con.execute(
        f"""WITH {_STATE_CTE.replace("{human}", human_sql())}
        SELECT batch_id, any_value(kind) AS kind, any_value(overlap) AS overlap,
               any_value(batch_created_at) AS created_at, count(*) AS items,
               sum(least(n_labels, overlap)) AS labels_done, sum(overlap) AS labels_needed,
               count(*) FILTER (WHERE n_labels >= overlap) AS complete_items,
               sum(n_leases) AS active_leases
        FROM cand GROUP BY batch_id ORDER BY created_at, batch_id""",
        {"me": "\x00", "now": now},
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def annotator_status(con: duckdb.DuckDBPyConnection, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per annotator: labels, skips and active leases on batch items, last activity."""
    now = now or utcnow()
    cur = con.execute(
        """WITH st AS (
               SELECT question_id, annotator, arg_max(action, (created_at, seq)) AS last_action,
                      max(created_at) AS last_at
               FROM annotations
               WHERE question_id IN (SELECT question_id FROM batch_items) AND source = 'app'
               GROUP BY ALL)
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


# -- reads for agreement, adjudication, exports and plots ---------------------------------


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


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
    for r in _dicts(cur):
        opts = r["options"]
        r["options"] = json.loads(opts) if isinstance(opts, str) else dict(opts)
        out[r["id"]] = r
    return out


def annotation_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every annotation row (labels, retractions, skips) with the question's benchmark."""
    return _dicts(con.execute(
        "SELECT a.*, q.dataset_name FROM annotations a LEFT JOIN questions q ON q.id = a.question_id "
        "ORDER BY a.seq"
    ))


def annotation_count(con: duckdb.DuckDBPyConnection) -> int:
    """Annotation rows so far (append-only: a new count means something changed)."""
    return int(con.execute("SELECT count(*) FROM annotations").fetchall()[0][0])


def labels_per_day(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Label rows per day and source (for the activity chart)."""
    return _dicts(con.execute(
        "SELECT CAST(created_at AS DATE) AS day, source, count(*) AS labels FROM annotations "
        "WHERE action = 'label' GROUP BY ALL ORDER BY day, source"
    ))
