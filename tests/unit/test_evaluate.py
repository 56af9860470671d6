"""Stratified scoring on a hand-computable fixture: known accuracies, intervals, gaps, the
adversarial report, scopes, aliases, and every missing/unparsed/unknown id listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from curation import evaluate as ev
from curation.cli.release import render_rich
from curation.errors import InputError
from curation.services import evaluate as sev

pytestmark = pytest.mark.unit

OPTS = {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "Alteplase"}


def _q(qid: str, bench: str, is_reasoning: bool | None, answer: str = "A", **extra: object) -> dict[str, object]:
    return {"id": qid, "dataset_name": bench, "options": json.dumps(OPTS), "answer_idx": answer,
            "is_reasoning": is_reasoning, **extra}


def _fixture() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Benchmark `a`: reasoning 6/10 correct, knowledge 9/10. Benchmark `b`: reasoning 5/5,
    knowledge 1 missing, 1 unparsed, 1 invalid, 2 wrong (0/4 scored)."""
    qs, ans = [], []
    for i in range(10):
        qs.append(_q(f"a-r{i}", "a", True))
        ans.append({"id": f"a-r{i}", "answer": "The answer is A." if i < 6 else "<answer>B</answer>"})
    for i in range(10):
        qs.append(_q(f"a-k{i}", "a", False))
        forms = ["A", "(a)", "A.", "aspirin", "A. Aspirin", "\\boxed{A}", "Answer: A", "**A**", "[A]"]
        ans.append({"id": f"a-k{i}", "answer": forms[i] if i < 9 else "Heparin"})
    for i in range(5):
        qs.append(_q(f"b-r{i}", "b", True, answer="C"))
        ans.append({"id": f"b-r{i}", "answer": "C) Warfarin, because the INR is the target"})
    for i in range(5):
        qs.append(_q(f"b-k{i}", "b", False, answer="D"))
        if i == 0:
            continue  # missing
        ans.append({"id": f"b-k{i}", "answer": {1: "A or B", 2: "Z"}.get(i, "B")})
    ans.append({"id": "not-in-release", "answer": "A"})
    return qs, ans


def _row(report: dict, setting: str, bench: str) -> dict:
    return next(r for r in report["rows"] if r["setting"] == setting and r["benchmark"] == bench)


def test_known_accuracies_gaps_and_listed_ids() -> None:
    qs, ans = _fixture()
    rep = ev.score(qs, ans)
    a = _row(rep, "standard", "a")
    assert (a["reasoning"]["correct"], a["reasoning"]["n"]) == (6, 10)
    assert (a["knowledge"]["correct"], a["knowledge"]["n"]) == (9, 10)
    assert a["gap"]["value"] == pytest.approx(0.3)
    assert a["overall"]["accuracy"] == pytest.approx(15 / 20)
    b = _row(rep, "standard", "b")
    assert b["reasoning"]["accuracy"] == 1.0
    # the missing answer is not scored; unparsed and invalid answers are scored wrong and listed
    assert (b["knowledge"]["correct"], b["knowledge"]["n"], b["knowledge"]["missing"]) == (0, 4, 1)
    assert rep["counts"]["standard"] == {"n_scored": 29, "n_correct": 20, "n_wrong": 7, "n_unparsed": 1,
                                         "n_invalid": 1, "n_missing": 1, "n_not_applicable": 0}
    assert rep["ids"]["standard"] == {"missing": ["b-k0"], "unparsed": ["b-k1"], "invalid": ["b-k2"]}
    assert rep["ids"]["unknown"] == ["not-in-release"]
    all_ = _row(rep, "standard", "all")
    assert all_["reasoning"]["accuracy"] == pytest.approx(11 / 15)
    assert all_["knowledge"]["accuracy"] == pytest.approx(9 / 14)
    assert rep["settings"] == ["standard"] and rep["adversarial"] == []


def test_wilson_and_newcombe_intervals_match_statsmodels() -> None:
    qs, ans = _fixture()
    rep = ev.score(qs, ans, alpha=0.1)
    a = _row(rep, "standard", "a")
    assert a["reasoning"]["ci"] == pytest.approx(list(proportion_confint(6, 10, alpha=0.1, method="wilson")))
    lo, hi = confint_proportions_2indep(9, 10, 6, 10, method="newcomb", compare="diff", alpha=0.1)
    assert a["gap"]["ci"] == pytest.approx([lo, hi])
    # never zero-width at 0 % or 100 %
    b = _row(rep, "standard", "b")
    assert b["reasoning"]["ci"][0] < 1.0 == b["reasoning"]["ci"][1]
    assert b["knowledge"]["ci"][0] == 0.0 < b["knowledge"]["ci"][1]


