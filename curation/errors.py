"""The error hierarchy. Every message says what is wrong, where, and what to do."""

from __future__ import annotations


class CurationError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""

    exit_code = 1


class ConfigError(CurationError):
    """A missing or invalid setting (names the option and the environment variable)."""


class InputError(CurationError):
    """Bad user input (a file, a row, a field). Carries a location when there is one."""

    exit_code = 2

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        self.detail = message
        super().__init__(f"{location}: {message}" if location else message)


class IngestError(InputError):
    """One or more records of an ingest call are invalid; nothing was written."""

    def __init__(self, problems: list[InputError], *, limit: int = 20) -> None:
        self.problems = problems
        shown = [str(p) for p in problems[:limit]]
        more = len(problems) - len(shown)
        text = "\n".join(shown)
        if more > 0:
            text += f"\n... and {more} more problem(s)"
        text += "\nNothing was ingested: fix the file(s) and run the command again."
        super().__init__(text)


class StoreError(CurationError):
    """The DuckDB store could not be opened or written."""


class StoreBusyError(StoreError):
    """Another process held the database lock for longer than the retry budget."""


class NotFoundError(CurationError):
    """A named thing (question, batch, model, user, release) does not exist."""


class PermissionDenied(CurationError):
    """The current user's role does not allow the action."""


class ConflictError(CurationError):
    """An action made on an out-of-date screen (another tab, a stale keypress) would change
    something other than what the person saw; nothing was changed."""


class StoreMissingError(StoreError):
    """The store file named by --db / CURATION_DB does not exist (and the command does not
    create one): says which path and how to create a store."""
