"""Annotate: the use cases around people's labels. The annotation queue (next question,
label, skip, undo: one serialized transaction each), the gold draw, agreement,
adjudication, progress and statistics. Each takes a `Store`, returns data and prints
nothing; the CLI and the app's pages call these, never the store modules.

Who is a rater and what the human label is are `curation.rules`; the human-human agreement
is `curation.labels.gold_agreement` over `store.annotations.gold_labels`: the CLI, the Agreement
page and the release card all come here (or to those two), so their figures are equal.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb

from curation import assign, labels, rules
from curation.errors import InputError, NotFoundError
from curation.metrics import wilson_ci
from curation.store import Store, utcnow
from curation.store import annotations as astore
from curation.store import batches as bstore
from curation.store import queue as qstore
from curation.store import sessions as sstore
from curation.store import users as ustore

if TYPE_CHECKING:
    from curation import auth


def agreement_summary(
    store: Store, *, n_boot: int = labels.AGREEMENT_N_BOOT, seed: int = labels.AGREEMENT_SEED
) -> dict[str, Any]:
    """Human-human agreement on the gold set (`curation agreement`), plus, apart, how the
    human labels compare with benchmarks' own tags on the gold items that have both."""
    gold, ref, adj = store.run(lambda con: (
        astore.gold_labels(con), astore.gold_reference_labels(con),
        {q: a["label"] for q, a in astore.current_adjudications(con).items()},
    ))
    report = labels.gold_agreement(gold, n_boot=n_boot, seed=seed)
    human = rules.human_labels([(r["question_id"], r["annotator"], r["label"]) for r in gold], adj)
    tags = rules.reference_tags(ref)
    pairs = [(h.label, tags[q][0]) for q, h in sorted(human.items()) if h.label is not None and q in tags]
    report["benchmark_tags"] = {
        "sources": sorted({name for _label, name in tags.values()}),
        "human_label_vs_tag": labels.label_comparison(pairs),
        "note": "benchmark tags are a reference: never a rater, never in the figures above",
    }
    return report


def adjudication_queue(store: Store) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """(gold items where people disagree -> their labels, current adjudications)."""
    gold, adjudicated = store.run(lambda con: (astore.gold_labels(con), astore.current_adjudications(con)))
    return labels.disagreements(gold), adjudicated


def with_share_cis(data: dict[str, Any]) -> dict[str, Any]:
    """Add a Wilson 95 % CI to each benchmark's predicted reasoning share (`curation stats`)."""
    share = data.get("reasoning_share")
    if share:
        for row in share["per_benchmark"]:
            lo, hi = wilson_ci(row["n_reasoning"], row["n"])
            row["share"] = row["n_reasoning"] / row["n"]
            row["ci"] = [lo, hi]
    return data


def store_stats(store: Store) -> dict[str, Any]:
    """`curation stats`: questions, labels (people's and benchmark tags apart), reasoning share."""
    from curation.store import questions as qs

    return with_share_cis(store.run(qs.stats))


# -- the annotation queue: one transaction per user action (the app and the benchmark) ----


