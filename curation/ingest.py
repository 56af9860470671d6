"""Ingest benchmark files into the store: read, convert, validate, dedup, write once.

Every ingest call is all-or-nothing, and never holds the store long:
1. Parse (no store held): each path is read as a stream (`curation.readers`) and converted
   chunk by chunk; the questions are kept as Arrow batches, the plan's keys as small records.
   Every problem is collected with its file, line, field and what is expected; any problem
   and nothing is written.
2. Look up (short read holds of `LOOKUP_CHUNK` keys): what the store already has of these ids
   and texts, and a change marker (`questions.change_marker`).
3. Plan (no store held): new / unchanged / merged duplicate / moved / error (`plan_ingest`, pure).
4. Stage (short write holds of `STAGE_CHUNK` rows): the new questions are written under the
   ingest's id, marked pending; the view `questions`, which every reader reads, hides them.
5. Swap (one short hold): if the marker is unchanged, the pending mark is removed (all rows
   show at once) and the aliases, split moves, imported labels and predictions and the ingest
   log go in, in one transaction; else the rows are deleted and the plan redone
   (`WRITE_ATTEMPTS`). A killed ingest's never-shown rows are deleted by the next ingest.
"""

from __future__ import annotations

import functools
import gc
import os
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pyarrow as pa

from curation import adapters
from curation.errors import IngestError, InputError, StoreBusyError
from curation.ingest_plan import ParsedRecord, Plan, plan_ingest
from curation.readers import (
    SUPPORTED,
    RawRecord,
    from_rows,
    read_csv,
    read_json,
    read_jsonl,
    read_parquet,
)
from curation.schema import SPLITS, Question
from curation.staging import file_sha256
from curation.store import Store, utcnow
from curation.store import questions as qstore

P = ParamSpec("P")
T = TypeVar("T")

MAX_PROBLEMS = 1000  # stop collecting after this many; the message says how many were shown
CONVERT_CHUNK = 10_000  # records converted, then turned into one Arrow batch
LOOKUP_CHUNK = 200_000  # keys looked up per read hold
STAGE_CHUNK = 50_000  # rows staged per write hold (~0.4 s each on the 2-core machine)
WRITE_ATTEMPTS = 3  # plans redone when another ingest changed the store in between

SAMPLE_FILES = (
    # (file, annotator for its imported labels)
    ("benchmarks_sample.jsonl", None),
    ("train_pool_sample.jsonl", None),
    ("medxpertqa_labeled_dev.jsonl", "import:medxpertqa_authors"),
)


