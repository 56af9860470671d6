"""Label Studio: push batches as tasks (with pre-annotations), pull labels back.

The only module that talks to Label Studio (label-studio-sdk 2.x, Community Edition
1.23 tested). It has three layers:

* **Pure mapping** (no I/O): `question_to_task`, `suggestion_to_prediction`,
  `annotation_to_row`, `deletion_row`, `resolve_annotator`, `plan_page`, `plan_deletions`.
  They take plain dicts and return plain values; unit-tested without a server.
* **HTTP adapter** `LabelStudioApi`: one method per call, every failure turned into a
  `LabelStudioError` whose message never contains the API key.
* **Sync** `push_batch`, `pull`, `status`, `map_user`: glue between the two and the
  store (`curation.store.labelstudio` holds the sync state).

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
    pages only; the command fails with a message saying how many pages were stored and
    to run it again, and the next pull skips what is stored (no duplicates). Deletions
    are only decided after a *complete* listing, and each one is confirmed by a 404 for
    that annotation: an annotation stored before but no longer in Label Studio gets a
    `retract` row (or, if the same annotator still has
    another annotation of that task there, a row restating that one).

Connection: `url`/`api_key` arguments, else `LABEL_STUDIO_URL` / `LABEL_STUDIO_API_KEY`.
Both legacy tokens and personal access tokens (JWT refresh tokens) work.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from curation.config import require_env
from curation.errors import ConfigError, CurationError, InputError, NotFoundError
from curation.schema import LABELS
from curation.store import Store, utcnow
from curation.store import batches as batches_store
from curation.store import labelstudio as ls_store
from curation.store.annotations import Annotation, append

CONFIG_DIR = Path(__file__).resolve().parent.parent / "labeling_config"
DEFAULT_CONFIG = "reasoning_knowledge"
URL_ENV = "LABEL_STUDIO_URL"
KEY_ENV = "LABEL_STUDIO_API_KEY"
FROM_LABEL, FROM_CONFIDENCE, FROM_RATIONALE, TO_NAME = "label", "confidence", "rationale", "question"
PROJECT_PREFIX = "curation "
# `include=` of the task listing. Label Studio applies it to the task *and* to its nested
# annotations, so this asks for exactly the annotation fields we map (about half the
# server time of the full listing).
PULL_FIELDS = "id,annotations,result,updated_at,created_at,completed_by,was_cancelled"


class LabelStudioError(CurationError):
    """Label Studio could not be reached or refused a request (message never holds the key)."""


# ---------------------------------------------------------------------------------------
# Connection settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """Where the server is and how to authenticate. The key is kept out of `repr`."""

    url: str
    api_key: str = field(repr=False)

    @property
    def server(self) -> str:
        return normalize_server(self.url)


def normalize_server(url: str) -> str:
    """A stable identity for a server: scheme and host lower-cased, no trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"Label Studio URL {url!r} is not an http(s) URL; pass --url or set {URL_ENV}"
        )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def connection(url: str | None = None, api_key: str | None = None) -> Connection:
    """Arguments first, then `LABEL_STUDIO_URL` / `LABEL_STUDIO_API_KEY`."""
    u = require_env(URL_ENV, url, option="--url")
    k = require_env(KEY_ENV, api_key, option="--api-key")
    normalize_server(u)
    return Connection(u.rstrip("/"), k)


def server_url(url: str | None = None) -> str:
    """The server identity from `url` or `LABEL_STUDIO_URL` (no key needed)."""
    return normalize_server(require_env(URL_ENV, url, option="--url"))


# ---------------------------------------------------------------------------------------
# Pure mapping
# ---------------------------------------------------------------------------------------


def config_path(name: str = DEFAULT_CONFIG) -> Path:
    return CONFIG_DIR / f"{name}.xml"


def load_label_config(name: str = DEFAULT_CONFIG) -> str:
    """The labeling config XML shipped in `labeling_config/`."""
    path = config_path(name)
    if not path.is_file():
        raise ConfigError(f"{path}: labeling config not found")
    return path.read_text(encoding="utf-8")


def format_options(options: Mapping[str, str]) -> str:
    """Options one per line, `A. text`, in letter order."""
    return "\n".join(f"{k}. {v}" for k, v in sorted(options.items()))


