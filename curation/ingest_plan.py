"""The plan of an ingest, pure: for each converted record, new / unchanged / merged
duplicate / moved to another split / error, against what the store already holds.

`plan_ingest` takes the records' keys (`ParsedRecord`) and three read-only maps from the store
(`curation.store.questions.lookup_keys`); it never sees the store. It keeps references to the
records instead of per-record tuples, so a million records plan in little memory.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from curation.errors import InputError


@dataclass(slots=True)
class ParsedRecord:
    """What the plan needs of one converted record (its question row is in `QuestionRows`)."""

    location: str
    id: str
    dataset_name: str
    split: str
    text_hash: str
    label: str | None = None
    annotator: str | None = None  # who the imported label is attributed to
    prediction: float | None = None
    threshold: float | None = None


@dataclass
class Plan:
    new: array[int] = field(default_factory=lambda: array("q"))  # positions (in the parsed records) of new questions
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (alias_id, question_id)
    dup_counts: Counter[str] = field(default_factory=Counter)  # question_id -> merged duplicates
    labels: list[tuple[str, str, str]] = field(default_factory=list)  # (question_id, label, annotator)
    predictions: list[tuple[str, float, float | None]] = field(default_factory=list)
    moves: dict[str, tuple[str, str]] = field(default_factory=dict)  # question_id -> (from split, to split)


def plan_ingest(
    records: Sequence[ParsedRecord],
    existing: Mapping[str, tuple[str, str]],
    existing_by_hash: Mapping[tuple[str, str, str], str],
    existing_aliases: Mapping[str, str],
    problems: list[InputError],
    *,
    move_split: bool = False,
) -> Plan:
    """Decide, for each record, new / unchanged / merged duplicate / moved / error. Pure.

    `existing` maps stored ids to (text hash, split).
    - same id, same text and split -> unchanged (idempotent re-ingest) or a merged repeat;
    - same id, other text -> error (a changed question is never silently overwritten);
    - same id, other split -> error (an id is never both training and evaluation data), or,
      with `move_split`, a move of the stored question to the record's split (once per id;
      records of one ingest that disagree on an id's split stay an error);
    - new id, same normalized text + options as another question of the same benchmark and
      split -> merged into that question as an alias, counted as a duplicate.
    """
    plan = Plan()
    known = _Known(existing, existing_by_hash, existing_aliases)
    first_problem = len(problems)
    for pos, rec in enumerate(records):
        target: str | None = None
        if known.has_id(rec.id):
            target = known.target(rec.id)
            stored = known.stored(target)
            where = "earlier in this ingest" if target in known.new or target in plan.moves else "in the store"
            problem = _stored_conflict(rec, target, stored, where)
            if isinstance(problem, _SplitConflict) and move_split and where == "in the store" and stored:
                plan.moves[target] = (stored[1], rec.split)
                known.moved[target] = rec.split
                problem = None
            if problem is not None:
                problems.append(problem)
                continue
            if rec.id in known.new:
                plan.dup_counts[rec.id] += 1  # a repeat, in this call, of a question new in this call
        elif (same := known.same_text(rec)) is not None:
            target = same
            known.new_aliases[rec.id] = target
            plan.aliases.append((rec.id, target))
            plan.dup_counts[target] += 1
        else:
            target = rec.id
            known.add(rec)
            plan.new.append(pos)
        if rec.label is not None:
            plan.labels.append((target, rec.label, rec.annotator or "import:file"))
        if rec.prediction is not None:
            plan.predictions.append((target, rec.prediction, rec.threshold))
    _summarize_split_conflicts(problems, first_problem)
    return plan


@dataclass
class _Known:
    """What `plan_ingest` knows: the store's (read-only maps) plus this ingest's new questions,
    kept as references to their records (no per-record tuples: 1M records stay small)."""

    existing: Mapping[str, tuple[str, str]]  # id -> (text hash, split)
    existing_by_hash: Mapping[tuple[str, str, str], str]  # (dataset, split, hash) -> id
    existing_aliases: Mapping[str, str]  # alias id -> question id
    new: dict[str, ParsedRecord] = field(default_factory=dict)
    new_by_hash: dict[str, ParsedRecord] = field(default_factory=dict)  # first new record per text hash
    other_by_key: dict[tuple[str, str, str], str] = field(default_factory=dict)  # same hash, other benchmark/split
    new_aliases: dict[str, str] = field(default_factory=dict)
    moved: dict[str, str] = field(default_factory=dict)  # id -> the split this ingest moves it to

    def has_id(self, qid: str) -> bool:
        return qid in self.new or qid in self.existing or qid in self.existing_aliases or qid in self.new_aliases

    def target(self, qid: str) -> str:
        if qid in self.new or qid in self.existing:
            return qid
        return self.existing_aliases.get(qid) or self.new_aliases[qid]

    def stored(self, qid: str) -> tuple[str, str] | None:
        rec = self.new.get(qid)
        if rec is not None:
            return rec.text_hash, rec.split
        stored = self.existing.get(qid)
        if stored is not None and qid in self.moved:
            return stored[0], self.moved[qid]
        return stored

    def same_text(self, rec: ParsedRecord) -> str | None:
        key = (rec.dataset_name, rec.split, rec.text_hash)
        if key in self.existing_by_hash:
            return self.existing_by_hash[key]
        first = self.new_by_hash.get(rec.text_hash)
        if first is not None and first.dataset_name == rec.dataset_name and first.split == rec.split:
            return first.id
        return self.other_by_key.get(key)

    def add(self, rec: ParsedRecord) -> None:
        self.new[rec.id] = rec
        if rec.text_hash not in self.new_by_hash:
            self.new_by_hash[rec.text_hash] = rec
        else:
            self.other_by_key[(rec.dataset_name, rec.split, rec.text_hash)] = rec.id


class _SplitConflict(InputError):
    def __init__(self, qid: str, stored: str, given: str, where: str, location: str) -> None:
        self.qid, self.stored, self.given = qid, stored, given
        super().__init__(
            f"id {qid!r} is {where} in split {stored!r}, but this record puts it in {given!r}: "
            "an id is never both training and evaluation data; ingest it with "
            f"--split {stored}, leave it out of this file, or move it with --move-split",
            location=location)


def _stored_conflict(
    rec: ParsedRecord, target: str, stored: tuple[str, str] | None, where: str
) -> InputError | None:
    """Why `rec` (an id already known, itself or as an alias of `target`) cannot be ingested."""
    if stored is None or stored[0] != rec.text_hash:
        if target == rec.id:
            what = f"id {rec.id!r} already exists {where} with a different question text or options"
        else:
            what = f"id {rec.id!r} was merged into {target!r} earlier, but its text or options changed"
        return InputError(f"{what}; a changed question is not overwritten: give it a new id or "
                          "fix the file", location=rec.location)
    if stored[1] != rec.split:
        return _SplitConflict(rec.id, stored[1], rec.split, where, rec.location)
    return None


def _summarize_split_conflicts(problems: list[InputError], first: int) -> None:
    """Put one line naming every split conflict (how many, which splits, the ids) first."""
    conflicts = [p for p in problems[first:] if isinstance(p, _SplitConflict)]
    if len(conflicts) < 2:
        return
    pairs = Counter(f"{c.stored!r} -> {c.given!r}" for c in conflicts)
    ids = [c.qid for c in conflicts]
    shown = ", ".join(ids[:10]) + (f", ... ({len(ids) - 10} more)" if len(ids) > 10 else "")
    problems.insert(first, InputError(
        f"{len(ids)} question(s) would change split ({', '.join(f'{k}: {n}' for k, n in pairs.items())}): "
        f"{shown}; an id is never both training and evaluation data: fix the file, or move them with --move-split"))
