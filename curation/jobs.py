"""Rules of the job queue and of the active-learning loop (pure: values in, values out).

A *job* is one unit of background work (train, classify, al-next, release build, Label
Studio pull) that a worker (`curation worker`) takes from the store's `jobs` table, runs
through the same service function as the command line, and finishes. Its life:

    queued -> running -> done | failed | cancelled
    queued -> cancelled
    running -> queued            (its worker lost the lease: re-queued for another attempt)

A running job holds a *lease* that its worker renews with a heartbeat. A lease that ran out
means the worker died (or hung): the job is re-queued while it has attempts left, else it
fails with the reason (`after_lost_lease`). Which queued job a worker takes next is
`pick_next`: oldest first, among the kinds the worker runs, whose dependency is done, and
no second training job while one runs (`MAX_RUNNING_TRAIN`).

The *loop policy* (`LoopPolicy`) says when the loop starts a round on its own (after
`retrain_after` new labels given by people) and with which settings; a round is the
chain train -> classify -> al-next (`round_chain`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from curation.active import CHOICES, DEFAULT_STRATEGY
from curation.classifier import DEFAULT_BASE
from curation.errors import InputError

KINDS: tuple[str, ...] = ("train", "classify", "al-next", "release-build", "ls-pull")
STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"done", "failed", "cancelled", "queued"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
MAX_RUNNING_TRAIN = 1  # training jobs per store at a time
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 60.0
LOG_TAIL_LINES = 40

ROUND_STATES: tuple[str, ...] = ("running", "done", "failed", "stopped")


class JobStateError(InputError):
    """A job cannot move from its state to the one asked (e.g. cancelling a finished job)."""


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"job kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind


def check_kinds(kinds: Iterable[str] | None) -> tuple[str, ...] | None:
    """The kinds a worker runs (None: every kind), each checked."""
    if kinds is None:
        return None
    out = tuple(check_kind(k.strip()) for k in kinds if k.strip())
    return out or None


def check_transition(job_id: int, old: str, new: str) -> None:
    """Raise `JobStateError` unless a job may go from `old` to `new`."""
    if new not in TRANSITIONS.get(old, frozenset()):
        raise JobStateError(f"job {job_id} is {old}; it cannot become {new}")


def lease_expired(lease_expires_at: datetime | None, now: datetime) -> bool:
    """A running job's lease has run out (a job without one never expires)."""
    return lease_expires_at is not None and lease_expires_at < now


def lease_until(now: datetime, lease_seconds: float) -> datetime:
    if lease_seconds <= 0:
        raise InputError(f"the lease must be longer than 0 s, got {lease_seconds}")
    return now + timedelta(seconds=lease_seconds)


