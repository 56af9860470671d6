"""Answer extraction: a table of real-looking model outputs, and property tests over generated
outputs (templates x letters x option texts x noise)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.answers import extract, parse_answer
from curation.schema import normalize_text

pytestmark = pytest.mark.unit

OPTS = {"A": "Hypokalemia", "B": "Heparin", "C": "Hyperkalemia", "D": "Alteplase"}

# (model output, letter read; None = not scored as a letter: unparsed, invalid or empty)
TABLE = [
    # the formats the issue lists
    ("B", "B"), ("(b)", "B"), ("Answer: B", "B"), ("B.", "B"), ("Heparin", "B"), ("  heparin ", "B"),
    ("The answer is B", "B"), ("The answer is B.", "B"), ("<answer> B </answer>", "B"), ("<answer>B</answer>", "B"),
    ("\\boxed{B}", "B"), ("$\\boxed{B}$", "B"), ("$\\boxed{\\text{B}}$", "B"), ("**B**", "B"), ("**B. Heparin**", "B"),
    ("B) Heparin, because it acts within minutes and its effect can be reversed with protamine.", "B"),
    ("B) anticoagulation is needed first", "B"),
    # common model outputs
    ("Final answer: (C)", "C"), ("the correct option is D", "D"), ("Answer: C. Hyperkalemia", "C"),
    ("The correct answer is: (C) Hyperkalemia", "C"), ("ANSWER: c", "C"), ("answer - d", "D"),
    ("Option B", "B"), ("[D]", "D"), ("D)", "D"), ("d.", "D"), ("C: Hyperkalemia", "C"),
    ("The answer is hyperkalemia.", "C"), ("The most likely answer is C because the T waves are peaked.", "C"),
    ("I would choose D.", "D"), ("Option B is correct.", "B"), ("Therefore, C.", "C"), ("So it's C.", "C"),
    ("B\n\nExplanation: heparin acts immediately.", "B"),
    ("Let's think step by step.\nPeaked T waves suggest a potassium problem.\n\nC", "C"),
    ("<think>A fits the low potassium, B is a drug, maybe D?</think>\n<answer>C</answer>", "C"),
    ("Option A is unlikely. B is a drug. D is a drug too. The answer is C.", "C"),
    ("The answer is not A. Considering the ECG, the answer is (C).", "C"),
    ("First I thought the answer is A, but the final answer is C", "C"),
    ("Reasoning: ... \\boxed{A} was my first guess; correcting: \\boxed{C}", "C"),
    ("<answer>A</answer> wait, no. <answer>C) Hyperkalemia</answer>", "C"),
    ("The answer is C because of the peaked T waves.", "C"),
    ("Answer: (c) hyperkalemia, given the ECG", "C"),
    # unparsed: ambiguous, contradictory, a list, English not letters, nothing
    ("A or B", None), ("The answer is A or C", None), ("B and C", None), ("C. Heparin", None),
    ("The answer is a potassium disorder", None), ("A) Hypokalemia\nB) Heparin\nC) Hyperkalemia\nD) Alteplase", None),
    ("I am not sure.", None), ("", None), ("   ", None), (None, None), ("A 45-year-old man", None),
    ("The answer is not A", None), ("<answer></answer>", None),
    # invalid: a letter beyond the options
    ("E", None), ("The answer is E.", None), ("\\boxed{F}", None),
]


@pytest.mark.parametrize(("output", "letter"), TABLE)
def test_real_looking_outputs(output: str | None, letter: str | None) -> None:
    got = extract(output, OPTS)
    assert (got.letter if got.status == "ok" else None) == letter, got
    assert parse_answer(output, OPTS) == letter


def test_statuses_say_why() -> None:
    assert extract("E", OPTS).status == "invalid" and extract("E", OPTS).letter == "E"
    assert extract("A or B", OPTS).status == "unparsed"
    assert extract("C. Heparin", OPTS).status == "unparsed"
    assert extract("", OPTS).status == "empty" and extract(None, OPTS).status == "empty"
    assert extract("The answer is B", OPTS).rule == "conclusion phrase"
    assert extract("<answer>B</answer>", OPTS).rule.startswith("<answer> tag")


def test_letter_only_option_text_never_shadows_the_letters() -> None:
    swapped = {"A": "B", "B": "A", "C": "Both", "D": "Neither"}
    assert parse_answer("B", swapped) == "B"
    assert parse_answer("(a)", swapped) == "A"
    assert parse_answer("The answer is B", swapped) == "B"
    assert parse_answer("Both", swapped) == "C"
    letters = {"A": "E", "B": "F", "C": "G", "D": "H"}
    assert extract("E", letters).status == "invalid"  # a letter, not the text of option A


def test_option_text_must_be_unambiguous() -> None:
    dup = {"A": "Heparin", "B": "heparin.", "C": "Warfarin", "D": "Aspirin"}
    assert parse_answer("Heparin", dup) is None  # two options have this text after normalisation
    assert parse_answer("Warfarin", dup) == "C"


def test_yes_no_maybe_options() -> None:
    pqa = {"A": "yes", "B": "no", "C": "maybe"}
    assert parse_answer("yes", pqa) == "A"
    assert parse_answer("The answer is maybe.", pqa) == "C"
    assert parse_answer("B) no, the trial was negative", pqa) == "B"
    assert parse_answer("A) no", pqa) is None  # letter and text disagree
    assert parse_answer("D", pqa) is None


# -- property tests ------------------------------------------------------------------------

WORDS = ["heparin", "warfarin", "aspirin", "hyperkalemia", "hypokalemia", "vitamin", "deficiency", "acute",
         "chronic", "renal", "failure", "artery", "left", "right", "coronary", "streptococcus", "pyogenes",
         "yes", "no", "maybe", "none", "of", "the", "above", "type", "2", "17", "mg", "beta", "blocker"]
TEXT = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join).map(lambda s: s[0].upper() + s[1:]),
    st.sampled_from(["B", "C", "E", "I", "X"]),  # single-letter option texts
)

# templates that state the answer as a letter; {L} the letter, {l} lower case, {T} the option's text
LETTER_TEMPLATES = [
    "{L}", "({l})", "{L}.", "{L})", "[{L}]", "**{L}**", "Answer: {L}", "answer: {l}", "The answer is {L}",
    "The answer is ({L}).", "the correct option is {L}", "Final answer: ({L})", "Answer: {L}. {T}", "{L}) {T}",
    "{L}) {T} because it fits the presentation best.", "<answer> {L} </answer>", "<answer>{L}</answer>",
    "\\boxed{{{L}}}", "$\\boxed{{\\text{{{L}}}}}$", "The answer is {L} because of the history.",
    "{L}\n\nExplanation: it fits.", "**Final Answer:** {L}", "Option {L} is correct.", "I choose {L}.",
]
CONCLUDING = [t for t in LETTER_TEMPLATES if any(m in t.lower() for m in ("answer", "boxed", "option", "choose"))]
COT = ["Let's consider each option. {O1} seems plausible, but {O2} fits less well. ",
       "Option {O1} is unlikely.\nOption ({O2}) is tempting.\n\n", "<think>Maybe {O1}? Or {O2}?</think>\n"]


@st.composite
def question(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    n = draw(st.integers(min_value=3, max_value=10))
    letters = "ABCDEFGHIJ"[:n]
    texts = draw(st.lists(TEXT, min_size=n, max_size=n, unique_by=normalize_text))
    return dict(zip(letters, texts, strict=True)), draw(st.sampled_from(letters))


def _noisy_case(text: str, draw: st.DrawFn) -> str:
    mode = draw(st.sampled_from(["same", "upper", "lower"]))
    return text.upper() if mode == "upper" else text.lower() if mode == "lower" else text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=question(), template=st.sampled_from(LETTER_TEMPLATES), data=st.data())
def test_letter_templates_are_read(q: tuple[dict[str, str], str], template: str, data: st.DataObject) -> None:
    options, letter = q
    out = template.format(L=letter, l=letter.lower(), T=options[letter])
    out = data.draw(st.sampled_from(["", " ", "\n"])) + out + data.draw(st.sampled_from(["", " ", "\n\n"]))
    assert parse_answer(out, options) == letter, out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=question(), template=st.sampled_from(CONCLUDING), cot=st.sampled_from(COT), data=st.data())
def test_chain_of_thought_then_conclusion(q: tuple[dict[str, str], str], template: str, cot: str,
                                          data: st.DataObject) -> None:
    """Reasoning that mentions other letters first, then a conclusion: the conclusion is read."""
    options, letter = q
    others = [k for k in options if k != letter]
    o1, o2 = data.draw(st.sampled_from(others)), data.draw(st.sampled_from(others))
    out = cot.format(O1=o1, O2=o2) + template.format(L=letter, l=letter.lower(), T=options[letter])
    assert parse_answer(out, options) == letter, out


@settings(max_examples=300, deadline=None)
@given(q=question(), data=st.data())
def test_option_text_is_read_when_not_a_letter(q: tuple[dict[str, str], str], data: st.DataObject) -> None:
    options, letter = q
    text = options[letter]
    template = data.draw(st.sampled_from(["{T}", "The answer is {T}.", "Answer: {T}", "<answer>{T}</answer>"]))
    out = template.format(T=_noisy_case(text, data.draw))
    single = len(text) == 1 and text.isalpha()
    expected = text.upper() if single else letter  # a single-letter text is read as that letter
    got = extract(out, options)
    if single and text.upper() not in options:
        assert got.status == "invalid", out
    else:
        assert (got.letter if got.status == "ok" else None) == expected, out


@settings(max_examples=300, deadline=None)
@given(q=question(), data=st.data())
def test_two_letters_are_never_a_confident_answer(q: tuple[dict[str, str], str], data: st.DataObject) -> None:
    options, letter = q
    other = data.draw(st.sampled_from([k for k in options if k != letter]))
    joiner = data.draw(st.sampled_from([" or ", " and ", ", ", "/"]))
    prefix = data.draw(st.sampled_from(["", "The answer is ", "Answer: ", "<answer>"]))
    out = f"{prefix}{letter}{joiner}{other}"
    assert extract(out, options).status == "unparsed", out


@settings(max_examples=300, deadline=None)
@given(q=question(), extra=st.sampled_from("KLMNOPQRSTUVWXYZ"), data=st.data())
def test_letters_beyond_the_options_are_invalid(q: tuple[dict[str, str], str], extra: str, data: st.DataObject) -> None:
    options, _ = q
    template = data.draw(st.sampled_from(["{L}", "({L})", "Answer: {L}", "The answer is {L}.", "\\boxed{{{L}}}"]))
    got = extract(template.format(L=extra), options)
    assert got.status == "invalid" and got.letter == extra
