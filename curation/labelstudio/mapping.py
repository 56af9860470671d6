"""Label Studio mapping, pure (no I/O): our rows <-> Label Studio task, prediction and
annotation JSON, and the labeling config shipped in `labeling_config/`.

* Push: `question_to_task` (a question as a task), `suggestion_to_prediction` (a model
  suggestion as a pre-annotation, `score` = the model's probability of the suggested label).
* Pull: `annotation_to_row` turns one *version* of an annotation (id, `updated_at`) into
  an append-only `annotations` row with `source='label_studio'` and an `event_id` derived
  from (server, project, annotation id, updated_at), so re-pulling is a no-op and an edit
  becomes a new row; a submission without a choice becomes `retract`, a skip `skip`.
  `plan_page` does that for one page of tasks, `plan_deletions` for annotations gone
  from a complete listing.
* Users: `resolve_annotator` names our annotator for a Label Studio user.

They take plain dicts and return plain values; unit-tested without a server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation.config import labeling_config_dir
from curation.errors import ConfigError, InputError
from curation.schema import LABELS, Annotation

CONFIG_DIR = labeling_config_dir()
DEFAULT_CONFIG = "reasoning_knowledge"
FROM_LABEL, FROM_CONFIDENCE, FROM_RATIONALE, TO_NAME = "label", "confidence", "rationale", "question"



@dataclass(frozen=True)
class TaskRef:
    """One pushed task: where it lives and which question it carries."""

    task_id: int
    question_id: str
    batch_id: str | None
    suggestion_shown: bool
    suggestion_label: str | None = None  # the suggestion pushed with it, when shown


@dataclass(frozen=True)
class VersionRow:
    """One Label Studio annotation version (or deletion) already stored as a label row."""

    server: str
    project_id: int
    ls_annotation_id: int
    updated_at: str
    kind: str  # 'version' | 'deleted'
    task_id: int
    question_id: str
    annotator: str
    event_id: str
    seen_at: datetime
    ls_completed_by: int | None = None
    ls_updated_by: int | None = None
    edited_from: str | None = None  # the annotator, when `annotator` is someone who edited
    lead_time: float | None = None  # seconds spent, as Label Studio reports it
    accepted_prediction: bool | None = None  # the suggestion submitted unchanged
    ground_truth: bool | None = None


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
    task: TaskRef,
    annotator: str,
    guidelines_version: str | None,
    edited_from: str | None = None,
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
        source_ref=source_ref(server, project_id, task.task_id, ann_id, updated)
        + (f"&edited_from={edited_from}" if edited_from else ""),
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
    """What one page of the listing adds to the store. `invalid`: annotations not stored
    because their content is not ours (an unknown label value); they are not marked seen."""

    rows: list[Annotation] = field(default_factory=list)
    versions: list[VersionRow] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    invalid: int = 0


def row_content(row: Annotation) -> tuple[Any, ...]:
    """What a label row says, whoever says it: a new version saying the same (a ground-truth
    toggle, a save without change) is recorded as seen without a new row."""
    return (row.action, row.label, row.confidence, row.rationale)


def _user_id(value: Any) -> int | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return int(value) if value is not None else None


def _version_meta(ann: Mapping[str, Any], ref: TaskRef, label: str | None) -> dict[str, Any]:
    """The provenance fields of a version (time spent, suggestion accepted, ground truth)."""
    lead = ann.get("lead_time")
    parent = ann.get("parent_prediction")
    return {
        "lead_time": float(lead) if isinstance(lead, int | float) else None,
        "accepted_prediction": (parent is not None and ref.suggestion_label is not None
                                and label == ref.suggestion_label),
        "ground_truth": bool(ann.get("ground_truth")) if "ground_truth" in ann else None,
    }


def plan_page(
    tasks: Sequence[Mapping[str, Any]],
    *,
    server: str,
    project_id: int,
    task_map: Mapping[int, TaskRef],
    users: Mapping[int, str],
    known: set[tuple[int, str]],
    guidelines_version: str | None,
    now: datetime,
    latest: dict[int, tuple[Any, ...]] | None = None,
) -> PagePlan:
    """New label rows and version records for one page of tasks (pure).

    Versions in `known` (annotation id, updated_at) are skipped; tasks missing from
    `task_map` are reported as problems (they were not pushed by us). A version whose
    `updated_by` is not its `completed_by` is the editor's row (`edited_from` names the
    annotator), never the annotator's. A version saying what `latest[annotation id]` (the
    `row_content` of its latest stored version, updated here) says is recorded as seen with
    that row's event id, without a new row.
    """
    latest = {} if latest is None else latest
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
            owner_id, editor_id = _user_id(ann.get("completed_by")), _user_id(ann.get("updated_by"))
            owner = users.get(owner_id) if owner_id is not None else None
            owner = owner or f"ls-user-{owner_id}"
            edited_from = None
            annotator = owner
            if editor_id is not None and editor_id != owner_id:
                annotator = users.get(editor_id) or f"ls-user-{editor_id}"
                edited_from = owner
            try:
                row = annotation_to_row(
                    ann, server=server, project_id=project_id, task=ref, annotator=annotator,
                    guidelines_version=guidelines_version, edited_from=edited_from,
                )
            except InputError as exc:
                plan.problems.append(str(exc))
                plan.invalid += 1
                continue
            previous = latest.get(ann_id)
            event_id = row.event_id
            if previous is not None and previous[1:] == row_content(row):
                event_id = previous[0]  # nothing new was said: no row
            else:
                plan.rows.append(row)
                latest[ann_id] = (event_id, *row_content(row))
            plan.versions.append(VersionRow(
                server=server, project_id=project_id, ls_annotation_id=ann_id, updated_at=updated,
                kind="version", task_id=task_id, question_id=ref.question_id, annotator=annotator,
                event_id=event_id, seen_at=now, ls_completed_by=owner_id, ls_updated_by=editor_id,
                edited_from=edited_from, **_version_meta(ann, ref, row.label),
            ))
    return plan


def plan_deletions(
    live: Mapping[int, VersionRow],
    seen: set[int],
    *,
    server: str,
    project_id: int,
    task_map: Mapping[int, TaskRef],
    rows_by_event: Mapping[str, Annotation],
    guidelines_version: str | None,
    now: datetime,
) -> tuple[list[Annotation], list[VersionRow]]:
    """Rows for annotations stored before but absent from a complete listing (pure).

    `live` is the latest stored version of each annotation not yet seen deleted (after
    this pull's pages), `rows_by_event` the stored rows of those versions. A deletion
    becomes a `retract` row unless the same annotator still has another live annotation
    of that task, in which case its latest one is restated as a new `label` row.
    """
    rows: list[Annotation] = []
    versions: list[VersionRow] = []
    gone = sorted(aid for aid in live if aid not in seen)
    remaining = {aid: v for aid, v in live.items() if aid in seen}
    for aid in gone:
        v = live[aid]
        ref = task_map.get(v.task_id) or TaskRef(v.task_id, v.question_id, None, False)
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
        versions.append(VersionRow(
            server=server, project_id=project_id, ls_annotation_id=aid, updated_at=v.updated_at,
            kind="deleted", task_id=v.task_id, question_id=v.question_id, annotator=v.annotator,
            event_id=event_id, seen_at=now,
        ))
    return rows, versions


def instructions_html(guidelines_markdown: str) -> str:
    """The guidelines (Markdown) as the project's instructions: HTML made only of tags Label
    Studio keeps (its `bleach` allow-list: headings, paragraphs, lists, emphasis, code,
    blockquote, tables), no styles (it strips them). Raw HTML in the Markdown is escaped."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    return md.render(guidelines_markdown)
