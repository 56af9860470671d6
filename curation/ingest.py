"""Ingest benchmark files into the store: read, convert, validate, dedup, write once.

Every ingest call is all-or-nothing: all paths are read and validated first; only if no
record has a problem is anything written, in one transaction. Problems name the file,
the line (or row), the field and what is expected.
"""

from __future__ import annotations

import csv
import functools
import gc
import io
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from curation import adapters
from curation.errors import IngestError, InputError
from curation.schema import SPLITS, Question
from curation.staging import file_sha256
from curation.store import Store, utcnow
from curation.store import questions as qstore

P = ParamSpec("P")
T = TypeVar("T")

SUPPORTED = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
MAX_FILE_BYTES = 2 * 1024**3
MAX_PROBLEMS = 1000  # stop collecting after this many; the message says how many were shown

SAMPLE_FILES = (
    # (file, annotator for its imported labels)
    ("benchmarks_sample.jsonl", None),
    ("train_pool_sample.jsonl", None),
    ("medxpertqa_labeled_dev.jsonl", "import:medxpertqa_authors"),
)


@dataclass
class RawRecord:
    location: str  # "file:line" or "file:row N"
    row: int
    data: Any


@dataclass
class ParsedRecord:
    location: str
    question: Question
    label: str | None = None
    annotator: str | None = None  # who the imported label is attributed to
    prediction: float | None = None
    threshold: float | None = None


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
    per_dataset: dict[str, int] = field(default_factory=dict)
    ingest_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- readers ------------------------------------------------------------------------------


def _decode_lines(path: Path, data: bytes) -> Iterator[tuple[int, str]]:
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "re-save the file as UTF-8",
                location=f"{path}:{lineno}",
            ) from exc


def _read_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"file is {size / 1e9:.1f} GB; the limit is {MAX_FILE_BYTES / 1e9:.0f} GB", location=str(path))
    data = path.read_bytes()
    if not data.strip():
        raise InputError("file is empty: expected at least one question", location=str(path))
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data


def _json_problem(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0][:200]


