"""A pull interrupted mid-way (the server answers 5xx, or stops answering) fails with a
clear message, leaves whole pages only in the store, and the next pull completes it
without duplicates. The real server sits behind `FaultProxy` (a test double that
forwards every request until told to fail)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
