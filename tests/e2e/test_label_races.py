"""Keys pressed faster than the page answers, and two tabs of one annotator, in a real
Chromium: every stored label names the question that was on screen when its key was pressed.

What was on screen is read by the page itself: a capture-phase `keydown` listener (it runs
before Streamlit's shortcut handler) notes the `question <id>` caption at each key press.
The app, the seeding and the login are those of `test_app_browser.py`.

Against the page before the fix (fixed widget keys, undo in its own callback) all three
fail: a double press labeled questions never on screen, "1 then U" took back the previous
question, and the second tab kept showing the finished question. For "1 then U" this test
holds the store while the keys are pressed: Streamlit (fast reruns) runs the undo on a new
script thread while the label's is still waiting for the store, so only the page's own
ordering (a lock per session) keeps the undo from going first.
"""

from __future__ import annotations

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

from curation.store import Store
from curation.store import annotations as astore

pytestmark = pytest.mark.e2e

ROUNDS = 4
RECORD_PRESSES = """() => {
    window.__presses = [];
    window.addEventListener("keydown", (e) => {
        const caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
            .map((el) => el.innerText).find((t) => t.includes(" · question "));
        window.__presses.push([e.key, caption ? caption.split(" ").pop() : null]);
    }, true);
}"""


def start(app_url: dict[str, Any], n: int) -> tuple[Store, str]:  # noqa: F811
    store: Store = app_url["store"]
    seed(store, [(f"race-{i:02d}", "medqa", f"Race question {i}: which step?") for i in range(n)],
         overlap=1)
    return store, app_url["start"]()


def ready(page) -> str:
    """Wait for a settled screen; blur inputs (shortcuts do not fire in them); the shown id."""
    wait_idle(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    return page.get_by_text("· gold set · question ").inner_text().rsplit(" ", 1)[-1]


def settle(page) -> None:
    page.wait_for_timeout(500)  # the last press's rerun has started
    wait_idle(page)


def presses(page) -> list[tuple[str, str | None]]:
    return [(k, qid) for k, qid in page.evaluate("() => window.__presses")]


def app_rows(store: Store, who: str) -> list[dict[str, Any]]:
    return [r for r in store.run(astore.annotation_rows) if r["annotator"] == who and r["source"] == "app"]


def test_double_press_labels_only_the_question_on_screen(app_url, browser) -> None:  # noqa: F811
    store, url = start(app_url, 8)
    ctx, page = log_in(browser, url, "ann1")
    page.evaluate(RECORD_PRESSES)
    for _ in range(ROUNDS):
        ready(page)
        page.keyboard.press("1")
        page.wait_for_timeout(50)  # the second press lands before the page has answered
        page.keyboard.press("1")
        settle(page)
    pressed = presses(page)
    assert len(pressed) == 2 * ROUNDS and all(k == "1" for k, _ in pressed)
    on_screen = {qid for _, qid in pressed}
    labels = [r for r in app_rows(store, "ann1") if r["action"] == "label"]
    assert labels, "no label was stored at all"
    never_shown = [r["question_id"] for r in labels if r["question_id"] not in on_screen]
    assert never_shown == [], f"labeled without being on screen at a press: {never_shown}; presses {pressed}"
    # a question is labeled once (a double press is one label); every round labels one, and
    # two only if the next question was already drawn when the second key was pressed
    assert len({r["question_id"] for r in labels}) == len(labels)
    assert ROUNDS <= len(labels) <= len(on_screen)
    ctx.close()


def test_label_then_undo_never_takes_back_another_question(app_url, browser) -> None:  # noqa: F811
    store, url = start(app_url, 8)
    ctx, page = log_in(browser, url, "ann1")
    first = ready(page)
    page.keyboard.press("2")  # an earlier label: what a misrouted undo would take back
    expect(page.get_by_text("1 done,")).to_be_visible()
    page.evaluate(RECORD_PRESSES)
    outcomes: list[str] = []
    for _ in range(ROUNDS):
        before = len(app_rows(store, "ann1"))
        ready(page)
        # the store is busy (held by this process, as by a CLI import): the page answers
        # late, and the label and the undo, each on its own script thread, both wait for it
        with store.connect():
            page.keyboard.press("1")
            page.wait_for_timeout(30)  # U within 50 ms of 1
            page.keyboard.press("u")
            page.wait_for_timeout(300)
        settle(page)
        pressed = presses(page)[-2:]
        assert [k for k, _ in pressed] == ["1", "u"], pressed
        shown = pressed[0][1]  # the question on screen when 1 was pressed
        new = app_rows(store, "ann1")[before:]
        for r in new:
            # a label only for that question; an undo may only take that label back
            assert r["question_id"] == shown, (f"{r['action']} of {r['question_id']} while {shown} "
                                               f"was on screen; presses {pressed}")
        # the label always lands; the undo takes it back, or is refused / reaches a gone screen
        assert [r["action"] for r in new] in (["label"], ["label", "retract"]), new
        error = page.get_by_test_id("stAlertContentError")
        if new[-1]["action"] == "retract":
            outcomes.append("undone")
        elif error.count():  # refused: the message names the label just made
            expect(error).to_contain_text(f"Undo not applied: your last action is now question {shown}, ")
            outcomes.append("refused")
        else:  # the U reached the old screen's button after it was gone
            outcomes.append("dropped")
    print("1 then U outcomes:", outcomes)
    rows = app_rows(store, "ann1")
    assert rows[0]["question_id"] == first and rows[0]["action"] == "label"
    assert not [r for r in rows if r["action"] == "retract" and r["question_id"] == first]
    ctx.close()


def test_second_tab_cannot_replace_a_label_made_in_the_first(app_url, browser) -> None:  # noqa: F811
    store, url = start(app_url, 4)
    ctx_a, tab_a = log_in(browser, url, "ann2")
    ctx_b, tab_b = log_in(browser, url, "ann2")
    shown = ready(tab_a)
    assert ready(tab_b) == shown  # one annotator, two tabs, the same leased question
    tab_a.keyboard.press("1")
    expect(tab_a.get_by_text("1 done,")).to_be_visible()
    tab_b.keyboard.press("2")  # tab B still shows `shown`: not reloaded
    error = tab_b.get_by_test_id("stAlertContentError")
    expect(error).to_contain_text(
        f"question {shown} was already labeled 'reasoning' by you (another tab or window?) at ")
    rows = [r for r in app_rows(store, "ann2") if r["question_id"] == shown]
    assert [(r["action"], r["label"]) for r in rows] == [("label", "reasoning")]  # none from tab B
    current = {(r["annotator"], r["question_id"]): r["label"] for r in store.run(astore.all_current_labels)}
    assert current == {("ann2", shown): "reasoning"}
    # tab B was re-read: it shows what tab A shows now, not the finished question
    nxt = ready(tab_a)
    assert ready(tab_b) == nxt != shown
    # tab A labels that one too; tab B's "Undo last", which offered `shown`, is refused
    tab_a.keyboard.press("2")
    expect(tab_a.get_by_text("2 done,")).to_be_visible()
    ready(tab_b)
    tab_b.keyboard.press("u")
    expect(error).to_contain_text(
        f"Undo not applied: your last action is now question {nxt}, not {shown} shown on this screen.")
    assert [r["action"] for r in app_rows(store, "ann2")] == ["label", "label"]
    ctx_a.close()
    ctx_b.close()
