"""Label exports and agreement inputs, pure shaping; plus reading the guidelines file.

`export_rows` turns annotation rows (every row: labels, retractions, skips) into flat
records; `write_jsonl` / `write_csv` write them and `parse_export_jsonl` / `parse_export_csv` read them
back (round trip, tested). CSV text cells that a spreadsheet would run as a formula are
neutralised (`neutralise_cell`, OWASP's CSV injection guidance) and restored on reading. `agreement_inputs` turns current labels into the
`(item, rater, label)` rows and item->benchmark groups that `curation.agreement` takes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from curation import rules
from curation.config import labeling_config_dir
from curation.errors import ConfigError, InputError

EXPORT_SCHEMA_VERSION = "1"
EXPORT_FIELDS: tuple[str, ...] = (
    "seq", "event_id", "question_id", "dataset_name", "annotator", "action", "label",
    "confidence", "rationale", "source", "source_ref", "guidelines_version",
    "suggestion_shown", "batch_id", "created_at",
)
FORMATS = ("jsonl", "csv")

_VERSION_RE = re.compile(r"^version:\s*[\"']?([^\"'\s]+)[\"']?\s*$", re.MULTILINE)


# -- guidelines -------------------------------------------------------------------------


def guidelines_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`explicit`, else `$CURATION_GUIDELINES`, else `guidelines.md` in `labeling_config_dir()`."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("CURATION_GUIDELINES")
    if env:
        return Path(env)
    return labeling_config_dir() / "guidelines.md"


def parse_guidelines(text: str, *, location: str = "guidelines.md") -> tuple[str, str]:
    """Split a guidelines file into `(version, body)`; the version comes from YAML front matter."""
    if not text.startswith("---"):
        raise InputError("no front matter: start the file with '---', 'version: X', '---'", location=location)
    end = text.find("\n---", 3)
    if end < 0:
        raise InputError("front matter is not closed by a '---' line", location=location)
    front, body = text[3:end], text[end + 4:].lstrip("\n")
    match = _VERSION_RE.search(front)
    if not match:
        raise InputError("front matter has no 'version:' line", location=location)
    return match.group(1), body


def guidelines_info(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Version (the front matter's, by `parse_guidelines`) and sha256 of the guidelines file,
    for a release manifest; both None if the file is missing."""
    p = guidelines_path(path)
    if not p.is_file():
        return {"version": None, "sha256": None}
    data = p.read_bytes()
    version, _ = parse_guidelines(data.decode("utf-8"), location=str(p))
    return {"version": version, "sha256": hashlib.sha256(data).hexdigest()}


