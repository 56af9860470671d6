"""Decontamination: exact and near duplicates caught, different questions kept, invariances."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation import decontam as d
from curation.errors import InputError
from curation.ingest import sample_path
from curation.schema import normalize_text

pytestmark = pytest.mark.unit

# Real pairs from the bundled data (MedMCQA training pool vs the evaluation sample).
EVAL = [
    {"id": "e-heart", "question": "Which one of the following drugs are not used in hea failure?",
     "options": {"A": "Metoprolol", "B": "Nesiritide", "C": "Trimetazidine", "D": "Sacubitril"}},
    {"id": "e-sinus", "question": "The frontal paranasal sinus drains into the:",
     "options": {"A": "Superior meatus", "B": "Middle meatus", "C": "Inferior meatus", "D": "Spheno-ethmoidal recess"}},
    {"id": "e-sprue", "question": "The function of a sprue is to",
     "options": {"A": "Form an opening for molten metal to enter the mold", "B": "Help polish cast restorations",
                 "C": "Eliminate air bubbles on the wax pattern", "D": "Reproduce fine detail"}},
    {"id": "e-vignette", "question": (
        "A 45-year-old man presents with crushing substernal chest pain radiating to the left arm for two "
        "hours. ECG shows ST elevation in leads II, III and aVF. Which coronary artery is most likely occluded?"),
     "options": {"A": "Right coronary artery", "B": "Left anterior descending artery",
                 "C": "Left circumflex artery", "D": "Left main coronary artery"}},
]


def _train(id_: str, question: str, options: dict[str, str]) -> dict[str, object]:
    return {"id": id_, "question": question, "options": options}


PLANTED = [
    # exact after normalization: options reordered, case, whitespace and punctuation changed
    _train("t-exact", "  the FUNCTION of a sprue   is to:\n", {
        "A": "Reproduce fine detail", "B": "Eliminate air bubbles on the wax pattern.",
        "C": "help polish cast restorations", "D": "Form an opening for molten metal to enter the mold"}),
    # near: reworded stem (real MedMCQA pair), options shuffled
    _train("t-near-reworded", "Which of the following is not used in hea failure?", {
        "A": "Metoprolol", "B": "Trimetazidine", "C": "Sacubitril", "D": "Nesiritide"}),
    # near: a vignette with a few words changed, extra whitespace, options reordered
    _train("t-near-vignette", (
        "A 45 year old  man presents with severe substernal chest pain radiating to the left arm for 2 "
        "hours.  ECG shows ST elevation in leads II, III and aVF. Which coronary artery is most likely blocked?"), {
        "A": "Left circumflex artery", "B": "Right coronary artery", "C": "Left main coronary artery",
        "D": "Left anterior descending artery"}),
    # different question sharing the option list (Jaccard ~0.47 with e-sinus): kept
    _train("t-diff-sinus", "The maxillary sinus drains into the", {
        "A": "Middle meatus", "B": "Inferior meatus", "C": "Superior meatus", "D": "Sphenoethmoidal recess"}),
    # unrelated: kept
    _train("t-diff", "Deficiency of which vitamin causes scurvy?", {
        "A": "Vitamin A", "B": "Vitamin C", "C": "Vitamin D", "D": "Vitamin K"}),
]


def test_planted_duplicates_caught_and_different_questions_kept() -> None:
    res = d.decontaminate(PLANTED, EVAL)
    removed = {m.id: m for m in res.removed}
    assert set(removed) == {"t-exact", "t-near-reworded", "t-near-vignette"}
    assert removed["t-exact"].kind == "exact" and removed["t-exact"].match_id == "e-sprue"
    assert removed["t-exact"].jaccard == 1.0
    assert removed["t-near-reworded"].kind == "near" and removed["t-near-reworded"].match_id == "e-heart"
    assert removed["t-near-vignette"].match_id == "e-vignette"
    assert all(m.jaccard >= d.JACCARD_THRESHOLD for m in res.removed)
    assert res.kept == ["t-diff-sinus", "t-diff"]
    s = res.summary()
    assert (s["n_candidates"], s["n_exact"], s["n_near"], s["n_kept"]) == (5, 1, 2, 2)


def test_threshold_boundary_is_documented_example() -> None:
    sinus_eval = d.as_item(EVAL[1])
    sinus_train = d.as_item(PLANTED[3])
    j = d.jaccard(sinus_eval, sinus_train)
    assert 0.4 < j < d.JACCARD_THRESHOLD  # shares the options, different question
    heart = d.jaccard(d.as_item(EVAL[0]), d.as_item(PLANTED[1]))
    assert d.JACCARD_THRESHOLD <= heart < 0.7


def test_option_order_case_and_whitespace_invariance() -> None:
    base = d.as_item(EVAL[3])
    rng = random.Random(3)
    for _ in range(5):
        opts = list(base.options)
        rng.shuffle(opts)
        variant = d.Item("v", "  " + base.question.upper().replace(" ", "   \t") + " ", tuple(o.lower() + " " for o in opts))
        assert d.jaccard(base, variant) == 1.0
        res = d.decontaminate([variant], [base])
        assert res.removed[0].kind == "exact"


def test_result_does_not_depend_on_reference_order() -> None:
    a = d.decontaminate(PLANTED, EVAL)
    b = d.decontaminate(PLANTED, list(reversed(EVAL)))
    assert [m.to_dict() for m in a.removed] == [m.to_dict() for m in b.removed]
    assert a.kept == b.kept


def test_empty_inputs_and_bad_threshold() -> None:
    assert d.decontaminate([], EVAL).kept == []
    res = d.decontaminate(PLANTED, [])
    assert res.kept == [p["id"] for p in PLANTED] and res.removed == []
    with pytest.raises(InputError):
        d.decontaminate(PLANTED, EVAL, threshold=0)
    with pytest.raises(InputError):
        d.as_item({"id": "x", "question": "q", "options": "{not json"})


def test_texts_without_words() -> None:
    res = d.decontaminate([_train("t", "???", {"A": "!", "B": "?"})], [_train("e", "...", {"A": "-", "B": "+"})])
    # both normalize to empty question and options: an exact match by definition
    assert res.removed and res.removed[0].kind == "exact"


def test_permutations_and_signatures_match_datasketch() -> None:
    from datasketch import MinHash

    a, b = MinHash(num_perm=d.NUM_PERM, seed=d.SEED, scheme="affine32").permutations
    a2, b2 = d._permutations(d.NUM_PERM, d.SEED)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    items = [d.as_item(r) for r in EVAL]
    sh = d._shingle([i.question for i in items], [i.options for i in items])
    sig = d.signatures(sh)
    for i in range(len(items)):
        m = MinHash(num_perm=d.NUM_PERM, seed=d.SEED, scheme="affine32", hashfunc=lambda x: int(x) & 0xFFFFFFFF)
        m.update_batch([int(x) for x in sh.doc(i)])
        assert np.array_equal(m.hashvalues, sig[i])


def _load(name: str) -> list[dict[str, object]]:
    with sample_path(name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_banding_finds_the_same_candidates_as_datasketch_lsh() -> None:
    from datasketch import MinHash, MinHashLSH

    ev = _load("benchmarks_sample.jsonl")[:600]
    tr = _load("train_pool_sample.jsonl")[:600]
    items = [d.as_item(r) for r in tr + ev]
    sh = d._shingle([i.question for i in items], [i.options for i in items])
    sig = d.signatures(sh)
    nc = len(tr)
    ok = sh.ends > sh.starts
    ours = {tuple(p) for p in d._candidate_pairs(sig[:nc], sig[nc:], ok[:nc], ok[nc:]).tolist()}
    lsh = MinHashLSH(num_perm=d.NUM_PERM, params=(d.LSH_BANDS, d.LSH_ROWS))
    for j in range(len(ev)):
        lsh.insert(j, MinHash(num_perm=d.NUM_PERM, hashvalues=sig[nc + j], scheme="affine32", seed=d.SEED))
    theirs = set()
    for i in range(nc):
        for j in lsh.query(MinHash(num_perm=d.NUM_PERM, hashvalues=sig[i], scheme="affine32", seed=d.SEED)):
            theirs.add((i, j))
    assert ours == theirs
    assert ours  # the real data has candidate pairs


def test_real_training_pool_has_known_contamination() -> None:
    """The bundled MedMCQA pool holds exact and near copies of evaluation questions."""
    res = d.decontaminate(_load("train_pool_sample.jsonl"), _load("benchmarks_sample.jsonl"))
    s = res.summary()
    assert s["n_exact"] >= 1 and s["n_near"] >= 10
    assert s["n_removed"] < 0.02 * s["n_candidates"]  # most of the pool is clean


_text = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "Z", "S", "M", "Cc")),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_text, max_size=30))
def test_normalize_many_equals_normalize_text(texts: list[str]) -> None:
    assert d.normalize_many(texts) == [normalize_text(t) for t in texts]


def test_normalize_many_tricky_characters() -> None:
    texts = ["ﬁ ＡＢＣ", "Straße", "İstanbul", "x\x1cy\x1fz", "a\u00a0b\u2028c", "①②", "e\u0301", "_a_", "ǅ", "\u0345"]
    assert d.normalize_many(texts) == [normalize_text(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(max_codepoint=127), max_size=40), max_size=20))
def test_ascii_shortcut_equals_normalize_text(texts: list[str]) -> None:
    assert d.normalize_many(texts) == [normalize_text(t) for t in texts]


def test_normalize_many_on_the_bundled_questions() -> None:
    rows = _load("benchmarks_sample.jsonl")[:800]
    texts = [str(r["question"]) for r in rows] + [str(v) for r in rows for v in dict(r["options"]).values()]  # type: ignore[call-overload]
    assert d.normalize_many(texts) == [normalize_text(t) for t in texts]
