"""Security: the app shows nothing without a valid session and nothing of a maintainer's to an
annotator; sessions expire; passwords are stored only as salted Argon2 hashes; planted
secrets (HF_TOKEN, Label Studio keys) never appear in any output or written file; path
inputs cannot escape their folder."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from relkit import SECRETS, find_secrets, run_cli, scan_tree, seed_questions, snapshot
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from curation.cli import app
from curation.ingest import sample_path
from curation.store import Store, utcnow
from curation.store import users as users_store

pytestmark = pytest.mark.reliability

UI = Path(__file__).resolve().parents[2] / "ui"
APP = str(UI / "app.py")
PAGES = sorted(p.name for p in (UI / "pages").glob("[!_]*.py"))
ANNOTATOR_PAGES = {"label.py", "progress.py"}
PASSWORD = "correct-horse-battery"


@pytest.fixture
def app_store(app_store: Store) -> Store:
    store = app_store  # tests/conftest.py's, seeded here
    seed_questions(store, 4, prefix="sec", batch_id="gold-sec", kind="gold", overlap=2)
    store.run(lambda con: [users_store.add_user(con, n, role=r, password=PASSWORD)
                           for n, r in (("ann1", "annotator"), ("boss", "maintainer"))])
    return store


def _session(name: str, role: str, *, login_ago: timedelta = timedelta(0),
             idle: timedelta = timedelta(0), checked_ago: timedelta = timedelta(0)) -> dict[str, Any]:
    now = utcnow()
    return {"name": name, "role": role, "login_at": now - login_ago, "last_seen": now - idle,
            "checked_at": now - checked_ago}


def _visible(at: AppTest) -> dict[str, Any]:
    """What a page put on screen, besides errors/infos about logging in."""
    return {
        "buttons": [b.label for b in at.button], "text": [t.value for t in at.text],
        "markdown": [m.value for m in at.markdown], "metrics": len(at.metric),
        "dataframes": len(at.dataframe), "selectbox": len(at.selectbox), "radio": len(at.radio),
        "text_input": [t.key for t in at.text_input], "number_input": len(at.number_input),
        "titles": [t.value for t in at.title],
    }


@pytest.mark.parametrize("page", PAGES)
def test_every_page_without_a_session_shows_only_the_login(app_store: Store, page: str) -> None:
    direct = AppTest.from_file(str(UI / "pages" / page), default_timeout=60).run()
    assert [e.value for e in direct.error] == ["Please log in first."]
    seen = _visible(direct)
    assert not any(seen[k] for k in ("buttons", "text", "metrics", "dataframes", "selectbox", "radio",
                                    "text_input", "number_input")), seen
    # through the router: only the login form exists, whatever URL was asked for
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert [t.key for t in at.text_input] == ["login_name", "login_password"]
    with pytest.raises(ValueError):
        at.switch_page(f"pages/{page}")


@pytest.mark.parametrize("page", sorted(set(PAGES) - ANNOTATOR_PAGES))
def test_annotator_cannot_use_maintainer_pages_even_with_replayed_state(app_store: Store, page: str) -> None:
    """Run the page as a maintainer to learn its widget keys, then as an annotator with every
    one of those keys pre-set (a replayed widget event): refused, nothing shown, store unchanged."""
    boss = AppTest.from_file(str(UI / "pages" / page), default_timeout=60)
    boss.session_state["auth_user"] = _session("boss", "maintainer")
    boss.run()
    keys: set[str] = {str(w.key) for w in boss.main if getattr(w, "key", None)}
    before = snapshot(app_store)
    at = AppTest.from_file(str(UI / "pages" / page), default_timeout=60)
    at.session_state["auth_user"] = _session("ann1", "annotator")
    for k in keys:
        if k and not k.startswith("$$"):
            at.session_state[k] = "reasoning"
    at.run()
    assert [e.value for e in at.error] == [
        "This page needs the maintainer role; you are logged in as annotator."]
    seen = _visible(at)
    assert not any(seen[k] for k in ("buttons", "metrics", "dataframes", "selectbox", "radio", "number_input")), seen
    assert snapshot(app_store) == before


def test_role_is_rechecked_from_the_store(app_store: Store) -> None:
    """A session claiming 'maintainer' for an account that is an annotator in the store is
    corrected at the next recheck; a disabled account is logged out."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_user"] = _session("ann1", "maintainer", checked_ago=timedelta(hours=1))
    at.run()
    assert at.session_state["auth_user"]["role"] == "annotator"
    app_store.run(lambda con: users_store.set_disabled(con, "ann1", True))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_user"] = _session("ann1", "annotator", checked_ago=timedelta(hours=1))
    at.run()
    assert [t.key for t in at.text_input] == ["login_name", "login_password"]


@pytest.mark.parametrize("kind", ["idle", "absolute"])
def test_sessions_expire(app_store: Store, kind: str) -> None:
    user = (_session("ann1", "annotator", login_ago=timedelta(hours=3), idle=timedelta(hours=3))
            if kind == "idle" else
            _session("ann1", "annotator", login_ago=timedelta(hours=13), idle=timedelta(minutes=1)))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_user"] = user
    at.run()
    assert [t.key for t in at.text_input] == ["login_name", "login_password"]
    assert any("expired" in i.value for i in at.info)
    assert not any(t.value.startswith("Question sec") for t in at.text)


def test_rate_limit_is_per_name_case_insensitively(app_store: Store) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    for name in ("ann1", "ANN1", "Ann1", "aNN1", "ann1"):
        at.text_input(key="login_name").input(name)
        at.text_input(key="login_password").input("wrong-password")
        at.button[0].click().run()
    at.text_input(key="login_name").input("ann1")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert "Too many failed attempts" in at.error[0].value


