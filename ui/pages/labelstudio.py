"""Maintainers: Label Studio projects pushed from this store, their status, a link, and a
button that pulls new labels now. The server comes from `LABEL_STUDIO_URL` and
`LABEL_STUDIO_API_KEY` in the app's environment (the key is never shown)."""

from __future__ import annotations

from ui.common import require_role

user = require_role("maintainer")

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from curation import labelstudio as lsmod  # noqa: E402
from curation.errors import CurationError  # noqa: E402
from ui.common import get_store, writer  # noqa: E402

st.title("Label Studio")
store = get_store()

if not lsmod.env_configured():
    st.warning(
        f"Set {lsmod.URL_ENV} and {lsmod.KEY_ENV} in the app's environment to sync with a "
        "Label Studio server (`scripts/labelstudio.sh` starts one)."
    )
    st.stop()

try:
    api = lsmod.open_api(timeout=30)
except CurationError as exc:
    st.error(str(exc))
    st.stop()

if st.button("Pull labels now", type="primary", key="ls_pull"):
    writer("maintainer")  # the session and the account, checked now
    with st.spinner("Pulling annotations from Label Studio..."):
        try:
            results = lsmod.pull(store, api)
        except CurationError as exc:
            st.error(str(exc))
        else:
            st.session_state["ls_last_pull"] = [
                {"project": r.project_name, "state": r.status, "new rows": r.n_new_rows,
                 "deleted": r.n_deleted, "not stored": r.n_invalid,
                 "problems": len(r.problems) + len(r.over_k), "seconds": r.seconds}
                for r in results
            ]
            st.session_state["ls_pull_warnings"] = [
                w for r in results for w in (*r.problems[:5], *r.over_k[:5],
                                             *([r.settings_drift] if r.settings_drift else []))
            ]

if st.session_state.get("ls_last_pull"):
    st.success("Pulled.")
    st.dataframe(pd.DataFrame(st.session_state["ls_last_pull"]), hide_index=True)
    for warning in st.session_state.get("ls_pull_warnings", []):
        st.warning(warning)

try:
    report = lsmod.status(store, api.conn.server, api)
except CurationError as exc:
    st.error(str(exc))
    st.stop()

st.caption(f"Server: {report['server']} · last sync: {report['last_sync'] or 'never'}")
if not report["projects"]:
    st.info("Nothing pushed yet: `curation ls push BATCH` sends a batch to Label Studio.")
    st.stop()

for p in report["projects"]:
    with st.container(border=True):
        st.subheader(p["name"], anchor=False)
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Tasks", p["tasks"])
        c2.metric("Annotated", p["annotated"])
        c3.metric("Pending (< overlap)", p["pending"])
        c4.metric("Labels pulled", p["annotations"])
        if p["retired"]:
            st.info(f"Retired: {p['retired_reason']}")
        if p["over_k"]:
            st.warning(f"{p['over_k']} task(s) have more labels than the overlap {p['overlap']}.")
        st.link_button("Open in Label Studio", p["url"])
        st.caption(
            f"overlap {p['overlap']} · suggestions {'on' if p['suggestions'] else 'off'} · "
            f"last push {p['last_push'] or 'never'} · last pull {p['last_pull'] or 'never'}"
            + (f" · server: {p.get('server_annotations')} annotations"
               if p.get("server_annotations") is not None else "")
        )
        if p.get("server_error"):
            st.warning(p["server_error"])

with st.expander("Recent syncs"):
    st.dataframe(pd.DataFrame(report["recent_syncs"]), hide_index=True)
