"""The dataset card (README.md) and the reasoning-share chart of a release.

`render_card(manifest)` fills `templates/dataset_card.md` through huggingface_hub's
`DatasetCard.from_template`; the YAML header carries the `configs` (data files per split) that
`datasets.load_dataset(folder, config)` reads, and `dataset_info` (features when the manifest
records them, row counts per config and split). All Markdown lives in the template: this
module only turns the manifest into plain values (numbers formatted, names escaped, local
paths cut to file names). Only numbers, names validated at ingest and fixed text go into
the card: question text never does (it is untrusted). Config names and kinds come from the
manifest (`benchmark`, `all`, `gold`, `train`, `aliases`): none is hard-coded here.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from curation import licenses, paper

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"
CONTACT_ENV = "CURATION_CONTACT"
DEFAULT_CONTACT = "open an issue on the dataset repo"
LABEL_LICENSE = "cc-by-4.0"  # the labels this project creates (not the benchmarks' text)
HUB_URL = "https://huggingface.co/datasets"
TITLE = "Reasoning vs knowledge stratified medical QA"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FILE_SUFFIX = re.compile(r"\.(jsonl?|csv|tsv|parquet|arrow|txt|gz|zst|zip)$", re.IGNORECASE)
_CONFIG_WHAT = {
    "all": "every benchmark above, one row per question",
    "gold": "the human-labeled gold set with every annotator's label",
    "train": "reasoning-heavy training questions, decontaminated",
    "aliases": "ids merged as duplicates at ingest and the id kept for each (answers keyed by an alias still count)",
}
# `annotations_creators` (Hub vocabulary) per annotator expertise (`store.users.EXPERTISE_LEVELS`).
_CREATOR_OF_EXPERTISE = {"expert": "expert-generated", "crowd": "crowdsourced", "student": "other", "unknown": "other"}
_CREATOR_ORDER = ("expert-generated", "crowdsourced", "other", "found", "machine-generated")

# Source benchmarks' BibTeX, keyed by a lower-case `dataset_name` prefix (longest prefix wins,
# like `curation.licenses`). Only entries checked against the papers; a benchmark with none
# here is listed in the card as having no recorded citation (never an invented one).
CITATIONS: dict[str, tuple[str, str]] = {
    "medqa": ("MedQA", """@article{jin2021disease,
  title   = {What Disease Does This Patient Have? A Large-Scale Open Domain Question Answering Dataset from Medical Exams},
  author  = {Jin, Di and Pan, Eileen and Oufattole, Nassim and Weng, Wei-Hung and Fang, Hanyi and Szolovits, Peter},
  journal = {Applied Sciences},
  volume  = {11},
  number  = {14},
  pages   = {6421},
  year    = {2021}
}"""),
    "medmcqa": ("MedMCQA", """@inproceedings{pal2022medmcqa,
  title     = {{MedMCQA}: A Large-scale Multi-Subject Multi-Choice Dataset for Medical domain Question Answering},
  author    = {Pal, Ankit and Umapathi, Logesh Kumar and Sankarasubbu, Malaikannan},
  booktitle = {Proceedings of the Conference on Health, Inference, and Learning},
  series    = {Proceedings of Machine Learning Research},
  volume    = {174},
  pages     = {248--260},
  year      = {2022}
}"""),
    "pubmedqa": ("PubMedQA", """@inproceedings{jin2019pubmedqa,
  title     = {{PubMedQA}: A Dataset for Biomedical Research Question Answering},
  author    = {Jin, Qiao and Dhingra, Bhuwan and Liu, Zhengping and Cohen, William and Lu, Xinghua},
  booktitle = {Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing and the 9th International Joint Conference on Natural Language Processing (EMNLP-IJCNLP)},
  pages     = {2567--2577},
  year      = {2019}
}"""),
    "mmlu": ("MMLU", """@inproceedings{hendrycks2021measuring,
  title     = {Measuring Massive Multitask Language Understanding},
  author    = {Hendrycks, Dan and Burns, Collin and Basart, Steven and Zou, Andy and Mazeika, Mantas and Song, Dawn and Steinhardt, Jacob},
  booktitle = {International Conference on Learning Representations},
  year      = {2021}
}"""),
    "mmlu_pro": ("MMLU-Pro", """@article{wang2024mmlupro,
  title   = {{MMLU-Pro}: A More Robust and Challenging Multi-Task Language Understanding Benchmark},
  author  = {Wang, Yubo and Ma, Xueguang and Zhang, Ge and Ni, Yuansheng and Chandra, Abhranil and Guo, Shiguang and Ren, Weiming and Arulraj, Aaran and He, Xuan and Jiang, Ziyan and others},
  journal = {arXiv preprint arXiv:2406.01574},
  year    = {2024}
}"""),
    "gpqa": ("GPQA", """@inproceedings{rein2024gpqa,
  title     = {{GPQA}: A Graduate-Level Google-Proof {Q\\&A} Benchmark},
  author    = {Rein, David and Hou, Betty Li and Stickland, Asa Cooper and Petty, Jackson and Pang, Richard Yuanzhe and Dirani, Julien and Michael, Julian and Bowman, Samuel R.},
  booktitle = {First Conference on Language Modeling},
  year      = {2024}
}"""),
    "medxpertqa": ("MedXpertQA", """@article{zuo2025medxpertqa,
  title   = {{MedXpertQA}: Benchmarking Expert-Level Medical Reasoning and Understanding},
  author  = {Zuo, Yuxin and Qu, Shang and Li, Yifei and Chen, Zhangren and Zhu, Xuekai and Hua, Ermo and Zhang, Kaiyan and Ding, Ning and Zhou, Bowen},
  journal = {arXiv preprint arXiv:2501.18362},
  year    = {2025}
}"""),
    "medbullets": ("MedBullets", """@article{chen2024benchmarking,
  title   = {Benchmarking Large Language Models on Answering and Explaining Challenging Medical Questions},
  author  = {Chen, Hanjie and Fang, Zhouxiang and Singla, Yash and Dredze, Mark},
  journal = {arXiv preprint arXiv:2402.18060},
  year    = {2024}
}"""),
    "hle": ("Humanity's Last Exam", """@article{phan2025hle,
  title   = {Humanity's Last Exam},
  author  = {Phan, Long and others},
  journal = {arXiv preprint arXiv:2501.14249},
  year    = {2025}
}"""),
}
CITATIONS["mmlu_health_biology"] = CITATIONS["mmlu_pro"]  # BioMed-R1-Eval's name for MMLU-Pro health/biology


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


def public_source(source: Any) -> str:
    """A row source as the card may show it: URLs and Hub ids as they are, any file path cut
    to its file name (a maintainer's local path never reaches a published card)."""
    text = str(source or "").strip()
    if "://" in text or (_HUB_ID.match(text) and not _FILE_SUFFIX.search(text)):
        return text
    name = PureWindowsPath(text).name if "\\" in text or re.match(r"^[A-Za-z]:", text) else PurePosixPath(text).name
    return name or text


def contact_from(option: str | None = None) -> str | None:
    """The contact a build records: the option, else `$CURATION_CONTACT`, else None (the card
    then says to open an issue on the dataset repo)."""
    value = (option if option is not None else os.environ.get(CONTACT_ENV, "")).strip()
    return value or None


def expertise_counts(annotators: Iterable[str], expertise: Mapping[str, str]) -> dict[str, int]:
    """{expertise level: number of annotators} for the people whose labels are in a release
    (`expertise`: `store.users.expertise_by_user`; a name with no account is 'unknown')."""
    return dict(sorted(Counter(expertise.get(a) or "unknown" for a in set(annotators)).items()))


def _has_human_labels(manifest: Mapping[str, Any]) -> bool:
    agr = (manifest.get("annotation") or {}).get("agreement") or {}
    return bool(agr.get("raters_total")) or any(r.get("n_human_labeled") for r in manifest.get("benchmarks", []))


def annotations_creators(manifest: Mapping[str, Any]) -> list[str]:
    """Hub `annotations_creators` from who made the labels in the release: people by their
    recorded expertise (`expert-generated` only when every one is an expert), `found` for
    benchmarks' own tags, `machine-generated` for classifier predictions."""
    counts = (manifest.get("annotation") or {}).get("annotator_expertise")
    if counts is None:  # expertise not recorded (older manifest): people count as 'other'
        counts = {"unknown": 1} if _has_human_labels(manifest) else {}
    kinds = {_CREATOR_OF_EXPERTISE.get(level, "other") for level, n in counts.items() if n}
    if ((manifest.get("provenance") or {}).get("reference_sources")):
        kinds.add("found")
    if manifest.get("model"):
        kinds.add("machine-generated")
    return [k for k in _CREATOR_ORDER if k in kinds] or ["no-annotation"]


def _dataset_info(configs: Mapping[str, Any], order: list[str]) -> list[dict[str, Any]]:
    """`dataset_info` per config: features (datasets' YAML list) when the manifest has them,
    and the rows of its split (what `datasets` checks a download against)."""
    out = []
    for c in order:
        entry: dict[str, Any] = {"config_name": c}
        if configs[c].get("features"):
            entry["features"] = configs[c]["features"]
        entry["splits"] = [{"name": configs[c]["split"], "num_examples": configs[c]["rows"]}]
        out.append(entry)
    return out


def _card_data(manifest: Mapping[str, Any], order: list[str], benchmarks: list[str]) -> Any:
    from huggingface_hub import DatasetCardData

    configs = manifest["configs"]
    total = sum(configs[c]["rows"] for c in order if configs[c]["kind"] in ("all", "train"))
    return DatasetCardData(
        pretty_name=f"{TITLE} ({manifest['version']})",
        language=["en"],
        license=sorted({licenses.license_of(b) for b in benchmarks}) or ["unknown"],
        task_categories=["question-answering", "multiple-choice", "text-classification"],
        task_ids=["multiple-choice-qa", "closed-domain-qa", "multi-class-classification"],
        size_categories=[_size_category(total)],
        annotations_creators=annotations_creators(manifest),
        language_creators=["found"],
        multilinguality=["monolingual"],
        source_datasets=[f"extended|{b}" for b in benchmarks] or ["original"],
        tags=["medical", "reasoning", "biomedical-qa"],
        configs=[
            {"config_name": c, "data_files": [{"split": configs[c]["split"], "path": configs[c]["path"]}],
             **({"default": True} if configs[c]["kind"] == "all" else {})}
            for c in order
        ],
        dataset_info=_dataset_info(configs, order),
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
        "version": md(m["version"]), "base": md(public_source(m["base_model"])), "kind": md(m.get("kind")),
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


def _citation_of(name: str) -> tuple[str, str] | None:
    low = name.lower()
    best = max((k for k in CITATIONS if low.startswith(k)), key=len, default="")
    return CITATIONS[best] if best else None


def _citations(names: Iterable[str]) -> dict[str, Any]:
    """BibTeX of the source benchmarks (one entry per paper) and the names without one."""
    entries: dict[str, dict[str, Any]] = {}
    missing = []
    for n in sorted(set(names)):
        c = _citation_of(n)
        if c is None:
            missing.append(md(n))
            continue
        entries.setdefault(c[1], {"paper": c[0], "names": [], "bibtex": c[1]})["names"].append(md(n))
    return {"entries": sorted(entries.values(), key=lambda e: e["paper"]), "missing": missing}


def _self_citation(manifest: Mapping[str, Any], repo_id: str | None, revision: str | None) -> str:
    """A BibTeX entry for this release (title, version, year, url when published)."""
    version = str(manifest["version"])
    year = str(manifest.get("data_as_of") or "")[:4]
    key = re.sub(r"[^a-z0-9]+", "_", f"reasoning_knowledge_medqa_{version}".lower()).strip("_")
    fields = [("title", f"{{{TITLE}}}"), ("version", version)]
    if year.isdigit():
        fields.append(("year", year))
    if repo_id:
        fields.append(("url", f"{HUB_URL}/{repo_id}"))
        fields.append(("note", f"Hugging Face dataset, revision {revision or version}"))
    width = max(len(k) for k, _ in fields)
    body = ",\n".join(f"  {k.ljust(width)} = {{{v}}}" for k, v in fields)
    return f"@misc{{{key},\n{body}\n}}"


def _changes(changes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The manifest's `changes` (`curation.release.diff.diff_releases`) as card rows."""
    if not changes:
        return None
    configs = [{"name": md(c), "status": v["status"], "old": v.get("rows_old"), "new": v.get("rows_new"),
                "added": v.get("added", 0), "removed": v.get("removed", 0)}
               for c, v in changes.get("configs", {}).items()]
    lab = changes.get("labels") or {}
    model = changes.get("model") or {}
    return {
        "previous": md((changes.get("old") or {}).get("version") or "the previous release"),
        "configs": configs,
        "n_compared": lab.get("n_compared", 0),
        "fields": [{"field": f, "n": v["n"]} for f, v in (lab.get("fields") or {}).items()],
        "by_benchmark": [{"name": md(b), "counts": ", ".join(f"{f} {n}" for f, n in v.items())}
                         for b, v in (lab.get("by_benchmark") or {}).items()],
        "by_label_source": [{"name": md(b), "counts": ", ".join(f"{f} {n}" for f, n in v.items())}
                            for b, v in (lab.get("by_label_source") or {}).items()],
        "model_changed": bool(model.get("changed")),
        "model_old": {k: md(v) for k, v in (model.get("old") or {}).items() if v is not None},
        "model_new": {k: md(v) for k, v in (model.get("new") or {}).items() if v is not None},
    }


def _snippet(configs: Mapping[str, Any], order: list[str]) -> list[dict[str, str]]:
    """Configs for the load snippet: the all-benchmark one, one benchmark, the training set."""
    picks: list[tuple[str, str]] = []
    for kind, note in (("all", "every benchmark"), ("benchmark", "one benchmark"), ("train", "training set")):
        name = next((c for c in order if configs[c]["kind"] == kind), None)
        if name is not None:
            picks.append((name, note))
    return [{"name": c, "split": configs[c]["split"], "note": note} for c, note in picks]


_KIND_ORDER = ("benchmark", "all", "gold", "train", "pool", "aliases")


def config_order(configs: Mapping[str, Any]) -> list[str]:
    """The card's config order: by kind (`_KIND_ORDER`, unknown kinds last), then by name, so
    the card is the same whether the manifest comes from the build or back from JSON."""
    def key(c: str) -> tuple[int, bool, str]:
        kind = configs[c]["kind"]
        # our own training config before BioMed-R1-Train's shape of the same rows
        return (_KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER), c != "train_reasoning", c.lower())
    return sorted(configs, key=key)


def card_context(manifest: Mapping[str, Any], *, repo_id: str | None = None,
                 revision: str | None = None) -> dict[str, Any]:
    """Template variables from a manifest (pure). `repo_id`/`revision`: the Hub repo and tag
    the card is published to (the load snippet names them); None for the local folder."""
    configs = manifest["configs"]
    order = config_order(configs)
    benchmarks = [c for c in order if configs[c]["kind"] == "benchmark"]
    sel = manifest.get("selection", {})
    excluded = list(sel.get("excluded_benchmarks") or [])
    annotation = manifest.get("annotation") or {}
    agr = annotation.get("agreement") or {}
    guidelines = manifest.get("guidelines") or {}
    train_sources = manifest.get("train_sources", [])
    expertise = annotation.get("annotator_expertise")
    return {
        "card_data": _card_data(manifest, order, benchmarks),
        "pretty_name": f"{TITLE} ({manifest['version']})",
        "version": md(manifest["version"]),
        "schema_version": manifest["schema_version"],
        "data_as_of": manifest.get("data_as_of") or "unknown",
        "repo_hint": repo_id or f"path/to/{manifest['version']}",
        "published": repo_id is not None,
        "revision": revision,
        "snippet": _snippet(configs, order),
        "n_benchmarks": len(benchmarks),
        "model": _model(manifest),
        "configs": [{"name": c, "split": configs[c]["split"], "rows": configs[c]["rows"],
                     "what": md(configs[c]["description"]) if configs[c].get("description")
                     else _CONFIG_WHAT.get(configs[c]["kind"], f"benchmark `{c}`")}
                    for c in order],
        "guidelines_version": guidelines.get("version") or "not recorded",
        "guidelines_sha256": guidelines.get("sha256"),
        "gold": {"n_items": (agr.get("overall") or {}).get("n_items"), "n_raters": agr.get("raters_total"),
                 "per_item": agr.get("mean_annotators_per_item")} if agr else None,
        "suggestions_shown": annotation.get("suggestions_shown_outside_gold"),
        "adjudication_rule": annotation.get("adjudication_rule", ""),
        "expertise": None if expertise is None else [{"level": md(k), "n": v} for k, v in sorted(expertise.items())],
        "annotations_creators": ", ".join(annotations_creators(manifest)),
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
        "train_configs": ", ".join(f"`{c}`" for c in order if configs[c]["kind"] == "train"),
        "train_threshold": sel.get("train_threshold"),
        "caps": [{"benchmark": md(k), "cap": v} for k, v in (sel.get("caps") or {}).items()],
        "decon": manifest["decontamination"],
        "n_capped": sel.get("n_removed_by_caps", 0),
        "train_sources": [
            {"dataset_name": md(r["dataset_name"]), "source": public_source(r["source"]).replace("`", "'"), "rows": r["rows"]}
            for r in train_sources
        ],
        "license_rows": _license_rows(benchmarks, excluded),
        "label_license": LABEL_LICENSE,
        "excluded": ", ".join(md(b) for b in excluded),
        "requires_private": manifest.get("requires_private", False),
        "citations": _citations([*benchmarks, *(r["dataset_name"] for r in train_sources)]),
        "self_citation": _self_citation(manifest, repo_id, revision),
        "contact": md(manifest.get("contact") or DEFAULT_CONTACT),
        "changes": _changes(manifest.get("changes")),
    }


def render_card(manifest: Mapping[str, Any], *, repo_id: str | None = None, revision: str | None = None) -> str:
    """The README.md text of a release (deterministic for a given manifest); with `repo_id`
    and `revision`, the text published to the Hub (its load snippet pins that tag)."""
    from huggingface_hub import DatasetCard

    ctx = card_context(manifest, repo_id=repo_id, revision=revision)
    data = ctx.pop("card_data")
    text = str(DatasetCard.from_template(data, template_path=str(TEMPLATE), **ctx))
    return text if text.endswith("\n") else text + "\n"


def config_features(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The features of a written config file as `datasets` writes them in a card's
    `dataset_info` (for the manifest's `configs[name]["features"]`)."""
    import pyarrow.parquet as pq
    from datasets import Features

    yaml_list: list[dict[str, Any]] = Features.from_arrow_schema(pq.read_schema(path))._to_yaml_list()
    return yaml_list


def write_share_chart(stats: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """PNG bar chart: reasoning share per benchmark with 95 % CIs and the paper's share."""
    from curation import plots

    plots.save_png(plots.share_chart(stats), path)
