"""The dataset card (README.md) and the reasoning-share chart of a release.

`render_card(manifest)` fills `templates/dataset_card.md` through huggingface_hub's
`DatasetCard.from_template`; the YAML header carries the `configs` (data files per split) that
`datasets.load_dataset(folder, config)` reads. All Markdown lives in the template: this
module only turns the manifest into plain values (numbers formatted, names escaped). Only
numbers, names validated at ingest and fixed text go into the card: question text never
does (it is untrusted).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curation import licenses, paper

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")
_CONFIG_WHAT = {
    "all": "every benchmark above, one row per question",
    "gold": "the human-labeled gold set with every annotator's label",
    "train_reasoning": "reasoning-heavy training questions, decontaminated",
}


def md(text: Any) -> str:
    """Escape a store-derived string for a markdown table cell."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def _pct(x: float | None) -> str:
    return "–" if x is None else paper.pct(x)


def _ci(ci: Any, scale: float = 100.0, unit: str = " %") -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    digits = 1 if scale == 100.0 else 3
    return f"{scale * ci[0]:.{digits}f}–{scale * ci[1]:.{digits}f}{unit}"


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _comparison(c: dict[str, Any] | None) -> dict[str, Any] | None:
    """A label comparison (`labels.label_comparison`) as card strings; None if no items."""
    if not c or not c.get("n_items"):
        return None
    return {"n": c["n_items"], "pct": _pct(c["percent_agreement"]), "ci": _ci(c["percent_agreement_ci"]),
            "kappa": _num(c.get("cohen_kappa"))}


def _card_data(manifest: Mapping[str, Any], order: list[str], benchmarks: list[str]) -> Any:
    from huggingface_hub import DatasetCardData

    configs = manifest["configs"]
    total = sum(configs[c]["rows"] for c in ("all", "train_reasoning") if c in configs)
    return DatasetCardData(
        pretty_name=f"Reasoning vs knowledge stratified medical QA ({manifest['version']})",
        language=["en"],
        license=sorted({licenses.license_of(b) for b in benchmarks}) or ["unknown"],
        task_categories=["question-answering", "multiple-choice", "text-classification"],
        size_categories=[_size_category(total)],
        annotations_creators=["expert-generated", "machine-generated"],
        source_datasets=[f"extended|{b}" for b in benchmarks] or ["original"],
        tags=["medical", "reasoning", "biomedical-qa"],
        configs=[
            {"config_name": c, "data_files": [{"split": configs[c]["split"], "path": configs[c]["path"]}],
             **({"default": True} if c == "all" else {})}
            for c in order if c in configs
        ],
    )


def _agreement_rows(agr: dict[str, Any] | None) -> list[dict[str, str]]:
    if not agr or not (agr.get("overall") or {}).get("n_items"):
        return []
    o = agr["overall"]
    names = (("percent_agreement", "percent agreement"), ("fleiss_kappa", "Fleiss' kappa"),
             ("krippendorff_alpha", "Krippendorff's alpha"), ("mean_pairwise_cohen", "mean pairwise Cohen's kappa"))
    return [{"name": name, "value": _num((o.get(k) or {}).get("value")),
             "ci": _ci((o.get(k) or {}).get("ci"), scale=1.0, unit="")} for k, name in names]


