"""Evaluate: score a predictions file against a release (`curation evaluate`).

Reads the files and the release folder, then calls the pure `curation.evaluate.score`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curation.errors import InputError
from curation.evaluate import score
from curation.release.manifest import Manifest


def read_predictions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a predictions JSONL file: one `{"id", "predicted"[, "adversarial"]}` per line."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such predictions file")
    from curation.ingest import read_jsonl

    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for rec in read_jsonl(p):  # located errors for bad bytes, bad JSON, non-objects
        loc, obj, lineno = rec.location, rec.data, int(rec.location.rsplit(":", 1)[1])
        if "id" not in obj or "predicted" not in obj:
            raise InputError("needs fields \"id\" and \"predicted\" (and optionally \"adversarial\")", location=loc)
        qid = str(obj["id"])
        if qid in seen:
            raise InputError(f"id {qid!r} already predicted on line {seen[qid]}", location=loc)
        seen[qid] = lineno
        rows.append({"id": qid, "predicted": obj["predicted"], **({"adversarial": obj["adversarial"]} if "adversarial" in obj else {})})
    if not rows:
        raise InputError(f"{p}: no predictions in the file")
    return rows


def load_release_questions(folder: str | os.PathLike[str]) -> tuple[Manifest, list[dict[str, Any]]]:
    """(manifest, rows of the release's `all` config) — the questions to score against."""
    from curation.release import read_config, read_manifest

    manifest = read_manifest(folder)
    table = read_config(folder, "all").select(["id", "dataset_name", "options", "answer_idx", "is_reasoning"])
    return manifest, table.to_pylist()


def write_chart(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """PNG: accuracy per benchmark on the knowledge and reasoning subsets, with 95 % CIs."""
    from curation import plots

    plots.save_png(plots.accuracy_by_subset(report), path)


def evaluate_file(
    predictions_path: str | os.PathLike[str],
    release_folder: str | os.PathLike[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Read a predictions file and a release folder, return the report (with the release version)."""
    manifest, questions = load_release_questions(release_folder)
    report = score(questions, read_predictions(predictions_path), n_boot=n_boot, seed=seed)
    report["release"] = manifest.get("version")
    return report