def test_passwords_stored_only_as_salted_argon2_hashes(tmp_path: Path) -> None:
    db = tmp_path / "users.duckdb"
    pw = tmp_path / "pw.txt"
    pw.write_text("Sup3r-secret-passphrase\n")
    assert CliRunner().invoke(app, ["store", "init", "--db", str(db)]).exit_code == 0
    for name in ("alice", "bob"):
        r = CliRunner().invoke(app, ["users", "add", name, "--password-file", str(pw), "--db", str(db)])
        assert r.exit_code == 0, r.output
        assert "Sup3r-secret" not in r.output
    rows = Store(db).run(lambda con: con.execute("SELECT name, password_hash FROM users ORDER BY name").fetchall())
    hashes = [h for _, h in rows]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert hashes[0] != hashes[1], "same password, same hash: not salted"
    assert not any("Sup3r" in h for h in hashes)
    cols = Store(db).run(lambda con: [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'").fetchall()])
    assert not any("password" in c and c != "password_hash" for c in cols)
    for f in tmp_path.glob("users.duckdb*"):
        assert b"Sup3r-secret-passphrase" not in f.read_bytes(), f"plain password in {f.name}"


# -- secrets ------------------------------------------------------------------------------


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_planted_secrets_never_leak(tmp_path: Path, planted_env: dict[str, str]) -> None:
    """Plant HF and Label Studio secrets in the environment, run every command that could touch
    them (also failing ones: dead servers, bad input), and grep every output and file."""
    db = tmp_path / "s.duckdb"
    out = tmp_path / "out"
    dead = _dead_url()
    env = {"CURATION_DB": str(db), "HF_ENDPOINT": dead, "LABEL_STUDIO_URL": dead}
    store = Store(db)
    seed_questions(store, 12, prefix="lk", batch_id="b-leak", overlap=1)
    seed_questions(store, 12, prefix="lt", split="train")
    from relkit import WORKERS  # noqa: F401  (the workers' labels make a trainable store)
    from workers import label_for

    from curation.store.annotations import Annotation, append

    store.run(lambda con: append(con, [Annotation(f"lt{i:06d}", "ann", "label", label_for(f"lt{i:06d}"), "app",
                                                  utcnow(), event_id=f"lt{i}") for i in range(12)]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\nnot json\n')
    commands = [
        ["ingest", str(sample_path("benchmarks_sample.jsonl"))],
        ["ingest", str(bad)],
        ["stats"],
        ["train", "--labels", "store", "--model", "tfidf", "--out", str(out / "model")],
        ["classify", "--model", str(out / "model"), "--output", str(out / "preds.jsonl")],
        ["release", "build", "--version", "v1", "--out", str(out / "releases")],
        ["release", "publish", str(out / "releases" / "v1"), "--repo", "org/name", "--dry-run"],
        ["release", "publish", str(out / "releases" / "v1"), "--repo", "org/name", "--endpoint", dead],
        ["ls", "push", "b-leak"],
        ["ls", "push", "b-leak", "--api-key", SECRETS["CURATION_LS_API_KEY"]],
        ["ls", "pull"],
        ["ls", "status"],
    ]
    leaks: list[str] = []
    for args in commands:
        proc = run_cli(args, env=env, timeout=300)
        text = proc.stdout + proc.stderr
        if "Traceback" in text and "locals" in text.lower():
            leaks.append(f"{args[:2]}: traceback with locals")
        hits = find_secrets(text)
        if hits:
            leaks.append(f"curation {' '.join(args[:2])} (exit {proc.returncode}) printed {hits}: {text[-600:]}")
    for path, hits in scan_tree(tmp_path).items():
        leaks.append(f"{path} contains {hits}")
    assert not leaks, "\n".join(leaks)
    # the release and the store are where a leak would persist: make sure they were written
    assert (out / "releases" / "v1" / "manifest.json").exists()
    manifest = json.loads((out / "releases" / "v1" / "manifest.json").read_text())
    assert not find_secrets(json.dumps(manifest))


def test_uncaught_error_shows_no_locals(tmp_path: Path, planted_env: dict[str, str]) -> None:
    """Typer's pretty tracebacks must not print local variables (our commands hold tokens)."""
    from curation.cli import app as typer_app

    assert typer_app.pretty_exceptions_show_locals is False
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        assert group.typer_instance.pretty_exceptions_show_locals is False, group.name


# -- path inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["../../etc", "..", ".", "v1/../../x", "/tmp/abs", "v1/sub", "v1\\..\\x",
                                     "v1\x00", " v1", "-v1", "v" * 65, "..v1"])
def test_release_version_cannot_escape_the_out_dir(tmp_path: Path, version: str) -> None:
    db = tmp_path / "r.duckdb"
    seed_questions(Store(db), 3, prefix="rv")
    out = tmp_path / "a" / "b" / "exports"
    out.mkdir(parents=True)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    r = CliRunner().invoke(app, ["release", "build", "--version", version, "--out", str(out), "--db", str(db)])
    after = sorted(str(p) for p in tmp_path.rglob("*") if not p.name.startswith("r.duckdb"))
    assert r.exit_code != 0, f"version {version!r} accepted"
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit))
    assert [p for p in after if p not in before] == []


def test_ingest_never_writes_next_to_its_inputs(tmp_path: Path) -> None:
    """Ingest reads paths; it must not create files next to them (or anywhere but the store)."""
    src = tmp_path / "in"
    src.mkdir()
    f = src / "q.jsonl"
    f.write_text(sample_path("benchmarks_sample.jsonl").read_text().splitlines()[0] + "\n")
    db = tmp_path / "db" / "s.duckdb"
    r = CliRunner().invoke(app, ["ingest", str(f), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in src.iterdir()) == ["q.jsonl"]
