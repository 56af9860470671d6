"""The maintainer's landing page: what is in the store (from the `stats` service, the figures of
`curation stats`) and links to the pages. Reads only; leases nothing."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation.services import annotate
from ui.common import get_store, require_role

user = require_role("maintainer")

st.title("Overview")
data = annotate.store_stats(get_store())
labels = data["labels"]
by_source = labels["by_source"]
people = sum(n for source, n in by_source.items() if source != "import")
batches = dict(data["batches"])
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Questions", f"{data['questions']:,}")
c2.metric("Labels by people", f"{people:,}", help="Current labels from the app and Label Studio.")
c3.metric("Imported tags", f"{by_source.get('import', 0):,}", help="Benchmarks' own tags: a reference, not a rater.")
c4.metric("Adjudicated", f"{data['adjudications']:,}")
c5.metric("Gold batches", f"{batches.get('gold', 0):,}")

st.subheader("Go to")
links = st.columns(4)
for i, (page, label, icon) in enumerate((
    ("pages/label.py", "Label", ":material/label:"),
    ("pages/agreement.py", "Agreement", ":material/handshake:"),
    ("pages/adjudicate.py", "Adjudication", ":material/gavel:"),
    ("pages/assignment.py", "Assignment", ":material/assignment:"),
    ("pages/models.py", "Models", ":material/model_training:"),
    ("pages/labelstudio.py", "Label Studio", ":material/sync_alt:"),
    ("pages/releases.py", "Releases", ":material/inventory_2:"),
    ("pages/progress.py", "My progress", ":material/timeline:"),
)):
    links[i % 4].page_link(page, label=label, icon=icon)

per = pd.DataFrame(data["per_benchmark"])
if per.empty:
    st.info("No questions yet: `curation ingest` adds benchmarks.")
else:
    st.subheader("Questions per benchmark")
    per = per.rename(columns={
        "dataset_name": "Benchmark", "split": "Split", "questions": "Questions",
        "duplicates_merged": "Duplicates merged", "human_labeled": "Labeled by people",
        "import_labeled": "With an imported tag", "labels": "Labels"})
    st.dataframe(per, hide_index=True, width="stretch")