def question_to_task(question: Mapping[str, Any], *, batch_id: str | None) -> dict[str, Any]:
    """A Label Studio task (`{"data": ...}`) for one question row of our store.

    The text goes in as data and is rendered by `<Text>` tags, which show it as plain
    text (question text is untrusted).
    """
    options = question["options"]
    if isinstance(options, str):
        options = json.loads(options)
    return {
        "data": {
            "question_id": str(question["id"]),
            "question": str(question["question"]),
            "options": format_options(options),
            "dataset": str(question.get("dataset_name") or ""),
            "batch_id": batch_id or "",
        }
    }


def suggestion_to_prediction(
    label: str | None, prob_reasoning: float | None, model_version: str | None
) -> dict[str, Any] | None:
    """A pre-annotation for a model suggestion, or None when there is no suggestion.

    `prob_reasoning` is the model's p(reasoning) (as in `batch_items.suggestion_prob`);
    the prediction's `score` is the model's probability of the *suggested* label.
    """
    if label is None:
        return None
    if label not in LABELS:
        raise InputError(f"suggestion {label!r} is not one of {', '.join(LABELS)}")
    pred: dict[str, Any] = {
        "result": [
            {"from_name": FROM_LABEL, "to_name": TO_NAME, "type": "choices",
             "value": {"choices": [label]}}
        ],
        "model_version": model_version or "unknown",
    }
    if prob_reasoning is not None:
        p = float(prob_reasoning)
        if not 0.0 <= p <= 1.0:
            raise InputError(f"suggestion probability {p} is not within [0, 1]")
        pred["score"] = round(p if label == "reasoning" else 1.0 - p, 6)
    return pred


def _digest(*parts: object) -> str:
    payload = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def annotation_event_id(server: str, project_id: int, annotation_id: int, updated_at: str) -> str:
    """Deterministic event id of one version of a Label Studio annotation."""
    return "ls-" + _digest("label_studio", server, project_id, annotation_id, updated_at)


