"""A release drops into BioMed-R1 work: scripts written only from BioMed-R1-Eval's and
BioMed-R1-Train's published schemas run unchanged on a release built from the bundled sample
plus synthetic BioMed-R1-format rows (with traces; restricted benchmarks included, so every
one of the paper's 11 configs exists), and re-ingesting a release gives back the same ids
and benchmarks. All question text here is synthetic."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from curation import release
from curation.ingest import ingest_paths, ingest_sample
from curation.store import Store, utcnow
from curation.store import models as mstore

pytestmark = pytest.mark.integration

# The paper's benchmarks the bundled sample lacks, as BioMed-R1-Eval spells them, and MedQA
# 5-option (not in the paper: it keeps its own name and must never merge into `medqa`).
SYNTHETIC_BENCHMARKS = ("GPQA_Medical_test", "Lancet", "NEJM", "hle_biomed", "medbullets_op4", "medbullets_op5",
                        "medqa_op5")


def _eval_rows() -> list[dict[str, Any]]:
    rows = []
    for b in SYNTHETIC_BENCHMARKS:
        n_options = 5 if b.endswith("op5") else 4
        for i in range(3):
            options = {chr(65 + k): f"Synthetic {b} option {k} of item {i}" for k in range(n_options)}
            rows.append({
                "id": str(i), "question": f"Synthetic {b} question number {i}: which option is right?",
                "answer": options["B"], "options": json.dumps(options), "answer_idx": "B", "dataset_name": b,
                # item 0 has three traces, item 1 one, item 2 none (null, as in the paper's files)
                "adversarial_trace_0": f"Synthetic misleading trace 0 for {b} {i}." if i < 2 else None,
                "adversarial_trace_1": f"Synthetic misleading trace 1 for {b} {i}." if i < 1 else None,
                "adversarial_trace_2": f"Synthetic misleading trace 2 for {b} {i}." if i < 1 else None,
                "reasoning_prob": 0.25 * (i + 1), "is_reasoning": 0.25 * (i + 1) >= 0.5, "reasoning_threshold": 0.5,
            })
    # an exact duplicate under another id: merged at ingest, listed in `aliases`
    rows.append({**rows[0], "id": "17"})
    return rows


def _train_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(4):
        options = {"A": f"Synthetic pool answer {i}", "B": "Synthetic distractor", "C": "Another distractor"}
        rows.append({
            "id": f"m23k-{i}", "question": f"Synthetic training pool question {i} about renal physiology?",
            "answer": options["A"], "options": json.dumps(options), "answer_idx": "A", "dataset_name": "m23k",
            "reasoning_prob": 0.9, "reasoning": f"Synthetic reasoning trace {i}: step one, step two." if i != 3 else None,
        })
    return rows


def _score_everything(store: Store) -> None:
    """A model whose predictions cover every question (deterministic, from the id); the
    synthetic pool rows are reasoning-heavy so they reach `biomed_r1`."""

    def work(con: Any) -> None:
        ids = [r[0] for r in con.execute("SELECT id FROM questions ORDER BY id").fetchall()]
        probs = [0.95 if i.startswith("m23k") else int(hashlib.sha256(i.encode()).hexdigest()[:4], 16) / 65535
                 for i in ids]
        mstore.register_model(con, version="m-syn", base_model="tiny", kind="tfidf", path=None, n_train=0,
                              train_source="test", threshold=0.5, metrics={}, created_at=utcnow())
        mstore.write_predictions(con, model_version="m-syn", question_ids=ids, probs=probs, threshold=0.5,
                                 created_at=utcnow())

    store.run(work)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("biomed_r1")
    store = Store(tmp / "store.duckdb")
    ingest_sample(store)
    for name, rows in (("biomed_r1_eval.jsonl", _eval_rows()), ("biomed_r1_train.jsonl", _train_rows())):
        (tmp / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        ingest_paths(store, [tmp / name])
    _score_everything(store)
    manifest = release.build_release(store, version="v2.0", out=tmp / "exports", include_restricted=True,
                                     pool_config=True, chart=False)
    return store, tmp / "exports" / "v2.0", manifest


def _run(script: str, folder: Path, tmp_path: Path) -> dict[str, Any]:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(folder)],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-4000:]
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


# Written only from BioMed-R1-Eval's published schema: its config names, split, fields, dtypes.
EVAL_SCRIPT = """
import json, sys
from datasets import load_dataset

CONFIGS = ["GPQA_Medical_test", "Lancet", "MedXpertQA", "NEJM", "hle_biomed", "medbullets_op4",
           "medbullets_op5", "medmcqa", "medqa", "mmlu_health_biology", "pubmedqa"]
FIELDS = ["id", "question", "answer", "options", "answer_idx", "dataset_name", "adversarial_trace_0",
          "adversarial_trace_1", "adversarial_trace_2", "reasoning_prob", "is_reasoning", "reasoning_threshold"]
