"""A typed rationale survives a reload (issue #18), in a real Chromium against the app started
with `curation app` (the fixtures of `test_app_sessions.py`): the draft (rationale, chosen
label, confidence) is kept in the store after a typing pause, without leaving the box; a
reload shows the same question with it; Ctrl+Enter stores the label with that rationale, and
the draft is then gone (the next box is empty, the store keeps no draft row). The typed text
is markup on purpose: it comes back as the box's text, never as HTML.

The rules of a draft (kept only under a live lease, dropped when the lease moves on, checked
values) are checked on the store itself, below. Screenshots are written to each test's tmp_path.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_app_sessions import (  # noqa: F401  (served and browser are fixtures)
    browser,
    expect,
    fill_login,
    new_page,
    seed,
    served,
    wait_cookie,
    wait_idle,
)

from curation.errors import InputError
from curation.services import annotate
from curation.store import Store
from curation.store import annotations as astore

pytestmark = pytest.mark.e2e

TYPED = "needs 2 steps <img src=x onerror=alert(1)> & <b>not bold</b>"


def shown_question(page: Any) -> str:
    wait_idle(page)
    return str(page.get_by_text("· gold set · question ").inner_text().rsplit(" ", 1)[-1])


def rows(store: Store, qid: str) -> list[dict[str, Any]]:
    return [r for r in store.run(astore.annotation_rows) if r["question_id"] == qid]


def drafts(store: Store) -> list[tuple[Any, ...]]:
    return store.run(lambda con: con.execute(
        "SELECT user_name, question_id, rationale, label, confidence FROM drafts ORDER BY question_id").fetchall())


def wait_draft(store: Store, expected: list[tuple[Any, ...]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while drafts(store) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"drafts are {drafts(store)}, expected {expected}")
        time.sleep(0.1)


def test_a_typed_rationale_survives_a_reload_and_goes_with_the_label(served, browser, tmp_path) -> None:  # noqa: F811
    url, store = served["url"], served["store"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = new_page(ctx)
    page.goto(url)
    fill_login(page, "ann1")
    wait_cookie(ctx, page)
    first = shown_question(page)
    page.locator("[class*='st-key-lab_pick_']").get_by_text("Knowledge", exact=True).click()
    wait_idle(page)
    page.locator("[class*='st-key-lab_conf_']").get_by_text("3", exact=True).click()
    wait_idle(page)
    box = page.get_by_label("Rationale (optional)")
    box.click()
    page.keyboard.type(TYPED)
    # kept after a typing pause, while the caret is still in the box (no Esc, no blur)
    wait_draft(store, [("ann1", first, TYPED, "knowledge", 3)])
    assert page.evaluate("() => document.activeElement.tagName") == "INPUT"
    assert rows(store, first) == []  # a draft is not a label
    assert annotate.draft_count(store, "ann1") == 1

    page.reload()
    expect(page.get_by_text("Logged in as ann1")).to_be_visible()
    assert shown_question(page) == first
    box = page.get_by_label("Rationale (optional)")
    expect(box).to_have_value(TYPED)
    assert page.locator("img[src='x']").count() == 0 and page.locator("b", has_text="not bold").count() == 0
    page.screenshot(path=str(tmp_path / "draft-after-reload.png"), full_page=True)

    # the restored label and confidence are what Ctrl+Enter submits, from inside the box
    box.click()
    page.keyboard.press("End")
    page.keyboard.type(".")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("1 done,")).to_be_visible()
    [row] = rows(store, first)
    assert (row["action"], row["label"], row["confidence"], row["rationale"]) == (
        "label", "knowledge", 3, TYPED + ".")
    second = shown_question(page)
    assert second != first
    expect(page.get_by_label("Rationale (optional)")).to_have_value("")
    assert drafts(store) == []

    # and a reload now shows the next question with an empty box (no draft comes back)
    page.reload()
    expect(page.get_by_text("Logged in as ann1")).to_be_visible()
    assert shown_question(page) == second
    expect(page.get_by_label("Rationale (optional)")).to_have_value("")
    assert drafts(store) == []
    page.screenshot(path=str(tmp_path / "draft-gone-after-submit.png"), full_page=True)
    ctx.close()


def test_a_draft_is_kept_only_under_a_live_lease_and_dropped_when_it_moves_on(tmp_path) -> None:
    store = Store(tmp_path / "drafts.duckdb")
    seed(store)
    first = annotate.fetch_next_with_draft(store, "ann1")
    qid = first["task"]["question_id"]
    assert first["draft"] is None
    assert annotate.save_draft(store, "ann1", qid, rationale="  ") is False  # nothing to keep
    assert annotate.save_draft(store, "ann1", "s-unleased", rationale="x") is False  # not leased to ann1
    assert annotate.save_draft(store, "boss", qid, rationale="x") is False  # leased to someone else
    assert annotate.save_draft(store, "ann1", qid, rationale=" as typed ", confidence=2) is True
    assert drafts(store) == [("ann1", qid, " as typed ", None, 2)]
    for bad in ({"label": "maybe"}, {"confidence": 4}, {"rationale": "x" * (annotate.DRAFT_MAX_CHARS + 1)}):
        with pytest.raises(InputError):
            annotate.save_draft(store, "ann1", qid, **bad)
    assert drafts(store) == [("ann1", qid, " as typed ", None, 2)]  # a refused draft changes nothing
    again = annotate.fetch_next_with_draft(store, "ann1")  # the same question, its lease renewed
    assert again["task"]["question_id"] == qid and again["draft"]["rationale"] == " as typed "
    annotate.save_draft(store, "ann1", qid)  # everything cleared: the draft goes
    assert drafts(store) == []

    annotate.save_draft(store, "ann1", qid, rationale="kept while leased")
    store.run(lambda con: con.execute("UPDATE assignments SET expires_at = assigned_at"))  # it expired
    assert annotate.fetch_next(store, "boss")["task"]["question_id"] == qid  # and K=1: boss takes it
    later = annotate.fetch_next_with_draft(store, "ann1")
    assert later["task"]["question_id"] != qid and later["draft"] is None
    assert drafts(store) == []  # the lease moved on: the draft went with it