def _lines(path: Path, data: bytes) -> Iterator[tuple[int, str]]:
    """Numbered lines; one decode of the whole file (the per-line path runs only to locate
    a decoding error)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield from _decode_lines(path, data)
        return
    yield from enumerate(text.split("\n"), start=1)


def read_jsonl(path: Path) -> Iterator[RawRecord]:
    data = _read_bytes(path)
    row = 0
    prefix = f"{path}:"
    loads = json.loads
    for lineno, line in _lines(path, data):
        if not line or line.isspace():
            continue
        try:
            obj = loads(line)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(line.rstrip()):  # the parser ran off the end of the line
                raise InputError(f"truncated JSON: {exc.msg} at column {exc.colno}",
                                 location=f"{path}:{lineno}") from exc
            raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno})",
                             location=f"{path}:{lineno}") from exc
        except (ValueError, RecursionError) as exc:  # nesting too deep, integer too long
            raise InputError(f"unreadable JSON: {_json_problem(exc)}", location=f"{path}:{lineno}") from exc
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object per line, got {type(obj).__name__}", location=f"{path}:{lineno}")
        yield RawRecord(prefix + str(lineno), row, obj)
        row += 1


def read_json(path: Path) -> Iterator[RawRecord]:
    data = _read_bytes(path)
    list(_decode_lines(path, data))  # locates invalid UTF-8 by line
    try:
        obj = json.loads(data.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} at column {exc.colno}", location=f"{path}:{exc.lineno}") from exc
    except (ValueError, RecursionError) as exc:
        raise InputError(f"unreadable JSON: {_json_problem(exc)}", location=str(path)) from exc
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if isinstance(obj, list):
        for i, rec in enumerate(obj):
            if not isinstance(rec, dict):
                raise InputError(f"expected an object, got {type(rec).__name__}", location=f"{path}:row {i + 1}")
            yield RawRecord(f"{path}:row {i + 1}", i, rec)
    elif isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        # {key: record} as in PubMedQA's ori_pqal.json (key = PMID)
        for i, (key, rec) in enumerate(obj.items()):
            yield RawRecord(f"{path}:key {key}", i, {"_key": key, **rec})
    elif isinstance(obj, dict) and {"question", "options"} <= set(obj):
        yield RawRecord(f"{path}:row 1", 0, obj)
    else:
        raise InputError("expected a list of question objects or {id: question}", location=str(path))


def read_csv(path: Path) -> Iterator[RawRecord]:
    data = _read_bytes(path)
    list(_decode_lines(path, data))
    text = data.decode("utf-8")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise InputError("no header row", location=f"{path}:1")
    row = 0
    try:
        for rec in reader:
            if None in rec:
                raise InputError("more cells than header columns", location=f"{path}:{reader.line_num}")
            yield RawRecord(f"{path}:{reader.line_num}", row, _parse_cells(rec))
            row += 1
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", location=f"{path}:{reader.line_num}") from exc


def _parse_cells(rec: dict[str, Any]) -> dict[str, Any]:
    """CSV cells are strings; JSON-looking `options`/`meta` cells are decoded."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if k in ("options", "meta") and isinstance(v, str) and v.strip().startswith(("{", "[")):
            try:
                v = json.loads(v)
            except (ValueError, RecursionError):
                pass  # left as text; the adapter then says what it expected
        elif k in ("cop",) and isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
            v = int(v)
        elif k in ("reasoning_prob", "reasoning_threshold") and isinstance(v, str) and v.strip():
            try:
                v = float(v)
            except ValueError:
                pass
        out[k] = v
    return out


def _from_table(name: str, rows: Sequence[Mapping[str, Any]]) -> Iterator[RawRecord]:
    for i, rec in enumerate(rows):
        yield RawRecord(f"{name}:row {i + 1}", i, dict(rec))


def read_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"not a readable Parquet file: {exc}", location=str(path)) from exc
    if table.num_rows == 0:
        raise InputError("file has no rows: expected at least one question", location=str(path))
    yield from _from_table(str(path), table.to_pylist())


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
    yield from _from_table(name, ds.to_list())


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


def parse_source(
    path_or_id: str,
    *,
    benchmark: str | None = None,
    split: str | None = None,
    problems: list[InputError],
    report: IngestReport,
) -> list[ParsedRecord]:
    """Read one path and convert every record; problems are collected, not raised."""
    try:
        records = list(read_any(path_or_id, split))
    except InputError as exc:
        problems.append(exc)
        return []
    if not records:
        problems.append(InputError("file is empty: expected at least one question", location=path_or_id))
        return []
    try:
        adapter = adapters.by_name(benchmark) if benchmark else adapters.detect(records[0].data)
    except InputError as exc:
        problems.append(InputError(exc.detail, location=records[0].location))
        return []
    file_info: dict[str, Any] = {}
    if adapter.prepare is not None:
        file_info = adapter.prepare([r.data for r in records])
    if adapter.name == "biomed_r1" and split is None:
        stem = Path(path_or_id).name.lower()
        if "train" in stem:
            file_info["default_split"] = "train"
            file_info["default_dataset"] = "biomed_r1_train"
    source = path_or_id if not Path(path_or_id).exists() else _portable_source(path_or_id)
    key = ADAPTER_KEY.get(id(adapter), "canonical")
    args = (key, source, split, adapter.dataset_name, file_info)
    results = _convert_chunk(args, records)
    out: list[ParsedRecord] = []
    for location, conv in results:
        report.n_rows += 1
        if isinstance(conv, InputError):
            problems.append(conv)
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        if conv.question is None:
            report.n_skipped += 1
            reason = conv.skip_reason or "skipped"
            report.skipped[reason] = report.skipped.get(reason, 0) + 1
            continue
        out.append(ParsedRecord(location=location, question=conv.question, label=conv.label,
                                prediction=conv.prediction, threshold=conv.threshold))
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


@dataclass
class Plan:
    new: list[ParsedRecord] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (alias_id, question_id)
    dup_counts: Counter[str] = field(default_factory=Counter)  # question_id -> merged duplicates
    labels: list[tuple[str, str, str]] = field(default_factory=list)  # (question_id, label, annotator)
    predictions: list[tuple[str, float, float | None]] = field(default_factory=list)


def plan_ingest(
    records: Sequence[ParsedRecord],
    existing: Mapping[str, tuple[str, str]],
    existing_by_hash: Mapping[tuple[str, str, str], str],
    existing_aliases: Mapping[str, str],
    problems: list[InputError],
) -> Plan:
    """Decide, for each record, new / unchanged / merged duplicate / error. Pure.

    `existing` maps stored ids to (text hash, split).
    - same id, same text and split -> unchanged (idempotent re-ingest) or a merged repeat;
    - same id, other text -> error (a changed question is never silently overwritten);
    - same id, other split -> error (an id is never both training and evaluation data);
    - new id, same normalized text + options as another question of the same benchmark and
      split -> merged into that question as an alias, counted as a duplicate.
    """
    plan = Plan()
    seen: dict[str, tuple[str, str]] = dict(existing)  # id -> (hash, split)
    by_hash: dict[tuple[str, str, str], str] = dict(existing_by_hash)
    aliases: dict[str, str] = dict(existing_aliases)
    new_ids: set[str] = set()
    first_problem = len(problems)
    for rec in records:
        q = rec.question
        h = q.text_hash
        key = (q.dataset_name, q.split, h)
        target: str | None = None
        if q.id in seen or q.id in aliases:
            target = q.id if q.id in seen else aliases[q.id]
            where = "earlier in this ingest" if target in new_ids else "in the store"
            problem = _stored_conflict(rec, target, seen.get(target), where)
            if problem is not None:
                problems.append(problem)
                continue
            if q.id in new_ids:
                plan.dup_counts[q.id] += 1  # a repeat, in this call, of a question new in this call
        elif key in by_hash:
            target = by_hash[key]
            aliases[q.id] = target
            plan.aliases.append((q.id, target))
            plan.dup_counts[target] += 1
        else:
            target = q.id
            seen[q.id] = (h, q.split)
            by_hash[key] = q.id
            new_ids.add(q.id)
            plan.new.append(rec)
        if rec.label is not None:
            plan.labels.append((target, rec.label, rec.annotator or "import:file"))
        if rec.prediction is not None:
            plan.predictions.append((target, rec.prediction, rec.threshold))
    _summarize_split_conflicts(problems, first_problem)
    return plan


class _SplitConflict(InputError):
    def __init__(self, qid: str, stored: str, given: str, where: str, location: str) -> None:
        self.qid, self.stored, self.given = qid, stored, given
        super().__init__(
            f"id {qid!r} is {where} in split {stored!r}, but this record puts it in {given!r}: "
            "an id is never both training and evaluation data; ingest it with "
            f"--split {stored}, or leave it out of this file",
            location=location)


def _stored_conflict(
    rec: ParsedRecord, target: str, stored: tuple[str, str] | None, where: str
) -> InputError | None:
    """Why `rec` (an id already known, itself or as an alias of `target`) cannot be ingested."""
    q = rec.question
    if stored is None or stored[0] != q.text_hash:
        if target == q.id:
            what = f"id {q.id!r} already exists {where} with a different question text or options"
        else:
            what = f"id {q.id!r} was merged into {target!r} earlier, but its text or options changed"
        return InputError(f"{what}; a changed question is not overwritten: give it a new id or "
                          "fix the file", location=rec.location)
    if stored[1] != q.split:
        return _SplitConflict(q.id, stored[1], q.split, where, rec.location)
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
        f"{shown}; an id is never both training and evaluation data"))


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
) -> IngestReport:
    """Ingest files / dataset folders / Hub ids in one all-or-nothing transaction."""
    if split is not None and split not in SPLITS:
        raise InputError(f"--split {split!r} is not one of {', '.join(SPLITS)}")
    if not paths:
        raise InputError("no path given: pass one or more files, or --sample")
    names = [os.fspath(p) for p in paths]
    report = IngestReport(paths=names)
    problems: list[InputError] = []
    parsed: list[ParsedRecord] = []
    for name in names:
        records = parse_source(name, benchmark=benchmark, split=split, problems=problems, report=report)
        who = annotator or f"import:{Path(name).stem}"
        for rec in records:
            rec.annotator = who
        parsed.extend(records)
    if problems:
        raise IngestError(problems)
    digests = {n: _sha256(n) for n in names}

    def write(con: Any) -> IngestReport:
        datasets = sorted({r.question.dataset_name for r in parsed})
        existing, by_hash, aliases = (
            qstore.lookup(con, [r.question.id for r in parsed], datasets) if con is not None else ({}, {}, {}))
        plan = plan_ingest(parsed, existing, by_hash, aliases, problems)
        if problems:
            raise IngestError(problems)
        report.n_new = len(plan.new)
        report.n_duplicates = sum(plan.dup_counts.values())
        report.n_unchanged = len(parsed) - report.n_new - report.n_duplicates
        report.per_dataset = dict(Counter(r.question.dataset_name for r in plan.new))
        report.ingest_id = uuid.uuid4().hex[:12]
        if dry_run:
            report.n_labels = len(plan.labels)
            report.n_predictions = len(plan.predictions)
            raise _DryRun(report)
        now = utcnow()
        qstore.insert_questions(con, [r.question for r in plan.new], plan.dup_counts,
                                ingest_id=report.ingest_id, now=now)
        qstore.insert_aliases(con, plan.aliases, plan.dup_counts, set(r.question.id for r in plan.new),
                              ingest_id=report.ingest_id, now=now)
        report.n_labels = qstore.import_labels(con, plan.labels, now=now)
        report.n_predictions = qstore.import_predictions(
            con, plan.predictions, model_version=f"imported:{Path(names[0]).stem}", source=",".join(names), now=now)
        qstore.log_ingest(con, report, digests, benchmark=benchmark, split=split, now=now)
        return report

    try:
        if dry_run and not store.path.exists():
            return write(None)  # against an empty store: a dry run creates none
        return store.run(write)
    except _DryRun as dry:
        return dry.report


class _DryRun(Exception):
    def __init__(self, report: IngestReport) -> None:
        self.report = report


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
