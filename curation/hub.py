"""The only module that talks to the Hugging Face Hub.

`publish(folder, repo_id, ...)` makes `main` of the dataset repo exactly the release folder:
it creates the repo (if needed), then ONE commit adds every file of the folder and deletes
every other file on `main` (`.gitattributes` aside: the Hub creates it with the repo and
reads it to keep large files in LFS), and tags that commit with the release version, through
`huggingface_hub.HfApi(endpoint=...)`. Old files (an older, larger release; a restricted
benchmark of an earlier private release) never survive on `main`; they stay in the history
and under their tags, which is why a private repo whose history holds a restricted release
(a tag whose manifest says `requires_private`) is refused to a publish without `--private`
(a release meant to be public): it must stay private; publish publicly to a new repo. This
module never changes a repo's visibility.

Before writing anything, and alone in a dry run, read-only checks: the token (`whoami-v2`)
and its write access to the namespace (the user's own, or an org where its role is `write`
or `admin`; a fine-grained token needs `repo.write` there), the repo (exists or will be
created; visibility as above), the tag (must be new) and the card's YAML (huggingface_hub's
`DatasetCard`, then the Hub's validate-yaml).

The token comes from the argument, else `HF_TOKEN`, else the `hf auth login` cache; it is
never printed, logged or put in an error message.

The token is only sent to the configured endpoint: the `endpoint` argument (the CLI's
`--endpoint`), else `HF_ENDPOINT`, else https://huggingface.co, and only over https. A plain
`http://` endpoint is refused unless `allow_insecure_loopback` is passed (the CLI's hidden
`--allow-http-loopback`, for tests against a local Hub double) and its host is this machine's
loopback (127.0.0.0/8, ::1 or `localhost`); a URL carrying a user or password is refused.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from curation.errors import ConfigError, CurationError, InputError, PermissionDenied

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT = "https://huggingface.co"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
GITATTRIBUTES = ".gitattributes"
WRITE_ROLES = ("admin", "write")  # an org member's `roleInOrg` that may write its repos
CARD_KEYS = ("license", "configs")  # the card YAML keys a release cannot do without


class HubError(CurationError):
    """The Hub refused or failed a request (message scrubbed of credentials)."""


def resolve_token(token: str | None = None) -> str | None:
    """`token`, else `$HF_TOKEN`, else the token saved by `hf auth login` (None if none)."""
    if token:
        return token
    env = os.environ.get("HF_TOKEN")
    if env:
        return env
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # a broken cache file must not leak its content in a traceback
        return None


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback IP literal (127.0.0.0/8, ::1). Names are not resolved."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_endpoint(endpoint: str | None = None, *, allow_insecure_loopback: bool = False) -> str:
    """`endpoint`, else `$HF_ENDPOINT`, else https://huggingface.co (read when called), checked:
    https only; http only with `allow_insecure_loopback` and a loopback host."""
    where = "--endpoint" if endpoint else ("HF_ENDPOINT" if os.environ.get("HF_ENDPOINT") else "the default")
    value = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _ = parts.port  # a malformed port raises here
    except ValueError:
        raise ConfigError(f"Hub endpoint {value!r} ({where}) is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"Hub endpoint {value!r} ({where}) must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"Hub endpoint ({where}) must not carry a user or password; the token is read separately")
    if parts.scheme == "http":
        if not allow_insecure_loopback:
            raise ConfigError(
                f"Hub endpoint {value!r} ({where}) is plain http: the token would travel unencrypted; "
                "use an https:// endpoint (a local test server on 127.0.0.1 needs --allow-http-loopback)"
            )
        if not is_loopback_host(host):
            raise ConfigError(
                f"Hub endpoint {value!r} ({where}): http is only allowed to a loopback host "
                "(127.0.0.1, ::1, localhost), never over a network; use https://"
            )
    return value.rstrip("/")


def _scrub(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    # bearer headers echoed by a server or a library
    return re.sub(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.]+", r"\1***", text)


def _files(folder: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out.append({"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size})
    return out


def _check_request(root: Path, repo_id: str, tag: str | None) -> str:
    """Refuse a missing folder or a malformed repo id; return the tag (default: the
    manifest's version)."""
    if not root.is_dir():
        raise InputError(f"{root}: no such release folder")
    if not _REPO_RE.match(repo_id):
        raise InputError(f"--repo {repo_id!r} must look like ORG/NAME (letters, digits, '.', '_', '-')")
    if tag is None:
        try:
            tag = str(json.loads((root / "manifest.json").read_text(encoding="utf-8"))["version"])
        except (OSError, ValueError, KeyError):
            raise InputError(f"{root}: no manifest.json with a version; pass the tag explicitly") from None
    return tag


# -- the checks run before every publish (and alone by a dry run) ---------------------------
def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "passed": passed, "detail": detail}


