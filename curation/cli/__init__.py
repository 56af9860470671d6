"""The `curation` command: thin Typer wrappers over importable functions.

Each area registers its commands from its own module (`core`, `users`, `model`, `ls`,
`release`). Tracebacks never show local variables: our commands hold tokens.
"""

from __future__ import annotations

import typer

from curation.cli import app_cmds, core, ls, model, release

app = typer.Typer(
    name="curation",
    help=(
        "Curate medical QA benchmarks into reasoning-heavy vs knowledge-heavy splits: "
        "ingest, annotate, train a classifier in an active-learning loop, export and publish."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

for module in (core, app_cmds, model, ls, release):
    module.register(app)


def main() -> None:
    app()
