"""AppTest: maintainer pages — agreement numbers, adjudication, gold draw."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score
from streamlit.testing.v1 import AppTest
from test_app_annotator import XSS, login, seed

import curation.store.annotations as ann_store
from curation.services import annotate
from curation.store import Store
from curation.store import annotations as astore

pytestmark = pytest.mark.integration

ANN1 = ["reasoning", "reasoning", "knowledge", "knowledge", "reasoning", "knowledge"]
ANN2 = ["reasoning", "knowledge", "knowledge", "knowledge", "reasoning", "reasoning"]




def label_gold(store: Store, texts: dict[int, str] | None = None) -> dict[str, dict[str, str]]:
    """Seed 6 gold items (K=2) and have ann1/ann2 label them with ANN1/ANN2 by question id."""
    seed(store, n=6, overlap=2, texts=texts)
    given: dict[str, dict[str, str]] = {"ann1": {}, "ann2": {}}
    for name, labels in (("ann1", ANN1), ("ann2", ANN2)):
        res = annotate.fetch_next(store, name)
        while res["task"]:
            qid = res["task"]["question_id"]
            lab = labels[int(qid[1:])]
            given[name][qid] = lab
            res = annotate.submit_and_next(store, name, qid, action="label", label=lab, event_id=annotate.new_event_id())
    return given


def test_agreement_page_shows_kappa(app_store: Store) -> None:
    label_gold(app_store)
    expected = cohen_kappa_score(ANN1, ANN2)
    at = login("boss")
    at.switch_page("pages/agreement.py").run()
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cohen's kappa (mean pairwise)"] == f"{expected:.3f}"
    assert metrics["Percent agreement"] == f"{4 / 6:.3f}"
    assert at.dataframe  # per benchmark, pairwise, per annotator tables


def test_agreement_page_without_labels(app_store: Store) -> None:
    seed(app_store)
    at = login("boss")
    at.switch_page("pages/agreement.py").run()
    assert "No labels on gold items yet" in at.info[0].value


def test_adjudication_records_decision_without_touching_labels(app_store: Store) -> None:
    label_gold(app_store, texts={1: XSS, 5: XSS})
    disagreeing = {f"q{i}" for i in range(6) if ANN1[i] != ANN2[i]}
    assert disagreeing == {"q1", "q5"}
    at = login("boss")
    at.switch_page("pages/adjudicate.py").run()
    assert [m.value for m in at.metric] == ["2", "2"]
    assert set(at.selectbox(key="adj_qid").options) == disagreeing
    qid = at.selectbox(key="adj_qid").value
    shown = [t.value for t in at.text]
    assert XSS in shown  # question rendered as plain text
    assert "label: reasoning" in shown and "label: knowledge" in shown  # side by side
    before = app_store.run(astore.annotation_rows)
    at.radio[0].set_value("knowledge")
    at.text_input[0].input("mechanism step needed")
    at.button[0].click().run()
    adj = app_store.run(ann_store.current_adjudications)
    assert adj[qid]["label"] == "knowledge" and adj[qid]["maintainer"] == "boss"
    assert adj[qid]["note"] == "mechanism step needed"
    assert app_store.run(astore.annotation_rows) == before  # labels untouched
    assert [m.value for m in at.metric] == ["2", "1"]


def test_assignment_page_draws_gold(app_store: Store) -> None:
    seed(app_store, n=4)  # all 4 already in gold-1
    at = login("boss")
    at.switch_page("pages/assignment.py").run()
    at.number_input[0].set_value(2)
    at.button[0].click().run()
    assert "only 0 are eligible" in at.error[0].value or "no eligible questions" in at.error[0].value
    frame = at.dataframe[0].value
    assert list(frame["batch_id"]) == ["gold-1"]


def test_maintainer_can_label_too(app_store: Store) -> None:
    seed(app_store)
    at = login("boss")
    assert at.session_state["lab_task"] is not None
    assert isinstance(at, AppTest)
