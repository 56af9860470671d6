"""`curation evaluate` end to end: a release built from the release fixture, adversarial traces and
an alias table added to it, a generated answers file (plain and per-trace rows, an alias id, an
unknown id, unparsed and missing answers) -> the tables and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from release_fixture import build_store
from typer.testing import CliRunner

from curation import release
from curation.cli import app

pytestmark = pytest.mark.integration

ALIAS = "medqa-merged-900"  # a duplicate merged at ingest into KEPT
KEPT = "medqa-000002"


def _set_traces(folder: Path, manifest: dict[str, Any]) -> None:
    """Every question config: trace 0 on every row, trace 1 on every other id, trace 2 on none."""
    for entry in manifest["configs"].values():
        if entry["kind"] not in ("benchmark", "all", "gold"):
            continue
        path = folder / entry["path"]
        table = pq.read_table(path)
        ids = table.column("id").to_pylist()
        values = {0: ["synthetic misleading trace 0"] * len(ids),
                  1: ["synthetic trace 1" if _has_trace_1(i) else None for i in ids], 2: [None] * len(ids)}
        for k, vals in values.items():
            name = f"adversarial_trace_{k}"
            col = pa.array(vals, pa.string())
            table = (table.set_column(table.schema.get_field_index(name), name, col) if name in table.column_names
                     else table.append_column(name, col))
        pq.write_table(table, path)


def _has_trace_1(qid: str) -> bool:
    return sum(map(ord, qid)) % 2 == 0


def _add_aliases(folder: Path, manifest: dict[str, Any]) -> None:
    rel = "data/aliases/test.parquet"
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"alias_id": [ALIAS], "id": [KEPT], "dataset_name": ["medqa"]}), folder / rel)
    for name in [n for n, e in manifest["configs"].items() if e["kind"] == "aliases"]:
        del manifest["configs"][name]
    manifest["configs"]["aliases"] = {"split": "test", "path": rel, "rows": 1, "kind": "aliases"}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture(scope="module")
def release_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("evaluate")
    store = build_store(tmp)
    release.build_release(store, version="v1", out=tmp / "exports", command=["curation", "release", "build"])
    folder = tmp / "exports" / "v1"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    _set_traces(folder, manifest)
    _add_aliases(folder, manifest)
    return folder


def _answers(folder: Path, path: Path) -> dict[str, Any]:
    """Write an answers file; return what the report must say."""
    rows = release.read_config(folder, "all").to_pylist()
    qids = sorted(r["id"] for r in rows)
    assert KEPT in qids and len(qids) >= 5
    missing, unparsed = qids[0], qids[1]
    lines: list[dict[str, Any]] = []
    expect: dict[str, Any] = {"missing": [missing], "unparsed": [unparsed], "trace_0_missing": [qids[2]]}
    plain_correct = trace0_correct = trace1 = 0
    for j, r in enumerate(sorted(rows, key=lambda r: r["id"])):
        qid, gold = r["id"], r["answer_idx"]
        wrong = next(k for k in json.loads(r["options"]) if k != gold)
        key = ALIAS if qid == KEPT else qid
        if qid == unparsed:
            lines.append({"id": key, "answer": f"Either {gold} or {wrong}, hard to say."})
        elif qid != missing:
            forms = [f"The answer is {gold}.", f"<answer> {gold} </answer>", f"\\boxed{{{gold}}}", f"**{gold}**",
                     f"{gold}) {json.loads(r['options'])[gold]} because it fits the case best"]
            lines.append({"id": key, "answer": forms[j % len(forms)] if j % 3 else f"Answer: {wrong}"})
            plain_correct += bool(j % 3)
        if qid != qids[2]:  # trace 0: every question has it; one answer missing
            ok = j % 2 == 0
            lines.append({"id": key, "trace": 0, "answer": f"Final answer: ({gold if ok else wrong})"})
            trace0_correct += ok
        lines.append({"id": key, "trace": 1, "answer": f"the correct option is {gold}"})
        trace1 += _has_trace_1(qid)
    lines.append({"id": "nobody-999", "answer": "A"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return {**expect, "n": len(qids), "plain_correct": plain_correct, "trace0_correct": trace0_correct,
            "trace1_n": trace1, "no_trace_1": sorted(q for q in qids if not _has_trace_1(q))}


def test_evaluate_reports_adversarial_accuracy_and_lists_ids(release_folder: Path, tmp_path: Path) -> None:
    answers = tmp_path / "answers.jsonl"
    expect = _answers(release_folder, answers)
    report_path = tmp_path / "out" / "report.json"
    res = CliRunner().invoke(app, ["evaluate", str(answers), "--release", str(release_folder),
                                   "--report", str(report_path)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    for title in ("Accuracy on knowledge- vs reasoning-heavy questions", "Adversarial traces", "Coverage per config"):
        assert title in res.output
    assert "1 answer id(s) not in this release (ignored): nobody-999" in res.output
    assert f"{ALIAS} -> {KEPT}" in res.output
    rep = json.loads(report_path.read_text(encoding="utf-8"))
    assert rep["release"] == "v1" and rep["n_questions"] == expect["n"]
    assert rep["settings"] == ["standard", "trace_0", "trace_1", "worst_case"]
    assert rep["ids"]["standard"]["missing"] == expect["missing"]
    assert rep["ids"]["standard"]["unparsed"] == expect["unparsed"]
    assert rep["ids"]["unknown"] == ["nobody-999"]
    assert rep["ids"]["aliased"] == {ALIAS: KEPT}
    assert rep["ids"]["trace_0"]["missing"] == expect["trace_0_missing"]  # missing, not wrong
    assert rep["ids"]["no_trace"]["trace_1"] == expect["no_trace_1"]
    adv = next(e for e in rep["adversarial"] if e["benchmark"] == "all")
    assert adv["standard"]["correct"] == expect["plain_correct"] and adv["standard"]["n"] == expect["n"] - 1
    assert adv["trace_0"]["correct"] == expect["trace0_correct"] and adv["trace_0"]["n"] == expect["n"] - 1
    assert adv["trace_1"]["n"] == adv["trace_1"]["correct"] == expect["trace1_n"]
    assert adv["trace_0"]["drop"]["value"] is not None and adv["worst_case"]["accuracy"] is not None
    lo, hi = adv["trace_0"]["ci"]
    assert 0 <= lo <= adv["trace_0"]["accuracy"] <= hi <= 1
    benches = {e["benchmark"] for e in rep["adversarial"]} - {"all"}
    manifest = release.read_manifest(release_folder)
    assert benches == {n for n, e in manifest["configs"].items() if e["kind"] == "benchmark"}


def test_config_option_and_release_without_alias_table(release_folder: Path, tmp_path: Path) -> None:
    answers = tmp_path / "answers.jsonl"
    _answers(release_folder, answers)
    manifest = release.read_manifest(release_folder)
    bench = next(n for n, e in manifest["configs"].items() if e["kind"] == "benchmark"
                 and KEPT in release.read_config(release_folder, n).column("id").to_pylist())
    res = CliRunner().invoke(app, ["evaluate", str(answers), "--release", str(release_folder), "--config", bench,
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["scope"]["config"] == bench and {r["benchmark"] for r in rep["rows"]} == {bench, "all"}
    assert rep["ids"]["out_of_scope"]  # answers to the other benchmarks' questions
    res = CliRunner().invoke(app, ["evaluate", str(answers), "--release", str(release_folder), "--config", "nope"])
    assert res.exit_code == 2 and "--config 'nope' is not a question config" in res.output
    # the same release without its aliases config: the alias id is unknown, nothing breaks
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "data").symlink_to(release_folder / "data")
    del manifest["configs"]["aliases"]
    (bare / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    res = CliRunner().invoke(app, ["evaluate", str(answers), "--release", str(bare), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert f"2 answer id(s) not in this release (ignored): {ALIAS}, nobody-999" in res.output
