"""Which option a model's free-text output names: `extract(output, options)`. Pure.

A model answers a multiple-choice question in many shapes; `extract` reads the option
letter from any of these (case-insensitive) and says how it decided (`rule`):

* a bare letter: ``B``, ``(b)``, ``[B]``, ``B.``, ``B)``, ``**B**``, ``Option B``;
* a letter followed by the option's text and more words: ``B) Heparin, because ...``,
  ``B: Heparin``, ``B\\n\\nExplanation: ...``;
* an explicit conclusion, anywhere in the text (chain-of-thought may mention several
  letters first): the last ``<answer>...</answer>`` tag, else the last ``\\boxed{...}``,
  else the last phrase such as ``The answer is B``, ``Answer: C. Hyperkalemia``,
  ``Final answer: (C)``, ``the correct option is D``, ``Option B is correct``,
  ``I choose B``, ``Therefore, B.``;
* the text of an option, exactly (after `curation.schema.normalize_text`), as the whole
  output or after a conclusion phrase (``The answer is hyperkalemia.``); when two options
  would match, nothing is read;
* a last line that is a bare letter (``...\\n\\nC``).

A bare letter is always a letter: an option whose text is a single letter never shadows the
letters (with options ``{"A": "B", "B": "A"}``, ``B`` is option B). A letter beyond the
options (``E`` with four options) is `invalid`. An output that names two letters (``A or
B``, ``A and C``), whose letter contradicts its text (``C. Heparin`` when Heparin is B), a
list of options with no conclusion, or anything else is `unparsed` (reported as such by
`curation.evaluate`, never silently wrong). A lowercase ``a`` or a capital ``A``/``I``
followed by an ordinary word (``the answer is a beta blocker``, ``Answer: I think``) is
read as English, not as a letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from curation.schema import normalize_text

Status = Literal["ok", "invalid", "unparsed", "empty"]

# words that may follow a bare letter in a conclusion ("The answer is A because ...")
_CONNECTORS = frozenset({"because", "since", "as", "given", "due", "which", "with", "for", "here", "there"})
_ARTICLE_LIKE = frozenset({"A", "I"})

_MARKDOWN_RE = re.compile(r"\*\*|__|`+|\$+")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_OPEN_ANSWER_TAG_RE = re.compile(r"<answer>((?:(?!<answer>).)*)$", re.IGNORECASE | re.DOTALL)
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_EXACT_LETTER_RE = re.compile(r"^\s*(?:(?:option|choice)\s+)?[(\[{]?\s*([A-Za-z])\s*[)\]}]?\s*[.:)]?\s*$", re.IGNORECASE)
_TOKEN_RE = re.compile(
    r"^\s*(?:(?:option|choice)\s+)?(?:[(\[{]\s*(?P<wrapped>[A-Za-z])\s*[)\]}]|(?P<bare>[A-Za-z])(?![\w'’]))",
    re.IGNORECASE,
)
_TWO_LETTERS_RE = re.compile(r"^\s*(?:,|/|&|\bor\b|\band\b)\s*(?:(?:option|choice)\s+)?[(\[]?\s*([A-Za-z])(?![\w'’])", re.IGNORECASE)
_LINE_TOKEN_RE = re.compile(r"^\s*[(\[]?([A-Za-z])\s*[)\].:]", re.MULTILINE)
_VERB = r"(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|=|:|-|–|—)"
# conclusion phrases; the answer follows the match (group `L` when the letter is inside it;
# group `so`: "Therefore, B." and "it's B." need the letter to end the sentence)
_MARKER_RE = re.compile(
    r"(?:"
    r"\b(?:(?:my|the|final|correct|right|best|most\s+likely|most\s+appropriate)\s+)*answer\s*"
    + _VERB + r"\s*(?:is\s*)?[:\-]?\s*(?:therefore\s+|thus\s+|then\s+|likely\s+|probably\s+|clearly\s+)*"
    r"|\b(?:the\s+)?(?:correct|right|best|final|most\s+likely|most\s+appropriate)\s+(?:option|choice)\s*"
    + _VERB + r"\s*(?:is\s*)?[:\-]?\s*"
    r"|\banswer\s*(?=[(\[])"
    r"|\bI\s+(?:would\s+|will\s+|'d\s+|’d\s+)?(?:choose|pick|select|go\s+with)\s+"
    r"|(?:(?:^|(?<=[.!?:;,\n]))\s*|\b(?:option|choice)\s+)[(\[]?(?P<L>[A-Za-z])[)\]]?\s+(?:is|seems|appears)\s+"
    r"(?:to\s+be\s+)?(?:the\s+)?(?:correct|right|best)\b"
    r"|(?P<so>\b(?:therefore|thus|hence|so)\s*,?\s*|\bit(?:'s|’s|\s+is)\s+(?:option\s+)?)"
    r"(?=[(\[]?[A-Za-z][)\]]?\s*(?:[.!]|$))"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_NEGATION_RE = re.compile(r"^\s*(?:not|n't)\b", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"(?:[.!?;](?=\s|$)|\n)")


class Extraction(NamedTuple):
    """The letter an output names (`None` unless `status == "ok"`; the out-of-range letter when
    `invalid`), the status and the rule that decided."""

    letter: str | None
    status: Status
    rule: str


def _clean(text: str) -> str:
    text = _MARKDOWN_RE.sub("", text)
    for _ in range(3):  # nested \text{\textbf{B}}
        new = _TEXT_CMD_RE.sub(r"\1", text)
        if new == text:
            break
        text = new
    return text.strip()


def _result(letter: str, options: Mapping[str, str], rule: str) -> Extraction:
    letter = letter.upper()
    if letter in options:
        return Extraction(letter, "ok", rule)
    return Extraction(letter, "invalid", rule)


def _by_text(options: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in options.items():
        norm = normalize_text(str(v))
        if norm:
            out.setdefault(norm, []).append(k)
    return out


def _exact_text(text: str, options: Mapping[str, str]) -> str | None:
    """The option whose text equals `text` after normalisation (None when none or several)."""
    norm = normalize_text(text)
    if not norm or len(norm) == 1 and norm.isalpha():  # a single letter is a letter, never text
        return None
    hits = _by_text(options).get(norm, [])
    return hits[0] if len(hits) == 1 else None


def _texts_prefixing(rest: str, options: Mapping[str, str]) -> set[str]:
    norm = normalize_text(rest)
    return {k for t, ks in _by_text(options).items() for k in ks
            if not (len(t) == 1 and t.isalpha()) and (norm == t or norm.startswith(t + " "))}


def _token(segment: str, options: Mapping[str, str], *, strict: bool) -> tuple[str, str] | None:
    """(letter, rest) when `segment` starts with a letter token, else None.

    A bare letter must end the segment or be followed by punctuation, or (unless `strict`)
    by a word that cannot continue an English sentence starting with that letter."""
    m = _TOKEN_RE.match(segment)
    if not m:
        return None
    letter, rest = (m.group("wrapped") or m.group("bare")), segment[m.end():]
    other = _TWO_LETTERS_RE.match(rest)
    if other and other.group(1).upper() != letter.upper():
        return ("", rest)  # names two letters: ambiguous
    if m.group("bare"):
        nxt = re.match(r"^(\s*)(\S*)", rest)
        gap, word = (nxt.group(1), nxt.group(2)) if nxt else ("", "")
        if not word or (gap and "\n" in gap):
            pass  # end of the segment or of the line
        elif not gap:
            if word[0] not in ".:),;!?]}" or (word[0] == "." and len(word) > 1 and word[1].isalnum()):
                return None  # "A-fib", "B.12", "e.g."
        elif word[0] in "-–—:(.":
            pass
        elif strict:
            return None
        else:
            w = word.lower().strip(",.;:")
            if w not in _CONNECTORS and (letter.islower() or letter in _ARTICLE_LIKE):
                return None
    return letter, rest


def _letter_then_text(segment: str, options: Mapping[str, str], *, strict: bool, rule: str) -> Extraction | None:
    """A letter token at the start of `segment`, checked against the option text after it."""
    tok = _token(segment, options, strict=strict)
    if tok is None:
        return None
    letter, rest = tok
    if not letter:
        return Extraction(None, "unparsed", rule + ": names two options")
    hits = _texts_prefixing(rest.lstrip(" \t.:)]}-–—"), options)
    if hits and letter.upper() not in hits:
        return Extraction(None, "unparsed", rule + ": letter and option text disagree")
    return _result(letter, options, rule)


def _conclusion_segment(segment: str, options: Mapping[str, str], rule: str, *, strict: bool) -> Extraction | None:
    """What follows a conclusion phrase: a letter (with optional text) or an option's text."""
    if _NEGATION_RE.match(segment):
        return None
    found = _letter_then_text(segment, options, strict=strict, rule=rule)
    if found is not None:
        return found
    end = _SENTENCE_END_RE.search(segment)
    sentence = segment[: end.start()] if end else segment
    k = _exact_text(sentence, options)
    if k is None:
        hits = _texts_prefixing(segment, options)
        k = next(iter(hits)) if len(hits) == 1 else None
    return Extraction(k, "ok", rule + " (option text)") if k else None


