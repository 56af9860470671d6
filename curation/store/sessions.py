"""App sessions in the `app_sessions` table. Functions take an open connection (`Store.run`).

A row per login: the SHA-256 of its random token (`curation.auth.session_token_hash`; the
token itself is never stored), the account, when it started, when it was last seen, and when
and why it was revoked (logout, account disabled, password reset). Whether a session is
still valid is `curation.auth.SessionPolicy` (pure); these functions only read and write rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from curation.store.sql import dicts


def create(con: duckdb.DuckDBPyConnection, token_hash: str, user_name: str, now: datetime) -> None:
    con.execute(
        "INSERT INTO app_sessions (token_hash, user_name, created_at, last_seen) VALUES (?,?,?,?)",
        [token_hash, user_name, now, now],
    )


def lookup(con: duckdb.DuckDBPyConnection, token_hash: str) -> dict[str, Any] | None:
    """The session with its account (role, disabled; None if the account is gone), or None."""
    rows = dicts(con.execute(
        "SELECT s.token_hash, s.user_name, s.created_at, s.last_seen, s.revoked_at, s.revoked_why, "
        "u.name, u.role, u.disabled FROM app_sessions s LEFT JOIN users u ON u.name = s.user_name "
        "WHERE s.token_hash = ?", [token_hash],
    ))
    return rows[0] if rows else None


def touch(con: duckdb.DuckDBPyConnection, token_hash: str, now: datetime) -> None:
    con.execute("UPDATE app_sessions SET last_seen = ? WHERE token_hash = ? AND last_seen < ?",
                [now, token_hash, now])


def revoke(con: duckdb.DuckDBPyConnection, token_hash: str, now: datetime, why: str) -> None:
    con.execute("UPDATE app_sessions SET revoked_at = ?, revoked_why = ? WHERE token_hash = ? AND revoked_at IS NULL",
                [now, why, token_hash])


def revoke_user(con: duckdb.DuckDBPyConnection, user_name: str, now: datetime, why: str) -> int:
    """Revoke every live session of `user_name`; returns how many."""
    n = con.execute("SELECT count(*) FROM app_sessions WHERE user_name = ? AND revoked_at IS NULL",
                    [user_name]).fetchall()[0][0]
    con.execute("UPDATE app_sessions SET revoked_at = ?, revoked_why = ? WHERE user_name = ? AND revoked_at IS NULL",
                [now, why, user_name])
    return int(n)


def live_count(con: duckdb.DuckDBPyConnection, user_name: str) -> int:
    return int(con.execute("SELECT count(*) FROM app_sessions WHERE user_name = ? AND revoked_at IS NULL",
                           [user_name]).fetchall()[0][0])