class QuestionRows:
    """The converted question rows of one ingest, in parse order (one row per `ParsedRecord`),
    spilled to an Arrow IPC file in a private temporary folder: the question texts do not stay
    in memory while the ingest plans, and `take` maps back only what it copies out."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="curation-ingest-")
        self._path = Path(self._dir.name) / "rows.arrow"
        self._sink: Any = None
        self._writer: Any = None

    def add(self, questions: Sequence[Question]) -> None:
        if not questions:
            return
        if self._writer is None:
            self._sink = pa.OSFile(str(self._path), "wb")
            self._writer = pa.ipc.new_file(self._sink, qstore.CONVERTED_SCHEMA)
        self._writer.write_batch(qstore.question_batch(questions))

    def take(self, positions: Sequence[int]) -> pa.Table:
        """A copy of the rows at these positions."""
        self._finish_writing()
        source = pa.memory_map(str(self._path))
        try:
            table = pa.ipc.open_file(source).read_all()  # zero-copy views of the mapped file
            out = table.take(pa.array(positions, pa.int64()))
            del table
        finally:
            source.close()
        return out

    def _finish_writing(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def close(self) -> None:
        self._finish_writing()
        self._dir.cleanup()


@dataclass
class IngestReport:
    """What one ingest call did (or, with dry_run, would do)."""

    paths: list[str]
    n_rows: int = 0
    n_new: int = 0
    n_unchanged: int = 0
    n_duplicates: int = 0  # exact duplicates merged into another question
    n_skipped: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    n_labels: int = 0
    n_predictions: int = 0
    n_moved: int = 0  # stored questions moved to another split (--move-split)
    moved: dict[str, int] = field(default_factory=dict)  # "'train' -> 'test'": count
    per_dataset: dict[str, int] = field(default_factory=dict)
    ingest_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- readers ------------------------------------------------------------------------------


def read_hf(name: str, split: str | None) -> Iterator[RawRecord]:
    """A local `datasets` folder (save_to_disk or Hub layout) or a Hub dataset id."""
    import datasets

    path = Path(name)
    try:
        if path.is_dir() and (path / "dataset_info.json").exists() or (path / "state.json").exists():
            ds: Any = datasets.load_from_disk(str(path))
        else:
            ds = datasets.load_dataset(str(name))
    except Exception as exc:
        raise InputError(
            f"could not load as a Hugging Face dataset: {type(exc).__name__}: {exc}", location=name
        ) from exc
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds.keys())
        chosen = split if split in ds else ("test" if "test" in ds else names[0])
        ds = ds[chosen]
    yield from from_rows(name, ds)


def read_any(path_or_id: str, split: str | None = None) -> Iterator[RawRecord]:
    path = Path(path_or_id)
    if path.is_dir():
        yield from read_hf(path_or_id, split)
        return
    if not path.exists():
        if re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", path_or_id) and not path_or_id.endswith(SUPPORTED):
            yield from read_hf(path_or_id, split)
            return
        raise InputError("no such file or directory", location=path_or_id)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from read_jsonl(path)
    elif suffix == ".json":
        yield from read_json(path)
    elif suffix in (".csv", ".tsv"):
        yield from read_csv(path)
    elif suffix == ".parquet":
        yield from read_parquet(path)
    else:
        raise InputError(
            f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED)}, "
            "a datasets folder or a Hub dataset id",
            location=path_or_id,
        )


# --- parse + validate -----------------------------------------------------------------------


def _chunks(records: Iterator[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    chunk: list[RawRecord] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _open_records(path_or_id: str, benchmark: str | None, split: str | None,
                  problems: list[InputError]) -> tuple[adapters.Adapter, Iterator[RawRecord], dict[str, Any]] | None:
    """The adapter (named, or detected from the first record), the record stream and the
    adapter's whole-file decisions; None (with the problem recorded) when the file cannot be read."""
    try:
        stream = read_any(path_or_id, split)
        first = next(stream, None)
    except InputError as exc:
        problems.append(exc)
        return None
    if first is None:
        problems.append(InputError("file is empty: expected at least one question", location=path_or_id))
        return None
    try:
        adapter = adapters.by_name(benchmark) if benchmark else adapters.detect(first.data)
    except InputError as exc:
        problems.append(InputError(exc.detail, location=first.location))
        return None
    records: Iterator[RawRecord] = _chain(first, stream)
    file_info: dict[str, Any] = {}
    if adapter.prepare is not None:  # a whole-file decision (MedMCQA's cop base): keep the raw records
        try:
            kept = list(records)
        except InputError as exc:
            problems.append(exc)
            return None
        file_info = adapter.prepare([r.data for r in kept])
        records = iter(kept)
    if adapter.name == "biomed_r1" and split is None and "train" in Path(path_or_id).name.lower():
        file_info["default_split"] = "train"
        file_info["default_dataset"] = "biomed_r1_train"
    return adapter, records, file_info


def _chain(first: RawRecord, rest: Iterator[RawRecord]) -> Iterator[RawRecord]:
    yield first
    yield from rest


def parse_source(
    path_or_id: str,
    *,
    benchmark: str | None = None,
    split: str | None = None,
    annotator: str | None = None,
    problems: list[InputError],
    report: IngestReport,
    rows: QuestionRows,
) -> list[ParsedRecord]:
    """Read one path as a stream and convert it chunk by chunk; the question rows go to
    `rows` (one per returned record, in order); problems are collected, not raised."""
    opened = _open_records(path_or_id, benchmark, split, problems)
    if opened is None:
        return []
    adapter, records, file_info = opened
    source = path_or_id if not Path(path_or_id).exists() else _portable_source(path_or_id)
    args = (ADAPTER_KEY.get(id(adapter), "canonical"), source, split, adapter.dataset_name, file_info)
    out: list[ParsedRecord] = []
    try:
        for chunk in _chunks(records, CONVERT_CHUNK):
            questions: list[Question] = []
            for location, conv in _convert_chunk(args, chunk):
                report.n_rows += 1
                if isinstance(conv, InputError):
                    problems.append(conv)
                    if len(problems) >= MAX_PROBLEMS:
                        return out
                    continue
                q = conv.question
                if q is None:
                    report.n_skipped += 1
                    reason = conv.skip_reason or "skipped"
                    report.skipped[reason] = report.skipped.get(reason, 0) + 1
                    continue
                questions.append(q)
                out.append(ParsedRecord(location, q.id, q.dataset_name, q.split, q.text_hash, conv.label,
                                        annotator, conv.prediction, conv.threshold))
            rows.add(questions)
    except InputError as exc:  # a reader problem further into the file
        problems.append(exc)
    return out


ADAPTER_KEY = {id(a): k for k, a in adapters.ADAPTERS.items()}
ConvertArgs = tuple[str, str, str | None, str | None, dict[str, Any]]


