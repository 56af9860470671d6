"""Pure assignment rules: stratified gold sampling, queue choice, leases, undo, progress."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation import assign
from curation.errors import ConfigError, InputError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1)

strata_st = st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 40), min_size=1)


@given(strata=strata_st, size=st.integers(0, 300))
def test_allocate_sums_and_caps(strata: dict[str, int], size: int) -> None:
    out = assign.allocate(strata, size)
    assert sum(out.values()) == min(size, sum(strata.values()))
    assert all(0 <= out[s] <= strata[s] for s in strata)


@given(strata=strata_st, size=st.integers(0, 300))
def test_allocate_is_proportional_within_one(strata: dict[str, int], size: int) -> None:
    total = sum(strata.values())
    out = assign.allocate(strata, size)
    n = min(size, total)
    if total == 0 or n == 0:
        return
    for s, count in strata.items():
        quota = n * count / total
        # largest remainder: the floor of the exact quota or one more
        assert int(quota) <= out[s] <= int(quota) + 1


def test_allocate_known_values() -> None:
    assert assign.allocate({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    assert assign.allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    with pytest.raises(InputError):
        assign.allocate({"a": 1}, -1)


rows_st = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(["medqa", "medmcqa", "pubmedqa"])),
    min_size=1, max_size=80, unique_by=lambda r: r[0],
)


@settings(max_examples=60)
@given(rows=rows_st, data=st.data(), seed=st.integers(0, 2**31))
def test_stratified_sample_unique_proportional_and_order_free(rows, data, seed) -> None:
    size = data.draw(st.integers(0, len(rows)))
    picked = assign.stratified_sample(rows, size, seed)
    assert len(picked) == size == len(set(picked))
    ids = {r[0] for r in rows}
    assert set(picked) <= ids
    stratum = dict(rows)
    counts = Counter(stratum[i] for i in picked)
    expect = assign.allocate(Counter(s for _, s in rows), size)
    assert all(counts[s] == expect[s] for s in expect)
    shuffled = data.draw(st.permutations(rows))
    assert sorted(assign.stratified_sample(shuffled, size, seed)) == sorted(picked)


def test_stratified_sample_too_big_says_how_many() -> None:
    with pytest.raises(InputError, match="only 2 are eligible"):
        assign.stratified_sample([(1, "a"), (2, "b")], 3, 0)


def _c(qid: str, **kw) -> assign.Candidate:
    base = dict(batch_id="g1", question_id=qid, kind="gold", batch_created_at=T0, position=0,
                overlap=2, n_labels=0, n_leases=0, done_by_me=False, my_assigned_at=None)
    base.update(kw)
    return assign.Candidate(**base)


def test_is_open_rules() -> None:
    assert assign.is_open(_c("q"))
    assert not assign.is_open(_c("q", done_by_me=True))
    assert not assign.is_open(_c("q", n_labels=1, n_leases=1))  # K=2 slots taken
    assert assign.is_open(_c("q", n_labels=1, n_leases=1, my_assigned_at=T0))  # my own lease
    assert not assign.is_open(_c("q", done_by_me=True, my_assigned_at=T0))


def test_choose_next_priorities() -> None:
    gold_full = _c("a", n_labels=2)
    gold_busy = _c("b", n_labels=1, position=1)
    gold_empty = _c("c", position=2)
    active = _c("d", kind="active", batch_id="a1", batch_created_at=T0 - timedelta(days=1))
    # gold before active (even an older active batch), fewest labels+leases first
    assert assign.choose_next([gold_full, gold_busy, gold_empty, active]).question_id == "c"
    assert assign.choose_next([gold_busy, active]).question_id == "b"
    assert assign.choose_next([active]).question_id == "d"
    # my own lease comes first (resume), the newest first (an undone item comes back)
    mine_old = _c("e", kind="active", my_assigned_at=T0)
    mine_new = _c("f", kind="manual", my_assigned_at=T0 + timedelta(minutes=1))
    assert assign.choose_next([gold_empty, mine_old, mine_new]).question_id == "f"
    assert assign.choose_next([gold_full]) is None
    assert assign.choose_next([]) is None


def test_older_batch_first_within_kind() -> None:
    new = _c("x", batch_id="g2", batch_created_at=T0 + timedelta(hours=1))
    old = _c("y", batch_id="g1", batch_created_at=T0, n_labels=1)
    assert assign.choose_next([new, old]).question_id == "y"


def test_undo_target_walks_back() -> None:
    rows = [
        {"question_id": "a", "action": "label", "seq": 1},
        {"question_id": "b", "action": "skip", "seq": 2},
        {"question_id": "c", "action": "retract", "seq": 3},
    ]
    assert assign.undo_target(rows) == "b"
    assert assign.undo_target(rows[:1]) == "a"
    assert assign.undo_target(rows[2:]) is None
    assert assign.undo_target([]) is None


def test_progress() -> None:
    assert assign.progress(0, 0) == 1.0
    assert assign.progress(1, 3) == 0.25


def test_lease_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURATION_LEASE_MINUTES", raising=False)
    assert assign.lease_minutes() == 30.0
    monkeypatch.setenv("CURATION_LEASE_MINUTES", "5")
    assert assign.lease_minutes() == 5.0
    assert assign.lease_minutes(1.5) == 1.5
    monkeypatch.setenv("CURATION_LEASE_MINUTES", "soon")
    with pytest.raises(ConfigError, match="CURATION_LEASE_MINUTES"):
        assign.lease_minutes()
    with pytest.raises(ConfigError):
        assign.lease_minutes(0)
    assert assign.lease_expiry(T0, 30) == T0 + timedelta(minutes=30)
