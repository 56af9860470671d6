"""Local accounts: password hashing, login rate limiting, session expiry. No I/O.

Passwords are hashed with Argon2id (argon2-cffi, salted, parameters stored in the hash).
The rate limiter and the session policy take the current time as an argument so they are
pure and testable; the app keeps one limiter per server process.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from curation.errors import ConfigError, InputError

ROLES: tuple[str, str] = ("annotator", "maintainer")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-@]{0,63}$")

_HASHER = PasswordHasher()


def validate_username(name: str) -> str:
    """Return `name` if it is a valid account name, else raise InputError saying what is allowed."""
    if not _NAME_RE.match(name or ""):
        raise InputError(
            f"user name {name!r} is invalid: use 1-64 letters, digits, '_', '-', '.', '@', "
            "starting with a letter or digit"
        )
    return name


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"password too short: use at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InputError(f"password too long: at most {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    """Argon2id hash (salted; the encoded string carries its parameters)."""
    return _HASHER.hash(validate_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    """True if `password` matches; False on mismatch or a malformed hash (never raises)."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A fixed hash to verify against when the user does not exist, so a login for an unknown
# name costs the same time as a wrong password (no user enumeration by timing).
_DUMMY_HASH = _HASHER.hash("not-a-real-password-used-for-timing")


def check_login(password_hash: str | None, password: str) -> bool:
    """Verify a login attempt; `password_hash=None` (no such user) still costs one verify."""
    if password_hash is None:
        verify_password(_DUMMY_HASH, password)
        return False
    return verify_password(password_hash, password)


@dataclass
class LoginGuard:
    """Failed-login delays per (user name, client address): each failure in a row makes the
    next attempt from that address on that name wait longer (`free_failures` free, then
    `base_delay` doubling up to `max_delay`); a success from that address, or `forget_after`
    without failures, clears it. Thread-safe (Streamlit sessions are threads).

    It slows a guesser (one name from one address: at most one try per `max_delay` once warmed
    up; Argon2 makes each try cost as well) without letting anyone lock a person out: failures
    from other addresses never delay the person's own address, and there is no per-address
    block, so a shared proxy or NAT does not stop everyone behind it. An unknown address
    (`None`) is one address. The delay is capped, so even an attacker behind the person's own
    proxy only slows them down.
    """

    free_failures: int = 5
    base_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(seconds=60)
    forget_after: timedelta = timedelta(minutes=15)
    _failures: dict[tuple[str, str], tuple[int, datetime]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def _key(name: str, client: str | None) -> tuple[str, str]:
        return (name.casefold(), client or "")

    def delay(self, failures: int) -> timedelta:
        """How long after its last failure a (name, address) pair with `failures` in a row waits."""
        if failures < self.free_failures:
            return timedelta(0)
        steps = min(failures - self.free_failures, 30)  # 2**30 s is far past any cap
        return min(self.max_delay, self.base_delay * (2**steps))

    def _current(self, key: tuple[str, str], now: datetime) -> tuple[int, datetime] | None:
        entry = self._failures.get(key)
        if entry is not None and now - entry[1] >= self.forget_after:
            del self._failures[key]
            return None
        return entry

    def retry_after(self, name: str, client: str | None, now: datetime) -> float:
        """Seconds until `name` may be tried again from `client` (0.0 if allowed now)."""
        with self._lock:
            entry = self._current(self._key(name, client), now)
            if entry is None:
                return 0.0
            count, last = entry
            return max(0.0, (last + self.delay(count) - now).total_seconds())

    def record_failure(self, name: str, client: str | None, now: datetime) -> None:
        key = self._key(name, client)
        with self._lock:
            entry = self._current(key, now)
            self._failures[key] = ((entry[0] if entry else 0) + 1, now)
            if len(self._failures) > 10_000:  # bounded memory under a spray of names
                for k in [k for k, (_, last) in self._failures.items() if now - last >= self.forget_after]:
                    del self._failures[k]

    def record_success(self, name: str, client: str | None) -> None:
        with self._lock:
            self._failures.pop(self._key(name, client), None)


# -- sessions ----------------------------------------------------------------------------

SESSION_COOKIE = "curation_session"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{43}$")


def new_session_token() -> str:
    """A random session token (256 bits, URL- and cookie-safe). Only its hash is stored."""
    return secrets.token_urlsafe(32)


def session_token_hash(token: str) -> str | None:
    """The stored form of a token (SHA-256 hex; the token is random, so no salt or slow hash is
    needed), or None if `token` is not shaped like one of ours (a forged or mangled cookie)."""
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    """When a logged-in session ends: after `idle` without activity or `absolute` after login.

    `recheck` is how often the app re-reads the account (disabled? role changed?).
    """

    idle: timedelta = timedelta(hours=2)
    absolute: timedelta = timedelta(hours=12)
    recheck: timedelta = timedelta(seconds=60)

    @classmethod
    def from_env(cls) -> SessionPolicy:
        """Read `CURATION_SESSION_IDLE_MINUTES` / `CURATION_SESSION_MAX_HOURS` (optional)."""
        try:
            idle = float(os.environ.get("CURATION_SESSION_IDLE_MINUTES", "120"))
            absolute = float(os.environ.get("CURATION_SESSION_MAX_HOURS", "12"))
        except ValueError as exc:
            raise ConfigError(
                "CURATION_SESSION_IDLE_MINUTES / CURATION_SESSION_MAX_HOURS must be numbers"
            ) from exc
        return cls(idle=timedelta(minutes=idle), absolute=timedelta(hours=absolute))

    def is_valid(self, *, login_at: datetime, last_seen: datetime, now: datetime) -> bool:
        return (now - last_seen) < self.idle and (now - login_at) < self.absolute

    def needs_recheck(self, *, checked_at: datetime, now: datetime) -> bool:
        return (now - checked_at) >= self.recheck
