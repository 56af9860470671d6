"""Record types and their validation. Pure: no I/O.

The canonical question follows the field names of the paper's released
`zou-lab/BioMed-R1-Eval` where they overlap: `id, dataset_name, split, question,
options {letter: text}, answer_idx, answer, source, meta`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import string
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from curation import rules
from curation.errors import InputError

LABELS: tuple[str, str] = ("reasoning", "knowledge")
Label = Literal["reasoning", "knowledge"]
SPLITS: tuple[str, ...] = ("test", "train", "validation", "dev")
LETTERS = string.ascii_uppercase

# Size limits: generous for real benchmarks (the longest bundled question, a PubMedQA
# abstract, is ~4.7k characters) and small enough that a runaway file cannot fill the store.
MAX_ID_CHARS = 200
MAX_QUESTION_CHARS = 100_000
MAX_OPTION_CHARS = 10_000
MAX_OPTIONS = 26
MAX_META_CHARS = 200_000
MAX_NAME_CHARS = 100

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-/+]*$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_WS_RE = re.compile(r"\s+")
_PUNCT_RE = re.compile(r"[^\w\s]")


# ASCII fast path: every ASCII character that is not a word character or whitespace -> space
_ASCII_TABLE = str.maketrans({
    chr(i): " " for i in range(1, 128) if not (chr(i).isalnum() or chr(i) == "_" or chr(i).isspace())
})
_ASCII_TABLE_NUL = {**_ASCII_TABLE, 0: " "}  # normalize_text: NUL is punctuation too
# normalize_text for ASCII, as one bytes.translate (~10x faster than str.translate with a
# dict): lower-case; every character outside [a-z0-9_] -> space, including every
# str.isspace() character (bytes.split does not split on \x1c-\x1f as str.split does) and
# NUL. Then split/join collapses the spaces. Shared with the bulk path in `decontam`.
ASCII_FOLD_BYTES = bytes(
    (ord(chr(c).lower()) if (chr(c).isalnum() or c == 95) else 32) if c < 128 else c
    for c in range(256)
)
_HASH_BYTES = b"\x00" + ASCII_FOLD_BYTES[1:]  # text_hash keeps NUL as the part separator

def normalize_text(text: str) -> str:
    """Normalization used for dedup and decontamination.

    NFKC, case-folded, punctuation removed, whitespace collapsed. Idempotent.
    """
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_TABLE_NUL).split())
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT_RE.sub(" ", text)
    text = _WS_RE.sub(" ", text).strip()
    # casefold/NFKC can expose new combinable forms; a second pass makes this idempotent
    return _WS_RE.sub(" ", _PUNCT_RE.sub(" ", unicodedata.normalize("NFKC", text).casefold())).strip()


@functools.lru_cache(maxsize=65_536)
def _normalize_option(text: str) -> str:
    return normalize_text(text)  # options repeat a lot across questions (yes/no/maybe, drug names)


def text_hash(question: str, options: Mapping[str, str]) -> str:
    """Hash of the normalized question and its normalized option texts (order-free).

    Two records with the same hash are exact duplicates even if their choices were
    shuffled (GPQA) or their whitespace and punctuation differ.
    """
    values = list(options.values())
    joined = "\x00".join([question, *values])
    if joined.isascii() and joined.count("\x00") == len(values):
        # one bytes pass over all parts (see _HASH_BYTES); NUL separates them again
        parts = b" ".join(joined.encode("ascii").translate(_HASH_BYTES).split()).split(b"\x00")
        payload = parts[0].strip() + b"\x1f" + b"\x1e".join(sorted(p.strip() for p in parts[1:]))
        return hashlib.sha256(payload).hexdigest()
    norm_q, norm_opts = normalize_text(question), [_normalize_option(v) for v in values]
    text = norm_q + "\x1f" + "\x1e".join(sorted(norm_opts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Question:
    id: str
    dataset_name: str
    split: str
    question: str
    options: dict[str, str]
    answer_idx: str
    answer: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    text_hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.text_hash:
            object.__setattr__(self, "text_hash", text_hash(self.question, self.options))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset_name": self.dataset_name,
            "split": self.split,
            "question": self.question,
            "options": dict(self.options),
            "answer_idx": self.answer_idx,
            "answer": self.answer,
            "source": self.source,
            "meta": dict(self.meta),
        }


def _check_text(value: Any, name: str, limit: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InputError(f"{name} is empty")
    if len(value) > limit:
        raise InputError(
            f"{name} is {len(value):,} characters; the limit is {limit:,} (is this the right file?)"
        )
    if "\x00" in value:
        raise InputError(f"{name} contains a NUL character")
    return value


def validate_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or len(value) > MAX_NAME_CHARS:
        raise InputError(
            f"{what} {value!r} is not a valid name: use lower-case letters, digits, '_' or '-'"
        )
    return value


def validate_label(value: Any) -> str:
    if value not in LABELS:
        raise InputError(f"label {value!r} is not one of {', '.join(LABELS)}")
    return str(value)


def make_question(
    *,
    id: Any,
    dataset_name: Any,
    split: Any,
    question: Any,
    options: Any,
    answer_idx: Any,
    answer: Any = None,
    source: Any,
    meta: Any = None,
) -> Question:
    """Validate raw values and build a `Question`; raise `InputError` naming the field."""
    if isinstance(id, int) and not isinstance(id, bool):
        id = str(id)
    qid = _check_text(id, "id", MAX_ID_CHARS)
    if not _ID_RE.match(qid):
        raise InputError(
            f"id {qid!r} has characters outside letters, digits and _ . : - / +"
        )
    dataset = validate_name(dataset_name, "dataset_name")
    if split not in SPLITS:
        raise InputError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    text = _check_text(question, "question", MAX_QUESTION_CHARS)
    if not isinstance(options, Mapping):
        raise InputError(f"options must be an object {{letter: text}}, got {type(options).__name__}")
    if len(options) < 2:
        raise InputError(f"options has {len(options)} choice(s); at least 2 are needed")
    if len(options) > MAX_OPTIONS:
        raise InputError(f"options has {len(options)} choices; the limit is {MAX_OPTIONS}")
    letters = list(options.keys())
    expected = list(LETTERS[: len(letters)])
    if sorted(letters) != expected:
        raise InputError(
            f"options letters {','.join(map(str, letters))} must be {expected[0]}-{expected[-1]} without gaps"
        )
    opts = {k: _check_text(options[k], f"options[{k}]", MAX_OPTION_CHARS) for k in expected}
    if not isinstance(answer_idx, str) or answer_idx not in opts:
        raise InputError(
            f"answer_idx {answer_idx!r} not among options {expected[0]}-{expected[-1]}"
        )
    if answer is None:
        answer = opts[answer_idx]
    answer_text = _check_text(answer, "answer", MAX_OPTION_CHARS)
    if answer_text != opts[answer_idx] and normalize_text(answer_text) != normalize_text(opts[answer_idx]):
        raise InputError(
            f"answer {answer_text[:60]!r} does not match options[{answer_idx}] {opts[answer_idx][:60]!r}"
        )
    src = _check_text(source, "source", 2_000)
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        raise InputError(f"meta must be an object, got {type(meta).__name__}")
    if meta:
        try:
            meta_json = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InputError(f"meta is not JSON-serializable: {exc}") from exc
        if len(meta_json) > MAX_META_CHARS:
            raise InputError(f"meta is {len(meta_json):,} characters of JSON; the limit is {MAX_META_CHARS:,}")
        meta = json.loads(meta_json)
    return Question(
        id=qid,
        dataset_name=dataset,
        split=str(split),
        question=text,
        options=opts,
        answer_idx=answer_idx,
        answer=answer_text,
        source=src,
        meta=dict(meta),
    )


def format_for_model(question: str, options: Mapping[str, str]) -> str:
    """The classifier's input text: the question, a blank line, then `A. text` per option."""
    lines = [question.strip(), ""]
    lines += [f"{k}. {v}" for k, v in sorted(options.items())]
    return "\n".join(lines)


# -- one label row (the `annotations` table is append-only; see curation.store.annotations) --


@dataclass(frozen=True)
class Annotation:
    question_id: str
    annotator: str
    action: str  # 'label' | 'retract' | 'skip'
    label: str | None
    source: str  # one of rules.ANNOTATION_SOURCES ('app' | 'label_studio' | 'import')
    created_at: datetime
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    confidence: int | None = None
    rationale: str | None = None
    source_ref: str | None = None
    guidelines_version: str | None = None
    suggestion_shown: bool = False
    batch_id: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("label", "retract", "skip"):
            raise InputError(f"action {self.action!r} is not label, retract or skip")
        if self.action == "label" and self.label not in LABELS:
            raise InputError(f"label {self.label!r} is not one of {', '.join(LABELS)}")
        if self.action != "label" and self.label is not None:
            raise InputError(f"a {self.action} row carries no label")
        if self.confidence is not None and self.confidence not in (1, 2, 3):
            raise InputError(f"confidence {self.confidence!r} is not 1, 2 or 3")
        if self.source not in rules.ANNOTATION_SOURCES:
            raise InputError(f"source {self.source!r} is not one of {', '.join(rules.ANNOTATION_SOURCES)}")
