"""`curation ls ...`: push batches to Label Studio, pull labels back, show sync status.

Thin wrappers over `curation.labelstudio`. The API key comes from `--api-key` or
`LABEL_STUDIO_API_KEY` and is never printed (errors are scrubbed by the adapter).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from curation import labelstudio as lsmod
from curation.cli._common import DbOption, JsonOption, console, handle_errors, print_json, store

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help=f"Label Studio base URL [env: {lsmod.URL_ENV}]", show_default=False),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help=f"Label Studio legacy token or personal access token [env: {lsmod.KEY_ENV}]",
        show_default=False,
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", help="Label Studio project title [default: 'curation <batch>']"),
]
OfflineOption = Annotated[bool, typer.Option("--offline", help="Only the store's view; do not ask the server.")]

ls_app = typer.Typer(
    name="ls",
    help="Label Studio: push batches as tasks, pull labels into the store, show sync status.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@ls_app.command("push")
@handle_errors
def push_cmd(
    batch: Annotated[str, typer.Argument(help="Batch id (see `curation stats`).")],
    project: ProjectOption = None,
    fix_settings: Annotated[bool, typer.Option(
        "--fix-settings", help="Restore project settings changed by hand in Label Studio "
        "(overlap, collaborator predictions, ...) to what curation pushed.")] = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a batch's questions as tasks (idempotent), with suggestions if the batch allows.
    A project whose labeling config was changed stops the push; changed settings are
    reported, or restored with --fix-settings."""
    api = lsmod.open_api(url, api_key)
    result = lsmod.push_batch(store(db), api, batch, project=project, fix_settings=fix_settings)
    if as_json:
        print_json(asdict(result))
        return
    console.print(
        f"batch {result.batch_id}: {result.n_created} task(s) created, {result.n_existing} already "
        f"there, {result.n_predictions} with suggestions -> project {result.project_name!r} "
        f"(id {result.project_id}) {result.url}  [{result.seconds:.1f} s]",
        highlight=False, markup=False,
    )
    if result.settings_drift:
        what = "restored" if result.settings_fixed else "left (run with --fix-settings to restore)"
        console.print(f"warning: settings changed in Label Studio: {result.settings_drift}; {what}",
                      highlight=False, markup=False)


