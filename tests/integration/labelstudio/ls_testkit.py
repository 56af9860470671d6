"""Helpers for the Label Studio integration tests (imported by conftest and the tests)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from curation.store import Store, utcnow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LSServer:
    url: str
    token: str
    admin_email: str
    admin_password: str
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    _tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Token {token or self.token}"}

    def annotator(self, email: str, password: str = "Annot8tor-pass!") -> str:
        """Legacy token of an annotator account (created on first use via the invite link)."""
        if email in self._tokens:
            return self._tokens[email]
        invite = httpx.get(f"{self.url}/api/invite", headers=self.headers(), timeout=60).json()
        with httpx.Client(base_url=self.url, follow_redirects=False, timeout=60) as c:
            page = c.get(invite["invite_url"])
            match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert match, "no CSRF token on the signup page"
            resp = c.post(
                invite["invite_url"],
                data={"csrfmiddlewaretoken": match.group(1), "email": email, "password": password},
                headers={"Referer": self.url + invite["invite_url"]},
            )
            assert resp.status_code == 302, f"signup of {email} failed: HTTP {resp.status_code}"
            token = c.get("/api/current-user/token").json()["token"]
        self._tokens[email] = token
        return token


# -- helpers shared by the tests --------------------------------------------------------


def add_questions(store: Store, n: int, prefix: str = "q") -> list[str]:
    """Insert n small questions (plain SQL, like the other integration tests)."""
    ids = [f"{prefix}{i:04d}" for i in range(n)]

    def work(con: Any) -> None:
        con.executemany(
            "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
            "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [[qid, ("medqa", "medmcqa")[i % 2], "test", f"Question {qid}: <b>not bold</b>?",
              json.dumps({"A": "yes", "B": "no"}), "A", "yes", "test", f"h-{qid}", utcnow()]
             for i, qid in enumerate(ids)],
        )

    store.run(work)
    return ids


def choice(label: str, *, confidence: int | None = None, rationale: str | None = None) -> list[dict[str, Any]]:
    """A Label Studio result for our config."""
    res: list[dict[str, Any]] = [{"from_name": "label", "to_name": "question", "type": "choices",
                                  "value": {"choices": [label]}}]
    if confidence is not None:
        res.append({"from_name": "confidence", "to_name": "question", "type": "rating",
                    "value": {"rating": confidence}})
    if rationale is not None:
        res.append({"from_name": "rationale", "to_name": "question", "type": "textarea",
                    "value": {"text": [rationale]}})
    return res


def next_task(server: LSServer, token: str, project_id: int) -> dict[str, Any] | None:
    """The annotator's next task from the labeling queue, or None when the queue is empty."""
    r = httpx.get(f"{server.url}/api/projects/{project_id}/next", headers=server.headers(token),
                  timeout=60)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return dict(r.json())


def annotate(server: LSServer, token: str, task_id: int, result: list[dict[str, Any]]) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/tasks/{task_id}/annotations/", headers=server.headers(token),
                   json={"result": result}, timeout=60)
    assert r.status_code == 201, r.text
    return dict(r.json())


class FaultProxy:
    """Test double in front of the real server: forwards every request, and can be told to
    answer 503 or drop the connection once `healthy_pages` task-list pages were served.

    Besides, requests whose path contains `after_match` can be forwarded to the server and
    then answered late (`after = 'slow'`: `delay` seconds, so the client times out) or with
    a 502 (`after = '502'`): the server did the work, the client is told it failed."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.mode = "pass"  # 'pass' | '503' | 'drop' | 'hide'
        self.hidden_task: int | None = None  # 'hide': leave this task out of task pages
        self.healthy_pages = 0
        self.pages_served = 0
        self.after: str | None = None  # None | 'slow' | '502'
        self.after_match = ""
        self.delay = 0.0
        self.after_hits = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _fail(self, status: int, detail: str) -> None:
                payload = json.dumps({"detail": detail}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self) -> None:
                is_page = self.path.startswith("/api/tasks?") or self.path.startswith("/api/tasks/?")
                with proxy.lock:
                    failing = (is_page and proxy.mode in ("503", "drop")
                               and proxy.pages_served >= proxy.healthy_pages)
                    if is_page and not failing:
                        proxy.pages_served += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if failing and proxy.mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if failing:
                    self._fail(503, "injected failure")
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                r = httpx.request(self.command, proxy.target + self.path, headers=headers,
                                  content=body, timeout=300)
                content = r.content
                if proxy.after and proxy.after_match and proxy.after_match in self.path:
                    with proxy.lock:
                        proxy.after_hits += 1
                    if proxy.after == "slow":
                        time.sleep(proxy.delay)
                    else:
                        self._fail(502, "injected failure after the server answered")
                        return
                if is_page and proxy.mode == "hide" and r.status_code == 200:
                    data = r.json()
                    data["tasks"] = [t for t in data["tasks"] if t["id"] != proxy.hidden_task]
                    content = json.dumps(data).encode()
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                         "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
