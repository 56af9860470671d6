"""AppTest: the maintainer Models page after two store-trained rounds; annotators cannot open it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from test_app_annotator import APP, XSS, login, password_hash

from curation.cli.model import classify, train_model
from curation.schema import text_hash
from curation.store import Store, utcnow
from curation.store.annotations import Annotation, append
from curation.store.batches import BatchItem, create_batch

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"


@pytest.fixture
def page_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    db = tmp_path / "m.duckdb"
    monkeypatch.setenv("CURATION_DB", str(db))
    st.cache_resource.clear()
    st.cache_data.clear()
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines()[:120]]
    rows[50]["question"] = XSS
    now = utcnow()

    def work(con: Any) -> None:
        con.executemany(
            "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, source, text_hash, ingested_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            [[r["id"], "medxpertqa", "test", r["question"], json.dumps(r["options"]), r["answer_idx"], r["answer"], "t",
              text_hash(r["question"], r["options"]), now] for r in rows])
        con.executemany(
            "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
            [[n, role, password_hash(), now] for n, role in (("ann1", "annotator"), ("boss", "maintainer"))])
        create_batch(con, batch_id="gold-1", kind="gold", items=[BatchItem(r["id"]) for r in rows[:20]], overlap=2,
                     show_suggestions=False, created_at=now)
        anns = [Annotation(r["id"], who, "label", r["label"], "app", now) for r in rows[:20] for who in ("ann1", "ann2")]
        anns += [Annotation(r["id"], "ann1", "label", r["label"] if i % 7 else ("knowledge" if r["label"] == "reasoning" else "reasoning"),
                            "app", now) for i, r in enumerate(rows[20:100])]
        append(con, anns)

    store = Store(db)
    store.run(work)
    for r in (1, 2):
        train_model("store", "tfidf", tmp_path / f"r{r}", db=str(db), seed=r)
        classify(tmp_path / f"r{r}", db=str(db))
    return store


def test_models_page_shows_rounds_and_flags(page_store: Store) -> None:
    at = login("boss")
    at.switch_page("pages/models.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Human-human kappa, lower 95 % bound"] == "1.000"  # identical human labels
    assert metrics["Predictions changed since last round"].endswith("%")
    assert any("CONTINUE" in i.value or "STOP" in str(i.value) for i in [*at.info, *at.success])
    assert len(at.dataframe) >= 1
    at.slider(key="flags_min_conf").set_value(0.6).run()
    assert not at.exception
    if at.selectbox:
        shown = [t.value for t in at.text]
        assert shown  # the picked question, as plain text


def test_annotator_cannot_open_models_page(page_store: Store) -> None:
    at = login("ann1")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/models.py")
    direct = AppTest.from_file(str(Path(APP).parent / "pages" / "models.py"), default_timeout=30).run()
    assert direct.error and "log in" in direct.error[0].value
