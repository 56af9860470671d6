"""The `curation` command: thin Typer wrappers over importable functions.

Each area registers its commands from its own module (`core`, `users`, `model`, `ls`,
`release`). Tracebacks never show local variables: our commands hold tokens.
"""

from __future__ import annotations

import typer

from curation.cli import app_cmds, core, jobs, ls, model, release

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

for module in (core, app_cmds, model, jobs, ls, release):
    module.register(app)


def main() -> None:
    """Console entry point. Runs the command, hands the store back (checkpointed), flushes,
    and ends the process without the interpreter's teardown: DuckDB 2.0's Python binding
    (nanobind) otherwise prints a screen of "leaked function" warnings at every exit, which
    reads like a crash though nothing is wrong."""
    import logging
    import os
    import sys

    from curation.store import close_all

    code: int = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    finally:
        try:
            close_all()
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code)
