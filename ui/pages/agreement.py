"""Agreement on the gold set (maintainers): kappas, alpha, percent agreement with bootstrap
95 % CIs, overall / per benchmark / per annotator, and the charts.

Only people are raters: the figures are `curation.services.annotate.agreement_summary`,
the same computation as `curation agreement` and the release card; benchmarks' own tags
are shown apart, as a reference."""

from __future__ import annotations

from typing import Any

import streamlit as st

from curation import plots
from curation.services import annotate
from curation.services.annotate import agreement_summary
from ui import widgets as w
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
report = _report(store.key, n_boot, n_rows)
if not report["n_rows"]:
    st.info("No labels on gold items yet (benchmark tags do not count: only people are raters). "
            "Draw a gold set on **Assignment** and label it.")
    st.stop()


COEF_NAMES = plots.COEFFICIENT_NAMES


def _fmt(value: dict[str, Any]) -> str:
    return "n/a" if value["value"] is None else f"{value['value']:.3f}"


def _ci(value: dict[str, Any]) -> str:
    lo, hi = value["ci"]
    return "95 % CI n/a" if lo is None else f"95 % CI {w.ci(lo, hi)}"


overall = report["overall"]
small = overall["n_items"] < w.SMALL_N
st.caption(
    f"{w.n_items(overall['n_items'])} gold items with 2+ labels ({report['n_items_dropped']} with one label "
    f"left out), {overall['n_raters']} annotators, {overall['n_labels']} labels; "
    f"bootstrap over items, {report['n_boot']} resamples. Raters are people only: "
    f"{', '.join(report['raters'])}."
)
cols = st.columns(4)
for col, key in zip(cols, ["mean_pairwise_cohen", "fleiss_kappa", "krippendorff_alpha", "percent_agreement"],
                    strict=True):
    with col.container(key=f"metric_{key}"):
        st.metric(COEF_NAMES[key], _fmt(overall[key]))
        st.caption(_ci(overall[key]) + (f" {w.SMALL_N_MARK}" if small else ""))
if small:
    st.warning(w.small_n_caption([overall["n_items"]]) or "", icon=w.SMALL_N_MARK)

st.subheader("Per benchmark")
per = [{"benchmark": g, "items": b["n_items"],
        **{k: b[k]["value"] for k in COEF_NAMES}, "alpha_ci": b["krippendorff_alpha"]["ci"]}
       for g, b in report["per_group"].items()]
w.show_table(w.table(per, [
    ("benchmark", "Benchmark", w.text), ("items", "Items", w.n_items),
    *[(k, name, w.num) for k, name in COEF_NAMES.items()],
    ("alpha_ci", "Alpha 95 % CI", lambda c: w.ci(*c)),
]), key="agr_per_benchmark")

st.subheader("Pairs of annotators (Cohen's kappa)")
pairs = [{**p, "ci": (p["ci_low"], p["ci_high"])} for p in report["pairwise"]]
w.show_table(w.table(pairs, [
    ("rater_a", "Annotator A", w.text), ("rater_b", "Annotator B", w.text), ("n_items", "Items", w.n_items),
    ("percent_agreement", "Percent agreement", w.pct), ("kappa", "Cohen's kappa", w.num),
    ("ci", "Kappa 95 % CI", lambda c: w.ci(*c)),
]), key="agr_pairs")

st.subheader("Per annotator")
per_ann = [
    {"annotator": a, "items": v["n_items"],
     "agreement": v["agreement_with_others"]["value"],
     "kappa": v["kappa_vs_majority_of_others"]["value"],
     "kappa_ci": v["kappa_vs_majority_of_others"]["ci"]}
    for a, v in report["per_annotator"].items()
]
w.show_table(w.table(per_ann, [
    ("annotator", "Annotator", w.text), ("items", "Items", w.n_items),
    ("agreement", "Agreement with others", w.pct), ("kappa", "Kappa vs majority of others", w.num),
    ("kappa_ci", "Kappa 95 % CI", lambda c: w.ci(*c)),
]), key="agr_per_annotator")
note = w.small_n_caption([r["items"] for r in per] + [p["n_items"] for p in pairs] + [r["items"] for r in per_ann])
if note:
    st.caption(note)

st.subheader("Benchmark tags (a reference, not a rater)")
tags = report["benchmark_tags"]
cmp = tags["human_label_vs_tag"]
if cmp["n_items"]:
    kappa = "n/a" if cmp["cohen_kappa"] is None else f"{cmp['cohen_kappa']:.3f}"
    st.caption(
        f"Human label vs the tags of {', '.join(tags['sources'])} on {w.n_items(cmp['n_items'])} gold items "
        f"with both: {cmp['percent_agreement']:.1%} agree, Cohen's kappa {kappa}. Not part of the figures above."
    )
else:
    st.caption("No gold item has both a human label and a benchmark's own tag.")

st.subheader("Charts")
coef = st.selectbox("Coefficient per benchmark", plots.COEFFICIENTS, index=0, format_func=COEF_NAMES.__getitem__)
st.altair_chart(plots.agreement_per_benchmark(report["per_group"], coef), width="stretch")
st.altair_chart(plots.reasoning_share(current), width="stretch")
people_days, imported = plots.split_by_origin(per_day)
if people_days:
    st.altair_chart(plots.labels_per_day(people_days), width="stretch")
if imported:
    st.caption(f"Not charted: {imported:,} imported benchmark tags (a reference, not people's labels).")
