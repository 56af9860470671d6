"""Shared pieces of the thin CLI: the --db option, the console, error printing."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from curation.errors import CurationError
from curation.store import Store

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="DuckDB store file [env: CURATION_DB; default ./curation.duckdb]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

console = Console(soft_wrap=True)  # long paths and commands stay copy-pasteable
err_console = Console(stderr=True)


def store(db: str | None) -> Store:
    return Store(db)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def handle_errors(fn: F) -> F:
    """Turn `CurationError` into a one-paragraph message and a non-zero exit, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CurationError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]
