"""The annotation queue's state in memory, pure: rows in, the next item out.

Choosing the next item needs every batch item's state (people's labels, leases, own
actions). One DuckDB query computing it costs ~17 ms on this machine whatever the data size
(the engine's fixed cost per operator), which was most of a labeling action. So each
process keeps the state here and the store (`curation.store.queue`) brings it up to date
inside every queue transaction:

- batch items are only ever inserted (an item with its batch), so they are replaced when
  their number changes (`set_items`);
- annotations are append-only with increasing `seq`; new rows are folded in (`fold`). A row
  committed late with a lower `seq`, or a row of ours that was rolled back, shows up as a
  different (count, sum of seq) than the index holds (`in_step`), and the state is rebuilt;
- leases change in place and expire with the clock, so `choose` takes them fresh.

The rules are `curation.assign` (`is_open_for`, `priority_key`) and `curation.rules`
(only people's rows count: a benchmark's imported tag never takes a slot); tests check
every choice against `assign.choose_next` over candidates built the slow way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from curation import assign, rules

FINISHED = ("label", "skip")


class Item(NamedTuple):
    batch_id: str
    question_id: str
    kind: str
    batch_created_at: datetime
    position: int
    overlap: int
    show_suggestions: bool
    suggestion_label: str | None
    suggestion_prob: float | None


class Slot(NamedTuple):
    """One batch item's slots as one person sees them when they write (label, undo)."""

    overlap: int  # K
    labels: int  # people's current labels, the person's own left out
    leases: int  # others' live leases (of people who have not finished the item)
    my_lease: datetime | None  # the person's newest live lease, unless they finished the item

    @property
    def load(self) -> int:
        """What `assign.is_open_for` compares with K."""
        return self.labels + self.leases


Row = tuple[int, str, str, str, datetime, str]  # seq, question_id, annotator, action, created_at, source
Lease = tuple[str, str, datetime]  # question_id, annotator, assigned_at (unexpired)


