"""Helpers shared by every page of the Streamlit app: the store, the logged-in user, roles.

Pages call these and `curation/` functions only. Every page starts with
`user = require_role("annotator")` or `require_role("maintainer")`, and every callback that
writes starts with `require_active_user(role)` (the page's check ran before the click): the router
(`ui/app.py`) registers only the pages a role may open (the server-side enforcement: an
unregistered page cannot be reached by URL) and this check is the second line of defence.

Durable state lives in `st.session_state` keys that no widget owns (`auth_user`, ...).

Sessions across reloads and tabs. A Streamlit session is one websocket: a reload or a new tab
starts a new one with an empty `st.session_state`. So a login also opens a server-side session
(`curation.services.annotate.start_session`: a random 256-bit token, stored only as its SHA-256
in `app_sessions`, expiring by `auth.SessionPolicy`, revoked by logout, by disabling the account
or by a password reset) and the browser keeps the token in a cookie, `curation_session`
(`Path=/; SameSite=Strict`, `Secure` over https, `Max-Age` = the absolute session limit). A new
websocket reads it with `st.context.cookies` (sent with the websocket's handshake) and resumes the
session after checking it in the store. The choices, and what they cost:

- A cookie, not the URL (`st.query_params`): a token in the URL leaks into browser history,
  screenshots, copied deep links and proxy logs, and is sent to no-one else by a cookie.
- Set from JavaScript (`st.html(..., unsafe_allow_javascript=True)`, our own constant snippet with
  the token only; no user text ever goes into it), so it cannot be `HttpOnly`: a script injected
  into the page could read it. Streamlit 1.x gives a script no way to send a `Set-Cookie` header;
  `st.App` (1.5x+, Starlette) can add an HTTP route that would, but it is new, changes the server
  the app runs on and needs a second entry file, so it is not used here. The exposure is bounded:
  the app shows all untrusted text inertly (`show_plain`: `st.text`, never HTML), `SameSite=Strict`
  keeps the cookie off cross-site requests, and a stolen token dies with logout, the idle and
  absolute limits, disabling the account or a password reset (all checked on the server).
- Checked on the server at most once per `SessionPolicy.recheck` and before every write
  (`require_active_user`), in the same query as the account, so a logout in one tab ends the
  others within a minute and at once for writes.
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


COOKIE_KEY = "auth_cookie"  # the cookie change to send to the browser on the next render
COOKIE_TRIED_KEY = "auth_cookie_tried"  # this websocket's cookie was looked at already


def log_in(user: dict[str, Any]) -> None:
    """Start the session of an authenticated account: a server-side session whose token the
    browser keeps in a cookie (`cookie_script` sends it), so a reload stays logged in."""
    from curation.services.annotate import start_session

    token = start_session(get_store(), user["name"])
    now = utcnow()
    st.session_state[USER_KEY] = {
        "name": user["name"],
        "role": user["role"],
        "login_at": now,
        "last_seen": now,
        "checked_at": now,
        "token": token,
    }
    st.session_state[COOKIE_KEY] = ("set", token)
    st.session_state[COOKIE_TRIED_KEY] = True


def _forget(message: str | None) -> None:
    """Clear this browser session (state and cookie) without touching the server's row."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[COOKIE_KEY] = ("clear", "")
    st.session_state[COOKIE_TRIED_KEY] = True  # this websocket's cookie is the old token
    if message:
        st.session_state["auth_message"] = message


def log_out() -> None:
    """Revoke the server-side session (every tab holding its cookie is logged out) and forget it."""
    user = st.session_state.get(USER_KEY) or {}
    if user.get("token"):
        from curation.services.annotate import end_session

        end_session(get_store(), user["token"])
    _forget(None)


def cookie_script() -> None:
    """Send the pending cookie change (set after login, clear after logout) to the browser, once.
    The snippet is constant apart from the token (URL-safe base64 by construction)."""
    action = st.session_state.pop(COOKIE_KEY, None)
    if action is None:
        return
    kind, token = action
    if kind == "set" and auth.session_token_hash(token) is None:
        return
    max_age = int(session_policy().absolute.total_seconds()) if kind == "set" else 0
    st.html(
        "<script>(function(){var s=location.protocol==='https:'?'; Secure':'';"
        f"document.cookie='{auth.SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; SameSite=Strict'+s;"
        "})();</script>",
        unsafe_allow_javascript=True,
    )


def _cookie_token() -> str | None:
    try:
        token = st.context.cookies.get(auth.SESSION_COOKIE)
    except Exception:  # no browser request behind this session (AppTest, bare mode)
        return None
    return token if isinstance(token, str) and token else None


def _resume_from_cookie() -> dict[str, Any] | None:
    """Once per websocket with no logged-in user: the session named by the browser's cookie,
    checked in the store (known, not revoked, within the limits, account enabled), or None."""
    if st.session_state.get(COOKIE_TRIED_KEY):
        return None
    st.session_state[COOKIE_TRIED_KEY] = True
    token = _cookie_token()
    if token is None:
        return None
    from curation.services.annotate import resume_session

    res = resume_session(get_store(), token, session_policy())
    if res["user"] is None:
        _forget(res["why"])
        return None
    user = {**res["user"], "checked_at": utcnow(), "token": token}
    st.session_state[USER_KEY] = user
    return user


def current_user(*, recheck_account: bool = False) -> dict[str, Any] | None:
    """The logged-in user of this session, or None (not logged in, expired, revoked or disabled).

    A new websocket (reload, new tab) resumes the session named by the browser's cookie. Touches
    `last_seen` (idle expiry) and re-reads the session and the account from the store at most
    once per `SessionPolicy.recheck` so a logout elsewhere, a disabled account or a changed role
    takes effect quickly; `recheck_account=True` re-reads them now (before a write:
    `require_active_user`).
    """
    user = st.session_state.get(USER_KEY) or _resume_from_cookie()
    if not user:
        return None
    policy = session_policy()
    now = utcnow()
    if not policy.is_valid(login_at=user["login_at"], last_seen=user["last_seen"], now=now):
        log_out()
        st.session_state["auth_message"] = "Your session expired; please log in again."
        return None
    if recheck_account or policy.needs_recheck(checked_at=user["checked_at"], now=now):
        if user.get("token"):
            from curation.services.annotate import resume_session

            res = resume_session(get_store(), user["token"], policy)
            row = res["user"]
            if row is None:
                _forget(res["why"] or "You were logged out (in another tab or window?).")
                return None
        else:  # a session made without a token (tests that plant `auth_user`): the account only
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
