"""Local accounts: password hashing, login rate limiting, session expiry. No I/O.

Passwords are hashed with Argon2id (argon2-cffi, salted, parameters stored in the hash).
The rate limiter and the session policy take the current time as an argument so they are
pure and testable; the app keeps one limiter per server process.
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
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
class LoginRateLimiter:
    """At most `max_failures` failed logins per user name within `window`; then locked out
    until the oldest failure leaves the window. Thread-safe (Streamlit sessions are threads).
    """

    max_failures: int = 5
    window: timedelta = timedelta(minutes=5)
    _failures: dict[str, deque[datetime]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _prune(self, key: str, now: datetime) -> deque[datetime]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] >= self.window:
            q.popleft()
        return q

    def retry_after(self, name: str, now: datetime) -> float:
        """Seconds until `name` may try again (0.0 if allowed now)."""
        key = name.casefold()
        with self._lock:
            q = self._prune(key, now)
            if len(q) < self.max_failures:
                return 0.0
            return max(0.0, (q[0] + self.window - now).total_seconds())

    def record_failure(self, name: str, now: datetime) -> None:
        key = name.casefold()
        with self._lock:
            self._prune(key, now).append(now)

    def record_success(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name.casefold(), None)


@dataclass
class LoginGuard:
    """Failed-login limits per user name (guessing one password) and per client address
    (trying one password on many names). Either limit blocks; a success clears the name's
    count only, so a client cannot reset its own count by logging into an account it owns."""

    per_name: LoginRateLimiter = field(default_factory=LoginRateLimiter)
    per_client: LoginRateLimiter = field(default_factory=lambda: LoginRateLimiter(max_failures=20))

    def retry_after(self, name: str, client: str | None, now: datetime) -> float:
        wait = self.per_name.retry_after(name, now)
        if client:
            wait = max(wait, self.per_client.retry_after(client, now))
        return wait

    def record_failure(self, name: str, client: str | None, now: datetime) -> None:
        self.per_name.record_failure(name, now)
        if client:
            self.per_client.record_failure(client, now)

    def record_success(self, name: str) -> None:
        self.per_name.record_success(name)


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
