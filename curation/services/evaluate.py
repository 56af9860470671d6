"""Evaluate: score an answers file against a release (`curation evaluate`).

Reads the answers file and the release folder, then calls the pure `curation.evaluate.score`.

The answers file is JSONL, one object per line:

    {"id": "medqa-000001", "answer": "The answer is B"}              # the plain question
    {"id": "medqa-000001", "answer": "<answer>C</answer>", "trace": 0}  # with adversarial_trace_0

`answer` (or `predicted`, its earlier name) is the model's raw output; `trace` is 0, 1 or 2
(absent or null: the plain question). An id has at most one answer per trace. Ids may be the
kept id of a question or an alias listed in the release's `aliases` config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curation.errors import InputError
from curation.evaluate import EVAL_KINDS, TRACES, score
from curation.release.manifest import Manifest

QUESTION_COLUMNS = ("id", "dataset_name", "options", "answer_idx", "is_reasoning", "human_label",
                    *(f"adversarial_trace_{k}" for k in TRACES))


def _answer_row(obj: Mapping[str, Any], loc: str) -> dict[str, Any]:
    if "adversarial" in obj:
        raise InputError('field "adversarial" is not read: give each adversarial answer as its own row '
                         '{"id", "answer", "trace": 0|1|2} (the release\'s adversarial_trace_k it was asked with)',
                         location=loc)
    if "id" not in obj or ("answer" in obj) == ("predicted" in obj):
        raise InputError('needs fields "id" and "answer" (or "predicted", not both), and optionally "trace": 0|1|2',
                         location=loc)
    qid = obj["id"]
    if not isinstance(qid, str | int) or isinstance(qid, bool) or str(qid).strip() == "":
        raise InputError(f'"id" must be a non-empty string, got {qid!r}', location=loc)
    trace = obj.get("trace")
    if trace is not None and (isinstance(trace, bool) or trace not in TRACES):
        raise InputError(f'"trace" must be 0, 1, 2 or null (the adversarial_trace_k the model saw), got {trace!r}',
                         location=loc)
    output = obj["answer"] if "answer" in obj else obj["predicted"]
    if output is not None and not isinstance(output, str | int):
        raise InputError(f'"answer" must be the model\'s output as a string, got {type(output).__name__}', location=loc)
    return {"id": str(qid), "answer": output, "trace": trace}


def read_answers(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an answers JSONL file (see the module docstring) into rows `{id, answer, trace}`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such answers file")
    if not p.read_bytes().strip():
        raise InputError(f"{p}: no answers in the file (expected one JSON object per line)")
    from curation.readers import read_jsonl

    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, Any], int] = {}
    for rec in read_jsonl(p):  # located errors for bad bytes, bad JSON, non-objects
        loc, lineno = rec.location, int(rec.location.rsplit(":", 1)[1])
        row = _answer_row(rec.data, loc)
        key = (row["id"], row["trace"])
        if key in seen:
            what = "the plain question" if row["trace"] is None else f"trace {row['trace']}"
            raise InputError(f"id {row['id']!r} already answered for {what} on line {seen[key]}", location=loc)
        seen[key] = lineno
        rows.append(row)
    if not rows:
        raise InputError(f"{p}: no answers in the file")
    return rows


read_predictions = read_answers  # the earlier name


def load_release(folder: str | os.PathLike[str]) -> tuple[Manifest, list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """(manifest, question rows, {config: {kind, ids}} of the question configs, {alias id: kept id})."""
    import pyarrow.parquet as pq

    from curation.release import read_manifest

    manifest = read_manifest(folder)
    entries = manifest.get("configs") or {}
    configs: dict[str, dict[str, Any]] = {}
    for name, entry in entries.items():
        if entry.get("kind") in EVAL_KINDS:
            configs[name] = {"kind": entry["kind"], "ids": pq.read_table(Path(folder) / entry["path"], columns=["id"])
                             .column("id").to_pylist()}
    sources = [n for n, e in entries.items() if e.get("kind") == "all"] or [n for n, e in entries.items()
                                                                            if e.get("kind") == "benchmark"]
    if not sources:
        raise InputError(f"{folder}: the manifest lists no `all` or benchmark config to score against")
    questions: dict[str, dict[str, Any]] = {}
    for name in sources:
        path = Path(folder) / entries[name]["path"]
        names = pq.read_schema(path).names
        missing = [c for c in QUESTION_COLUMNS[:4] if c not in names]
        if missing:
            raise InputError(f"{path}: config {name!r} has no column(s) {', '.join(missing)}; rebuild the release")
        for row in pq.read_table(path, columns=[c for c in QUESTION_COLUMNS if c in names]).to_pylist():
            questions.setdefault(str(row["id"]), row)
    aliases: dict[str, str] = {}
    alias_entry = next((e for e in entries.values() if e.get("kind") == "aliases"), None)
    if alias_entry is not None:
        path = Path(folder) / alias_entry["path"]
        table = pq.read_table(path)
        if not {"alias_id", "id"} <= set(table.column_names):
            raise InputError(f"{path}: the aliases config needs columns alias_id and id, has {', '.join(table.column_names)}")
        aliases = {str(a): str(k) for a, k in zip(table.column("alias_id").to_pylist(), table.column("id").to_pylist(),
                                                   strict=True)}
    return manifest, list(questions.values()), configs, aliases


def write_chart(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """PNG: accuracy per benchmark on the knowledge and reasoning subsets, with 95 % CIs."""
    from curation import plots

    plots.save_png(plots.accuracy_by_subset(report), path)


def evaluate_file(
    answers_path: str | os.PathLike[str],
    release_folder: str | os.PathLike[str],
    *,
    config: str | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Read an answers file and a release folder, return the report (with the release version)."""
    answers = read_answers(answers_path)
    manifest, questions, configs, aliases = load_release(release_folder)
    report = score(questions, answers, configs=configs, aliases=aliases, config=config, alpha=alpha)
    report["release"] = manifest.get("version")
    report["alias_table"] = any(e.get("kind") == "aliases" for e in (manifest.get("configs") or {}).values())
    return report
