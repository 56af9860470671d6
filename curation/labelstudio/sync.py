"""Label Studio sync: push batches, pull labels, status; glue between the store
(`curation.store.labelstudio` holds the sync state and every query) and `LabelStudioApi`.

Push (`curation ls push BATCH [--project NAME]`)
    One project per batch by default (title `curation <batch id>`), created from
    `labeling_config/reasoning_knowledge.xml` with the guidelines as its instructions.
    Each question becomes a task whose data carries our `question_id`. Idempotent: the
    task <-> question map (`ls_tasks`, unique per project and question) is reconciled
    with the tasks already in the project (matched by `data.question_id`) before
    importing, so pushing twice -- or again after a crash between the import and the
    map write -- creates no duplicate task. Model suggestions go in as predictions
    (`model_version` = the batch's, `score` = the model's probability of the suggested
    label) only when the batch's `show_suggestions` is true, which `create_batch` never
    allows for gold batches; projects holding blind batches also have collaborator
    predictions turned off. A project only takes batches of one overlap and one
    suggestion setting.

K-overlap on the Community Edition
    The CE labeling queue (`GET /api/projects/<id>/next`, "Label All Tasks") honours the
    project's `maximum_annotations`: a task stays in the queue until that many different
    annotators submitted it, and nobody gets a task twice. This was established against
    a real 1.23.2 server (`tests/integration/labelstudio/test_overlap.py`): with
    `maximum_annotations=2` a second annotator is served the task the first one
    finished; with 1 the second annotator gets "no more tasks". So a batch with overlap K
    is pushed as one project with `maximum_annotations=K` (and
    `overlap_cohort_percentage=100`); annotators label through the queue. Caveat of the
    CE: every member can open any task in the Data Manager and see others' annotations,
    so for blind gold batches annotators must be told to use the queue only.

Pull (`curation ls pull [--project NAME]`)
    Lists every task of each project page by page (`GET /api/tasks?fields=all`, only
    the `id`, `annotations` and `data` fields) and turns each *new version* of an
    annotation (id, `updated_at`) into an append-only `annotations` row with
    `source='label_studio'`, `created_at` = the annotation's `updated_at`, and an
    `event_id` derived from (server, project, annotation id, updated_at): re-pulling is
    a no-op, and an edit in Label Studio (new `updated_at`) becomes a new row. A
    submission without a choice becomes a `retract` row, a skipped task a `skip` row.
    Label Studio users map to our annotators: an explicit mapping (`curation ls
    map-user`), else an app user named like the LS email, username or (if unique)
    email local part, else the email; a mapping is fixed when first seen.

    Consistency: each page is written in **one transaction** (its label rows and the
    versions it records), so a server that dies mid-pull leaves the store with whole
    pages only; the command fails (with the same `LabelStudioError` subclass) with a
    message saying how many pages were stored and to run it again, and the next pull skips what is stored (no duplicates). Deletions
    are only decided after a *complete* listing, and each one is confirmed by a 404 for
    that annotation: an annotation stored before but no longer in Label Studio gets a
    `retract` row (or, if the same annotator still has
    another annotation of that task there, a row restating that one).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from curation.errors import CurationError, InputError, NotFoundError
from curation.labelstudio.api import (
    Connection,
    LabelStudioApi,
    LabelStudioError,
    LabelStudioNotFound,
    normalize_server,
)
from curation.labelstudio.mapping import (
    PagePlan,
    TaskRef,
    instructions_html,
    load_label_config,
    plan_deletions,
    plan_page,
    question_to_task,
    resolve_annotator,
    suggestion_to_prediction,
)
from curation.store import Store, utcnow
from curation.store import batches as batches_store
from curation.store import labelstudio as ls_store
from curation.store.annotations import append

PROJECT_PREFIX = "curation "
# `include=` of the task listing. Label Studio applies it to the task *and* to its nested
# annotations, so this asks for exactly the annotation fields we map (about half the
# server time of the full listing).
PULL_FIELDS = "id,annotations,result,updated_at,created_at,completed_by,was_cancelled"


@dataclass(frozen=True)
class PushResult:
    batch_id: str
    project_id: int
    project_name: str
    url: str
    n_items: int
    n_created: int
    n_existing: int
    n_predictions: int
    seconds: float


@dataclass(frozen=True)
class PullResult:
    project_id: int
    project_name: str
    n_pages: int
    n_tasks: int
    n_seen: int
    n_new_rows: int
    n_deleted: int
    problems: tuple[str, ...]
    seconds: float


def default_project_name(batch_id: str) -> str:
    return f"{PROJECT_PREFIX}{batch_id}"


def project_url(conn_or_server: Connection | str, project_id: int) -> str:
    base = conn_or_server.url if isinstance(conn_or_server, Connection) else conn_or_server
    return f"{base.rstrip('/')}/projects/{project_id}/data"


# ---------------------------------------------------------------------------------------
# Push
# ---------------------------------------------------------------------------------------


def _guidelines() -> tuple[str | None, str]:
    """(version, body) of the guidelines; (None, '') if the file is missing."""
    from curation.labels import load_guidelines

    try:
        return load_guidelines()
    except CurationError:
        return None, ""


def _ensure_project(
    store: Store, api: LabelStudioApi, *, name: str, overlap: int, show_suggestions: bool,
    model_version: str | None, now: datetime,
) -> ls_store.ProjectRef:
    server = api.conn.server
    known = store.run(lambda con: ls_store.projects(con, server, name=name))
    for ref in known:
        try:
            api.get_project(ref.project_id)
        except LabelStudioNotFound:
            continue  # deleted in Label Studio: make a new one
        if ref.overlap != overlap or ref.show_suggestions != show_suggestions:
            raise InputError(
                f"project {name!r} (id {ref.project_id}) holds batches with overlap "
                f"{ref.overlap} and suggestions {'on' if ref.show_suggestions else 'off'}; "
                f"this batch has overlap {overlap} and suggestions "
                f"{'on' if show_suggestions else 'off'}: push it with another --project"
            )
        if show_suggestions and model_version:
            api.update_project(ref.project_id, model_version=model_version)
        return ref
    version, body = _guidelines()
    existing = api.find_projects(name)
    if len(existing) > 1:
        raise InputError(
            f"Label Studio has {len(existing)} projects titled {name!r}; rename all but one "
            "or push with another --project"
        )
    settings: dict[str, Any] = {
        "maximum_annotations": overlap,
        "overlap_cohort_percentage": 100,
        "show_collab_predictions": bool(show_suggestions),
        "evaluate_predictions_automatically": False,
        "enable_empty_annotation": False,
        "show_skip_button": True,
        "sampling": "Sequential sampling",
    }
    if show_suggestions and model_version:
        settings["model_version"] = model_version
    if existing:
        pid = int(existing[0]["id"])
        current = api.get_project(pid)
        if int(current.get("maximum_annotations") or 1) != overlap:
            raise InputError(
                f"Label Studio project {name!r} (id {pid}) has overlap "
                f"{current.get('maximum_annotations')}, the batch {overlap}; push with another --project"
            )
        api.update_project(pid, **{k: v for k, v in settings.items() if k != "maximum_annotations"})
    else:
        created = api.create_project(
            title=name,
            label_config=load_label_config(),
            description=f"Created by curation: {name}. Labels are pulled with `curation ls pull`.",
            expert_instruction=instructions_html(body) if body else "",
            show_instruction=bool(body),
            **settings,
        )
        pid = int(created["id"])
    ref = ls_store.ProjectRef(
        server=server, project_id=pid, name=name, overlap=overlap,
        show_suggestions=bool(show_suggestions), guidelines_version=version, created_at=now,
    )
    store.run(lambda con: ls_store.add_project(con, ref))
    return ref


def _reconcile_tasks(store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, now: datetime) -> None:
    """Adopt tasks that exist in the project but are missing from our map (by question id)."""
    server = api.conn.server
    mapped = store.run(lambda con: ls_store.task_map(con, server, ref.project_id))
    info = api.get_project(ref.project_id)
    n_remote = int(info.get("task_number") or 0)
    if n_remote == len(mapped):
        return
    found: dict[int, str] = {}
    for page in api.task_pages(ref.project_id, fields="id,data", page_size=2000):
        for t in page:
            qid = (t.get("data") or {}).get("question_id")
            if int(t["id"]) not in mapped and qid:
                found[int(t["id"])] = str(qid)
    if not found:
        return

    def adopt(con: Any) -> None:
        known_q = ls_store.existing_questions(con, list(found.values()))
        refs = [TaskRef(tid, q, None, ref.show_suggestions)
                for tid, q in sorted(found.items()) if q in known_q]
        ls_store.add_tasks(con, server, ref.project_id, refs, now)

    store.run(adopt)


def _import_tasks(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, items: list[dict[str, Any]],
    *, batch_id: str, model_version: str | None, show: bool, chunk_size: int, now: datetime,
) -> int:
    """Import `items` (rows of `ls_store.push_items`) in chunks, recording each chunk's task
    map in its own transaction right after its import. Returns the number of predictions."""
    server = api.conn.server
    n_pred = 0
    for start in range(0, len(items), chunk_size):
        chunk = items[start:start + chunk_size]
        payload = []
        for it in chunk:
            task = question_to_task(
                {"id": it["question_id"], "question": it["question"], "options": it["options"],
                 "dataset_name": it["dataset_name"]},
                batch_id=batch_id,
            )
            pred = (
                suggestion_to_prediction(
                    it["suggestion_label"], it["suggestion_prob"], model_version
                ) if show else None
            )
            if pred is not None:
                task["predictions"] = [pred]
                n_pred += 1
            payload.append(task)
        ids = api.import_tasks(ref.project_id, payload)
        refs = [
            TaskRef(tid, it["question_id"], batch_id,
                             show and it["suggestion_label"] is not None)
            for tid, it in zip(ids, chunk, strict=True)
        ]
        pid = ref.project_id

        def record(con: Any, refs: list[TaskRef] = refs, pid: int = pid) -> int:
            return ls_store.add_tasks(con, server, pid, refs, now)

        store.run(record)
    return n_pred


def push_batch(
    store: Store,
    api: LabelStudioApi,
    batch_id: str,
    *,
    project: str | None = None,
    chunk_size: int = 1000,
) -> PushResult:
    """Push a batch as tasks into a (new or reused) project; idempotent. See module doc."""
    started = time.monotonic()
    now = utcnow()
    server = api.conn.server

    def read(con: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return batches_store.get_batch(con, batch_id), ls_store.push_items(con, batch_id)

    batch, items = store.run(read)
    show = bool(batch["show_suggestions"]) and batch["kind"] != "gold"
    name = project or default_project_name(batch_id)
    try:
        ref = _ensure_project(
            store, api, name=name, overlap=int(batch["overlap"]), show_suggestions=show,
            model_version=batch.get("model_version"), now=now,
        )
        _reconcile_tasks(store, api, ref, now)
        mapped_q = {
            t.question_id
            for t in store.run(lambda con: ls_store.task_map(con, server, ref.project_id)).values()
        }
        todo = [it for it in items if it["question_id"] not in mapped_q]
        n_pred = _import_tasks(
            store, api, ref, todo, batch_id=batch_id, model_version=batch.get("model_version"),
            show=show, chunk_size=chunk_size, now=now,
        )
    except CurationError as exc:
        _log_failure(store, server, None, "push", now, str(exc), batch_id=batch_id)
        raise
    seconds = time.monotonic() - started
    result = PushResult(
        batch_id=batch_id, project_id=ref.project_id, project_name=name,
        url=project_url(api.conn, ref.project_id), n_items=len(items), n_created=len(todo),
        n_existing=len(items) - len(todo), n_predictions=n_pred, seconds=round(seconds, 3),
    )
    store.run(lambda con: ls_store.log_sync(
        con, server=server, project_id=ref.project_id, direction="push", status="ok",
        started_at=now, finished_at=utcnow(), batch_id=batch_id, n_tasks=len(todo),
    ))
    return result


def _log_failure(
    store: Store, server: str, project_id: int | None, direction: str, started: datetime,
    message: str, *, batch_id: str | None = None, n_pages: int = 0, n_new_rows: int = 0,
) -> None:
    try:
        store.run(lambda con: ls_store.log_sync(
            con, server=server, project_id=project_id, direction=direction, status="failed",
            started_at=started, finished_at=utcnow(), batch_id=batch_id, n_pages=n_pages,
            n_new_rows=n_new_rows, message=message[:1000],
        ))
    except CurationError:
        pass  # the original error matters more


# ---------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------


def _user_map(store: Store, api: LabelStudioApi, now: datetime) -> dict[int, str]:
    """LS user id -> annotator, recording first-seen mappings."""
    server = api.conn.server
    users = api.users()

    def go(con: Any) -> dict[int, str]:
        mapping = ls_store.user_map(con, server)
        app_users = ls_store.known_annotators(con)
        locals_: dict[str, int] = {}
        for u in users:
            email = str(u.get("email") or "").lower()
            if "@" in email:
                loc = email.split("@", 1)[0]
                locals_[loc] = locals_.get(loc, 0) + 1
        new = []
        for u in users:
            uid = int(u["id"])
            if uid not in mapping:
                name = resolve_annotator(u, app_users, locals_)
                mapping[uid] = name
                new.append((uid, u.get("email"), name))
        ls_store.add_users(con, server, new, now)
        return mapping

    return dict(store.run(go))


def map_user(store: Store, api: LabelStudioApi, email: str, annotator: str) -> dict[str, Any]:
    """Map a Label Studio user (by email) to our annotator name, for rows pulled from now on."""
    target = email.strip().lower()
    matches = [u for u in api.users() if str(u.get("email") or "").lower() == target]
    if not matches:
        raise NotFoundError(f"no Label Studio user with email {email!r} on {api.base}")
    uid = int(matches[0]["id"])
    store.run(lambda con: ls_store.set_user(con, api.conn.server, uid, target, annotator, utcnow()))
    return {"ls_user_id": uid, "email": target, "annotator": annotator}

# ---------------------------------------------------------------------------------------
# Pull
# ---------------------------------------------------------------------------------------


@dataclass
class _PullProgress:
    """What a project's pull has stored so far (kept up to date page by page, so a failure
    can say how far it got)."""

    n_pages: int = 0
    n_tasks: int = 0
    n_new: int = 0
    seen: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _pull_pages(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, users: Mapping[int, str],
    tmap: Mapping[int, TaskRef], known: set[tuple[int, str]], progress: _PullProgress,
    *, page_size: int, now: datetime,
) -> None:
    """Store every page of the project's listing, each page in one transaction."""
    server = api.conn.server
    for page in api.task_pages(ref.project_id, fields=PULL_FIELDS, page_size=page_size):
        plan = plan_page(
            page, server=server, project_id=ref.project_id, task_map=tmap, users=users,
            known=known, guidelines_version=ref.guidelines_version, now=now,
        )

        def write(con: Any, plan: PagePlan = plan) -> int:
            added = append(con, plan.rows)
            ls_store.add_versions(con, plan.versions)
            return added

        if plan.rows:
            progress.n_new += store.run(write)
        known.update((v.ls_annotation_id, v.updated_at) for v in plan.versions)
        progress.seen |= plan.seen
        progress.problems.extend(plan.problems)
        progress.n_pages += 1
        progress.n_tasks += len(page)


