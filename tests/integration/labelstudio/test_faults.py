"""A pull interrupted mid-way (the server answers 5xx, or stops answering) fails with a
clear message, leaves whole pages only in the store, and the next pull completes it
without duplicates. The real server sits behind `FaultProxy` (a test double that
forwards every request until told to fail)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ls_testkit import FaultProxy, LSServer, add_questions, annotate, choice

from curation import labelstudio as lsmod
from curation.store import Store, utcnow
from curation.store.annotations import current_labels
from curation.store.batches import BatchItem, create_batch

pytestmark = [pytest.mark.integration, pytest.mark.labelstudio, pytest.mark.reliability]


def _consistent(store: Store) -> tuple[int, int]:
    """Every pulled version has exactly one label row and vice versa; returns the counts."""

    def go(con: Any) -> tuple[int, int]:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM annotations WHERE source = 'label_studio'"
        ).fetchall()[0]
        versions = con.execute(
            "SELECT count(*) FROM ls_annotation_versions WHERE kind = 'version'"
        ).fetchall()[0][0]
        orphans = con.execute(
            "SELECT count(*) FROM ls_annotation_versions v LEFT JOIN annotations a "
            "ON a.event_id = v.event_id WHERE a.event_id IS NULL"
        ).fetchall()[0][0]
        unversioned = con.execute(
            "SELECT count(*) FROM annotations a WHERE source = 'label_studio' AND NOT EXISTS "
            "(SELECT 1 FROM ls_annotation_versions v WHERE v.event_id = a.event_id)"
        ).fetchall()[0][0]
        assert rows[0] == rows[1] == versions and orphans == 0 and unversioned == 0
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT question_id, annotator, created_at FROM annotations "
            "WHERE source = 'label_studio' GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()[0][0]
        assert dupes == 0
        return int(rows[0]), int(versions)

    return store.run(go)


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_interrupted_pull_is_consistent_and_resumable(
    ls_server: LSServer, fault_proxy: FaultProxy, tmp_path: Path, mode: str
) -> None:
    store = Store(tmp_path / "f.duckdb")
    qids = add_questions(store, 8, prefix=f"fault-{mode}-")
    store.run(lambda con: create_batch(
        con, batch_id="fb", kind="manual", items=[BatchItem(q) for q in qids], overlap=1,
        show_suggestions=False, created_at=utcnow(),
    ))
    api = lsmod.LabelStudioApi(lsmod.Connection(fault_proxy.url, ls_server.token), max_retries=1)
    pushed = lsmod.push_batch(store, api, "fb", project=f"fault {mode} {tmp_path.name}")
    token = ls_server.annotator(f"fault-{mode}@example.com")
    task_ids = [t for t in sorted(
        int(r[0]) for r in store.run(lambda con: con.execute("SELECT task_id FROM ls_tasks").fetchall())
    )]
    for tid in task_ids:
        annotate(ls_server, token, tid, choice("knowledge"))

    fault_proxy.mode = mode
    fault_proxy.healthy_pages = 2
    fault_proxy.pages_served = 0
    with pytest.raises(lsmod.LabelStudioError) as err:
        lsmod.pull(store, api, page_size=3)  # 8 tasks -> pages of 3, 3, 2
    msg = str(err.value)
    assert "stopped after 2 complete page(s)" in msg and "run `curation ls pull` again" in msg
    assert (("HTTP 503" in msg) if mode == "503" else ("cannot reach" in msg)), msg
    assert ls_server.token not in msg
    n_rows, _ = _consistent(store)
    assert n_rows == 6  # two whole pages of three, nothing of the third

    fault_proxy.mode = "pass"
    done = lsmod.pull(store, api, page_size=3)
    assert done[0].n_new_rows == 2 and done[0].n_deleted == 0
    assert _consistent(store)[0] == 8
    assert lsmod.pull(store, api, page_size=3)[0].n_new_rows == 0
    assert _consistent(store)[0] == 8

    def failed(con: Any) -> list[Any]:
        return con.execute(
            "SELECT status, n_pages FROM ls_sync_log WHERE direction = 'pull' ORDER BY seq"
        ).fetchall()

    assert [tuple(r) for r in store.run(failed)] == [("failed", 2), ("ok", 3), ("ok", 3)]
    assert pushed.n_created == 8


def test_a_task_missing_from_the_listing_is_not_taken_for_a_deletion(
    ls_server: LSServer, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Deletions are confirmed per annotation: a listing that skips a task (it shifted
    between pages, say) must not retract that task's labels."""
    store = Store(tmp_path / "h.duckdb")
    qids = add_questions(store, 3, prefix="hide-")
    store.run(lambda con: create_batch(
        con, batch_id="hb", kind="manual", items=[BatchItem(q) for q in qids], overlap=1,
        show_suggestions=False, created_at=utcnow(),
    ))
    api = lsmod.LabelStudioApi(lsmod.Connection(fault_proxy.url, ls_server.token))
    lsmod.push_batch(store, api, "hb", project=f"hide {tmp_path.name}")
    token = ls_server.annotator("hide@example.com")
    task_ids = sorted(int(r[0]) for r in store.run(
        lambda con: con.execute("SELECT task_id FROM ls_tasks").fetchall()))
    for tid in task_ids:
        annotate(ls_server, token, tid, choice("reasoning"))
    assert lsmod.pull(store, api)[0].n_new_rows == 3

    fault_proxy.mode, fault_proxy.hidden_task = "hide", task_ids[1]
    hidden = lsmod.pull(store, api)
    assert (hidden[0].n_new_rows, hidden[0].n_deleted) == (0, 0)
    labels = store.run(lambda con: current_labels(con, sources=["label_studio"]))
    assert len(labels) == 3


