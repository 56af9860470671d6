"""An ingest never holds the store long, yet appears whole or not at all (issue #19).

The rows are written in bounded holds under a pending ingest id that the `questions` view
hides; the last hold shows them at once. A killed ingest's rows are never shown and are
deleted by the next ingest. A split conflict is an error, or a move with --move-split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from curation import ingest
from curation.cli import app
from curation.errors import IngestError
from curation.store import Store

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "ui" / "app.py")


def _write(path: Path, n: int, *, prefix: str = "c", split: str | None = None) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            row: dict[str, Any] = {"id": f"{prefix}-{i}", "dataset_name": "medqa", "question": f"Question {prefix} {i}?",
                                   "options": {"A": f"yes {i}", "B": f"no {i}"}, "answer_idx": "A"}
            if split:
                row["split"] = split
            f.write(json.dumps(row) + "\n")
    return path


def _counts(store: Store) -> tuple[int, int, int]:
    """(visible questions, stored question rows, pending ingests)."""
    return store.run(lambda con: con.execute(
        "SELECT (SELECT count(*) FROM questions), (SELECT count(*) FROM question_rows), "
        "(SELECT count(*) FROM pending_ingests)").fetchall()[0])


def test_rows_are_staged_in_bounded_holds_and_hidden_until_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_location: str
) -> None:
    store = Store(db_location, create=True)
    ingest.ingest_paths(store, [_write(tmp_path / "first.jsonl", 10, prefix="old")])
    monkeypatch.setattr(ingest, "STAGE_CHUNK", 500)
    monkeypatch.setattr(ingest, "LOOKUP_CHUNK", 700)
    holds: list[str] = []
    seen_before_swap: list[tuple[int, int]] = []
    real_stage, real_swap = ingest.qstore.stage, ingest._Job._swap

    def stage(con: Any, *a: Any, **k: Any) -> None:
        holds.append("stage")
        real_stage(con, *a, **k)

    def swap(self: Any, con: Any, *a: Any) -> bool:
        # inside the last hold, before it shows anything: the new rows are stored, not visible
        seen_before_swap.append(con.execute(
            "SELECT (SELECT count(*) FROM questions), (SELECT count(*) FROM question_rows)").fetchall()[0])
        return real_swap(self, con, *a)

    monkeypatch.setattr(ingest.qstore, "stage", stage)
    monkeypatch.setattr(ingest._Job, "_swap", swap)
    report = ingest.ingest_paths(store, [_write(tmp_path / "big.jsonl", 2600)])
    assert report.n_new == 2600
    assert holds == ["stage"] * 6  # 2600 rows in holds of at most 500
    assert seen_before_swap == [(10, 2610)]
    assert _counts(store) == (2610, 2610, 0)


def test_a_killed_ingest_shows_nothing_and_the_next_one_cleans_up(tmp_path: Path, db_location: str) -> None:
    """On PostgreSQL the killed ingest could have run on another host: its rows are known to be
    abandoned because the server connection that owned them is gone, not by a local pid."""
    db = db_location
    Store(db, create=True).run(lambda con: None)
    big = _write(tmp_path / "big.jsonl", 3000, prefix="k")
    script = textwrap.dedent(f"""
        import os, signal
        from curation import ingest
        from curation.store import Store
        ingest.STAGE_CHUNK = 1000
        real = ingest.qstore.stage
        calls = []
        def stage(con, *a, **k):
            calls.append(1)
            if len(calls) == 3:  # two chunks committed, the third never
                os.kill(os.getpid(), signal.SIGKILL)
            real(con, *a, **k)
        ingest.qstore.stage = stage
        ingest.ingest_paths(Store({str(db)!r}), [{str(big)!r}])
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    store = Store(db)
    assert _counts(store) == (0, 2000, 1)  # two chunks stored, none shown
    report = ingest.ingest_paths(store, [_write(tmp_path / "small.jsonl", 5, prefix="s")])
    assert report.n_new == 5
    assert _counts(store) == (5, 5, 0)  # the dead ingest's rows are gone
    report = ingest.ingest_paths(store, [big])  # and the killed file ingests whole
    assert report.n_new == 3000 and _counts(store) == (3005, 3005, 0)


