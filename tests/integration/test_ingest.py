"""Ingest into a real DuckDB file: every format, dedup, idempotency, and bad input that
must be refused with a located message while the store stays exactly as it was."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.errors import IngestError, InputError
from curation.ingest import ingest_paths, ingest_sample, sample_path
from curation.store import Store
from curation.store import questions as qstore
from tests.conftest import write_jsonl

pytestmark = pytest.mark.integration


def snapshot(store: Store) -> dict[str, Any]:
    """Everything an ingest could change, to prove a failed one changed nothing."""
    if not store.exists():
        return {}

    def read(con: Any) -> dict[str, Any]:
        out = {}
        for table in ("questions", "question_aliases", "annotations", "predictions", "models", "ingests"):
            out[table] = sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        return out

    return store.run(read)


def canonical(i: int, **over: Any) -> dict[str, Any]:
    row = {"id": f"syn-{i}", "dataset_name": "medqa", "question": f"Synthetic question number {i}?",
           "options": {"A": f"alpha {i}", "B": f"beta {i}", "C": "gamma", "D": "delta"},
           "answer_idx": "B", "answer": f"beta {i}", "source": "synthetic"}
    row.update(over)
    return row


def test_bundled_sample_loads_and_reingest_is_idempotent(store: Store) -> None:
    reports = ingest_sample(store)
    assert [r.n_rows for r in reports] == [2670, 3738, 1700]
    assert reports[0].per_dataset == {"medqa": 380, "medmcqa": 799, "pubmedqa": 290,
                                      "mmlu_pro_health_biology": 460, "medxpertqa": 740}
    assert reports[2].n_unchanged == 740 and reports[2].n_new == 960 and reports[2].n_labels == 1700
    stats = store.run(qstore.stats)
    assert stats["questions"] == 2669 + 3729 + 960
    assert stats["labels"]["by_label"] == {"knowledge": 409, "reasoning": 1291}
    before = snapshot(store)
    again = ingest_sample(store)
    assert all(r.n_new == 0 and r.n_duplicates == 0 and r.n_labels == 0 for r in again)
    after = snapshot(store)
    assert before["questions"] == after["questions"] and before["annotations"] == after["annotations"]
    assert len(after["ingests"]) == len(before["ingests"]) + 3  # each call is logged


def test_the_one_real_medmcqa_duplicate_is_merged(store: Store) -> None:
    ingest_paths(store, [sample_path("benchmarks_sample.jsonl")])
    rows = store.run(lambda con: con.execute("SELECT alias_id, question_id FROM question_aliases").fetchall())
    assert len(rows) == 1
    a, b = (store.run(lambda con, i=i: qstore.get_question(con, i)) for i in rows[0])
    assert a["id"] == b["id"]  # the alias resolves to the canonical question


def test_gpqa_repeats_merged_and_counted(store: Store, tmp_path: Path) -> None:
    """GPQA's medical file repeats each question 5 times: merged, counted, idempotent."""
    path = tmp_path / "gpqa_medical.csv"
    cols = ["Record ID", "Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
            "Incorrect Answer 3", "High-level domain"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        for _rep in range(5):
            for i in range(3):
                w.writerow({"Record ID": f"rec{i}", "Question": f"Synthetic GPQA-style question {i}?",
                            "Correct Answer": f"right {i}", "Incorrect Answer 1": "w1",
                            "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3",
                            "High-level domain": "Biology"})
    r = ingest_paths(store, [path])
    assert (r.n_rows, r.n_new, r.n_duplicates) == (15, 3, 12)
    assert store.run(qstore.stats)["duplicates_merged"] == 12
    r2 = ingest_paths(store, [path])
    assert (r2.n_new, r2.n_duplicates, r2.n_unchanged) == (0, 0, 15)
    assert store.run(qstore.stats)["duplicates_merged"] == 12


def test_same_question_under_a_new_id_becomes_an_alias(store: Store, tmp_path: Path) -> None:
    ingest_paths(store, [write_jsonl(tmp_path / "a.jsonl", [canonical(1)])])
    moved = canonical(1, id="other-1", question="  SYNTHETIC question number 1 ? ",
                      options={"A": "delta", "B": "gamma", "C": "beta 1", "D": "alpha 1"},
                      answer_idx="C", answer="beta 1")
    r = ingest_paths(store, [write_jsonl(tmp_path / "b.jsonl", [moved])])
    assert (r.n_new, r.n_duplicates) == (0, 1)
    assert store.run(lambda con: qstore.get_question(con, "other-1"))["id"] == "syn-1"
    # but the same text in another split is kept apart (decontamination handles it)
    r3 = ingest_paths(store, [write_jsonl(tmp_path / "c.jsonl", [canonical(1, id="t-1", split="train")])])
    assert r3.n_new == 1


def test_formats_json_csv_parquet_and_datasets_folder(store: Store, tmp_path: Path) -> None:
    rows = [canonical(i) for i in range(6)]
    jpath = tmp_path / "q.json"
    jpath.write_text(json.dumps(rows[:2]), encoding="utf-8")
    cpath = tmp_path / "q.csv"
    with cpath.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerow({**rows[2], "options": json.dumps(rows[2]["options"])})
    ppath = tmp_path / "q.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "options": json.dumps(r["options"]), "reasoning_prob": 0.7}
                                         for r in rows[3:4]]), ppath)
    import datasets

    folder = tmp_path / "hf"
    datasets.Dataset.from_list(rows[4:6]).save_to_disk(str(folder))
    r = ingest_paths(store, [jpath, cpath, ppath, folder])
    assert r.n_new == 6 and r.n_predictions == 1
    got = store.run(lambda con: qstore.list_questions(con))
    assert {q["id"] for q in got} == {f"syn-{i}" for i in range(6)}
    assert all(q["options"]["B"].startswith("beta") for q in got)


