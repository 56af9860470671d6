"""The numbers a release reports, each on the items where it means what it says.

- per benchmark: questions, the classifier's reasoning share (Wilson 95 % CI), people's
  labels, benchmark tags, and how many rows the model trained on (their `reasoning_prob`
  is in-sample);
- human-human agreement: `curation.labels.gold_agreement` on `store.annotations.gold_labels`, the same
  computation and rows as `curation agreement` and the Agreement page;
- model vs the human label: gold items in the release the model never trained or validated
  on (`rules.held_out`); the others are reported apart, as in-sample;
- provenance: the benchmark's own tags vs the human label, and vs the model on held-out
  items: a reference, never counted as a rater.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from curation import labels, rules
from curation.metrics import wilson_ci
from curation.release.snapshot import Snapshot
from curation.store.sql import literal


def compute(con: duckdb.DuckDBPyConnection, snap: Snapshot, keep: str, model_version: str | None) -> dict[str, Any]:
    return {
        "benchmarks": benchmark_stats(con, keep),
        "agreement": human_agreement(snap),
        "model_agreement": model_agreement(con, keep) if model_version else None,
        "provenance": provenance(con, snap, keep, model_version),
    }


def benchmark_stats(con: duckdb.DuckDBPyConnection, keep: str) -> list[dict[str, Any]]:
    """Per benchmark (and overall) over `split=test` rows of the release."""
    rows = con.execute(
        f"""SELECT coalesce(q.dataset_name, '__all__') AS b, count(*) AS n,
                   count(p.question_id) AS n_pred,
                   count(*) FILTER (WHERE p.is_reasoning) AS n_reasoning,
                   count(l.human_label) AS n_human,
                   count(*) FILTER (WHERE l.human_label = 'reasoning') AS n_human_reasoning,
                   count(l.source_label) AS n_reference,
                   count(*) FILTER (WHERE q.id IN (SELECT question_id FROM seen)) AS n_seen
            FROM questions q
            LEFT JOIN predictions p ON p.question_id = q.id
            LEFT JOIN labels l ON l.question_id = q.id
            WHERE q.split = 'test' AND {keep}
            GROUP BY ROLLUP (q.dataset_name) ORDER BY q.dataset_name NULLS LAST"""
    ).fetchall()
    out = []
    for b, n, n_pred, n_r, n_h, n_hr, n_ref, n_seen in rows:
        out.append({
            "benchmark": "all" if b == "__all__" else b,
            "n": n, "n_predicted": n_pred, "n_reasoning": n_r,
            "reasoning_share": n_r / n_pred if n_pred else None,
            "reasoning_share_ci": list(wilson_ci(n_r, n_pred)) if n_pred else [None, None],
            "n_human_labeled": n_h,
            "human_reasoning_share": (n_hr / n_h) if n_h else None,
            "n_reference_labeled": n_ref,
            "n_in_model_training": n_seen,
        })
    return out


def human_agreement(snap: Snapshot) -> dict[str, Any] | None:
    """Human-human agreement on the whole gold set (what `curation agreement` prints)."""
    if not snap.gold_human:
        return None
    rep = labels.gold_agreement(snap.gold_human)
    per_item: dict[str, int] = {}
    for r in snap.gold_human:
        per_item[r["question_id"]] = per_item.get(r["question_id"], 0) + 1
    overall = rep.get("overall") or {}
    return {
        "n_rows": rep.get("n_rows"),
        "n_items": overall.get("n_items"),
        "n_raters": overall.get("n_raters"),
        "raters_total": len(rep["raters"]),
        "mean_annotators_per_item": round(sum(per_item.values()) / len(per_item), 3),
        "scope": "every gold item, benchmarks left out of the release included (figures only)",
        "overall": overall,
        "n_boot": rep.get("n_boot"),
        "seed": rep.get("seed"),
        "alpha": rep.get("alpha"),
    }


def _pairs(con: duckdb.DuckDBPyConnection, where: str, a: str, b: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(
        f"""SELECT {a}, {b} FROM questions q
            JOIN labels l ON l.question_id = q.id
            LEFT JOIN predictions p ON p.question_id = q.id
            WHERE {where} ORDER BY q.id"""
    ).fetchall()]


PREDICTED = "CASE WHEN p.is_reasoning THEN 'reasoning' ELSE 'knowledge' END"
SEEN = "q.id IN (SELECT question_id FROM seen)"


def model_agreement(con: duckdb.DuckDBPyConnection, keep: str) -> dict[str, Any] | None:
    """Classifier vs the human label on the release's gold items the model never saw."""
    base = (f"q.id IN (SELECT question_id FROM gold) AND l.human_label IS NOT NULL "
            f"AND p.question_id IS NOT NULL AND {keep}")
    held = _pairs(con, f"{base} AND NOT {SEEN}", "l.human_label", PREDICTED)
    seen = _pairs(con, f"{base} AND {SEEN}", "l.human_label", PREDICTED)
    if not held and not seen:
        return None
    return {**labels.label_comparison(held), "held_out_only": True,
            "n_excluded_in_training": len(seen), "in_sample": labels.label_comparison(seen)}


def provenance(con: duckdb.DuckDBPyConnection, snap: Snapshot, keep: str, model_version: str | None) -> dict[str, Any]:
    sources: dict[str, int] = {}
    for _q, (_label, name) in rules.reference_tags(snap.reference).items():
        sources[name] = sources.get(name, 0) + 1
    human_ref = _pairs(con, f"l.human_label IS NOT NULL AND l.source_label IS NOT NULL AND {keep}",
                       "l.human_label", "l.source_label")
    model_ref = None
    if model_version:
        model_ref = labels.label_comparison(_pairs(
            con, f"l.source_label IS NOT NULL AND p.question_id IS NOT NULL AND NOT {SEEN} AND {keep}",
            PREDICTED, "l.source_label"))
    return {
        "human_sources": list(rules.HUMAN_SOURCES),
        "reference_sources": [{"name": k, "n_questions": v} for k, v in sorted(sources.items())],
        "human_vs_reference": labels.label_comparison(human_ref),
        "model_vs_reference_held_out": model_ref,
        "rule": "only people are raters: benchmark tags never fill overlap slots, count in majorities "
                "or in agreement; they are published as source_label / source_label_origin",
    }


def train_sources(con: duckdb.DuckDBPyConnection, path: Path) -> list[dict[str, Any]]:
    """Rows of the written training file per benchmark and source."""
    return [
        {"dataset_name": r[0], "source": r[1], "rows": r[2]}
        for r in con.execute(
            f"SELECT dataset_name, source, count(*) FROM read_parquet({literal(str(path))}) GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    ]
