"""Benchmark file readers that stream: one record at a time, located errors.

`read_jsonl`, `read_csv` and `read_parquet` read a file row by row (a line, a CSV record, a
Parquet batch), so an ingest's memory does not grow with the raw file: the bytes, the
decoded text and the list of raw dicts are never all held at once. `read_json` (one JSON
document) has to parse the whole file. Every problem names the file and the line (or row),
what is wrong and what to do.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.errors import InputError

SUPPORTED = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
MAX_FILE_BYTES = 2 * 1024**3
PARQUET_BATCH = 10_000
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class RawRecord:
    location: str  # "file:line" or "file:row N"
    row: int
    data: Any


def check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"file is {size / 1e9:.1f} GB; the limit is {MAX_FILE_BYTES / 1e9:.0f} GB", location=str(path))


def _empty(path: Path) -> InputError:
    return InputError("file is empty: expected at least one question", location=str(path))


def _not_utf8(path: Path, lineno: int, raw: bytes, exc: UnicodeDecodeError) -> InputError:
    return InputError(
        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); re-save the file as UTF-8",
        location=f"{path}:{lineno}",
    )


def _locate_bad_utf8(path: Path) -> None:
    """Raise the located error for the first line that is not UTF-8 (the error path only)."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, lineno, raw, exc) from exc


def _json_problem(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0][:200]


def read_jsonl(path: Path) -> Iterator[RawRecord]:
    """One JSON object per line, read line by line."""
    check_size(path)
    row = 0
    prefix = f"{path}:"
    loads = json.loads
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, lineno, raw, exc) from exc
            if not line or line.isspace():
                continue
            line = line.rstrip("\r\n")
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
                raise InputError(f"expected a JSON object per line, got {type(obj).__name__}",
                                 location=f"{path}:{lineno}")
            yield RawRecord(prefix + str(lineno), row, obj)
            row += 1
    if row == 0:
        raise _empty(path)


def read_json(path: Path) -> Iterator[RawRecord]:
    """One JSON document: a list of questions, `{"data": [...]}` or `{key: question}`."""
    check_size(path)
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[3:]
    if not data.strip():
        raise _empty(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _locate_bad_utf8(path)
        raise
    del data
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} at column {exc.colno}", location=f"{path}:{exc.lineno}") from exc
    except (ValueError, RecursionError) as exc:
        raise InputError(f"unreadable JSON: {_json_problem(exc)}", location=str(path)) from exc
    del text
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
    """CSV (or TSV by suffix) with a header row, read record by record."""
    check_size(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    row = 0
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            if not reader.fieldnames:
                raise InputError("no header row", location=f"{path}:1")
            for rec in reader:
                if None in rec:
                    raise InputError("more cells than header columns", location=f"{path}:{reader.line_num}")
                yield RawRecord(f"{path}:{reader.line_num}", row, _parse_cells(rec))
                row += 1
        except UnicodeDecodeError:
            _locate_bad_utf8(path)
            raise
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", location=f"{path}:{reader.line_num}") from exc
    if row == 0:
        raise _empty(path)


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


def read_parquet(path: Path) -> Iterator[RawRecord]:
    """A Parquet file, read one batch of rows at a time."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"not a readable Parquet file: {exc}", location=str(path)) from exc
    if pf.metadata.num_rows == 0:
        raise InputError("file has no rows: expected at least one question", location=str(path))
    i = 0
    try:
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH):
            for rec in batch.to_pylist():
                yield RawRecord(f"{path}:row {i + 1}", i, rec)
                i += 1
    except OSError as exc:  # a corrupt page further into the file
        raise InputError(f"not a readable Parquet file: {exc}", location=f"{path}:row {i + 1}") from exc


def from_rows(name: str, rows: Any) -> Iterator[RawRecord]:
    """Records of an in-memory table (a `datasets.Dataset`, a list of dicts)."""
    for i, rec in enumerate(rows):
        yield RawRecord(f"{name}:row {i + 1}", i, dict(rec))


__all__ = ["MAX_FILE_BYTES", "SUPPORTED", "RawRecord", "from_rows", "read_csv", "read_json", "read_jsonl",
           "read_parquet", "check_size"]
