"""End to end in a real Chromium (Debian's /usr/bin/chromium via Playwright): the Streamlit app
served on a free port, two annotators labeling the gold set with the keyboard, the maintainer's
agreement page, and untrusted question text that must never run as HTML/JS.

Screenshots are written to each test's tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from curation.auth import hash_password
from curation.cli import app_cmds
from curation.services import annotate
from curation.store import Store, utcnow
from curation.store import annotations as astore

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "e2e-password"
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>window.__pwned = 1; alert(2)</script>"

if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs it (apt-get install chromium)
    pytest.skip("Debian chromium not installed at /usr/bin/chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=30_000)  # Streamlit renders over a websocket; a busy CI box is slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(store: Store, questions: list[tuple[str, str, str]], overlap: int) -> None:
    """questions: (id, dataset, text); users ann1, ann2 (annotators), boss (maintainer)."""
    pw_hash = hash_password(PASSWORD)

    def work(con) -> None:
        con.executemany(
            "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
            "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [[qid, ds, "test", text, json.dumps({"A": "first option", "B": "second option"}),
              "A", "first option", "e2e", f"h-{qid}", utcnow()] for qid, ds, text in questions],
        )
        con.executemany(
            "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
            [[n, r, pw_hash, utcnow()] for n, r in
             (("ann1", "annotator"), ("ann2", "annotator"), ("boss", "maintainer"))],
        )

    store.run(work)
    annotate.draw_gold(store, len(questions), overlap, seed=0, batch_id="gold-e2e")


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> str:
    """`url` once the app answers its health check; its log in the error if it exits first."""
    if app_cmds.wait_healthy(proc, url, timeout):
        return url
    if proc.poll() is not None:
        raise RuntimeError(f"the app exited: {log.read_text()}")
    raise RuntimeError(f"the app did not become healthy in {timeout:.0f} s")


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    db = tmp_path / "e2e.duckdb"
    store = Store(db)
    yield_store: dict[str, Store] = {"store": store}
    port = free_port()
    env = dict(os.environ, CURATION_DB=str(db), PYTHONPATH=str(ROOT))
    log = (tmp_path / "streamlit.log").open("w")
    proc: subprocess.Popen[bytes] | None = None

    def start() -> str:
        nonlocal proc
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py"),
             "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        return wait_healthy(proc, f"http://127.0.0.1:{port}", tmp_path / "streamlit.log")

    yield_store["start"] = start  # type: ignore[assignment]
    try:
        yield yield_store  # type: ignore[misc]
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def log_in(browser, url: str, name: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Logged in as {name}")).to_be_visible()
    return ctx, page


def wait_idle(page) -> None:
    """Wait until the page's script run is over, so the action buttons on screen are those of
    the question shown. (They are keyed per render: a key pressed while the previous
    question's buttons are still drawn goes to them, and records nothing new.)"""
    expect(page.locator("[data-test-script-state]")).to_have_attribute(
        "data-test-script-state", "notRunning")


def label_queue_with_keys(page, labels: dict[str, str], shots: Path, who: str) -> list[str]:
    """Press 1/2 for each served question until the queue is empty."""
    done: list[str] = []
    for i in range(20):
        empty = page.get_by_text("Your queue is empty")
        caption = page.get_by_text("· gold set · question ")
        expect(caption.or_(empty)).to_be_visible()
        wait_idle(page)
        if empty.is_visible():
            break
        qid = caption.inner_text().rsplit(" ", 1)[-1]
        if i == 0:
            page.screenshot(path=str(shots / f"{who}-first-question.png"), full_page=True)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no input focused
        if i == 0 and who == "ann1":
            # S skips, U brings the same question back
            page.keyboard.press("s")
            expect(page.get_by_text("1 done,")).to_be_visible()
            wait_idle(page)
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            page.keyboard.press("u")
            expect(page.get_by_text("0 done,")).to_be_visible()
            expect(page.get_by_text(f"· question {qid}", exact=False)).to_be_visible()
            wait_idle(page)
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.keyboard.press("1" if labels[qid] == "reasoning" else "2")
        expect(page.get_by_text(f"{len(done) + 1} done,")).to_be_visible()
        expect(page.get_by_text(f"· question {qid}", exact=False)).to_have_count(0)  # next one drawn
        done.append(qid)
    page.screenshot(path=str(shots / f"{who}-done.png"), full_page=True)
    return done


def test_two_annotators_label_with_keyboard_and_agreement_shows_kappa(app_url, browser, tmp_path) -> None:
    store: Store = app_url["store"]
    questions = [(f"e2e-{i}", "medqa" if i % 2 else "medmcqa", f"Gold question number {i}: which step?")
                 for i in range(4)]
    seed(store, questions, overlap=2)
    url = app_url["start"]()
    ann1 = {"e2e-0": "reasoning", "e2e-1": "knowledge", "e2e-2": "reasoning", "e2e-3": "knowledge"}
    ann2 = {"e2e-0": "reasoning", "e2e-1": "knowledge", "e2e-2": "reasoning", "e2e-3": "reasoning"}

    for name, labels in (("ann1", ann1), ("ann2", ann2)):
        ctx, page = log_in(browser, url, name)
        # buttons show their shortcut keys (Streamlit renders the key on the button)
        for text, key in (("Reasoning", "1"), ("Knowledge", "2"), ("Skip", "S"), ("Undo last", "U")):
            button = page.get_by_role("button", name=re.compile(f"^{text}"))
            expect(button).to_be_visible()
            expect(button).to_contain_text(key)
        assert sorted(label_queue_with_keys(page, labels, tmp_path, name)) == sorted(labels)
        # opening the maintainer page by URL: the annotator's session survives the reload
        # (its cookie), and an annotator has no such page: "Page not found", not the page
        page.goto(url + "/agreement")
        expect(page.get_by_text("Page not found")).to_be_visible()
        assert page.get_by_role("button", name="Log in").count() == 0
        assert page.get_by_text("Agreement on the gold set").count() == 0
        page.screenshot(path=str(tmp_path / f"{name}-agreement-url.png"), full_page=True)
        ctx.close()

    stored = {(r["annotator"], r["question_id"]): r["label"] for r in store.run(astore.all_current_labels)}
    assert stored == {**{("ann1", k): v for k, v in ann1.items()}, **{("ann2", k): v for k, v in ann2.items()}}

    expected = cohen_kappa_score([ann1[k] for k in sorted(ann1)], [ann2[k] for k in sorted(ann2)])
    assert expected == pytest.approx(0.5)  # po = 3/4, pe = 1/2
    ctx, page = log_in(browser, url, "boss")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Agreement").click()  # the menu's, not the Overview's
    box = page.locator(".st-key-metric_mean_pairwise_cohen")
    expect(box.get_by_test_id("stMetricValue")).to_have_text(f"{expected:.3f}")
    expect(page.locator(".st-key-metric_percent_agreement").get_by_test_id("stMetricValue")).to_have_text("0.750")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(3)  # agreement, share, per day
    page.wait_for_timeout(500)  # let the charts paint before the screenshot
    page.screenshot(path=str(tmp_path / "maintainer-agreement.png"), full_page=True)
    ctx.close()
    assert (tmp_path / "maintainer-agreement.png").stat().st_size > 0


def test_untrusted_question_text_is_shown_literally_and_never_runs(app_url, browser, tmp_path) -> None:
    store: Store = app_url["store"]
    text = f"{XSS_IMG} and {XSS_SCRIPT} — which is it?"
    seed(store, [("xss-1", "medqa", text)], overlap=1)
    url = app_url["start"]()
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    ctx.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.get_by_label("User name").fill("ann1")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    shown = page.get_by_text(text, exact=True)
    expect(shown).to_be_visible()
    page.get_by_text("Show answer", exact=True).click()
    expect(page.get_by_text("Answer: A. first option")).to_be_visible()
    page.wait_for_timeout(1000)  # give a stray onerror handler time to fire
    page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)
    assert dialogs == []
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script:text('__pwned')").count() == 0
    ctx.close()
