"""TEST DOUBLE of the Hugging Face Hub HTTP API — for tests only, never for real use.

A small in-memory HTTP server speaking exactly the part of the Hub API that
`huggingface_hub.HfApi` uses for `whoami` (`/api/whoami-v2`, with orgs and roles),
`create_repo`, `dataset_info` (at a revision), `list_repo_refs`, `list_repo_files` (the tree
API), `hf_hub_download` (resolve, HEAD and GET), `create_commit` / `upload_folder`
(validate-yaml, preupload, the LFS batch API + basic PUT upload + verify, the NDJSON commit
endpoint with `file`, `lfsFile`, `deletedFile` and `deletedFolder` lines and the header's
`parentCommit`) and `create_tag`. No Hub is reachable from this machine and no upload-capable
Hub server exists on PyPI, so publishing is tested against this double with the real
`huggingface_hub` client. It keeps repos, commits (each with the whole tree it leaves), files
and tags in memory so tests can assert that the uploaded bytes equal the local ones.

Like the Hub: a new repo starts with an "initial commit" holding `.gitattributes`; write
endpoints need `Authorization: Bearer <token>` (401 otherwise) of a token that may write to
the namespace (403 otherwise: a `read` token, an org where the user's `roleInOrg` is not
`write`/`admin`, a fine-grained token without `repo.write` on that namespace); private repos
are 404 to anyone who is not a member of their namespace; an existing tag is 409; deleting a
file that is not there is 404 (`EntryNotFound`); a commit whose `parentCommit` is not the
branch head is 412.

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
from urllib.parse import parse_qs, unquote, urlparse

GITATTRIBUTES = (
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    b"*.png filter=lfs diff=lfs merge=lfs -text\n"
    b"*.arrow filter=lfs diff=lfs merge=lfs -text\n"
)
WRITE_ROLES = ("admin", "write")


@dataclass
class Identity:
    """Who a token belongs to and what it may do (the `whoami-v2` answer)."""

    user: str = "maintainer"
    orgs: dict[str, str] = field(default_factory=lambda: {"lab": "write"})  # org -> roleInOrg
    role: str = "write"  # the token's role: read | write | fineGrained
    scoped: dict[str, list[str]] = field(default_factory=dict)  # fineGrained: namespace -> permissions

    def can_write(self, namespace: str) -> bool:
        if self.role == "fineGrained":
            return "repo.write" in self.scoped.get(namespace, [])
        if self.role != "write":
            return False
        return namespace == self.user or self.orgs.get(namespace) in WRITE_ROLES

    def can_read(self, namespace: str) -> bool:
        if self.role == "fineGrained":
            return bool(self.scoped.get(namespace))
        return namespace == self.user or namespace in self.orgs

    def whoami(self) -> dict[str, Any]:
        token: dict[str, Any] = {"displayName": "test token", "role": self.role}
        if self.role == "fineGrained":
            token["fineGrained"] = {
                "canReadGatedRepos": False, "global": [],
                "scoped": [{"entity": {"_id": n, "type": "user" if n == self.user else "org", "name": n},
                            "permissions": perms} for n, perms in sorted(self.scoped.items())],
            }
        return {
            "type": "user", "id": self.user, "name": self.user, "fullname": self.user, "email": None,
            "orgs": [{"type": "org", "id": o, "name": o, "fullname": o, "roleInOrg": r} for o, r in sorted(self.orgs.items())],
            "auth": {"type": "access_token", "accessToken": token},
        }


@dataclass
class Repo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)  # the tree at the head of main
    commits: list[dict[str, Any]] = field(default_factory=list)  # newest last; each keeps its "tree"
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit sha

    @property
    def head(self) -> str:
        return self.commits[-1]["sha"] if self.commits else "0" * 40

    def tree_at(self, rev: str) -> tuple[str, dict[str, bytes]] | None:
        """(commit sha, files) at a branch (`main`), a tag or a commit sha (or a prefix of one)."""
        sha = self.head if rev == "main" else self.tags.get(rev)
        for c in reversed(self.commits):
            if c["sha"] == sha or (sha is None and len(rev) >= 7 and c["sha"].startswith(rev)):
                return c["sha"], c["tree"]
        return None

    def add_commit(self, summary: str, tree: dict[str, bytes], changed: list[str], deleted: list[str]) -> str:
        digest = hashlib.sha1(self.head.encode())
        for p in sorted(tree):
            digest.update(p.encode() + b"\0" + hashlib.sha256(tree[p]).digest())
        digest.update(summary.encode())
        sha = digest.hexdigest()
        self.files = tree
        self.commits.append({"sha": sha, "summary": summary, "files": sorted(changed), "deleted": sorted(deleted), "tree": tree})
        return sha


@dataclass
class HubState:
    token: str
    identities: dict[str, Identity] = field(default_factory=dict)  # token -> who
    repos: dict[str, Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


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

    def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None,
              raw: bytes | None = None, head: bool = False) -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _error(self, status: int, message: str, *, code: str | None = None, head: bool = False) -> None:
        headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
        self._send(status, {"error": message}, headers=headers, head=head)

    def _identity(self) -> Identity | None:
        auth = self.headers.get("Authorization", "")
        return self.state.identities.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    def _bad_token(self) -> bool:
        """A request carrying a token the Hub does not know is refused (401), read or write."""
        return bool(self.headers.get("Authorization")) and self._identity() is None

    def _visible(self, repo_id: str) -> Repo | None:
        """The repo if it exists and this request may read it (a private repo: members only)."""
        repo = self.state.repos.get(repo_id)
        if repo is None:
            return None
        who = self._identity()
        if repo.private and (who is None or not who.can_read(repo_id.split("/")[0])):
            return None
        return repo

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # -- routes -----------------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802
        self._get(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._get(head=False)

    def _get(self, *, head: bool) -> None:
        url = urlparse(self.path)
        path = unquote(url.path)
        self.state.requests.append(("HEAD" if head else "GET", path))
        if self._bad_token():
            return self._error(401, "Invalid credentials in Authorization header", head=head)
        parts = path.strip("/").split("/")
        if path == "/api/whoami-v2":
            who = self._identity()
            return self._send(200, who.whoami(), head=head) if who else self._error(401, "Invalid credentials in Authorization header", head=head)
        if len(parts) >= 5 and parts[0] == "datasets" and parts[3] == "resolve":
            return self._resolve(f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:]), head=head)
        if len(parts) >= 4 and parts[:2] == ["api", "datasets"]:
            repo = self._visible(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return self._error(404, "Repository not found", code="RepoNotFound", head=head)
            rest = parts[4:]
            if rest == ["refs"]:
                return self._send(200, {
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo.head}],
                    "converts": [],
                    "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": sha} for t, sha in sorted(repo.tags.items())],
                }, head=head)
            if rest and rest[0] == "tree" and len(rest) >= 2:
                recursive = parse_qs(url.query).get("recursive", ["false"])[0].lower() == "true"
                return self._tree(repo, rest[1], "/".join(rest[2:]), recursive, head=head)
            if not rest or (rest[0] == "revision" and len(rest) >= 2):
                return self._info(repo, "/".join(rest[1:]) if rest else "main", head=head)
        self._error(404, f"no route GET {path}", head=head)

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
        if self._bad_token():
            return self._error(401, "Invalid credentials in Authorization header")
        if path == "/api/validate-yaml":
            return self._validate_yaml(body)
        who = self._identity()
        if who is None:
            return self._error(401, "Invalid credentials in Authorization header")
        if path == "/api/repos/create":
            return self._create_repo(who, json.loads(body))
        if path == "/lfs-verify":
            oid = json.loads(body)["oid"]
            return self._send(200 if oid in self.state.lfs else 404, {})
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "datasets" and path.endswith(".git/info/lfs/objects/batch"):
            repo_id = f"{parts[1]}/{parts[2].removesuffix('.git')}"
            if self._visible(repo_id) is None:
                return self._error(404, "Repository not found", code="RepoNotFound")
            if not who.can_write(parts[1]):
                return self._error(403, f"You don't have write access to {repo_id}")
            return self._lfs_batch(json.loads(body))
        if len(parts) >= 6 and parts[:2] == ["api", "datasets"]:
            repo_id = f"{parts[2]}/{parts[3]}"
            repo = self._visible(repo_id)
            if repo is None:
                return self._error(404, "Repository not found", code="RepoNotFound")
            action, rev = parts[4], "/".join(parts[5:])
            if action == "preupload":
                return self._preupload(json.loads(body))
            if not who.can_write(parts[2]):
                return self._error(403, f"You don't have write access to {repo_id}")
            if action == "commit":
                return self._commit(repo, rev, body)
            if action == "tag":
                return self._tag(repo, rev, json.loads(body))
        self._error(404, f"no route POST {path}")

    # -- read endpoints ---------------------------------------------------------------------
    def _info(self, repo: Repo, rev: str, *, head: bool) -> None:
        at = repo.tree_at(rev)
        if at is None:
            return self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound", head=head)
        sha, tree = at
        self._send(200, {
            "id": repo.repo_id, "_id": repo.repo_id, "private": repo.private, "sha": sha,
            "siblings": [{"rfilename": f} for f in sorted(tree)], "tags": [],
            "author": repo.repo_id.split("/")[0],
        }, head=head)

    def _tree(self, repo: Repo, rev: str, prefix: str, recursive: bool, *, head: bool) -> None:
        at = repo.tree_at(rev)
        if at is None:
            return self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound", head=head)
        base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, data in sorted(at[1].items()):
            if not path.startswith(base):
                continue
            rel = path[len(base):].split("/")
            for depth in range(1, len(rel)):  # the folders on the way
                folder = base + "/".join(rel[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, {"type": "directory", "path": folder, "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0})
            if recursive or len(rel) == 1:
                entry: dict[str, Any] = {"type": "file", "path": path, "oid": _git_blob_id(data), "size": len(data)}
                if path.endswith((".parquet", ".png")):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entries[path] = entry
        self._send(200, list(entries.values()), head=head)

    def _resolve(self, repo_id: str, rev: str, path: str, *, head: bool) -> None:
        repo = self._visible(repo_id)
        if repo is None:
            return self._error(404, "Repository not found", code="RepoNotFound", head=head)
        at = repo.tree_at(rev)
        if at is None:
            return self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound", head=head)
        data = at[1].get(path)
        if data is None:
            return self._error(404, f"Entry not found: {path}", code="EntryNotFound", head=head)
        self._send(200, raw=data, head=head, headers={"X-Repo-Commit": at[0], "ETag": f'"{_git_blob_id(data)}"'})

    def _validate_yaml(self, body: bytes) -> None:
        import yaml

        content = json.loads(body).get("content", "")
        if not content.startswith("---\n"):
            return self._send(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            meta = yaml.safe_load(content.split("---\n", 2)[1])
        except yaml.YAMLError as exc:
            return self._send(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
        if not isinstance(meta, dict):
            return self._send(400, {"errors": [{"message": "the metadata must be a YAML mapping"}]})
        errors = []
        for cfg in meta.get("configs") or []:
            if not isinstance(cfg, dict) or "config_name" not in cfg or "data_files" not in cfg:
                errors.append({"message": "configs entries need config_name and data_files"})
        if errors:
            return self._send(400, {"errors": errors})
        self._send(200, {"errors": [], "warnings": []})

    # -- write endpoints --------------------------------------------------------------------
    def _create_repo(self, who: Identity, payload: dict[str, Any]) -> None:
        namespace = payload.get("organization") or who.user
        repo_id = f"{namespace}/{payload['name']}"
        url = f"{self._base()}/datasets/{repo_id}"
        if not who.can_write(namespace):
            return self._error(403, f"You don't have the rights to create a dataset under the namespace \"{namespace}\"")
        with self.state.lock:
            if repo_id in self.state.repos:
                return self._send(409, {"error": "You already created this dataset repo", "url": url})
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            repo = Repo(repo_id, private)
            repo.add_commit("initial commit", {".gitattributes": GITATTRIBUTES}, [".gitattributes"], [])
            self.state.repos[repo_id] = repo
        self._send(200, {"url": url, "name": repo_id})

    def _preupload(self, payload: dict[str, Any]) -> None:
        files = []
        for f in payload.get("files", []):
            binary = f["path"].endswith((".parquet", ".png")) or f["size"] > 1_000_000
            files.append({"path": f["path"], "uploadMode": "lfs" if binary else "regular", "shouldIgnore": False, "oid": None})
        self._send(200, {"files": files, "commitOid": None})

    def _lfs_batch(self, payload: dict[str, Any]) -> None:
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
        with self.state.lock:  # the whole commit applies, or nothing does
            parent = header.get("parentCommit")
            if parent is not None and parent != repo.head:
                return self._error(412, f"A commit has happened since {parent}: the head of main is {repo.head}")
            tree, changed, deleted = dict(repo.files), [], []
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "file":
                    tree[value["path"]] = base64.b64decode(value["content"])
                    changed.append(value["path"])
                elif key == "lfsFile":
                    data = self.state.lfs.get(value["oid"])
                    if data is None:
                        return self._error(422, f"LFS object {value['oid']} was never uploaded")
                    tree[value["path"]] = data
                    changed.append(value["path"])
                elif key == "deletedFile":
                    if tree.pop(value["path"], None) is None:
                        return self._error(404, f"File not found: {value['path']}", code="EntryNotFound")
                    deleted.append(value["path"])
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    gone = [p for p in tree if p.startswith(prefix)]
                    if not gone:
                        return self._error(404, f"Folder not found: {value['path']}", code="EntryNotFound")
                    for p in gone:
                        del tree[p]
                    deleted += gone
            sha = repo.add_commit(str(header.get("summary")), tree, changed, deleted)
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
            at = repo.tree_at(rev)
            if at is None:
                return self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
            repo.tags[tag] = at[0]
        self._send(200, {})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: HubState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class HubDouble:
    """Start with `HubDouble(token).start()`; `.endpoint` is its base URL; `.stop()` when done.
    The token belongs to `identity` (default: user `maintainer`, a `write` token, `write` role
    in the org `lab`); `add_token` registers more."""

    def __init__(self, token: str, identity: Identity | None = None) -> None:
        self.state = HubState(token=token, identities={token: identity or Identity()})
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

    def add_token(self, token: str, identity: Identity) -> None:
        self.state.identities[token] = identity

    def repo(self, repo_id: str) -> Repo:
        return self.state.repos[repo_id]

    def writes(self) -> list[tuple[str, str]]:
        """Requests that can change something (every POST and PUT but the read-only validate-yaml)."""
        return [(m, p) for m, p in self.state.requests if m in ("POST", "PUT") and p != "/api/validate-yaml"]