def write_rights(who: Mapping[str, Any], namespace: str) -> tuple[bool, str]:
    """Whether the token described by `who` (the Hub's `whoami-v2` answer) may write dataset
    repos under `namespace`, and why: a `write` token of that user or of a member whose
    `roleInOrg` is `write` or `admin`, or a fine-grained token with `repo.write` on it."""
    user = str(who.get("name") or "?")
    token = (who.get("auth") or {}).get("accessToken") or {}
    role = token.get("role")
    if role == "fineGrained":
        scoped = (token.get("fineGrained") or {}).get("scoped") or []
        perms = {p for s in scoped if (s.get("entity") or {}).get("name") == namespace for p in s.get("permissions") or []}
        if "repo.write" in perms:
            return True, f"fine-grained token of {user} with repo.write on {namespace!r}"
        return False, (f"the fine-grained token of {user} has no repo.write permission on {namespace!r}: "
                       "add it at https://huggingface.co/settings/tokens")
    if role != "write":
        return False, (f"the token of {user} has the {role or 'unknown'!r} role: publishing needs a write token "
                       "(https://huggingface.co/settings/tokens)")
    if namespace == user:
        return True, f"write token of {user}, its own namespace"
    orgs = {o.get("name"): o.get("roleInOrg") for o in who.get("orgs") or []}
    if orgs.get(namespace) in WRITE_ROLES:
        return True, f"write token of {user}, role {orgs[namespace]!r} in {namespace!r}"
    if namespace not in orgs:
        where = ", ".join(sorted([user, *map(str, orgs)]))
        return False, f"{user} is not a member of {namespace!r}: choose a --repo under one of {where}"
    return False, f"{user} has the role {orgs[namespace]!r} in {namespace!r}; publishing needs 'write' or 'admin'"


def _data_file_paths(value: Any) -> list[str]:
    """The paths of a `configs[].data_files` value (a path, a list of paths or of
    {split, path} entries, or a {split: path} mapping)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return _data_file_paths(value["path"] if "path" in value else list(value.values()))
    if isinstance(value, list):
        return [p for v in value for p in _data_file_paths(v)]
    return []


def card_problems(text: str, files: set[str]) -> list[str]:
    """What is wrong with a dataset card's YAML header, read with huggingface_hub's
    `DatasetCard` (empty when nothing is): it must parse, carry a `license` and `configs`,
    and every config's data files must be among `files` (the paths being uploaded)."""
    import yaml
    from huggingface_hub import DatasetCard

    if not text.startswith("---"):
        return ["README.md has no YAML header (a block between '---' lines at the top): rebuild the release"]
    try:
        data = DatasetCard(text).data.to_dict()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 2 if exc.problem_mark else "?"
        return [f"README.md line {line}: the YAML header does not parse ({exc.problem}); rebuild the release"]
    except (yaml.YAMLError, ValueError) as exc:
        return [f"README.md: the YAML header is not a mapping of keys ({exc}); rebuild the release"]
    problems = [f"README.md YAML: {key!r} is missing or empty" for key in CARD_KEYS if not data.get(key)]
    for i, cfg in enumerate(data.get("configs") or []):
        name = cfg.get("config_name") if isinstance(cfg, Mapping) else None
        paths = _data_file_paths(cfg.get("data_files")) if isinstance(cfg, Mapping) else []
        if not name or not paths:
            problems.append(f"README.md YAML: configs[{i}] needs a config_name and data_files")
        problems += [f"README.md YAML: config {name!r} reads {p}, which is not in the release"
                     for p in paths if not any(c in p for c in "*?[") and p not in files]
    return problems


def _hub_card_problems(api: HfApi, text: str) -> list[str]:
    """The Hub's own check of the card metadata (`POST /api/validate-yaml`, read-only), the
    call `create_commit` makes before uploading a README.md (huggingface_hub's
    `DatasetCard.validate` would ask the default endpoint instead of `api`'s)."""
    try:
        api._validate_yaml(text, repo_type="dataset")
    except ValueError as exc:
        return [f"the Hub rejects the card's YAML: {exc}"]
    return []


