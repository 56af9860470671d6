"""AppTest: login, role enforcement, labeling with every action, undo, untrusted text."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from curation.auth import hash_password
from curation.services import annotate
from curation.store import Store, utcnow
from curation.store import annotations as astore
from curation.store import users as users_store

pytestmark = pytest.mark.integration

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")
PASSWORD = "password-1"
XSS = '<img src=x onerror=alert(1)> <script>window.__pwned = 1</script> **bold** [link](http://x)'


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def seed(store: Store, n: int = 4, *, overlap: int = 2, texts: dict[int, str] | None = None) -> None:
    texts = texts or {}

    def work(con) -> None:
        con.executemany(
            "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
            "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [[f"q{i}", "medqa" if i % 2 else "medmcqa", "test", texts.get(i, f"Question number {i}?"),
              json.dumps({"A": "<b>yes</b>", "B": "no"}), "A", "<b>yes</b>", "test", f"h{i}", utcnow()]
             for i in range(n)],
        )
        # one real Argon2 hash computed per session (hashing is slow on purpose)
        con.executemany(
            "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
            [[name, role, password_hash(), utcnow()]
             for name, role in (("ann1", "annotator"), ("ann2", "annotator"), ("boss", "maintainer"))],
        )

    store.run(work)
    annotate.draw_gold(store, n, overlap, seed=0, batch_id="gold-1")




def login(name: str, password: str = PASSWORD, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    return at


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def test_login_failure_and_success(app_store: Store) -> None:
    seed(app_store)
    at = login("ann1", "wrong-password")
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert "btn_reasoning" not in _keys(at)
    login("ghost", PASSWORD, at)
    assert [e.value for e in at.error] == ["Wrong user name or password."]  # no user enumeration
    login("ann1", at=at)
    assert not at.error
    assert any(t.startswith("Question number") for t in texts(at))
    assert "btn_reasoning" in _keys(at)


def _keys(at: AppTest) -> set[str]:
    """Button keys without the render's event id (action buttons are keyed per render)."""
    event = at.session_state["lab_event"] if "lab_event" in at.session_state else None
    return {b.key.removesuffix(f"_{event}") for b in at.button if b.key}


def press(at: AppTest, name: str) -> AppTest:
    """Click an action button of the current render (its key carries the render's event id)."""
    return at.button(key=f"{name}_{at.session_state['lab_event']}").click().run()


def test_login_is_rate_limited(app_store: Store) -> None:
    seed(app_store)
    at = AppTest.from_file(APP, default_timeout=30).run()
    for _ in range(5):
        login("ann2", "nope-nope-nope", at)
        assert [e.value for e in at.error] == ["Wrong user name or password."]
    login("ann2", at=at)  # right password, but locked out for now
    assert "Too many failed attempts" in at.error[0].value
    assert "btn_reasoning" not in _keys(at)


def test_disabled_account_cannot_log_in(app_store: Store) -> None:
    seed(app_store)
    app_store.run(lambda con: users_store.set_disabled(con, "ann1", True))
    at = login("ann1")
    assert [e.value for e in at.error] == ["Wrong user name or password."]


def test_pages_need_login(app_store: Store) -> None:
    seed(app_store)
    at = AppTest.from_file(APP, default_timeout=30).run()
    # logged out, only the login page is registered: the label page cannot be reached
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/label.py")
    assert "btn_reasoning" not in _keys(at)


@pytest.mark.parametrize("page", ["agreement", "adjudicate", "assignment"])
def test_annotator_cannot_open_maintainer_pages(app_store: Store, page: str) -> None:
    seed(app_store)
    at = login("ann1")
    # the router does not register maintainer pages for an annotator (server side) ...
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"pages/{page}.py")
    # ... and the page itself refuses an annotator session (defence in depth)
    direct = AppTest.from_file(str(Path(APP).parent / "pages" / f"{page}.py"), default_timeout=30)
    direct.session_state["auth_user"] = at.session_state["auth_user"]
    direct.run()
    assert [e.value for e in direct.error] == [
        "This page needs the maintainer role; you are logged in as annotator."]
    assert not direct.metric and not direct.dataframe
    anon = AppTest.from_file(str(Path(APP).parent / "pages" / f"{page}.py"), default_timeout=30).run()
    assert [e.value for e in anon.error] == ["Please log in first."]


