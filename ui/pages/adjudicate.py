"""Adjudication (maintainers): gold items where annotators disagree, side by side; the final
label and a note go to `adjudications` (append-only; the latest one counts)."""

from __future__ import annotations

import streamlit as st

from curation.schema import LABELS
from curation.services import annotate
from curation.services.annotate import adjudication_queue
from ui.common import get_store, require_role, show_plain, writer

user = require_role("maintainer")
store = get_store()

st.title("Adjudication")

# disagreements between people only: a benchmark's own tag is never a side of one
items, adjudicated = adjudication_queue(store)
pending = [q for q in items if q not in adjudicated]
c1, c2 = st.columns(2)
c1.metric("Gold items with disagreement", len(items))
c2.metric("Still to adjudicate", len(pending))
show_done = st.toggle("Also show adjudicated items", value=False)
shown = list(items) if show_done else pending
if not shown:
    st.success("Nothing to adjudicate.")
    st.stop()

qid = st.selectbox("Question", shown, key="adj_qid")
question = annotate.questions(store, [qid])[qid]
st.caption(f"{question['dataset_name']} · {qid}")
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
    show_plain(f"Current decision: {prev['label']} by {prev['maintainer']} — {prev['note'] or ''}")

with st.form(f"adj_form_{qid}"):
    final = st.radio("Final label", LABELS, horizontal=True)
    note = st.text_input("Note (why)", max_chars=2000)
    if st.form_submit_button("Save decision", type="primary"):
        who = writer("maintainer")  # the session and the account, checked now
        annotate.adjudicate(store, question_id=qid, label=final, maintainer=who["name"], note=note or None)
        st.session_state["adj_saved"] = qid
        st.rerun()
if st.session_state.pop("adj_saved", None):
    st.toast("Decision saved.")
