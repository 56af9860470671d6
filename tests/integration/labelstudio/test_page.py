"""AppTest: the maintainer Label Studio page against the real server -- status, link, the
pull button -- never shows the key; annotators cannot open it."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from ls_testkit import LSServer, add_questions, annotate, choice, next_task
from streamlit.testing.v1 import AppTest

from curation import labelstudio as lsmod
from curation.auth import hash_password
from curation.store import Store, utcnow
from curation.store.annotations import current_labels
from curation.store.batches import BatchItem, create_batch

pytestmark = [pytest.mark.integration, pytest.mark.labelstudio]

APP = str(Path(__file__).resolve().parents[3] / "ui" / "app.py")
PAGE = "pages/labelstudio.py"


@pytest.fixture
def page_store(ls_server: LSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    store = Store(tmp_path / "page.duckdb")
    monkeypatch.setenv("CURATION_DB", str(store.path))
    monkeypatch.setenv("LABEL_STUDIO_URL", ls_server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", ls_server.token)
    st.cache_resource.clear()
    st.cache_data.clear()
    pw = hash_password("password-1")
    store.run(lambda con: con.executemany(
        "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
        [["boss", "maintainer", pw, utcnow()], ["ann1", "annotator", pw, utcnow()]],
    ))
    return store


def _login(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input("password-1")
    at.button[0].click().run()
    return at


def test_status_link_and_pull_button(ls_server: LSServer, page_store: Store, tmp_path: Path) -> None:
    qids = add_questions(page_store, 3, prefix="page-")
    page_store.run(lambda con: create_batch(
        con, batch_id="pb", kind="manual", items=[BatchItem(q) for q in qids], overlap=1,
        show_suggestions=False, created_at=utcnow(),
    ))
    api = lsmod.LabelStudioApi(lsmod.Connection(ls_server.url, ls_server.token))
    pushed = lsmod.push_batch(page_store, api, "pb", project=f"page {tmp_path.name}")
    token = ls_server.annotator("page-annotator@example.com")
    task = next_task(ls_server, token, pushed.project_id)
    assert task is not None
    annotate(ls_server, token, task["id"], choice("reasoning"))

    at = _login("boss")
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [m.value for m in at.metric][:4] == ["3", "0", "3", "0"]
    at.button(key="ls_pull").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value == "Pulled." for s in at.success)
    assert [m.value for m in at.metric][:4] == ["3", "1", "2", "1"]
    labels = page_store.run(lambda con: current_labels(con, sources=["label_studio"]))
    assert [(r["annotator"], r["label"]) for r in labels] == [("page-annotator@example.com", "reasoning")]
    shown = " ".join(str(e.value) for e in [*at.caption, *at.markdown, *at.success, *at.warning])
    assert ls_server.token not in shown


def test_annotator_cannot_open(page_store: Store) -> None:
    at = _login("ann1")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
