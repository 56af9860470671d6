"""Helpers for the reliability tests (imported by the tests and conftest): seeded stores,
whole-store snapshots, child processes, planted secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from curation.store import Store, utcnow
from curation.store.batches import BatchItem, create_batch

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers.py"
CURATION = Path(sys.executable).with_name("curation")

# Planted secrets: any of these appearing in an output or a written file is a leak.
SECRETS = {
    "HF_TOKEN": "hf_PLANTEDsecretTOKEN0123456789abcdefXYZ",
    "HUGGING_FACE_HUB_TOKEN": "hf_PLANTEDsecondTOKEN9876543210zyxwvuQ",
    "LABEL_STUDIO_API_KEY": "lsPLANTEDkey5f4e3d2c1b0a99887766554433",
    "LABEL_STUDIO_TOKEN": "lsPLANTEDtoken00112233445566778899aabb",
    "CURATION_LS_API_KEY": "lsPLANTEDcurationKey0123456789abcdef00",
}


def seed_questions(
    store: Store, n: int, *, prefix: str = "q", split: str = "test", dataset: str = "medqa",
    batch_id: str | None = None, kind: str = "manual", overlap: int = 1,
) -> list[str]:
    """Insert `n` questions (plain SQL) and optionally a batch over them; return their ids."""
    ids = [f"{prefix}{i:06d}" for i in range(n)]

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.executemany(
            "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
            "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [[qid, dataset, split,
              f"Question {qid}: a {20 + i % 60}-year-old presents with finding {i % 17} and sign {i % 13}; "
              f"{'why does the mechanism explain' if i % 2 else 'which drug is first line for'} it?",
              json.dumps({"A": f"option one {i}", "B": f"option two {i}", "C": "three", "D": "four"}),
              "A", f"option one {i}", "tests/reliability", f"hash-{prefix}-{i}", utcnow()]
             for i, qid in enumerate(ids)],
        )
        if batch_id is not None:
            create_batch(con, batch_id=batch_id, kind=kind, items=[BatchItem(q) for q in ids],
                         overlap=overlap, show_suggestions=False, created_at=utcnow())

    store.run(work)
    return ids


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted (to prove a failed command changed nothing)."""

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        out = {}
        for t in tables:
            rows = con.execute(f'SELECT * FROM "{t}"').fetchall()
            out[t] = sorted(rows, key=repr)
        return out

    return store.run(work)


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `curation` command in a child process."""
    return subprocess.run([str(CURATION), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def worker(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    """Start `workers.py` with stdout piped (one `ACK`/`DONE` line per committed unit)."""
    return subprocess.Popen([sys.executable, str(WORKERS), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def acks(stdout: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in stdout.splitlines() if line.startswith("ACK ")]


def stats_line(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("STATS "):
            return json.loads(line[6:])
    return {}


@pytest.fixture
def planted_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Plant every secret in this process's environment (children inherit it)."""
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    return dict(SECRETS)


def find_secrets(text: str) -> list[str]:
    return [k for k, v in SECRETS.items() if v in text or v[6:30] in text]


def scan_tree(root: Path) -> dict[str, list[str]]:
    """Planted secrets found in any file under `root` (binary files too: parquet, png, duckdb)."""
    found: dict[str, list[str]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            hits = [k for k, v in SECRETS.items() if v.encode() in data or v[6:30].encode() in data]
            if hits:
                found[str(p)] = hits
    return found
