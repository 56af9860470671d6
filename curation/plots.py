"""Altair charts for the maintainer pages. Rows in, `alt.Chart` out; no I/O.

- `labels_per_day`: stacked bars of label rows per day and source;
- `agreement_per_benchmark`: Krippendorff's alpha (or another coefficient) per benchmark with
  its bootstrap 95 % CI, from `curation.agreement.agreement_report(...)["per_group"]`;
- `reasoning_share`: share of current labels that are `reasoning`, per benchmark, with a
  Wilson 95 % CI from `curation.agreement.proportion_ci`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import altair as alt
import pandas as pd

from curation.agreement import proportion_ci

COEFFICIENTS = ("krippendorff_alpha", "fleiss_kappa", "mean_pairwise_cohen", "percent_agreement")


def labels_per_day(rows: Iterable[Mapping[str, Any]]) -> alt.Chart:
    """`rows`: `{day, source, labels}`."""
    df = pd.DataFrame(list(rows), columns=["day", "source", "labels"])
    df["day"] = pd.to_datetime(df["day"])
    return (
        alt.Chart(df, title="Labels per day")
        .mark_bar()
        .encode(
            x=alt.X("yearmonthdate(day):T", title="day"),
            y=alt.Y("sum(labels):Q", title="label rows"),
            color=alt.Color("source:N"),
            tooltip=["day:T", "source:N", "labels:Q"],
        )
    )


def agreement_table(per_group: Mapping[str, Mapping[str, Any]], coefficient: str) -> pd.DataFrame:
    """One row per benchmark: value, CI, items (None values kept as NaN)."""
    if coefficient not in COEFFICIENTS:
        raise ValueError(f"coefficient {coefficient!r} is not one of {COEFFICIENTS}")
    recs = []
    for group, block in sorted(per_group.items()):
        v = block[coefficient]
        recs.append({
            "benchmark": group, "value": v["value"], "ci_low": v["ci"][0], "ci_high": v["ci"][1],
            "n_items": block["n_items"],
        })
    return pd.DataFrame(recs, columns=["benchmark", "value", "ci_low", "ci_high", "n_items"])


def agreement_per_benchmark(
    per_group: Mapping[str, Mapping[str, Any]], coefficient: str = "krippendorff_alpha"
) -> alt.LayerChart:
    df = agreement_table(per_group, coefficient)
    base = alt.Chart(df, title=f"{coefficient.replace('_', ' ')} per benchmark (95 % CI)")
    points = base.mark_point(filled=True, size=80).encode(
        x=alt.X("value:Q", title=coefficient, scale=alt.Scale(domain=[-1, 1])),
        y=alt.Y("benchmark:N", title=None),
        tooltip=["benchmark:N", "value:Q", "ci_low:Q", "ci_high:Q", "n_items:Q"],
    )
    bars = base.mark_rule().encode(x="ci_low:Q", x2="ci_high:Q", y="benchmark:N")
    return alt.LayerChart(layer=[bars, points])


def reasoning_share_table(current: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """`current`: current labels with `dataset_name` and `label`; share of `reasoning` per benchmark."""
    total: Counter[str] = Counter()
    reasoning: Counter[str] = Counter()
    for r in current:
        total[str(r["dataset_name"])] += 1
        reasoning[str(r["dataset_name"])] += r["label"] == "reasoning"
    recs = []
    for ds in sorted(total):
        lo, hi = proportion_ci(reasoning[ds], total[ds])
        recs.append({"benchmark": ds, "share": reasoning[ds] / total[ds], "ci_low": lo,
                     "ci_high": hi, "labels": total[ds]})
    return pd.DataFrame(recs, columns=["benchmark", "share", "ci_low", "ci_high", "labels"])


def reasoning_share(current: Iterable[Mapping[str, Any]]) -> alt.LayerChart:
    df = reasoning_share_table(current)
    base = alt.Chart(df, title="Share of labels that are 'reasoning' (Wilson 95 % CI)")
    bars = base.mark_bar().encode(
        x=alt.X("share:Q", title="reasoning share", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("benchmark:N", title=None),
        tooltip=["benchmark:N", "share:Q", "labels:Q"],
    )
    err = base.mark_rule().encode(x="ci_low:Q", x2="ci_high:Q", y="benchmark:N")
    return alt.LayerChart(layer=[bars, err])