def test_pubmedqa_ori_pqal_file(store: Store, tmp_path: Path, sample_rows: list[dict[str, Any]]) -> None:
    real = [r for r in sample_rows if r["dataset_name"] == "pubmedqa"][:3]
    data = {r["meta"]["orig_id"]: {"QUESTION": r["meta"]["question_stem"],
                                   "CONTEXTS": r["question"].split("\n")[:-1], "LABELS": [],
                                   "final_decision": r["answer"], "LONG_ANSWER": "x", "YEAR": "2000"}
            for r in real}
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    ingest_paths(store, [sample_path("benchmarks_sample.jsonl")])
    r = ingest_paths(store, [path])
    assert (r.n_new, r.n_unchanged) == (0, 3)  # same ids, same text as the bundled rows


def test_a_hub_id_needs_the_network_and_says_so(store: Store) -> None:
    with pytest.raises(IngestError, match="could not load as a Hugging Face dataset"):
        ingest_paths(store, ["zou-lab/BioMed-R1-Eval"])
    assert snapshot(store) == {} or snapshot(store)["questions"] == []


BAD_CASES: list[tuple[str, Any, str]] = [
    ("missing_field", [{k: v for k, v in canonical(1).items() if k != "question"}], ":2: missing field(s) question"),
    ("answer_not_in_options", [canonical(1, answer_idx="F")], ":2: answer_idx 'F' not among options A-D"),
    ("wrong_type_options", [canonical(1), canonical(2, options=["a", "b"])], ":3: options must be an object"),
    ("wrong_type_question", [canonical(1, question=42)], "question must be a string, got int"),
    ("empty_question", [canonical(1, question="   ")], "question is empty"),
    ("huge_question", [canonical(1, question="x" * 10_000_000)], "the limit is 100,000"),
    ("huge_option", [canonical(1, options={"A": "a", "B": "b" * 20_000}, answer="b" * 20_000)], "options[B] is 20,000 characters"),
    ("answer_mismatch", [canonical(1, answer="gamma")], "does not match options[B]"),
    ("dup_id_different_text", [canonical(1), canonical(1, question="Another text?")], ":3: id 'syn-1' already exists earlier in this ingest"),
    ("bad_label", [canonical(1, label="hard")], "label 'hard' is not one of reasoning, knowledge"),
    ("bad_split", [canonical(1, split="holdout")], "split 'holdout' is not one of"),
    ("bad_id", [canonical(1, id="has space")], "has characters outside"),
    ("not_an_object", ["just a string"], ":2: expected a JSON object per line, got str"),
    ("gap_in_letters", [canonical(1, options={"A": "a", "B": "b", "D": "d"}, answer="b")], "must be A-C without gaps"),
    ("bad_prob", [canonical(1, reasoning_prob=2)], "reasoning_prob 2 is not a number between 0 and 1"),
    ("one_option", [canonical(1, options={"A": "a"}, answer_idx="A", answer="a")], "at least 2 are needed"),
]