DTYPES = {"reasoning_prob": "float64", "is_reasoning": "bool", "reasoning_threshold": "float64"}
report = {}
for config in CONFIGS:
    ds = load_dataset(sys.argv[1], config, split="test")
    assert list(ds.features)[:len(FIELDS)] == FIELDS, (config, list(ds.features))
    for field in FIELDS:
        assert ds.features[field].dtype == DTYPES.get(field, "string"), (config, field, ds.features[field].dtype)
    n_traces = 0
    for row in ds:
        options = json.loads(row["options"])
        assert row["answer_idx"] in options, (config, row["id"])
        traces = [row[f"adversarial_trace_{k}"] for k in range(3)]
        assert all(t is None or isinstance(t, str) for t in traces)
        n_traces += sum(t is not None for t in traces)
        assert isinstance(row["reasoning_prob"], float) and 0.0 <= row["reasoning_prob"] <= 1.0
        assert isinstance(row["is_reasoning"], bool)
        assert row["is_reasoning"] == (row["reasoning_prob"] >= row["reasoning_threshold"])
    report[config] = {"rows": ds.num_rows, "n_traces": n_traces,
                      "first": {k: ds[0][k] for k in ("id", "adversarial_trace_0", "adversarial_trace_2")}}
print(json.dumps(report))
"""

# Written only from BioMed-R1-Train's published schema.
TRAIN_SCRIPT = """
import json, sys
from datasets import load_dataset

FIELDS = ["id", "question", "answer", "options", "answer_idx", "dataset_name", "reasoning_prob", "reasoning"]
report = {}
for config in ("biomed_r1", "m23k_clean"):
    ds = load_dataset(sys.argv[1], config, split="train")
    assert list(ds.features) == FIELDS, (config, list(ds.features))
    assert ds.features["reasoning_prob"].dtype == "float64" and ds.features["reasoning"].dtype == "string"
    traces = {}
    for row in ds:
        assert row["answer_idx"] in json.loads(row["options"])
        traces[row["id"]] = row["reasoning"]
    report[config] = {"rows": ds.num_rows, "traces": {k: v for k, v in traces.items() if k.startswith("m23k")}}
print(json.dumps(report))
"""


def test_biomed_r1_eval_script_runs_unchanged(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    _, folder, manifest = built
    out = _run(EVAL_SCRIPT, folder, tmp_path)
    assert len(out) == 11
    for config, info in out.items():
        assert info["rows"] == manifest["row_counts"][config] > 0, config
    for config in SYNTHETIC_BENCHMARKS[:-1]:  # 3 traces on item 0, 1 on item 1, none on item 2
        assert out[config]["n_traces"] == 4, config
        first = out[config]["first"]
        assert first["adversarial_trace_0"] == f"Synthetic misleading trace 0 for {config} 0."
        assert first["adversarial_trace_2"] == f"Synthetic misleading trace 2 for {config} 0."
    assert out["medqa"]["n_traces"] == 0  # the sample's public MedQA has no traces: null
    assert out["GPQA_Medical_test"]["first"]["id"] == "gpqa-0"
    # MedQA 5-option is its own config, never merged into the paper's 4-option `medqa`
    assert manifest["row_counts"]["medqa_op5"] == 3
    assert manifest["configs"]["medqa_op5"]["benchmark"] == "medqa_op5"


def test_biomed_r1_train_script_runs_unchanged(built: tuple[Store, Path, dict[str, Any]], tmp_path: Path) -> None:
    _, folder, manifest = built
    out = _run(TRAIN_SCRIPT, folder, tmp_path)
    expected = {f"m23k-{i}": f"Synthetic reasoning trace {i}: step one, step two." for i in range(3)} | {"m23k-3": None}
    assert out["biomed_r1"]["traces"] == expected == out["m23k_clean"]["traces"]
    assert out["biomed_r1"]["rows"] == manifest["row_counts"]["biomed_r1"] == manifest["row_counts"]["train_reasoning"]
    assert out["m23k_clean"]["rows"] == manifest["row_counts"]["m23k_clean"] > out["biomed_r1"]["rows"]


def test_aliases_config(built: tuple[Store, Path, dict[str, Any]]) -> None:
    _, folder, manifest = built
    # the contract `curation evaluate` reads
    aliases = pq.read_table(folder / manifest["configs"]["aliases"]["path"]).to_pylist()
    assert {"alias_id": "gpqa-17", "id": "gpqa-0", "dataset_name": "gpqa"} in aliases


def test_reingesting_a_release_gives_the_same_ids_and_benchmarks(
    built: tuple[Store, Path, dict[str, Any]], tmp_path: Path
) -> None:
    store, folder, manifest = built
    again = Store(tmp_path / "again.duckdb")
    configs = manifest["configs"]
    files = [folder / c["path"] for c in configs.values() if c["kind"] == "benchmark"]
    files.append(folder / configs["biomed_r1"]["path"])
    for f in files:
        ingest_paths(again, [f])

    def questions(con: Any) -> dict[str, tuple[str, str, str | None]]:
        rows = con.execute("SELECT id, dataset_name, split, json_extract_string(meta, '$.adversarial_trace_0') "
                           "FROM questions").fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    back = again.run(questions)
    released = {r["id"]: r["dataset_name"] for c in configs.values() if c["kind"] == "benchmark"
                for r in release.read_config(folder, [k for k, v in configs.items() if v is c][0]).to_pylist()}
    train_ids = set(release.read_config(folder, "biomed_r1").column("id").to_pylist())
    assert set(back) == set(released) | train_ids
    assert {i: v[0] for i, v in back.items() if i in released} == released
    original = store.run(questions)
    for i, (bench, split, trace) in back.items():
        assert (bench, split) == original[i][:2], i  # same benchmark, same split as in the first store
        assert trace == original[i][2], i  # traces survive the round trip
    assert back["medqa_op5-0"][0] == "medqa_op5" and back["gpqa-0"][0] == "gpqa"