def _restricted_tags(api: HfApi, repo_id: str, tags: list[str]) -> list[str]:
    """Tags whose `manifest.json` says `requires_private`; a tag without a readable manifest
    counts too (it cannot be shown to be safe)."""
    flagged = []
    with tempfile.TemporaryDirectory() as cache:
        for t in tags:
            try:
                path = api.hf_hub_download(repo_id, "manifest.json", repo_type="dataset", revision=t, cache_dir=cache)
                restricted = json.loads(Path(path).read_text(encoding="utf-8")).get("requires_private") is not False
            except Exception:  # unreadable: assume the worst
                restricted = True
            if restricted:
                flagged.append(t)
    return flagged


def _visibility_check(api: HfApi, repo_id: str, private: bool, is_private: bool, tags: list[str]) -> dict[str, Any]:
    if private and not is_private:
        return _check("repo", False, f"{repo_id} already exists and is public; this release must be published "
                                     "privately (make the repo private on the Hub or choose another --repo)")
    if is_private and not private:
        flagged = _restricted_tags(api, repo_id, tags)
        if flagged:
            return _check("repo", False, (
                f"{repo_id} is private and its history holds restricted benchmarks (tags {', '.join(flagged)}); "
                "a release published without --private is meant to become public, and deleting files from main "
                "does not remove them from the history, so this repo must stay private: publish with --private, "
                "or publish publicly to a new --repo"))
        return _check("repo", True, f"{repo_id} exists and is private; it stays private (publishing never "
                                    "changes a repo's visibility)")
    return _check("repo", True, f"{repo_id} exists ({'private' if is_private else 'public'})")


@dataclass
class _Target:
    """The repo as found: whether it exists, its visibility, the head of main and its files."""

    exists: bool = False
    private: bool | None = None
    head: str | None = None
    remote: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, api: HfApi, repo_id: str) -> _Target:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            info = api.dataset_info(repo_id)
        except RepositoryNotFoundError:
            return cls()
        remote = api.list_repo_files(repo_id, repo_type="dataset", revision=info.sha) if info.sha else []
        tags = [t.name for t in api.list_repo_refs(repo_id, repo_type="dataset").tags]
        return cls(True, bool(info.private), info.sha, sorted(remote), tags)

    def deletions(self, upload: set[str]) -> list[str]:
        """Files on main that the release does not have (`.gitattributes` stays: the Hub creates
        it with a repo and reads it to store large files in LFS)."""
        return [p for p in self.remote if p not in upload and p != GITATTRIBUTES]


def _inspect(api: HfApi, *, repo_id: str, private: bool, tag: str, card: str, upload: set[str],
             has_token: bool) -> tuple[list[dict[str, Any]], _Target]:
    """Read-only checks, in order: token, write access, repo (visibility), tag, card. After a
    failed token check the Hub is not asked anything else."""
    from huggingface_hub.errors import HfHubHTTPError

    checks: list[dict[str, Any]] = []
    who = None
    if not has_token:
        checks.append(_check("token", False, "no Hugging Face token: pass one, set HF_TOKEN, or run `hf auth login`"))
    else:
        try:
            who = api.whoami()
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            checks.append(_check("token", False, f"the Hub at {api.endpoint} refused the token ({status}): it is "
                                                 "invalid or expired; create a write token at https://huggingface.co/settings/tokens"))
        else:
            checks.append(_check("token", True, f"valid, user {who.get('name')}"))
    if who is None:
        skipped = "not checked: needs a valid token"
        checks += [_check(name, False, skipped) for name in ("write access", "repo", "tag")]
        return [*checks, _card_check(card, upload, None)], _Target()
    checks.append(_check("write access", *write_rights(who, repo_id.split("/")[0])))
    target = _Target.read(api, repo_id)
    if target.exists:
        checks.append(_visibility_check(api, repo_id, private, bool(target.private), target.tags))
    else:
        checks.append(_check("repo", True, f"{repo_id} does not exist yet: it will be created "
                                           f"{'private' if private else 'public'}"))
    if tag in target.tags:
        checks.append(_check("tag", False, f"{repo_id} already has a tag {tag!r}; a published version is never "
                                           "overwritten: build and publish a new version"))
    else:
        checks.append(_check("tag", True, f"{tag!r} is new"))
    return [*checks, _card_check(card, upload, api)], target


def _card_check(card: str, upload: set[str], api: HfApi | None) -> dict[str, Any]:
    problems = card_problems(card, upload)
    if not problems and api is not None:
        problems = _hub_card_problems(api, card)
    detail = "YAML header valid (DatasetCard; the Hub's validate-yaml); its configs read uploaded files"
    return _check("card", not problems, "; ".join(problems) or detail)