@pytest.mark.parametrize(("name", "rows", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_records_rejected_with_location_and_store_unchanged(
    store: Store, tmp_path: Path, name: str, rows: list[Any], message: str
) -> None:
    ingest_paths(store, [write_jsonl(tmp_path / "good.jsonl", [canonical(100), canonical(101)])])
    before = snapshot(store)
    path = write_jsonl(tmp_path / f"{name}.jsonl", [canonical(50)] + rows)
    with pytest.raises(InputError) as err:
        ingest_paths(store, [path])
    text = str(err.value)
    assert f"{name}.jsonl:" in text and message in text, text
    assert "Nothing was ingested" in text
    assert snapshot(store) == before


RAW_BAD: list[tuple[str, bytes, str, str]] = [
    ("empty", b"", ".jsonl", "file is empty"),
    ("blank_lines", b"\n\n  \n", ".jsonl", "file is empty"),
    ("non_utf8", json.dumps(canonical(1)).encode() + b"\n" + b'{"id": "x\xff\xfe"}\n', ".jsonl", ":2: not valid UTF-8"),
    ("truncated_line", json.dumps(canonical(1)).encode() + b"\n" + json.dumps(canonical(2)).encode()[:40] + b"\n", ".jsonl", ":2: truncated JSON"),
    ("bad_json_file", b'[{"id": 1,', ".json", "invalid JSON"),
    ("json_scalar", b"42", ".json", "expected a list of question objects"),
    ("csv_extra_cells", b"id,question\nx,q,extra\n", ".csv", ":2: more cells than header columns"),
    ("unsupported", b"hello", ".txt", "unsupported file type .txt"),
    ("bad_parquet", b"PAR1 not really", ".parquet", "not a readable Parquet file"),
]


@pytest.mark.parametrize(("name", "data", "suffix", "message"), RAW_BAD, ids=[c[0] for c in RAW_BAD])
def test_bad_files_rejected_and_store_unchanged(
    store: Store, tmp_path: Path, name: str, data: bytes, suffix: str, message: str
) -> None:
    ingest_paths(store, [write_jsonl(tmp_path / "good.jsonl", [canonical(100)])])
    before = snapshot(store)
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        ingest_paths(store, [path])
    assert message in str(err.value) and name in str(err.value), str(err.value)
    assert snapshot(store) == before


def test_changed_question_under_stored_id_is_refused(store: Store, tmp_path: Path) -> None:
    ingest_paths(store, [write_jsonl(tmp_path / "a.jsonl", [canonical(1)])])
    before = snapshot(store)
    with pytest.raises(InputError, match="already exists in the store with a different question"):
        ingest_paths(store, [write_jsonl(tmp_path / "b.jsonl", [canonical(1, question="Edited?")])])
    assert snapshot(store) == before


def test_one_bad_file_among_several_writes_nothing(store: Store, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [canonical(i) for i in range(10)])
    bad = write_jsonl(tmp_path / "bad.jsonl", [canonical(20, answer_idx="Z")])
    with pytest.raises(InputError, match="bad.jsonl:1"):
        ingest_paths(store, [good, bad])
    assert store.run(lambda con: con.execute("SELECT count(*) FROM questions").fetchall())[0][0] == 0


def test_many_problems_are_all_reported(store: Store, tmp_path: Path) -> None:
    rows = [canonical(i, answer_idx="Q") for i in range(30)]
    with pytest.raises(IngestError) as err:
        ingest_paths(store, [write_jsonl(tmp_path / "many.jsonl", rows)])
    assert len(err.value.problems) == 30 and "and 10 more problem(s)" in str(err.value)


def test_dry_run_writes_nothing(store: Store, tmp_path: Path) -> None:
    r = ingest_paths(store, [write_jsonl(tmp_path / "a.jsonl", [canonical(1), canonical(2)])], dry_run=True)
    assert r.n_new == 2
    assert store.run(lambda con: con.execute("SELECT count(*) FROM questions").fetchall())[0][0] == 0


def test_pubmedqa_questions_of_the_training_pool_cannot_become_evaluation_data(
    store: Store, tmp_path: Path
) -> None:
    """The issue's case: `ingest --sample` stores PQA-L questions in the `train` pool; the
    authors' `ori_pqal.json` (an evaluation set) holding them is refused, naming ids and splits."""
    with sample_path("train_pool_sample.jsonl").open(encoding="utf-8") as fh:
        pool = [r for r in map(json.loads, fh) if r["dataset_name"] == "pubmedqa"][:3]
    data = {r["id"].removeprefix("pubmedqa-"): {
        "QUESTION": r["meta"]["question_stem"], "CONTEXTS": r["question"].split("\n")[:-1],
        "LABELS": [], "final_decision": r["answer"], "LONG_ANSWER": "x", "YEAR": "2000"} for r in pool}
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    ingest_paths(store, [sample_path("train_pool_sample.jsonl")])
    before = snapshot(store)
    with pytest.raises(IngestError) as info:
        ingest_paths(store, [path])
    text = str(info.value)
    assert "3 question(s) would change split ('train' -> 'test': 3)" in text
    assert all(r["id"] in text for r in pool) and "never both training and evaluation" in text
    assert snapshot(store) == before
