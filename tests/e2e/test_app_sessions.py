"""End to end in a real Chromium (Debian's /usr/bin/chromium via Playwright), the app started the
way a team starts it (`curation app`, from a folder that is not the checkout): sessions that
survive a reload and a new tab and end with logout or a disabled account, deep links that land
on the asked page after login, each role's default page (a maintainer's login leases nothing)
and a shell without developer controls or a favicon from a CDN.

Screenshots are written to each test's tmp_path.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_app_browser import wait_healthy

from curation.auth import SESSION_COOKIE, hash_password, session_token_hash
from curation.services import annotate
from curation.store import Store, utcnow

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "e2e-password"

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it (apt-get install chromium)
    pytest.skip("Debian chromium not installed at /usr/bin/chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=30_000)  # Streamlit renders over a websocket; a busy CI box is slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(store: Store, n: int = 3) -> None:
    """n synthetic gold questions (K=1); users ann1 (annotator) and boss (maintainer)."""
    pw_hash = hash_password(PASSWORD)

    def work(con: Any) -> None:
        con.executemany(
            "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
            "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [[f"s-{i}", "medqa", "test", f"Synthetic session question {i}?",
              json.dumps({"A": "first option", "B": "second option"}), "A", "first option", "e2e", f"hs-{i}",
              utcnow()] for i in range(n)],
        )
        con.executemany(
            "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
            [[name, role, pw_hash, utcnow()] for name, role in (("ann1", "annotator"), ("boss", "maintainer"))],
        )

    store.run(work)
    annotate.draw_gold(store, n, 1, seed=0, batch_id="gold-sessions")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The app started with `curation app` from an empty folder (so `.streamlit/config.toml` is
    not in the working directory: the command passes its options as flags)."""
    db = tmp_path / "sessions.duckdb"
    store = Store(db)
    seed(store)
    port = free_port()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    log_path = tmp_path / "app.log"
    log = log_path.open("w")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", "from curation.cli import main; main()", "app", "--port", str(port), "--db", str(db)],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, log_path)
        yield {"url": url, "store": store, "log": log_path}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def new_page(ctx: Any) -> Any:
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    return page


