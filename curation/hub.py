"""The only module that talks to the Hugging Face Hub.

`publish(folder, repo_id, ...)` creates the dataset repo (if needed), uploads the release
folder in one commit and tags that commit with the release version, through
`huggingface_hub.HfApi(endpoint=...)`. The token comes from the argument, else `HF_TOKEN`,
else the `hf auth login` cache; it is never printed, logged or put in an error message.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from curation.errors import ConfigError, CurationError, InputError, PermissionDenied

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT = "https://huggingface.co"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")


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


def _prepare_repo(api: HfApi, repo_id: str, private: bool, tag: str) -> None:
    """Create the dataset repo if needed; refuse, before anything is uploaded, a public repo
    when `private` is asked for and a tag that already exists. Hub errors propagate to
    `publish`, which scrubs them."""
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.dataset_info(repo_id)
    if private and info.private is False:
        raise PermissionDenied(
            f"{repo_id} already exists and is public; this release must be published privately "
            "(make the repo private on the Hub or choose another --repo)"
        )
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    if any(t.name == tag for t in refs.tags):
        raise InputError(
            f"{repo_id} already has a tag {tag!r}; a published version is never overwritten: "
            "build and publish a new version"
        )


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
) -> dict[str, Any]:
    """Upload `folder` to the dataset repo `repo_id` and tag the commit `tag` (default: the
    `version` in the folder's manifest.json), at `endpoint` (see `resolve_endpoint`: https,
    or http to a loopback host with `allow_insecure_loopback`).

    Refuses (before uploading anything) when the tag already exists, and when `private` is
    asked for but the existing repo is public. `dry_run` contacts nobody and returns the plan.
    Returns `{repo_id, endpoint, private, tag, revision, commit_sha, commit_url, files, ...}`.
    """
    root = Path(folder)
    tag = _check_request(root, repo_id, tag)
    url = resolve_endpoint(endpoint, allow_insecure_loopback=allow_insecure_loopback)
    files = _files(root)
    plan: dict[str, Any] = {
        "repo_id": repo_id,
        "repo_type": "dataset",
        "endpoint": url,
        "private": private,
        "tag": tag,
        "revision": "main",
        "files": files,
        "total_bytes": sum(f["bytes"] for f in files),
        "dry_run": dry_run,
    }
    secret = resolve_token(token)
    if dry_run:
        plan["token_found"] = secret is not None
        return plan
    if not secret:
        raise ConfigError(
            "no Hugging Face token: pass one, set HF_TOKEN, or run `hf auth login` (a write token is needed)"
        )

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=url, token=secret)
    try:
        _prepare_repo(api, repo_id, private, tag)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(root),
            repo_type="dataset",
            commit_message=commit_message or f"Release {tag}",
        )
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
    plan.update(
        {
            "commit_sha": commit.oid,
            "commit_url": commit.commit_url,
            "repo_url": f"{url}/datasets/{repo_id}",
        }
    )
    return plan