def parse_ls_time(value: str) -> datetime:
    """Label Studio's ISO timestamps (`...Z` or with offset) as naive UTC."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"timestamp {value!r} is not ISO 8601") from exc
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def source_ref(server: str, project_id: int, task_id: int, annotation_id: int, updated_at: str) -> str:
    """Where a row came from: a link to the task in Label Studio, plus the version."""
    return (
        f"{server}/projects/{project_id}/data?task={task_id}"
        f"&annotation={annotation_id}&updated_at={updated_at}"
    )


def result_fields(result: Sequence[Mapping[str, Any]]) -> tuple[str | None, int | None, str | None]:
    """(label, confidence, rationale) from a Label Studio result list."""
    label: str | None = None
    confidence: int | None = None
    rationale: str | None = None
    for region in result or ():
        name = region.get("from_name")
        value = region.get("value") or {}
        if name == FROM_LABEL:
            choices = value.get("choices") or []
            if choices:
                label = str(choices[0])
        elif name == FROM_CONFIDENCE:
            rating = value.get("rating")
            if isinstance(rating, int | float) and int(rating) == rating and 1 <= rating <= 3:
                confidence = int(rating)
        elif name == FROM_RATIONALE:
            text = value.get("text") or []
            joined = "\n".join(str(t) for t in text).strip() if isinstance(text, list) else str(text)
            rationale = joined or None
    return label, confidence, rationale


def annotation_to_row(
    ann: Mapping[str, Any],
    *,
    server: str,
    project_id: int,
    task: ls_store.TaskRef,
    annotator: str,
    guidelines_version: str | None,
) -> Annotation:
    """One version of a Label Studio annotation as an append-only `Annotation` row.

    Cancelled (skipped) -> `skip`; no choice -> `retract` (the annotator has no label);
    otherwise a `label` row. Raises `InputError` for a choice outside our labels.
    """
    ann_id = int(ann["id"])
    updated = str(ann.get("updated_at") or ann.get("created_at"))
    label, confidence, rationale = result_fields(ann.get("result") or [])
    if ann.get("was_cancelled"):
        action, label, confidence = "skip", None, None
    elif label is None:
        action, confidence = "retract", None
    else:
        action = "label"
        if label not in LABELS:
            raise InputError(
                f"label {label!r} is not one of {', '.join(LABELS)}",
                location=f"Label Studio project {project_id} task {task.task_id} annotation {ann_id}",
            )
    return Annotation(
        question_id=task.question_id,
        annotator=annotator,
        action=action,
        label=label,
        source="label_studio",
        created_at=parse_ls_time(updated),
        event_id=annotation_event_id(server, project_id, ann_id, updated),
        confidence=confidence,
        rationale=rationale,
        source_ref=source_ref(server, project_id, task.task_id, ann_id, updated),
        guidelines_version=guidelines_version,
        suggestion_shown=task.suggestion_shown,
        batch_id=task.batch_id,
    )


def resolve_annotator(
    user: Mapping[str, Any], app_users: set[str], local_part_counts: Mapping[str, int]
) -> str:
    """Our annotator name for a Label Studio user (used the first time a user is seen).

    An app user named like the LS email, then the LS username, then the email's local
    part (only if no other LS user shares it); otherwise the email itself.
    """
    email = str(user.get("email") or "").strip().lower()
    username = str(user.get("username") or "").strip()
    local = email.split("@", 1)[0] if "@" in email else ""
    for candidate in (email, username):
        if candidate and candidate in app_users:
            return candidate
    if local and local in app_users and local_part_counts.get(local, 0) == 1:
        return local
    return email or username or f"ls-user-{user.get('id')}"


@dataclass
class PagePlan:
    """What one page of the listing adds to the store."""

    rows: list[Annotation] = field(default_factory=list)
    versions: list[ls_store.VersionRow] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def plan_page(
    tasks: Sequence[Mapping[str, Any]],
    *,
    server: str,
    project_id: int,
    task_map: Mapping[int, ls_store.TaskRef],
    users: Mapping[int, str],
    known: set[tuple[int, str]],
    guidelines_version: str | None,
    now: datetime,
) -> PagePlan:
    """New label rows and version records for one page of tasks (pure).

    Versions in `known` (annotation id, updated_at) are skipped; tasks missing from
    `task_map` are reported as problems (they were not pushed by us).
    """
    plan = PagePlan()
    for t in tasks:
        task_id = int(t["id"])
        anns = t.get("annotations") or []
        ref = task_map.get(task_id)
        if ref is None:
            if anns:
                plan.problems.append(
                    f"project {project_id} task {task_id}: not pushed by curation (no question "
                    f"mapped); its {len(anns)} annotation(s) were not pulled"
                )
            continue
        for ann in anns:
            ann_id = int(ann["id"])
            plan.seen.add(ann_id)
            if not ann.get("updated_at") and not ann.get("created_at"):
                plan.problems.append(
                    f"project {project_id} task {task_id} annotation {ann_id}: the listing has no "
                    "timestamps (unsupported Label Studio version?); not pulled"
                )
                continue
            updated = str(ann.get("updated_at") or ann.get("created_at"))
            if (ann_id, updated) in known:
                continue
            uid = ann.get("completed_by")
            if isinstance(uid, Mapping):
                uid = uid.get("id")
            annotator = users.get(int(uid)) if uid is not None else None
            annotator = annotator or f"ls-user-{uid}"
            try:
                row = annotation_to_row(
                    ann, server=server, project_id=project_id, task=ref, annotator=annotator,
                    guidelines_version=guidelines_version,
                )
            except InputError as exc:
                plan.problems.append(str(exc))
                continue
            plan.rows.append(row)
            plan.versions.append(ls_store.VersionRow(
                server=server, project_id=project_id, ls_annotation_id=ann_id, updated_at=updated,
                kind="version", task_id=task_id, question_id=ref.question_id, annotator=annotator,
                event_id=row.event_id, seen_at=now,
            ))
    return plan


def plan_deletions(
    live: Mapping[int, ls_store.VersionRow],
    seen: set[int],
    *,
    server: str,
    project_id: int,
    task_map: Mapping[int, ls_store.TaskRef],
    rows_by_event: Mapping[str, Annotation],
    guidelines_version: str | None,
    now: datetime,
) -> tuple[list[Annotation], list[ls_store.VersionRow]]:
    """Rows for annotations stored before but absent from a complete listing (pure).

    `live` is the latest stored version of each annotation not yet seen deleted (after
    this pull's pages), `rows_by_event` the stored rows of those versions. A deletion
    becomes a `retract` row unless the same annotator still has another live annotation
    of that task, in which case its latest one is restated as a new `label` row.
    """
    rows: list[Annotation] = []
    versions: list[ls_store.VersionRow] = []
    gone = sorted(aid for aid in live if aid not in seen)
    remaining = {aid: v for aid, v in live.items() if aid in seen}
    for aid in gone:
        v = live[aid]
        ref = task_map.get(v.task_id) or ls_store.TaskRef(v.task_id, v.question_id, None, False)
        others = sorted(
            (o for o in remaining.values()
             if o.task_id == v.task_id and o.annotator == v.annotator),
            key=lambda o: o.updated_at,
        )
        restate = rows_by_event.get(others[-1].event_id) if others else None
        event_id = "ls-del-" + _digest("deleted", server, project_id, aid, v.updated_at)
        ref_text = source_ref(server, project_id, v.task_id, aid, v.updated_at) + "&deleted=1"
        if restate is not None and restate.action in ("label", "retract", "skip"):
            action, label = restate.action, restate.label
            confidence, rationale = restate.confidence, restate.rationale
        else:
            action, label, confidence, rationale = "retract", None, None, None
        if action == "skip":
            action, label = "retract", None
        rows.append(Annotation(
            question_id=v.question_id, annotator=v.annotator, action=action, label=label,
            source="label_studio", created_at=now, event_id=event_id, confidence=confidence,
            rationale=rationale, source_ref=ref_text, guidelines_version=guidelines_version,
            suggestion_shown=ref.suggestion_shown, batch_id=ref.batch_id,
        ))
        versions.append(ls_store.VersionRow(
            server=server, project_id=project_id, ls_annotation_id=aid, updated_at=v.updated_at,
            kind="deleted", task_id=v.task_id, question_id=v.question_id, annotator=v.annotator,
            event_id=event_id, seen_at=now,
        ))
    return rows, versions


def instructions_html(guidelines_markdown: str) -> str:
    """The guidelines as the project's instructions (escaped, shown as preformatted text)."""
    return (
        '<div style="white-space: pre-wrap; font-family: inherit">'
        + html.escape(guidelines_markdown)
        + "</div>"
    )


# ---------------------------------------------------------------------------------------
# HTTP adapter
# ---------------------------------------------------------------------------------------


class LabelStudioApi:
    """Thin wrapper over `label_studio_sdk.client.LabelStudio`: one method per request.

    Every failure raises `LabelStudioError` with the URL, what failed and what to do;
    the API key is scrubbed from every message.
    """

    def __init__(self, conn: Connection, *, timeout: float = 120.0, max_retries: int = 2) -> None:
        from label_studio_sdk.client import LabelStudio

        self.conn = conn
        self.base = conn.url.rstrip("/")
        try:
            self._sdk = LabelStudio(
                base_url=self.base, api_key=conn.api_key, timeout=timeout, max_retries=max_retries
            )
        except Exception as exc:  # the SDK validates JWT keys eagerly
            raise LabelStudioError(self._describe("connect", exc)) from None
        self._http = self._sdk._client_wrapper.httpx_client

    # -- error handling ---------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        key = self.conn.api_key
        return text.replace(key, "***") if key else text

    def _describe(self, what: str, exc: BaseException) -> str:
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        where = f"Label Studio at {self.base}"
        if isinstance(exc, ApiError):
            status = exc.status_code
            body = exc.body
            detail = body.get("detail") if isinstance(body, dict) else body
            detail_text = str(detail)[:300] if detail else ""
            if status in (401, 403):
                hint = (f"check the API key (--api-key / {KEY_ENV}); legacy tokens need "
                        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server")
            elif status == 404:
                hint = "the object does not exist on this server (deleted in Label Studio?)"
            elif status is not None and status >= 500:
                hint = "the server failed; check its log and run the command again"
            else:
                hint = "see the detail above"
            msg = f"{where}: {what} failed with HTTP {status}"
            msg += f": {detail_text}" if detail_text else ""
            return self._scrub(f"{msg}; {hint}")
        if isinstance(exc, httpx.TimeoutException):
            return self._scrub(f"{where}: {what} timed out; is the server overloaded? run it again")
        if isinstance(exc, httpx.TransportError):
            return self._scrub(
                f"{where}: {what} failed: cannot reach the server ({type(exc).__name__}); "
                f"is it running and is --url / {URL_ENV} right?"
            )
        return self._scrub(f"{where}: {what} failed: {type(exc).__name__}: {exc}")

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except LabelStudioError:
            raise
        except Exception as exc:
            raise LabelStudioError(self._describe(what, exc)) from None

    def _request(
        self, what: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        json_body: Any = None, retry: bool = True,
    ) -> Any:
        from label_studio_sdk.core.api_error import ApiError

        options: Any = None if retry else {"max_retries": 0}

        def go() -> Any:
            resp = self._http.request(
                path, method=method, params=dict(params or {}), json=json_body,
                request_options=options,
            )
            if resp.status_code >= 400:
                try:
                    body: Any = resp.json()
                except ValueError:
                    body = resp.text[:300]
                raise ApiError(status_code=resp.status_code, headers=None, body=body)
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError:
                raise ApiError(status_code=resp.status_code, headers=None,
                               body="response is not JSON") from None

        return self._call(what, go)

    # -- calls ------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        return dict(self._request("who-am-i", "GET", "api/current-user/whoami"))

    def find_projects(self, title: str) -> list[dict[str, Any]]:
        """Projects with exactly this title (the list endpoint is paginated)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self._request(
                "list projects", "GET", "api/projects",
                params={"title": title, "page": page, "page_size": 100, "include": "id,title"},
            )
            results = data.get("results", []) if isinstance(data, dict) else data
            out.extend(p for p in results if p.get("title") == title)
            if not isinstance(data, dict) or not data.get("next"):
                return out
            page += 1

    def get_project(self, project_id: int) -> dict[str, Any]:
        return dict(self._request(f"read project {project_id}", "GET", f"api/projects/{project_id}"))

    def create_project(self, **fields: Any) -> dict[str, Any]:
        return dict(self._request(
            "create project", "POST", "api/projects", json_body=fields, retry=False
        ))

    def update_project(self, project_id: int, **fields: Any) -> dict[str, Any]:
        return dict(self._request(
            f"update project {project_id}", "PATCH", f"api/projects/{project_id}", json_body=fields
        ))

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
        """Import tasks (with inline predictions); returns the new task ids in request order."""
        data = self._request(
            f"import {len(tasks)} tasks into project {project_id}", "POST",
            f"api/projects/{project_id}/import", params={"return_task_ids": "true"},
            json_body=list(tasks), retry=False,  # a retried import could duplicate tasks
        )
        ids = [int(i) for i in data.get("task_ids") or []]
        if len(ids) != len(tasks):
            raise LabelStudioError(
                f"Label Studio at {self.base}: import into project {project_id} returned "
                f"{len(ids)} task ids for {len(tasks)} tasks; run push again (it reconciles)"
            )
        return ids

    def task_pages(
        self, project_id: int, *, fields: str, page_size: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every task of a project, page by page, ordered by id; `fields` as in `include=`."""
        page = 1
        seen = 0
        while True:
            params: dict[str, Any] = {
                "project": project_id, "page": page, "page_size": page_size, "include": fields,
                "query": json.dumps({"ordering": ["tasks:id"]}),
            }
            if "annotations" in fields:
                params["fields"] = "all"
            try:
                data = self._request(
                    f"list tasks of project {project_id} (page {page})", "GET", "api/tasks",
                    params=params,
                )
            except LabelStudioError as exc:
                # "Invalid page": the project shrank while we listed it; that was the end.
                if page > 1 and "HTTP 404" in str(exc):
                    return
                raise
            tasks = list(data.get("tasks") or [])
            total = int(data.get("total") or 0)
            if tasks:
                yield tasks
            seen += len(tasks)
            if len(tasks) < page_size or seen >= total:
                return
            page += 1

    def annotation_exists(self, annotation_id: int) -> bool:
        """False only when the server answers 404 for this annotation."""
        try:
            self._request(f"read annotation {annotation_id}", "GET",
                          f"api/annotations/{annotation_id}/")
        except LabelStudioError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        return True

    def users(self) -> list[dict[str, Any]]:
        data = self._request("list users", "GET", "api/users")
        results = data.get("results", []) if isinstance(data, dict) else data
        return [dict(u) for u in results]


# ---------------------------------------------------------------------------------------
# Sync: push, pull, status
# ---------------------------------------------------------------------------------------


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
        except LabelStudioError as exc:
            if "HTTP 404" in str(exc):
                continue  # deleted in Label Studio: make a new one
            raise
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
        known_q = {
            r[0] for r in con.execute(
                "SELECT id FROM questions WHERE id IN (SELECT unnest(?))", [list(found.values())]
            ).fetchall()
        }
        refs = [ls_store.TaskRef(tid, q, None, ref.show_suggestions)
                for tid, q in sorted(found.items()) if q in known_q]
        ls_store.add_tasks(con, server, ref.project_id, refs, now)

    store.run(adopt)


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
        batch = batches_store.get_batch(con, batch_id)
        cur = con.execute(
            "SELECT bi.question_id, bi.position, bi.suggestion_label, bi.suggestion_prob, "
            "q.question, q.options, q.dataset_name FROM batch_items bi "
            "JOIN questions q ON q.id = bi.question_id WHERE bi.batch_id = ? ORDER BY bi.position",
            [batch_id],
        )
        names = [d[0] for d in cur.description]
        return batch, [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

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
        n_pred = 0
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            payload = []
            for it in chunk:
                task = question_to_task(
                    {"id": it["question_id"], "question": it["question"], "options": it["options"],
                     "dataset_name": it["dataset_name"]},
                    batch_id=batch_id,
                )
                pred = (
                    suggestion_to_prediction(
                        it["suggestion_label"], it["suggestion_prob"], batch.get("model_version")
                    ) if show else None
                )
                if pred is not None:
                    task["predictions"] = [pred]
                    n_pred += 1
                payload.append(task)
            ids = api.import_tasks(ref.project_id, payload)
            refs = [
                ls_store.TaskRef(tid, it["question_id"], batch_id,
                                 show and it["suggestion_label"] is not None)
                for tid, it in zip(ids, chunk, strict=True)
            ]
            pid = ref.project_id

            def record(con: Any, refs: list[ls_store.TaskRef] = refs, pid: int = pid) -> int:
                return ls_store.add_tasks(con, server, pid, refs, now)

            store.run(record)
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


def _pull_project(
    store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, users: Mapping[int, str],
    *, page_size: int, now: datetime,
) -> PullResult:
    server = api.conn.server
    started = time.monotonic()

    def load(con: Any) -> tuple[dict[int, ls_store.TaskRef], set[tuple[int, str]]]:
        return (ls_store.task_map(con, server, ref.project_id),
                ls_store.known_versions(con, server, ref.project_id))

    tmap, known = store.run(load)
    n_pages = n_tasks = n_new = 0
    seen: set[int] = set()
    problems: list[str] = []
    try:
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
                n_new += store.run(write)
            known.update((v.ls_annotation_id, v.updated_at) for v in plan.versions)
            seen |= plan.seen
            problems.extend(plan.problems)
            n_pages += 1
            n_tasks += len(page)
    except LabelStudioError as exc:
        msg = (
            f"{exc}. Pull of project {ref.name!r} stopped after {n_pages} complete page(s) "
            f"({n_new} new label row(s) stored, each page in one transaction); the store is "
            "consistent: run `curation ls pull` again to finish (nothing is duplicated)"
        )
        _log_failure(store, server, ref.project_id, "pull", now, msg, n_pages=n_pages,
                     n_new_rows=n_new)
        raise LabelStudioError(msg) from None

    # Deletion candidates are confirmed one by one (they are rare): a task list that shifted
    # under us must not turn a live annotation into a retraction.
    live_now = store.run(lambda con: ls_store.live_versions(con, server, ref.project_id))
    try:
        for aid in sorted(a for a in live_now if a not in seen):
            if api.annotation_exists(aid):
                seen.add(aid)
    except LabelStudioError as exc:
        msg = (f"{exc}. Pull of project {ref.name!r}: all pages were stored; checking deletions "
               "failed, run `curation ls pull` again")
        _log_failure(store, server, ref.project_id, "pull", now, msg, n_pages=n_pages,
                     n_new_rows=n_new)
        raise LabelStudioError(msg) from None

    def finish(con: Any) -> tuple[int, int]:
        live = ls_store.live_versions(con, server, ref.project_id)
        gone = [v.event_id for aid, v in live.items() if aid not in seen]
        keep = [v.event_id for aid, v in live.items() if aid in seen]
        rows_by_event: dict[str, Annotation] = {}
        if gone:
            cur = con.execute(
                "SELECT event_id, question_id, annotator, action, label, confidence, rationale, "
                "created_at FROM annotations WHERE event_id IN (SELECT unnest(?))", [keep],
            )
            for r in cur.fetchall():
                rows_by_event[r[0]] = Annotation(
                    question_id=r[1], annotator=r[2], action=r[3], label=r[4], source="label_studio",
                    created_at=r[7], event_id=r[0], confidence=r[5], rationale=r[6],
                )
        del_rows, del_versions = plan_deletions(
            live, seen, server=server, project_id=ref.project_id, task_map=tmap,
            rows_by_event=rows_by_event, guidelines_version=ref.guidelines_version, now=now,
        )
        added = append(con, del_rows)
        ls_store.add_versions(con, del_versions)
        ls_store.log_sync(
            con, server=server, project_id=ref.project_id, direction="pull", status="ok",
            started_at=now, finished_at=utcnow(), n_tasks=n_tasks, n_new_rows=n_new + added,
            n_deleted=len(del_versions), n_pages=n_pages,
            message="; ".join(problems[:5]) or None,
        )
        return added, len(del_versions)

    added, n_deleted = store.run(finish)
    return PullResult(
        project_id=ref.project_id, project_name=ref.name, n_pages=n_pages, n_tasks=n_tasks,
        n_seen=len(seen), n_new_rows=n_new + added, n_deleted=n_deleted,
        problems=tuple(problems), seconds=round(time.monotonic() - started, 3),
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


def status(store: Store, server: str, api: LabelStudioApi | None = None) -> dict[str, Any]:
    """Per project: tasks, annotated, pending, last push/pull; live counts when `api` is given.

    `pending` = tasks with fewer current Label Studio annotations than the overlap.
    """
    server = normalize_server(server)

    def go(con: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[int, int]]:
        counts = ls_store.project_counts(con, server)
        full = dict(con.execute(
            """WITH cur AS (
                   SELECT v.project_id, v.task_id, v.ls_annotation_id FROM (
                       SELECT *, row_number() OVER (PARTITION BY project_id, ls_annotation_id
                                                    ORDER BY updated_at DESC, seen_at DESC) rn
                       FROM ls_annotation_versions WHERE server = $s AND kind = 'version') v
                   WHERE v.rn = 1 AND NOT EXISTS (
                       SELECT 1 FROM ls_annotation_versions d WHERE d.server = $s
                       AND d.kind = 'deleted' AND d.project_id = v.project_id
                       AND d.ls_annotation_id = v.ls_annotation_id)),
               per_task AS (SELECT project_id, task_id, count(*) n FROM cur GROUP BY ALL)
               SELECT p.project_id, count(*) FILTER (WHERE pt.n >= p.overlap)
               FROM ls_projects p JOIN per_task pt ON pt.project_id = p.project_id
               WHERE p.server = $s GROUP BY p.project_id""",
            {"s": server},
        ).fetchall())
        return counts, ls_store.last_syncs(con, server, limit=10), full

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


def open_api(url: str | None = None, api_key: str | None = None, **kwargs: Any) -> LabelStudioApi:
    """`LabelStudioApi` from arguments or the environment."""
    return LabelStudioApi(connection(url, api_key), **kwargs)


def env_configured() -> bool:
    return bool(os.environ.get(URL_ENV)) and bool(os.environ.get(KEY_ENV))


def current_labels_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """`(item, rater, label)` rows from `current_labels` rows (any source)."""
    return [(str(r["question_id"]), str(r["annotator"]), str(r["label"])) for r in rows]
