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
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a batch's questions as tasks (idempotent), with suggestions if the batch allows."""
    api = lsmod.open_api(url, api_key)
    result = lsmod.push_batch(store(db), api, batch, project=project)
    if as_json:
        print_json(asdict(result))
        return
    console.print(
        f"batch {result.batch_id}: {result.n_created} task(s) created, {result.n_existing} already "
        f"there, {result.n_predictions} with suggestions -> project {result.project_name!r} "
        f"(id {result.project_id}) {result.url}  [{result.seconds:.1f} s]",
        highlight=False, markup=False,
    )


@ls_app.command("pull")
@handle_errors
def pull_cmd(
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project title [default: all pushed].")
    ] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=5000)] = 1000,
    url: UrlOption = None,
    api_key: KeyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store new, edited and deleted Label Studio annotations (append-only; re-running is a no-op)."""
    api = lsmod.open_api(url, api_key)
    results = lsmod.pull(store(db), api, project=project, page_size=page_size)
    if as_json:
        print_json([asdict(r) for r in results])
        return
    table = Table("project", "id", "tasks", "annotations", "new rows", "deleted", "seconds")
    for r in results:
        table.add_row(r.project_name, str(r.project_id), str(r.n_tasks), str(r.n_seen),
                      str(r.n_new_rows), str(r.n_deleted), f"{r.seconds:.1f}")
    console.print(table)
    for r in results:
        for problem in r.problems[:20]:
            console.print(f"warning: {problem}", highlight=False, markup=False)
        if len(r.problems) > 20:
            console.print(f"warning: ... and {len(r.problems) - 20} more", markup=False)


@ls_app.command("status")
@handle_errors
def status_cmd(
    url: UrlOption = None,
    api_key: KeyOption = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Only the store's view; do not ask the server.")
    ] = False,
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
    table = Table("project", "id", "overlap", "tasks", "annotated", "pending", "labels",
                  "last pull", "url")
    for p in report["projects"]:
        table.add_row(p["name"], str(p["project_id"]), str(p["overlap"]), str(p["tasks"]),
                      str(p["annotated"]), str(p["pending"]), str(p["annotations"]),
                      str(p["last_pull"] or "never"), p["url"])
    console.print(table)
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


def register(app: typer.Typer) -> None:
    """Add `curation ls ...`."""
    app.add_typer(ls_app, name="ls")