def _convert_chunk(
    args: ConvertArgs, records: Sequence[RawRecord]
) -> list[tuple[str, adapters.Converted | InputError]]:
    """Convert raw records with one adapter; errors are returned with their location."""
    key, source, split, dataset_name, file_info = args
    adapter = adapters.ADAPTERS[key]
    out: list[tuple[str, adapters.Converted | InputError]] = []
    for rec in records:
        ctx = adapters.Context(source=source, row=rec.row, split=split,
                               dataset_name=dataset_name, file_info=file_info)
        try:
            out.append((rec.location, adapter.convert(rec.data, ctx)))
        except InputError as exc:
            out.append((rec.location, InputError(exc.detail, location=rec.location)))
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            out.append((rec.location, InputError(
                f"malformed record ({type(exc).__name__}: {exc})", location=rec.location)))
    return out


def _portable_source(path: str) -> str:
    """Record a file's name relative to the working directory when it is under it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


# --- the ingest call --------------------------------------------------------------------------


def _without_cyclic_gc(fn: Callable[P, T]) -> Callable[P, T]:
    """Run `fn` with the cyclic garbage collector paused. An ingest builds millions of small
    objects that all stay alive until the write; the collector would rescan them again and
    again (10-20 % of the time) and could free nothing. Reference counting still frees what
    is dropped, and the collector runs again afterwards."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        was_on = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_on:
                gc.enable()

    return run


@_without_cyclic_gc
def ingest_paths(
    store: Store,
    paths: Sequence[str | os.PathLike[str]],
    *,
    benchmark: str | None = None,
    split: str | None = None,
    annotator: str | None = None,
    dry_run: bool = False,
    move_split: bool = False,
) -> IngestReport:
    """Ingest files / dataset folders / Hub ids, all-or-nothing, in bounded store holds (see
    the module docstring). `move_split`: a stored question given another split here is moved
    to it (counted in `n_moved` / `moved`) instead of being an error."""
    if split is not None and split not in SPLITS:
        raise InputError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    if not paths:
        raise InputError("no path given: pass one or more files, or --sample")
    names = [os.fspath(p) for p in paths]
    report = IngestReport(paths=names)
    problems: list[InputError] = []
    parsed: list[ParsedRecord] = []
    rows = QuestionRows()
    try:
        for name in names:
            parsed.extend(parse_source(name, benchmark=benchmark, split=split, problems=problems, report=report,
                                       rows=rows, annotator=annotator or f"import:{Path(name).stem}"))
        if problems:
            raise IngestError(problems)
        job = _Job(store, names, parsed, rows, report, problems, {n: _sha256(n) for n in names},
                   benchmark=benchmark, split=split, dry_run=dry_run, move_split=move_split)
        if dry_run and not store.exists():  # against an empty store: a dry run creates none
            return job.fill(job.plan({}, {}, {}))
        return job.write()
    finally:
        rows.close()


def _keys(records: Sequence[ParsedRecord]) -> pa.Table:
    return pa.table({
        "id": pa.array([r.id for r in records], pa.string()),
        "dataset_name": pa.array([r.dataset_name for r in records], pa.string()),
        "split": pa.array([r.split for r in records], pa.string()),
        "text_hash": pa.array([r.text_hash for r in records], pa.string()),
    })