def fill_login(page: Any, name: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Logged in as {name}")).to_be_visible()


def wait_idle(page: Any) -> None:
    expect(page.locator("[data-test-script-state]")).to_have_attribute("data-test-script-state", "notRunning")


def session_cookie(ctx: Any) -> dict[str, Any] | None:
    return next((c for c in ctx.cookies() if c["name"] == SESSION_COOKIE), None)


def wait_cookie(ctx: Any, page: Any) -> dict[str, Any]:
    for _ in range(100):
        cookie = session_cookie(ctx)
        if cookie:
            return cookie
        page.wait_for_timeout(100)
    raise AssertionError("no session cookie was set after login")


def leases(store: Store) -> int:
    return int(store.run(lambda con: con.execute("SELECT count(*) FROM assignments").fetchall()[0][0]))


def test_reload_and_new_tab_keep_the_session_and_logout_ends_it(served, browser, tmp_path) -> None:
    url, store = served["url"], served["store"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = new_page(ctx)
    page.goto(url)
    fill_login(page, "ann1")
    expect(page.get_by_text("Synthetic session question", exact=False)).to_be_visible()
    cookie = wait_cookie(ctx, page)
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/" and cookie["expires"] > time.time()
    # only the token's hash is in the store, never the token
    stored = store.run(lambda con: con.execute(
        "SELECT token_hash, user_name, revoked_at FROM app_sessions").fetchall())
    assert stored == [(session_token_hash(cookie["value"]), "ann1", None)]

    page.reload()
    expect(page.get_by_text("Logged in as ann1")).to_be_visible()
    expect(page.get_by_text("Synthetic session question", exact=False)).to_be_visible()
    assert page.get_by_role("button", name="Log in").count() == 0
    page.screenshot(path=str(tmp_path / "after-reload.png"), full_page=True)

    tab = new_page(ctx)  # a new tab of the same browser
    tab.goto(url + "/progress")
    expect(tab.get_by_text("Logged in as ann1")).to_be_visible()
    expect(tab.get_by_role("heading", name="My progress")).to_be_visible()

    # logout in the first tab revokes the session: a reload of the other tab is logged out
    wait_idle(page)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    revoked = store.run(lambda con: con.execute("SELECT revoked_why FROM app_sessions").fetchall())
    assert revoked == [("logout",)]
    tab.reload()
    expect(tab.get_by_role("button", name="Log in")).to_be_visible()
    assert tab.get_by_text("Logged in as ann1").count() == 0
    # a forged cookie logs no-one in
    ctx.add_cookies([{"name": SESSION_COOKIE, "value": "A" * 43, "url": url}])
    tab.reload()
    expect(tab.get_by_role("button", name="Log in")).to_be_visible()
    ctx.close()


def test_a_disabled_account_is_logged_out_on_reload(served, browser) -> None:
    url, store = served["url"], served["store"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = new_page(ctx)
    page.goto(url)
    fill_login(page, "ann1")
    wait_cookie(ctx, page)
    res = annotate.set_disabled(store, "ann1", True)
    assert res["sessions_ended"] == 1
    page.reload()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_text("Your session ended (account disabled).")).to_be_visible()
    ctx.close()


def test_deep_link_opens_the_login_and_lands_on_the_page(served, browser, tmp_path) -> None:
    url, store = served["url"], served["store"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = new_page(ctx)
    page.goto(url + "/agreement")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.wait_for_timeout(500)
    assert page.get_by_text("Page not found").count() == 0
    page.screenshot(path=str(tmp_path / "deep-link-login.png"), full_page=True)
    fill_login(page, "boss")
    expect(page.get_by_role("heading", name="Agreement")).to_be_visible()
    assert page.url.rstrip("/").endswith("/agreement")
    assert page.get_by_text("Page not found").count() == 0
    assert leases(store) == 0
    page.screenshot(path=str(tmp_path / "deep-link-agreement.png"), full_page=True)
    ctx.close()

    # an annotator following a maintainer's link lands on Label, without "Page not found"
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = new_page(ctx)
    page.goto(url + "/agreement")
    fill_login(page, "ann1")
    expect(page.get_by_text("Synthetic session question", exact=False)).to_be_visible()
    page.wait_for_timeout(500)
    assert page.get_by_text("Page not found").count() == 0
    assert page.get_by_role("heading", name="Agreement").count() == 0
    ctx.close()


def test_maintainer_lands_on_the_overview_and_leases_nothing(served, browser, tmp_path) -> None:
    url, store = served["url"], served["store"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = new_page(ctx)
    page.goto(url)
    fill_login(page, "boss")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("3")  # questions
    wait_idle(page)
    page.reload()  # and again after a reload
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    wait_idle(page)
    assert leases(store) == 0
    page.screenshot(path=str(tmp_path / "maintainer-overview.png"), full_page=True)
    page.get_by_role("link", name="Label").first.click()
    expect(page.get_by_text("Synthetic session question", exact=False)).to_be_visible()
    assert leases(store) == 1  # asked for: the maintainer labels
    ctx.close()


def test_shell_has_no_developer_controls_and_no_cdn_favicon(served, browser, tmp_path) -> None:
    url = served["url"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = new_page(ctx)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) and
            not r.url.startswith(("data:", "blob:")) else None)
    page.goto(url)
    fill_login(page, "ann1")
    wait_idle(page)
    page.wait_for_timeout(500)
    assert page.get_by_role("button", name="Deploy").count() == 0
    assert page.get_by_test_id("stAppDeployButton").count() == 0
    icon = page.locator("link[rel~='icon']").first.get_attribute("href") or ""
    assert icon and "://" not in icon.removeprefix(url), icon  # served by the app itself
    with urllib.request.urlopen(url + "/" + icon.removeprefix(url).lstrip("/"), timeout=5) as r:
        assert r.status == 200 and r.read(8) == b"\x89PNG\r\n\x1a\n"
    assert outside == [], outside
    page.screenshot(path=str(tmp_path / "shell.png"), full_page=True)
    ctx.close()
    log = served["log"].read_text()
    assert "use_container_width" not in log, log
    assert "Traceback" not in log, log
