"""Accounts and the app's command: `curation users disable|enable|reset-password|set-role`, the
server-side app sessions they end, `curation labels export` filters, and `curation app` (its
Streamlit settings as flags; SIGTERM stops the server and frees the port)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation import auth
from curation.cli import app
from curation.cli.app_cmds import STREAMLIT_CONFIG, app_command, streamlit_flags, wait_healthy
from curation.services import annotate
from curation.store import Store, utcnow
from curation.store.annotations import Annotation, append

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD_PW = "old-password-1"
NEW_PW = "new-password-2"


def cli(db: Path, *args: str, input: str | None = None):  # noqa: A002 - CliRunner's name
    return CliRunner().invoke(app, [*args, "--db", str(db)], input=input)


@pytest.fixture
def accounts(tmp_path: Path) -> tuple[Store, Path]:
    db = tmp_path / "acc.duckdb"
    store = Store(db)
    annotate.add_user(store, "ann1", role="annotator", password=OLD_PW)
    annotate.add_user(store, "boss", role="maintainer", password=OLD_PW)
    return store, db


def live(store: Store, name: str) -> int:
    return int(store.run(lambda con: con.execute(
        "SELECT count(*) FROM app_sessions WHERE user_name = ? AND revoked_at IS NULL", [name]).fetchall()[0][0]))


def account(store: Store, name: str) -> dict:
    row = annotate.find_user(store, name)
    assert row is not None
    return row


# -- users commands --------------------------------------------------------------------------


def test_disable_ends_sessions_and_blocks_login_enable_restores(accounts) -> None:
    store, db = accounts
    token = annotate.start_session(store, "ann1")
    annotate.start_session(store, "ann1")
    other = annotate.start_session(store, "boss")
    r = cli(db, "users", "disable", "ann1")
    assert r.exit_code == 0, r.output
    assert "'ann1' disabled; 2 app session(s) ended" in r.output
    assert account(store, "ann1")["disabled"] is True and live(store, "ann1") == 0
    assert annotate.resume_session(store, token, auth.SessionPolicy()) == {
        "user": None, "why": "Your session ended (account disabled)."}
    assert annotate.resume_session(store, other, auth.SessionPolicy())["user"]["name"] == "boss"  # others untouched
    assert "was already disabled" in cli(db, "users", "disable", "ann1").output
    r = cli(db, "users", "enable", "ann1")
    assert r.exit_code == 0 and "'ann1' enabled" in r.output
    assert account(store, "ann1")["disabled"] is False
    assert annotate.resume_session(store, token, auth.SessionPolicy())["user"] is None  # stays ended


def test_reset_password_replaces_the_hash_and_ends_sessions(accounts, tmp_path: Path) -> None:
    store, db = accounts
    token = annotate.start_session(store, "ann1")
    pw = tmp_path / "pw.txt"
    pw.write_text(NEW_PW + "\n")
    r = cli(db, "users", "reset-password", "ann1", "--password-file", str(pw))
    assert r.exit_code == 0, r.output
    assert "'ann1': new password set; 1 app session(s) ended" in r.output and NEW_PW not in r.output
    h = account(store, "ann1")["password_hash"]
    assert h.startswith("$argon2id$") and auth.verify_password(h, NEW_PW) and not auth.verify_password(h, OLD_PW)
    assert annotate.resume_session(store, token, auth.SessionPolicy())["user"] is None
    # typed twice at the prompt
    r = cli(db, "users", "reset-password", "boss", input=f"{NEW_PW}\n{NEW_PW}\n")
    assert r.exit_code == 0, r.output
    assert auth.verify_password(account(store, "boss")["password_hash"], NEW_PW)
    pw.write_text("short\n")
    r = cli(db, "users", "reset-password", "ann1", "--password-file", str(pw))
    assert r.exit_code != 0 and "password too short" in r.output
    assert auth.verify_password(account(store, "ann1")["password_hash"], NEW_PW)  # unchanged


def test_set_role_and_errors_name_the_problem(accounts) -> None:
    store, db = accounts
    r = cli(db, "users", "set-role", "ann1", "maintainer")
    assert r.exit_code == 0 and "'ann1': annotator -> maintainer" in r.output
    assert account(store, "ann1")["role"] == "maintainer"
    r = cli(db, "users", "set-role", "ann1", "admin")
    assert r.exit_code != 0 and "role 'admin' is not one of annotator, maintainer" in r.output
    assert account(store, "ann1")["role"] == "maintainer"
    for args in (("disable", "ghost"), ("enable", "ghost"), ("set-role", "ghost", "annotator"),
                 ("reset-password", "ghost")):
        r = cli(db, "users", *args)
        assert r.exit_code != 0 and "no user 'ghost'" in r.output, (args, r.output)
    listed = {row["name"]: row for row in annotate.list_users(store)}
    assert listed["ann1"]["role"] == "maintainer" and "ghost" not in listed


# -- app sessions ------------------------------------------------------------------------------


def test_session_tokens_are_stored_hashed_and_checked(accounts) -> None:
    store, _db = accounts
    token = annotate.start_session(store, "ann1")
    rows = store.run(lambda con: con.execute("SELECT token_hash, user_name FROM app_sessions").fetchall())
    assert rows == [(auth.session_token_hash(token), "ann1")] and token not in rows[0][0]
    policy = auth.SessionPolicy()
    user = annotate.resume_session(store, token, policy)["user"]
    assert user["name"] == "ann1" and user["role"] == "annotator"
    assert annotate.resume_session(store, "x" * 43, policy) == {"user": None, "why": None}  # unknown
    assert annotate.resume_session(store, "'; DROP TABLE users; --", policy) == {"user": None, "why": None}
    annotate.end_session(store, token)
    assert annotate.resume_session(store, token, policy) == {"user": None, "why": None}  # logged out: silent


@pytest.mark.parametrize("kind", ["idle", "absolute"])
def test_sessions_expire_by_the_policy_and_are_revoked(accounts, kind: str) -> None:
    store, _db = accounts
    token = annotate.start_session(store, "ann1")
    th = auth.session_token_hash(token)
    if kind == "idle":
        ago = utcnow() - timedelta(hours=3)
        store.run(lambda con: con.execute("UPDATE app_sessions SET last_seen = ? WHERE token_hash = ?", [ago, th]))
    else:  # active a second ago, but logged in 13 hours ago
        store.run(lambda con: con.execute("UPDATE app_sessions SET created_at = ? WHERE token_hash = ?",
                                          [utcnow() - timedelta(hours=13), th]))
    res = annotate.resume_session(store, token, auth.SessionPolicy())
    assert res == {"user": None, "why": "Your session expired; please log in again."}
    assert store.run(lambda con: con.execute("SELECT revoked_why FROM app_sessions").fetchall()) == [("expired",)]


# -- labels export filters ---------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 9, 0)


def test_labels_export_filters(accounts) -> None:
    store, db = accounts
    rows = [
        Annotation("q1", "ann1", "label", "reasoning", "app", T0, batch_id="gold-a"),
        Annotation("q2", "ann1", "label", "knowledge", "app", T0 + timedelta(days=2), batch_id="gold-b"),
        Annotation("q1", "boss", "label", "knowledge", "label_studio", T0 + timedelta(days=3), batch_id="gold-a"),
        Annotation("q3", "medqa-tags", "label", "knowledge", "import", T0 - timedelta(days=30)),
    ]
    store.run(lambda con: append(con, rows))

    def export(*args: str) -> list[tuple[str, str]]:
        r = cli(db, "labels", "export", *args)
        assert r.exit_code == 0, r.output
        return [(x["question_id"], x["annotator"]) for x in map(json.loads, r.output.splitlines())]

    assert len(export()) == 4
    assert export("--source", "app") == [("q1", "ann1"), ("q2", "ann1")]
    assert export("--annotator", "boss") == [("q1", "boss")]
    assert export("--batch", "gold-a") == [("q1", "ann1"), ("q1", "boss")]
    assert export("--since", "2026-03-02") == [("q2", "ann1"), ("q1", "boss")]
    assert export("--since", "2026-03-03T09:00") == [("q2", "ann1"), ("q1", "boss")]  # at or after
    assert export("--since", "2026-03-03T09:00:01") == [("q1", "boss")]
    assert export("--since", "2026-03-03T10:00:01+01:00") == [("q1", "boss")]  # an offset is converted to UTC
    assert export("--source", "app", "--batch", "gold-b", "--annotator", "ann1") == [("q2", "ann1")]
    assert export("--annotator", "nobody") == []
    r = cli(db, "labels", "export", "--since", "last tuesday")
    assert r.exit_code != 0 and "--since 'last tuesday' is not a date or time" in r.output
    r = cli(db, "labels", "export", "--source", "web")
    assert r.exit_code != 0 and "--source 'web' is not one of app, label_studio, import" in r.output


# -- curation app --------------------------------------------------------------------------------


def test_app_flags_are_the_streamlit_config_file() -> None:
    config = tomllib.loads(STREAMLIT_CONFIG.read_text(encoding="utf-8"))
    assert config["client"]["toolbarMode"] in ("viewer", "minimal")
    assert config["browser"]["gatherUsageStats"] is False
    flags = streamlit_flags()
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs["--client.toolbarMode"] == config["client"]["toolbarMode"]
    assert pairs["--browser.gatherUsageStats"] == "false" and pairs["--server.headless"] == "true"
    assert len(pairs) == sum(len(v) for v in config.values())  # every option, nothing else
    cmd = app_command(8765, None, "127.0.0.1")
    assert cmd[cmd.index("--server.port") + 1] == "8765" and "--client.toolbarMode" in cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(d.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_curation_app_stops_the_server(accounts, tmp_path: Path, sig: signal.Signals) -> None:
    _store, db = accounts
    port = _free_port()
    log = tmp_path / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from curation.cli import main; main()", "app", "--port", str(port),
             "--db", str(db)],
            cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=out, stderr=subprocess.STDOUT)
        try:
            healthy = wait_healthy(proc, f"http://127.0.0.1:{port}", 60)
            assert proc.poll() is None, log.read_text()
            assert healthy, "the app did not become healthy in 60 s"
            # the command became the server: no child process holds the port
            assert _processes_mentioning(f"--server.port {port}") == [proc.pid]
            proc.send_signal(sig)
            proc.wait(timeout=10)
            deadline = time.monotonic() + 5
            while _port_in_use(port) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _port_in_use(port), "the port still answers after the app was stopped"
            assert _processes_mentioning(f"--server.port {port}") == []
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# -- the app: a login opens a server-side session, logout and revocation end it -------------------


def test_app_login_opens_a_session_that_logout_and_revocation_end(app_store: Store) -> None:
    from streamlit.testing.v1 import AppTest

    annotate.add_user(app_store, "boss", role="maintainer", password=OLD_PW)
    app_file = str(ROOT / "ui" / "app.py")

    def login() -> AppTest:
        at = AppTest.from_file(app_file, default_timeout=60).run()
        at.text_input(key="login_name").input("boss")
        at.text_input(key="login_password").input(OLD_PW)
        at.button[0].click().run()
        assert at.title[0].value == "Overview"  # the maintainer's default page
        return at

    at = login()
    token = at.session_state["auth_user"]["token"]
    assert live(app_store, "boss") == 1
    # (logout itself, the sidebar button, is driven in the browser: tests/e2e/test_app_sessions.py;
    # AppTest reruns the landed-on page without the router's sidebar)
    # a session revoked elsewhere (logout in another tab, `users reset-password`) ends at the next check
    annotate.end_session(app_store, token)
    user = dict(at.session_state["auth_user"])
    user["checked_at"] = utcnow() - timedelta(minutes=5)
    at.session_state["auth_user"] = user
    at.run()
    assert "auth_user" not in at.session_state
    shown = [e.value for e in at.error] + [i.value for i in at.info]
    assert "You were logged out (in another tab or window?)." in shown
    assert not at.metric  # nothing of the overview is shown
    # and the next login opens a new session; a write re-checks it at once (no interval)
    at = login()
    token = at.session_state["auth_user"]["token"]
    annotate.set_disabled(app_store, "boss", True)
    assert annotate.resume_session(app_store, token, auth.SessionPolicy())["user"] is None
    assert live(app_store, "boss") == 0
