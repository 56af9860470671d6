"""Two app replicas on one PostgreSQL store, in a real Chromium: each `curation app` is its own
process on its own port (as on two hosts behind a proxy). A login on replica A is a session
replica B knows (sessions live in the store, not in one process's memory); a label made on B
is the one A's annotator leased; two annotators on the two replicas never get the same
question at K=1; logging out on one ends the session on the other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_app_browser import (  # noqa: F401  (browser is a fixture)
    ROOT,
    browser,
    expect,
    free_port,
    log_in,
    seed,
    wait_healthy,
    wait_idle,
)

from curation.store import Store
from curation.store import annotations as astore

pytestmark = pytest.mark.e2e


def _start(db: str, tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (tmp_path / f"{name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from curation.cli import main; main()", "app", "--port", str(port), "--db", db],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=subprocess.STDOUT)
    return proc, wait_healthy(proc, f"http://127.0.0.1:{port}", tmp_path / f"{name}.log")


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    store = Store(pg_url)
    seed(store, [(f"rep-{i}", "medqa", f"Replica question {i}: which mechanism?") for i in range(6)], overlap=1)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        a, url_a = _start(pg_url, tmp_path, "replica-a")
        procs.append(a)
        b, url_b = _start(pg_url, tmp_path, "replica-b")
        procs.append(b)
        yield {"store": store, "a": url_a, "b": url_b}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def shown_question(page: Any) -> str:
    wait_idle(page)
    return str(page.get_by_text("· gold set · question ").inner_text().rsplit(" ", 1)[-1])


def test_a_session_and_a_lease_move_between_replicas(replicas: dict[str, Any], browser: Any) -> None:  # noqa: F811
    store: Store = replicas["store"]
    ctx, page_a = log_in(browser, replicas["a"], "ann1")
    on_a = shown_question(page_a)

    # the same browser (its session cookie) on replica B: logged in, the same leased question
    page_b = ctx.new_page()
    page_b.set_default_timeout(30_000)
    page_b.goto(replicas["b"])
    expect(page_b.get_by_text("Logged in as ann1")).to_be_visible()
    assert page_b.get_by_role("button", name="Log in").count() == 0
    assert shown_question(page_b) == on_a

    # label it on B: the row names the question A showed; A then moves on
    page_b.keyboard.press("1")
    expect(page_b.get_by_text("1 done,")).to_be_visible()
    rows = [r for r in store.run(astore.annotation_rows) if r["annotator"] == "ann1"]
    assert [(r["question_id"], r["action"], r["label"]) for r in rows] == [(on_a, "label", "reasoning")]
    page_a.reload()
    expect(page_a.get_by_text("Logged in as ann1")).to_be_visible()
    assert shown_question(page_a) != on_a

    # another annotator on replica B at K=1 never gets ann1's leased question
    ctx2, page_c = log_in(browser, replicas["b"], "ann2")
    assert shown_question(page_c) not in {on_a, shown_question(page_a)}

    # logout on B ends the session on A too
    wait_idle(page_b)
    page_b.get_by_role("button", name="Log out").click()
    expect(page_b.get_by_role("button", name="Log in")).to_be_visible()
    page_a.reload()
    expect(page_a.get_by_role("button", name="Log in")).to_be_visible()
    ctx.close()
    ctx2.close()
