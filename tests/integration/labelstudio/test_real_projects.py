"""Label Studio sync on projects used for weeks (issue #17), against a real server: a
project deleted in Label Studio, a config edited by hand, another user's edit, the same
server under another URL, skips in a K=2 batch, settings changed by hand, ground-truth
toggles, an unknown label value and a label over K."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from ls_testkit import LSServer, add_questions, annotate, choice, next_task
from typer.testing import CliRunner

from curation import labelstudio as lsmod
from curation.cli import app
from curation.store import Store, utcnow
from curation.store.annotations import current_labels
from curation.store.batches import BatchItem, create_batch

pytestmark = [pytest.mark.integration, pytest.mark.labelstudio]

CHROMIUM = "/usr/bin/chromium"


def _api(server: LSServer, url: str | None = None) -> lsmod.LabelStudioApi:
    return lsmod.LabelStudioApi(lsmod.Connection(url or server.url, server.token))


def _batch(store: Store, batch_id: str, n: int, *, overlap: int = 1, kind: str = "manual",
           prefix: str = "q") -> list[str]:
    qids = add_questions(store, n, prefix=prefix)
    store.run(lambda con: create_batch(
        con, batch_id=batch_id, kind=kind, items=[BatchItem(q, "reasoning", 0.8) for q in qids],
        overlap=overlap, show_suggestions=kind != "gold", created_at=utcnow(), model_version="m1",
    ))
    return qids


def _rows(store: Store) -> list[dict[str, Any]]:
    def go(con: Any) -> list[dict[str, Any]]:
        cur = con.execute("SELECT * FROM annotations WHERE source = 'label_studio' ORDER BY seq")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    return store.run(go)


def _versions(store: Store, project_id: int) -> list[dict[str, Any]]:
    def go(con: Any) -> list[dict[str, Any]]:
        cur = con.execute("SELECT * FROM ls_annotation_versions WHERE project_id = ? ORDER BY seen_at",
                          [project_id])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    return store.run(go)


def _task_ids(server: LSServer, project_id: int) -> list[int]:
    r = httpx.get(f"{server.url}/api/tasks", headers=server.headers(),
                  params={"project": project_id, "page_size": 100}, timeout=60)
    return sorted(int(t["id"]) for t in r.json()["tasks"])


def _cli(monkeypatch: pytest.MonkeyPatch, store: Store, server: LSServer, *args: str) -> Any:
    monkeypatch.setenv("CURATION_DB", str(store.path))
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    return CliRunner().invoke(app, list(args))


def test_deleted_project_is_skipped_reported_and_retired(
    ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "del.duckdb")
    _batch(store, "b1", 2, prefix=f"del1-{tmp_path.name[-6:]}-")
    _batch(store, "b2", 2, prefix=f"del2-{tmp_path.name[-6:]}-")
    api = _api(ls_server)
    first = lsmod.push_batch(store, api, "b1", project=f"del first {tmp_path.name}")
    second = lsmod.push_batch(store, api, "b2", project=f"del second {tmp_path.name}")
    annotate(ls_server, ls_server.token, _task_ids(ls_server, second.project_id)[0], choice("knowledge"))
    r = httpx.delete(f"{ls_server.url}/api/projects/{first.project_id}/", headers=ls_server.headers(),
                     timeout=60)
    assert r.status_code == 204, r.text

    results = {r.project_id: r for r in lsmod.pull(store, api)}
    assert results[first.project_id].status == "skipped"
    assert "no longer exists" in (results[first.project_id].message or "")
    assert results[second.project_id].status == "ok" and results[second.project_id].n_new_rows == 1
    # the command says so with its exit code, after pulling the others
    res = _cli(monkeypatch, store, ls_server, "ls", "pull")
    assert res.exit_code == 1, res.output
    assert "no longer exists" in res.output and "ls retire" in res.output
    res = _cli(monkeypatch, store, ls_server, "ls", "projects", "--json")
    states = {p["project_id"]: p["state"] for p in json.loads(res.output)}
    assert states == {first.project_id: "deleted", second.project_id: "live"}
    # --batch selects by batch; retire takes the deleted one out
    assert [r.project_id for r in lsmod.pull(store, api, batch="b2")] == [second.project_id]
    res = _cli(monkeypatch, store, ls_server, "ls", "retire", str(first.project_id))
    assert res.exit_code == 0 and "retired" in res.output, res.output
    res = _cli(monkeypatch, store, ls_server, "ls", "pull")
    assert res.exit_code == 0, res.output
    assert len(_rows(store)) == 1
    # a re-push of the deleted batch makes a new project (the old one stays retired)
    again = lsmod.push_batch(store, api, "b1", project=f"del first {tmp_path.name}")
    assert again.project_id != first.project_id and again.n_created == 2


def test_config_drift_stops_the_pull_with_the_difference(
    ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "cfg.duckdb")
    _batch(store, "cb", 1, prefix=f"cfg-{tmp_path.name[-6:]}-")
    api = _api(ls_server)
    pushed = lsmod.push_batch(store, api, "cb", project=f"cfg {tmp_path.name}")
    pid = pushed.project_id
    config = lsmod.load_label_config()
    renamed = config.replace('<Choices name="label"', '<Choices name="kind"')
    url = f"{ls_server.url}/api/projects/{pid}"
    assert httpx.patch(url, headers=ls_server.headers(), json={"label_config": renamed},
                       timeout=60).status_code == 200
    (tid,) = _task_ids(ls_server, pid)
    ann = annotate(ls_server, ls_server.token, tid, [
        {"from_name": "kind", "to_name": "question", "type": "choices",
         "value": {"choices": ["reasoning"]}}])

    (result,) = lsmod.pull(store, api, project=f"cfg {tmp_path.name}")
    assert result.status == "config drift" and not result.complete
    assert '-<Choices name="label"' in (result.message or "")
    assert '+<Choices name="kind"' in (result.message or "")
    assert _rows(store) == [] and _versions(store, pid) == []  # nothing stored, nothing seen
    res = _cli(monkeypatch, store, ls_server, "ls", "pull", "--project", f"cfg {tmp_path.name}")
    assert res.exit_code == 1 and 'name="kind"' in res.output
    # push refuses to add tasks to the drifted project
    res = _cli(monkeypatch, store, ls_server, "ls", "push", "cb", "--project", f"cfg {tmp_path.name}")
    assert res.exit_code != 0 and "labeling config" in res.output

    # the maintainer moves the label back under our config: the pull resumes
    assert httpx.delete(f"{ls_server.url}/api/annotations/{ann['id']}/", headers=ls_server.headers(),
                        timeout=60).status_code == 204
    assert httpx.patch(url, headers=ls_server.headers(), json={"label_config": config},
                       timeout=60).status_code == 200
    annotate(ls_server, ls_server.token, tid, choice("reasoning"))
    (result,) = lsmod.pull(store, api, project=f"cfg {tmp_path.name}")
    assert result.status == "ok" and result.n_new_rows == 1
    assert [(r["action"], r["label"]) for r in _rows(store)] == [("label", "reasoning")]


def test_edit_by_another_user_is_the_editors_row_and_ground_truth_adds_nothing(
    ls_server: LSServer, tmp_path: Path
) -> None:
    store = Store(tmp_path / "edit.duckdb")
    qids = _batch(store, "eb", 1, overlap=2, prefix=f"edit-{tmp_path.name[-6:]}-")
    api = _api(ls_server)
    pushed = lsmod.push_batch(store, api, "eb", project=f"edit {tmp_path.name}")
    alice_email, bob_email = f"alice-{tmp_path.name}@example.com", f"bob-{tmp_path.name}@example.com"
    alice, bob = ls_server.annotator(alice_email), ls_server.annotator(bob_email)
    task = next_task(ls_server, alice, pushed.project_id)
    assert task is not None
    ann = annotate(ls_server, alice, task["id"], choice("reasoning", confidence=3))
    assert len(lsmod.pull(store, api)) == 1

    # bob edits alice's annotation (the Community Edition lets him)
    r = httpx.patch(f"{ls_server.url}/api/annotations/{ann['id']}/", headers=ls_server.headers(bob),
                    json={"result": choice("knowledge")}, timeout=60)
    assert r.status_code == 200 and r.json()["completed_by"] == ann["completed_by"], r.text
    (result,) = lsmod.pull(store, api)
    assert result.n_new_rows == 1
    last = _rows(store)[-1]
    assert (last["annotator"], last["label"]) == (bob_email, "knowledge")
    assert "edited_from=" in last["source_ref"]
    current = store.run(lambda con: current_labels(con, question_ids=qids))
    assert {(c["annotator"], c["label"]) for c in current} == {
        (alice_email, "reasoning"), (bob_email, "knowledge")}
    edit = _versions(store, pushed.project_id)[-1]
    assert edit["edited_from"] == alice_email and edit["annotator"] == bob_email
    assert edit["ls_updated_by"] != edit["ls_completed_by"]

    # toggling ground truth changes updated_at but says nothing new: no row
    r = httpx.patch(f"{ls_server.url}/api/annotations/{ann['id']}/", headers=ls_server.headers(),
                    json={"ground_truth": True}, timeout=60)
    assert r.status_code == 200, r.text
    n_before = len(_rows(store))
    (result,) = lsmod.pull(store, api)
    assert result.n_new_rows == 0 and len(_rows(store)) == n_before
    assert _versions(store, pushed.project_id)[-1]["ground_truth"] is True
    assert lsmod.pull(store, api)[0].n_new_rows == 0


def test_skips_do_not_complete_a_batch_and_a_wrong_key_fails_status(
    ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "skip.duckdb")
    _batch(store, "sb", 1, overlap=2, prefix=f"skip-{tmp_path.name[-6:]}-")
    api = _api(ls_server)
    pushed = lsmod.push_batch(store, api, "sb", project=f"skip {tmp_path.name}")
    a = ls_server.annotator(f"sa-{tmp_path.name}@example.com")
    b = ls_server.annotator(f"sb-{tmp_path.name}@example.com")
    (tid,) = _task_ids(ls_server, pushed.project_id)
    annotate(ls_server, a, tid, choice("reasoning"))
    r = httpx.post(f"{ls_server.url}/api/tasks/{tid}/annotations/", headers=ls_server.headers(b),
                   json={"result": [], "was_cancelled": True}, timeout=60)
    assert r.status_code == 201, r.text
    lsmod.pull(store, api)
    task = httpx.get(f"{ls_server.url}/api/tasks/{tid}", headers=ls_server.headers(), timeout=60).json()
    assert task["is_labeled"] is False  # Label Studio agrees: not done
    (proj,) = lsmod.status(store, ls_server.url, api)["projects"]
    assert (proj["completed"], proj["pending"], proj["annotations"], proj["skips"]) == (0, 1, 1, 1)

    res = _cli(monkeypatch, store, ls_server, "ls", "status", "--api-key", "f" * 40)
    assert res.exit_code != 0 and "HTTP 401" in res.output
    res = _cli(monkeypatch, store, ls_server, "ls", "status")
    assert res.exit_code == 0 and f"/projects/{pushed.project_id}/data" in res.output


def test_same_server_under_another_url_is_recognised_and_moved(
    ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "url.duckdb")
    _batch(store, "ub", 3, prefix=f"url-{tmp_path.name[-6:]}-")
    pushed = lsmod.push_batch(store, _api(ls_server), "ub", project=f"url {tmp_path.name}")
    for tid in _task_ids(ls_server, pushed.project_id):
        annotate(ls_server, ls_server.token, tid, choice("knowledge"))
    assert lsmod.pull(store, _api(ls_server))[0].n_new_rows == 3
    other = ls_server.url.replace("127.0.0.1", "localhost")
    via_other = _api(ls_server, other)
    (again,) = lsmod.pull(store, via_other)
    assert again.project_id == pushed.project_id and again.n_new_rows == 0
    again_push = lsmod.push_batch(store, via_other, "ub", project=f"url {tmp_path.name}")
    assert again_push.project_id == pushed.project_id and again_push.n_created == 0
    assert len(_rows(store)) == 3
    res = _cli(monkeypatch, store, ls_server, "ls", "servers", "--json")
    (srv,) = json.loads(res.output)
    assert srv["url"] == srv["server"] == ls_server.url and srv["identity"]
    res = _cli(monkeypatch, store, ls_server, "ls", "move", "--from", ls_server.url, "--to", other)
    assert res.exit_code == 0, res.output
    (srv,) = lsmod.servers(store)
    assert (srv["server"], srv["url"]) == (ls_server.url, other)
    status = lsmod.status(store, other, via_other)
    assert status["projects"][0]["url"].startswith(other) and status["projects"][0]["annotations"] == 3
    # a wrong port: "cannot reach", not "nothing was pushed"
    with pytest.raises(lsmod.LabelStudioError, match="cannot reach"):
        lsmod.pull(store, _api(ls_server, "http://127.0.0.1:9"))


def test_settings_drift_is_reported_and_fixed(ls_server: LSServer, tmp_path: Path) -> None:
    store = Store(tmp_path / "set.duckdb")
    _batch(store, "gb", 2, overlap=3, kind="gold", prefix=f"set-{tmp_path.name[-6:]}-")
    api = _api(ls_server)
    name = f"settings {tmp_path.name}"
    pushed = lsmod.push_batch(store, api, "gb", project=name)
    url = f"{ls_server.url}/api/projects/{pushed.project_id}"
    r = httpx.patch(url, headers=ls_server.headers(), timeout=60,
                    json={"maximum_annotations": 1, "show_collab_predictions": True})
    assert r.status_code == 200, r.text
    report = lsmod.push_batch(store, api, "gb", project=name)
    assert report.n_created == 0 and not report.settings_fixed
    assert "maximum_annotations is 1 (pushed 3)" in (report.settings_drift or "")
    assert "show_collab_predictions" in (report.settings_drift or "")
    (pulled,) = lsmod.pull(store, api)
    assert pulled.status == "ok" and "maximum_annotations" in (pulled.settings_drift or "")
    fixed = lsmod.push_batch(store, api, "gb", project=name, fix_settings=True)
    assert fixed.settings_fixed
    project = httpx.get(url, headers=ls_server.headers(), timeout=60).json()
    assert project["maximum_annotations"] == 3 and project["show_collab_predictions"] is False
    assert lsmod.push_batch(store, api, "gb", project=name).settings_drift is None


def test_unknown_label_exits_non_zero_after_storing_valid_rows_and_over_k_is_flagged(
    ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "unk.duckdb")
    _batch(store, "kb", 2, overlap=1, prefix=f"unk-{tmp_path.name[-6:]}-")
    api = _api(ls_server)
    pushed = lsmod.push_batch(store, api, "kb", project=f"unk {tmp_path.name}")
    t1, t2 = _task_ids(ls_server, pushed.project_id)
    annotate(ls_server, ls_server.token, t1, choice("reasoning"))
    annotate(ls_server, ls_server.token, t2, choice("other"))  # the server accepts it
    extra = ls_server.annotator(f"extra-{tmp_path.name}@example.com")
    annotate(ls_server, extra, t1, choice("knowledge", rationale="x"))  # a direct POST over K=1
    res = _cli(monkeypatch, store, ls_server, "ls", "pull", "--project", f"unk {tmp_path.name}")
    assert res.exit_code == 1, res.output
    assert "'other' is not one of" in res.output and "overlap 1" in res.output
    assert sorted(r["label"] for r in _rows(store)) == ["knowledge", "reasoning"]
    (proj,) = lsmod.status(store, ls_server.url)["projects"]
    assert proj["over_k"] == 1
    # the unknown label is asked about again (not marked seen); the valid rows are not repeated
    (again,) = lsmod.pull(store, api)
    assert again.n_invalid == 1 and again.n_new_rows == 0 and len(again.over_k) == 1


def test_guidelines_are_html_label_studio_keeps(ls_server: LSServer, tmp_path: Path) -> None:
    store = Store(tmp_path / "g.duckdb")
    _batch(store, "hb", 1, prefix=f"guide-{tmp_path.name[-6:]}-")
    pushed = lsmod.push_batch(store, _api(ls_server), "hb", project=f"guide {tmp_path.name}")
    project = httpx.get(f"{ls_server.url}/api/projects/{pushed.project_id}",
                        headers=ls_server.headers(), timeout=60).json()
    shown = project["expert_instruction"]
    assert "<h1>" in shown and "<strong>" in shown and "<ol>" in shown
    assert "**" not in shown and "\n# " not in shown

    # and as an annotator sees it: the labeling page's instructions window, in Chromium
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{ls_server.url}/user/login/")
            page.fill('input[name="email"]', ls_server.admin_email)
            page.fill('input[name="password"]', ls_server.admin_password)
            page.click('button[type="submit"]')
            page.wait_for_load_state("networkidle")
            page.goto(f"{ls_server.url}/projects/{pushed.project_id}/data?labeling=1")
            heading = page.locator("h1", has_text="Annotation guidelines")
            heading.wait_for(timeout=60_000)
            body_size = page.locator("p").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            head_size = heading.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            text = page.inner_text("body")
        finally:
            browser.close()
    assert head_size > body_size  # a heading, not a run-on paragraph
    assert "The two labels" in text and "**" not in text and "\n# " not in text