class QueueIndex:
    """Per (question, person): latest action and latest label/retract; per question: how
    many people currently label it. `lock` guards a process's use of one index."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.items_sig: int | None = None
        self.items: list[Item] = []
        self.by_key: dict[tuple[str, str], Item] = {}
        self.n_rows = 0
        self.seq_sum = 0
        self.last_seq = 0
        self.latest: dict[tuple[str, str], tuple[tuple[datetime, int], str]] = {}
        self.latest_lab: dict[tuple[str, str], tuple[tuple[datetime, int], str]] = {}
        self.n_labels: dict[str, int] = {}

    def set_items(self, items: Iterable[tuple[Any, ...]], signature: int) -> None:
        self.items = [Item(*r) for r in items]
        self.by_key = {(i.batch_id, i.question_id): i for i in self.items}
        self.items_sig = signature

    def in_step(self, n_rows: int, seq_sum: int) -> bool:
        """True if the index has folded exactly the store's annotation rows."""
        return (n_rows, seq_sum) == (self.n_rows, self.seq_sum)

    def continues(self, new: list[Row], n_rows: int, seq_sum: int) -> bool:
        """True if folding `new` (the rows after `last_seq`) brings the index in step."""
        return (self.n_rows + len(new), self.seq_sum + sum(r[0] for r in new)) == (n_rows, seq_sum)

    def rebuild(self, rows: list[Row]) -> None:
        """Start over from every annotation row (items kept)."""
        items, by_key, sig = self.items, self.by_key, self.items_sig
        self.reset()
        self.items, self.by_key, self.items_sig = items, by_key, sig
        self.fold(rows)

    def fold(self, rows: list[Row]) -> None:
        latest, latest_lab, n_labels = self.latest, self.latest_lab, self.n_labels
        is_human = rules.is_human
        for seq, qid, ann, action, created_at, source in rows:
            self.last_seq = max(self.last_seq, seq)
            self.seq_sum += seq
            if not is_human(source):
                continue  # an imported tag is a reference, never a rater: it takes no slot
            key = (created_at, seq)
            pair = (qid, ann)
            cur = latest.get(pair)
            if cur is None or key > cur[0]:
                latest[pair] = (key, action)
            if action in ("label", "retract"):
                cur = latest_lab.get(pair)
                if cur is None or key > cur[0]:
                    was = cur is not None and cur[1] == "label"
                    latest_lab[pair] = (key, action)
                    now_label = action == "label"
                    if was != now_label:
                        n_labels[qid] = n_labels.get(qid, 0) + (1 if now_label else -1)
        self.n_rows += len(rows)

    def _finished(self, qid: str, annotator: str) -> bool:
        row = self.latest.get((qid, annotator))
        return row is not None and row[1] in FINISHED

    def live_leases(self, leases: Iterable[Lease], annotator: str) -> tuple[dict[str, int], dict[str, datetime]]:
        """(others' live leases per question, my newest lease per question), leaving out
        leases of people who already finished the item."""
        n_leases: dict[str, int] = {}
        mine: dict[str, datetime] = {}
        for qid, ann, at in leases:
            if self._finished(qid, ann):
                continue
            if ann == annotator:
                if qid not in mine or at > mine[qid]:
                    mine[qid] = at
            else:
                n_leases[qid] = n_leases.get(qid, 0) + 1
        return n_leases, mine

    def slot(self, leases: Iterable[Lease], annotator: str, batch_id: str, question_id: str) -> Slot | None:
        """The item `(batch_id, question_id)` as `annotator` sees it now (None: no such item).
        Their own current label is left out of `labels`: a write replaces or retracts it."""
        item = self.by_key.get((batch_id, question_id))
        if item is None:
            return None
        n_leases, mine = self.live_leases(leases, annotator)
        own = self.latest_lab.get((question_id, annotator))
        labels = self.n_labels.get(question_id, 0) - (own is not None and own[1] == "label")
        return Slot(item.overlap, labels, n_leases.get(question_id, 0), mine.get(question_id))

    def choose(self, leases: Iterable[Lease], annotator: str) -> tuple[int, int, Item | None]:
        """`(open, done, top item)` for `annotator` given the unexpired leases."""
        n_leases, mine = self.live_leases(leases, annotator)
        n_labels = self.n_labels
        n_open = n_done = 0
        best: tuple[Any, ...] | None = None
        top: Item | None = None
        for item in self.items:
            qid = item.question_id
            if self._finished(qid, annotator):
                n_done += 1
                continue
            at = mine.get(qid)
            load = n_labels.get(qid, 0) + n_leases.get(qid, 0)
            if not assign.is_open_for(False, at, load, item.overlap):
                continue
            n_open += 1
            key = assign.priority_key(at, item.kind, item.batch_created_at, item.batch_id, load, item.position, qid)
            if best is None or key < best:
                best, top = key, item
        return n_open, n_done, top

    def batch_status(self, leases: Iterable[Lease]) -> list[dict[str, Any]]:
        """Per batch: items, overlap, labels needed/done (people only, at most K an item),
        complete items, active leases of people who have not finished."""
        n_leases, _ = self.live_leases(leases, "\x00")
        out: dict[str, dict[str, Any]] = {}
        for item in self.items:
            b = out.setdefault(item.batch_id, {
                "batch_id": item.batch_id, "kind": item.kind, "overlap": item.overlap,
                "created_at": item.batch_created_at, "items": 0, "labels_done": 0, "labels_needed": 0,
                "complete_items": 0, "active_leases": 0})
            n = self.n_labels.get(item.question_id, 0)
            b["items"] += 1
            b["labels_done"] += min(n, item.overlap)
            b["labels_needed"] += item.overlap
            b["complete_items"] += n >= item.overlap
            b["active_leases"] += n_leases.get(item.question_id, 0)
        return sorted(out.values(), key=lambda b: (b["created_at"], b["batch_id"]))