def _record_deletions(
    con: Any, server: str, ref: ls_store.ProjectRef, tmap: Mapping[int, TaskRef],
    progress: _PullProgress, *, now: datetime,
) -> tuple[int, int]:
    """Write the rows of annotations gone from the complete listing and the sync log entry
    (one transaction). Returns (rows added, annotations deleted)."""
    seen = progress.seen
    live = ls_store.live_versions(con, server, ref.project_id)
    gone = [v.event_id for aid, v in live.items() if aid not in seen]
    keep = [v.event_id for aid, v in live.items() if aid in seen]
    rows_by_event = ls_store.label_rows_by_event(con, keep) if gone else {}
    del_rows, del_versions = plan_deletions(
        live, seen, server=server, project_id=ref.project_id, task_map=tmap,
        rows_by_event=rows_by_event, guidelines_version=ref.guidelines_version, now=now,
    )
    added = append(con, del_rows)
    ls_store.add_versions(con, del_versions)
    ls_store.log_sync(
        con, server=server, project_id=ref.project_id, direction="pull", status="ok",
        started_at=now, finished_at=utcnow(), n_tasks=progress.n_tasks,
        n_new_rows=progress.n_new + added, n_deleted=len(del_versions), n_pages=progress.n_pages,
        message="; ".join(progress.problems[:5]) or None,
    )
    return added, len(del_versions)


