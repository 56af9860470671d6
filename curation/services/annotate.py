"""Annotate: the maintainers' use cases around people's labels (agreement, adjudication,
statistics of the store). Each takes a `Store`, returns data and prints nothing.

Who is a rater and what the human label is are `curation.rules`; the human-human agreement
is `curation.labels.gold_agreement` over `store.astore.gold_labels`: the CLI, the Agreement
page and the release card all come here (or to those two), so their figures are equal.
"""

from __future__ import annotations

from typing import Any

from curation import labels, rules
from curation.metrics import wilson_ci
from curation.store import Store
from curation.store import annotations as astore


def agreement_summary(
    store: Store, *, n_boot: int = labels.AGREEMENT_N_BOOT, seed: int = labels.AGREEMENT_SEED
) -> dict[str, Any]:
    """Human-human agreement on the gold set (`curation agreement`), plus, apart, how the
    human labels compare with benchmarks' own tags on the gold items that have both."""
    gold, ref, adj = store.run(lambda con: (
        astore.gold_labels(con), astore.gold_reference_labels(con),
        {q: a["label"] for q, a in astore.current_adjudications(con).items()},
    ))
    report = labels.gold_agreement(gold, n_boot=n_boot, seed=seed)
    human = rules.human_labels([(r["question_id"], r["annotator"], r["label"]) for r in gold], adj)
    tags = rules.reference_tags(ref)
    pairs = [(h.label, tags[q][0]) for q, h in sorted(human.items()) if h.label is not None and q in tags]
    report["benchmark_tags"] = {
        "sources": sorted({name for _label, name in tags.values()}),
        "human_label_vs_tag": labels.label_comparison(pairs),
        "note": "benchmark tags are a reference: never a rater, never in the figures above",
    }
    return report


def adjudication_queue(store: Store) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """(gold items where people disagree -> their labels, current adjudications)."""
    gold, adjudicated = store.run(lambda con: (astore.gold_labels(con), astore.current_adjudications(con)))
    return labels.disagreements(gold), adjudicated


def with_share_cis(data: dict[str, Any]) -> dict[str, Any]:
    """Add a Wilson 95 % CI to each benchmark's predicted reasoning share (`curation stats`)."""
    share = data.get("reasoning_share")
    if share:
        for row in share["per_benchmark"]:
            lo, hi = wilson_ci(row["n_reasoning"], row["n"])
            row["share"] = row["n_reasoning"] / row["n"]
            row["ci"] = [lo, hi]
    return data


def store_stats(store: Store) -> dict[str, Any]:
    """`curation stats`: questions, labels (people's and benchmark tags apart), reasoning share."""
    from curation.store import questions as qs

    return with_share_cis(store.run(qs.stats))
