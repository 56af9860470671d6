"""Label Studio servers and projects as the store knows them: which server is which, which
projects are live, and whether a project still holds what we pushed.

Server identity
    Every Label Studio row of the store (`ls_*` tables, event ids) is keyed by a *server
    key*: the normalized URL the server was first reached at. `ls_servers` maps each key
    to its current URL and to the server's identity (its organization's id and creation
    time, `checks.server_identity`). `resolve_server` asks the server who it is before
    anything else (so a wrong port says "cannot reach"), then picks the key: the one whose
    URL this is, else the one with the same identity (the same server under another host
    name, or moved to https) -- so nothing is pulled twice. `move_server` re-points a key
    to a new URL without re-pulling; `servers` lists them.

Projects
    `project_states` lists the projects pushed from the store (live, retired, deleted on
    the server); `retire` takes one out of push and pull (its labels stay). `check_project`
    reads a project and compares its label config (`checks.config_drift`) and settings
    (`checks.settings_drift`) with what we pushed; `fix_settings` restores the settings.
    `reconcile_tasks` adopts tasks of a project missing from our task map (by question id).

K-overlap on the Community Edition
    The CE labeling queue (`GET /api/projects/<id>/next`, "Label All Tasks") honours the
    project's `maximum_annotations`: a task stays in the queue until that many different
    annotators submitted it, and nobody gets a task twice. This was established against
    a real 1.23.2 server (`tests/integration/labelstudio/test_overlap.py`): with
    `maximum_annotations=2` a second annotator is served the task the first one
    finished; with 1 the second annotator gets "no more tasks". So a batch with overlap K
    is pushed as one project with `maximum_annotations=K` (and
    `overlap_cohort_percentage=100`); annotators label through the queue. Caveat of the
    CE: every member can open any task in the Data Manager and see others' annotations,
    so for blind gold batches annotators must be told to use the queue only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from curation.errors import ConfigError, InputError, NotFoundError
from curation.labelstudio.api import (
    LabelStudioApi,
    LabelStudioAuthError,
    LabelStudioError,
    LabelStudioNotFound,
    normalize_server,
)
from curation.labelstudio.checks import (
    config_drift,
    describe_settings_drift,
    expected_settings,
    server_identity,
    settings_drift,
)
from curation.labelstudio.mapping import TaskRef, load_label_config, resolve_annotator
from curation.store import Store, utcnow
from curation.store import labelstudio as ls_store


def resolve_server(store: Store, api: LabelStudioApi) -> str:
    """The server key of the server `api` talks to (asks the server; records a new one)."""
    url = api.conn.server
    identity = server_identity(api.organization())

    def go(con: Any) -> str:
        known = ls_store.servers(con)
        now = utcnow()
        by_url = next((s for s in known if s["url"] == url), None)
        if by_url is not None:
            if by_url["identity"] is None and identity is not None:
                ls_store.update_server(con, by_url["server"], at=now, identity=identity)
            elif identity is not None and by_url["identity"] != identity:
                raise ConfigError(
                    f"the Label Studio server at {url} is not the one this store pushed to from "
                    f"that URL (its organization differs: {identity} vs {by_url['identity']}); "
                    "if the old server moved, run `curation ls move --from URL --to NEW_URL`"
                )
            return str(by_url["server"])
        same = [s for s in known if identity is not None and s["identity"] == identity]
        if same:
            return str(same[0]["server"])
        ls_store.add_server(con, url, url, identity, now)
        return url

    return str(store.run(go))


def known_server(store: Store, url: str) -> str:
    """The server key for a URL without asking the server (the URL itself if unknown)."""
    norm = normalize_server(url)
    rows = store.run(ls_store.servers)
    return next((str(s["server"]) for s in rows if norm in (s["url"], s["server"])), norm)


def servers(store: Store) -> list[dict[str, Any]]:
    return list(store.run(ls_store.servers))


def move_server(store: Store, from_url: str, to_url: str) -> dict[str, Any]:
    """Re-point the server known at `from_url` to `to_url` (nothing is re-pulled)."""
    src, dst = normalize_server(from_url), normalize_server(to_url)

    def go(con: Any) -> dict[str, Any]:
        rows = ls_store.servers(con)
        match = next((s for s in rows if src in (s["url"], s["server"])), None)
        if match is None:
            raise NotFoundError(f"no Label Studio server known at {src}; see `curation ls servers`")
        clash = next((s for s in rows if s["url"] == dst and s["server"] != match["server"]), None)
        if clash is not None:
            raise InputError(f"{dst} is already the URL of server {clash['server']!r}")
        ls_store.update_server(con, match["server"], at=utcnow(), url=dst)
        return {"server": match["server"], "from": match["url"], "to": dst}

    return dict(store.run(go))


def server_base_url(store: Store, server: str) -> str:
    """The current URL of a server key (for links)."""
    rows = store.run(ls_store.servers)
    return next((str(s["url"]) for s in rows if s["server"] == server), server)


@dataclass(frozen=True)
class ProjectCheck:
    """A project as the server holds it now, compared with what we pushed."""

    info: dict[str, Any] | None  # the server's project; None if it is gone
    error: str | None  # why the project cannot be used (deleted, unreachable)
    config_diff: str | None  # the label config's interface changed (pull stops)
    settings: dict[str, tuple[Any, Any]]  # setting -> (ours, server's)

    @property
    def settings_message(self) -> str | None:
        return describe_settings_drift(self.settings) if self.settings else None


def check_project(api: LabelStudioApi, ref: ls_store.ProjectRef) -> ProjectCheck:
    """Read the project and compare its config and settings with what we pushed."""
    try:
        info = api.get_project(ref.project_id)
    except LabelStudioNotFound:
        return ProjectCheck(None, (
            f"project {ref.name!r} (id {ref.project_id}) no longer exists in Label Studio at "
            f"{api.base}: skipped; `curation ls retire {ref.project_id}` stops asking for it"
        ), None, {})
    pushed = ref.label_config or load_label_config()
    diff = config_drift(pushed, str(info.get("label_config") or ""))
    want = expected_settings(overlap=ref.overlap, show_suggestions=ref.show_suggestions)
    return ProjectCheck(info, None, diff, settings_drift(want, info))


def config_drift_message(ref: ls_store.ProjectRef, diff: str) -> str:
    return (
        f"project {ref.name!r} (id {ref.project_id}): its labeling config in Label Studio is not "
        f"the one curation pushed, so its labels cannot be read; nothing was stored or marked "
        f"seen. Restore the config in Label Studio (Settings > Labeling Interface) and pull "
        f"again. Difference:\n{diff}"
    )


def fix_settings(api: LabelStudioApi, ref: ls_store.ProjectRef, check: ProjectCheck) -> None:
    """Restore the drifted settings of a project to what we pushed."""
    if check.settings:
        api.update_project(ref.project_id, **{k: ours for k, (ours, _) in check.settings.items()})


def project_states(store: Store, server: str, api: LabelStudioApi | None = None) -> list[dict[str, Any]]:
    """Every project pushed to `server` with its state: live, retired (why), or (asking the
    server when `api` is given) deleted / drifted."""
    refs = store.run(lambda con: ls_store.projects(con, server, include_retired=True))
    out = []
    for ref in refs:
        state, detail = ("retired", ref.retired_reason) if ref.retired_at else ("live", None)
        if api is not None and ref.retired_at is None:
            try:
                check = check_project(api, ref)
            except LabelStudioError as exc:
                state, detail = "unreachable", str(exc)
            else:
                if check.info is None:
                    state, detail = "deleted", check.error
                elif check.config_diff:
                    state, detail = "config drift", check.config_diff
                elif check.settings:
                    state, detail = "settings drift", check.settings_message
        out.append({"project_id": ref.project_id, "name": ref.name, "overlap": ref.overlap,
                    "state": state, "detail": detail, "retired_at": ref.retired_at})
    return out


def retire(store: Store, server: str, project: str, *, reason: str = "retired by the user") -> dict[str, Any]:
    """Retire a project (by id or title): no longer pushed to or pulled; its labels stay."""
    refs = store.run(lambda con: ls_store.projects(con, server, include_retired=True))
    match = [r for r in refs if str(r.project_id) == project.strip()] or \
        [r for r in refs if r.name == project]
    if not match:
        raise NotFoundError(f"no Label Studio project {project!r} pushed to {server}; "
                            "see `curation ls projects`")
    if len(match) > 1:
        raise InputError(f"{len(match)} projects are titled {project!r}: retire one by id "
                         f"({', '.join(str(r.project_id) for r in match)})")
    ref = match[0]
    store.run(lambda con: ls_store.retire_project(con, server, ref.project_id, reason, utcnow()))
    return {"project_id": ref.project_id, "name": ref.name, "reason": reason}


# ---------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------


def user_map(store: Store, api: LabelStudioApi, server: str, now: datetime) -> dict[int, str]:
    """LS user id -> annotator, recording first-seen mappings."""
    users = api.users()

    def go(con: Any) -> dict[int, str]:
        mapping = ls_store.user_map(con, server)
        app_users = ls_store.known_annotators(con)
        locals_: dict[str, int] = {}
        for u in users:
            email = str(u.get("email") or "").lower()
            if "@" in email:
                loc = email.split("@", 1)[0]
                locals_[loc] = locals_.get(loc, 0) + 1
        new = []
        for u in users:
            uid = int(u["id"])
            if uid not in mapping:
                name = resolve_annotator(u, app_users, locals_)
                mapping[uid] = name
                new.append((uid, u.get("email"), name))
        ls_store.add_users(con, server, new, now)
        return mapping

    return dict(store.run(go))


def map_user(store: Store, api: LabelStudioApi, email: str, annotator: str) -> dict[str, Any]:
    """Map a Label Studio user (by email) to our annotator name, for rows pulled from now on."""
    target = email.strip().lower()
    matches = [u for u in api.users() if str(u.get("email") or "").lower() == target]
    if not matches:
        raise NotFoundError(f"no Label Studio user with email {email!r} on {api.base}")
    uid = int(matches[0]["id"])
    server = resolve_server(store, api)
    store.run(lambda con: ls_store.set_user(con, server, uid, target, annotator, utcnow()))
    return {"ls_user_id": uid, "email": target, "annotator": annotator}


# ---------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------


def project_url(base: str, project_id: int) -> str:
    return f"{base.rstrip('/')}/projects/{project_id}/data"


def status(store: Store, server: str, api: LabelStudioApi | None = None) -> dict[str, Any]:
    """Per project: tasks, annotated, pending, skips, over-K, last push/pull; live counts
    when `api` is given (a wrong key then fails, it is not a warning).

    `server` is a URL (or server key); with `api` the server says who it is. `completed` =
    tasks with at least `overlap` current *labels* (a skip fills no slot), `pending` the rest.
    """
    key = resolve_server(store, api) if api is not None else known_server(store, server)
    base = api.conn.url if api is not None else server_base_url(store, key)

    def go(con: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return ls_store.project_counts(con, key), ls_store.last_syncs(con, key, limit=10)

    counts, syncs = store.run(go)
    projects_out = []
    for c in counts:
        pid = int(c["project_id"])
        entry: dict[str, Any] = {
            "project_id": pid, "name": c["name"], "url": project_url(base, pid),
            "overlap": c["overlap"], "suggestions": bool(c["show_suggestions"]),
            "retired": c["retired_at"] is not None, "retired_reason": c["retired_reason"],
            "tasks": int(c["n_tasks"]), "annotated": int(c["n_annotated_tasks"]),
            "completed": int(c["n_completed"]),
            "pending": int(c["n_tasks"]) - int(c["n_completed"]),
            "annotations": int(c["n_annotations"]), "skips": int(c["n_skips"]),
            "over_k": int(c["n_over_k"]), "last_push": c["last_push"],
            "last_pull": c["last_pull"],
        }
        if api is not None and not entry["retired"]:
            try:
                info = api.get_project(pid)
                entry["server_tasks"] = info.get("task_number")
                entry["server_annotations"] = info.get("total_annotations_number")
                entry["server_tasks_with_annotations"] = info.get("num_tasks_with_annotations")
            except LabelStudioAuthError:
                raise
            except LabelStudioError as exc:
                entry["server_error"] = str(exc)
        projects_out.append(entry)
    last_sync = next((s["finished_at"] for s in syncs if s["status"] == "ok"), None)
    return {"server": base, "server_key": key, "projects": projects_out, "last_sync": last_sync,
            "recent_syncs": syncs}


def reconcile_tasks(store: Store, api: LabelStudioApi, ref: ls_store.ProjectRef, now: datetime) -> None:
    """Adopt tasks that exist in the project but are missing from our map (by question id)."""
    server = ref.server
    mapped = store.run(lambda con: ls_store.task_map(con, server, ref.project_id))
    info = api.get_project(ref.project_id)
    n_remote = int(info.get("task_number") or 0)
    if n_remote == len(mapped):
        return
    found: dict[int, str] = {}
    for page in api.task_pages(ref.project_id, fields="id,data", page_size=2000):
        for t in page:
            qid = (t.get("data") or {}).get("question_id")
            if int(t["id"]) not in mapped and qid:
                found[int(t["id"])] = str(qid)
    if not found:
        return

    def adopt(con: Any) -> None:
        known_q = ls_store.existing_questions(con, list(found.values()))
        refs = [TaskRef(tid, q, None, ref.show_suggestions)
                for tid, q in sorted(found.items()) if q in known_q]
        ls_store.add_tasks(con, server, ref.project_id, refs, now)

    store.run(adopt)