def test_split_conflict_is_an_error_or_an_explicit_move(tmp_path: Path, db_location: str) -> None:
    db = db_location
    store = Store(db, create=True)
    ingest.ingest_paths(store, [_write(tmp_path / "pool.jsonl", 6, prefix="p", split="train")])
    evaluation = _write(tmp_path / "eval.jsonl", 4, prefix="p", split="test")
    with pytest.raises(IngestError) as err:
        ingest.ingest_paths(store, [evaluation])
    first = str(err.value).splitlines()[0]
    assert first.startswith("4 question(s) would change split ('train' -> 'test': 4): p-0, p-1, p-2, p-3") and "--move-split" in first
    result = CliRunner().invoke(app, ["ingest", str(evaluation), "--move-split", "--dry-run", "--db", str(db)])
    assert result.exit_code == 0 and "would move 4 question(s) between splits: 'train' -> 'test'" in result.output
    assert store.run(lambda con: con.execute("SELECT count(*) FROM questions WHERE split = 'test'").fetchall()[0][0]) == 0
    result = CliRunner().invoke(app, ["ingest", str(evaluation), "--move-split", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "moved 4 question(s) between splits: 'train' -> 'test'" in result.output
    splits = dict(store.run(lambda con: con.execute("SELECT split, count(*) FROM questions GROUP BY split").fetchall()))
    assert splits == {"train": 2, "test": 4}
    # an ingest that disagrees with itself about one id's split stays an error, even with --move-split
    both = tmp_path / "both.jsonl"
    both.write_text(_write(tmp_path / "a.jsonl", 1, prefix="p", split="train").read_text()
                    + _write(tmp_path / "b.jsonl", 1, prefix="p", split="dev").read_text(), encoding="utf-8")
    with pytest.raises(IngestError, match="earlier in this ingest"):
        ingest.ingest_paths(store, [both], move_split=True)


def test_the_app_says_when_its_store_is_missing_and_creates_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "typo" / "nope.duckdb"
    monkeypatch.setenv("CURATION_DB", str(missing))
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key="login_name").input("someone")
    at.text_input(key="login_password").input("password-1")
    at.button[0].click().run()
    assert not at.exception
    assert any("no store here" in e.value and "curation store init" in e.value for e in at.error), [e.value for e in at.error]
    assert not missing.exists() and not missing.parent.exists()
    assert not os.path.exists(str(missing) + ".wal")


def test_a_large_scoring_is_written_in_chunks_and_shown_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_location: str
) -> None:
    from curation.services import learn
    from curation.store import models as sm

    store = Store(db_location, create=True)
    monkeypatch.setattr(learn, "PREDICTION_CHUNK", 3)
    ids, probs = [f"q{i}" for i in range(10)], [i / 10 for i in range(10)]
    visible_while_writing: list[int] = []
    real = sm.write_predictions

    def write(con: Any, **k: Any) -> int:
        visible_while_writing.append(con.execute("SELECT count(*) FROM predictions WHERE model_version = 'm1'").fetchall()[0][0])
        return real(con, **k)

    monkeypatch.setattr(sm, "write_predictions", write)
    registered: list[str] = []
    learn.write_scores(store, "m1", ids, probs, 0.5, register=lambda con: registered.append("m1"))
    assert visible_while_writing == [0, 0, 0, 0]  # 4 holds, nothing shown before the last one ends
    assert registered == ["m1"]
    assert store.run(lambda con: sm.predictions(con, "m1"))["q9"]["is_reasoning"] is True
    assert len(store.run(lambda con: sm.predictions(con, "m1"))) == 10

    def fail(con: Any) -> None:
        raise RuntimeError("registration failed")

    with pytest.raises(RuntimeError):
        learn.write_scores(store, "m2", ids, probs, 0.5, register=fail)
    rows = store.run(lambda con: con.execute(
        "SELECT (SELECT count(*) FROM prediction_rows WHERE model_version = 'm2'), "
        "(SELECT count(*) FROM pending_predictions)").fetchall()[0])
    assert rows == (0, 0)  # a failed first scoring leaves nothing, shown or hidden
