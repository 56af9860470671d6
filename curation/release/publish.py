"""`publish_release`: verify a built release, publish it to the Hub, record the publication."""

from __future__ import annotations

import os
from typing import Any

from curation.errors import PermissionDenied
from curation.release.manifest import verify_release
from curation.store import Store, utcnow
from curation.store import releases as rstore


def publish_release(
    store: Store,
    folder: str | os.PathLike[str],
    *,
    repo_id: str,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    allow_insecure_loopback: bool = False,
) -> dict[str, Any]:
    """Verify a built release, publish it with `curation.hub.publish`, record the publication.
    A release that includes restricted benchmarks may only be published privately.

    After a publish, `main` holds exactly the release's files (the manifest's, plus
    `manifest.json`; anything else there is deleted in the same commit). The README.md
    uploaded is the card rendered for the Hub (`render_card(manifest, repo_id=...,
    revision=tag)`): it differs from the folder's README.md (whose sha256 the manifest lists)
    only by the load snippet, which names the repo and pins `revision="<tag>"`; the local
    folder is not changed and stays verifiable.

    `dry_run`: the read-only checks only (token, write access, repo, tag, card); the result's
    `checks` says which passed and `ok` whether all did; nothing is written or recorded.

    `endpoint`: the Hub (default `HF_ENDPOINT`, else https://huggingface.co); https only,
    plain http only to a loopback host with `allow_insecure_loopback` (tests)."""
    from curation import hub
    from curation.card import render_card

    manifest = verify_release(folder)
    if manifest.get("requires_private") and not private:
        prefixes = ", ".join(manifest.get("selection", {}).get("restricted_prefixes", []))
        raise PermissionDenied(
            f"release {manifest.get('version')!r} includes restricted benchmarks ({prefixes}): "
            "it may only be published with --private"
        )
    tag = str(manifest["version"])
    result = hub.publish(
        folder, repo_id, private=private, dry_run=dry_run, token=token, endpoint=endpoint,
        tag=tag, allow_insecure_loopback=allow_insecure_loopback,
        readme=render_card(manifest, repo_id=repo_id, revision=tag),
    )
    if not dry_run:
        now = utcnow()
        store.run(
            lambda con: rstore.record_publication(
                con, release_version=tag, repo_id=repo_id,
                endpoint=result["endpoint"], private=bool(result["private"]), revision=result.get("revision"),
                commit_sha=result.get("commit_sha"), tag=result.get("tag"), published_at=now,
            )
        )
    return result


def list_releases(store: Store) -> list[dict[str, Any]]:
    """Releases recorded in the store, newest first, each with where it was published."""

    def work(con: Any) -> list[dict[str, Any]]:
        rows = rstore.list_releases(con)
        pubs = rstore.list_publications(con)
        for r in rows:
            r["publications"] = [p for p in pubs if p["release_version"] == r["version"]]
        return rows

    return store.run(work)
