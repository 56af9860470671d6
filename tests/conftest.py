"""Shared fixtures: a fresh DuckDB store file per test, the bundled sample, a CLI runner."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # pgserver

from curation.ingest import sample_path
from curation.store import Store

# Nothing in the tests may reach the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL server for the test session (Debian's binaries, a temp dir and a
    free port); each test that needs it takes a fresh database (`pg_url`). Without the
    binaries the tests skip, or fail under CURATION_REQUIRE_PG=1 (CI)."""
    import pgserver

    if not pgserver.available():
        if os.environ.get("CURATION_REQUIRE_PG") == "1":
            pytest.fail("PostgreSQL server binaries not found (apt-get install postgresql)")
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    with pgserver.PgServer() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return str(pg_server.new_database())


@pytest.fixture(params=["duckdb", "postgres"])
def db_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives, as `--db` takes it: a DuckDB file, then a fresh database on
    the session's real PostgreSQL server (the same test runs on both)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.duckdb")


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh store: a DuckDB file, and the same tests again on a real PostgreSQL server."""
    if request.param == "postgres":
        return Store(request.getfixturevalue("pg_url"))
    return Store(tmp_path / "store.duckdb")


@pytest.fixture
def app_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh store for the Streamlit app (via CURATION_DB), with Streamlit's caches cleared
    so each test gets its own rate limiter and store handle."""
    import streamlit as st

    db = tmp_path / "app.duckdb"
    monkeypatch.setenv("CURATION_DB", str(db))
    st.cache_resource.clear()
    st.cache_data.clear()
    return Store(db)


@pytest.fixture(scope="session")
def sample_rows() -> list[dict[str, Any]]:
    with sample_path("benchmarks_sample.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run CLI commands against a store in tmp_path via CURATION_DB."""
    db = tmp_path / "cli.duckdb"
    monkeypatch.setenv("CURATION_DB", str(db))
    yield db


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
