"""Question validation and the normalization used for dedup (property-based)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curation.errors import InputError
from curation.schema import format_for_model, make_question, normalize_text, text_hash

pytestmark = pytest.mark.unit

BASE = dict(id="medqa-1", dataset_name="medqa", split="test", question="Which drug?",
            options={"A": "Aspirin", "B": "Heparin"}, answer_idx="B", answer="Heparin", source="t")


def _slow_normalize(text: str) -> str:
    """The reference definition, without the ASCII fast path."""
    punct, ws = re.compile(r"[^\w\s]"), re.compile(r"\s+")
    once = ws.sub(" ", punct.sub(" ", unicodedata.normalize("NFKC", text).casefold())).strip()
    return ws.sub(" ", punct.sub(" ", unicodedata.normalize("NFKC", once).casefold())).strip()


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_fast_path_matches_reference(text: str) -> None:
    assert normalize_text(text) == _slow_normalize(text)


@given(st.text(min_size=1), st.lists(st.text(min_size=1), min_size=2, max_size=6), st.randoms())
def test_hash_ignores_option_order_case_and_spacing(question: str, opts: list[str], rnd) -> None:  # type: ignore[no-untyped-def]
    options = {chr(65 + i): o for i, o in enumerate(opts)}
    shuffled_values = list(opts)
    rnd.shuffle(shuffled_values)
    shuffled = {chr(65 + i): o for i, o in enumerate(shuffled_values)}
    noisy_q = "  " + question.upper().replace(" ", "   ") + " ?!"
    assert text_hash(question, options) == text_hash(question, shuffled)
    assert text_hash(noisy_q, options) == text_hash(question.upper() + "?", options)


def test_hash_separates_different_questions() -> None:
    a = text_hash("Which drug causes X?", {"A": "a", "B": "b"})
    assert a != text_hash("Which drug causes Y?", {"A": "a", "B": "b"})
    assert a != text_hash("Which drug causes X?", {"A": "a", "B": "c"})
    # the question/options boundary matters: moving text across it changes the hash
    assert text_hash("q a", {"A": "b", "B": "c"}) != text_hash("q", {"A": "a b", "B": "c"})


def test_valid_question_round_trips() -> None:
    q = make_question(**BASE)
    assert q.to_dict()["options"] == {"A": "Aspirin", "B": "Heparin"}
    assert len(q.text_hash) == 64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answer_idx": "F"}, "answer_idx 'F' not among options A-B"),
        ({"options": {"A": "x"}}, "at least 2 are needed"),
        ({"options": {"A": "x", "C": "y"}}, "must be A-B without gaps"),
        ({"options": ["x", "y"]}, "options must be an object"),
        ({"question": ""}, "question is empty"),
        ({"question": 5}, "question must be a string, got int"),
        ({"question": "x" * 100_001}, "the limit is 100,000"),
        ({"split": "holdout"}, "split 'holdout' is not one of"),
        ({"id": "bad id with spaces"}, "has characters outside"),
        ({"dataset_name": "Med QA!"}, "is not a valid name"),
        ({"answer": "Aspirin"}, "does not match options[B]"),
        ({"meta": [1, 2]}, "meta must be an object"),
        ({"options": {"A": "x", "B": "y\x00"}}, "NUL character"),
    ],
)
def test_invalid_fields_are_named(change: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError) as err:
        make_question(**{**BASE, **change})
    assert message in str(err.value)


def test_model_input_format() -> None:
    text = format_for_model("Q?", {"B": "two", "A": "one"})
    assert text == "Q?\n\nA. one\nB. two"


def _reference_hash(question: str, options: dict[str, str]) -> str:
    import hashlib

    opts = sorted(_slow_normalize(v) for v in options.values())
    payload = _slow_normalize(question) + "\x1f" + "\x1e".join(opts)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@given(st.text(), st.lists(st.text(), min_size=2, max_size=5))
def test_one_pass_hash_matches_the_definition(question: str, opts: list[str]) -> None:
    options = {chr(65 + i): o for i, o in enumerate(opts)}
    assert text_hash(question, options) == _reference_hash(question, options)


@given(st.text(alphabet=st.characters(max_codepoint=127)), st.lists(st.text(alphabet=st.characters(max_codepoint=127)), min_size=2, max_size=5))
def test_one_pass_hash_matches_the_definition_ascii(question: str, opts: list[str]) -> None:
    options = {chr(65 + i): o for i, o in enumerate(opts)}
    assert text_hash(question, options) == _reference_hash(question, options)


@given(st.dictionaries(st.sampled_from("ABCDEFGHIJ") | st.text(max_size=3), st.text(), max_size=8))
def test_options_json_is_json_dumps(options: dict[str, str]) -> None:
    import json

    from curation.store.questions import options_json

    assert options_json(options) == json.dumps(options, ensure_ascii=False)
    assert json.loads(options_json(options)) == options
