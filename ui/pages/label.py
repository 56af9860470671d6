"""Labeling: one question at a time, guidelines beside it, keyboard shortcuts on the buttons.

1 = reasoning, 2 = knowledge, S = skip, U = undo last (Streamlit reserves C and R);
Ctrl/Cmd+Enter = submit the label chosen under "Your label" (with confidence and rationale).
Streamlit shows each button's key on the button, and a legend names them all. Plain keys
never fire inside a text box (Streamlit's shortcut filter: `1` typed in the rationale is
text); Ctrl/Cmd+Enter does, and Esc leaves the box (`ui.widgets.keyboard_glue`). The action
bar sits above the question and stays pinned at the top of the window while it scrolls, so
a long question never pushes the buttons below the fold.

The labeling area is one `st.fragment`: a key press reruns only it (not the router, the
sidebar or the guidelines), and a rerun that changes nothing reads nothing from the store.
Each rendered question carries one `event_id`; a double click submits it once.

A label is recorded only for the question that was on screen. The action buttons' widget
keys contain the render's `event_id`, so a keypress left over from an older screen reaches
that screen's button (bound to the old question and event: a no-op replay) or, once the
old button is gone, nothing; never the button of the question drawn since. Undo carries
the question the screen offered to undo and runs after any label of the same rerun and
after a label still running on another script thread of the session (`_lock`); the store
refuses a label for a question already finished (another tab) and an undo whose target
has changed, and the page then shows why and re-reads the queue.

Drafts survive a reload. What is typed or chosen below the question (rationale, label,
confidence) is kept in the store as a draft of that question (`_save_draft`, on Streamlit's
own change events: a typing pause of `DRAFT_PAUSE`, Esc, leaving the box, a click) and put
back into the boxes when the page's first render (a reload, a new tab) leases the same
question again; the session remembers which drafts it kept (`lab_drafts`), so a label
deletes its draft with one small delete, and a label with nothing typed pays nothing. A
draft is never a label, and it is shown only as the value of its own box (never as HTML).

Every write (label, skip, undo, the lease of a first fetch, a draft) first checks the session and
re-reads the account (`_writer`, i.e. `ui.common.require_active_user`) in the callback
itself: a click runs its callback before the page's own `require_role`, so an expired
session or a disabled account would otherwise store one more label.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import streamlit as st

from curation.errors import ConflictError, CurationError
from curation.labels import load_guidelines
from curation.services import annotate
from ui.common import get_store, require_active_user, require_role, show_plain
from ui.widgets import keyboard_glue

user = require_role("annotator")
store = get_store()
ME = user["name"]


@st.cache_data(show_spinner=False)
def _guidelines() -> tuple[str, str]:
    version, body = load_guidelines()
    # two heading levels down so the side panel stays compact
    return version, re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", body, flags=re.M)


def _writer() -> str | None:
    """Who may write now, checked here and now (session, then the account re-read from the
    store); None: write nothing, the session is logged out and the next run shows why."""
    user = require_active_user("annotator")
    return None if user is None else str(user["name"])


def _set_state(result: dict[str, Any]) -> None:
    st.session_state["lab_task"] = result["task"]
    st.session_state["lab_progress"] = (result["done"], result["remaining"], result["progress"])
    event_id = st.session_state["lab_event"] = annotate.new_event_id()
    task = result["task"]
    draft = None if task is None else _drafts().get(task["question_id"])
    if draft:  # this question's draft, back in its boxes (set before they are drawn)
        for key, value in ((f"lab_rat_{event_id}", draft["rationale"]), (f"lab_pick_{event_id}", draft["label"]),
                           (f"lab_conf_{event_id}", draft["confidence"])):
            if value is not None:
                st.session_state[key] = str(value)


def _drafts() -> dict[str, dict[str, Any]]:
    """`lab_drafts`: question id -> the draft this session knows is kept in the store."""
    drafts: dict[str, dict[str, Any]] = st.session_state.setdefault("lab_drafts", {})
    return drafts


def _save_draft(question_id: str, event_id: str) -> None:
    """Rationale/label/confidence changed (Streamlit's own change events: a typing pause, Esc,
    leaving the box, a click): keep them in the store, so a reload shows them again."""
    with _lock():  # after a label of this session: its screen is gone, nothing to keep
        if st.session_state.get("lab_event") != event_id:
            return
        rationale = st.session_state.get(f"lab_rat_{event_id}")
        label = st.session_state.get(f"lab_pick_{event_id}")
        conf = st.session_state.get(f"lab_conf_{event_id}")
        me = _writer()
        if me is None:
            return
        try:
            kept = annotate.save_draft(store, me, question_id, rationale=rationale, label=label,
                                       confidence=int(conf) if conf else None)
        except CurationError as exc:
            st.session_state["lab_error"] = f"Your draft was not kept: {exc}"
            return
        if kept:
            _drafts()[question_id] = {"rationale": rationale, "label": label, "confidence": conf}
        else:
            _drafts().pop(question_id, None)


def _drop_draft(me: str, question_id: str) -> None:
    """The question was answered (or finished elsewhere): delete its draft, if this session
    kept one (a label with nothing typed pays no store call)."""
    if _drafts().pop(question_id, None) is not None:
        annotate.discard_draft(store, me, question_id)


def _refresh_after_conflict(me: str, message: str) -> None:
    """Show why nothing changed and re-read the queue, so the screen shows the truth."""
    st.session_state["lab_error"] = message
    _set_state(annotate.fetch_next(store, me))
    _read_last(me)


def _read_last(me: str) -> None:
    """`lab_last`: the question "Undo last" takes back, as the store says now ("" = none)."""
    st.session_state["lab_last"] = annotate.undo_target(store, me) or ""


def _lock() -> threading.RLock:
    """One lock per browser session, taken by every action and by the page before it reads
    its state. With fast reruns (Streamlit's default) a key pressed while the previous rerun
    is still in a callback starts a new script thread at once (the old one stops only at its
    next yield point), so two actions of one session can run at the same time: without the
    lock, "1 then U" could undo the previous question before the label of the question on
    screen is stored, and a page could be drawn from the state before the label."""
    lock = st.session_state.get("lab_lock")
    if lock is None:  # first run of the page in this session: no action can be running yet
        lock = st.session_state["lab_lock"] = threading.RLock()
    return lock


def _act(action: str, label: str | None, question_id: str, event_id: str, version: str) -> None:
    """Label/skip button callback: record for the rendered question and fetch the next one in
    one store call."""
    with _lock():  # first: a U pressed after this key waits for the label
        conf = st.session_state.get(f"lab_conf_{event_id}")
        rationale = st.session_state.get(f"lab_rat_{event_id}")
        # The account check reads the store, and a U pressed meanwhile stops this callback at
        # its next session-state access: so none between the check and the label, which then
        # lands before the U's undo runs (or, stopped before the check, not at all).
        me = _writer()  # before anything is written (the page's check ran before this click)
        if me is None:
            return
        try:
            result = annotate.submit_and_next(
                store, me, question_id, action=action, label=label, event_id=event_id,
                confidence=int(conf) if conf else None, rationale=rationale,
                guidelines_version=version,
            )
            if result["recorded"]:
                st.session_state["lab_last"] = question_id
                st.session_state["lab_flash"] = "Skipped." if action == "skip" else f"Saved: {label}."
            else:  # the same screen's event again (a double press): stored once already
                st.session_state["lab_flash"] = (
                    f"Already recorded for question {question_id}; nothing changed.")
            _set_state(result)
            _drop_draft(me, question_id)  # after the screen moved on: a failure here loses no label
        except ConflictError as exc:
            _refresh_after_conflict(me, str(exc))
            _drop_draft(me, question_id)
        except CurationError as exc:
            st.session_state["lab_error"] = str(exc)


def _submit_chosen(question_id: str, event_id: str, version: str) -> None:
    """Ctrl/Cmd+Enter: label with the label chosen under "Your label" (nothing chosen: say so,
    keep the screen and its typed rationale)."""
    chosen = st.session_state.get(f"lab_pick_{event_id}")
    if chosen is None:
        st.session_state["lab_error"] = (
            "Choose a label under \"Your label\" first (or press Esc, then 1 or 2); nothing was recorded.")
        return
    _act("label", str(chosen), question_id, event_id, version)


def _check_again() -> None:
    st.session_state.pop("lab_task", None)


def _ask_undo(expected: str, event_id: str) -> None:
    """Undo button callback: only note the request; the script body runs it under `_lock`.
    So it comes after every label callback of the same rerun ("1 then U" faster than the
    page answers can arrive as one rerun whose callbacks run in no set order) and after a
    label still running in an older script thread of this session. The label is then
    stored first, and the undo, expecting the older target this screen offered, is refused
    instead of taking back the previous question."""
    st.session_state["lab_undo"] = (expected, event_id)


def _undo(expected: str, event_id: str) -> None:
    me = _writer()  # this run's `require_role` may not have re-read the account
    if me is None:
        st.rerun()  # logged out: the router shows the login page and why
    try:
        # its own id: "1 then U" must both count; "U, U" on one render counts once
        result = annotate.undo_and_next(store, me, event_id=f"{event_id}-undo", expected=expected)
        st.session_state["lab_last"] = result["undo_next"] or ""
        st.session_state["lab_flash"] = (
            f"Undone: question {result['undone']} is back." if result.get("undone") else "Nothing to undo."
        )
        _set_state(result)
    except ConflictError as exc:
        _refresh_after_conflict(me, str(exc))
    except CurationError as exc:
        st.session_state["lab_error"] = str(exc)


try:
    version, guidelines = _guidelines()
except CurationError as exc:
    st.error(str(exc))
    st.stop()

ACTIONS = "lab_actions"  # the pinned action bar's container key
DRAFT_PAUSE = "500ms"  # a typing pause this long keeps the rationale typed so far (`_save_draft`)
LEGEND = ("Keys: **1** reasoning · **2** knowledge · **S** skip · **U** undo last · "
          "**Ctrl/⌘+Enter** submit the label chosen below (also from inside the rationale) · "
          "**Esc** leave a text box")


def _read_state() -> tuple[dict[str, Any] | None, tuple[int, int, float], str, str]:
    """The screen's state, after any action of this session still running in another script
    thread; runs a pending undo and the first lease (writes: checked in `_writer`)."""
    with _lock():
        pending_undo = st.session_state.pop("lab_undo", None)
        if pending_undo is not None:  # after this rerun's label callbacks (see `_ask_undo`)
            _undo(*pending_undo)
        if "lab_task" not in st.session_state:  # leases a question: a write too
            writer = _writer()
            if writer is None:
                st.rerun()
            assert writer is not None
            result = annotate.fetch_next_with_draft(store, writer)  # a reload: the draft comes back
            draft = result["draft"]
            if draft is not None:
                _drafts()[draft["question_id"]] = draft
            _set_state(result)
            _read_last(writer)
        elif "lab_last" not in st.session_state:
            _read_last(ME)
        return (st.session_state["lab_task"], st.session_state["lab_progress"],
                st.session_state["lab_event"], st.session_state["lab_last"])


def _question(task: dict[str, Any], event_id: str) -> None:
    kind = "gold set" if task["batch_kind"] == "gold" else f"{task['batch_kind']} batch"
    st.caption(f"{task['dataset_name']} · {kind} · question {task['question_id']}")
    with st.container(border=True, key="question_box"):
        show_plain(task["question"])
        show_plain("\n".join(f"{k}. {v}" for k, v in sorted(task["options"].items())))
    if st.toggle("Show answer", key=f"lab_ans_{event_id}"):
        show_plain(f"Answer: {task['answer_idx']}. {task['answer']}")
    if task["suggestion_shown"]:
        prob = task["suggestion_prob"]
        st.info(
            f"Model suggestion: {task['suggestion_label']}"
            + (f" (p(reasoning) = {prob:.2f})" if prob is not None else "")
        )


@st.fragment
def labeling_area() -> None:
    task, (done, remaining, share), event_id, last = _read_state()
    undo_help = f"Undo your last action (question {last})" if last else "Nothing to undo yet"
    st.progress(share, text=f"{done} done, {remaining} left in your queue")
    flash = st.session_state.pop("lab_flash", None)
    if flash:
        st.toast(flash)
    err = st.session_state.pop("lab_error", None)
    if err:
        st.error(err)
    if task is None:
        st.success("Your queue is empty: nothing left to label right now. Thank you!")
        st.button("Undo last", key=f"undo_empty_{event_id}", shortcut="u", help=undo_help,
                  on_click=_ask_undo, args=(last, event_id))
        st.button("Check again", key="refresh", on_click=_check_again)
        return
    qid = task["question_id"]
    with st.container(key=ACTIONS):
        b1, b2, b3, b4 = st.columns(4)
        # keys per render (see the module docstring): a stale press cannot reach this question
        b1.button("Reasoning", key=f"btn_reasoning_{event_id}", type="primary", shortcut="1",
                  width="stretch", on_click=_act, args=("label", "reasoning", qid, event_id, version))
        b2.button("Knowledge", key=f"btn_knowledge_{event_id}", type="primary", shortcut="2",
                  width="stretch", on_click=_act, args=("label", "knowledge", qid, event_id, version))
        b3.button("Skip", key=f"btn_skip_{event_id}", shortcut="s", width="stretch",
                  on_click=_act, args=("skip", None, qid, event_id, version))
        b4.button("Undo last", key=f"btn_undo_{event_id}", shortcut="u", width="stretch", help=undo_help,
                  on_click=_ask_undo, args=(last, event_id))
        st.caption(LEGEND)
    _question(task, event_id)
    with st.container(border=True):
        c1, c2 = st.columns(2)
        # each change is kept as a draft in the store (`_save_draft`): a reload shows it again
        draft = (qid, event_id)
        c1.segmented_control("Your label", options=["reasoning", "knowledge"], key=f"lab_pick_{event_id}",
                             format_func=str.capitalize, help="Submitted with Ctrl/⌘+Enter",
                             on_change=_save_draft, args=draft)
        c2.segmented_control("Confidence (optional)", options=["1", "2", "3"],
                             key=f"lab_conf_{event_id}", help="1 = unsure, 3 = sure", on_change=_save_draft, args=draft)
        # `live`: committed after a typing pause too, so a reload right after typing keeps the text
        st.text_input("Rationale (optional)", key=f"lab_rat_{event_id}", max_chars=annotate.DRAFT_MAX_CHARS,
                      live=DRAFT_PAUSE, on_change=_save_draft, args=draft,
                      placeholder="Type freely (1 and 2 are text here); Ctrl/⌘+Enter submits, Esc leaves")
        st.button("Submit chosen label", key=f"btn_submit_{event_id}", shortcut="ctrl+enter",
                  on_click=_submit_chosen, args=(qid, event_id, version))


keyboard_glue(pinned=ACTIONS)
main, side = st.columns([3, 2], gap="large")
with side:
    st.subheader(f"Guidelines (version {version})")
    with st.container(height=600):
        st.markdown(guidelines)  # our own versioned file, not question text
with main:
    labeling_area()