def test_maintainer_can_open_maintainer_pages(app_store: Store) -> None:
    seed(app_store)
    at = login("boss")
    at.switch_page("pages/assignment.py").run()
    assert not at.error
    assert at.title[0].value == "Assignment"


def test_router_registers_only_role_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(APP).parents[1]))
    from ui.app import PAGES, page_specs

    def files(role: str) -> set[str]:
        return {spec[0] for section in page_specs(role).values() for spec in section}

    assert files("annotator") == {"label.py", "progress.py"}
    maintainer = {"label.py", "progress.py", "overview.py", "agreement.py", "adjudicate.py", "assignment.py",
                  "models.py", "loop.py", "labelstudio.py", "releases.py"}
    assert files("maintainer") == maintainer
    assert {p.name for p in PAGES.glob("[!_]*.py")} == maintainer  # every page file is routed


def test_label_every_action_and_undo(app_store: Store) -> None:
    seed(app_store, n=4, overlap=1)
    at = login("ann1")
    first = at.session_state["lab_task"]["question_id"]
    at.segmented_control(key=f"lab_conf_{at.session_state['lab_event']}").set_value("3")
    at.text_input(key=f"lab_rat_{at.session_state['lab_event']}").input("diagnosis then mechanism")
    press(at, "btn_reasoning")
    second = at.session_state["lab_task"]["question_id"]
    assert second != first
    press(at, "btn_knowledge")
    third = at.session_state["lab_task"]["question_id"]
    press(at, "btn_skip")
    assert at.session_state["lab_progress"][:2] == (3, 1)
    assert at.get("progress")[0].value == 75
    undo = at.button(key=f"btn_undo_{at.session_state['lab_event']}")
    assert undo.help == f"Undo your last action (question {third})"
    press(at, "btn_undo")  # takes back the skip
    assert at.session_state["lab_task"]["question_id"] == third
    assert at.session_state["lab_progress"][:2] == (2, 2)

    rows = app_store.run(astore.annotation_rows)
    assert [(r["question_id"], r["action"], r["label"]) for r in rows] == [
        (first, "label", "reasoning"), (second, "label", "knowledge"),
        (third, "skip", None), (third, "retract", None)]
    assert rows[0]["confidence"] == 3 and rows[0]["rationale"] == "diagnosis then mechanism"
    assert rows[1]["confidence"] is None and rows[1]["rationale"] is None
    assert {r["guidelines_version"] for r in rows if r["action"] != "retract"} == {"1.0"}
    assert {r["source"] for r in rows} == {"app"}
    assert not any(r["suggestion_shown"] for r in rows)
    assert all(r["batch_id"] == "gold-1" for r in rows)

    # finish the queue: the page says so
    press(at, "btn_reasoning")
    press(at, "btn_reasoning")
    assert at.session_state["lab_task"] is None
    assert any("queue is empty" in s.value for s in at.success)


def test_answer_hidden_until_revealed(app_store: Store) -> None:
    seed(app_store)
    at = login("ann1")
    assert not any(t.startswith("Answer:") for t in texts(at))
    at.toggle(key=f"lab_ans_{at.session_state['lab_event']}").set_value(True).run()
    assert "Answer: A. <b>yes</b>" in texts(at)


def test_untrusted_question_text_is_plain_text(app_store: Store) -> None:
    seed(app_store, n=2, texts={0: XSS, 1: XSS})
    at = login("ann1")
    assert XSS in texts(at)  # shown literally by st.text
    assert "A. <b>yes</b>\nB. no" in texts(at)
    assert not any("onerror" in m.value for m in at.markdown)
    assert not any("onerror" in c.value for c in at.caption)


