"""Altair charts, built in one place: rows or reports in, a chart out (no I/O); `save_png`
is the one way a chart becomes a PNG file.

Maintainer pages:

- `labels_per_day`: stacked bars of people's labels per day and source (`split_by_origin`
  keeps imported benchmark tags out of it);
- `agreement_per_benchmark`: Krippendorff's alpha (or another coefficient) per benchmark with
  its bootstrap 95 % CI, from `curation.agreement.agreement_report(...)["per_group"]`;
- `reasoning_share`: share of current labels that are `reasoning`, per benchmark, with a
  Wilson 95 % CI (`curation.metrics.wilson_ci`);
- `kappa_over_rounds`: model-gold and human-human Cohen's kappa per active-learning round
  (points with CI bars side by side; lines only from two rounds on).

Files:

- `share_chart`: the release's reasoning share per benchmark (classifier) with 95 % CIs and
  the paper's figure;
- `learning_curve`: the active-learning simulation's balanced accuracy vs labels;
- `accuracy_by_subset`: `curation.evaluate`'s accuracy on the knowledge and reasoning subsets.

`save_png` renders with vl-convert from the spec serialised with sorted keys, so the same
chart gives the same bytes (a release is byte-identical between two builds).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from curation import paper, rules
from curation.evaluate import SETTINGS
from curation.metrics import wilson_ci

COEFFICIENTS = ("krippendorff_alpha", "fleiss_kappa", "mean_pairwise_cohen", "percent_agreement")
COEFFICIENT_NAMES = {
    "krippendorff_alpha": "Krippendorff's alpha",
    "fleiss_kappa": "Fleiss' kappa",
    "mean_pairwise_cohen": "Cohen's kappa (mean pairwise)",
    "percent_agreement": "Percent agreement",
}
SOURCE_NAMES = {"app": "this app", "label_studio": "Label Studio", "import": "imported tags"}


def split_by_origin(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """(`{day, source, labels}` rows of people's labels, how many imported label rows left out):
    a chart never mixes people's labels with benchmarks' imported tags (`curation.rules`)."""
    people: list[dict[str, Any]] = []
    imported = 0
    for r in rows:
        if rules.is_human(str(r["source"])):
            people.append(dict(r))
        else:
            imported += int(r["labels"])
    return people, imported


def labels_per_day(rows: Iterable[Mapping[str, Any]]) -> alt.Chart:
    """`rows`: `{day, source, labels}` (people's labels: `split_by_origin`). One bar per day
    (a day is a category, so one day is one readable bar), stacked by where it was given."""
    df = pd.DataFrame(list(rows), columns=["day", "source", "labels"])
    df["day"] = pd.to_datetime(df["day"]).dt.strftime("%Y-%m-%d")
    df["source"] = [SOURCE_NAMES.get(str(s), str(s)) for s in df["source"]]
    return (
        alt.Chart(df, title="People's labels per day")
        .mark_bar(size=28)
        .encode(
            x=alt.X("day:O", title="Day (UTC)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("sum(labels):Q", title="Labels"),
            color=alt.Color("source:N", title="Given in"),
            tooltip=[alt.Tooltip("day:O", title="Day"), alt.Tooltip("source:N", title="Given in"),
                     alt.Tooltip("labels:Q", title="Labels")],
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
    name = COEFFICIENT_NAMES[coefficient]
    base = alt.Chart(df, title=f"{name} per benchmark (95 % CI)")
    x = alt.X("value:Q", title=name, scale=alt.Scale(domain=[-1, 1]))
    points = base.mark_point(filled=True, size=80).encode(
        x=x,
        y=alt.Y("benchmark:N", title=None),
        tooltip=[alt.Tooltip("benchmark:N", title="Benchmark"), alt.Tooltip("value:Q", title=name, format=".3f"),
                 alt.Tooltip("ci_low:Q", title="95 % CI low", format=".3f"),
                 alt.Tooltip("ci_high:Q", title="95 % CI high", format=".3f"),
                 alt.Tooltip("n_items:Q", title="Items")],
    )
    bars = base.mark_rule().encode(x=alt.X("ci_low:Q", title=name), x2="ci_high:Q", y="benchmark:N")
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
        lo, hi = wilson_ci(reasoning[ds], total[ds])
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


def kappa_over_rounds(rounds: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """`rounds`: `{round, kappa, kappa_ci, human_kappa, human_kappa_ci}` (as in
    `curation.cli.model.al_status()["rounds"]`): per round a point per comparison with its
    95 % CI bar, side by side (never on top of each other); lines join rounds when there
    are two or more."""
    rows = []
    for r in rounds:
        lo, hi = r["kappa_ci"] or [None, None]
        rows.append({"round": r["round"], "who": "model vs gold", "kappa": r["kappa"], "lo": lo, "hi": hi})
        if r["human_kappa"] is not None:
            hlo, hhi = r["human_kappa_ci"] or [None, None]
            rows.append({"round": r["round"], "who": "human vs human", "kappa": r["human_kappa"], "lo": hlo, "hi": hhi})
    df = pd.DataFrame(rows, columns=["round", "who", "kappa", "lo", "hi"])
    title = "Cohen's kappa (95 % CI)"
    base = alt.Chart(df).encode(x=alt.X("round:O", title="Round", axis=alt.Axis(labelAngle=0)),
                                xOffset=alt.XOffset("who:N"), color=alt.Color("who:N", title=None))
    y = alt.Y("kappa:Q", title=title, scale=alt.Scale(domain=[-0.2, 1]))
    points = base.mark_point(filled=True, size=90).encode(
        y=y, tooltip=[alt.Tooltip("round:O", title="Round"), alt.Tooltip("who:N", title="Comparison"),
                      alt.Tooltip("kappa:Q", title="Kappa", format=".3f"),
                      alt.Tooltip("lo:Q", title="95 % CI low", format=".3f"),
                      alt.Tooltip("hi:Q", title="95 % CI high", format=".3f")])
    errs = base.mark_rule(strokeWidth=2).encode(y=alt.Y("lo:Q", title=title), y2="hi:Q")
    layers: list[Any] = [errs, points]
    if df["round"].nunique() > 1:
        layers.insert(0, alt.Chart(df).mark_line(opacity=0.5).encode(
            x=alt.X("round:O", title="Round"), y=y, color=alt.Color("who:N", title=None)))
    return alt.LayerChart(layer=layers).properties(title="Agreement on the gold set over rounds", height=300)


def share_chart(stats: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """Bar chart of the reasoning share per benchmark with 95 % CIs and the paper's share as
    a dashed rule. `stats`: the release's per-benchmark rows (`benchmark`, `reasoning_share`,
    `reasoning_share_ci`, `n_predicted`); rows without a share are left out."""
    rows = [
        {"benchmark": r["benchmark"], "share": r["reasoning_share"],
         "low": r["reasoning_share_ci"][0], "high": r["reasoning_share_ci"][1], "n": r["n_predicted"]}
        for r in stats if r["reasoning_share"] is not None
    ]
    if not rows:
        rows = [{"benchmark": "(no predictions)", "share": 0.0, "low": 0.0, "high": 0.0, "n": 0}]
    order = [r["benchmark"] for r in rows]
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("benchmark:N", sort=order, title=None)
    )
    bars = base.mark_bar(color="#4c78a8").encode(
        x=alt.X("share:Q", title="reasoning-heavy share (classifier)", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        tooltip=["benchmark:N", "share:Q", "n:Q"],
    )
    errs = base.mark_rule(color="black").encode(x="low:Q", x2="high:Q")
    ref = [{"x": paper.REASONING_SHARE, "label": f"paper: {paper.pct(paper.REASONING_SHARE)}"}]
    rule = alt.Chart(alt.Data(values=ref)).mark_rule(color="#e45756", strokeDash=[4, 3]).encode(x="x:Q")
    label = alt.Chart(alt.Data(values=ref)).mark_text(
        align="left", dx=4, dy=-6, color="#e45756", baseline="bottom"
    ).encode(x="x:Q", text="label:N", y=alt.value(0))
    return (bars + errs + rule + label).properties(
        width=420, height=max(60, 22 * len(rows)), title="Reasoning share per benchmark (95 % CI)"
    )


LEARNING_CURVE_FIELDS = ("strategy", "n_labels", "mean", "std", "min", "max", "n_seeds")


def learning_curve(curve: Sequence[Mapping[str, Any]], target: float | None = None) -> alt.LayerChart:
    """Mean balanced accuracy vs labels per strategy with a min-max band over seeds; `target`
    as a dashed rule. `curve`: `curation.active.SimulationResult.curve()` rows."""
    df = pd.DataFrame(list(curve), columns=list(LEARNING_CURVE_FIELDS))
    base = alt.Chart(df).encode(x=alt.X("n_labels:Q", title="labels"), color=alt.Color("strategy:N"))
    chart = (base.mark_area(opacity=0.15).encode(y=alt.Y("min:Q", title="balanced accuracy (held out)", scale=alt.Scale(zero=False)), y2="max:Q")
             + base.mark_line(point=True).encode(y="mean:Q"))
    if target is not None:
        rule = alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(strokeDash=[6, 4], color="black").encode(y="target:Q")
        chart = chart + rule
    return chart.properties(title="Active learning: balanced accuracy vs labels (mean, min-max over seeds)", width=520, height=320)


def accuracy_by_subset(report: Mapping[str, Any]) -> alt.LayerChart | alt.FacetChart:
    """Accuracy per benchmark on the knowledge and reasoning subsets with 95 % CIs, one row
    per setting when there are several. `report`: `curation.evaluate.score(...)`."""
    data = []
    for r in report["rows"]:
        for subset in ("knowledge", "reasoning"):
            b = r[subset]
            if b["accuracy"] is None:
                continue
            data.append({"setting": r["setting"], "benchmark": r["benchmark"], "subset": subset,
                         "accuracy": b["accuracy"], "low": b["ci"][0], "high": b["ci"][1], "n": b["n"]})
    n_bench = len({d["benchmark"] for d in data})
    base = alt.Chart().encode(
        x=alt.X("benchmark:N", title=None, axis=alt.Axis(labelAngle=-30)),
        xOffset=alt.XOffset("subset:N"),
        color=alt.Color("subset:N", scale=alt.Scale(domain=["knowledge", "reasoning"], range=["#4c78a8", "#f58518"])),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("accuracy:Q", stack=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title="accuracy")
    )
    errs = base.mark_rule(strokeWidth=1.5).encode(y="low:Q", y2="high:Q", color=alt.value("black"))
    layered = alt.layer(bars, errs, data=alt.Data(values=data)).properties(width=max(160, 70 * n_bench), height=220)
    chart: Any = layered.facet(row=alt.Row("setting:N", title=None, sort=list(SETTINGS))) if len(report["settings"]) > 1 else layered
    return chart.properties(title="Accuracy by subset (95 % Wilson CI)")  # type: ignore[no-any-return]


def save_png(chart: alt.TopLevelMixin, path: str | os.PathLike[str], *, scale: float = 2) -> Path:
    """Write `chart` as a PNG (vl-convert, `scale` x the chart's pixel size) and return the path.

    The Vega-Lite spec is serialised with sorted keys: the same chart gives the same bytes.
    """
    import vl_convert as vlc

    png = vlc.vegalite_to_png(json.dumps(chart.to_dict(), sort_keys=True), scale=scale)
    out = Path(path)
    out.write_bytes(png)
    return out
