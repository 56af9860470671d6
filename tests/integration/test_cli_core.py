"""The CLI through Typer's CliRunner: ingest, stats, errors, and --help everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from curation.cli import app
from tests.conftest import write_jsonl

pytestmark = pytest.mark.integration
runner = CliRunner()


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for cmd in group.registered_commands:
        out.append((*prefix, cmd.name or cmd.callback.__name__))  # type: ignore[union-attr]
    for sub in group.registered_groups:
        name = sub.name or ""
        out.append((*prefix, name))
        out.extend(_commands(sub.typer_instance, (*prefix, name)))  # type: ignore[arg-type]
    return out


def test_every_command_explains_itself() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "reasoning-heavy" in result.output
    commands = _commands(app)
    assert ("ingest",) in commands and ("stats",) in commands
    for cmd in commands:
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
        assert "Usage:" in result.output
        # a docstring-derived summary is shown, not just the usage line
        assert len(result.output.strip().splitlines()) > 4, cmd


def test_ingest_and_stats_json(cli_env: Path, tmp_path: Path) -> None:
    rows = [{"id": f"c-{i}", "dataset_name": "medqa", "question": f"Q {i}?",
             "options": {"A": "a", "B": "b"}, "answer_idx": "A", "answer": "a", "source": "t"}
            for i in range(3)]
    path = write_jsonl(tmp_path / "q.jsonl", rows)
    result = runner.invoke(app, ["ingest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["n_new"] == 3
    result = runner.invoke(app, ["stats", "--json"])
    data = json.loads(result.output)
    assert data["questions"] == 3 and data["per_benchmark"][0]["dataset_name"] == "medqa"
    table = runner.invoke(app, ["stats"])
    assert table.exit_code == 0 and "medqa" in table.output


def test_bad_input_exits_nonzero_with_location_and_no_traceback(cli_env: Path, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "dataset_name": "medqa", "question": "q",
                                                 "options": {"A": "a", "B": "b"}, "answer_idx": "F"}])
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 2
    assert "bad.jsonl:1: answer_idx 'F' not among options A-B" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "no such file or directory" in result.output


def test_unknown_benchmark_is_named(cli_env: Path, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "q"}])
    result = runner.invoke(app, ["ingest", str(path), "--benchmark", "nope"])
    assert result.exit_code == 2 and "unknown --benchmark 'nope'" in result.output


def test_stats_shows_reasoning_share_with_wilson_ci(cli_env: Path, tmp_path: Path) -> None:
    from curation.store import Store, utcnow

    rows = [{"id": f"c-{i}", "dataset_name": "medqa", "question": f"Q {i}?",
             "options": {"A": "a", "B": "b"}, "answer_idx": "A", "answer": "a", "source": "t"}
            for i in range(10)]
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "q.jsonl", rows))])
    now = utcnow()

    def add(con):  # type: ignore[no-untyped-def]
        con.execute("INSERT INTO models (version, base_model, kind, threshold, created_at) VALUES ('m1','tfidf','tfidf',0.5,?)", [now])
        for i in range(10):
            con.execute("INSERT INTO prediction_rows VALUES ('m1', ?, ?, ?, 0.5, ?)", [f"c-{i}", 0.9 if i < 3 else 0.1, i < 3, now])

    Store(cli_env).run(add)
    data = json.loads(runner.invoke(app, ["stats", "--json"]).output)
    row = data["reasoning_share"]["per_benchmark"][0]
    assert (row["n"], row["n_reasoning"]) == (10, 3) and row["share"] == 0.3
    # Wilson interval for 3/10 (Newcombe 1998): 0.1078-0.6032
    assert row["ci"][0] == pytest.approx(0.1078, abs=1e-3) and row["ci"][1] == pytest.approx(0.6032, abs=1e-3)
    assert "Predicted reasoning share" in runner.invoke(app, ["stats"]).output
