"""An annotator's own progress and history: counts, every question they answered in the app
(with the question), and a way to reopen one and change the answer. A change is a new row
(`annotate.change_label`; the earlier rows are kept) and never adds a rater: changing a
label in force keeps the person's slot; a skipped or undone question must still be open.
Only their own rows are read (nobody else's).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from curation.errors import CurationError
from curation.labels import load_guidelines
from curation.services import annotate
from ui.common import get_store, require_active_user, require_role, show_plain
from ui.widgets import keyboard_glue, show_table, table, text, when

user = require_role("annotator")
store = get_store()

ACTION_NAMES = {"label": "labeled", "skip": "skipped", "retract": "undone"}


def _answer(row: dict[str, Any]) -> str:
    return str(row["label"]) if row["action"] == "label" else ACTION_NAMES[row["action"]]


def _short(value: Any, width: int = 90) -> str:
    s = " ".join(str(value or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def _change(question_id: str, label: str, event_id: str) -> None:
    """Button callback: record the change (session and account checked now)."""
    who = require_active_user("annotator")
    if who is None:
        return  # logged out: the router shows why
    try:
        version = load_guidelines()[0]
    except CurationError:
        version = None
    try:
        rationale = st.session_state.get(f"hist_rat_{event_id}")
        annotate.change_label(store, who["name"], question_id, label=label, event_id=event_id,
                              rationale=rationale, guidelines_version=version)
        st.session_state["hist_flash"] = f"Changed: question {question_id} is now {label}."
        st.session_state.pop("hist_event", None)  # a fresh event for the next change
    except CurationError as exc:
        st.session_state["hist_error"] = str(exc)


st.title("My progress")
keyboard_glue()
(done, remaining), _recent = annotate.my_progress(store, user["name"], limit=1)
answers = annotate.my_answers(store, user["name"], limit=500)
c1, c2, c3 = st.columns(3)
c1.metric("Done (labeled or skipped)", done)
c2.metric("Left in my queue", remaining)
c3.metric("Questions I answered", len(answers))
if (flash := st.session_state.pop("hist_flash", None)):
    st.success(flash)
if (err := st.session_state.pop("hist_error", None)):
    st.error(err)
if not answers:
    st.info("No labels yet. Open **Label** to start.")
    st.stop()

st.subheader("My answers")
st.caption("One row per question: your latest answer given in the app, newest first. "
           "Labels from Label Studio are changed there.")
view = [{**r, "answer": _answer(r), "changes": str(max(int(r["n_rows"]) - 1, 0))} for r in answers]
show_table(table(view, [
    ("created_at", "When", when),
    ("question_id", "Question id", text),
    ("dataset_name", "Benchmark", text),
    ("question", "Question", _short),
    ("answer", "Your answer", text),
    ("changes", "Changes", text),
]), key="hist_table")

st.subheader("Reopen and change an answer")
by_id = {str(r["question_id"]): r for r in answers}
qid = st.selectbox(
    "Question", list(by_id), key="hist_qid",
    format_func=lambda q: f"{q} · {_answer(by_id[q])} · {_short(by_id[q]['question'], 70)}",
)
row = by_id[qid]
event_id = st.session_state.setdefault("hist_event", annotate.new_event_id())
st.caption(f"{row['dataset_name']} · question {qid} · your answer: {_answer(row)} "
           f"(given {when(row['created_at'])})")
with st.container(border=True, key="hist_question"):
    show_plain(str(row["question"]))
    show_plain("\n".join(f"{k}. {v}" for k, v in sorted(row["options"].items())))
if row["rationale"]:
    show_plain(f"Your rationale: {row['rationale']}")
st.text_input("Rationale for the change (optional)", key=f"hist_rat_{event_id}", max_chars=2000)
b1, b2, _ = st.columns([1, 1, 2])
current = row["label"] if row["action"] == "label" else None
for col, label in ((b1, "reasoning"), (b2, "knowledge")):
    col.button(f"Change to {label}", key=f"hist_to_{label}_{qid}_{event_id}", type="primary",
               width="stretch", disabled=current == label,
               on_click=_change, args=(qid, label, event_id))
