"""The dataset card (README.md) and the reasoning-share chart of a release.

`render_card(manifest)` fills `templates/dataset_card.md` through huggingface_hub's
`DatasetCard.from_template`; the YAML header carries the `configs` (data files per split) that
`datasets.load_dataset(folder, config)` reads. Only numbers, names validated at ingest and
fixed text go into the card: question text never does (it is untrusted).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"
GUIDELINES = Path(__file__).resolve().parent.parent / "labeling_config" / "guidelines.md"

# Licence of each known source benchmark (Hub licence ids); unknown benchmarks: "unknown".
LICENSES: dict[str, str] = {
    "medqa": "mit",
    "medmcqa": "mit",
    "pubmedqa": "mit",
    "mmlu": "mit",
    "mmlu_pro": "mit",
    "medxpertqa": "mit",
    "gpqa": "cc-by-4.0",
    "hle": "mit",
    "medbullets": "other",
    "lancet": "other",
    "nejm": "other",
}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def license_of(benchmark: str) -> str:
    """Hub licence id for a benchmark name (longest known prefix wins)."""
    name = benchmark.lower()
    best = ""
    for prefix in LICENSES:
        if name.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return LICENSES[best] if best else "unknown"


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
    return "–" if x is None else f"{100 * x:.1f} %"


def _ci(ci: Any) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    return f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} %"


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def guidelines_info(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Version (YAML front matter `version:` or a 'Version: X' line) and sha256 of the guidelines."""
    p = Path(path) if path is not None else Path(os.environ.get("CURATION_GUIDELINES", GUIDELINES))
    if not p.is_file():
        return {"version": None, "sha256": None}
    data = p.read_bytes()
    text = data.decode("utf-8", errors="replace")
    m = re.search(r"(?im)^\s*(?:guidelines\s+)?version\s*[:=]\s*[\"']?([\w.\-]+)", text)
    return {"version": m.group(1) if m else None, "sha256": hashlib.sha256(data).hexdigest()}


_CONFIG_WHAT = {
    "all": "every benchmark above, one row per question",
    "gold": "the human-labeled gold set with every annotator's label",
    "train_reasoning": "reasoning-heavy training questions, decontaminated",
}


