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


def fail(guard: auth.LoginGuard, name: str, client: str | None, n: int, at: datetime = T0) -> None:
    for _ in range(n):
        guard.record_failure(name, client, at)


def test_login_guard_delays_grow_per_name_and_address() -> None:
    guard = auth.LoginGuard()  # 5 free failures, then 5 s doubling, at most 60 s
    fail(guard, "Ann", "10.0.0.7", 5)
    assert guard.retry_after("ann", "10.0.0.7", T0) == pytest.approx(5.0)  # name case-insensitive
    assert guard.retry_after("ann", "10.0.0.7", T0 + timedelta(seconds=5)) == 0.0
    waits = []
    for _ in range(6):
        guard.record_failure("ann", "10.0.0.7", T0)
        waits.append(guard.retry_after("ann", "10.0.0.7", T0))
    assert waits == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]  # growing, capped
    assert [guard.delay(n).total_seconds() for n in (0, 4, 5, 6, 100)] == [0, 0, 5, 10, 60]


def test_login_guard_cannot_lock_a_person_out_from_elsewhere() -> None:
    guard = auth.LoginGuard()
    fail(guard, "ann", "203.0.113.9", 50)  # an attacker hammering ann's account
    assert guard.retry_after("ann", "203.0.113.9", T0) == pytest.approx(60.0)
    assert guard.retry_after("ann", "10.0.0.7", T0) == 0.0  # ann, from her own address: not delayed
    # no per-address block: everyone else behind the attacker's address (a shared proxy) logs in
    assert guard.retry_after("bob", "203.0.113.9", T0) == 0.0


def test_login_guard_success_and_time_clear_the_count() -> None:
    guard = auth.LoginGuard()
    fail(guard, "ann", "10.0.0.7", 7)
    fail(guard, "ann", "10.0.0.8", 7)
    guard.record_success("ann", "10.0.0.7")
    assert guard.retry_after("ann", "10.0.0.7", T0) == 0.0
    assert guard.retry_after("ann", "10.0.0.8", T0) > 0  # another address's count stays
    later = T0 + guard.forget_after
    assert guard.retry_after("ann", "10.0.0.8", later) == 0.0  # forgotten after a quiet spell
    guard.record_failure("ann", "10.0.0.8", later)  # counting starts again from one
    assert guard.retry_after("ann", "10.0.0.8", later) == 0.0
    fail(guard, "ann", None, 5)  # unknown address: one key, still per name
    assert guard.retry_after("ann", None, T0) > 0 and guard.retry_after("bob", None, T0) == 0.0


def test_session_tokens_are_random_and_only_our_shape_hashes() -> None:
    tokens = {auth.new_session_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) == 43 for t in tokens)
    t = next(iter(tokens))
    h = auth.session_token_hash(t)
    assert h is not None and len(h) == 64 and t not in h and h == auth.session_token_hash(t)
    for bad in ("", "short", t + "x", t[:-1] + "=", "a" * 42 + ";", "../" * 15):
        assert auth.session_token_hash(bad) is None, bad


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