def _model(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    m = manifest.get("model")
    if not m:
        return None
    ma = manifest.get("model_agreement_on_gold") or {}
    return {
        "version": md(m["version"]), "base": md(m["base_model"]), "kind": md(m.get("kind")),
        "threshold": _num(m.get("threshold")), "n_train": m.get("n_train"),
        "train_source": md(m.get("train_source") or "human labels"), "n_seen": m.get("n_seen", 0),
        "held_out": _comparison(ma), "n_excluded": ma.get("n_excluded_in_training", 0),
        "in_sample": _comparison(ma.get("in_sample")),
    }


def _provenance(manifest: Mapping[str, Any]) -> dict[str, Any]:
    p = manifest.get("provenance") or {}
    return {
        "sources": [{"name": md(s["name"]), "n": s["n_questions"]} for s in p.get("reference_sources", [])],
        "human_vs_reference": _comparison(p.get("human_vs_reference")),
        "model_vs_reference": _comparison(p.get("model_vs_reference_held_out")),
    }


def _license_rows(benchmarks: list[str], excluded: list[str]) -> list[dict[str, str]]:
    rows = []
    for b in benchmarks + excluded:
        note = licenses.restriction_note(b) or ""
        if b in excluded:
            note = ("excluded. " + note).strip()
        rows.append({"benchmark": md(b), "license": licenses.license_of(b),
                     "note": md(note) if note else "redistribution allowed"})
    return rows


def card_context(manifest: Mapping[str, Any], *, repo_id: str | None = None,
                 revision: str | None = None) -> dict[str, Any]:
    """Template variables from a manifest (pure). `repo_id`/`revision`: the Hub repo and tag
    the card is published to (the load snippet names them); None for the local folder."""
    configs = manifest["configs"]
    order = [c for c in configs if configs[c]["kind"] == "benchmark"] + ["all", "gold", "train_reasoning"]
    benchmarks = [c for c in order if configs.get(c, {}).get("kind") == "benchmark"]
    sel = manifest.get("selection", {})
    excluded = list(sel.get("excluded_benchmarks") or [])
    annotation = manifest.get("annotation") or {}
    agr = annotation.get("agreement") or {}
    guidelines = manifest.get("guidelines") or {}
    return {
        "card_data": _card_data(manifest, order, benchmarks),
        "pretty_name": f"Reasoning vs knowledge stratified medical QA ({manifest['version']})",
        "version": md(manifest["version"]),
        "schema_version": manifest["schema_version"],
        "data_as_of": manifest.get("data_as_of") or "unknown",
        "repo_hint": repo_id or f"exports/{manifest['version']}",
        "revision": revision,
        "n_benchmarks": len(benchmarks),
        "model": _model(manifest),
        "configs": [{"name": c, "split": configs[c]["split"], "rows": configs[c]["rows"],
                     "what": _CONFIG_WHAT.get(c, f"benchmark `{c}`")} for c in order if c in configs],
        "guidelines_version": guidelines.get("version") or "not recorded",
        "guidelines_sha256": guidelines.get("sha256"),
        "gold": {"n_items": (agr.get("overall") or {}).get("n_items"), "n_raters": agr.get("raters_total"),
                 "per_item": agr.get("mean_annotators_per_item")} if agr else None,
        "suggestions_shown": annotation.get("suggestions_shown_outside_gold"),
        "adjudication_rule": annotation.get("adjudication_rule", ""),
        "agreement_rows": _agreement_rows(agr),
        "n_boot": agr.get("n_boot"),
        "provenance": _provenance(manifest),
        "paper_share": paper.pct(paper.REASONING_SHARE),
        "paper_agreement": paper.pct(paper.CLASSIFIER_AGREEMENT),
        "paper_n_benchmarks": paper.N_BENCHMARKS,
        "share_rows": [
            {"benchmark": "**all**" if r["benchmark"] == "all" else md(r["benchmark"]),
             "n": r["n"], "n_predicted": r["n_predicted"], "share": _pct(r["reasoning_share"]),
             "ci": _ci(r["reasoning_share_ci"]), "n_human": r["n_human_labeled"],
             "human_share": _pct(r["human_reasoning_share"]), "n_reference": r.get("n_reference_labeled", 0),
             "n_seen": r.get("n_in_model_training", 0)}
            for r in manifest.get("benchmarks", [])
        ],
        "chart": manifest.get("chart"),
        "train_threshold": sel.get("train_threshold"),
        "caps": [{"benchmark": md(k), "cap": v} for k, v in (sel.get("caps") or {}).items()],
        "decon": manifest["decontamination"],
        "n_capped": sel.get("n_removed_by_caps", 0),
        "train_sources": [
            {"dataset_name": md(r["dataset_name"]), "source": r["source"].replace("`", "'"), "rows": r["rows"]}
            for r in manifest.get("train_sources", [])
        ],
        "license_rows": _license_rows(benchmarks, excluded),
        "excluded": ", ".join(md(b) for b in excluded),
        "requires_private": manifest.get("requires_private", False),
    }


def render_card(manifest: Mapping[str, Any], *, repo_id: str | None = None, revision: str | None = None) -> str:
    """The README.md text of a release (deterministic for a given manifest); with `repo_id`
    and `revision`, the text published to the Hub (its load snippet pins that tag)."""
    from huggingface_hub import DatasetCard

    ctx = card_context(manifest, repo_id=repo_id, revision=revision)
    data = ctx.pop("card_data")
    text = str(DatasetCard.from_template(data, template_path=str(TEMPLATE), **ctx))
    return text if text.endswith("\n") else text + "\n"


def write_share_chart(stats: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """PNG bar chart: reasoning share per benchmark with 95 % CIs and the paper's share."""
    from curation import plots

    plots.save_png(plots.share_chart(stats), path)