@ls_app.command("pull")
@handle_errors
def pull_cmd(
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project title [default: all pushed].")
    ] = None,
    batch: Annotated[
        str | None, typer.Option("--batch", help="Only the projects holding this batch.")
    ] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=5000)] = 1000,
    full: Annotated[bool, typer.Option(
        "--full", help="List every task, not only those updated since the last complete pull.")] = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store new, edited and deleted Label Studio annotations (append-only; re-running is a no-op).

    A project deleted in Label Studio or whose labeling config changed is reported and
    skipped; the others are pulled. Exits 1 when a project was skipped or an annotation
    could not be stored (an unknown label value), after storing everything valid."""
    api = lsmod.open_api(url, api_key)
    results = lsmod.pull(store(db), api, project=project, batch=batch, page_size=page_size, full=full)
    if as_json:
        print_json([{**asdict(r), "complete": r.complete} for r in results])
    else:
        _print_pull(results)
    if not all(r.complete for r in results):
        raise typer.Exit(1)


def _print_pull(results: list[lsmod.PullResult]) -> None:
    table = Table("project", "id", "state", "tasks", "annotations", "new rows", "deleted",
                  "not stored", "seconds")
    for r in results:
        table.add_row(r.project_name, str(r.project_id), r.status, str(r.n_tasks), str(r.n_seen),
                      str(r.n_new_rows), str(r.n_deleted), str(r.n_invalid), f"{r.seconds:.1f}")
    console.print(table)
    for r in results:
        lines = [*r.problems, *r.over_k]
        if r.settings_drift:
            lines.append(f"project {r.project_name!r}: settings changed in Label Studio: "
                         f"{r.settings_drift} (`curation ls push --fix-settings` restores them)")
        for problem in lines[:20]:
            console.print(f"warning: {problem}", highlight=False, markup=False, soft_wrap=True)
        if len(lines) > 20:
            console.print(f"warning: ... and {len(lines) - 20} more", markup=False)


@ls_app.command("status")
@handle_errors
def status_cmd(
    url: UrlOption = None,
    api_key: KeyOption = None,
    offline: OfflineOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per project: tasks, annotated, pending, last push and pull."""
    server = lsmod.server_url(url)
    api = None if offline else lsmod.open_api(url, api_key)
    report = lsmod.status(store(db), server, api)
    if as_json:
        print_json(report)
        return
    table = Table("project", "id", "overlap", "tasks", "completed", "pending", "labels", "skips",
                  "over K", "last pull")
    for p in report["projects"]:
        name = p["name"] + (" (retired)" if p["retired"] else "")
        table.add_row(name, str(p["project_id"]), str(p["overlap"]), str(p["tasks"]),
                      str(p["completed"]), str(p["pending"]), str(p["annotations"]),
                      str(p["skips"]), str(p["over_k"]), str(p["last_pull"] or "never"))
    console.print(table)
    for p in report["projects"]:  # whole URLs, never cut by the table's width
        console.print(f"{p['project_id']}: {p['url']}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"last sync: {report['last_sync'] or 'never'}", markup=False)
    for p in report["projects"]:
        if "server_error" in p:
            console.print(f"warning: {p['server_error']}", markup=False, highlight=False)


@ls_app.command("map-user")
@handle_errors
def map_user_cmd(
    email: Annotated[str, typer.Argument(help="The Label Studio user's email.")],
    annotator: Annotated[str, typer.Argument(help="Our annotator name for that user.")],
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
) -> None:
    """Map a Label Studio user to one of our annotators (for labels pulled from now on)."""
    api = lsmod.open_api(url, api_key)
    out = lsmod.map_user(store(db), api, email, annotator)
    console.print(f"{out['email']} (Label Studio user {out['ls_user_id']}) -> {out['annotator']}",
                  markup=False, highlight=False)


@ls_app.command("projects")
@handle_errors
def projects_cmd(
    url: UrlOption = None,
    api_key: KeyOption = None,
    offline: OfflineOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Projects pushed from this store and their state: live, retired, deleted in Label
    Studio, or drifted (labeling config or settings changed by hand)."""
    st = store(db)
    api = None if offline else lsmod.open_api(url, api_key)
    server = lsmod.resolve_server(st, api) if api is not None else lsmod.known_server(
        st, lsmod.server_url(url))
    rows = lsmod.project_states(st, server, api)
    if as_json:
        print_json(rows)
        return
    table = Table("project", "id", "overlap", "state")
    for r in rows:
        table.add_row(r["name"], str(r["project_id"]), str(r["overlap"]), r["state"])
    console.print(table)
    for r in rows:
        if r["detail"]:
            console.print(f"{r['name']} ({r['project_id']}): {r['detail']}", markup=False,
                          highlight=False, soft_wrap=True)


@ls_app.command("retire")
@handle_errors
def retire_cmd(
    project: Annotated[str, typer.Argument(help="Project id or title (see `curation ls projects`).")],
    url: UrlOption = None,
    db: DbOption = None,
) -> None:
    """Stop pushing to and pulling from a project (e.g. deleted in Label Studio); its labels stay."""
    st = store(db)
    server = lsmod.known_server(st, lsmod.server_url(url))
    out = lsmod.retire(st, server, project)
    console.print(f"retired project {out['name']!r} (id {out['project_id']})", markup=False,
                  highlight=False)


@ls_app.command("servers")
@handle_errors
def servers_cmd(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Label Studio servers this store knows: the key its rows are stored under, its URL now."""
    rows = lsmod.servers(store(db))
    if as_json:
        print_json(rows)
        return
    table = Table("server key", "url", "identity", "projects")
    for r in rows:
        table.add_row(r["server"], r["url"], str(r["identity"] or "unknown"), str(r["n_projects"]))
    console.print(table)


@ls_app.command("move")
@handle_errors
def move_cmd(
    from_url: Annotated[str, typer.Option("--from", help="The URL the store knows the server at.")],
    to_url: Annotated[str, typer.Option("--to", help="Its new URL.")],
    db: DbOption = None,
) -> None:
    """Re-point a server to a new URL (new host name, https): nothing is re-pulled."""
    out = lsmod.move_server(store(db), from_url, to_url)
    console.print(f"server {out['server']}: {out['from']} -> {out['to']}", markup=False,
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add `curation ls ...`."""
    app.add_typer(ls_app, name="ls")