def test_overlap_two_annotators_share_items(app_store: Store) -> None:
    seed(app_store, n=2, overlap=2)
    a1 = login("ann1")
    a2 = login("ann2")
    # both get items; with K=2 and 2 items each annotator labels both, never one twice
    seen: dict[str, list[str]] = {"ann1": [], "ann2": []}
    for name, at in (("ann1", a1), ("ann2", a2)):
        while at.session_state["lab_task"] is not None:
            seen[name].append(at.session_state["lab_task"]["question_id"])
            press(at, "btn_reasoning")
    assert sorted(seen["ann1"]) == sorted(seen["ann2"]) == ["q0", "q1"]


def test_progress_page_shows_only_own_work(app_store: Store) -> None:
    seed(app_store)
    at = login("ann1")
    press(at, "btn_reasoning")
    other = login("ann2")
    press(other, "btn_knowledge")
    at.switch_page("pages/progress.py").run()
    assert at.metric[0].value == "1"
    frame = at.dataframe[0].value
    assert list(frame["Your answer"]) == ["reasoning"]
    assert list(frame["Question"]) == [app_store.run(lambda con: con.execute(
        "SELECT question FROM questions WHERE id = ?", [frame["Question id"][0]]).fetchall()[0][0])]
    assert "None" not in frame.to_string() and not any("_" in c for c in frame.columns)


def test_history_change_is_a_new_row_and_keeps_the_rater_count(app_store: Store) -> None:
    seed(app_store, n=2, overlap=1)
    at = login("ann1")
    first = at.session_state["lab_task"]["question_id"]
    press(at, "btn_reasoning")
    press(at, "btn_skip")
    at.switch_page("pages/progress.py").run()
    assert {o.split(" · ")[0] for o in at.selectbox(key="hist_qid").options} == {"q0", "q1"}
    at.selectbox(key="hist_qid").set_value(first).run()
    assert any(t.value.startswith("Question number") for t in at.text)  # the question is shown
    event = at.session_state["hist_event"]
    assert at.button(key=f"hist_to_reasoning_{first}_{event}").disabled  # already its label
    at.text_input(key=f"hist_rat_{event}").input("second look: pure recall")
    at.button(key=f"hist_to_knowledge_{first}_{event}").click().run()
    assert not at.error and "is now knowledge" in at.success[0].value
    rows = [r for r in app_store.run(astore.annotation_rows) if r["question_id"] == first]
    assert [(r["action"], r["label"]) for r in rows] == [("label", "reasoning"), ("label", "knowledge")]
    assert rows[1]["rationale"] == "second look: pure recall"
    current = {(r["question_id"], r["annotator"]): r["label"] for r in app_store.run(astore.all_current_labels)}
    assert current == {(first, "ann1"): "knowledge"}  # one rater, the new label
    # a skipped question can be labeled from the history while it is still open
    skipped = "q1" if first == "q0" else "q0"
    at.selectbox(key="hist_qid").set_value(skipped).run()
    event = at.session_state["hist_event"]
    at.button(key=f"hist_to_reasoning_{skipped}_{event}").click().run()
    assert "is now reasoning" in at.success[0].value
    # K=1 on both: ann1's labels (one changed) hold both slots, nothing is left for ann2
    assert annotate.fetch_next(app_store, "ann2")["task"] is None


def test_history_change_of_a_skip_respects_k(app_store: Store) -> None:
    seed(app_store, n=1, overlap=1)
    at = login("ann1")
    press(at, "btn_skip")
    taken = annotate.fetch_next(app_store, "ann2")["task"]["question_id"]  # the only slot: ann2's
    at.switch_page("pages/progress.py").run()
    event = at.session_state["hist_event"]
    before = app_store.run(astore.annotation_rows)
    at.button(key=f"hist_to_knowledge_{taken}_{event}").click().run()
    assert "already labeled or being labeled by 1 of 1" in at.error[0].value
    assert app_store.run(astore.annotation_rows) == before


def _rows(store: Store) -> list[tuple[str, str, str | None]]:
    return [(r["question_id"], r["action"], r["label"]) for r in store.run(astore.annotation_rows)]