def after_lost_lease(job: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    """(new state, reason) of a running job whose worker stopped renewing its lease:
    `queued` while it has attempts left, else `failed`."""
    who = job.get("worker_id") or "its worker"
    beat = job.get("heartbeat_at")
    reason = (f"{who} stopped renewing its lease (last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC)"
              if isinstance(beat, datetime) else f"{who} stopped renewing its lease")
    attempts, limit = int(job.get("attempts") or 0), int(job.get("max_attempts") or DEFAULT_MAX_ATTEMPTS)
    if attempts >= limit:
        return "failed", f"{reason}; gave up after {attempts} attempt(s)"
    return "queued", f"{reason}; re-queued (attempt {attempts} of {limit} lost)"


def blocked(job: Mapping[str, Any], states: Mapping[int, str]) -> str | None:
    """Why a queued job can never run (its dependency failed or was cancelled), else None."""
    dep = job.get("depends_on")
    if dep is None:
        return None
    state = states.get(int(dep))
    if state is None:
        return f"the job it waits for ({dep}) does not exist"
    if state in ("failed", "cancelled"):
        return f"the job it waits for ({dep}) {state}"
    return None


def pick_next(
    queued: Sequence[Mapping[str, Any]],
    states: Mapping[int, str],
    running_kinds: Sequence[str],
    kinds: Sequence[str] | None = None,
    *,
    max_running_train: int = MAX_RUNNING_TRAIN,
) -> Mapping[str, Any] | None:
    """The queued job a worker running `kinds` (None: all) takes next: the oldest whose
    dependency (if any) is done; no training job while `max_running_train` run already."""
    n_train = sum(1 for k in running_kinds if k == "train")
    for job in sorted(queued, key=lambda j: int(j["id"])):
        if kinds is not None and job["kind"] not in kinds:
            continue
        if job["kind"] == "train" and n_train >= max_running_train:
            continue
        dep = job.get("depends_on")
        if dep is not None and states.get(int(dep)) != "done":
            continue
        return job
    return None


def progress_fraction(done: int, total: int) -> float:
    """A progress callback's (done, total) as 0-1."""
    if total <= 0:
        return 0.0
    return max(0.0, min(1.0, done / total))


def append_log(tail: str | None, line: str, *, keep: int = LOG_TAIL_LINES) -> str:
    """The log tail with `line` added, keeping the last `keep` lines."""
    lines = (tail or "").splitlines() + [line.rstrip()]
    return "\n".join(lines[-keep:])


# ----------------------------------------------------------------------------------------
# the loop policy
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopPolicy:
    """What a round trains and draws, and when the loop starts one on its own."""

    model: str = DEFAULT_BASE
    strategy: str = DEFAULT_STRATEGY
    batch_size: int = 16  # training batch size
    epochs: int = 3
    retrain_after: int = 50  # new labels given by people since the last round
    k: int = 50  # questions in the next active-learning batch
    overlap: int = 1  # annotators per question of that batch
    max_changed: float = 0.01  # stopping rule: share of predictions that may still change
    seed: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # tries of each job of a round (a lost lease costs one)

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise InputError("loop policy: model must not be empty")
        if self.strategy not in CHOICES:
            raise InputError(f"loop policy: strategy {self.strategy!r} is not one of {', '.join(CHOICES)}")
        for name in ("batch_size", "epochs", "retrain_after", "k", "overlap", "max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"loop policy: {name} must be a whole number >= 1, got {value!r}")
        if not 0.0 <= float(self.max_changed) <= 1.0:
            raise InputError(f"loop policy: max_changed must be between 0 and 1, got {self.max_changed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopPolicy:
        """A policy from stored or typed values; unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"loop policy: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**dict(data))

    def updated(self, changes: Mapping[str, Any]) -> LoopPolicy:
        return LoopPolicy.from_dict({**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}})


def round_due(policy: LoopPolicy, *, paused: bool, stopped: bool, open_round: bool, new_labels: int) -> bool:
    """The loop starts a round on its own: running, none open, enough new labels by people."""
    return not paused and not stopped and not open_round and new_labels >= policy.retrain_after


def round_chain(policy: LoopPolicy, *, round_no: int, models_dir: str, label_seq: int) -> list[tuple[str, dict[str, Any]]]:
    """The jobs of one round, each depending on the one before: (kind, params)."""
    train = {"labels": "store", "model": policy.model, "epochs": policy.epochs, "batch_size": policy.batch_size,
             "seed": policy.seed, "models_dir": models_dir, "label_seq": label_seq, "round": round_no}
    score = {"model_from": "dependency", "round": round_no}
    draw = {"size": policy.k, "strategy": policy.strategy, "overlap": policy.overlap, "seed": policy.seed,
            "model_from": "dependency", "check_stop": True, "max_changed": policy.max_changed, "round": round_no}
    return [("train", train), ("classify", score), ("al-next", draw)]


def round_outcome(job_states: Sequence[str], last_result: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(round state, message) once a round's jobs are all final, else None."""
    if any(s not in FINAL_STATES for s in job_states):
        return None
    if all(s == "done" for s in job_states):
        result = last_result or {}
        if result.get("stopped"):
            return "stopped", str(result.get("message") or "the stopping rule holds")
        return "done", f"batch {result.get('batch_id')} queued ({len(result.get('items') or [])} questions)"
    bad = next(s for s in job_states if s != "done")
    return "failed", f"a job of the round {bad}"