def _from_markers(text: str, options: Mapping[str, str]) -> Extraction | None:
    for m in reversed(list(_MARKER_RE.finditer(text))):
        if m.group("L"):
            return _result(m.group("L"), options, "conclusion phrase")
        found = _conclusion_segment(text[m.end():], options, "conclusion phrase", strict=m.group("so") is not None)
        if found is not None:
            return found
    return None


def _is_option_list(text: str) -> bool:
    """Several lines start with different letter tokens ("A) ...\\nB) ..."): a list, not an answer."""
    return len({m.group(1).upper() for m in _LINE_TOKEN_RE.finditer(text)}) > 1


def _direct(text: str, options: Mapping[str, str]) -> Extraction | None:
    """The whole text is a letter, or an option's text."""
    m = _EXACT_LETTER_RE.match(text)
    if m:
        return _result(m.group(1), options, "letter")
    k = _exact_text(text, options)
    return Extraction(k, "ok", "option text") if k else None


def _inner(text: str, options: Mapping[str, str]) -> Extraction:
    """A tag's content or a whole output without tags."""
    found = _direct(text, options) or _from_markers(text, options)
    if found is not None:
        return found
    if not _is_option_list(text):
        found = _letter_then_text(text, options, strict=False, rule="leading letter")
        if found is not None:
            return found
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1:
        last = _direct(lines[-1], options)
        if last is not None:
            return last._replace(rule="last line: " + last.rule)
    return Extraction(None, "unparsed", "no answer found")


def extract(output: Any, options: Mapping[str, str]) -> Extraction:
    """The option `output` names; see the module docstring for the accepted shapes."""
    if output is None:
        return Extraction(None, "empty", "no output")
    text = _clean(output if isinstance(output, str) else str(output))
    if not text:
        return Extraction(None, "empty", "no output")
    tags = _ANSWER_TAG_RE.findall(text) or _OPEN_ANSWER_TAG_RE.findall(text)
    if tags:
        found = _inner(_clean(tags[-1]), options)
        return found._replace(rule="<answer> tag: " + found.rule)
    boxed = _BOXED_RE.findall(text)
    if boxed:
        found = _inner(_clean(boxed[-1]), options)
        return found._replace(rule="\\boxed: " + found.rule)
    return _inner(text, options)


def parse_answer(output: Any, options: Mapping[str, str]) -> str | None:
    """The option letter `output` names, or None (unparsed, invalid or empty)."""
    found = extract(output, options)
    return found.letter if found.status == "ok" else None