_CHECK_ERRORS: dict[str, type[CurationError]] = {
    "token": HubError, "write access": PermissionDenied, "repo": PermissionDenied, "tag": InputError, "card": InputError,
}


def _commit_release(api: HfApi, root: Path, repo_id: str, private: bool, readme: str | None,
                    target: _Target, message: str) -> tuple[Any, _Target, list[str]]:
    """Create the repo if needed, then one commit to main that adds every file of the folder
    (README.md replaced by `readme` when given) and deletes every other file but
    `.gitattributes`; `parent_commit` makes the Hub refuse it if main moved since it was read."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    if not target.exists:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=False)
        target = _Target.read(api, repo_id)
    upload = [f["path"] for f in _files(root)]
    ops: list[Any] = [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=readme.encode("utf-8")
                           if p == "README.md" and readme is not None else str(root / p))
        for p in upload
    ]
    deleted = target.deletions(set(upload))
    ops += [CommitOperationDelete(path_in_repo=p) for p in deleted]
    commit = api.create_commit(repo_id, ops, repo_type="dataset", commit_message=message, parent_commit=target.head)
    return commit, target, deleted


def publish(
    folder: str | os.PathLike[str],
    repo_id: str,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    *,
    tag: str | None = None,
    commit_message: str | None = None,
    allow_insecure_loopback: bool = False,
    readme: str | None = None,
) -> dict[str, Any]:
    """Make `main` of the dataset repo `repo_id` exactly the files of `folder` (plus the Hub's
    `.gitattributes`) in one commit, and tag it `tag` (default: the `version` in the folder's
    manifest.json), at `endpoint` (see `resolve_endpoint`). `readme`: the README.md text to
    upload instead of the folder's (the card rendered for the Hub); the folder is not changed.

    First the read-only checks (token, write access, repo visibility, tag, card); the first
    failed one is raised before anything is written. `dry_run` runs only the checks and
    returns the plan with `checks` (each `{check, passed, detail}`), `ok`, and `delete` (the
    files the commit would remove from main). Returns `{repo_id, endpoint, private, tag,
    revision, commit_sha, commit_url, files, deleted, checks, ...}`.
    """
    root = Path(folder)
    tag = _check_request(root, repo_id, tag)
    url = resolve_endpoint(endpoint, allow_insecure_loopback=allow_insecure_loopback)
    files = _files(root)
    upload = {f["path"] for f in files}
    plan: dict[str, Any] = {
        "repo_id": repo_id, "repo_type": "dataset", "endpoint": url, "private": private, "tag": tag,
        "revision": "main", "files": files, "total_bytes": sum(f["bytes"] for f in files), "dry_run": dry_run,
        "readme": "rendered for the Hub" if readme is not None else "the folder's README.md",
    }
    secret = resolve_token(token)
    if not secret and not dry_run:
        raise ConfigError(
            "no Hugging Face token: pass one, set HF_TOKEN, or run `hf auth login` (a write token is needed)"
        )
    card = readme if readme is not None else _read_text(root / "README.md")

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=url, token=secret or False)
    try:
        checks, target = _inspect(api, repo_id=repo_id, private=private, tag=tag, card=card, upload=upload,
                                  has_token=bool(secret))
        checks = [{**c, "detail": _scrub(c["detail"], secret)} for c in checks]  # a server may echo anything
        plan.update({"checks": checks, "ok": all(c["passed"] for c in checks), "repo_exists": target.exists,
                     "delete": target.deletions(upload)})
        if dry_run:
            plan["token_found"] = secret is not None
            return plan
        failed = next((c for c in checks if not c["passed"]), None)
        if failed is not None:
            raise _CHECK_ERRORS[failed["check"]](failed["detail"])
        commit, target, deleted = _commit_release(api, root, repo_id, private, readme, target,
                                                  commit_message or f"Release {tag}")
        api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset", tag_message=f"Release {tag}")
    except CurationError:
        raise
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 409 and "tag" in str(exc).lower():
            raise InputError(f"{repo_id} already has a tag {tag!r}; it was not overwritten") from None
        raise HubError(f"the Hub at {url} refused the request ({status}): {_scrub(str(exc), secret)}") from None
    except Exception as exc:  # connection errors and the like: never echo a token
        raise HubError(f"publishing to {url} failed: {type(exc).__name__}: {_scrub(str(exc), secret)}") from None
    plan.update({
        "commit_sha": commit.oid, "commit_url": commit.commit_url, "repo_url": f"{url}/datasets/{repo_id}",
        "private": bool(target.private), "deleted": deleted,
    })
    return plan


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
