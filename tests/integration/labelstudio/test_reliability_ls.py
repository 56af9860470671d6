"""Label Studio against the real server: a pull SIGKILLed at random points leaves only whole
pages and the next pull completes without duplicates; a push to a stopped server fails
clearly, writes nothing, and the retried push creates no duplicate task.

Lives beside the other Label Studio tests so that it shares their one session server
(`ls_server` in this folder's conftest.py); its helpers come from tests/reliability/relkit.py.
The interrupted-pull-by-5xx cases are in test_faults.py.
"""

from __future__ import annotations

import random
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ls_testkit import LSServer, add_questions, annotate, choice

_REL_DIR = Path(__file__).resolve().parents[2] / "reliability"
if str(_REL_DIR) not in sys.path:
    sys.path.insert(0, str(_REL_DIR))

from relkit import snapshot, worker  # noqa: E402

from curation import labelstudio as lsmod  # noqa: E402
from curation.store import Store, utcnow  # noqa: E402
from curation.store.batches import BatchItem, create_batch  # noqa: E402

pytestmark = [pytest.mark.reliability, pytest.mark.labelstudio]

N_TASKS = 24


def _pushed_store(server: LSServer, tmp_path: Path, tag: str) -> tuple[Store, Any, str]:
    store = Store(tmp_path / "ls.duckdb")
    qids = add_questions(store, N_TASKS, prefix=f"{tag}-")
    store.run(lambda con: create_batch(con, batch_id="lb", kind="manual", items=[BatchItem(q) for q in qids],
                                       overlap=1, show_suggestions=False, created_at=utcnow()))
    api = lsmod.LabelStudioApi(lsmod.Connection(server.url, server.token))
    project = f"rel {tag} {tmp_path.name}"
    lsmod.push_batch(store, api, "lb", project=project)
    return store, api, project


def _ls_rows(store: Store) -> tuple[int, int, int]:
    return store.run(lambda con: con.execute(
        "SELECT count(*), count(DISTINCT event_id), "
        "(SELECT count(*) FROM (SELECT question_id, annotator FROM annotations WHERE source = 'label_studio' "
        " AND action = 'label' GROUP BY ALL HAVING count(*) > 1)) "
        "FROM annotations WHERE source = 'label_studio'").fetchall()[0])


@pytest.mark.parametrize("seed", [1, 2])
def test_pull_killed_at_random_points(ls_server: LSServer, tmp_path: Path, seed: int) -> None:
    store, api, project = _pushed_store(ls_server, tmp_path, f"kill{seed}")
    token = ls_server.annotator(f"kill{seed}@example.com")
    task_ids = sorted(int(r[0]) for r in store.run(lambda con: con.execute("SELECT task_id FROM ls_tasks").fetchall()))
    for tid in task_ids:
        annotate(ls_server, token, tid, choice("reasoning"))
    args = ["ls-pull", "--db", str(store.path), "--url", ls_server.url, "--key", ls_server.token,
            "--project", project, "--page-size", "4"]
    rng = random.Random(seed)
    for _ in range(3):  # several kills at different points of the same pull
        proc = worker(args)
        time.sleep(rng.uniform(1.0, 4.0))  # interpreter start-up ~1-2 s, then pages of 4
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        n, distinct, dup_pairs = _ls_rows(store)  # the store opens after the kill
        assert n == distinct and dup_pairs == 0
        assert n % 4 == 0 or n == N_TASKS, f"half a page stored: {n} rows"
    proc = worker(args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert _ls_rows(store) == (N_TASKS, N_TASKS, 0)
    again = lsmod.pull(store, api, project=project)
    assert again[0].n_new_rows == 0 and _ls_rows(store) == (N_TASKS, N_TASKS, 0)


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_push_to_a_stopped_server_then_retry(ls_server: LSServer, tmp_path: Path) -> None:
    store = Store(tmp_path / "p.duckdb")
    qids = add_questions(store, 6, prefix="push-")
    store.run(lambda con: create_batch(con, batch_id="pb", kind="manual", items=[BatchItem(q) for q in qids],
                                       overlap=1, show_suggestions=False, created_at=utcnow()))
    before = snapshot(store)
    dead = lsmod.LabelStudioApi(lsmod.Connection(_dead_url(), ls_server.token), timeout=5, max_retries=1)
    with pytest.raises(lsmod.LabelStudioError) as err:
        lsmod.push_batch(store, dead, "pb", project=f"push {tmp_path.name}")
    assert ls_server.token not in str(err.value)
    assert "Traceback" not in str(err.value)
    after = snapshot(store)
    after.pop("ls_sync_log", None), before.pop("ls_sync_log", None)  # a failed attempt may be logged
    assert after == before
    api = lsmod.LabelStudioApi(lsmod.Connection(ls_server.url, ls_server.token))
    first = lsmod.push_batch(store, api, "pb", project=f"push {tmp_path.name}")
    second = lsmod.push_batch(store, api, "pb", project=f"push {tmp_path.name}")
    assert (first.n_created, second.n_created, second.n_existing) == (6, 0, 6)
    r = httpx.get(f"{ls_server.url}/api/projects/{first.project_id}/", headers=ls_server.headers(), timeout=60)
    assert r.json()["task_number"] == 6, "duplicate tasks in Label Studio"


HOSTILE = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> [click](javascript:alert(1)) '
           '**bold** \u202eevil\u202c \x07\x1b[31m ' + "W" * 3000)


def test_config_shows_task_data_only_as_plain_text() -> None:
    """Every `$field` of the labeling config is rendered by a `Text` tag (escaped by Label
    Studio), never by `HyperText`/`HTML` or inside a `Header`/`Style` value."""
    import xml.etree.ElementTree as ET

    root = ET.parse(Path(__file__).resolve().parents[3] / "labeling_config" / "reasoning_knowledge.xml").getroot()
    for el in root.iter():
        assert el.tag.lower() not in ("hypertext", "html"), f"<{el.tag}> renders HTML"
        for attr, val in el.attrib.items():
            if "$" in val:
                assert el.tag == "Text" and attr == "value", f"<{el.tag} {attr}={val!r}> shows task data"


def test_hostile_question_text_reaches_label_studio_verbatim(ls_server: LSServer, tmp_path: Path) -> None:
    store = Store(tmp_path / "h.duckdb")
    store.run(lambda con: con.execute(
        "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, source, "
        "text_hash, ingested_at) VALUES ('hostile-1', 'medqa', 'test', ?, ?, 'A', 'x', 't', 'h', ?)",
        [HOSTILE, '{"A": "<b>x</b>", "B": "y"}', utcnow()]))
    store.run(lambda con: create_batch(con, batch_id="hb", kind="manual", items=[BatchItem("hostile-1")],
                                       overlap=1, show_suggestions=False, created_at=utcnow()))
    api = lsmod.LabelStudioApi(lsmod.Connection(ls_server.url, ls_server.token))
    pushed = lsmod.push_batch(store, api, "hb", project=f"hostile {tmp_path.name}")
    tasks = httpx.get(f"{ls_server.url}/api/tasks", params={"project": pushed.project_id},
                      headers=ls_server.headers(), timeout=60).json()["tasks"]
    assert len(tasks) == 1
    assert tasks[0]["data"]["question"] == HOSTILE  # stored as data, shown by <Text> (escaped)
