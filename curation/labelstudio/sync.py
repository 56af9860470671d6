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

K-overlap on the Community Edition: one project per overlap, `maximum_annotations=K`
    (see `curation.labelstudio.projects`).

Pull (`curation ls pull [--project NAME]`)
    Lists the tasks of each project page by page (`GET /api/tasks`, only the annotation
    fields we map; the next page is fetched while one is stored) and turns each *new
    version* of an annotation (id, `updated_at`) into an append-only `annotations` row
    with `source='label_studio'`, `created_at` = the annotation's `updated_at`, and an
    `event_id` derived from (server, project, annotation id, updated_at): re-pulling is a
    no-op, an edit becomes a new row, a submission without a choice a `retract` row, a
    skip a `skip` row. Label Studio users map to our annotators (`projects.user_map`). An
    edit whose `updated_by` is not the annotator is the *editor's* row; a version that
    says nothing new (a ground-truth toggle) is marked seen without a row. A deleted
    project or a changed label config is reported and skipped (`projects.check_project`).

    Since the last pull: after a complete pull, the next one lists only tasks whose
    `updated_at` is later than that pull's start (server clock, less `SINCE_MARGIN`) and
    then checks that the store holds as many live annotations as Label Studio counts,
    listing everything if not (`_pull_checked` says why that misses nothing); `full=True`
    always lists everything.

    Consistency: each page is written in **one transaction**, so a server that dies
    mid-pull leaves whole pages only; the command says how many were stored and to run
    it again, and the next pull skips what is stored. Deletions are decided among the
    listed tasks' annotations after a *complete* listing, each confirmed by a 404: a
    stored annotation no longer in Label Studio gets a `retract` row (or a row restating
    the same annotator's other annotation of that task).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from curation.errors import CurationError, InputError, NotFoundError
from curation.labelstudio import projects
from curation.labelstudio.api import (
    Connection,
    LabelStudioApi,
    LabelStudioAuthError,
    LabelStudioError,
)
from curation.labelstudio.checks import config_drift, expected_settings
from curation.labelstudio.mapping import (
    PagePlan,
    TaskRef,
    instructions_html,
    load_label_config,
    plan_deletions,
    plan_page,
    question_to_task,
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
PULL_FIELDS = ("id,annotations,result,updated_at,created_at,completed_by,updated_by,was_cancelled,"
               "lead_time,parent_prediction,ground_truth")
# How far before the previous complete pull's start a pull with nothing to suspect lists
# tasks again: covers the server clock's one-second `Date` header, an annotation saved just
# before and committed after that pull's listing, and clock drift between pulls.
SINCE_MARGIN = timedelta(minutes=2)


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
    settings_drift: str | None = None  # settings changed by hand (restored with fix_settings)
    settings_fixed: bool = False


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
    status: str = "ok"  # 'ok' | 'skipped' (deleted, unreachable) | 'config drift'
    message: str | None = None  # why it was skipped
    n_invalid: int = 0  # annotations not stored: a label value that is not ours
    over_k: tuple[str, ...] = ()  # tasks with more labels than the overlap K
    settings_drift: str | None = None
    since: datetime | None = None  # listed only tasks updated after this (server clock); None: all

    @property
    def complete(self) -> bool:
        """Everything of this project was stored (the command exits 0 only if all are)."""
        return self.status == "ok" and self.n_invalid == 0


def default_project_name(batch_id: str) -> str:
    return f"{PROJECT_PREFIX}{batch_id}"


def project_url(conn_or_server: Connection | str, project_id: int) -> str:
    base = conn_or_server.url if isinstance(conn_or_server, Connection) else conn_or_server
    return projects.project_url(base, project_id)


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


@dataclass(frozen=True)
class _Target:
    """The project a push goes to, and the settings drift found on it."""

    ref: ls_store.ProjectRef
    settings_drift: str | None = None
    settings_fixed: bool = False


def _known_project(
    store: Store, api: LabelStudioApi, server: str, *, name: str, overlap: int,
    show_suggestions: bool, model_version: str | None, fix_settings: bool, now: datetime,
) -> _Target | None:
    """The live project titled `name` we pushed to before, checked; None if there is none.
    One deleted in Label Studio is retired; a drifted label config stops the push."""
    for ref in store.run(lambda con: ls_store.projects(con, server, name=name)):
        check = projects.check_project(api, ref)
        if check.info is None:
            store.run(partial(ls_store.retire_project, server=server, project_id=ref.project_id,
                              reason="deleted in Label Studio (found by push)", at=now))
            continue  # make a new one
        if check.config_diff:
            raise InputError(projects.config_drift_message(ref, check.config_diff)
                             .replace("pull again", "push again"))
        if ref.overlap != overlap or ref.show_suggestions != show_suggestions:
            raise InputError(
                f"project {name!r} (id {ref.project_id}) holds batches with overlap "
                f"{ref.overlap} and suggestions {'on' if ref.show_suggestions else 'off'}; "
                f"this batch has overlap {overlap} and suggestions "
                f"{'on' if show_suggestions else 'off'}: push it with another --project"
            )
        if fix_settings:
            projects.fix_settings(api, ref, check)
        if show_suggestions and model_version:
            api.update_project(ref.project_id, model_version=model_version)
        return _Target(ref, check.settings_message, fix_settings and bool(check.settings))
    return None


def _ensure_project(
    store: Store, api: LabelStudioApi, server: str, *, name: str, overlap: int,
    show_suggestions: bool, model_version: str | None, fix_settings: bool, now: datetime,
) -> _Target:
    known = _known_project(
        store, api, server, name=name, overlap=overlap, show_suggestions=show_suggestions,
        model_version=model_version, fix_settings=fix_settings, now=now,
    )
    if known is not None:
        return known
    version, body = _guidelines()
    existing = api.find_projects(name)
    if len(existing) > 1:
        raise InputError(
            f"Label Studio has {len(existing)} projects titled {name!r}; rename all but one "
            "or push with another --project"
        )
    settings = expected_settings(overlap=overlap, show_suggestions=show_suggestions)
    if show_suggestions and model_version:
        settings["model_version"] = model_version
    ours = load_label_config()
    if existing:
        pid = int(existing[0]["id"])
        current = api.get_project(pid)
        if int(current.get("maximum_annotations") or 1) != overlap:
            raise InputError(
                f"Label Studio project {name!r} (id {pid}) has overlap "
                f"{current.get('maximum_annotations')}, the batch {overlap}; push with another --project"
            )
        diff = config_drift(ours, str(current.get("label_config") or ""))
        if diff:
            raise InputError(f"Label Studio project {name!r} (id {pid}) has another labeling "
                             f"config than curation's; push with another --project:\n{diff}")
        api.update_project(pid, **{k: v for k, v in settings.items() if k != "maximum_annotations"})
    else:
        created = api.create_project(
            title=name,
            label_config=ours,
            description=f"Created by curation: {name}. Labels are pulled with `curation ls pull`.",
            expert_instruction=instructions_html(body) if body else "",
            show_instruction=bool(body),
            **settings,
        )
        pid = int(created["id"])
    ref = ls_store.ProjectRef(
        server=server, project_id=pid, name=name, overlap=overlap,
        show_suggestions=bool(show_suggestions), guidelines_version=version, created_at=now,
        label_config=ours,
    )
    store.run(lambda con: ls_store.add_project(con, ref))
    return _Target(ref)


def _import_tasks(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, items: list[dict[str, Any]],
    *, batch_id: str, model_version: str | None, show: bool, chunk_size: int, now: datetime,
) -> int:
    """Import `items` (rows of `ls_store.push_items`) in chunks, recording each chunk's task
    map in its own transaction right after its import. Returns the number of predictions."""
    server = ref.server
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
    fix_settings: bool = False,
) -> PushResult:
    """Push a batch as tasks into a (new or reused) project; idempotent. See module doc.
    Settings changed by hand on the project are reported (`settings_drift`), or restored
    with `fix_settings`; a changed label config stops the push."""
    started = time.monotonic()
    now = utcnow()
    server = projects.resolve_server(store, api)

    def read(con: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return batches_store.get_batch(con, batch_id), ls_store.push_items(con, batch_id)

    batch, items = store.run(read)
    show = bool(batch["show_suggestions"]) and batch["kind"] != "gold"
    name = project or default_project_name(batch_id)
    try:
        target = _ensure_project(
            store, api, server, name=name, overlap=int(batch["overlap"]), show_suggestions=show,
            model_version=batch.get("model_version"), fix_settings=fix_settings, now=now,
        )
        ref = target.ref
        projects.reconcile_tasks(store, api, ref, now)
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
        settings_drift=target.settings_drift, settings_fixed=target.settings_fixed,
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
# Pull
# ---------------------------------------------------------------------------------------


@dataclass
class _PullProgress:
    """What a project's pull has stored so far (kept up to date page by page, so a failure
    can say how far it got)."""

    n_pages: int = 0
    n_tasks: int = 0
    n_new: int = 0
    n_invalid: int = 0
    seen: set[int] = field(default_factory=set)
    listed: set[int] = field(default_factory=set)  # task ids
    problems: list[str] = field(default_factory=list)


def _pull_pages(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, users: Mapping[int, str],
    tmap: Mapping[int, TaskRef], known: set[tuple[int, str]], progress: _PullProgress,
    *, page_size: int, now: datetime, since: datetime | None,
) -> None:
    """Store every page of the project's listing (tasks updated after `since`, or all), each
    page in one transaction; the next page is fetched while one is stored."""
    server = ref.server
    latest = store.run(lambda con: ls_store.latest_contents(con, server, ref.project_id))
    for page in api.task_pages(ref.project_id, fields=PULL_FIELDS, page_size=page_size,
                               updated_since=since, read_ahead=True):
        plan = plan_page(
            page, server=server, project_id=ref.project_id, task_map=tmap, users=users,
            known=known, guidelines_version=ref.guidelines_version, now=now, latest=latest,
        )

        def write(con: Any, plan: PagePlan = plan) -> int:
            added = append(con, plan.rows)
            ls_store.add_versions(con, plan.versions)
            return added

        if plan.versions:
            progress.n_new += store.run(write)
        known.update((v.ls_annotation_id, v.updated_at) for v in plan.versions)
        progress.seen |= plan.seen
        progress.problems.extend(plan.problems)
        progress.n_invalid += plan.invalid
        progress.n_pages += 1
        progress.n_tasks += len(page)
        progress.listed.update(int(t["id"]) for t in page)


def _record_deletions(
    con: Any, ref: ls_store.ProjectRef, tmap: Mapping[int, TaskRef],
    progress: _PullProgress, *, now: datetime, task_ids: list[int] | None, any_gone: bool,
) -> tuple[int, int]:
    """Write the rows of annotations (of the tasks `task_ids`, or all) gone from the complete
    listing and the sync log entry (one transaction). Returns (rows added, annotations
    deleted). `any_gone`: whether a deletion was confirmed (else only the log is written)."""
    server, seen = ref.server, progress.seen
    live = ls_store.live_versions(con, server, ref.project_id, task_ids) if any_gone else {}
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


def _stopped(store: Store, ref: ls_store.ProjectRef, progress: _PullProgress, exc: LabelStudioError,
             now: datetime, what: str) -> LabelStudioError:
    """The error to raise when a project's pull stopped half-way (logged as failed)."""
    msg = f"{exc}. Pull of project {ref.name!r} {what}"
    _log_failure(store, ref.server, ref.project_id, "pull", now, msg, n_pages=progress.n_pages,
                 n_new_rows=progress.n_new)
    return type(exc)(msg, status=exc.status)


def _pull_project(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, users: Mapping[int, str],
    *, page_size: int, now: datetime, since: datetime | None,
) -> PullResult:
    """List the project's tasks (only those updated after `since` when given), store what is
    new, then decide deletions among the listed tasks' annotations."""
    server = ref.server
    started = time.monotonic()

    def load(con: Any) -> tuple[dict[int, TaskRef], set[tuple[int, str]]]:
        return (ls_store.task_map(con, server, ref.project_id),
                ls_store.known_versions(con, server, ref.project_id))

    tmap, known = store.run(load)
    progress = _PullProgress()
    try:
        _pull_pages(store, api, ref, users, tmap, known, progress, page_size=page_size, now=now,
                    since=since)
    except LabelStudioError as exc:
        raise _stopped(store, ref, progress, exc, now, (
            f"stopped after {progress.n_pages} complete page(s) ({progress.n_new} new label "
            "row(s) stored, each page in one transaction); the store is consistent: run "
            "`curation ls pull` again to finish (nothing is duplicated)")) from None

    # Deletions are decided among the listed tasks' annotations (all tasks, or the changed
    # ones); each candidate is confirmed one by one (they are rare): a task list that
    # shifted under us must not turn a live annotation into a retraction.
    task_ids = None if since is None else sorted(progress.listed)
    live_now = store.run(lambda con: ls_store.live_versions(con, server, ref.project_id, task_ids))
    try:
        for aid in sorted(a for a in live_now if a not in progress.seen):
            if api.annotation_exists(aid):
                progress.seen.add(aid)
    except LabelStudioError as exc:
        raise _stopped(store, ref, progress, exc, now, (
            "all pages were stored; checking deletions failed, run `curation ls pull` again"
        )) from None
    any_gone = any(a not in progress.seen for a in live_now)
    added, n_deleted = store.run(lambda con: _record_deletions(
        con, ref, tmap, progress, now=now, task_ids=task_ids, any_gone=any_gone))
    over = store.run(lambda con: ls_store.over_k_tasks(con, server, ref.project_id, ref.overlap))
    over_k = tuple(
        f"project {ref.project_id} task {o['task_id']} (question {o['question_id']}): "
        f"{len(o['annotators'])} labels for overlap {ref.overlap} "
        f"({', '.join(o['annotators'])}); Label Studio does not enforce K on a direct POST"
        for o in over
    )
    return PullResult(
        project_id=ref.project_id, project_name=ref.name, n_pages=progress.n_pages,
        n_tasks=progress.n_tasks, n_seen=len(progress.seen), n_new_rows=progress.n_new + added,
        n_deleted=n_deleted, problems=tuple(progress.problems),
        seconds=round(time.monotonic() - started, 3), n_invalid=progress.n_invalid, over_k=over_k,
        since=since,
    )


def _since_last_pull(
    store: Store, ref: ls_store.ProjectRef, skew: timedelta | None
) -> datetime | None:
    """Server time after which tasks are listed: the start of the previous complete pull
    (our clock + `skew`, the server's clock minus ours) less `SINCE_MARGIN`; None (list
    everything) without a previous complete pull or a server clock reading."""
    last = store.run(lambda con: ls_store.last_complete_pull(con, ref.server, ref.project_id))
    if last is None or skew is None:
        return None
    return last + skew - SINCE_MARGIN


def _pull_checked(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, users: Mapping[int, str],
    *, page_size: int, now: datetime, since: datetime | None,
) -> PullResult:
    """Pull one project; a pull that listed only tasks updated since the last one is checked:
    the store must then hold as many live annotations of the project as Label Studio counts
    (`total_annotations_number` + `skipped_annotations_number`), else everything is listed.

    Why that is enough: every annotation saved or deleted through the API or the Data
    Manager bumps its task's `updated_at` (see `LabelStudioApi.task_pages`), so changed
    tasks are listed; what can bypass it (a task deleted with its annotations, a direct
    database change, an annotation our mapping could not store) changes the count."""
    result = _pull_project(store, api, ref, users, page_size=page_size, now=now, since=since)
    if since is None:
        return result
    info = api.get_project(ref.project_id)
    theirs = sum(int(info.get(k) or 0)
                 for k in ("total_annotations_number", "skipped_annotations_number"))
    ours = store.run(lambda con: ls_store.live_count(con, ref.server, ref.project_id))
    if theirs == ours:
        return result
    full = _pull_project(store, api, ref, users, page_size=page_size, now=now, since=None)
    return replace(full, n_new_rows=result.n_new_rows + full.n_new_rows,
                   n_deleted=result.n_deleted + full.n_deleted,
                   seconds=round(result.seconds + full.seconds, 3))


def _skipped(store: Store, ref: ls_store.ProjectRef, status: str, message: str, now: datetime) -> PullResult:
    _log_failure(store, ref.server, ref.project_id, "pull", now, message)
    return PullResult(
        project_id=ref.project_id, project_name=ref.name, n_pages=0, n_tasks=0, n_seen=0,
        n_new_rows=0, n_deleted=0, problems=(message,), seconds=0.0, status=status,
        message=message,
    )


def pull(
    store: Store, api: LabelStudioApi, *, project: str | None = None, batch: str | None = None,
    page_size: int = 1000, full: bool = False,
) -> list[PullResult]:
    """Pull annotations of every live project pushed to this server (or only those titled
    `project` / holding `batch`). A project deleted in Label Studio, or whose label config
    was changed, is reported (`status`) and skipped; the others are pulled: only tasks
    updated since the project's last complete pull (checked, see `_pull_checked`), or
    every task with `full` or when there was none."""
    server = projects.resolve_server(store, api)  # asks the server first: "cannot reach"
    refs = store.run(lambda con: ls_store.projects(con, server, name=project, batch=batch))
    if not refs:
        which = " ".join(x for x in (f"named {project!r}" if project else "",
                                     f"holding batch {batch!r}" if batch else "") if x)
        raise NotFoundError(
            f"no live Label Studio project {which + ' ' if which else ''}was pushed to "
            f"{api.base} from this store; run `curation ls push BATCH` first "
            "(`curation ls projects` lists them)"
        )
    now = utcnow()
    try:
        users = projects.user_map(store, api, server, now)
    except LabelStudioError as exc:
        _log_failure(store, server, None, "pull", now, str(exc))
        raise
    out = []
    for ref in refs:
        try:
            check = projects.check_project(api, ref)
        except LabelStudioAuthError:
            raise
        except LabelStudioError as exc:
            out.append(_skipped(store, ref, "skipped", f"{exc}; project {ref.name!r} skipped", now))
            continue
        if check.error:
            out.append(_skipped(store, ref, "skipped", check.error, now))
        elif check.config_diff:
            out.append(_skipped(store, ref, "config drift",
                                projects.config_drift_message(ref, check.config_diff), now))
        else:
            skew = None if api.server_time is None else api.server_time - utcnow()
            since = None if full else _since_last_pull(store, ref, skew)
            result = _pull_checked(store, api, ref, users, page_size=page_size, now=now,
                                   since=since)
            out.append(replace(result, settings_drift=check.settings_message))
    return out