def card_context(manifest: dict[str, Any], repo_hint: str | None = None) -> dict[str, Any]:
    """Template variables from a manifest (pure)."""
    from huggingface_hub import DatasetCardData

    configs = manifest["configs"]
    order = [c for c in configs if configs[c]["kind"] == "benchmark"] + ["all", "gold", "train_reasoning"]
    card_configs = [
        {"config_name": c, "data_files": [{"split": configs[c]["split"], "path": configs[c]["path"]}],
         **({"default": True} if c == "all" else {})}
        for c in order if c in configs
    ]
    benchmarks = [c for c in order if configs.get(c, {}).get("kind") == "benchmark"]
    licenses = sorted({license_of(b) for b in benchmarks}) or ["unknown"]
    total = sum(configs[c]["rows"] for c in ("all", "train_reasoning") if c in configs)
    card_data = DatasetCardData(
        pretty_name=f"Reasoning vs knowledge stratified medical QA ({manifest['version']})",
        language=["en"],
        license=licenses,
        task_categories=["question-answering", "multiple-choice", "text-classification"],
        size_categories=[_size_category(total)],
        annotations_creators=["expert-generated", "machine-generated"],
        source_datasets=[f"extended|{b}" for b in benchmarks] or ["original"],
        tags=["medical", "reasoning", "biomedical-qa"],
        configs=card_configs,
    )

    model = manifest.get("model")
    if model:
        model_line = (
            f"`{md(model['version'])}` (base `{md(model['base_model'])}`, threshold "
            f"{_num(model.get('threshold'))})."
        )
    else:
        model_line = "none: this release has no model predictions (prediction columns are empty)."

    agr = (manifest.get("annotation") or {}).get("agreement")
    agreement_rows: list[dict[str, str]] = []
    gold_line = "no gold labels yet."
    n_boot = None
    if agr and agr.get("overall") and agr["overall"].get("n_items"):
        o = agr["overall"]
        n_boot = agr.get("n_boot")
        for key, name in (("percent_agreement", "percent agreement"), ("fleiss_kappa", "Fleiss' kappa"),
                          ("krippendorff_alpha", "Krippendorff's alpha"), ("mean_pairwise_cohen", "mean pairwise Cohen's kappa")):
            v = o.get(key) or {}
            ci = v.get("ci") or [None, None]
            agreement_rows.append({
                "name": name, "value": _num(v.get("value")),
                "ci": "–" if ci[0] is None else f"{ci[0]:.3f}–{ci[1]:.3f}",
            })
        gold_line = (
            f"{o['n_items']} items with two or more labels, {o.get('n_raters')} annotators, "
            f"{agr.get('mean_annotators_per_item')} labels per item on average."
        )

    ma = manifest.get("model_agreement_on_gold")
    if model and ma:
        classifier_block = (
            f"- Model `{md(model['version'])}`, base `{md(model['base_model'])}` ({md(model.get('kind'))}), "
            f"trained on {model.get('n_train') if model.get('n_train') is not None else 'an unrecorded number of'} "
            f"labels ({md(model.get('train_source') or 'human labels')}).\n"
            f"- Decision threshold: {_num(model.get('threshold'))}.\n"
            f"- Agreement with the human label on {ma['n_items']} gold items: "
            f"{_pct(ma['percent_agreement'])} (95 % CI {_ci(ma['percent_agreement_ci'])}), "
            f"Cohen's kappa {_num(ma.get('cohen_kappa'))}. The paper's PubMedBERT classifier reports 81 %."
        )
    elif model:
        classifier_block = (
            f"- Model `{md(model['version'])}`, base `{md(model['base_model'])}` ({md(model.get('kind'))}); "
            f"threshold {_num(model.get('threshold'))}.\n"
            "- No gold item has both a human label and a prediction: agreement with humans is not available."
        )
    else:
        classifier_block = "No classifier predictions in this release."

    share_rows = [
        {
            "benchmark": "**all**" if r["benchmark"] == "all" else md(r["benchmark"]),
            "n": r["n"], "n_predicted": r["n_predicted"],
            "share": _pct(r["reasoning_share"]), "ci": _ci(r["reasoning_share_ci"]),
            "n_human": r["n_human_labeled"], "human_share": _pct(r["human_reasoning_share"]),
        }
        for r in manifest.get("benchmarks", [])
    ]
    sel = manifest.get("selection", {})
    caps = sel.get("caps") or {}
    caps_line = (
        "; at most " + ", ".join(f"{v} from {md(k)}" for k, v in caps.items()) + " (highest `reasoning_prob` first)"
        if caps else ""
    )
    thr = sel.get("train_threshold")
    threshold_rule = (
        f"`reasoning_prob` >= {thr}" if thr is not None else "classifier marks them reasoning-heavy (`is_reasoning`)"
    )
    from curation.release import restriction_note

    license_rows = []
    for b in benchmarks + list(sel.get("excluded_benchmarks") or []):
        note = restriction_note(b) or ""
        if b in (sel.get("excluded_benchmarks") or []):
            note = ("excluded. " + note).strip()
        license_rows.append({"benchmark": md(b), "license": license_of(b), "note": md(note) if note else "redistribution allowed"})
    guidelines = manifest.get("guidelines") or {}
    files = manifest.get("configs", {})
    return {
        "card_data": card_data,
        "pretty_name": card_data.pretty_name,
        "version": md(manifest["version"]),
        "schema_version": manifest["schema_version"],
        "data_as_of": manifest.get("data_as_of") or "unknown",
        "repo_hint": repo_hint or f"exports/{manifest['version']}",
        "n_benchmarks": len(benchmarks),
        "model_line": model_line,
        "configs": [
            {"name": c, "split": files[c]["split"], "rows": files[c]["rows"],
             "what": _CONFIG_WHAT.get(c, f"benchmark `{c}`")}
            for c in order if c in files
        ],
        "guidelines_version": guidelines.get("version") or "not recorded",
        "guidelines_sha256": guidelines.get("sha256"),
        "gold_line": gold_line,
        "suggestions_shown": (manifest.get("annotation") or {}).get("suggestions_shown_outside_gold"),
        "adjudication_rule": (manifest.get("annotation") or {}).get("adjudication_rule", ""),
        "agreement_rows": agreement_rows,
        "n_boot": n_boot,
        "classifier_block": classifier_block,
        "paper_share": "32.8 %",
        "share_rows": share_rows,
        "chart": manifest.get("chart"),
        "threshold_rule": threshold_rule,
        "caps_line": caps_line,
        "decon": manifest["decontamination"],
        "n_capped": sel.get("n_removed_by_caps", 0),
        "train_sources": [
            {"dataset_name": md(r["dataset_name"]), "source": r["source"].replace("`", "'"), "rows": r["rows"]}
            for r in manifest.get("train_sources", [])
        ],
        "license_rows": license_rows,
        "excluded": ", ".join(md(b) for b in sel.get("excluded_benchmarks") or []),
        "requires_private": manifest.get("requires_private", False),
    }


def render_card(manifest: dict[str, Any], repo_hint: str | None = None) -> str:
    """The README.md text of a release (deterministic for a given manifest)."""
    from huggingface_hub import DatasetCard

    ctx = card_context(manifest, repo_hint)
    data = ctx.pop("card_data")
    text = str(DatasetCard.from_template(data, template_path=str(TEMPLATE), **ctx))
    return text if text.endswith("\n") else text + "\n"


def write_share_chart(stats: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """PNG bar chart: reasoning share per benchmark with 95 % CIs and the paper's 32.8 %."""
    import altair as alt
    import vl_convert as vlc

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
    paper = alt.Chart(alt.Data(values=[{"x": 0.328, "label": "paper: 32.8 %"}])).mark_rule(
        color="#e45756", strokeDash=[4, 3]
    ).encode(x="x:Q")
    label = alt.Chart(alt.Data(values=[{"x": 0.328, "label": "paper: 32.8 %"}])).mark_text(
        align="left", dx=4, dy=-6, color="#e45756", baseline="bottom"
    ).encode(x="x:Q", text="label:N", y=alt.value(0))
    chart = (bars + errs + paper + label).properties(
        width=420, height=max(60, 22 * len(rows)), title="Reasoning share per benchmark (95 % CI)"
    )
    spec = chart.to_dict()
    png = vlc.vegalite_to_png(json.dumps(spec, sort_keys=True), scale=2)
    Path(path).write_bytes(png)
