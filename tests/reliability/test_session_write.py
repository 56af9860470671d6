"""The session and the account are checked before any write, in the button's callback.

A click reaches the label page's callback before the page (and its `require_role`) runs
again, so the check at the top of the page came too late: with `last_seen` three hours
back, "Reasoning" stored the label and only then was the session cleared, and a disabled
account stored one more label. Now the callback re-checks first (server side: the session
in `st.session_state`, the account re-read from the store) and writes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from relkit import seed_questions
from streamlit.testing.v1 import AppTest

from curation.store import Store, utcnow
from curation.store import annotations as astore
from curation.store import users as users_store

pytestmark = pytest.mark.reliability

APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")
PASSWORD = "correct-horse-battery"
LOGIN_FORM = ["login_name", "login_password"]


@pytest.fixture
def app_store(app_store: Store) -> Store:
    store = app_store  # tests/conftest.py's, seeded here
    seed_questions(store, 4, prefix="sw", batch_id="gold-sw", kind="gold", overlap=1)
    store.run(lambda con: users_store.add_user(con, "ann1", role="annotator", password=PASSWORD))
    return store


def login(name: str = "ann1") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert at.session_state["lab_task"] is not None
    return at


def press(at: AppTest, name: str) -> AppTest:
    """Click an action button of the current render (its key carries the render's event id)."""
    return at.button(key=f"{name}_{at.session_state['lab_event']}").click().run()


def age_session(at: AppTest, **ago: timedelta) -> None:
    """Move the session's `login_at` / `last_seen` / `checked_at` into the past."""
    user: dict[str, Any] = dict(at.session_state["auth_user"])
    for key, delta in ago.items():
        user[key] = utcnow() - delta
    at.session_state["auth_user"] = user


def rows(store: Store) -> list[tuple[str, str]]:
    return [(r["question_id"], r["action"]) for r in store.run(astore.annotation_rows)]


def shows_login(at: AppTest, message: str) -> None:
    """Logged out, the reason on screen, no action left. (The router shows the login page
    with the reason as an info; AppTest reruns the label page itself after a click, whose
    `require_role` then shows the reason as an error: either is what a person would see.)"""
    assert "auth_user" not in at.session_state
    assert message in [e.value for e in at.error] + [i.value for i in at.info]
    assert not [b.key for b in at.button if b.key and b.key.startswith("btn_")]
    login_page = AppTest.from_file(APP, default_timeout=60)
    login_page.session_state["auth_message"] = at.session_state["auth_message"]
    login_page.run()
    assert [t.key for t in login_page.text_input] == LOGIN_FORM
    assert [i.value for i in login_page.info] == [message]


@pytest.mark.parametrize("button", ["btn_reasoning", "btn_knowledge", "btn_skip"])
def test_idle_session_writes_nothing(app_store: Store, button: str) -> None:
    at = login()
    age_session(at, last_seen=timedelta(hours=3))
    press(at, button)
    assert rows(app_store) == []
    shows_login(at, "Your session expired; please log in again.")


def test_session_past_its_absolute_limit_writes_nothing(app_store: Store) -> None:
    at = login()
    age_session(at, login_at=timedelta(hours=13))
    press(at, "btn_reasoning")
    assert rows(app_store) == []
    shows_login(at, "Your session expired; please log in again.")


def test_disabled_account_writes_nothing_even_right_after_a_recheck(app_store: Store) -> None:
    """Disabled a second after the last account check: the next click is still refused
    (a write re-reads the account, whatever the recheck interval)."""
    at = login()
    app_store.run(lambda con: users_store.set_disabled(con, "ann1", True))
    press(at, "btn_reasoning")
    assert rows(app_store) == []
    shows_login(at, "This account is disabled.")


def test_deleted_account_writes_nothing(app_store: Store) -> None:
    at = login()
    app_store.run(lambda con: con.execute("DELETE FROM users WHERE name = 'ann1'"))
    press(at, "btn_skip")
    assert rows(app_store) == []
    shows_login(at, "This account is disabled.")


def test_undo_of_an_expired_session_writes_nothing(app_store: Store) -> None:
    at = login()
    press(at, "btn_reasoning")
    assert [a for _, a in rows(app_store)] == ["label"]
    age_session(at, last_seen=timedelta(hours=3))
    press(at, "btn_undo")
    assert [a for _, a in rows(app_store)] == ["label"]  # no retract
    shows_login(at, "Your session expired; please log in again.")


def test_undo_of_a_disabled_account_writes_nothing(app_store: Store) -> None:
    at = login()
    press(at, "btn_knowledge")
    app_store.run(lambda con: users_store.set_disabled(con, "ann1", True))
    press(at, "btn_undo")
    assert [a for _, a in rows(app_store)] == ["label"]
    shows_login(at, "This account is disabled.")


def test_active_session_still_writes(app_store: Store) -> None:
    at = login()
    age_session(at, last_seen=timedelta(minutes=30), checked_at=timedelta(minutes=5))
    press(at, "btn_reasoning")
    assert [a for _, a in rows(app_store)] == ["label"]
    assert not at.error and at.session_state["lab_task"] is not None