def load_guidelines(path: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """Read the guidelines file; returns `(version, markdown body)`."""
    p = guidelines_path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: guidelines file not found; set CURATION_GUIDELINES to its path")
    return parse_guidelines(p.read_text(encoding="utf-8"), location=str(p))


# -- exports ----------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def export_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flat, JSON-ready records with the export fields in a fixed order (timestamps ISO 8601)."""
    return [{f: _iso(r.get(f)) for f in EXPORT_FIELDS} for r in rows]


def write_jsonl(records: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)


# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and
# Google Sheets; the single quote is in the list so that the quote added on writing is the
# only one removed on reading, and every text round-trips exactly.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def neutralise_cell(value: Any) -> Any:
    """A text starting with = + - @ tab or CR (or with a ' already) gets one leading ', which
    spreadsheets show as text, never evaluate; other values are returned unchanged."""
    if isinstance(value, str) and value.startswith((*FORMULA_PREFIXES, _QUOTE)):
        return _QUOTE + value
    return value


def restore_cell(value: str) -> str:
    """The inverse of `neutralise_cell` on a CSV cell: drop exactly one leading '."""
    return value[1:] if value.startswith(_QUOTE) else value


def write_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """CSV with a header; empty cells for None; formula-like text neutralised (`neutralise_cell`).
    Lines end in CRLF (RFC 4180): Python 3.11's writer quotes a cell holding a CR or LF only
    when that character is in the line terminator, and an unquoted CR breaks every reader."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(EXPORT_FIELDS), lineterminator="\r\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("" if r.get(k) is None else neutralise_cell(r.get(k))) for k in EXPORT_FIELDS})
    return buf.getvalue()


def render(records: Sequence[Mapping[str, Any]], fmt: str) -> str:
    if fmt == "jsonl":
        return write_jsonl(records)
    if fmt == "csv":
        return write_csv(records)
    raise InputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def parse_export_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


_INT_FIELDS = ("seq", "confidence")


def parse_export_csv(text: str) -> list[dict[str, Any]]:
    """Read a CSV export back into the same records `export_rows` made."""
    out: list[dict[str, Any]] = []
    for rec in csv.DictReader(io.StringIO(text, newline="")):
        row: dict[str, Any] = {k: (restore_cell(v) if v != "" else None) for k, v in rec.items()}
        for k in _INT_FIELDS:
            if row.get(k) is not None:
                row[k] = int(row[k])
        if row.get("suggestion_shown") is not None:
            row["suggestion_shown"] = row["suggestion_shown"] == "True"
        out.append(row)
    return out


# -- agreement inputs -------------------------------------------------------------------

AGREEMENT_N_BOOT = 1000
AGREEMENT_SEED = 0


def gold_agreement(
    current: Iterable[Mapping[str, Any]], *, n_boot: int = AGREEMENT_N_BOOT, seed: int = AGREEMENT_SEED
) -> dict[str, Any]:
    """Human-human agreement on the gold set: the one computation behind `curation agreement`,
    the Agreement page and the release card (same rows, same resamples, same numbers).

    `current`: current labels on gold items (`question_id, annotator, label, source,
    dataset_name`); only people's labels count (`curation.rules.human_rows`), whatever else
    is passed. Grouped by benchmark; `n_raters` says how many people labeled.
    """
    from curation.agreement import agreement_report

    people = rules.human_rows(current)
    rows, groups = agreement_inputs(people)
    report = agreement_report(rows, item_groups=groups, n_boot=n_boot, seed=seed)
    report["raters"] = rules.rater_set(people)
    return report


def label_comparison(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Agreement of two label sources on the same items (e.g. the human label vs a benchmark's
    own tags, or the model vs the human label): n, percent agreement with a Wilson 95 % CI,
    Cohen's kappa. `pairs`: (label_a, label_b) per item; empty -> n 0 and no figures."""
    from curation.agreement import cohen_kappa
    from curation.metrics import finite, wilson_ci

    n = len(pairs)
    if n == 0:
        return {"n_items": 0, "percent_agreement": None, "percent_agreement_ci": [None, None],
                "cohen_kappa": None}
    k = sum(a == b for a, b in pairs)
    kappa = cohen_kappa([a for a, _ in pairs], [b for _, b in pairs])
    return {"n_items": n, "percent_agreement": k / n, "percent_agreement_ci": list(wilson_ci(k, n)),
            "cohen_kappa": finite(float(kappa))}



def agreement_inputs(
    current: Iterable[Mapping[str, Any]],
) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """From current labels (`question_id, annotator, label, dataset_name`) to the rows and
    item groups `curation.agreement.agreement_report` takes."""
    rows: list[tuple[str, str, str]] = []
    groups: dict[str, str] = {}
    for r in current:
        rows.append((str(r["question_id"]), str(r["annotator"]), str(r["label"])))
        groups[str(r["question_id"])] = str(r["dataset_name"])
    return rows, groups


def disagreements(current: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Items whose current labels differ, with every annotator's row, by question id."""
    by_q: dict[str, list[dict[str, Any]]] = {}
    for r in current:
        by_q.setdefault(str(r["question_id"]), []).append(dict(r))
    return {
        q: sorted(rs, key=lambda x: str(x["annotator"]))
        for q, rs in sorted(by_q.items())
        if len({x["label"] for x in rs}) > 1
    }
