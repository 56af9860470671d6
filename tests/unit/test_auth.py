"""Password hashing, login rate limiting, session expiry (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from curation import auth
from curation.errors import ConfigError, InputError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0)


def test_hash_is_salted_argon2_and_verifies() -> None:
    h1 = auth.hash_password("correct horse")
    h2 = auth.hash_password("correct horse")
    assert h1 != h2  # salted
    assert h1.startswith("$argon2id$")
    assert "correct horse" not in h1
    assert auth.verify_password(h1, "correct horse")
    assert not auth.verify_password(h1, "correct horsE")
    assert not auth.verify_password("not a hash", "correct horse")


def test_check_login_unknown_user_is_false() -> None:
    assert auth.check_login(None, "whatever1") is False
    assert auth.check_login(auth.hash_password("password1"), "password1") is True


@pytest.mark.parametrize("pw", ["short", "x" * 2000])
def test_bad_passwords_rejected(pw: str) -> None:
    with pytest.raises(InputError, match="password"):
        auth.hash_password(pw)


@pytest.mark.parametrize("name", ["", " ann", "a b", "<script>", "x" * 65, "-lead"])
def test_bad_usernames(name: str) -> None:
    with pytest.raises(InputError, match="user name"):
        auth.validate_username(name)


def test_good_username_and_roles() -> None:
    assert auth.validate_username("ann.o-1@lab") == "ann.o-1@lab"
    assert auth.validate_role("maintainer") == "maintainer"
    with pytest.raises(InputError, match="role"):
        auth.validate_role("admin")


def test_rate_limiter_locks_after_failures_and_releases() -> None:
    lim = auth.LoginRateLimiter(max_failures=3, window=timedelta(minutes=5))
    for i in range(3):
        assert lim.retry_after("Ann", T0 + timedelta(seconds=i)) == 0.0
        lim.record_failure("Ann", T0 + timedelta(seconds=i))
    # case-insensitive key: "ann" is the same account name for the limiter
    wait = lim.retry_after("ann", T0 + timedelta(seconds=10))
    assert wait == pytest.approx(290.0)
    assert lim.retry_after("bob", T0) == 0.0  # per name
    assert lim.retry_after("ann", T0 + timedelta(minutes=5, seconds=1)) == 0.0  # oldest left window
    lim.record_failure("bob", T0)
    lim.record_success("bob")
    assert lim.retry_after("bob", T0) == 0.0


def test_login_guard_limits_one_client_spraying_many_names() -> None:
    guard = auth.LoginGuard()
    for i in range(20):  # one wrong password on 20 different accounts from one address
        assert guard.retry_after(f"user{i}", "10.0.0.7", T0) == 0.0
        guard.record_failure(f"user{i}", "10.0.0.7", T0)
    assert guard.retry_after("user99", "10.0.0.7", T0) > 0  # a fresh name from that client: blocked
    assert guard.retry_after("user99", "10.0.0.8", T0) == 0.0  # another client: fine
    guard.record_success("user3")  # a success does not reset the client's count
    assert guard.retry_after("user3", "10.0.0.7", T0) > 0
    assert guard.retry_after("user3", None, T0) == 0.0  # address unknown: the per-name limit only
    for _ in range(5):
        guard.record_failure("ann", None, T0)
    assert guard.retry_after("ann", "10.0.0.9", T0) > 0  # per-name limit from any client


def test_session_policy_idle_and_absolute() -> None:
    p = auth.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
    assert p.is_valid(login_at=T0, last_seen=T0, now=T0 + timedelta(minutes=29))
    assert not p.is_valid(login_at=T0, last_seen=T0, now=T0 + timedelta(minutes=30))
    # active all along, but past the absolute limit
    assert not p.is_valid(login_at=T0, last_seen=T0 + timedelta(hours=8), now=T0 + timedelta(hours=8, seconds=1))
    assert p.needs_recheck(checked_at=T0, now=T0 + timedelta(seconds=60))
    assert not p.needs_recheck(checked_at=T0, now=T0 + timedelta(seconds=59))


def test_session_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATION_SESSION_IDLE_MINUTES", "5")
    monkeypatch.setenv("CURATION_SESSION_MAX_HOURS", "1")
    p = auth.SessionPolicy.from_env()
    assert p.idle == timedelta(minutes=5) and p.absolute == timedelta(hours=1)
    monkeypatch.setenv("CURATION_SESSION_IDLE_MINUTES", "forever")
    with pytest.raises(ConfigError):
        auth.SessionPolicy.from_env()
