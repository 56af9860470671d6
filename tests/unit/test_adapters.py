"""Every benchmark adapter on a record in its public format (synthetic where the
benchmark's licence forbids shipping text) and on real rows of the bundled sample."""

from __future__ import annotations

import json
from typing import Any

import pytest

from curation import adapters, licenses
from curation.adapters import Context
from curation.errors import InputError

pytestmark = pytest.mark.unit


def conv(name: str, raw: dict[str, Any], **ctx: Any) -> adapters.Converted:
    adapter = adapters.ADAPTERS[name]
    info = adapter.prepare([raw]) if adapter.prepare else {}
    return adapter.convert(raw, Context(source="test", row=0, file_info=info, **ctx))


def test_detect_each_format() -> None:
    cases = {
        "canonical": {"id": "x", "dataset_name": "medqa", "question": "q", "options": {"A": "a"}, "answer_idx": "A"},
        "biomed_r1": {"id": "x", "question": "q", "options": '{"A": "a"}', "answer_idx": "A", "dataset_name": "NEJM"},
        "medqa": {"question": "q", "options": {"A": "a"}, "answer_idx": "A", "answer": "a", "meta_info": "step1"},
        "medmcqa": {"id": "u", "question": "q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 1},
        "pubmedqa": {"QUESTION": "q", "CONTEXTS": ["c"], "final_decision": "yes"},
        "mmlu_pro": {"question_id": 1, "question": "q", "options": ["a"], "answer": "A", "category": "health"},
        "gpqa": {"Question": "q", "Correct Answer": "a", "Incorrect Answer 1": "b"},
        "medbullets": {"question": "q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "answer_idx": "A"},
        "medxpertqa": {"id": "Text-1", "question": "q", "options": {}, "label": "A", "question_type": "Reasoning"},
        "hle": {"id": "h", "question": "q", "answer": "A", "answer_type": "multipleChoice", "category": "Biology/Medicine"},
    }
    for name, raw in cases.items():
        assert adapters.detect(raw).name == adapters.ADAPTERS[name].name, name


def test_ambiguous_format_asks_for_benchmark() -> None:
    with pytest.raises(InputError, match="pass --benchmark"):
        adapters.detect({"question": "q", "foo": 1})


def test_canonical_real_rows(sample_rows: list[dict[str, Any]]) -> None:
    for raw in sample_rows[::97]:
        q = conv("canonical", raw).question
        assert q is not None and q.id == raw["id"] and q.options == raw["options"]
        assert q.split == "test" and q.answer == raw["answer"]


def test_medqa_4_and_5_options() -> None:
    raw = {"question": "A 45-year-old man ... most likely diagnosis?", "answer": "Gout",
           "options": {"A": "Gout", "B": "Pseudogout", "C": "Septic arthritis", "D": "RA"},
           "meta_info": "step2&3", "answer_idx": "A"}
    q4 = conv("medqa", raw).question
    assert q4 is not None and q4.dataset_name == "medqa" and q4.meta["usmle_step"] == "step2&3"
    raw5 = {**raw, "options": {**raw["options"], "E": "Lyme"}}
    q5 = conv("medqa", raw5).question
    assert q5 is not None and q5.dataset_name == "medqa_op5" and len(q5.options) == 5
    assert q4.id != q5.id


def test_medmcqa_cop_base_detected_per_file() -> None:
    one_based = [{"question": f"q{i}", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": c}
                 for i, c in enumerate([1, 4, 2])]
    info = adapters.prepare_medmcqa(one_based)
    assert info["cop_base"] == 1
    q = adapters.convert_medmcqa(one_based[1], Context("t", 1, file_info=info)).question
    assert q is not None and q.answer_idx == "D" and q.answer == "d"
    zero_based = [{**r, "cop": c} for r, c in zip(one_based, [0, 3, 2], strict=True)]
    info0 = adapters.prepare_medmcqa(zero_based)
    q0 = adapters.convert_medmcqa(zero_based[0], Context("t", 0, file_info=info0)).question
    assert q0 is not None and q0.answer_idx == "A"
    unknown = adapters.prepare_medmcqa([{**one_based[0], "cop": 2}])
    with pytest.raises(InputError, match="cannot tell whether cop is 0-based"):
        adapters.convert_medmcqa({**one_based[0], "cop": 2}, Context("t", 0, file_info=unknown))
    test_split = adapters.convert_medmcqa({**one_based[0], "cop": -1}, Context("t", 0, file_info=info))
    assert test_split.question is None and "no answer key" in (test_split.skip_reason or "")


def test_pubmedqa_ori_pqal_and_hf(sample_rows: list[dict[str, Any]]) -> None:
    real = next(r for r in sample_rows if r["dataset_name"] == "pubmedqa")
    contexts = real["question"].split("\n")[:-1]
    raw = {"_key": real["meta"]["orig_id"], "QUESTION": real["meta"]["question_stem"],
           "CONTEXTS": contexts, "final_decision": real["options"][real["answer_idx"]], "YEAR": "2001"}
    q = conv("pubmedqa", raw).question
    assert q is not None and q.id == real["id"] and q.question == real["question"]
    assert q.options == {"A": "yes", "B": "no", "C": "maybe"} and q.answer_idx == real["answer_idx"]
    hf = {"pubid": int(real["meta"]["orig_id"]), "question": real["meta"]["question_stem"],
          "context": {"contexts": contexts, "labels": []}, "final_decision": raw["final_decision"]}
    q2 = conv("pubmedqa_hf", hf).question
    assert q2 is not None and q2.text_hash == q.text_hash and q2.id == q.id


def test_mmlu_pro_keeps_health_and_biology() -> None:
    raw = {"question_id": 7, "question": "Which vitamin?", "options": ["A1", "B12", "C", "N/A"],
           "answer": "B", "answer_index": 1, "category": "health", "src": "ori_mmlu-nutrition"}
    q = conv("mmlu_pro", raw).question
    assert q is not None and q.options == {"A": "A1", "B": "B12", "C": "C"} and q.answer == "B12"
    skipped = conv("mmlu_pro", {**raw, "category": "law"})
    assert skipped.question is None and "law" in (skipped.skip_reason or "")


def test_gpqa_shuffle_is_deterministic_and_keeps_answer() -> None:
    raw = {"Question": "Synthetic question about a pathway?", "Correct Answer": "right",
           "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3",
           "Record ID": "recABC", "High-level domain": "Biology"}
    a, b = conv("gpqa", raw).question, conv("gpqa", dict(raw)).question
    assert a is not None and b is not None and a == b
    assert a.options[a.answer_idx] == "right" and a.dataset_name == "gpqa"
    letters = {conv("gpqa", {**raw, "Record ID": f"r{i}"}).question.answer_idx for i in range(40)}  # type: ignore[union-attr]
    assert len(letters) > 1  # the correct answer is not always in the same place


def test_medbullets_op4_op5() -> None:
    raw = {"question": "Synthetic vignette?", "opa": "a", "opb": "b", "opc": "c", "opd": "d",
           "ope": "", "answer_idx": "C", "answer": "c", "explanation": "...", "link": "http://x"}
    q4 = conv("medbullets", raw).question
    assert q4 is not None and q4.dataset_name == "medbullets_op4" and q4.answer == "c"
    q5 = conv("medbullets", {**raw, "ope": "e", "answer_idx": "E", "answer": "e"}).question
    assert q5 is not None and q5.dataset_name == "medbullets_op5"


def test_medxpertqa_strips_answer_choices(sample_rows: list[dict[str, Any]]) -> None:
    real = next(r for r in sample_rows if r["dataset_name"] == "medxpertqa")
    block = "\nAnswer Choices: " + " ".join(f"({k}) {v}" for k, v in real["options"].items())
    raw = {"id": real["meta"]["orig_id"], "question": real["question"] + block,
           "options": real["options"], "label": real["answer_idx"],
           "question_type": real["meta"]["question_type"], "medical_task": "x", "body_system": "y"}
    q = conv("medxpertqa", raw).question
    assert q is not None and q.id == real["id"] and q.question == real["question"]
    assert q.meta["question_type"] == real["meta"]["question_type"]


def test_hle_multiple_choice_only() -> None:
    raw = {"id": "abc", "question": "Synthetic stem?\n\nAnswer Choices:\nA. one\nB. two\nC. three",
           "answer": "B", "answer_type": "multipleChoice", "category": "Biology/Medicine", "image": ""}
    q = conv("hle", raw).question
    assert q is not None and q.options == {"A": "one", "B": "two", "C": "three"} and q.dataset_name == "hle_biomed"
    assert conv("hle", {**raw, "answer_type": "exactMatch"}).question is None
    assert conv("hle", {**raw, "category": "Math"}).question is None
    assert conv("hle", {**raw, "image": "data:image/png;base64,xx"}).question is None


def test_biomed_r1_eval_schema_and_predictions() -> None:
    raw = {"id": "17", "question": "Synthetic case?", "answer": "beta",
           "options": json.dumps({"A": "alpha", "B": "beta"}), "answer_idx": "B",
           "dataset_name": "NEJM", "reasoning_prob": 0.83, "is_reasoning": True, "reasoning_threshold": 0.5}
    c = conv("biomed_r1", raw)
    assert c.question is not None and c.question.dataset_name == "nejm" and c.question.id == "nejm-17"
    assert c.prediction == pytest.approx(0.83) and c.threshold == 0.5
    lancet = adapters.ADAPTERS["lancet"].convert({**raw, "dataset_name": None}, Context("t", 0, dataset_name="lancet"))
    assert lancet.question is not None and lancet.question.dataset_name == "lancet"
    with pytest.raises(InputError, match="options is not valid JSON"):
        conv("biomed_r1", {**raw, "options": "{not json"})
    with pytest.raises(InputError, match="reasoning_prob 1.5"):
        conv("biomed_r1", {**raw, "reasoning_prob": 1.5})


def test_dataset_names_from_other_releases() -> None:
    assert adapters.canonical_dataset_name("MedQA_USLME_test") == "medqa"
    assert adapters.canonical_dataset_name("MMLU-Pro_Medical_test") == "mmlu_pro_health_biology"
    assert adapters.canonical_dataset_name("GPQA_Medical_test") == "gpqa"
    assert adapters.canonical_dataset_name("MedBullets_op5") == "medbullets_op5"
    assert adapters.canonical_dataset_name("HLE_biomed") == "hle_biomed"
    assert licenses.is_restricted("gpqa") and licenses.is_restricted("nejm") and not licenses.is_restricted("medqa")
    # one rule, any case: BioMed-R1-Eval's own config names are restricted too
    assert licenses.is_restricted("GPQA_Medical_test") and licenses.is_restricted("NEJM")
    assert licenses.restriction_note("hle_biomed") and licenses.license_of("MedQA") == "mit"


def test_medqa_op5_is_its_own_benchmark() -> None:
    """MedQA 5-option never merges into 4-option, whichever way a file spells it."""
    from curation import benchmarks

    for name in ("medqa_op5", "MedQA_op5", "medqa_5_options", "MedQA-USMLE-5-options"):
        assert adapters.canonical_dataset_name(name) == "medqa_op5", name
    for name in ("medqa", "MedQA_USLME_test", "medqa_op4", "medqa_4_options"):
        assert adapters.canonical_dataset_name(name) == "medqa", name
    assert benchmarks.release_config_name("medqa_op5") == "medqa_op5"  # not in the paper: its own name
    assert benchmarks.release_config_name("medqa") == "medqa"


def test_release_config_names_map_back() -> None:
    """Every internal name -> BioMed-R1-Eval config name -> the same internal name (ingesting
    the paper's files or our releases gives the same benchmarks)."""
    from curation import benchmarks

    assert sorted(benchmarks.RELEASE_CONFIGS.values()) == sorted([
        "GPQA_Medical_test", "Lancet", "MedXpertQA", "NEJM", "hle_biomed", "medbullets_op4", "medbullets_op5",
        "medmcqa", "medqa", "mmlu_health_biology", "pubmedqa"])
    for internal, config in benchmarks.RELEASE_CONFIGS.items():
        assert adapters.canonical_dataset_name(internal) == internal
        assert adapters.canonical_dataset_name(config) == internal, config
    assert benchmarks.release_config_name("my_bench") == "my_bench"


def test_traces_are_kept_in_meta() -> None:
    """BioMed-R1-Eval's adversarial traces and BioMed-R1-Train's `reasoning` reach `meta` for
    every adapter whose source can carry them (biomed_r1, lancet, nejm, canonical)."""
    traces = {"adversarial_trace_0": "Synthetic trace zero.", "adversarial_trace_1": "Synthetic trace one.",
              "adversarial_trace_2": None, "reasoning": "Step 1: synthetic reasoning."}
    raw = {"id": "7", "question": "Synthetic question?", "options": '{"A": "x", "B": "y"}', "answer_idx": "A",
           "answer": "x", "dataset_name": "medqa", "reasoning_prob": 0.4, **traces}
    for name in ("biomed_r1", "lancet", "nejm"):
        adapter = adapters.ADAPTERS[name]
        q = adapter.convert(raw, Context("t", 0, dataset_name=adapter.dataset_name)).question
        assert q is not None and {k: q.meta[k] for k in traces} == traces, name
    canon = {**raw, "options": {"A": "x", "B": "y"}, "id": "medqa-7"}
    q = conv("canonical", canon).question
    assert q is not None and {k: q.meta[k] for k in traces} == traces