@dataclass
class _Job:
    """The write of one ingest: look up, plan, stage, swap (module docstring, steps 2-5)."""

    store: Store
    names: list[str]
    parsed: list[ParsedRecord]
    rows: QuestionRows
    report: IngestReport
    problems: list[InputError]
    digests: dict[str, str | None]
    benchmark: str | None
    split: str | None
    dry_run: bool
    move_split: bool

    def plan(self, existing: Mapping[str, tuple[str, str]], by_hash: Mapping[tuple[str, str, str], str],
             aliases: Mapping[str, str]) -> Plan:
        plan = plan_ingest(self.parsed, existing, by_hash, aliases, self.problems, move_split=self.move_split)
        if self.problems:
            raise IngestError(self.problems)
        return plan

    def fill(self, plan: Plan) -> IngestReport:
        r = self.report
        r.n_new = len(plan.new)
        r.n_duplicates = sum(plan.dup_counts.values())
        r.n_unchanged = len(self.parsed) - r.n_new - r.n_duplicates
        r.per_dataset = dict(Counter(self.parsed[i].dataset_name for i in plan.new))
        r.n_moved = len(plan.moves)
        r.moved = dict(Counter(f"{a!r} -> {b!r}" for a, b in plan.moves.values()))
        r.ingest_id = r.ingest_id or uuid.uuid4().hex[:12]
        if self.dry_run:
            r.n_labels, r.n_predictions = len(plan.labels), len(plan.predictions)
        return r

    def write(self) -> IngestReport:
        for _attempt in range(WRITE_ATTEMPTS):
            looked = self._lookup()
            if looked is None:
                continue  # the store changed between two lookup holds
            existing, by_hash, aliases, marker = looked
            plan = self.plan(existing, by_hash, aliases)
            self.fill(plan)
            if self.dry_run:
                return self.report
            now = utcnow()
            with self.store.writer() as owner:  # alive until the swap: its pending rows are not stale
                staged = self._stage(plan, now, owner)
                try:
                    done = self.store.run(lambda con: self._swap(con, marker, staged, plan, now))  # noqa: B023
                except BaseException:
                    if staged:
                        self._abandon()
                    raise
            if done:
                return self.report
            if staged:
                self._abandon()
            self.report.ingest_id = ""  # the next attempt stages under a new id
        raise StoreBusyError(
            f"the store changed {WRITE_ATTEMPTS} times while this ingest was being planned (another ingest "
            "or a split move is running); nothing was written: run the ingest again")

    def _lookup(self) -> tuple[Any, Any, Any, tuple[int, int, int]] | None:
        """What the store holds of these records, `LOOKUP_CHUNK` keys per read hold; None if
        the store changed between two holds."""
        existing: dict[str, tuple[str, str]] = {}
        by_hash: dict[tuple[str, str, str], str] = {}
        aliases: dict[str, str] = {}
        marker: tuple[int, int, int] | None = None
        for off in range(0, max(len(self.parsed), 1), LOOKUP_CHUNK):
            part = _keys(self.parsed[off:off + LOOKUP_CHUNK])

            def read(con: Any, part: pa.Table = part) -> tuple[tuple[int, int, int], Any]:
                return qstore.change_marker(con), qstore.lookup_keys(con, part)

            m, (e, b, a) = self.store.run(read)
            if marker is not None and m != marker:
                return None
            marker = m
            existing.update(e)
            by_hash.update(b)
            aliases.update(a)
        assert marker is not None
        return existing, by_hash, aliases, marker

    def _stage(self, plan: Plan, now: Any, owner: int) -> bool:
        """The new questions, `STAGE_CHUNK` rows per hold, under the pending ingest id."""
        if not plan.new:
            return False
        try:
            for off in range(0, len(plan.new), STAGE_CHUNK):
                part = qstore.with_write_columns(self.rows.take(plan.new[off:off + STAGE_CHUNK]), plan.dup_counts,
                                                 ingest_id=self.report.ingest_id, now=now)

                def write(con: Any, part: pa.Table = part, first: bool = off == 0) -> None:
                    if first:  # a killed ingest's never-shown rows go first
                        qstore.drop_stale_pending(con, lambda o: self.store.owner_alive(con, o))
                    qstore.stage(con, self.report.ingest_id, part, pid=owner, now=now)

                self.store.run(write)
        except BaseException:
            self._abandon()
            raise
        return True

    def _abandon(self) -> None:
        try:
            self.store.run(lambda con: qstore.abandon(con, self.report.ingest_id))
        except Exception:  # noqa: BLE001 - best effort: the next ingest deletes a dead one's rows
            pass

    def _swap(self, con: Any, marker: tuple[int, int, int], staged: bool, plan: Plan, now: Any) -> bool:
        """Everything in one transaction, if the store is as the plan saw it."""
        if qstore.change_marker(con) != marker:
            return False
        r = self.report
        if staged:
            qstore.swap_in(con, r.ingest_id)
        qstore.insert_aliases(con, plan.aliases, plan.dup_counts, {self.parsed[i].id for i in plan.new},
                              ingest_id=r.ingest_id, now=now)
        qstore.move_splits(con, [(q, a, b) for q, (a, b) in plan.moves.items()])
        r.n_labels = qstore.import_labels(con, plan.labels, now=now)
        r.n_predictions = qstore.import_predictions(
            con, plan.predictions, model_version=f"imported:{Path(self.names[0]).stem}",
            source=",".join(self.names), now=now)
        qstore.log_ingest(con, r, self.digests, benchmark=self.benchmark,
                          split=self.split, now=now)
        return True


def _sha256(name: str) -> str | None:
    """The sha256 of a source file; None when `name` is not a file (a dataset folder, a Hub id)."""
    path = Path(name)
    return file_sha256(path) if path.is_file() else None


def sample_path(name: str) -> Path:
    """Path of a bundled data file (`benchmarks_sample.jsonl`, ...)."""
    return Path(str(resources.files("curation") / "data" / name))


def ingest_sample(store: Store) -> list[IngestReport]:
    """Load the bundled real sample: 5 benchmarks, the training pool, the MedXpertQA labels."""
    return [
        ingest_paths(store, [sample_path(name)], annotator=annotator)
        for name, annotator in SAMPLE_FILES
    ]
