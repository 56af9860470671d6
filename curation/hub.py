"""The only module that talks to the Hugging Face Hub.

`publish(folder, repo_id, ...)` creates the dataset repo (if needed), uploads the release
folder in one commit and tags that commit with the release version, through
`huggingface_hub.HfApi(endpoint=...)`. The endpoint is injectable (tests run it against a
local test double). The token comes from the argument, else `HF_TOKEN`, else the `hf auth
login` cache; it is never printed, logged or put in an error message.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def resolve_endpoint(endpoint: str | None = None) -> str:
    """`endpoint`, else `$HF_ENDPOINT`, else https://huggingface.co (read when called)."""
    value = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    if not re.match(r"^https?://", value):
        raise ConfigError(f"Hub endpoint {value!r} must start with http:// or https:// (--endpoint / HF_ENDPOINT)")
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
) -> dict[str, Any]:
    """Upload `folder` to the dataset repo `repo_id` and tag the commit `tag` (default: the
    `version` in the folder's manifest.json).

    Refuses (before uploading anything) when the tag already exists, and when `private` is
    asked for but the existing repo is public. `dry_run` contacts nobody and returns the plan.
    Returns `{repo_id, endpoint, private, tag, revision, commit_sha, commit_url, files, ...}`.
    """
    root = Path(folder)
    tag = _check_request(root, repo_id, tag)
    url = resolve_endpoint(endpoint)
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
