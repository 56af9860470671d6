"""Bad input, fuzzed with Hypothesis over every ingest format (jsonl, json, csv, parquet),
plus hand-written cases: `curation ingest` (through Typer's CliRunner) never shows a
traceback, always prints a message naming the file (the location), exits non-zero, and
leaves every table of the store exactly as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relkit import seed_questions, snapshot
from typer.testing import CliRunner

from curation.cli import app
from curation.store import Store

pytestmark = pytest.mark.reliability

FIELDS = ("id", "dataset_name", "split", "question", "options", "answer_idx", "answer", "label",
          "opa", "opb", "cop", "exp", "subject_name", "choices", "target")
EXAMPLES = int(os.environ.get("CURATION_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# A record that can never be valid: it is always added, so no generated file is accepted.
ALWAYS_BAD = {"id": "bad-1", "dataset_name": "medqa", "question": "", "options": {"A": "x"}, "answer_idx": "Z"}

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\ufeff", "\u202e", "<script>alert(1)</script>", "A" * 5000,
                     "NaN", "null", "1e309", "\r\n", "'; DROP TABLE questions; --", "../../etc/passwd"]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), hostile_text)
json_value = st.recursive(json_scalar, lambda c: st.one_of(st.lists(c, max_size=4),
                                                         st.dictionaries(hostile_text, c, max_size=4)),
                          max_leaves=12)
record = st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=len(FIELDS))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, dict[str, Any], Path]:
    db = tmp_path / "store.duckdb"
    monkeypatch.setenv("CURATION_DB", str(db))
    store = Store(db)
    seed_questions(store, 5, prefix="keep", batch_id="b", overlap=1)
    return store, snapshot(store), tmp_path


def _check(env: tuple[Store, dict[str, Any], Path], path: Path, *extra: str) -> None:
    store, before, _ = env
    result = CliRunner().invoke(app, ["ingest", str(path), *extra])
    out = result.output
    assert result.exit_code != 0, f"accepted bad input {path.name}: {out[:500]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception!r}")
    assert "Traceback" not in out, out[:2000]
    assert path.name in out, f"no location in message: {out[:500]}"
    assert snapshot(store) == before, "the store changed after a failed ingest"


@FUZZ
@given(rows=st.lists(st.one_of(record, json_value), max_size=6), junk=st.one_of(st.none(), hostile_text),
       pos=st.integers(0, 6))
def test_fuzz_jsonl(env: Any, rows: list[Any], junk: str | None, pos: int) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(min(pos, len(lines)), json.dumps(ALWAYS_BAD))
    if junk is not None:
        lines.insert(min(pos, len(lines)), junk.replace("\n", " "))
    path = env[2] / "fuzz.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    _check(env, path)


@FUZZ
@given(rows=st.lists(st.one_of(record, json_value), max_size=6), shape=st.sampled_from(["list", "dict", "raw"]),
       raw=hostile_text)
def test_fuzz_json(env: Any, rows: list[Any], shape: str, raw: str) -> None:
    path = env[2] / "fuzz.json"
    if shape == "list":
        text = json.dumps(rows + [ALWAYS_BAD])
    elif shape == "dict":
        text = json.dumps({**{f"k{i}": r for i, r in enumerate(rows)}, "bad": ALWAYS_BAD})
    else:
        text = "{" + raw  # never valid JSON
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(env, path)


@FUZZ
@given(header=st.lists(st.sampled_from(FIELDS), min_size=1, max_size=8),
       cells=st.lists(st.lists(hostile_text, max_size=9), max_size=5), binary=st.binary(max_size=64))
def test_fuzz_csv(env: Any, header: list[str], cells: list[list[str]], binary: bytes) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for row in cells:
        w.writerow(row)
    w.writerow(["bad-1", "", "Z"] + [""] * max(0, len(header) - 3))
    path = env[2] / "fuzz.csv"
    path.write_bytes(buf.getvalue().encode("utf-8", "surrogatepass") + binary)
    _check(env, path)


parquet_col = st.one_of(
    st.lists(st.one_of(st.none(), hostile_text), min_size=2, max_size=2),
    st.lists(st.one_of(st.none(), st.integers(-10, 10)), min_size=2, max_size=2),
    st.lists(st.one_of(st.none(), st.lists(hostile_text, max_size=3)), min_size=2, max_size=2),
)


@FUZZ
@given(cols=st.dictionaries(st.sampled_from(FIELDS), parquet_col, max_size=7), truncate=st.booleans())
def test_fuzz_parquet(env: Any, cols: dict[str, list[Any]], truncate: bool) -> None:
    data = {k: v for k, v in cols.items()}
    data.setdefault("question", ["", None])
    data["question"] = ["", None]  # never valid
    path = env[2] / "fuzz.parquet"
    pq.write_table(pa.table(data), path)
    if truncate:
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    _check(env, path)


HAND_WRITTEN: dict[str, bytes] = {
    "empty.jsonl": b"",
    "bom_only.jsonl": b"\xef\xbb\xbf",
    "latin1.jsonl": '{"id": "x", "question": "caf\xe9"}\n'.encode("latin-1"),
    "nul.jsonl": b'{"id": "a\x00b", "question": "q\x00", "options": {"A": "1", "B": "2"}, "answer_idx": "A"}\n',
    "array_line.jsonl": b"[1, 2, 3]\n",
    "deep.json": b"[" * 100000 + b"]" * 100000,
    "huge_int.json": b'[{"id": 1' + b"0" * 5000 + b', "question": "q?"}]',
    "deep.jsonl": b"[" * 100000 + b"]" * 100000 + b"\n",
    "huge_int.jsonl": b'{"id": 1' + b"0" * 5000 + b', "question": "q?"}\n',
    "deep_cell.csv": b'id,dataset_name,question,options,answer_idx\nx1,medqa,Q?,"' + b"[" * 100000 + b'",A\n',
    "header_only.csv": b"id,question,options\n",
    "ragged.csv": b"id,question\n1,two,three,four\n",
    "not_parquet.parquet": b"PAR1 this is not parquet PAR1",
    "unknown.xlsx": b"PK\x03\x04",
    "dup_ids.jsonl": (json.dumps({"id": "d1", "dataset_name": "medqa", "question": "Q one?", "options": {"A": "a", "B": "b"},
                                  "answer_idx": "A", "answer": "a"}) + "\n"
                      + json.dumps({"id": "d1", "dataset_name": "medqa", "question": "Q two, different?",
                                    "options": {"A": "c", "B": "d"}, "answer_idx": "C", "answer": "c"}) + "\n").encode(),
}


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_bad_files(env: Any, name: str) -> None:
    path = env[2] / name
    path.write_bytes(HAND_WRITTEN[name])
    _check(env, path)


def test_missing_path_and_directory(env: Any) -> None:
    _check(env, env[2] / "does-not-exist.jsonl")
    d = env[2] / "empty_dir.jsonl"
    d.mkdir()
    _check(env, d)


def test_one_bad_file_among_good_ones_writes_nothing(env: Any, sample_rows: list[dict[str, Any]]) -> None:
    store, before, tmp = env
    good = tmp / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in sample_rows[:50]), encoding="utf-8")
    bad = tmp / "bad.jsonl"
    bad.write_text(json.dumps(ALWAYS_BAD) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(good), str(bad)])
    assert result.exit_code != 0 and "bad.jsonl" in result.output
    assert snapshot(store) == before
