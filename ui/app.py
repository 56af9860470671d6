"""Streamlit router: login, then `st.navigation` over the pages the user's role may open.

Run with `curation app` (or `streamlit run ui/app.py`); the store is `$CURATION_DB`.
Pages that are not registered for a role cannot be reached by URL: that is the server-side
enforcement. Every page re-checks its role with `ui.common.require_role` as well.

Deep links: logged out, every page's URL (`/agreement`, ...) is registered as the login form
(hidden from the menu), so a link opens the form, not "Page not found"; after login the rerun
asks for the same URL, which is the real page if the role has it and the role's default page
otherwise. Default pages: annotators land on Label, maintainers on the Overview (a
maintainer's login leases no question). Sessions survive a reload: `ui.common`.
"""

from __future__ import annotations

import sys
from pathlib import Path

_UI = Path(__file__).resolve().parent
for _p in (str(_UI.parent), str(_UI)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import streamlit as st  # noqa: E402

from ui.common import cookie_script, current_user, get_store, log_in, log_out, login_limiter  # noqa: E402

PAGES = _UI / "pages"
FAVICON = _UI / "static" / "favicon.png"  # shipped: no icon font fetched from a CDN
DEFAULT_PAGE = {"annotator": "label.py", "maintainer": "overview.py"}


def login_page() -> None:
    from curation.auth import check_login
    from curation.services.annotate import find_user
    from curation.store import utcnow

    st.title("Reasoning vs knowledge: annotation")
    message = st.session_state.pop("auth_message", None)
    if message:
        st.info(message)
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    limiter = login_limiter()
    now = utcnow()
    address = st.context.ip_address  # None when unknown (not a str without a browser: AppTest)
    client = address if isinstance(address, str) else None
    wait = limiter.retry_after(name, client, now)
    if wait > 0:
        st.error(f"Too many failed attempts; try again in {int(wait) + 1} s.")
        return
    row = find_user(get_store(), name)
    ok = check_login(row["password_hash"] if row else None, password)
    if not ok or row is None or row["disabled"]:
        limiter.record_failure(name, client, now)
        st.error("Wrong user name or password.")
        return
    limiter.record_success(name, client)
    log_in({"name": row["name"], "role": row["role"]})
    st.rerun()


def page_specs(role: str) -> dict[str, list[tuple[str, str, str]]]:
    """Which page files a role may open, by section: `(filename, title, icon)`. Nothing else
    is registered with `st.navigation`, so nothing else can be reached, even by URL."""
    sections: dict[str, list[tuple[str, str, str]]] = {
        "Annotate": [
            ("label.py", "Label", ":material/label:"),
            ("progress.py", "My progress", ":material/timeline:"),
        ]
    }
    if role == "maintainer":
        sections["Maintain"] = [
            ("overview.py", "Overview", ":material/dashboard:"),
            ("agreement.py", "Agreement", ":material/handshake:"),
            ("adjudicate.py", "Adjudication", ":material/gavel:"),
            ("assignment.py", "Assignment", ":material/assignment:"),
            ("models.py", "Models", ":material/model_training:"),
            ("loop.py", "Loop", ":material/autorenew:"),
            ("labelstudio.py", "Label Studio", ":material/sync_alt:"),
            ("releases.py", "Releases", ":material/inventory_2:"),
        ]
    return sections


def url_path(filename: str) -> str:
    """A page's URL path: its file name without `.py` (`/agreement`)."""
    return filename.removesuffix(".py")


def pages_for(role: str) -> dict[str, list[st.Page]]:
    default = DEFAULT_PAGE.get(role, "label.py")
    return {
        section: [
            st.Page(str(PAGES / filename), title=title, icon=icon, url_path=url_path(filename),
                    default=(filename == default))
            for filename, title, icon in specs
        ]
        for section, specs in page_specs(role).items()
    }


def login_pages() -> list[st.Page]:
    """Logged out: the login form at `/` and, hidden from the menu, at every page's URL. A page's
    hash is its URL path, so after login the rerun opens the page of the same URL if the role
    has it (Streamlit falls back to the role's default page, silently, if not)."""
    every = [spec[0] for specs in page_specs("maintainer").values() for spec in specs]
    return [st.Page(login_page, title="Log in", icon=":material/login:", default=True)] + [
        st.Page(login_page, title="Log in", icon=":material/login:", url_path=url_path(f), visibility="hidden")
        for f in every
    ]


def main() -> None:
    """Route, and turn a missing or busy store into a message on the page (never a traceback)."""
    from curation.errors import StoreBusyError, StoreMissingError

    st.set_page_config(page_title="curation", page_icon=str(FAVICON) if FAVICON.is_file() else None,
                       layout="wide")
    try:
        route()
    except StoreMissingError as exc:
        st.error(f"{exc} Create one with `curation store init --db PATH` (or `curation demo`), "
                 "point CURATION_DB at it and restart the app.")
    except StoreBusyError as exc:
        st.error(f"The store is busy, nothing was changed: {exc} Try again in a moment.")


def route() -> None:
    user = current_user()
    cookie_script()
    if user is None:
        st.navigation(login_pages(), position="hidden").run()
        return
    with st.sidebar:
        st.caption(f"Logged in as **{user['name']}** ({user['role']})")
        if st.button("Log out", key="logout"):
            log_out()
            st.rerun()
    st.navigation(pages_for(user["role"])).run()


if __name__ == "__main__":  # streamlit runs the script as __main__; tests import pages_for
    main()
