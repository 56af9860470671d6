"""Assignment decisions, pure: gold-set sampling, queue order, leases, progress, undo.

The DuckDB side (`curation.store.queue`) fetches rows and applies these rules; the same
rules are written once here so they can be tested without a store.

Queue rules (the annotation issue):
- every batch item goes to `overlap` (K) distinct annotators; nobody gets an item twice;
- an item is *open* for annotator A if A has not finished it (latest own row is neither a
  label nor a skip) and `labels + active leases of others < K`;
- among open items A gets gold batches first, then active-learning, then manual batches,
  oldest batch first, then the item with the fewest labels + active leases (even spread),
  then batch position;
- a lease expires after `lease_minutes` (default 30) and the slot goes back to the pool;
- K is a hard limit at every write, by the same rule (`is_open_for`), in the write's own
  transaction: a label is recorded only if the item is still open for the person (their
  lease is live, or the slot is free: a late label after the lease expired is kept unless
  someone took the slot); an undo re-leases the item only if it could be given to the
  person afresh (a skip gave its slot back; their own label still holds it). A skip takes
  no slot and is always recorded.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from curation.errors import ConfigError, InputError

K = TypeVar("K", bound=Hashable)

KIND_ORDER: dict[str, int] = {"gold": 0, "active": 1, "manual": 2}
DEFAULT_LEASE_MINUTES = 30.0


def lease_minutes(explicit: float | None = None) -> float:
    """Lease length: `explicit`, else `$CURATION_LEASE_MINUTES`, else 30."""
    if explicit is not None:
        value = float(explicit)
    else:
        raw = os.environ.get("CURATION_LEASE_MINUTES", str(DEFAULT_LEASE_MINUTES))
        try:
            value = float(raw)
        except ValueError as exc:
            raise ConfigError(f"CURATION_LEASE_MINUTES={raw!r} is not a number of minutes") from exc
    if value <= 0:
        raise ConfigError(f"lease length must be > 0 minutes, got {value}")
    return value


def lease_expiry(now: datetime, minutes: float) -> datetime:
    return now + timedelta(minutes=minutes)


def allocate(strata: Mapping[K, int], size: int) -> dict[K, int]:
    """Proportional allocation of `size` draws over strata with `strata[s]` items each.

    Largest-remainder rounding, never more than a stratum holds; ties broken by stratum
    order (sorted by key) so the result is deterministic. Sum == min(size, total).
    """
    if size < 0:
        raise InputError(f"sample size must be >= 0, got {size}")
    total = sum(strata.values())
    size = min(size, total)
    if size == 0 or total == 0:
        return {s: 0 for s in strata}
    keys = sorted(strata, key=lambda k: str(k))
    quotas = {s: size * strata[s] / total for s in keys}
    out = {s: min(strata[s], int(quotas[s])) for s in keys}
    left = size - sum(out.values())
    # hand the rest out by largest remainder, skipping full strata
    while left > 0:
        order = sorted(
            (s for s in keys if out[s] < strata[s]),
            key=lambda s: (-(quotas[s] - out[s]), str(s)),
        )
        for s in order[:left]:
            out[s] += 1
            left -= 1
    return out


def stratified_sample(rows: Sequence[tuple[K, str]], size: int, seed: int) -> list[K]:
    """Random sample of ids from `(id, stratum)` rows, allocated proportionally per stratum.

    Deterministic for a seed and independent of input row order; the result is shuffled
    (so a queue served in this order mixes benchmarks).
    """
    if size > len(rows):
        raise InputError(
            f"asked for {size} questions but only {len(rows)} are eligible "
            "(split 'test', not already in a gold batch); ask for fewer"
        )
    groups: dict[str, list[K]] = defaultdict(list)
    for item_id, stratum in rows:
        groups[stratum].append(item_id)
    for ids in groups.values():
        ids.sort(key=lambda x: str(x))
    quota = allocate({s: len(ids) for s, ids in groups.items()}, size)
    rng = random.Random(seed)
    picked: list[K] = []
    for stratum in sorted(groups):
        picked.extend(rng.sample(groups[stratum], quota[stratum]))
    rng.shuffle(picked)
    return picked


@dataclass(frozen=True)
class Candidate:
    """One batch item as seen by one annotator when choosing the next question."""

    batch_id: str
    question_id: str
    kind: str
    batch_created_at: datetime
    position: int
    overlap: int
    n_labels: int  # annotators whose current label for the question exists
    n_leases: int  # other annotators holding an unexpired lease and not finished
    done_by_me: bool  # my latest row is a label or a skip
    my_assigned_at: datetime | None = None  # set if I hold an unexpired lease

    @property
    def leased_by_me(self) -> bool:
        return self.my_assigned_at is not None


def is_open_for(done_by_me: bool, my_assigned_at: datetime | None, load: int, overlap: int) -> bool:
    """May an annotator be given an item now, or label it? Not if they finished it; yes if
    they hold its live lease; else only while people's labels + others' live leases (`load`)
    < K. The queue (`choose_next`), `submit` and `undo` in `curation.store.queue` all ask this."""
    if done_by_me:
        return False
    if my_assigned_at is not None:
        return True
    return load < overlap


def is_open(c: Candidate) -> bool:
    """May this annotator be given this item now?"""
    return is_open_for(c.done_by_me, c.my_assigned_at, c.n_labels + c.n_leases, c.overlap)


def priority_key(
    my_assigned_at: datetime | None, kind: str, batch_created_at: datetime, batch_id: str,
    load: int, position: int, question_id: str,
) -> tuple[Any, ...]:
    """Sort key: own leases first, newest first (resume; an undone item comes back first),
    then gold < active < manual, oldest batch, fewest labels + leases, batch position."""
    return (
        0 if my_assigned_at is not None else 1,
        -my_assigned_at.timestamp() if my_assigned_at is not None else 0.0,
        KIND_ORDER.get(kind, 9),
        batch_created_at,
        batch_id,
        load,
        position,
        question_id,
    )


def priority(c: Candidate) -> tuple[Any, ...]:
    """`priority_key` of a candidate."""
    return priority_key(c.my_assigned_at, c.kind, c.batch_created_at, c.batch_id,
                        c.n_labels + c.n_leases, c.position, c.question_id)


def choose_next(candidates: Sequence[Candidate]) -> Candidate | None:
    """The item to serve next, or None if nothing is open. Reference for the SQL in the store."""
    open_items = [c for c in candidates if is_open(c)]
    return min(open_items, key=priority) if open_items else None


def progress(done: int, remaining: int) -> float:
    """Share of this annotator's reachable work that is finished (1.0 when nothing is left)."""
    total = done + remaining
    return 1.0 if total == 0 else done / total


def undo_target(latest_rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Which question an undo re-opens, given each question's latest own row.

    `latest_rows`: one row per question with `question_id`, `action`, `seq`. Undo takes back
    the most recent label or skip that is still in force; repeated undos walk further back.
    """
    live = [r for r in latest_rows if r["action"] in ("label", "skip")]
    if not live:
        return None
    return str(max(live, key=lambda r: r["seq"])["question_id"])
