"""Agreement on the gold set (maintainers): kappas, alpha, percent agreement with bootstrap
95 % CIs, overall / per benchmark / per annotator, and the charts."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from curation import plots
from curation.agreement import agreement_report
from curation.labels import agreement_inputs
from curation.store import queue
from ui.common import get_store, require_role

require_role("maintainer")
store = get_store()

st.title("Agreement on the gold set")


@st.cache_data(show_spinner="Bootstrapping...", max_entries=8)
def _report(rows: tuple[tuple[str, str, str], ...], groups: tuple[tuple[str, str], ...],
            n_boot: int) -> dict[str, Any]:
    return agreement_report(list(rows), item_groups=dict(groups), n_boot=n_boot, seed=0)


data = store.run(lambda con: {
    "gold": queue.gold_labels(con),
    "all": queue.all_current_labels(con),
    "per_day": queue.labels_per_day(con),
})
n_boot = st.select_slider("Bootstrap resamples", options=[200, 500, 1000, 2000], value=1000)
rows, groups = agreement_inputs(data["gold"])
if not rows:
    st.info("No labels on gold items yet. Draw a gold set on **Assignment** and label it.")
    st.stop()
report = _report(tuple(rows), tuple(sorted(groups.items())), n_boot)


def _fmt(value: dict[str, Any]) -> str:
    v = value["value"]
    return "n/a" if v is None else f"{v:.3f}"


def _ci(value: dict[str, Any]) -> str:
    lo, hi = value["ci"]
    return "CI n/a" if lo is None else f"95 % CI [{lo:.3f}, {hi:.3f}]"


overall = report["overall"]
st.caption(
    f"{overall['n_items']} gold items with 2+ labels ({report['n_items_dropped']} with one label "
    f"left out), {overall['n_raters']} annotators, {overall['n_labels']} labels; "
    f"bootstrap over items, {report['n_boot']} resamples."
)
cols = st.columns(4)
for col, (key, title) in zip(cols, [
    ("mean_pairwise_cohen", "Cohen's kappa (mean pairwise)"),
    ("fleiss_kappa", "Fleiss' kappa"),
    ("krippendorff_alpha", "Krippendorff's alpha"),
    ("percent_agreement", "Percent agreement"),
], strict=True):
    with col.container(key=f"metric_{key}"):
        st.metric(title, _fmt(overall[key]))
        st.caption(_ci(overall[key]))

st.subheader("Per benchmark")
per = [
    {"benchmark": g, "items": b["n_items"],
     **{k: b[k]["value"] for k in plots.COEFFICIENTS},
     "alpha CI": _ci(b["krippendorff_alpha"])}
    for g, b in report["per_group"].items()
]
st.dataframe(pd.DataFrame(per), hide_index=True, width="stretch")

st.subheader("Pairs of annotators (Cohen's kappa)")
st.dataframe(pd.DataFrame(report["pairwise"]), hide_index=True, width="stretch")

st.subheader("Per annotator")
per_ann = [
    {"annotator": a, "items": v["n_items"],
     "agreement with others": v["agreement_with_others"]["value"],
     "kappa vs majority of others": v["kappa_vs_majority_of_others"]["value"],
     "kappa CI": _ci(v["kappa_vs_majority_of_others"])}
    for a, v in report["per_annotator"].items()
]
st.dataframe(pd.DataFrame(per_ann), hide_index=True, width="stretch")

st.subheader("Charts")
coef = st.selectbox("Coefficient per benchmark", plots.COEFFICIENTS, index=0)
st.altair_chart(plots.agreement_per_benchmark(report["per_group"], coef), width="stretch")
st.altair_chart(plots.reasoning_share(data["all"]), width="stretch")
if data["per_day"]:
    st.altair_chart(plots.labels_per_day(data["per_day"]), width="stretch")
