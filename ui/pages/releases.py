"""Releases (maintainers): built releases and their manifests; publish to the Hub, dry run first.

The Hub token is read on the server (HF_TOKEN or the `hf auth login` cache); it is never typed
into, shown on or sent to this page. The endpoint is the server's too (HF_ENDPOINT, else
https://huggingface.co, https only): this page cannot choose where the token goes. Publishing
is only offered after a dry run of the same release, repo and visibility in this session.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.common import require_role

user = require_role("maintainer")

from curation.errors import CurationError  # noqa: E402
from curation.release import list_releases, publish_release, read_manifest  # noqa: E402
from ui.common import get_store, show_plain, writer  # noqa: E402

DRY_RUN_KEY = "release_dry_run"  # durable state no widget owns

store = get_store()
st.title("Releases")


releases = list_releases(store)
if not releases:
    st.info("No release built yet. Build one with `curation release build --version v1.0`.")
    st.stop()

st.dataframe(
    [
        {
            "version": r["version"],
            "built": str(r["created_at"])[:19],
            "all": r["manifest"].get("row_counts", {}).get("all", 0),
            "train_reasoning": r["manifest"].get("row_counts", {}).get("train_reasoning", 0),
            "private only": bool(r["manifest"].get("requires_private")),
            "content hash": r["content_hash"][:12],
            "published": ", ".join(f"{p['repo_id']}@{(p['commit_sha'] or '')[:8]}" for p in r["publications"]) or "–",
        }
        for r in releases
    ],
    hide_index=True,
    width="stretch",
)

version = st.selectbox("Release", [r["version"] for r in releases], key="release_version")
rel = next(r for r in releases if r["version"] == version)
folder = Path(rel["path"])
manifest = rel["manifest"]
if folder.is_dir():
    try:
        manifest = read_manifest(folder)
    except CurationError as exc:
        st.error(str(exc))
else:
    st.warning(f"The release folder is gone: {folder}. Rebuild it to publish.")

c1, c2, c3 = st.columns(3)
c1.metric("Questions (all)", manifest.get("row_counts", {}).get("all", 0))
c2.metric("Training rows", manifest.get("row_counts", {}).get("train_reasoning", 0))
dec = manifest.get("decontamination", {})
c3.metric("Removed by decontamination", dec.get("n_removed", 0))
st.subheader("Configs")
st.dataframe(
    [{"config": k, "split": v["split"], "rows": v["rows"], "file": v["path"]} for k, v in manifest.get("configs", {}).items()],
    hide_index=True,
    width="stretch",
)
model = manifest.get("model") or {}
show_plain(f"Model: {model.get('version', 'none')}   base: {model.get('base_model', '-')}")
if manifest.get("requires_private"):
    st.warning("This release includes restricted benchmarks: it can only be published to a private repo.")
with st.expander("manifest.json"):
    st.json(manifest, expanded=False)

st.subheader("Publish to the Hugging Face Hub")
with st.form("publish_form"):
    repo_id = st.text_input("Repository (ORG/NAME)", key="publish_repo")
    private = st.checkbox("Private repository", value=bool(manifest.get("requires_private")), key="publish_private")
    st.caption("The Hub endpoint is set on the server (HF_ENDPOINT, default https://huggingface.co).")
    dry = st.form_submit_button("Dry run")

request = (version, repo_id.strip(), bool(private))
if dry:
    try:
        plan = publish_release(store, folder, repo_id=request[1], private=request[2], dry_run=True)
    except CurationError as exc:
        st.session_state.pop(DRY_RUN_KEY, None)
        st.error(str(exc))
    else:
        st.session_state[DRY_RUN_KEY] = {"request": request, "plan": plan}

checked = st.session_state.get(DRY_RUN_KEY)
if checked and checked["request"] == request:
    plan = checked["plan"]
    show_plain(
        f"Dry run: {len(plan['files'])} file(s), {plan['total_bytes']:,} bytes to {plan['endpoint']}/datasets/"
        f"{plan['repo_id']} ({'private' if plan['private'] else 'public'}), tag {plan['tag']}; "
        f"token {'found' if plan.get('token_found') else 'NOT found: set HF_TOKEN on the server'}."
    )
    for check in plan.get("checks", []):  # token, write access, repo, tag, card: read-only checks
        show_plain(f"{'passed' if check['passed'] else 'FAILED'}: {check['check']}: {check['detail']}")
    if plan.get("delete"):
        show_plain(f"The commit will delete {len(plan['delete'])} file(s) no longer in the release from main.")
    if st.button("Publish", type="primary", key="publish_go", disabled=not plan.get("ok", False)):
        writer("maintainer")  # the session and the account, checked now
        try:
            with st.spinner("Uploading ..."):
                result = publish_release(store, folder, repo_id=request[1], private=request[2])
        except CurationError as exc:
            st.error(str(exc))
        else:
            st.session_state.pop(DRY_RUN_KEY, None)
            st.success(f"Published {result['repo_id']} at commit {result['commit_sha'][:12]}, tag {result['tag']}.")
elif repo_id:
    st.caption("Run a dry run of this exact request before publishing.")
