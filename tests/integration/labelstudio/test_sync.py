"""Push and pull against a real Label Studio server: predictions, two annotators, edits,
deletions, idempotency, agreement over app + Label Studio labels, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from label_studio_sdk.label_interface import LabelInterface
from ls_testkit import LSServer, add_questions, annotate, choice, next_task
from typer.testing import CliRunner

from curation import labelstudio as lsmod
from curation.agreement import agreement_report
from curation.cli import app
from curation.store import Store, utcnow
from curation.store.annotations import Annotation, append, current_labels
from curation.store.batches import BatchItem, create_batch

pytestmark = [pytest.mark.integration, pytest.mark.labelstudio]


def _api(server: LSServer, url: str | None = None) -> lsmod.LabelStudioApi:
    return lsmod.LabelStudioApi(lsmod.Connection(url or server.url, server.token))


def _get(server: LSServer, path: str, **params: Any) -> Any:
    r = httpx.get(f"{server.url}{path}", headers=server.headers(), params=params, timeout=120)
    r.raise_for_status()
    return r.json()


def _tasks(server: LSServer, project_id: int) -> list[dict[str, Any]]:
    return list(_get(server, "/api/tasks", project=project_id, fields="all", page_size=1000)["tasks"])


def _ls_rows(store: Store) -> list[dict[str, Any]]:
    def go(con: Any) -> list[dict[str, Any]]:
        cur = con.execute("SELECT * FROM annotations WHERE source = 'label_studio' ORDER BY seq")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    return store.run(go)


@pytest.fixture
def pushed(ls_server: LSServer, tmp_path: Path) -> dict[str, Any]:
    """A store with 6 questions in an 'active' batch (overlap 2, suggestions on), pushed."""
    store = Store(tmp_path / "s.duckdb")
    qids = add_questions(store, 6, prefix=f"{tmp_path.name[-12:]}-")
    items = [BatchItem(q, "reasoning" if i % 2 == 0 else "knowledge", 0.2 + 0.1 * i)
             for i, q in enumerate(qids)]
    store.run(lambda con: create_batch(
        con, batch_id="round1", kind="active", items=items, overlap=2, show_suggestions=True,
        created_at=utcnow(), model_version="minilm-r1",
    ))
    name = f"sync {tmp_path.name}"
    result = lsmod.push_batch(store, _api(ls_server), "round1", project=name)
    return {"store": store, "qids": qids, "items": items, "result": result, "name": name}


def test_push_creates_tasks_with_valid_predictions_and_is_idempotent(
    ls_server: LSServer, pushed: dict[str, Any]
) -> None:
    store, result, items = pushed["store"], pushed["result"], pushed["items"]
    assert (result.n_created, result.n_existing, result.n_predictions) == (6, 0, 6)
    tasks = _tasks(ls_server, result.project_id)
    assert sorted(t["data"]["question_id"] for t in tasks) == sorted(pushed["qids"])
    config = LabelInterface(lsmod.load_label_config())
    by_q = {i.question_id: i for i in items}
    for t in tasks:
        item = by_q[t["data"]["question_id"]]
        assert "<b>not bold</b>" in t["data"]["question"]  # sent as data, rendered as text
        (pred,) = t["predictions"]
        assert pred["model_version"] == "minilm-r1"
        assert pred["result"][0]["value"]["choices"] == [item.suggestion_label]
        p = item.suggestion_prob
        assert pred["score"] == pytest.approx(p if item.suggestion_label == "reasoning" else 1 - p)
        assert config.validate_prediction({"result": pred["result"], "score": pred["score"]})
    project = _get(ls_server, f"/api/projects/{result.project_id}")
    assert project["maximum_annotations"] == 2
    assert project["show_collab_predictions"] is True

    again = lsmod.push_batch(store, _api(ls_server), "round1", project=pushed["name"])
    assert (again.project_id, again.n_created, again.n_existing) == (result.project_id, 0, 6)
    assert len(_tasks(ls_server, result.project_id)) == 6

    # a crash between the import and the map write: the map is lost, the tasks are not
    store.run(lambda con: con.execute("DELETE FROM ls_tasks"))
    third = lsmod.push_batch(store, _api(ls_server), "round1", project=pushed["name"])
    assert third.n_created == 0 and len(_tasks(ls_server, result.project_id)) == 6


def test_gold_batch_is_pushed_blind(ls_server: LSServer, tmp_path: Path) -> None:
    store = Store(tmp_path / "g.duckdb")
    qids = add_questions(store, 3, prefix="gold-")
    store.run(lambda con: create_batch(
        con, batch_id="gold1", kind="gold", overlap=3, show_suggestions=True, created_at=utcnow(),
        items=[BatchItem(q, "reasoning", 0.9) for q in qids], model_version="m",
    ))
    result = lsmod.push_batch(store, _api(ls_server), "gold1", project=f"gold {tmp_path.name}")
    assert result.n_predictions == 0
    assert all(t["predictions"] == [] for t in _tasks(ls_server, result.project_id))
    project = _get(ls_server, f"/api/projects/{result.project_id}")
    assert project["show_collab_predictions"] is False
    assert project["maximum_annotations"] == 3


def test_two_annotators_pull_edit_delete_and_agreement(
    ls_server: LSServer, pushed: dict[str, Any], tmp_path: Path
) -> None:
    store, result, qids = pushed["store"], pushed["result"], pushed["qids"]
    pid = result.project_id
    alice = ls_server.annotator(f"alice-{tmp_path.name}@example.com")
    bob = ls_server.annotator(f"bob-{tmp_path.name}@example.com")
    alice_email, bob_email = f"alice-{tmp_path.name}@example.com", f"bob-{tmp_path.name}@example.com"
    # bob is known in our store as "bob": map him explicitly before the first pull
    lsmod.map_user(store, _api(ls_server), bob_email, "bob")

    tid_to_q = {t["id"]: t["data"]["question_id"] for t in _tasks(ls_server, pid)}
    expected: dict[tuple[str, str], str] = {}
    ann_ids: dict[tuple[str, str], int] = {}
    for who, token, name in ((alice, alice, alice_email), (bob, bob, "bob")):
        for k in range(4):  # each labels 4 of the 6 tasks through the queue
            task = next_task(ls_server, token, pid)
            assert task is not None
            label = "reasoning" if (k + len(name)) % 2 else "knowledge"
            ann = annotate(ls_server, who, task["id"], choice(label, confidence=2, rationale="why"))
            expected[(tid_to_q[task["id"]], name)] = label
            ann_ids[(tid_to_q[task["id"]], name)] = int(ann["id"])

    pulled = lsmod.pull(store, _api(ls_server), project=pushed["name"])
    assert pulled[0].n_new_rows == 8 and pulled[0].problems == ()
    rows = _ls_rows(store)
    assert {(r["question_id"], r["annotator"]): r["label"] for r in rows} == expected
    assert all(r["source"] == "label_studio" and r["batch_id"] == "round1"
               and r["suggestion_shown"] and r["confidence"] == 2 and r["rationale"] == "why"
               and r["action"] == "label" for r in rows)
    current = store.run(lambda con: current_labels(con, sources=["label_studio"]))
    assert {(c["question_id"], c["annotator"]): c["label"] for c in current} == expected

    # re-pull is a no-op
    again = lsmod.pull(store, _api(ls_server), project=pushed["name"])
    assert again[0].n_new_rows == 0 and len(_ls_rows(store)) == 8

    # an edit in Label Studio becomes a new row; the old one stays
    (q_edit, _), aid = next((k, v) for k, v in ann_ids.items() if k[1] == alice_email)
    old = expected[(q_edit, alice_email)]
    new = "knowledge" if old == "reasoning" else "reasoning"
    r = httpx.patch(f"{ls_server.url}/api/annotations/{aid}/", headers=ls_server.headers(alice),
                    json={"result": choice(new)}, timeout=60)
    assert r.status_code == 200, r.text
    edited = lsmod.pull(store, _api(ls_server), project=pushed["name"])
    assert edited[0].n_new_rows == 1
    rows = _ls_rows(store)
    assert len(rows) == 9
    history = [r["label"] for r in rows if (r["question_id"], r["annotator"]) == (q_edit, alice_email)]
    assert history == [old, new]
    expected[(q_edit, alice_email)] = new

    # a deletion in Label Studio becomes a retract row
    (q_del, _), bid = next((k, v) for k, v in ann_ids.items() if k[1] == "bob")
    r = httpx.delete(f"{ls_server.url}/api/annotations/{bid}/", headers=ls_server.headers(), timeout=60)
    assert r.status_code == 204, r.text
    deleted = lsmod.pull(store, _api(ls_server), project=pushed["name"])
    assert deleted[0].n_deleted == 1 and deleted[0].n_new_rows == 1
    last = _ls_rows(store)[-1]
    assert (last["question_id"], last["annotator"], last["action"]) == (q_del, "bob", "retract")
    del expected[(q_del, "bob")]
    current = store.run(lambda con: current_labels(con, sources=["label_studio"]))
    assert {(c["question_id"], c["annotator"]): c["label"] for c in current} == expected
    assert lsmod.pull(store, _api(ls_server), project=pushed["name"])[0].n_new_rows == 0

    # agreement over app + Label Studio labels together
    app_rows = [Annotation(question_id=q, annotator="carol", action="label", label="reasoning",
                           source="app", created_at=utcnow()) for q in qids]
    store.run(lambda con: append(con, app_rows))
    both = store.run(lambda con: current_labels(con))
    both = [c for c in both if c["question_id"] in set(qids)]
    assert {c["source"] for c in both} == {"app", "label_studio"}
    rows3 = [(c["question_id"], c["annotator"], c["label"]) for c in both]
    report = agreement_report(rows3, n_boot=50)
    want = {**expected, **{(q, "carol"): "reasoning" for q in qids}}
    assert sorted(rows3) == sorted((q, a, lab) for (q, a), lab in want.items())
    assert report["overall"]["n_raters"] == 3
    assert {p["rater_a"] for p in report["pairwise"]} | {p["rater_b"] for p in report["pairwise"]} \
        == {alice_email, "bob", "carol"}
    # percent agreement by hand: per item, the share of agreeing rater pairs
    by_item: dict[str, list[str]] = {}
    for q, _, lab in rows3:
        by_item.setdefault(q, []).append(lab)
    shares = []
    for labs in by_item.values():
        if len(labs) < 2:
            continue
        pairs = [(i, j) for i in range(len(labs)) for j in range(i + 1, len(labs))]
        shares.append(sum(labs[i] == labs[j] for i, j in pairs) / len(pairs))
    assert report["overall"]["percent_agreement"]["value"] == pytest.approx(sum(shares) / len(shares))

    status = lsmod.status(store, ls_server.url, _api(ls_server))
    (proj,) = [p for p in status["projects"] if p["project_id"] == pid]
    assert proj["tasks"] == 6 and proj["annotations"] == 7
    assert proj["server_annotations"] == 7
    assert proj["completed"] + proj["pending"] == 6


def test_cli_push_pull_status_never_print_the_key(
    ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "cli.duckdb")
    qids = add_questions(store, 2, prefix="cli-")
    store.run(lambda con: create_batch(
        con, batch_id="clib", kind="manual", items=[BatchItem(q) for q in qids], overlap=1,
        show_suggestions=False, created_at=utcnow(),
    ))
    monkeypatch.setenv("CURATION_DB", str(tmp_path / "cli.duckdb"))
    monkeypatch.setenv("LABEL_STUDIO_URL", ls_server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls_server.token)
    runner = CliRunner()
    project = f"cli {tmp_path.name}"
    outputs = []
    for args in (["ls", "push", "clib", "--project", project],
                 ["ls", "push", "clib", "--project", project],
                 ["ls", "pull", "--project", project],
                 ["ls", "status"],
                 ["ls", "status", "--json"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    assert "2 task(s) created" in outputs[0] and "0 task(s) created, 2 already" in outputs[1]
    assert "last sync:" in outputs[3]
    status = json.loads(outputs[4])
    (entry,) = [p for p in status["projects"] if p["name"] == project]
    assert entry["tasks"] == 2 and entry["pending"] == 2 and entry["last_pull"] is not None

    # a wrong key: a clear error, no traceback, and neither key in the output
    bad = "f" * 40
    res = runner.invoke(app, ["ls", "pull", "--api-key", bad])
    assert res.exit_code != 0
    assert "HTTP 401" in res.output and "API key" in res.output
    assert "Traceback" not in res.output
    # a server that is not there
    res = runner.invoke(app, ["ls", "push", "clib", "--url", "http://127.0.0.1:9"])
    assert res.exit_code != 0 and "cannot reach" in res.output and "Traceback" not in res.output
    # missing settings name the option and the variable
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    res = runner.invoke(app, ["ls", "pull"])
    assert res.exit_code != 0 and "LABEL_STUDIO_API_KEY" in res.output and "--api-key" in res.output
    for out in [*outputs, res.output]:
        assert ls_server.token not in out and bad not in out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's own pydantic call
def test_personal_access_token_works(ls_server: LSServer, tmp_path: Path) -> None:
    """Personal access tokens (JWT refresh tokens) work as well as legacy tokens."""
    r = httpx.post(f"{ls_server.url}/api/token/", headers=ls_server.headers(), timeout=60)
    assert r.status_code == 201, r.text
    pat = r.json()["token"]
    api = lsmod.LabelStudioApi(lsmod.Connection(ls_server.url, pat))
    assert api.whoami()["email"] == ls_server.admin_email
