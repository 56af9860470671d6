"""Shared pieces of the thin CLI: the --db option, the console, error printing."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from curation.errors import CurationError
from curation.store import Store, creating_stores

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="DuckDB store file, or a postgresql://user@host:port/db URL "
                "[env: CURATION_DB; default ./curation.duckdb]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

console = Console(soft_wrap=True)  # long paths and commands stay copy-pasteable
err_console = Console(stderr=True)


def store(db: str | None, *, create: bool = False) -> Store:
    """The store named by --db / CURATION_DB. A missing file is an error (naming the path and
    how to create a store) unless `create`: only `ingest`, `demo` and `store init` create one."""
    s = Store(db, create=create)
    s.require_file()
    return s


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def handle_errors(fn: F) -> F:
    """Turn `CurationError` into a one-paragraph message and a non-zero exit, no traceback.
    Inside a command no store is created by accident (`creating_stores(False)`): a service
    that opens a store of a mistyped --db gets `StoreMissingError`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with creating_stores(False):
                return fn(*args, **kwargs)
        except CurationError as exc:
            # the message is text, not markup: `pip install "curation[ray]"` keeps its brackets
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]
