"""Labeling: one question at a time, guidelines beside it, keyboard shortcuts on the buttons.

1 = reasoning, 2 = knowledge, S = skip, U = undo last (Streamlit reserves C and R);
Streamlit shows each button's key on the button itself.
Each rendered question carries one `event_id`; a double click submits it once.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from curation.errors import CurationError
from curation.labels import load_guidelines
from curation.store import queue
from ui.common import get_store, require_role, show_plain

user = require_role("annotator")
store = get_store()
ME = user["name"]


@st.cache_data(show_spinner=False)
def _guidelines() -> tuple[str, str]:
    version, body = load_guidelines()
    # two heading levels down so the side panel stays compact
    return version, re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", body, flags=re.M)


def _set_state(result: dict[str, Any]) -> None:
    st.session_state["lab_task"] = result["task"]
    st.session_state["lab_progress"] = (result["done"], result["remaining"], result["progress"])
    st.session_state["lab_event"] = queue.new_event_id()


def _act(action: str, label: str | None, question_id: str, event_id: str, version: str) -> None:
    """Button callback: record and fetch the next question in one store call."""
    try:
        if action == "undo":
            # its own id: "1 then U" must both count; "U, U" on one render counts once
            result = queue.undo_and_next(store, ME, event_id=f"{event_id}-undo")
            st.session_state["lab_flash"] = (
                "Undone: the question is back." if result.get("undone") else "Nothing to undo."
            )
        else:
            conf = st.session_state.get(f"lab_conf_{event_id}")
            rationale = st.session_state.get(f"lab_rat_{event_id}")
            result = queue.submit_and_next(
                store, ME, question_id, action=action, label=label, event_id=event_id,
                confidence=int(conf) if conf else None, rationale=rationale,
                guidelines_version=version,
            )
            st.session_state["lab_flash"] = "Skipped." if action == "skip" else f"Saved: {label}."
        _set_state(result)
    except CurationError as exc:
        st.session_state["lab_error"] = str(exc)


try:
    version, guidelines = _guidelines()
except CurationError as exc:
    st.error(str(exc))
    st.stop()

if "lab_task" not in st.session_state:
    _set_state(queue.fetch_next(store, ME))

task: dict[str, Any] | None = st.session_state["lab_task"]
done, remaining, share = st.session_state["lab_progress"]
event_id: str = st.session_state["lab_event"]

st.progress(share, text=f"{done} done, {remaining} left in your queue")
flash = st.session_state.pop("lab_flash", None)
if flash:
    st.toast(flash)
err = st.session_state.pop("lab_error", None)
if err:
    st.error(err)

main, side = st.columns([3, 2], gap="large")
with side:
    st.subheader(f"Guidelines (version {version})")
    with st.container(height=600):
        st.markdown(guidelines)  # our own versioned file, not question text

with main:
    if task is None:
        st.success("Your queue is empty: nothing left to label right now. Thank you!")
        st.button("Undo last", key="undo_empty", shortcut="u",
                  on_click=_act, args=("undo", None, "", event_id, version))
        if st.button("Check again", key="refresh"):
            del st.session_state["lab_task"]
            st.rerun()
        st.stop()
    kind = "gold set" if task["batch_kind"] == "gold" else f"{task['batch_kind']} batch"
    st.caption(f"{task['dataset_name']} · {kind} · question {task['question_id']}")
    with st.container(border=True, key="question_box"):
        show_plain(task["question"])
        options = "\n".join(f"{k}. {v}" for k, v in sorted(task["options"].items()))
        show_plain(options)
    if st.toggle("Show answer", key=f"lab_ans_{event_id}"):
        show_plain(f"Answer: {task['answer_idx']}. {task['answer']}")
    if task["suggestion_shown"]:
        prob = task["suggestion_prob"]
        st.info(
            f"Model suggestion: {task['suggestion_label']}"
            + (f" (p(reasoning) = {prob:.2f})" if prob is not None else "")
        )
    st.segmented_control("Confidence (optional)", options=["1", "2", "3"],
                         key=f"lab_conf_{event_id}", help="1 = unsure, 3 = sure")
    st.text_input("Rationale (optional)", key=f"lab_rat_{event_id}", max_chars=2000)
    qid = task["question_id"]
    b1, b2, b3, b4 = st.columns(4)
    b1.button("Reasoning", key="btn_reasoning", type="primary", shortcut="1",
              width="stretch", on_click=_act, args=("label", "reasoning", qid, event_id, version))
    b2.button("Knowledge", key="btn_knowledge", type="primary", shortcut="2",
              width="stretch", on_click=_act, args=("label", "knowledge", qid, event_id, version))
    b3.button("Skip", key="btn_skip", shortcut="s", width="stretch",
              on_click=_act, args=("skip", None, qid, event_id, version))
    b4.button("Undo last", key="btn_undo", shortcut="u", width="stretch",
              on_click=_act, args=("undo", None, qid, event_id, version))
