"""Settles whether the Community Edition's labeling queue honours `maximum_annotations`
(STACK.md left it open), and that `curation ls push` relies on it correctly: a batch with
overlap K is served by the queue to K different annotators, never twice to the same one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from ls_testkit import LSServer, add_questions, annotate, choice, next_task

from curation import labelstudio as lsmod
from curation.store import Store, utcnow
from curation.store.batches import BatchItem, create_batch

pytestmark = [pytest.mark.integration, pytest.mark.labelstudio]


@pytest.mark.parametrize("overlap", [1, 2])
def test_ce_queue_serves_each_task_to_overlap_annotators(
    ls_server: LSServer, tmp_path: Path, overlap: int
) -> None:
    store = Store(tmp_path / "s.duckdb")
    qids = add_questions(store, 2, prefix=f"ov{overlap}-")
    store.run(lambda con: create_batch(
        con, batch_id=f"ov{overlap}", kind="gold", items=[BatchItem(q) for q in qids],
        overlap=overlap, show_suggestions=False, created_at=utcnow(),
    ))
    api = lsmod.LabelStudioApi(lsmod.Connection(ls_server.url, ls_server.token))
    pushed = lsmod.push_batch(store, api, f"ov{overlap}")
    project = httpx.get(f"{ls_server.url}/api/projects/{pushed.project_id}",
                        headers=ls_server.headers(), timeout=60).json()
    assert project["maximum_annotations"] == overlap

    tokens = [ls_server.annotator(f"ov{overlap}-{who}@example.com") for who in ("a", "b", "c")]
    served: dict[int, list[int]] = {}  # task id -> annotators (index) who got it
    for idx, token in enumerate(tokens):
        while (task := next_task(ls_server, token, pushed.project_id)) is not None:
            assert idx not in served.get(task["id"], []), "the queue served a task twice to one annotator"
            served.setdefault(task["id"], []).append(idx)
            annotate(ls_server, token, task["id"], choice("reasoning"))
    # every task went to exactly `overlap` different annotators, then left the queue
    assert len(served) == 2
    assert all(len(set(who)) == overlap for who in served.values()), served
    # the first annotators got the tasks first: with overlap 1, annotator b and c get nothing
    if overlap == 1:
        assert all(who == [0] for who in served.values())
    else:
        assert all(who == [0, 1] for who in served.values())