def _pull_project(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, users: Mapping[int, str],
    *, page_size: int, now: datetime,
) -> PullResult:
    server = api.conn.server
    started = time.monotonic()

    def load(con: Any) -> tuple[dict[int, TaskRef], set[tuple[int, str]]]:
        return (ls_store.task_map(con, server, ref.project_id),
                ls_store.known_versions(con, server, ref.project_id))

    tmap, known = store.run(load)
    progress = _PullProgress()
    try:
        _pull_pages(store, api, ref, users, tmap, known, progress, page_size=page_size, now=now)
    except LabelStudioError as exc:
        msg = (
            f"{exc}. Pull of project {ref.name!r} stopped after {progress.n_pages} complete "
            f"page(s) ({progress.n_new} new label row(s) stored, each page in one transaction); "
            "the store is consistent: run `curation ls pull` again to finish (nothing is "
            "duplicated)"
        )
        _log_failure(store, server, ref.project_id, "pull", now, msg, n_pages=progress.n_pages,
                     n_new_rows=progress.n_new)
        raise type(exc)(msg, status=exc.status) from None

    # Deletion candidates are confirmed one by one (they are rare): a task list that shifted
    # under us must not turn a live annotation into a retraction.
    live_now = store.run(lambda con: ls_store.live_versions(con, server, ref.project_id))
    try:
        for aid in sorted(a for a in live_now if a not in progress.seen):
            if api.annotation_exists(aid):
                progress.seen.add(aid)
    except LabelStudioError as exc:
        msg = (f"{exc}. Pull of project {ref.name!r}: all pages were stored; checking deletions "
               "failed, run `curation ls pull` again")
        _log_failure(store, server, ref.project_id, "pull", now, msg, n_pages=progress.n_pages,
                     n_new_rows=progress.n_new)
        raise type(exc)(msg, status=exc.status) from None

    added, n_deleted = store.run(
        lambda con: _record_deletions(con, server, ref, tmap, progress, now=now)
    )
    return PullResult(
        project_id=ref.project_id, project_name=ref.name, n_pages=progress.n_pages,
        n_tasks=progress.n_tasks, n_seen=len(progress.seen), n_new_rows=progress.n_new + added,
        n_deleted=n_deleted, problems=tuple(progress.problems),
        seconds=round(time.monotonic() - started, 3),
    )


