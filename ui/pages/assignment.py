"""Assignment (maintainers): draw a gold set, see batches, leases and who did what."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation.assign import lease_minutes
from curation.errors import CurationError
from curation.services import annotate
from ui.common import get_store, require_role, writer

user = require_role("maintainer")
store = get_store()

st.title("Assignment")
st.caption(f"Leases expire after {lease_minutes():g} minutes (CURATION_LEASE_MINUTES); "
           "an expired item goes back to the pool.")

with st.form("gold_draw"):
    st.subheader("Draw a gold set")
    c1, c2, c3 = st.columns(3)
    size = c1.number_input("Questions", min_value=1, value=50, step=10)
    overlap = c2.number_input("Annotators per question (K)", min_value=1, value=2)
    seed = c3.number_input("Seed", min_value=0, value=0)
    if st.form_submit_button("Draw", type="primary"):
        who = writer("maintainer")  # the session and the account, checked now
        try:
            res = annotate.draw_gold(store, int(size), int(overlap), int(seed), created_by=who["name"])
            st.success(f"Batch {res['batch_id']}: {res['size']} questions, K={res['overlap']}, "
                       f"per benchmark {res['per_dataset']}")
        except CurationError as exc:
            st.error(str(exc))

status = annotate.assignment_overview(store)
st.subheader("Batches")
if status["batches"]:
    st.dataframe(pd.DataFrame(status["batches"]), hide_index=True, width="stretch")
else:
    st.info("No batches yet.")
st.subheader("Annotators")
st.dataframe(pd.DataFrame(status["people"]), hide_index=True, width="stretch")