def test_paired_interval() -> None:
    # phi is 0 when a*d - b*c lies in [0, n/2]: the interval is then Newcombe's for two proportions on n each
    lo, hi = ev.newcombe_paired(3, 4, 2, 1, alpha=0.05)  # ad - bc = -5 < 0: phi < 0, wider than independent
    ilo, ihi = confint_proportions_2indep(7, 10, 5, 10, method="newcomb", compare="diff")
    assert lo < 0.2 < hi and (hi - lo) > (ihi - ilo)
    lo, hi = ev.newcombe_paired(5, 2, 2, 5, alpha=0.05)  # ad - bc = 21 > n/2: positive phi, narrower
    ilo, ihi = confint_proportions_2indep(7, 14, 7, 14, method="newcomb", compare="diff")
    assert lo < 0 < hi and (hi - lo) < (ihi - ilo)
    lo, hi = ev.newcombe_paired(1, 0, 0, 1)  # ad - bc = 1 <= n/2 = 1: phi = 0
    assert [lo, hi] == pytest.approx(list(confint_proportions_2indep(1, 2, 1, 2, method="newcomb", compare="diff")))
    lo, hi = ev.newcombe_paired(10, 0, 0, 0)  # identical answers everywhere: still not zero-width
    assert lo < 0 < hi


def _adversarial_fixture() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """10 questions in `a` with traces 0 and 1 (trace 2 only on a0..a4), plain 8/10 correct;
    trace 0: 5/10, trace 1: 7/9 (a9 missing), trace 2: 1/5 (a5 answered but has no trace 2)."""
    qs, ans = [], []
    for i in range(10):
        qs.append(_q(f"a{i}", "a", i % 2 == 0, adversarial_trace_0="t0", adversarial_trace_1="t1",
                     adversarial_trace_2="t2" if i < 5 else None, human_label="reasoning" if i < 2 else None))
        ans.append({"id": f"a{i}", "answer": "A" if i < 8 else "B"})
        ans.append({"id": f"a{i}", "trace": 0, "answer": "<answer>A</answer>" if i < 5 else "The answer is C"})
        if i < 9:
            ans.append({"id": f"a{i}", "trace": 1, "answer": "A" if i < 7 else "D"})
        if i < 6:
            ans.append({"id": f"a{i}", "trace": 2, "answer": "A" if i == 0 else "C"})
    return qs, ans


def test_adversarial_per_trace_worst_case_and_drop() -> None:
    qs, ans = _adversarial_fixture()
    rep = ev.score(qs, ans)
    assert rep["settings"] == ["standard", "trace_0", "trace_1", "trace_2", "worst_case"]
    adv = next(e for e in rep["adversarial"] if e["benchmark"] == "all")
    assert (adv["standard"]["correct"], adv["standard"]["n"]) == (8, 10)
    assert (adv["trace_0"]["correct"], adv["trace_0"]["n"]) == (5, 10)
    # a missing adversarial answer is missing, never wrong
    assert (adv["trace_1"]["correct"], adv["trace_1"]["n"], adv["trace_1"]["missing"]) == (7, 9, 1)
    assert (adv["trace_2"]["correct"], adv["trace_2"]["n"]) == (1, 5)
    assert rep["ids"]["trace_1"]["missing"] == ["a9"]
    assert rep["ids"]["no_trace"] == {"trace_2": ["a5"]}
    assert rep["counts"]["trace_2"]["n_not_applicable"] == 5
    # worst case: only a0 is right under every trace it has; a9 lacks its trace-1 answer
    assert (adv["worst_case"]["correct"], adv["worst_case"]["n"], adv["worst_case"]["missing"]) == (1, 9, 1)
    assert adv["worst_trace"] == "trace_2"
    # drop on the questions answered both ways: trace 0 -> 8/10 - 5/10
    assert adv["trace_0"]["drop"]["n_pairs"] == 10 and adv["trace_0"]["drop"]["value"] == pytest.approx(0.3)
    assert adv["trace_0"]["drop"]["ci"] == pytest.approx(list(ev.newcombe_paired(5, 3, 0, 2)))
    assert adv["trace_1"]["drop"]["value"] == pytest.approx(8 / 9 - 7 / 9)
    # human labels stratify too
    t0 = _row(rep, "trace_0", "all")
    assert (t0["human_reasoning"]["n"], t0["human_knowledge"]["n"]) == (2, 0)


def test_default_scope_is_the_benchmarks_answered_and_coverage_is_reported() -> None:
    qs = [_q(f"a{i}", "a", True) for i in range(3)] + [_q(f"b{i}", "b", False) for i in range(4)]
    configs = {"MedA": {"kind": "benchmark", "ids": ["a0", "a1", "a2"]},
               "MedB": {"kind": "benchmark", "ids": ["b0", "b1", "b2", "b3"]},
               "all": {"kind": "all", "ids": [q["id"] for q in qs]}, "gold": {"kind": "gold", "ids": ["a0", "b0"]},
               "train": {"kind": "train", "ids": ["t1"]}}
    ans = [{"id": "a0", "answer": "A"}, {"id": "a1", "answer": "A"}]
    rep = ev.score(qs, ans, configs=configs)
    assert rep["n_questions"] == 3 and rep["scope"]["benchmarks"] == ["MedA"]
    assert rep["ids"]["standard"]["missing"] == ["a2"]  # MedB's questions are not "missing"
    assert {r["benchmark"] for r in rep["rows"]} == {"MedA", "all"}  # named by the release's config
    cov = {c["config"]: (c["rows"], c["in_scope"], c["answered"]) for c in rep["coverage"]}
    assert cov == {"MedA": (3, 3, 2), "MedB": (4, 0, 0), "all": (7, 3, 2), "gold": (2, 1, 1)}
    # --config all: everything is in scope, MedB's questions are missing
    rep = ev.score(qs, ans, configs=configs, config="all")
    assert rep["n_questions"] == 7 and len(rep["ids"]["standard"]["missing"]) == 5
    # --config gold: answers outside it are listed as out of scope
    rep = ev.score(qs, ans, configs=configs, config="gold")
    assert rep["n_questions"] == 2 and rep["ids"]["out_of_scope"] == ["a1"]
    with pytest.raises(InputError, match=r"--config 'train' is not a question config.*MedA, MedB, all, gold"):
        ev.score(qs, ans, configs=configs, config="train")


