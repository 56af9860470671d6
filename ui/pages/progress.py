"""An annotator's own progress: counts and their recent actions (nobody else's)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation.services import annotate
from ui.common import get_store, require_role

user = require_role("annotator")
store = get_store()

st.title("My progress")
(done, remaining), history_rows = annotate.my_progress(store, user["name"], limit=200)
c1, c2 = st.columns(2)
c1.metric("Done (labeled or skipped)", done)
c2.metric("Left in my queue", remaining)
history = pd.DataFrame(history_rows)
if history.empty:
    st.info("No labels yet. Open **Label** to start.")
else:
    st.subheader("My recent actions")
    st.dataframe(history, hide_index=True, width="stretch")