def fetch_next(store: Store, annotator: str, *, lease_minutes: float | None = None) -> dict[str, Any]:
    """Open the store once: lease and return the annotator's next question and progress."""
    return qstore.run_serialized(store, lambda con: qstore.next_task(con, annotator, lease_minutes=lease_minutes))


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

    Returns `store.queue.next_task`'s dict plus `"recorded": bool` (False for a repeated event id).
    """

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        now = utcnow()
        added = qstore.submit(
            con, annotator, question_id, action=action, event_id=event_id, label=label,
            confidence=confidence, rationale=rationale, guidelines_version=guidelines_version, now=now,
        )
        out = qstore.next_task(con, annotator, now=now, lease_minutes=lease_minutes)
        out["recorded"] = added
        return out

    return qstore.run_serialized(store, work)


def undo_and_next(
    store: Store, annotator: str, *, event_id: str, expected: str | None = None,
    lease_minutes: float | None = None,
) -> dict[str, Any]:
    """Undo the last label/skip and return the re-opened question (served first).

    `expected` as in `store.queue.undo`. Adds `"undone"` (the re-opened question or None) and
    `"undo_next"` (what a further undo would re-open: `undo_preview` after this one).
    """

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        now = utcnow()
        target = qstore.undo(con, annotator, event_id=event_id, expected=expected, now=now,
                      lease_minutes=lease_minutes)
        out = qstore.next_task(con, annotator, now=now, lease_minutes=lease_minutes)
        out["undone"] = target
        out["undo_next"] = qstore.undo_preview(con, annotator)
        return out

    return qstore.run_serialized(store, work)


def change_label(
    store: Store, annotator: str, question_id: str, *, label: str, event_id: str,
    confidence: int | None = None, rationale: str | None = None, guidelines_version: str | None = None,
) -> bool:
    """Change one's own earlier answer from the history (`store.queue.change_label`): a new
    row, the previous kept; False for a repeated event id."""
    return qstore.run_serialized(store, lambda con: qstore.change_label(
        con, annotator, question_id, label=label, event_id=event_id, confidence=confidence,
        rationale=rationale, guidelines_version=guidelines_version, now=utcnow()))


def my_answers(store: Store, annotator: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """The annotator's own answers given in the app, one per question (the latest), newest
    first, with the question: what "My progress" lists and reopens."""
    return store.run(lambda con: astore.own_answers(con, annotator, limit=limit))


def question_history(store: Store, question_id: str) -> dict[str, Any]:
    """One question and every row about it (annotations of everyone and every source,
    adjudications), oldest first: the maintainer's history of a question. Raises
    NotFoundError for an unknown id."""
    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        found = astore.gold_questions(con, [question_id])
        if question_id not in found:
            raise NotFoundError(f"no question with id {question_id!r}; check the id (as shown on the pages)")
        return {"question": found[question_id], **astore.question_history(con, question_id)}

    return store.run(work)


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
        bstore.create_batch(
            con, batch_id=bid, kind="gold", items=[bstore.BatchItem(i) for i in ids], overlap=overlap,
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

    return qstore.run_serialized(store, work)


def undo_target(store: Store, annotator: str) -> str | None:
    """The question "Undo last" would take back for `annotator` now (None if nothing)."""
    return store.run(lambda con: qstore.undo_preview(con, annotator))


def my_progress(store: Store, annotator: str, *, limit: int = 200) -> tuple[tuple[int, int], list[dict[str, Any]]]:
    """((done, remaining), the annotator's own recent actions): their progress page."""
    return store.run(lambda con: (qstore.next_task_preview(con, annotator),
                                  qstore.my_history(con, annotator, limit=limit)))


def assignment_overview(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Per batch progress (people only) and per annotator activity."""
    return store.run(lambda con: {"batches": qstore.batch_status(con), "people": qstore.annotator_status(con)})


def agreement_inputs(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(people's current labels, labels per day, annotation rows so far) for the charts."""
    return store.run(lambda con: (astore.all_current_labels(con), astore.labels_per_day(con),
                                  astore.annotation_count(con)))


def questions(store: Store, question_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Question text, options and answer by id (adjudication, label-noise review)."""
    return store.run(lambda con: astore.gold_questions(con, question_ids))


def adjudicate(store: Store, *, question_id: str, label: str, maintainer: str, note: str | None) -> None:
    """Record a maintainer's final label (append-only; the latest one counts)."""
    now = utcnow()
    store.run(lambda con: astore.adjudicate(con, question_id=question_id, label=label, maintainer=maintainer,
                                            note=note, created_at=now))


def annotation_export(
    store: Store, *, source: str | None = None, annotator: str | None = None, batch: str | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every annotation row (labels, undos, skips), flat and JSON-ready (`labels export`);
    only those with this `source` / `annotator` / `batch` (batch id) / created at or after
    `since` (UTC, naive like the store's times) when given."""
    rows = [r for r in store.run(astore.annotation_rows)
            if (source is None or r["source"] == source) and (annotator is None or r["annotator"] == annotator)
            and (batch is None or r["batch_id"] == batch) and (since is None or r["created_at"] >= since)]
    return labels.export_rows(rows)


# -- accounts ------------------------------------------------------------------------------


def add_user(store: Store, name: str, *, role: str, password: str, expertise: str = "unknown") -> dict[str, Any]:
    """Create an account (validated; the password is stored as an Argon2 hash). `expertise`:
    one of `store.users.EXPERTISE_LEVELS` (the card's `annotations_creators` comes from it)."""
    from curation import auth

    auth.validate_username(name)
    auth.validate_role(role)
    validate_expertise(expertise)
    auth.validate_password(password)
    return store.run(lambda con: ustore.add_user(con, name, role=role, password=password, expertise=expertise))


def validate_expertise(expertise: str) -> str:
    """An expertise level, checked (the CLI checks it before asking for a password)."""
    return ustore.validate_expertise(expertise)


def set_expertise(store: Store, name: str, expertise: str) -> None:
    """Record an existing account's annotation expertise."""
    validate_expertise(expertise)
    store.run(lambda con: ustore.set_expertise(con, name, expertise))


def list_users(store: Store) -> list[dict[str, Any]]:
    return store.run(ustore.list_users)


def find_user(store: Store, name: str) -> dict[str, Any] | None:
    """The account named `name` (with its hash, for the login check), or None."""
    return store.run(lambda con: ustore.get_user(con, name)) if name else None


def _known_user(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    user = ustore.get_user(con, name)
    if user is None:
        raise NotFoundError(f"no user {name!r}; `curation users list` shows the accounts, `curation users add` creates one")
    return user


def set_disabled(store: Store, name: str, disabled: bool) -> dict[str, Any]:
    """Disable (or enable) an account. Disabling also ends its app sessions at once (the app
    re-reads the account before every write and at least once a minute anyway).
    Returns {"name", "disabled", "changed", "sessions_ended"}."""

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        before = bool(_known_user(con, name)["disabled"])
        ustore.set_disabled(con, name, disabled)
        ended = sstore.revoke_user(con, name, utcnow(), "account disabled") if disabled else 0
        return {"name": name, "disabled": disabled, "changed": before != disabled, "sessions_ended": ended}

    return store.run(work)


def reset_password(store: Store, name: str, password: str) -> dict[str, Any]:
    """Give an account a new password (validated, stored as an Argon2 hash) and end its app
    sessions (whoever knew the old one is logged out). Returns {"name", "sessions_ended"}."""
    from curation import auth

    new_hash = auth.hash_password(password)  # validates; slow on purpose, so outside the write

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        _known_user(con, name)
        ustore.set_password_hash(con, name, new_hash)
        return {"name": name, "sessions_ended": sstore.revoke_user(con, name, utcnow(), "password reset")}

    return store.run(work)


def set_role(store: Store, name: str, role: str) -> dict[str, Any]:
    """Change an account's role (open sessions pick it up at their next account check).
    Returns {"name", "role", "previous"}."""
    from curation import auth

    auth.validate_role(role)

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        previous = _known_user(con, name)["role"]
        ustore.set_role(con, name, role)
        return {"name": name, "role": role, "previous": previous}

    return store.run(work)


# -- app sessions (the browser keeps the token; the store keeps its hash) --------------------


def start_session(store: Store, name: str) -> str:
    """Open a session for the account `name` (already authenticated) and return its token,
    for the browser's cookie. Only the token's hash is stored."""
    from curation import auth

    token = auth.new_session_token()
    token_hash = auth.session_token_hash(token)
    assert token_hash is not None
    store.run(lambda con: sstore.create(con, token_hash, name, utcnow()))
    return token


def resume_session(store: Store, token: str, policy: auth.SessionPolicy, *, touch: bool = True) -> dict[str, Any]:
    """Check a session token against the store and `policy` (an `auth.SessionPolicy`).

    Returns {"user": {"name", "role", "login_at", "last_seen"} or None, "why": None or a
    message for the login page}. A token that is unknown, revoked, idle or too old, or whose
    account is missing or disabled, gives no user (an expired or disabled one is revoked
    too). `touch` records the visit (`last_seen`) for the idle limit.
    """
    from curation import auth

    token_hash = auth.session_token_hash(token)
    if token_hash is None:
        return {"user": None, "why": None}

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        now = utcnow()
        row = sstore.lookup(con, token_hash)
        if row is None:
            return {"user": None, "why": None}
        if row["revoked_at"] is not None:
            why = {"logout": None}.get(row["revoked_why"], f"Your session ended ({row['revoked_why']}).")
            return {"user": None, "why": why}
        if row["name"] is None or row["disabled"]:
            sstore.revoke(con, token_hash, now, "account disabled")
            return {"user": None, "why": "This account is disabled."}
        if not policy.is_valid(login_at=row["created_at"], last_seen=row["last_seen"], now=now):
            sstore.revoke(con, token_hash, now, "expired")
            return {"user": None, "why": "Your session expired; please log in again."}
        if touch:
            sstore.touch(con, token_hash, now)
        return {"user": {"name": row["name"], "role": row["role"], "login_at": row["created_at"],
                         "last_seen": now}, "why": None}

    return store.run(work)


def end_session(store: Store, token: str, why: str = "logout") -> None:
    """Revoke a session (logout): its token no longer logs anyone in, in any tab."""
    from curation import auth

    token_hash = auth.session_token_hash(token)
    if token_hash is not None:
        store.run(lambda con: sstore.revoke(con, token_hash, utcnow(), why))


# -- drafts on the Label page (a reload shows what was typed; a draft is never a label) -------

DRAFT_MAX_CHARS = 2000
"""The longest rationale the Label page takes (its box's `max_chars`) and a draft keeps."""


def fetch_next_with_draft(store: Store, annotator: str, *, lease_minutes: float | None = None) -> dict[str, Any]:
    """`fetch_next` plus `"draft"`: the annotator's draft for the question leased now (or
    None), in the same transaction; their drafts for questions no longer under their live
    lease (the lease moved on) are dropped. What a page's first render (a reload) calls."""
    from curation.store import drafts as dstore

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        now = utcnow()
        out = qstore.next_task(con, annotator, now=now, lease_minutes=lease_minutes)
        dstore.delete_unleased(con, annotator, now)
        task = out["task"]
        out["draft"] = None if task is None else dstore.get(con, annotator, task["question_id"])
        return out

    return qstore.run_serialized(store, work)


def save_draft(
    store: Store, annotator: str, question_id: str, *, rationale: str | None = None,
    label: str | None = None, confidence: int | None = None,
) -> bool:
    """Keep what the annotator has typed or chosen for a question leased to them (the
    rationale exactly as typed). Returns True if a draft is kept; False, with any earlier
    draft of that question deleted, if there is nothing to keep (all empty) or the question
    is no longer under their live lease. Raises InputError for a label, confidence or length
    the Label page cannot produce."""
    from curation.schema import LABELS
    from curation.store import drafts as dstore

    if label is not None and label not in LABELS:
        raise InputError(f"draft label {label!r} is not one of {', '.join(LABELS)}")
    if confidence is not None and confidence not in (1, 2, 3):
        raise InputError(f"draft confidence {confidence!r} is not 1, 2 or 3")
    if rationale is not None and len(rationale) > DRAFT_MAX_CHARS:
        raise InputError(f"the rationale has {len(rationale)} characters; at most {DRAFT_MAX_CHARS} are kept, "
                         "shorten it")
    rationale = rationale if rationale and rationale.strip() else None

    def work(con: duckdb.DuckDBPyConnection) -> bool:
        now = utcnow()
        if (rationale is None and label is None and confidence is None) or not dstore.leased_to(
                con, annotator, question_id, now):
            dstore.delete(con, annotator, question_id)
            return False
        dstore.save(con, annotator, question_id, rationale=rationale, label=label, confidence=confidence, now=now)
        return True

    return store.run(work)


def discard_draft(store: Store, annotator: str, question_id: str) -> None:
    """Delete the annotator's draft of a question (labeled, skipped, or moved on from)."""
    from curation.store import drafts as dstore

    store.run(lambda con: dstore.delete(con, annotator, question_id))


def draft_count(store: Store, annotator: str | None = None) -> int:
    """How many drafts the store keeps (of one annotator, if given)."""
    from curation.store import drafts as dstore

    return store.run(lambda con: dstore.count(con, annotator))
