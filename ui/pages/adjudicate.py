"""Adjudication (maintainers): gold items where annotators disagree, with a vote summary per
item (how many people chose each label, and who), the question, each person's label,
confidence and rationale, and the full history of the question (every row: who, when,
source). Nothing is preselected: the maintainer presses **1** (reasoning) or **2**
(knowledge), or clicks, and the decision is stored with the note typed beside it in
`adjudications` (append-only; the latest one counts). **N** / **P** move to the next /
previous item; after a decision the next undecided item opens. At the bottom, the history
of any question can be looked up by id (also questions that are not in disagreement).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import streamlit as st

from curation.errors import CurationError
from curation.schema import LABELS
from curation.services import annotate
from curation.services.annotate import adjudication_queue
from ui.common import get_store, require_active_user, require_role, show_plain
from ui.widgets import keyboard_glue, show_table, table, text, when

user = require_role("maintainer")
store = get_store()
LEGEND = ("Keys: **1** final label reasoning · **2** final label knowledge · **N** next item · "
          "**P** previous item · **Esc** leave the note box")
HISTORY_COLUMNS = [
    ("created_at", "When", when), ("annotator", "Who", text), ("action", "Action", text),
    ("label", "Label", text), ("source", "Source", text), ("confidence", "Confidence", text),
    ("rationale", "Rationale", text), ("batch_id", "Batch", text),
]


def votes(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Label -> the people who chose it (every label listed, sorted names)."""
    out: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        out[str(r["label"])].append(str(r["annotator"]))
    return {label: sorted(out.get(label, [])) for label in LABELS}


def _vote_cell(names: list[str]) -> str:
    return f"{len(names)} ({', '.join(names)})" if names else "0"


def _move(step: int, shown: list[str]) -> None:
    qid = st.session_state.get("adj_qid")
    i = shown.index(qid) if qid in shown else 0
    st.session_state["adj_qid"] = shown[(i + step) % len(shown)]


def _decide(qid: str, label: str) -> None:
    """Decision button callback: the session and the account checked now, then stored; the
    next undecided item opens."""
    who = require_active_user("maintainer")
    if who is None:
        return  # logged out: the router shows why
    note = (st.session_state.get(f"adj_note_{qid}") or "").strip() or None
    try:
        annotate.adjudicate(store, question_id=qid, label=label, maintainer=who["name"], note=note)
    except CurationError as exc:
        st.session_state["adj_error"] = str(exc)
        return
    st.session_state["adj_saved"] = f"Decision saved: question {qid} is {label}."
    items, adjudicated = adjudication_queue(store)
    order = list(items)
    pending = [q for q in order if q not in adjudicated]
    later = [q for q in pending if order.index(q) > order.index(qid)] if qid in order else pending
    if later or pending:
        st.session_state["adj_qid"] = (later or pending)[0]


st.title("Adjudication")
keyboard_glue()
if (saved := st.session_state.pop("adj_saved", None)):
    st.toast(saved)
if (err := st.session_state.pop("adj_error", None)):
    st.error(err)

# disagreements between people only: a benchmark's own tag is never a side of one
items, adjudicated = adjudication_queue(store)
pending = [q for q in items if q not in adjudicated]
c1, c2 = st.columns(2)
c1.metric("Gold items with disagreement", len(items))
c2.metric("Still to adjudicate", len(pending))
show_done = st.toggle("Also show adjudicated items", value=False)
shown = list(items) if show_done else pending

if shown:
    st.subheader("Votes per item")
    summary = [
        {"question_id": q, "dataset_name": rows[0].get("dataset_name"),
         **{f"votes_{label}": _vote_cell(names) for label, names in votes(rows).items()},
         "decision": adjudicated[q]["label"] if q in adjudicated else None}
        for q, rows in items.items() if q in shown
    ]
    show_table(table(summary, [
        ("question_id", "Question id", text), ("dataset_name", "Benchmark", text),
        *[(f"votes_{label}", f"{label.capitalize()} votes", text) for label in LABELS],
        ("decision", "Decision", text),
    ]), key="adj_votes")
else:
    st.success("Nothing to adjudicate.")

if shown:
    if st.session_state.get("adj_qid") not in shown:
        st.session_state["adj_qid"] = shown[0]
    qid = st.selectbox("Question", shown, key="adj_qid")
    question = annotate.questions(store, [qid])[qid]
    with st.container(key="adj_actions"):
        b1, b2, b3, b4 = st.columns(4)
        for col, label, key in ((b1, "reasoning", "1"), (b2, "knowledge", "2")):
            col.button(f"Final: {label}", key=f"adj_{label}_{qid}", type="primary", shortcut=key,
                       width="stretch", on_click=_decide, args=(qid, label))
        b3.button("Previous item", key="adj_prev", shortcut="p", width="stretch",
                  on_click=_move, args=(-1, shown))
        b4.button("Next item", key="adj_next", shortcut="n", width="stretch", on_click=_move, args=(1, shown))
        st.caption(LEGEND)
    st.text_input("Note (why; stored with the decision)", key=f"adj_note_{qid}", max_chars=2000)
    counts = votes(items[qid])
    st.caption(f"{question['dataset_name']} · {qid} · votes: "
               + " · ".join(f"{label} {_vote_cell(names)}" for label, names in counts.items()))
    with st.container(border=True):
        show_plain(question["question"])
        show_plain("\n".join(f"{k}. {v}" for k, v in sorted(question["options"].items())))
        show_plain(f"Answer: {question['answer_idx']}. {question['answer']}")
    st.subheader("Labels")
    cols = st.columns(len(items[qid]))
    for col, row in zip(cols, items[qid], strict=True):
        with col.container(border=True):
            show_plain(f"{row['annotator']} ({row['source']})")
            show_plain(f"label: {row['label']}")
            show_plain(f"confidence: {row['confidence'] if row['confidence'] is not None else '-'}")
            show_plain(f"rationale: {row['rationale'] or '-'}")
    if qid in adjudicated:
        prev = adjudicated[qid]
        show_plain(f"Current decision: {prev['label']} by {prev['maintainer']} "
                   f"({when(prev['created_at'])}) — {prev['note'] or 'no note'}")
    with st.expander("History of this question (every row)"):
        hist = annotate.question_history(store, qid)
        show_table(table(hist["annotations"], HISTORY_COLUMNS))
        if hist["adjudications"]:
            show_table(table(hist["adjudications"], [
                ("created_at", "When", when), ("maintainer", "Maintainer", text),
                ("label", "Decision", text), ("note", "Note", text)]))

st.subheader("History of any question")
lookup = st.text_input("Question id", key="adj_lookup", placeholder="e.g. medqa-test-0001")
if lookup.strip():
    try:
        found = annotate.question_history(store, lookup.strip())
    except CurationError as exc:
        st.error(str(exc))
    else:
        q = found["question"]
        st.caption(f"{q['dataset_name']} · {q['id']} · {len(found['annotations'])} annotation rows, "
                   f"{len(found['adjudications'])} adjudications")
        with st.container(border=True):
            show_plain(q["question"])
        show_table(table(found["annotations"], HISTORY_COLUMNS), key="adj_lookup_rows")
        if found["adjudications"]:
            show_table(table(found["adjudications"], [
                ("created_at", "When", when), ("maintainer", "Maintainer", text),
                ("label", "Decision", text), ("note", "Note", text)]), key="adj_lookup_adj")
