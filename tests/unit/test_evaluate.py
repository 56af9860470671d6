"""Stratified scoring on a hand-computable fixture: known accuracies, CIs and gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import binom

from curation import evaluate as ev
from curation.cli.release import render_rich
from curation.errors import InputError
from curation.services import evaluate as sev

pytestmark = pytest.mark.unit

OPTS = {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "Alteplase"}


def _q(qid: str, bench: str, is_reasoning: bool | None, answer: str = "A") -> dict[str, object]:
    return {"id": qid, "dataset_name": bench, "options": json.dumps(OPTS), "answer_idx": answer,
            "is_reasoning": is_reasoning}


def _fixture() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Benchmark `a`: reasoning 6/10 correct, knowledge 9/10. Benchmark `b`: reasoning 5/5,
    knowledge 0/5 (one missing answer, one answer naming no option, three wrong letters)."""
    qs, preds = [], []
    for i in range(10):
        qs.append(_q(f"a-r{i}", "a", True))
        preds.append({"id": f"a-r{i}", "predicted": "A" if i < 6 else "B", "adversarial": "B"})
    for i in range(10):
        qs.append(_q(f"a-k{i}", "a", False))
        # correct answers given in every accepted form: letter, (a), "A.", option text, "A. text"
        forms = ["A", "(a)", "A.", "aspirin", "A. Aspirin", " a ", "Answer: A", "ASPIRIN", "[A]", "a)"]
        preds.append({"id": f"a-k{i}", "predicted": forms[i] if i < 9 else "Heparin", "adversarial": "A"})
    for i in range(5):
        qs.append(_q(f"b-r{i}", "b", True, answer="C"))
        preds.append({"id": f"b-r{i}", "predicted": "C", "adversarial": "C"})
    for i in range(5):
        qs.append(_q(f"b-k{i}", "b", False, answer="D"))
        if i == 0:
            continue  # missing
        preds.append({"id": f"b-k{i}", "predicted": "Z" if i == 1 else "B", "adversarial": "D"})
    preds.append({"id": "not-in-release", "predicted": "A"})
    return qs, preds


def _row(report: dict, setting: str, bench: str) -> dict:
    return next(r for r in report["rows"] if r["setting"] == setting and r["benchmark"] == bench)


def _binom_ci(k: int, n: int) -> list[float]:
    return [binom.ppf(0.025, n, k / n) / n, binom.ppf(0.975, n, k / n) / n]


def test_known_accuracies_gaps_and_counts() -> None:
    qs, preds = _fixture()
    rep = ev.score(qs, preds, n_boot=4000, seed=1)
    a = _row(rep, "standard", "a")
    assert (a["reasoning"]["correct"], a["reasoning"]["n"]) == (6, 10)
    assert (a["knowledge"]["correct"], a["knowledge"]["n"]) == (9, 10)
    assert a["reasoning"]["accuracy"] == pytest.approx(0.6)
    assert a["knowledge"]["accuracy"] == pytest.approx(0.9)
    assert a["gap"]["value"] == pytest.approx(0.3)
    assert a["overall"]["accuracy"] == pytest.approx(15 / 20)
    b = _row(rep, "standard", "b")
    assert b["reasoning"]["accuracy"] == 1.0 and b["knowledge"]["accuracy"] == 0.0
    assert b["gap"]["value"] == -1.0
    all_ = _row(rep, "standard", "all")
    assert all_["reasoning"]["accuracy"] == pytest.approx(11 / 15)
    assert all_["knowledge"]["accuracy"] == pytest.approx(9 / 15)
    assert rep["counts"]["standard"] == {"n_missing": 1, "n_invalid": 1}
    assert rep["n_unknown_ids"] == 1 and rep["unknown_ids_sample"] == ["not-in-release"]
    assert rep["settings"] == ["standard", "adversarial"]
    adv = _row(rep, "adversarial", "a")
    assert adv["reasoning"]["accuracy"] == 0.0 and adv["knowledge"]["accuracy"] == 1.0
    assert rep["counts"]["adversarial"]["n_missing"] == 1  # b-k0 has no prediction at all


def test_bootstrap_cis_match_the_binomial_quantiles() -> None:
    """Resampling n questions with k correct = Binomial(n, k/n) / n: its 2.5 % and 97.5 %
    quantiles are the CI a hand calculation gives (6/10 -> [0.3, 0.9], 9/10 -> [0.7, 1.0])."""
    qs, preds = _fixture()
    rep = ev.score(qs, preds, n_boot=20000, seed=7)
    a = _row(rep, "standard", "a")
    assert a["reasoning"]["ci"] == pytest.approx([0.3, 0.9])
    assert a["reasoning"]["ci"] == pytest.approx(_binom_ci(6, 10))
    assert a["knowledge"]["ci"] == pytest.approx([0.7, 1.0])
    # degenerate subsets have zero-width intervals
    b = _row(rep, "standard", "b")
    assert b["reasoning"]["ci"] == [1.0, 1.0] and b["knowledge"]["ci"] == [0.0, 0.0]
    assert b["gap"]["ci"] == [-1.0, -1.0]
    # the gap's CI contains the point estimate and lies within [-1, 1]
    lo, hi = a["gap"]["ci"]
    assert -1 <= lo <= 0.3 <= hi <= 1


def test_seeded_and_order_free() -> None:
    qs, preds = _fixture()
    r1 = ev.score(qs, preds, n_boot=500, seed=3)
    r2 = ev.score(qs, list(reversed(preds)), n_boot=500, seed=3)
    assert r1 == r2


def test_parse_answer_forms() -> None:
    assert ev.parse_answer("b", OPTS) == "B"
    assert ev.parse_answer("(C)", OPTS) == "C"
    assert ev.parse_answer("Answer: D", OPTS) == "D"
    assert ev.parse_answer("  warfarin ", OPTS) == "C"
    assert ev.parse_answer("C. Warfarin", OPTS) == "C"
    assert ev.parse_answer("E", OPTS) is None
    assert ev.parse_answer("C. Heparin", OPTS) is None  # letter and text disagree
    assert ev.parse_answer("", OPTS) is None
    assert ev.parse_answer(None, OPTS) is None


def test_renderings(tmp_path: Path) -> None:
    qs, preds = _fixture()
    rep = ev.score(qs, preds, n_boot=200, seed=0)
    md = ev.render_markdown(rep)
    assert "| standard | a | 90.0 [" in md and "60.0 [" in md and "+30.0 [" in md
    assert "1 question(s) without an answer" in md
    json.dumps(rep)  # JSON-serializable
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(render_rich(rep))
    assert "90.0" in console.export_text()
    png = tmp_path / "acc.png"
    sev.write_chart(rep, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_predictions_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "x", "predicted": "A"}\n{"id": "x", "predicted": "B"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"p.jsonl:2: id 'x' already predicted on line 1"):
        sev.read_predictions(p)
    p.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"p.jsonl:1: needs fields"):
        sev.read_predictions(p)
    p.write_text("not json\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"p.jsonl:1: not valid JSON"):
        sev.read_predictions(p)


def test_release_without_model_cannot_be_stratified() -> None:
    with pytest.raises(InputError, match="is_reasoning"):
        ev.score([_q("x", "a", None)], [{"id": "x", "predicted": "A"}])
