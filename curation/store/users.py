"""Accounts in the `users` table. Functions take an open connection (see `Store.run`).

Only the Argon2 hash of a password is stored. Users are never deleted (their labels refer
to them); `set_disabled` turns an account off. Each account records its annotation
expertise (`EXPERTISE_LEVELS`, 'unknown' by default): the dataset card derives
`annotations_creators` from it (`expertise_by_user`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from curation import auth
from curation.errors import InputError, NotFoundError
from curation.store import utcnow
from curation.store.sql import dicts

EXPERTISE_LEVELS = ("expert", "crowd", "student", "unknown")


def validate_expertise(level: str) -> str:
    if level not in EXPERTISE_LEVELS:
        raise InputError(f"expertise {level!r} is not one of {', '.join(EXPERTISE_LEVELS)}")
    return level


def add_user(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    role: str,
    password: str,
    expertise: str = "unknown",
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Create an account; raise InputError if the name is taken or invalid.

    Returns the public view of the account (no hash).
    """
    auth.validate_username(name)
    auth.validate_role(role)
    validate_expertise(expertise)
    if con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchall():
        raise InputError(f"user {name!r} already exists; pick another name")
    password_hash = auth.hash_password(password)
    created = created_at or utcnow()
    con.execute(
        "INSERT INTO users (name, role, password_hash, disabled, created_at, expertise) VALUES (?,?,?,false,?,?)",
        [name, role, password_hash, created, expertise],
    )
    return {"name": name, "role": role, "expertise": expertise, "disabled": False, "created_at": created}


def get_user(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    """The account with its password hash, or None."""
    rows = dicts(con.execute(
        "SELECT name, role, expertise, password_hash, disabled, created_at FROM users WHERE name = ?", [name]
    ))
    return rows[0] if rows else None


def list_users(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """All accounts without hashes, by name."""
    return dicts(con.execute("SELECT name, role, expertise, disabled, created_at FROM users ORDER BY name"))


def set_disabled(con: duckdb.DuckDBPyConnection, name: str, disabled: bool) -> None:
    if get_user(con, name) is None:
        raise NotFoundError(f"no user {name!r}; `curation users add` creates one")
    con.execute("UPDATE users SET disabled = ? WHERE name = ?", [disabled, name])


def set_password_hash(con: duckdb.DuckDBPyConnection, name: str, password_hash: str) -> None:
    """Replace an existing account's password hash (`auth.hash_password` made it)."""
    if get_user(con, name) is None:
        raise NotFoundError(f"no user {name!r}; `curation users add` creates one")
    con.execute("UPDATE users SET password_hash = ? WHERE name = ?", [password_hash, name])


def set_role(con: duckdb.DuckDBPyConnection, name: str, role: str) -> None:
    auth.validate_role(role)
    if get_user(con, name) is None:
        raise NotFoundError(f"no user {name!r}; `curation users add` creates one")
    con.execute("UPDATE users SET role = ? WHERE name = ?", [role, name])


def set_expertise(con: duckdb.DuckDBPyConnection, name: str, expertise: str) -> None:
    """Record an existing account's annotation expertise (one of `EXPERTISE_LEVELS`)."""
    validate_expertise(expertise)
    if get_user(con, name) is None:
        raise NotFoundError(f"no user {name!r}; `curation users add` creates one")
    con.execute("UPDATE users SET expertise = ? WHERE name = ?", [expertise, name])


def expertise_by_user(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """{account name: expertise} of every account, disabled ones included (their labels stay).
    A labeler with no account here (e.g. a Label Studio name never added) is 'unknown'."""
    return {r[0]: r[1] or "unknown" for r in con.execute("SELECT name, expertise FROM users ORDER BY name").fetchall()}


def authenticate(con: duckdb.DuckDBPyConnection, name: str, password: str) -> dict[str, Any] | None:
    """The public account if `name`/`password` match an enabled account, else None.

    Unknown names cost the same hashing time as wrong passwords.
    """
    user = get_user(con, name)
    ok = auth.check_login(user["password_hash"] if user else None, password)
    if not ok or user is None or user["disabled"]:
        return None
    return {"name": user["name"], "role": user["role"]}