def test_alias_ids_score_the_kept_question() -> None:
    qs = [_q("k1", "a", True), _q("k2", "a", False)]
    ans = [{"id": "dup-of-k1", "answer": "A"}, {"id": "k2", "answer": "A"}, {"id": "dup-of-k2", "answer": "B"}]
    rep = ev.score(qs, ans, aliases={"dup-of-k1": "k1", "dup-of-k2": "k2"})
    assert rep["ids"]["aliased"] == {"dup-of-k1": "k1", "dup-of-k2": "k2"}
    assert rep["ids"]["alias_conflicts"] == ["dup-of-k2"]  # k2's own answer wins
    assert _row(rep, "standard", "all")["overall"]["correct"] == 2
    assert rep["ids"]["unknown"] == []
    # without the alias table they are unknown
    assert ev.score(qs, ans)["ids"]["unknown"] == ["dup-of-k1", "dup-of-k2"]


def test_no_answer_for_the_release_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"no answer is for a question of this release \(1 unknown id\(s\), e.g. zz\)"):
        ev.score([_q("x", "a", True)], [{"id": "zz", "answer": "A"}])


def test_unstratified_release_still_scores_overall() -> None:
    rep = ev.score([_q("x", "a", None)], [{"id": "x", "answer": "A"}])
    assert _row(rep, "standard", "all")["overall"]["accuracy"] == 1.0
    assert rep["n_unstratified"] == 1 and _row(rep, "standard", "all")["reasoning"]["accuracy"] is None


def test_order_free() -> None:
    qs, ans = _adversarial_fixture()
    assert ev.score(qs, ans) == ev.score(list(reversed(qs)), list(reversed(ans)))


def test_renderings(tmp_path: Path) -> None:
    qs, ans = _adversarial_fixture()
    rep = ev.score(qs, ans)
    md = ev.render_markdown(rep)
    assert "| standard | a | 10 | 0 | 80.0 [" in md
    assert "Adversarial traces" in md and "drop +30.0 [" in md
    assert "trace_1: 1 question(s) without an answer (not scored): a9" in md
    json.dumps(rep)  # JSON-serializable
    from rich.console import Console

    console = Console(record=True, width=250)
    console.print(render_rich(rep))
    text = console.export_text()
    assert "80.0" in text and "Coverage per config" in text and "worst trace" in text
    png = tmp_path / "acc.png"
    sev.write_chart(rep, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_answers_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "p.jsonl"
    cases = {
        '{"id": "x", "answer": "A"}\n{"id": "x", "answer": "B"}\n':
            r"p.jsonl:2: id 'x' already answered for the plain question on line 1",
        '{"id": "x", "answer": "A", "trace": 1}\n{"id": "x", "predicted": "B", "trace": 1}\n':
            r"p.jsonl:2: id 'x' already answered for trace 1 on line 1",
        '{"id": "x"}\n': r"p.jsonl:1: needs fields",
        '{"id": "x", "answer": "A", "predicted": "A"}\n': r"p.jsonl:1: needs fields",
        '{"id": "x", "answer": "A", "trace": 3}\n': r"p.jsonl:1: \"trace\" must be 0, 1, 2 or null",
        '{"id": "x", "answer": "A", "trace": true}\n': r"p.jsonl:1: \"trace\" must be",
        '{"id": "x", "predicted": "A", "adversarial": "B"}\n': r"p.jsonl:1: field \"adversarial\" is not read",
        '{"id": "x", "answer": ["A"]}\n': r"p.jsonl:1: \"answer\" must be the model's output as a string",
        "not json\n": r"p.jsonl:1: not valid JSON",
        "\n": r"no answers in the file",
    }
    for text, message in cases.items():
        p.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=message):
            sev.read_answers(p)
    p.write_text('{"id": "x", "predicted": "A"}\n{"id": "x", "answer": "B", "trace": 0}\n{"id": 7, "answer": null}\n',
                 encoding="utf-8")
    assert sev.read_answers(p) == [{"id": "x", "answer": "A", "trace": None}, {"id": "x", "answer": "B", "trace": 0},
                                   {"id": "7", "answer": None, "trace": None}]
