"""AppTest: the maintainer Releases page — list, manifest, dry run first, then publish to the
Hub TEST DOUBLE; the page cannot choose the endpoint (the server's HF_ENDPOINT, https only);
annotators cannot open it."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from hub_double import HubDouble
from release_fixture import build_store
from streamlit.testing.v1 import AppTest
from test_app_annotator import APP, password_hash

from curation import release
from curation.store import Store, utcnow
from curation.store import releases as rstore

pytestmark = pytest.mark.integration

TOKEN = "hf_PAGEtokenSECRET0000000000"


@pytest.fixture
def page_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, HubDouble]]:
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    store = build_store(tmp_path)
    monkeypatch.setenv("CURATION_DB", str(store.path))
    st.cache_resource.clear()
    st.cache_data.clear()
    store.run(lambda con: con.executemany(
        "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
        [["boss", "maintainer", password_hash(), utcnow()], ["ann1", "annotator", password_hash(), utcnow()]],
    ))
    release.build_release(store, version="v1", out=tmp_path / "exports")
    double = HubDouble(TOKEN).start()
    yield store, double
    double.stop()


def _login(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input("password-1")
    at.button[0].click().run()
    return at


def test_dry_run_then_publish(page_store: tuple[Store, HubDouble], monkeypatch: pytest.MonkeyPatch) -> None:
    store, double = page_store
    # the server is configured for the double, a plain-http loopback endpoint, which only an
    # explicit flag allows: the page has none, so the test gives it to the function the page calls
    monkeypatch.setenv("HF_ENDPOINT", double.endpoint)
    monkeypatch.setattr(release, "publish_release",
                        functools.partial(release.publish_release, allow_insecure_loopback=True))
    at = _login("boss")
    at.switch_page("pages/releases.py").run()
    assert not at.exception and not at.error
    assert at.dataframe and at.metric[0].value == "6"
    assert not [b for b in at.button if b.key == "publish_go"]  # no publish before a dry run
    assert [t.key for t in at.text_input] == ["publish_repo"]  # no endpoint field
    at.text_input(key="publish_repo").input("lab/page")
    at.button[0].click().run()  # the form's Dry run button
    assert not at.error, [e.value for e in at.error]
    assert any("Dry run:" in t.value and "token found" in t.value for t in at.text)
    assert double.writes() == []  # the dry run only reads (whoami, repo, tags)
    at.button(key="publish_go").click().run()
    assert not at.error, [e.value for e in at.error]
    assert any("Published lab/page" in s.value for s in at.success)
    assert double.repo("lab/page").tags.keys() == {"v1"}
    assert store.run(lambda con: rstore.list_publications(con, "v1"))[0]["repo_id"] == "lab/page"
    page_text = " ".join(str(e.value) for e in [*at.text, *at.success, *at.markdown, *at.caption])
    assert TOKEN not in page_text


def test_page_cannot_send_the_token_over_http(page_store: tuple[Store, HubDouble],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain-http HF_ENDPOINT is refused by the page's dry run (the page has no flag to
    allow it, and no endpoint field): nothing reaches the server."""
    _, double = page_store
    monkeypatch.setenv("HF_ENDPOINT", double.endpoint)
    at = _login("boss")
    at.switch_page("pages/releases.py").run()
    with pytest.raises(KeyError):
        at.text_input(key="publish_endpoint")
    at.text_input(key="publish_repo").input("lab/page")
    at.button[0].click().run()
    assert any("plain http" in e.value and "HF_ENDPOINT" in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if b.key == "publish_go"]
    assert double.state.requests == []


def test_annotator_cannot_open(page_store: tuple[Store, HubDouble]) -> None:
    at = _login("ann1")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/releases.py")
    direct = AppTest.from_file(str(Path(APP).parent / "pages" / "releases.py"), default_timeout=30)
    direct.session_state["auth_user"] = at.session_state["auth_user"]
    direct.run()
    assert [e.value for e in direct.error] == ["This page needs the maintainer role; you are logged in as annotator."]
    assert not direct.dataframe
