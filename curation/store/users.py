"""Accounts in the `users` table. Functions take an open connection (see `Store.run`).

Only the Argon2 hash of a password is stored. Users are never deleted (their labels refer
to them); `set_disabled` turns an account off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from curation import auth
from curation.errors import InputError, NotFoundError
from curation.store import utcnow


def add_user(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    role: str,
    password: str,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Create an account; raise InputError if the name is taken or invalid.

    Returns the public view of the account (no hash).
    """
    auth.validate_username(name)
    auth.validate_role(role)
    if con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchall():
        raise InputError(f"user {name!r} already exists; pick another name")
    password_hash = auth.hash_password(password)
    created = created_at or utcnow()
    con.execute(
        "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
        [name, role, password_hash, created],
    )
    return {"name": name, "role": role, "disabled": False, "created_at": created}


def get_user(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    """The account with its password hash, or None."""
    cur = con.execute(
        "SELECT name, role, password_hash, disabled, created_at FROM users WHERE name = ?", [name]
    )
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    return dict(zip(names, rows[0], strict=True)) if rows else None


def list_users(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """All accounts without hashes, by name."""
    cur = con.execute("SELECT name, role, disabled, created_at FROM users ORDER BY name")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def set_disabled(con: duckdb.DuckDBPyConnection, name: str, disabled: bool) -> None:
    if get_user(con, name) is None:
        raise NotFoundError(f"no user {name!r}; `curation users add` creates one")
    con.execute("UPDATE users SET disabled = ? WHERE name = ?", [disabled, name])


def authenticate(con: duckdb.DuckDBPyConnection, name: str, password: str) -> dict[str, Any] | None:
    """The public account if `name`/`password` match an enabled account, else None.

    Unknown names cost the same hashing time as wrong passwords.
    """
    user = get_user(con, name)
    ok = auth.check_login(user["password_hash"] if user else None, password)
    if not ok or user is None or user["disabled"]:
        return None
    return {"name": user["name"], "role": user["role"]}