@pytest.mark.parametrize("after", ["slow", "502"])
def test_push_whose_import_answer_is_lost_is_retried_without_duplicate_tasks(
    ls_server: LSServer, fault_proxy: FaultProxy, tmp_path: Path, after: str
) -> None:
    """The server creates the tasks but the client never hears so (it times out, or a
    gateway answers 502): a clear error, and the next push adopts the tasks instead of
    importing them twice."""
    store = Store(tmp_path / "lost.duckdb")
    qids = add_questions(store, 5, prefix=f"lost-{after}-")
    store.run(lambda con: create_batch(
        con, batch_id="lb", kind="manual", items=[BatchItem(q) for q in qids], overlap=1,
        show_suggestions=False, created_at=utcnow(),
    ))
    api = lsmod.LabelStudioApi(lsmod.Connection(fault_proxy.url, ls_server.token), timeout=3, max_retries=1)
    fault_proxy.after, fault_proxy.after_match, fault_proxy.delay = after, "/import", 8.0
    project = f"lost {after} {tmp_path.name}"
    with pytest.raises(lsmod.LabelStudioError) as err:
        lsmod.push_batch(store, api, "lb", project=project)
    msg = str(err.value)
    assert ("timed out" in msg) if after == "slow" else ("HTTP 502" in msg), msg
    assert ls_server.token not in msg and "Traceback" not in msg
    assert fault_proxy.after_hits == 1  # the import was not retried blindly
    pid = store.run(lambda con: con.execute(
        "SELECT project_id FROM ls_projects WHERE name = ?", [project]).fetchall())[0][0]

    def on_server() -> int:
        r = httpx.get(f"{ls_server.url}/api/projects/{pid}/", headers=ls_server.headers(), timeout=60)
        return int(r.json()["task_number"])

    deadline = time.monotonic() + 30  # the server finishes the import it was sent
    while on_server() < 5 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert on_server() == 5
    assert store.run(lambda con: con.execute("SELECT count(*) FROM ls_tasks").fetchall())[0][0] == 0

    fault_proxy.after = None
    again = lsmod.push_batch(store, api, "lb", project=project)
    assert (again.n_created, again.n_existing) == (0, 5)
    assert on_server() == 5, "duplicate tasks in Label Studio"
    mapped = store.run(lambda con: sorted(r[0] for r in con.execute("SELECT question_id FROM ls_tasks").fetchall()))
    assert mapped == sorted(qids)
    statuses = store.run(lambda con: [r[0] for r in con.execute(
        "SELECT status FROM ls_sync_log WHERE direction = 'push' ORDER BY seq").fetchall()])
    assert statuses == ["failed", "ok"]


def test_pull_from_a_slow_server_times_out_cleanly_then_completes(
    ls_server: LSServer, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    store = Store(tmp_path / "slow.duckdb")
    qids = add_questions(store, 4, prefix="slowpull-")
    store.run(lambda con: create_batch(
        con, batch_id="sb", kind="manual", items=[BatchItem(q) for q in qids], overlap=1,
        show_suggestions=False, created_at=utcnow(),
    ))
    api = lsmod.LabelStudioApi(lsmod.Connection(fault_proxy.url, ls_server.token), timeout=3, max_retries=1)
    lsmod.push_batch(store, api, "sb", project=f"slow pull {tmp_path.name}")
    token = ls_server.annotator("slowpull@example.com")
    for (tid,) in store.run(lambda con: con.execute("SELECT task_id FROM ls_tasks ORDER BY 1").fetchall()):
        annotate(ls_server, token, int(tid), choice("reasoning"))

    fault_proxy.after, fault_proxy.after_match, fault_proxy.delay = "slow", "/api/tasks", 8.0
    with pytest.raises(lsmod.LabelStudioError) as err:
        lsmod.pull(store, api, page_size=2)
    assert "timed out" in str(err.value) and ls_server.token not in str(err.value)
    assert _consistent(store)[0] == 0

    fault_proxy.after = None
    assert lsmod.pull(store, api, page_size=2)[0].n_new_rows == 4
    assert _consistent(store)[0] == 4
    assert lsmod.pull(store, api, page_size=2)[0].n_new_rows == 0
