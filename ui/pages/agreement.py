"""Agreement on the gold set (maintainers): kappas, alpha, percent agreement with bootstrap
95 % CIs, overall / per benchmark / per annotator, and the charts.

Only people are raters: the figures are `curation.services.annotate.agreement_summary`,
the same computation as `curation agreement` and the release card; benchmarks' own tags
are shown apart, as a reference."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from curation import plots
from curation.services import annotate
from curation.services.annotate import agreement_summary
from ui.common import get_store, require_role

require_role("maintainer")
store = get_store()

st.title("Agreement on the gold set")


@st.cache_data(show_spinner="Bootstrapping...", max_entries=8, ttl=30)
def _report(db: str, n_boot: int, n_annotation_rows: int) -> dict[str, Any]:
    # keyed on the number of annotation rows: any new label, undo or import recomputes
    return agreement_summary(store, n_boot=n_boot)


current, per_day, n_rows = annotate.agreement_inputs(store)
n_boot = st.select_slider("Bootstrap resamples", options=[200, 500, 1000, 2000], value=1000)
report = _report(str(store.path), n_boot, n_rows)
if not report["n_rows"]:
    st.info("No labels on gold items yet (benchmark tags do not count: only people are raters). "
            "Draw a gold set on **Assignment** and label it.")
    st.stop()


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
    f"bootstrap over items, {report['n_boot']} resamples. Raters are people only: "
    f"{', '.join(report['raters'])}."
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

st.subheader("Benchmark tags (a reference, not a rater)")
tags = report["benchmark_tags"]
cmp = tags["human_label_vs_tag"]
if cmp["n_items"]:
    kappa = "n/a" if cmp["cohen_kappa"] is None else f"{cmp['cohen_kappa']:.3f}"
    st.caption(
        f"Human label vs the tags of {', '.join(tags['sources'])} on {cmp['n_items']} gold items with both: "
        f"{cmp['percent_agreement']:.1%} agree, Cohen's kappa {kappa}. Not part of the figures above."
    )
else:
    st.caption("No gold item has both a human label and a benchmark's own tag.")

st.subheader("Charts")
coef = st.selectbox("Coefficient per benchmark", plots.COEFFICIENTS, index=0)
st.altair_chart(plots.agreement_per_benchmark(report["per_group"], coef), width="stretch")
st.altair_chart(plots.reasoning_share(current), width="stretch")
if per_day:
    st.altair_chart(plots.labels_per_day(per_day), width="stretch")
