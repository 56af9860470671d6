"""A label is recorded only for the question the person saw (real DuckDB file).

Two tabs of one annotator, a replayed event, a stale undo: the store refuses what would
change a question other than the one on screen, names it, and adds no row.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from test_queue import add_questions

from curation.errors import ConflictError, CurationError
from curation.services import annotate
from curation.store import Store, utcnow
from curation.store import annotations as astore
from curation.store import queue as q
from curation.store.annotations import Annotation, append

pytestmark = pytest.mark.integration


def rows(store: Store) -> list[tuple[str, str, str | None, str]]:
    return [(r["question_id"], r["action"], r["label"], r["event_id"]) for r in store.run(astore.annotation_rows)]


def test_conflict_error_is_a_curation_error() -> None:
    assert issubclass(ConflictError, CurationError)


def test_second_tab_cannot_relabel_a_finished_question(store: Store) -> None:
    add_questions(store, 4)
    annotate.draw_gold(store, 3, 1, seed=0)
    tab_a = annotate.fetch_next(store, "ann")["task"]["question_id"]
    tab_b = annotate.fetch_next(store, "ann")["task"]["question_id"]
    assert tab_a == tab_b  # one annotator, two tabs: the same leased question on both
    annotate.submit_and_next(store, "ann", tab_a, action="label", label="reasoning", event_id="tab-a")
    before = rows(store)
    with pytest.raises(ConflictError) as err:
        annotate.submit_and_next(store, "ann", tab_b, action="label", label="knowledge", event_id="tab-b")
    msg = str(err.value)
    assert f"question {tab_a} was already labeled 'reasoning' by you (another tab or window?) at " in msg
    assert re.search(r" at \d\d:\d\d:\d\d UTC; nothing changed\. Use Undo to change it\.$", msg), msg
    assert rows(store) == before  # no row from tab B
    cur = store.run(astore.all_current_labels)
    assert [(c["question_id"], c["label"]) for c in cur] == [(tab_a, "reasoning")]
    # a skip from the stale tab is refused the same way, and a skip blocks a late label
    with pytest.raises(ConflictError, match=f"question {tab_a} was already labeled"):
        store.run(lambda con: q.submit(con, "ann", tab_a, action="skip", event_id="tab-b-skip"))
    nxt = annotate.fetch_next(store, "ann")["task"]["question_id"]
    annotate.submit_and_next(store, "ann", nxt, action="skip", event_id="skip-1")
    with pytest.raises(ConflictError, match=f"question {nxt} was already skipped by you"):
        annotate.submit_and_next(store, "ann", nxt, action="label", label="reasoning", event_id="late")
    assert [r[3] for r in rows(store)] == ["tab-a", "skip-1"]


def test_replayed_event_is_a_no_op_not_a_conflict(store: Store) -> None:
    add_questions(store, 3)
    annotate.draw_gold(store, 2, 1, seed=0)
    qid = annotate.fetch_next(store, "ann")["task"]["question_id"]
    first = annotate.submit_and_next(store, "ann", qid, action="label", label="reasoning", event_id="E")
    again = annotate.submit_and_next(store, "ann", qid, action="label", label="knowledge", event_id="E")
    assert first["recorded"] and not again["recorded"]
    assert again["task"]["question_id"] == first["task"]["question_id"]
    assert rows(store) == [(qid, "label", "reasoning", "E")]
    # an undo event replayed returns what it undid and undoes nothing more
    r1 = annotate.undo_and_next(store, "ann", event_id="U", expected=qid)
    r2 = annotate.undo_and_next(store, "ann", event_id="U", expected="something-else")
    assert r1["undone"] == r2["undone"] == qid
    assert [r[1] for r in rows(store)] == ["label", "retract"]


def test_relabel_after_undo_is_allowed(store: Store) -> None:
    add_questions(store, 3)
    annotate.draw_gold(store, 2, 1, seed=0)
    qid = annotate.fetch_next(store, "ann")["task"]["question_id"]
    annotate.submit_and_next(store, "ann", qid, action="label", label="reasoning", event_id="e1")
    r = annotate.undo_and_next(store, "ann", event_id="u1", expected=qid)
    assert r["undone"] == qid and r["task"]["question_id"] == qid and r["undo_next"] is None
    assert annotate.submit_and_next(store, "ann", qid, action="label", label="knowledge", event_id="e2")["recorded"]
    cur = store.run(astore.all_current_labels)
    assert [(c["question_id"], c["label"]) for c in cur] == [(qid, "knowledge")]


def test_stale_undo_is_refused_and_names_both_questions(store: Store) -> None:
    add_questions(store, 4)
    annotate.draw_gold(store, 3, 1, seed=0)
    t1 = annotate.fetch_next(store, "ann")["task"]["question_id"]
    t2 = annotate.submit_and_next(store, "ann", t1, action="label", label="reasoning", event_id="e1")["task"]["question_id"]
    # tab B was drawn now: it offers to undo t1. Tab A then labels t2.
    assert store.run(lambda con: q.undo_preview(con, "ann")) == t1
    annotate.submit_and_next(store, "ann", t2, action="label", label="knowledge", event_id="e2")
    before = rows(store)
    with pytest.raises(ConflictError) as err:
        annotate.undo_and_next(store, "ann", event_id="tab-b-undo", expected=t1)
    assert str(err.value) == (
        f"Undo not applied: your last action is now question {t2}, not {t1} shown on this screen. "
        f"Press U again to undo {t2}.")
    assert rows(store) == before
    # a screen that showed nothing to undo
    with pytest.raises(ConflictError, match="while this screen showed nothing to undo"):
        annotate.undo_and_next(store, "ann", event_id="u-empty", expected="")
    # the matching expectation works, and says what a further undo would take back
    r = annotate.undo_and_next(store, "ann", event_id="u2", expected=t2)
    assert r["undone"] == t2 and r["task"]["question_id"] == t2 and r["undo_next"] == t1
    # the other tab undid t2 already: this screen's "undo t2" is refused, t1 is untouched
    with pytest.raises(ConflictError, match=f"your last action is now question {t1}, not {t2}"):
        annotate.undo_and_next(store, "ann", event_id="u3", expected=t2)
    r = annotate.undo_and_next(store, "ann", event_id="u4", expected=t1)
    assert r["undone"] == t1 and r["undo_next"] is None
    with pytest.raises(ConflictError, match=f"question {t1} shown on this screen has no label or skip"):
        annotate.undo_and_next(store, "ann", event_id="u5", expected=t1)
    assert annotate.undo_and_next(store, "ann", event_id="u6", expected="")["undone"] is None
    assert annotate.undo_and_next(store, "ann", event_id="u7")["undone"] is None  # no expectation: as before
    assert [r[3] for r in rows(store)] == ["e1", "e2", "u2", "u4"]


def test_label_studio_label_of_the_same_person_blocks_an_app_label(store: Store) -> None:
    add_questions(store, 2)
    annotate.draw_gold(store, 1, 1, seed=0)
    qid = annotate.fetch_next(store, "ann")["task"]["question_id"]
    store.run(lambda con: append(con, [Annotation(
        question_id=qid, annotator="ann", action="label", label="knowledge", source="label_studio",
        created_at=utcnow() - timedelta(days=2), event_id="ls-1")]))
    with pytest.raises(ConflictError, match=rf"question {qid} was already labeled 'knowledge' by you in "
                                            r"label_studio at \d{4}-\d\d-\d\d .*Change it in label_studio\."):
        store.run(lambda con: q.submit(con, "ann", qid, action="label", label="reasoning", event_id="app-1"))
