"""TEST DOUBLE of the Hugging Face Hub HTTP API — for tests only, never for real use.

A small in-memory HTTP server speaking exactly the part of the Hub API that
`huggingface_hub.HfApi` uses for `create_repo`, `dataset_info`, `list_repo_refs`,
`upload_folder` (validate-yaml, preupload, the LFS batch API + basic PUT upload + verify,
the NDJSON commit endpoint) and `create_tag`. No Hub is reachable from this machine and no
upload-capable Hub server exists on PyPI, so publishing is tested against this double with the
real `huggingface_hub` client. It keeps repos, commits, files and tags in memory so tests can
assert that the uploaded bytes equal the local ones. Write endpoints require
`Authorization: Bearer <token>`.

Set `HF_HUB_DISABLE_XET=1` (or `huggingface_hub.constants.HF_HUB_DISABLE_XET = True`) so
the client uses the LFS protocol implemented here rather than Xet storage.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass
class Repo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)  # newest last
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit sha

    @property
    def head(self) -> str:
        return self.commits[-1]["sha"] if self.commits else "0" * 40


@dataclass
class HubState:
    token: str
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def state(self) -> HubState:
        return self.server.state

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message}, headers={"X-Error-Message": message})

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.state.token}"

    def _repo(self, repo_id: str) -> Repo | None:
        return self.state.repos.get(repo_id)

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # -- routes -----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        path = unquote(urlparse(self.path).path)
        self.state.requests.append(("GET", path))
        parts = path.strip("/").split("/")
        if len(parts) >= 4 and parts[:2] == ["api", "datasets"]:
            repo_id = f"{parts[2]}/{parts[3]}"
            repo = self._repo(repo_id)
            if repo is None or (repo.private and not self._authorized()):
                return self._error(404, "Repository not found")
            rest = parts[4:]
            if rest == ["refs"]:
                return self._send(200, {
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo.head}],
                    "converts": [],
                    "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": sha} for t, sha in sorted(repo.tags.items())],
                })
            if not rest or rest[0] == "revision":
                return self._send(200, {
                    "id": repo.repo_id, "_id": repo.repo_id, "private": repo.private, "sha": repo.head,
                    "siblings": [{"rfilename": f} for f in sorted(repo.files)], "tags": [],
                    "author": repo.repo_id.split("/")[0],
                })
        self._error(404, f"no route GET {path}")

    def do_PUT(self) -> None:  # noqa: N802
        path = unquote(urlparse(self.path).path)
        self.state.requests.append(("PUT", path))
        body = self._body()
        if path.startswith("/lfs-upload/"):
            oid = path.rsplit("/", 1)[1]
            if hashlib.sha256(body).hexdigest() != oid:
                return self._error(400, "sha256 mismatch")
            with self.state.lock:
                self.state.lfs[oid] = body
            return self._send(200, {})
        self._error(404, f"no route PUT {path}")

    def do_POST(self) -> None:  # noqa: N802
        path = unquote(urlparse(self.path).path)
        self.state.requests.append(("POST", path))
        body = self._body()
        if path == "/api/validate-yaml":
            return self._validate_yaml(body)
        if not self._authorized():
            return self._error(401, "Invalid credentials in Authorization header")
        if path == "/api/repos/create":
            return self._create_repo(json.loads(body))
        if path == "/lfs-verify":
            oid = json.loads(body)["oid"]
            return self._send(200 if oid in self.state.lfs else 404, {})
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "datasets" and path.endswith(".git/info/lfs/objects/batch"):
            repo_id = f"{parts[1]}/{parts[2].removesuffix('.git')}"
            return self._lfs_batch(repo_id, json.loads(body))
        if len(parts) >= 6 and parts[:2] == ["api", "datasets"]:
            repo_id = f"{parts[2]}/{parts[3]}"
            repo = self._repo(repo_id)
            if repo is None:
                return self._error(404, "Repository not found")
            action, rev = parts[4], "/".join(parts[5:])
            if action == "preupload":
                return self._preupload(json.loads(body))
            if action == "commit":
                return self._commit(repo, rev, body)
            if action == "tag":
                return self._tag(repo, rev, json.loads(body))
        self._error(404, f"no route POST {path}")

    # -- endpoint logic ---------------------------------------------------------------------
    def _validate_yaml(self, body: bytes) -> None:
        import yaml

        content = json.loads(body).get("content", "")
        if not content.startswith("---\n"):
            return self._send(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            meta = yaml.safe_load(content.split("---\n", 2)[1])
        except yaml.YAMLError as exc:
            return self._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
        errors = []
        for cfg in (meta or {}).get("configs", []):
            if "config_name" not in cfg or "data_files" not in cfg:
                errors.append({"message": "configs entries need config_name and data_files"})
        if errors:
            return self._send(400, {"errors": errors})
        self._send(200, {"errors": [], "warnings": []})

    def _create_repo(self, payload: dict[str, Any]) -> None:
        repo_id = f"{payload.get('organization')}/{payload['name']}"
        url = f"{self._base()}/datasets/{repo_id}"
        with self.state.lock:
            if repo_id in self.state.repos:
                return self._send(409, {"error": "You already created this dataset repo", "url": url})
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            self.state.repos[repo_id] = Repo(repo_id, private)
        self._send(200, {"url": url, "name": repo_id})

    def _preupload(self, payload: dict[str, Any]) -> None:
        files = []
        for f in payload.get("files", []):
            binary = f["path"].endswith((".parquet", ".png")) or f["size"] > 1_000_000
            files.append({"path": f["path"], "uploadMode": "lfs" if binary else "regular", "shouldIgnore": False, "oid": None})
        self._send(200, {"files": files, "commitOid": None})

    def _lfs_batch(self, repo_id: str, payload: dict[str, Any]) -> None:
        if repo_id not in self.state.repos:
            return self._error(404, "Repository not found")
        objects = []
        for o in payload.get("objects", []):
            entry: dict[str, Any] = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if o["oid"] not in self.state.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{self._base()}/lfs-upload/{o['oid']}", "header": {}},
                    "verify": {"href": f"{self._base()}/lfs-verify", "header": {}},
                }
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects})

    def _commit(self, repo: Repo, rev: str, body: bytes) -> None:
        if rev != "main":
            return self._error(400, "only main is supported by this test double")
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), None)
        if header is None:
            return self._error(400, "missing commit header")
        new_files: dict[str, bytes] = {}
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                new_files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self.state.lfs.get(value["oid"])
                if data is None:
                    return self._error(422, f"LFS object {value['oid']} was never uploaded")
                new_files[value["path"]] = data
            elif key in ("deletedFile", "deletedFolder"):
                repo.files.pop(value["path"], None)
        with self.state.lock:
            repo.files.update(new_files)
            digest = hashlib.sha1(repo.head.encode())
            for p in sorted(repo.files):
                digest.update(p.encode() + b"\0" + hashlib.sha256(repo.files[p]).digest())
            sha = digest.hexdigest()
            repo.commits.append({"sha": sha, "summary": header.get("summary"), "files": sorted(new_files)})
        self._send(200, {
            "commitUrl": f"{self._base()}/datasets/{repo.repo_id}/commit/{sha}",
            "commitOid": sha,
            "pullRequestUrl": None,
        })

    def _tag(self, repo: Repo, rev: str, payload: dict[str, Any]) -> None:
        tag = payload["tag"]
        with self.state.lock:
            if tag in repo.tags:
                return self._error(409, f"Tag {tag} already exists")
            shas = [c["sha"] for c in repo.commits]
            target = repo.head if rev == "main" else next((s for s in shas if s.startswith(rev)), None)
            if target is None:
                return self._error(404, f"Invalid rev id: {rev}")
            repo.tags[tag] = target
        self._send(200, {})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: HubState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class HubDouble:
    """Start with `HubDouble(token).start()`; `.endpoint` is its base URL; `.stop()` when done."""

    def __init__(self, token: str) -> None:
        self.state = HubState(token=token)
        self._server = _Server(self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def repo(self, repo_id: str) -> Repo:
        return self.state.repos[repo_id]
