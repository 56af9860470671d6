"""Use cases on a whole store: copying it between a DuckDB file and a PostgreSQL server."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from curation.errors import InputError, StoreError
from curation.store import Store
from curation.store import copy as cstore

Progress = Callable[[str, int, int], None] | None


def copy_store(source: Store, target: Store, *, progress: Progress = None) -> dict[str, Any]:
    """Copy every table of `source` into the empty store `target` in one transaction (all or
    nothing), then check each table's row count and content hash on both sides.

    Refuses a target that holds any row, or one whose schema differs from the source's
    (both are migrated to this version of curation first). The two may be either backend:
    a DuckDB file or a PostgreSQL database."""
    if source.key == target.key:
        raise InputError(f"--from and --to are the same store ({source.key})")
    src_version = source.run(cstore.schema_version)
    dst_version = target.run(cstore.schema_version)
    if src_version != dst_version:  # pragma: no cover - both were just migrated by this code
        raise StoreError(f"schema versions differ: {source.key} {src_version}, {target.key} {dst_version}")
    counts = source.run(cstore.row_counts)
    held = {t: n for t, n in target.run(cstore.row_counts).items() if n}
    if held:
        shown = ", ".join(f"{t} ({n})" for t, n in sorted(held.items()))
        raise InputError(
            f"{target.key} is not empty: {shown}; nothing was copied. Copy into a new, empty store "
            "(`curation store init --db ...`, or a new PostgreSQL database)")
    names = list(counts)
    missing = sorted(set(names) - set(target.run(cstore.tables)))
    if missing:  # pragma: no cover - same migrations on both
        raise StoreError(f"{target.key} has no table {', '.join(missing)}")

    def write(con: Any) -> None:
        for i, name in enumerate(names):
            if progress:
                progress(f"copy {name}", i, len(names))
            cstore.write_table(con, name, source.run(functools.partial(_read, table=name)))
        cstore.advance_sequences(con, target.backend)

    target.run(write)
    checked = verify_copy(source, target)
    return {"from": source.key, "to": target.key, "schema_version": src_version, "tables": checked,
            "rows": sum(t["rows"] for t in checked.values())}


def _read(con: Any, *, table: str) -> Any:
    return cstore.read_table(con, table)


def verify_copy(source: Store, target: Store) -> dict[str, dict[str, Any]]:
    """Row counts and content hashes of every table, equal on both sides, or `StoreError`."""
    def read(con: Any) -> dict[str, tuple[int, str]]:
        return {t: (n, cstore.content_hash(con, t)) for t, n in cstore.row_counts(con).items()}

    a, b = source.run(read), target.run(read)
    bad = sorted(t for t in a if a[t] != b.get(t))
    if bad:
        detail = "; ".join(f"{t}: {a[t][0]} rows vs {b.get(t, (0, ''))[0]}" for t in bad)
        raise StoreError(f"the copy in {target.key} differs from {source.key} in {detail}")
    return {t: {"rows": n, "sha256": h} for t, (n, h) in a.items()}
