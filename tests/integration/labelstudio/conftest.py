"""A real Label Studio server for the tests in this folder: one per session.

The session fixture `ls_server` starts `scripts/labelstudio.sh start` (label-studio 1.23.2
from its own venv, `.venv-ls`, installed by `scripts/labelstudio.sh install`) on a free
port with a fresh data dir, waits for `GET /health`, and stops it at the end. If the venv
is missing the tests are skipped -- unless `CURATION_REQUIRE_LS` is set (CI sets it), in
which case they fail.

Annotator accounts: the Community Edition's `POST /api/users` (admin) creates users
without a usable password, and no endpoint hands out another user's token. So the admin
reads the organization's invite link (`GET /api/invite`), each annotator signs up through
it (the CE way to join an organization) and then reads its own legacy token
(`GET /api/current-user/token`) in that session.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ls_testkit import FaultProxy, LSServer, free_port

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "labelstudio.sh"
VENV = Path(os.environ.get("CURATION_LS_VENV", ROOT / ".venv-ls"))
START_TIMEOUT_S = float(os.environ.get("CURATION_LS_START_TIMEOUT", "300"))


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LSServer]:
    if not (VENV / "bin" / "label-studio").exists():
        reason = (
            f"Label Studio is not installed in {VENV}: run `scripts/labelstudio.sh install`"
        )
        if os.environ.get("CURATION_REQUIRE_LS"):
            pytest.fail(reason + " (CURATION_REQUIRE_LS is set, so this is a failure)")
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    server = LSServer(
        url=f"http://127.0.0.1:{port}",
        token=secrets.token_hex(20),
        admin_email="admin@example.com",
        admin_password=secrets.token_urlsafe(12),
        data_dir=data_dir,
    )
    log = (data_dir / "server.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    server.proc = subprocess.Popen(
        [str(SCRIPT), "start", "--port", str(port), "--data-dir", str(data_dir / "data"),
         "--username", server.admin_email, "--password", server.admin_password,
         "--token", server.token],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.proc.poll() is not None:
                tail = (data_dir / "server.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"Label Studio exited with {server.proc.returncode}:\n{tail}")
            try:
                r = httpx.get(f"{server.url}/health", timeout=5)
                if r.status_code == 200 and r.json().get("status") == "UP":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio did not answer /health within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=30)
        log.close()


@pytest.fixture
def fault_proxy(ls_server: LSServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(ls_server.url)
    try:
        yield proxy
    finally:
        proxy.close()
