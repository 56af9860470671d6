"""A pull lists only the tasks updated since the last complete pull, and still misses
nothing: against a real Label Studio server, an edit of an OLD annotation, a late
annotation on an old task and a deletion are pulled by the next pull, which lists only
those tasks; a task deleted with its annotations (no task left to list) is caught by the
count check, which lists everything."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ls_testkit import LSServer, add_questions, annotate, choice

from curation import labelstudio as lsmod
from curation.labelstudio import sync as ls_sync
from curation.store import Store, utcnow
from curation.store.annotations import current_labels
from curation.store.batches import BatchItem, create_batch

pytestmark = [pytest.mark.integration, pytest.mark.labelstudio]


def _api(server: LSServer) -> lsmod.LabelStudioApi:
    return lsmod.LabelStudioApi(lsmod.Connection(server.url, server.token))


def _ls_rows(store: Store) -> list[tuple[str, str, str, str | None]]:
    return store.run(lambda con: con.execute(
        "SELECT question_id, annotator, action, label FROM annotations "
        "WHERE source = 'label_studio' ORDER BY seq").fetchall())


def _pull(server: LSServer, store: Store, name: str) -> lsmod.PullResult:
    (result,) = lsmod.pull(store, _api(server), project=name)
    assert result.complete, result
    return result


def test_pull_since_last_pull_picks_up_old_edits_late_labels_and_deletions(
    ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No margin: "old" is then anything older than the previous pull's start (less the one
    # second of the server's `Date` header), so the test needs no minutes-long wait.
    monkeypatch.setattr(ls_sync, "SINCE_MARGIN", timedelta(0))
    store = Store(tmp_path / "s.duckdb")
    qids = add_questions(store, 6, prefix=f"{tmp_path.name[-12:]}-")
    store.run(lambda con: create_batch(
        con, batch_id="since1", kind="manual", items=[BatchItem(q) for q in qids], overlap=2,
        show_suggestions=False, created_at=utcnow(),
    ))
    name = f"since {tmp_path.name}"
    pushed = lsmod.push_batch(store, _api(ls_server), "since1", project=name)
    tasks = httpx.get(f"{ls_server.url}/api/tasks", headers=ls_server.headers(), timeout=60,
                      params={"project": pushed.project_id, "page_size": 100}).json()["tasks"]
    task_q = {int(t["id"]): t["data"]["question_id"] for t in tasks}
    t_ids = sorted(task_q)
    alice_email = f"alice-{tmp_path.name}@example.com"
    alice = ls_server.annotator(alice_email)
    bob_email = f"bob-{tmp_path.name}@example.com"
    bob = ls_server.annotator(bob_email)
    ann: dict[int, dict[str, Any]] = {
        tid: annotate(ls_server, alice, tid, choice("reasoning")) for tid in t_ids[:5]
    }
    time.sleep(1.5)  # these tasks are now older than the first pull's start

    first = _pull(ls_server, store, name)
    assert first.since is None and first.n_tasks == 6 and first.n_new_rows == 5

    # nothing new: no task is listed (the filter works on the server), nothing stored
    quiet = _pull(ls_server, store, name)
    assert quiet.since is not None
    assert (quiet.n_tasks, quiet.n_new_rows, quiet.n_deleted) == (0, 0, 0)

    # an edit of an OLD annotation: only its task is listed, and the edit is a new row.
    # (Each change below is followed by a wait, so that the next pull but one no longer
    # lists its task: it is then older than the start of the pull that stored it.)
    old_task = t_ids[0]
    r = httpx.patch(f"{ls_server.url}/api/annotations/{ann[old_task]['id']}/",
                    headers=ls_server.headers(alice), json={"result": choice("knowledge")},
                    timeout=60)
    assert r.status_code == 200, r.text
    time.sleep(1.5)
    edited = _pull(ls_server, store, name)
    assert edited.since is not None
    assert (edited.n_tasks, edited.n_new_rows) == (1, 1)
    assert _ls_rows(store)[-1] == (task_q[old_task], alice_email, "label", "knowledge")

    # a late annotation on an old task, and a deletion on another old task
    annotate(ls_server, bob, t_ids[1], choice("knowledge"))
    r = httpx.delete(f"{ls_server.url}/api/annotations/{ann[t_ids[2]]['id']}/",
                     headers=ls_server.headers(), timeout=60)
    assert r.status_code == 204, r.text
    time.sleep(1.5)
    late = _pull(ls_server, store, name)
    assert late.since is not None
    assert (late.n_tasks, late.n_new_rows, late.n_deleted) == (2, 2, 1)
    rows = _ls_rows(store)
    assert (task_q[t_ids[1]], bob_email, "label", "knowledge") in rows
    assert rows[-1] == (task_q[t_ids[2]], alice_email, "retract", None)

    # a task deleted with its annotation leaves no task to list: the count check (store
    # 5 live annotations, Label Studio 4) makes the pull list everything and retract it
    time.sleep(1.5)
    r = httpx.delete(f"{ls_server.url}/api/tasks/{t_ids[3]}/", headers=ls_server.headers(),
                     timeout=60)
    assert r.status_code == 204, r.text
    gone = _pull(ls_server, store, name)
    assert gone.since is None and gone.n_deleted == 1 and gone.n_new_rows == 1
    assert _ls_rows(store)[-1] == (task_q[t_ids[3]], alice_email, "retract", None)

    # what the store holds now is exactly what Label Studio holds
    current = store.run(lambda con: current_labels(con, sources=["label_studio"]))
    assert sorted((c["question_id"], c["annotator"], c["label"]) for c in current) == sorted([
        (task_q[t_ids[0]], alice_email, "knowledge"),
        (task_q[t_ids[1]], alice_email, "reasoning"),
        (task_q[t_ids[1]], bob_email, "knowledge"),
        (task_q[t_ids[4]], alice_email, "reasoning"),
    ])
    assert _pull(ls_server, store, name).n_new_rows == 0
    full = lsmod.pull(store, _api(ls_server), project=name, full=True)[0]
    assert full.since is None and full.n_new_rows == 0 and full.n_deleted == 0
