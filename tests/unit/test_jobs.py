"""The pure rules of jobs and the loop (`curation.jobs`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from curation import active
from curation import jobs as J
from curation.errors import InputError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 1, 12, 0, 0)


def test_state_machine() -> None:
    J.check_transition(1, "queued", "running")
    J.check_transition(1, "running", "queued")  # a lost lease
    for final in J.FINAL_STATES:
        with pytest.raises(J.JobStateError, match=f"job 7 is {final}; it cannot become cancelled"):
            J.check_transition(7, final, "cancelled")
    with pytest.raises(J.JobStateError):
        J.check_transition(1, "queued", "done")


def test_lease() -> None:
    until = J.lease_until(T0, 30)
    assert not J.lease_expired(until, T0 + timedelta(seconds=29))
    assert J.lease_expired(until, T0 + timedelta(seconds=31))
    assert not J.lease_expired(None, T0)
    with pytest.raises(InputError):
        J.lease_until(T0, 0)


def test_after_lost_lease_requeues_then_fails_with_the_reason() -> None:
    job = {"worker_id": "host:12", "heartbeat_at": T0, "attempts": 1, "max_attempts": 3}
    state, reason = J.after_lost_lease(job, T0)
    assert state == "queued" and "host:12 stopped renewing its lease" in reason and "12:00:00" in reason
    state, reason = J.after_lost_lease({**job, "attempts": 3}, T0)
    assert state == "failed" and "gave up after 3 attempt(s)" in reason


def _q(i: int, kind: str, dep: int | None = None) -> dict[str, object]:
    return {"id": i, "kind": kind, "depends_on": dep}


def test_pick_next_oldest_ready_job_of_my_kinds() -> None:
    queued = [_q(5, "classify", 4), _q(3, "al-next"), _q(2, "train")]
    assert J.pick_next(queued, {4: "running"}, [])["id"] == 2  # type: ignore[index]
    assert J.pick_next(queued, {4: "running"}, [], kinds=("classify", "al-next"))["id"] == 3  # type: ignore[index]
    assert J.pick_next(queued, {4: "done"}, [], kinds=("classify",))["id"] == 5  # type: ignore[index]
    assert J.pick_next(queued, {4: "running"}, [], kinds=("classify",)) is None


def test_at_most_one_training_job_at_a_time() -> None:
    queued = [_q(2, "train"), _q(3, "classify")]
    assert J.pick_next(queued, {}, ["train"])["id"] == 3  # type: ignore[index]
    assert J.pick_next([_q(2, "train")], {}, ["train"]) is None
    assert J.pick_next([_q(2, "train")], {}, ["train"], max_running_train=2)["id"] == 2  # type: ignore[index]


def test_blocked_by_a_failed_dependency() -> None:
    assert J.blocked(_q(3, "classify", 2), {2: "failed"}) == "the job it waits for (2) failed"
    assert J.blocked(_q(3, "classify", 2), {2: "running"}) is None
    assert J.blocked(_q(3, "classify", 9), {}) == "the job it waits for (9) does not exist"
    assert J.blocked(_q(3, "classify"), {}) is None


def test_policy_checked_with_clear_errors() -> None:
    p = J.LoopPolicy()
    assert p.model.startswith("microsoft/BiomedNLP") and p.strategy == active.DEFAULT_STRATEGY
    assert J.LoopPolicy.from_dict(p.to_dict()) == p
    assert p.updated({"k": 20, "model": None}).k == 20
    with pytest.raises(InputError, match="strategy 'best' is not one of"):
        p.updated({"strategy": "best"})
    with pytest.raises(InputError, match="retrain_after must be a whole number >= 1, got 0"):
        p.updated({"retrain_after": 0})
    with pytest.raises(InputError, match="unknown setting"):
        J.LoopPolicy.from_dict({"retrain": 3})
    with pytest.raises(InputError, match="max_changed"):
        p.updated({"max_changed": 2})


def test_round_due_and_chain() -> None:
    p = J.LoopPolicy(retrain_after=10)
    assert J.round_due(p, paused=False, stopped=False, open_round=False, new_labels=10)
    assert not J.round_due(p, paused=False, stopped=False, open_round=False, new_labels=9)
    assert not J.round_due(p, paused=True, stopped=False, open_round=False, new_labels=99)
    assert not J.round_due(p, paused=False, stopped=True, open_round=False, new_labels=99)
    assert not J.round_due(p, paused=False, stopped=False, open_round=True, new_labels=99)
    chain = J.round_chain(p, round_no=4, models_dir="m", label_seq=77)
    assert [k for k, _ in chain] == ["train", "classify", "al-next"]
    assert chain[0][1]["label_seq"] == 77 and chain[2][1]["check_stop"] and chain[2][1]["size"] == p.k


def test_round_outcome() -> None:
    assert J.round_outcome(["done", "running", "queued"], None) is None
    assert J.round_outcome(["done", "done", "done"], {"batch_id": "b", "items": [1, 2]}) == ("done", "batch b queued (2 questions)")
    assert J.round_outcome(["done", "done", "done"], {"stopped": True, "message": "STOP"}) == ("stopped", "STOP")
    assert J.round_outcome(["failed", "cancelled", "cancelled"], None)[0] == "failed"  # type: ignore[index]


def test_log_tail_keeps_the_last_lines() -> None:
    tail = None
    for i in range(50):
        tail = J.append_log(tail, f"line {i}")
    assert tail is not None and tail.splitlines()[0] == "line 10" and tail.splitlines()[-1] == "line 49"
    assert J.progress_fraction(3, 4) == 0.75 and J.progress_fraction(1, 0) == 0.0
