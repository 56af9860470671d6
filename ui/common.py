"""Helpers shared by every page of the Streamlit app: the store, the logged-in user, roles.

Pages call these and `curation/` functions only. Every page starts with
`user = require_role("annotator")` or `require_role("maintainer")`, and every callback that
writes starts with `require_active_user(role)` (the page's check ran before the click): the router
(`ui/app.py`) registers only the pages a role may open (the server-side enforcement: an
unregistered page cannot be reached by URL) and this check is the second line of defence.

Durable state lives in `st.session_state` keys that no widget owns (`auth_user`, ...).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import streamlit as st

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project root: make `curation` importable
# from a source checkout too (an installed package needs nothing).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from curation import auth  # noqa: E402
from curation.store import Store, utcnow  # noqa: E402

USER_KEY = "auth_user"  # {"name", "role", "login_at", "last_seen", "checked_at"}
ROLE_RANK = {"annotator": 1, "maintainer": 2}
APP_DB_THREADS = 1


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    # many sessions, small queries: one DuckDB thread unless CURATION_DB_THREADS says otherwise.
    # create=False: a mistyped CURATION_DB is a message (`ui.app`), never a new empty store.
    return Store(path, create=False, threads=APP_DB_THREADS if not os.environ.get("CURATION_DB_THREADS") else None)


def get_store() -> Store:
    """The store named by `CURATION_DB` (read when called); cached per path. Holds no connection."""
    return _store(os.environ.get("CURATION_DB") or "curation.duckdb")


@st.cache_resource(show_spinner=False)
def login_limiter() -> auth.LoginGuard:
    """One failed-login guard per server process (all sessions share it)."""
    return auth.LoginGuard()


def session_policy() -> auth.SessionPolicy:
    return auth.SessionPolicy.from_env()


def log_in(user: dict[str, Any]) -> None:
    now = utcnow()
    st.session_state[USER_KEY] = {
        "name": user["name"],
        "role": user["role"],
        "login_at": now,
        "last_seen": now,
        "checked_at": now,
    }


def log_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_user(*, recheck_account: bool = False) -> dict[str, Any] | None:
    """The logged-in user of this session, or None (not logged in, expired or disabled).

    Touches `last_seen` (idle expiry) and re-reads the account from the store at most once
    per `SessionPolicy.recheck` so a disabled account or changed role takes effect quickly;
    `recheck_account=True` re-reads it now (before a write: `require_active_user`).
    """
    user = st.session_state.get(USER_KEY)
    if not user:
        return None
    policy = session_policy()
    now = utcnow()
    if not policy.is_valid(login_at=user["login_at"], last_seen=user["last_seen"], now=now):
        log_out()
        st.session_state["auth_message"] = "Your session expired; please log in again."
        return None
    if recheck_account or policy.needs_recheck(checked_at=user["checked_at"], now=now):
        from curation.services.annotate import find_user

        row = find_user(get_store(), user["name"])
        if row is None or row["disabled"]:
            log_out()
            st.session_state["auth_message"] = "This account is disabled."
            return None
        user["role"] = row["role"]
        user["checked_at"] = now
    user["last_seen"] = now
    return dict(user)


def has_role(user: dict[str, Any] | None, role: str) -> bool:
    """Maintainers may do everything annotators may; annotators only their own work."""
    if user is None:
        return False
    return ROLE_RANK.get(user["role"], 0) >= ROLE_RANK[role]


def require_role(role: str) -> dict[str, Any]:
    """Return the current user if they hold `role` (or a higher one); else show an error and stop."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    user = current_user()
    if user is None:
        # why the session just ended, if it did (expired, disabled); the login page shows it too
        st.error(st.session_state.get("auth_message") or "Please log in first.")
        st.stop()
    if not has_role(user, role):
        st.error(f"This page needs the {role} role; you are logged in as {user['role']}.")
        st.stop()
    assert user is not None
    return user


def require_active_user(role: str) -> dict[str, Any] | None:
    """Before a write, in the callback itself: the current user, checked now, or None, and
    then nothing may be written.

    A click runs its callback before the page (and its `require_role`) runs again, so a
    write cannot lean on the check of the page's previous run. This checks the session
    (idle and absolute expiry) and re-reads the account from the store whatever the recheck
    interval: it must exist, be enabled and hold `role`. An expired session or a missing or
    disabled account is logged out here (the router then shows the login page and why); a
    role too low leaves the session alone and the page's `require_role` says so. Server side
    only: the session lives in `st.session_state`, the account in the store.
    """
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")
    user = current_user(recheck_account=True)
    return user if has_role(user, role) else None


def writer(role: str) -> dict[str, Any]:
    """In a page body, right before a write: `require_active_user(role)`, or rerun (the router
    then shows the login page and why) so that nothing is written."""
    user = require_active_user(role)
    if user is None:
        st.rerun()
    assert user is not None
    return user


def show_plain(text: str) -> None:
    """Render untrusted text (question, options) literally: never as HTML or markdown."""
    st.text(text)