def pull(
    store: Store, api: LabelStudioApi, *, project: str | None = None, page_size: int = 1000
) -> list[PullResult]:
    """Pull annotations of every project pushed to this server (or only `project`)."""
    server = api.conn.server
    refs = store.run(lambda con: ls_store.projects(con, server, name=project))
    if not refs:
        which = f"named {project!r} " if project else ""
        raise NotFoundError(
            f"no Label Studio project {which}was pushed to {api.base} from this store; "
            "run `curation ls push BATCH` first"
        )
    now = utcnow()
    try:
        users = _user_map(store, api, now)
    except LabelStudioError as exc:
        _log_failure(store, server, None, "pull", now, str(exc))
        raise
    return [_pull_project(store, api, ref, users, page_size=page_size, now=now) for ref in refs]


# ---------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------


def status(store: Store, server: str, api: LabelStudioApi | None = None) -> dict[str, Any]:
    """Per project: tasks, annotated, pending, last push/pull; live counts when `api` is given.

    `pending` = tasks with fewer current Label Studio annotations than the overlap.
    """
    server = normalize_server(server)

    def go(con: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[int, int]]:
        return (ls_store.project_counts(con, server), ls_store.last_syncs(con, server, limit=10),
                ls_store.completed_task_counts(con, server))

    counts, syncs, full = store.run(go)
    projects_out = []
    for c in counts:
        pid = int(c["project_id"])
        entry: dict[str, Any] = {
            "project_id": pid, "name": c["name"], "url": project_url(server, pid),
            "overlap": c["overlap"], "suggestions": bool(c["show_suggestions"]),
            "tasks": int(c["n_tasks"]), "annotated": int(c["n_annotated_tasks"]),
            "completed": int(full.get(pid, 0)),
            "pending": int(c["n_tasks"]) - int(full.get(pid, 0)),
            "annotations": int(c["n_annotations"]), "last_push": c["last_push"],
            "last_pull": c["last_pull"],
        }
        if api is not None:
            try:
                info = api.get_project(pid)
                entry["server_tasks"] = info.get("task_number")
                entry["server_annotations"] = info.get("total_annotations_number")
                entry["server_tasks_with_annotations"] = info.get("num_tasks_with_annotations")
            except LabelStudioError as exc:
                entry["server_error"] = str(exc)
        projects_out.append(entry)
    last_sync = next((s["finished_at"] for s in syncs if s["status"] == "ok"), None)
    return {"server": server, "projects": projects_out, "last_sync": last_sync,
            "recent_syncs": syncs}
