"""The pure mapping of curation.labelstudio: Label Studio annotations -> append-only rows,
deletions, user mapping, connection settings. No server needed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from curation import labelstudio as lsmod
from curation.errors import ConfigError, InputError
from curation.labelstudio.mapping import TaskRef, VersionRow
from curation.store.annotations import Annotation

pytestmark = pytest.mark.unit

SERVER = "http://ls.example:8080"
NOW = datetime(2026, 1, 2, 3, 4, 5)
TASK = TaskRef(task_id=11, question_id="q1", batch_id="b1", suggestion_shown=True)


def ann(aid: int, label: str | None, updated: str, *, user: int = 7, cancelled: bool = False) -> dict:
    result = [] if label is None else [
        {"from_name": "label", "to_name": "question", "type": "choices", "value": {"choices": [label]}}
    ]
    return {"id": aid, "result": result, "updated_at": updated, "created_at": updated,
            "completed_by": user, "was_cancelled": cancelled}


def test_annotation_row_fields_and_deterministic_event_id() -> None:
    a = ann(5, "reasoning", "2026-01-01T10:00:00.123456Z")
    row = lsmod.annotation_to_row(a, server=SERVER, project_id=3, task=TASK, annotator="alice",
                                  guidelines_version="1.0")
    assert (row.question_id, row.annotator, row.action, row.label, row.source) == (
        "q1", "alice", "label", "reasoning", "label_studio")
    assert row.created_at == datetime(2026, 1, 1, 10, 0, 0, 123456)
    assert row.batch_id == "b1" and row.suggestion_shown and row.guidelines_version == "1.0"
    assert "projects/3" in (row.source_ref or "") and "annotation=5" in (row.source_ref or "")
    same = lsmod.annotation_to_row(a, server=SERVER, project_id=3, task=TASK, annotator="alice",
                                   guidelines_version="1.0")
    assert same.event_id == row.event_id
    edited = lsmod.annotation_to_row(ann(5, "knowledge", "2026-01-01T11:00:00Z"), server=SERVER,
                                     project_id=3, task=TASK, annotator="alice",
                                     guidelines_version="1.0")
    other_server = lsmod.annotation_to_row(a, server="http://other:8080", project_id=3, task=TASK,
                                           annotator="alice", guidelines_version="1.0")
    assert len({row.event_id, edited.event_id, other_server.event_id}) == 3


def test_skip_retract_and_bad_label() -> None:
    def row(a: dict) -> Annotation:
        return lsmod.annotation_to_row(a, server=SERVER, project_id=3, task=TASK, annotator="a",
                                       guidelines_version=None)

    assert row(ann(1, "reasoning", "2026-01-01T00:00:00Z", cancelled=True)).action == "skip"
    empty = row(ann(2, None, "2026-01-01T00:00:00Z"))
    assert (empty.action, empty.label) == ("retract", None)
    with pytest.raises(InputError, match="task 11 annotation 3"):
        row(ann(3, "maybe", "2026-01-01T00:00:00Z"))


def test_plan_page_skips_known_versions_and_reports_unmapped_tasks() -> None:
    tasks: list[dict[str, Any]] = [
        {"id": 11, "annotations": [ann(1, "reasoning", "t1"), ann(2, "knowledge", "t2", user=8)]},
        {"id": 12, "annotations": []},
        {"id": 99, "annotations": [ann(3, "reasoning", "t3")]},
    ]
    tasks[0]["annotations"][0]["updated_at"] = "2026-01-01T00:00:00Z"
    tasks[0]["annotations"][1]["updated_at"] = "2026-01-01T00:00:01Z"
    plan = lsmod.plan_page(
        tasks, server=SERVER, project_id=3, task_map={11: TASK, 12: TaskRef(12, "q2", "b1", True)},
        users={7: "alice"}, known={(1, "2026-01-01T00:00:00Z")}, guidelines_version="1.0", now=NOW,
    )
    assert plan.seen == {1, 2}
    assert [(r.annotator, r.label) for r in plan.rows] == [("ls-user-8", "knowledge")]
    assert [v.ls_annotation_id for v in plan.versions] == [2]
    assert len(plan.problems) == 1 and "task 99" in plan.problems[0]


def _v(aid: int, task: int, who: str, updated: str, event: str) -> VersionRow:
    return VersionRow(SERVER, 3, aid, updated, "version", task, f"q{task}", who, event, NOW)


def test_plan_deletions_retracts_or_restates() -> None:
    live = {1: _v(1, 11, "alice", "t1", "e1"), 2: _v(2, 11, "bob", "t1", "e2"),
            3: _v(3, 11, "bob", "t2", "e3")}
    stored = {"e3": Annotation(question_id="q11", annotator="bob", action="label",
                                     label="knowledge", source="label_studio", created_at=NOW,
                                     event_id="e3")}
    rows, versions = lsmod.plan_deletions(
        live, seen={3}, server=SERVER, project_id=3, task_map={}, rows_by_event=stored,
        guidelines_version=None, now=NOW,
    )
    assert [(r.annotator, r.action, r.label) for r in rows] == [
        ("alice", "retract", None), ("bob", "label", "knowledge")]
    assert [v.kind for v in versions] == ["deleted", "deleted"]
    again, _ = lsmod.plan_deletions(live, seen={3}, server=SERVER, project_id=3, task_map={},
                                    rows_by_event=stored, guidelines_version=None, now=NOW)
    assert [r.event_id for r in again] == [r.event_id for r in rows]  # idempotent
    assert lsmod.plan_deletions(live, seen={1, 2, 3}, server=SERVER, project_id=3, task_map={},
                                rows_by_event={}, guidelines_version=None, now=NOW) == ([], [])


def test_resolve_annotator() -> None:
    counts = {"alice": 1, "bob": 2}
    app = {"alice", "bob", "carol-x"}
    assert lsmod.resolve_annotator({"email": "Alice@Example.com"}, app, counts) == "alice"
    assert lsmod.resolve_annotator({"email": "bob@a.org"}, app, counts) == "bob@a.org"  # ambiguous
    assert lsmod.resolve_annotator({"email": "z@b.org", "username": "carol-x"}, app, counts) == "carol-x"
    assert lsmod.resolve_annotator({"id": 4}, app, counts) == "ls-user-4"


def test_suggestion_prediction_score_is_probability_of_the_suggested_label() -> None:
    assert lsmod.suggestion_to_prediction(None, 0.3, "m") is None
    for label, score in (("reasoning", 0.8), ("knowledge", 0.2)):
        pred = lsmod.suggestion_to_prediction(label, 0.8, "m")
        assert pred is not None and pred["score"] == pytest.approx(score)
    with pytest.raises(InputError):
        lsmod.suggestion_to_prediction("knowledge", 1.5, "m")


def test_connection_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="--url or set LABEL_STUDIO_URL"):
        lsmod.connection()
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://HOST:8080/")
    with pytest.raises(ConfigError, match="LABEL_STUDIO_API_KEY"):
        lsmod.connection()
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "secret-token-123")
    conn = lsmod.connection()
    assert conn.server == "http://host:8080"
    assert "secret-token-123" not in repr(conn)
    with pytest.raises(ConfigError, match="not an http"):
        lsmod.connection("ftp://x", "k")


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, lsmod.LabelStudioBadRequest), (422, lsmod.LabelStudioBadRequest),
     (401, lsmod.LabelStudioAuthError), (403, lsmod.LabelStudioAuthError),
     (404, lsmod.LabelStudioNotFound), (409, lsmod.LabelStudioConflict),
     (500, lsmod.LabelStudioServerError), (503, lsmod.LabelStudioServerError),
     (418, lsmod.LabelStudioError), (None, lsmod.LabelStudioError)],
)
def test_http_status_picks_the_error_class(status: int | None, cls: type) -> None:
    assert lsmod.error_class(status) is cls
    assert issubclass(cls, lsmod.LabelStudioError)
