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

    `endpoint`: the Hub (default `HF_ENDPOINT`, else https://huggingface.co); https only,
    plain http only to a loopback host with `allow_insecure_loopback` (tests)."""
    from curation import hub

    manifest = verify_release(folder)
    if manifest.get("requires_private") and not private:
        prefixes = ", ".join(manifest.get("selection", {}).get("restricted_prefixes", []))
        raise PermissionDenied(
            f"release {manifest.get('version')!r} includes restricted benchmarks ({prefixes}): "
            "it may only be published with --private"
        )
    result = hub.publish(
        folder, repo_id, private=private, dry_run=dry_run, token=token, endpoint=endpoint,
        tag=str(manifest["version"]), allow_insecure_loopback=allow_insecure_loopback,
    )
    if not dry_run:
        now = utcnow()
        store.run(
            lambda con: rstore.record_publication(
                con, release_version=str(manifest["version"]), repo_id=repo_id,
                endpoint=result["endpoint"], private=private, revision=result.get("revision"),
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
