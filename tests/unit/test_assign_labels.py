"""Guidelines file, label export round trip, agreement inputs and charts (pure helpers of the
annotation area)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from curation import labels, plots
from curation.errors import ConfigError, InputError

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[2] / "curation" / "data" / "benchmarks_sample.jsonl"


def test_guidelines_file_is_versioned_with_real_worked_examples() -> None:
    version, body = labels.load_guidelines()
    assert re.fullmatch(r"\d+\.\d+", version)
    assert "Reasoning-heavy" in body and "Knowledge-heavy" in body
    ids = re.findall(r"^### \d+\. `([^`]+)` — (reasoning|knowledge)", body, flags=re.M)
    assert len(ids) >= 6
    assert {lab for _, lab in ids} == {"reasoning", "knowledge"}
    sample = {json.loads(line)["id"]: json.loads(line) for line in SAMPLE.open(encoding="utf-8")}
    for qid, _ in ids:
        assert qid in sample, f"{qid} is not in the bundled sample"
        assert sample[qid]["dataset_name"] not in {"gpqa", "hle", "medbullets", "lancet", "nejm"}
    for banned in ("GPQA", "HLE", "MedBullets", "Lancet", "NEJM"):
        assert banned.lower() not in body.lower()


def test_parse_guidelines_errors() -> None:
    assert labels.parse_guidelines('---\nversion: "2.1"\n---\n# Body\n') == ("2.1", "# Body\n")
    with pytest.raises(InputError, match="front matter"):
        labels.parse_guidelines("# no front matter")
    with pytest.raises(InputError, match="not closed"):
        labels.parse_guidelines("---\nversion: 1\n")
    with pytest.raises(InputError, match="version"):
        labels.parse_guidelines("---\ntitle: x\n---\nbody")
    with pytest.raises(ConfigError, match="CURATION_GUIDELINES"):
        labels.load_guidelines("/nonexistent/guidelines.md")


def _row(**kw):
    base = {f: None for f in labels.EXPORT_FIELDS}
    base.update(seq=1, event_id="e1", question_id="q1", dataset_name="medqa", annotator="ann",
                action="label", label="reasoning", source="app", suggestion_shown=False,
                created_at=datetime(2026, 1, 2, 3, 4, 5))
    base.update(kw)
    return base


def test_export_round_trips_in_both_formats() -> None:
    rows = labels.export_rows([
        _row(),
        _row(seq=2, event_id="e2", action="skip", label=None),
        _row(seq=3, event_id="e3", confidence=2, rationale='two steps, "vignette"\nthen ß', suggestion_shown=True),
    ])
    assert rows[0]["created_at"] == "2026-01-02T03:04:05"
    assert labels.parse_export_jsonl(labels.render(rows, "jsonl")) == rows
    assert labels.parse_export_csv(labels.render(rows, "csv")) == rows
    with pytest.raises(InputError, match="format"):
        labels.render(rows, "xml")


CELLS = ["=1+1", '=HYPERLINK("http://x.example","y")', "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'",
         "''=x", "'=x", "'plain", "a\r\nb", "plain", "1-2", " =not a formula"]


def test_csv_neutralises_formula_cells_and_round_trips_exactly() -> None:
    """OWASP CSV injection: a text cell starting with = + - @ tab or CR gets one leading quote
    (as does one starting with a quote, so reading removes exactly the quote writing added)."""
    rows = labels.export_rows([_row(seq=i, event_id=f"e{i}", rationale=c, annotator=c) for i, c in enumerate(CELLS)])
    text = labels.render(rows, "csv")
    for rec in csv.DictReader(io.StringIO(text, newline="")):
        assert not rec["rationale"].startswith(labels.FORMULA_PREFIXES)
        assert not rec["annotator"].startswith(labels.FORMULA_PREFIXES)
    assert labels.parse_export_csv(text) == rows
    assert labels.neutralise_cell("=x") == "'=x" and labels.neutralise_cell("x") == "x"
    assert labels.neutralise_cell(-1) == -1 and labels.restore_cell("'=x") == "=x"


def test_agreement_inputs_and_disagreements() -> None:
    cur = [
        {"question_id": "a", "annotator": "x", "label": "reasoning", "dataset_name": "medqa"},
        {"question_id": "a", "annotator": "y", "label": "knowledge", "dataset_name": "medqa"},
        {"question_id": "b", "annotator": "x", "label": "reasoning", "dataset_name": "pubmedqa"},
        {"question_id": "b", "annotator": "y", "label": "reasoning", "dataset_name": "pubmedqa"},
    ]
    rows, groups = labels.agreement_inputs(cur)
    assert rows[0] == ("a", "x", "reasoning") and groups == {"a": "medqa", "b": "pubmedqa"}
    dis = labels.disagreements(cur)
    assert list(dis) == ["a"] and [r["annotator"] for r in dis["a"]] == ["x", "y"]


def test_charts_build() -> None:
    block = {"n_items": 3, **{k: {"value": 0.5, "ci": [0.1, 0.9]} for k in plots.COEFFICIENTS}}
    empty = {"n_items": 0, **{k: {"value": None, "ci": [None, None]} for k in plots.COEFFICIENTS}}
    spec = plots.agreement_per_benchmark({"medqa": block, "pubmedqa": empty}).to_dict()
    assert spec["layer"]
    table = plots.reasoning_share_table([
        {"dataset_name": "medqa", "label": "reasoning"}, {"dataset_name": "medqa", "label": "knowledge"},
        {"dataset_name": "pubmedqa", "label": "knowledge"}])
    assert list(table["share"]) == [0.5, 0.0]
    assert (table["ci_low"] <= table["share"]).all() and (table["share"] <= table["ci_high"]).all()
    assert plots.reasoning_share([{"dataset_name": "m", "label": "reasoning"}]).to_dict()["layer"]
    day = plots.labels_per_day([{"day": "2026-01-01", "source": "app", "labels": 3}]).to_dict()
    assert day["mark"]["type"] == "bar"
    with pytest.raises(ValueError):
        plots.agreement_table({"m": block}, "nonsense")
