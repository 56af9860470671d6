"""The labeling flow in a real Chromium (the app, seeding and login of `test_app_browser.py`):
keys never leak into text (`1` typed in the rationale is text, Ctrl+Enter submits the chosen
label from inside it, Esc leaves it and `1` labels again), an earlier label reopened and
changed from "My progress" (a new row, the old one kept), an adjudication done with the
keyboard, and the action buttons inside a 1400x1000 window with a 10-option question.

Screenshots of every page touched are written to each test's tmp_path (`*.png`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_app_browser import (  # noqa: F401  (app_url and browser are fixtures)
    app_url,
    browser,
    expect,
    log_in,
    seed,
    wait_idle,
)

from curation.services import annotate
from curation.store import Store, utcnow
from curation.store import annotations as astore

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 1400, 1000


def shown_question(page) -> str:
    wait_idle(page)
    return page.get_by_text("· gold set · question ").inner_text().rsplit(" ", 1)[-1]


def rows(store: Store, qid: str) -> list[dict[str, Any]]:
    return [r for r in store.run(astore.annotation_rows) if r["question_id"] == qid]


def shot(page, tmp_path: Path, name: str) -> None:
    page.wait_for_timeout(300)  # let charts and toasts paint
    page.screenshot(path=str(tmp_path / f"{name}.png"))  # the 1400x1000 window as seen


def rationale(page):
    return page.get_by_label("Rationale (optional)")


def test_digits_in_the_rationale_stay_text_ctrl_enter_submits_and_esc_leaves(app_url, browser, tmp_path) -> None:  # noqa: F811
    store: Store = app_url["store"]
    seed(store, [(f"kb-{i}", "medqa", f"Keyboard question {i}: which step?") for i in range(3)], overlap=1)
    ctx, page = log_in(browser, app_url["start"](), "ann1")
    expect(page.get_by_text("Ctrl/⌘+Enter")).to_be_visible()  # the key legend
    first = shown_question(page)
    page.locator("[class*='st-key-lab_pick_']").get_by_text("Knowledge", exact=True).click()
    wait_idle(page)
    rationale(page).click()
    page.keyboard.type("needs two steps1")
    page.keyboard.press("2")  # digits are text here, never a label
    wait_idle(page)
    expect(rationale(page)).to_have_value("needs two steps12")
    assert rows(store, first) == []
    shot(page, tmp_path, "label-typing-rationale")
    page.keyboard.press("Control+Enter")  # from inside the field: submit the chosen label
    expect(page.get_by_text("1 done,")).to_be_visible()
    second = shown_question(page)
    assert second != first
    [row] = rows(store, first)
    assert (row["action"], row["label"], row["rationale"]) == ("label", "knowledge", "needs two steps12")

    # Esc leaves the field (keeping what was typed), then 1 labels
    rationale(page).click()
    page.keyboard.type("1 step")
    page.keyboard.press("Escape")
    assert page.evaluate("() => document.activeElement.tagName") != "INPUT"
    wait_idle(page)
    page.keyboard.press("1")
    expect(page.get_by_text("2 done,")).to_be_visible()
    [row] = rows(store, second)
    assert (row["action"], row["label"], row["rationale"]) == ("label", "reasoning", "1 step")

    # Ctrl+Enter with no label chosen records nothing and says why
    third = shown_question(page)
    rationale(page).click()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Choose a label under")).to_be_visible()
    assert rows(store, third) == []
    ctx.close()


def test_an_earlier_label_is_reopened_and_changed(app_url, browser, tmp_path) -> None:  # noqa: F811
    store: Store = app_url["store"]
    seed(store, [(f"h-{i}", "medqa", f"History question {i}: which step?") for i in range(3)], overlap=1)
    ctx, page = log_in(browser, app_url["start"](), "ann1")
    first = shown_question(page)
    page.keyboard.press("1")
    expect(page.get_by_text("1 done,")).to_be_visible()
    shown_question(page)
    page.keyboard.press("2")
    expect(page.get_by_text("2 done,")).to_be_visible()
    wait_idle(page)
    shot(page, tmp_path, "label")

    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="My progress").click()  # the menu's, not the Overview's
    expect(page.get_by_text("My answers")).to_be_visible()
    page.locator(".st-key-hist_qid input").click()
    page.locator(".st-key-hist_qid input").fill(first)  # the box filters its options by what is typed
    page.get_by_role("option").filter(has_text=f"{first} · ").click()
    wait_idle(page)
    expect(page.locator(".st-key-hist_question")).to_contain_text(
        store.run(lambda con: con.execute("SELECT question FROM questions WHERE id = ?", [first]).fetchone()[0]))
    shot(page, tmp_path, "my-progress")
    page.get_by_role("button", name="Change to knowledge").click()
    expect(page.get_by_text(f"Changed: question {first} is now knowledge.")).to_be_visible()
    assert [(r["action"], r["label"]) for r in rows(store, first)] == [("label", "reasoning"), ("label", "knowledge")]
    current = {r["question_id"]: r["label"] for r in store.run(astore.all_current_labels)}
    assert current[first] == "knowledge"
    shot(page, tmp_path, "my-progress-changed")
    ctx.close()


def test_adjudication_with_shortcuts(app_url, browser, tmp_path) -> None:  # noqa: F811
    store: Store = app_url["store"]
    seed(store, [(f"adj-{i}", "medqa", f"Disputed question {i}: which step?") for i in range(2)], overlap=2)
    for name, label in (("ann1", "reasoning"), ("ann2", "knowledge")):
        res = annotate.fetch_next(store, name)
        while res["task"]:
            res = annotate.submit_and_next(store, name, res["task"]["question_id"], action="label",
                                           label=label, event_id=annotate.new_event_id())
    ctx, page = log_in(browser, app_url["start"](), "boss")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Adjudication").click()  # the menu's, not the Overview's
    expect(page.get_by_text("Votes per item")).to_be_visible()
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text="votes: reasoning 1 (ann1)")).to_be_visible()
    wait_idle(page)
    shot(page, tmp_path, "adjudication")
    first = "adj-0"  # items are listed by question id: the first is shown first
    expect(page.locator(".st-key-adj_qid input")).to_have_value(first)
    page.get_by_label("Note (why; stored with the decision)").fill("2 facts, no chain")
    page.keyboard.press("Escape")  # leave the note box; then the keys decide
    wait_idle(page)
    page.keyboard.press("2")
    still = page.get_by_test_id("stMetric").filter(has_text="Still to adjudicate")
    expect(still.get_by_test_id("stMetricValue")).to_have_text("1")
    wait_idle(page)
    page.keyboard.press("1")  # the next undecided item opened by itself
    expect(page.get_by_text("Nothing to adjudicate.")).to_be_visible()
    decided = store.run(astore.current_adjudications)
    assert decided[first] == {**decided[first], "label": "knowledge", "maintainer": "boss", "note": "2 facts, no chain"}
    [other] = set(decided) - {first}
    assert decided[other]["label"] == "reasoning" and decided[other]["note"] is None
    shot(page, tmp_path, "adjudication-done")
    ctx.close()


def _seed_long_question(store: Store) -> None:
    options = {chr(ord("A") + i): f"Option {i}: a long answer choice about a drug, a dose and a time course " * 2
               for i in range(10)}
    text = "A 54-year-old presents with a long history. " * 25 + "Which is the next best step?"
    store.run(lambda con: con.execute(
        "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
        "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        ["long-0", "mmlu_pro_health_biology", "test", text, json.dumps(options), "A", options["A"], "e2e",
         "h-long-0", utcnow()]))


def test_buttons_stay_in_the_window_with_a_ten_option_question(app_url, browser, tmp_path) -> None:  # noqa: F811
    store: Store = app_url["store"]
    seed(store, [("short-0", "medqa", "Short question?")], overlap=1)
    _seed_long_question(store)
    annotate.draw_gold(store, 1, 1, seed=0, batch_id="gold-long")
    ctx, page = log_in(browser, app_url["start"](), "ann1")
    assert page.viewport_size == {"width": WIDTH, "height": HEIGHT}
    while shown_question(page) != "long-0":
        page.keyboard.press("s")
        page.wait_for_timeout(300)
    expect(page.get_by_text("J. Option 9")).to_have_count(1)

    def inside(name: str) -> None:
        box = page.get_by_role("button", name=re.compile(f"^{name}")).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, (name, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (name, box)

    for name in ("Reasoning", "Knowledge", "Skip", "Undo last"):
        inside(name)
    shot(page, tmp_path, "label-ten-options")
    page.mouse.move(500, 600)
    page.mouse.wheel(0, 3000)  # scrolled to the rationale: the bar stays pinned
    page.wait_for_timeout(500)
    expect(page.get_by_label("Rationale (optional)")).to_be_in_viewport()
    for name in ("Reasoning", "Knowledge"):
        inside(name)
    shot(page, tmp_path, "label-ten-options-scrolled")
    ctx.close()


def test_maintainer_pages_screenshots(app_url, browser, tmp_path) -> None:  # noqa: F811
    """Agreement and Models as a maintainer sees them (readable tables, small n flagged)."""
    store: Store = app_url["store"]
    seed(store, [(f"s-{i}", "medqa" if i % 2 else "medmcqa", f"Screenshot question {i}?") for i in range(4)],
         overlap=2)
    for name, labels in (("ann1", "rrkk"), ("ann2", "rkkk")):
        res = annotate.fetch_next(store, name)
        while res["task"]:
            qid = res["task"]["question_id"]
            res = annotate.submit_and_next(store, name, qid, action="label", event_id=annotate.new_event_id(),
                                           label="reasoning" if labels[int(qid[2:])] == "r" else "knowledge")
    ctx, page = log_in(browser, app_url["start"](), "boss")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Agreement").click()  # the menu's, not the Overview's
    expect(page.get_by_text("fewer than 30 items").first).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(3)
    assert page.get_by_text("None", exact=True).count() == 0
    shot(page, tmp_path, "agreement")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Models").click()  # the menu's, not the Overview's
    expect(page.get_by_text("Models and agreement with people")).to_be_visible()
    shot(page, tmp_path, "models")
    ctx.close()