def test_action_buttons_are_keyed_per_render(app_store: Store) -> None:
    seed(app_store, n=3, overlap=1)
    at = login("ann1")
    old = at.session_state["lab_event"]
    press(at, "btn_reasoning")
    keys = {b.key for b in at.button}
    new = at.session_state["lab_event"]
    assert new != old and f"btn_reasoning_{new}" in keys and f"btn_reasoning_{old}" not in keys


@pytest.mark.parametrize("order", [("btn_reasoning", "btn_undo"), ("btn_undo", "btn_reasoning")])
def test_label_and_undo_in_one_rerun_never_undo_the_previous_question(
    app_store: Store, order: tuple[str, str]
) -> None:
    """`1` then `U` faster than the page answers: the browser delivers both presses in one
    rerun and Streamlit runs their callbacks in no set order. The label lands on the question
    on screen; the undo, which this screen offered for the previous question, is refused."""
    seed(app_store, n=4, overlap=1)
    at = login("ann1")
    q0 = at.session_state["lab_task"]["question_id"]
    press(at, "btn_knowledge")
    q1 = at.session_state["lab_task"]["question_id"]
    event = at.session_state["lab_event"]
    buttons = [at.button(key=f"{name}_{event}").click() for name in order]
    # Streamlit runs callbacks in the order of the rerun's widget states; AppTest always
    # sends them in render order, so put the two triggers last, in the order given.
    states = at._tree.get_widget_states()
    ids = [b.id for b in buttons]
    ordered = [w for w in states.widgets if w.id not in ids]
    ordered += sorted((w for w in states.widgets if w.id in ids), key=lambda w: ids.index(w.id))
    assert [w.id for w in ordered[-2:]] == ids
    del states.widgets[:]
    states.widgets.extend(ordered)
    at._run(states)
    assert _rows(app_store) == [(q0, "label", "knowledge"), (q1, "label", "reasoning")]
    assert [e.value for e in at.error] == [
        f"Undo not applied: your last action is now question {q1}, not {q0} shown on this screen. "
        f"Press U again to undo {q1}."]
    assert at.session_state["lab_task"]["question_id"] not in (q0, q1)
    undo = at.button(key=f"btn_undo_{at.session_state['lab_event']}")
    assert undo.help == f"Undo your last action (question {q1})"
    press(at, "btn_undo")  # as the message says: U again takes back q1
    assert _rows(app_store)[-1] == (q1, "retract", None)
    assert at.session_state["lab_task"]["question_id"] == q1 and not at.error


def test_two_tabs_of_one_annotator_conflict_is_shown_not_applied(app_store: Store) -> None:
    seed(app_store, n=4, overlap=1)
    tab_a, tab_b = login("ann1"), login("ann1")
    shown = tab_a.session_state["lab_task"]["question_id"]
    assert tab_b.session_state["lab_task"]["question_id"] == shown
    press(tab_a, "btn_reasoning")
    press(tab_b, "btn_knowledge")  # tab B still shows `shown`
    assert len(tab_b.error) == 1
    assert tab_b.error[0].value.startswith(
        f"question {shown} was already labeled 'reasoning' by you (another tab or window?) at ")
    assert _rows(app_store) == [(shown, "label", "reasoning")]
    # tab B now shows the truth: the next question, and tab A's label as the one to undo
    assert tab_b.session_state["lab_task"]["question_id"] == tab_a.session_state["lab_task"]["question_id"]
    assert tab_b.button(key=f"btn_undo_{tab_b.session_state['lab_event']}").help == (
        f"Undo your last action (question {shown})")
    # tab A labels the next one; tab B's undo, still offering `shown`, is refused
    nxt = tab_a.session_state["lab_task"]["question_id"]
    press(tab_a, "btn_knowledge")
    press(tab_b, "btn_undo")
    assert [e.value for e in tab_b.error] == [
        f"Undo not applied: your last action is now question {nxt}, not {shown} shown on this screen. "
        f"Press U again to undo {nxt}."]
    assert _rows(app_store) == [(shown, "label", "reasoning"), (nxt, "label", "knowledge")]
