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
    votes = at.dataframe[0].value  # the vote summary: counts per label and who
    assert list(votes.columns) == ["Question id", "Benchmark", "Reasoning votes", "Knowledge votes", "Decision"]
    row = votes.set_index("Question id").loc[qid]
    given = {ann: ANN1[int(qid[1:])] if ann == "ann1" else ANN2[int(qid[1:])] for ann in ("ann1", "ann2")}
    assert row["Reasoning votes"] == "1 (" + [a for a, v in given.items() if v == "reasoning"][0] + ")"
    assert row["Decision"] == "—"
    assert not at.radio  # nothing preselected: the decision is a button (1 / 2)
    before = app_store.run(astore.annotation_rows)
    at.text_input(key=f"adj_note_{qid}").input("mechanism step needed")
    at.button(key=f"adj_knowledge_{qid}").click().run()
    adj = app_store.run(ann_store.current_adjudications)
    assert adj[qid]["label"] == "knowledge" and adj[qid]["maintainer"] == "boss"
    assert adj[qid]["note"] == "mechanism step needed"
    assert app_store.run(astore.annotation_rows) == before  # labels untouched
    assert [m.value for m in at.metric] == ["2", "1"]
    assert at.selectbox(key="adj_qid").value == (disagreeing - {qid}).pop()  # the next undecided item


def test_adjudication_shows_question_history(app_store: Store) -> None:
    label_gold(app_store)
    at = login("boss")
    at.switch_page("pages/adjudicate.py").run()
    at.text_input(key="adj_lookup").input("q0").run()
    frame = at.dataframe[-1].value  # the lookup's rows (last on the page)
    assert list(frame["Who"]) == ["ann1", "ann2"] and set(frame["Source"]) == {"app"}
    assert "None" not in frame.to_string()
    at.text_input(key="adj_lookup").input("no-such-id").run()
    assert "no question with id 'no-such-id'" in at.error[0].value


def test_agreement_tables_are_readable_and_flag_small_n(app_store: Store) -> None:
    label_gold(app_store)  # 6 gold items: far below 30
    at = login("boss")
    at.switch_page("pages/agreement.py").run()
    assert not at.error
    frames = dict(zip(("agr_per_benchmark", "agr_pairs", "agr_per_annotator"),
                      (d.value for d in at.dataframe), strict=True))
    for frame in frames.values():
        assert not any("_" in c or c.islower() for c in frame.columns), list(frame.columns)
        cells = frame.astype(str).to_numpy().ravel().tolist()
        assert "None" not in cells and "nan" not in cells
    per = frames["agr_per_benchmark"]
    assert list(per["Benchmark"]) == ["medmcqa", "medqa"] and list(per["Items"]) == ["⚠ 3", "⚠ 3"]
    assert all(len(v.split(".")[-1]) == 3 for v in per["Fleiss' kappa"] if v != "—")  # 3 decimals
    assert list(frames["agr_pairs"]["Items"]) == ["⚠ 6"]
    assert "fewer than 30 items" in at.warning[0].value and "[1.000, 1.000]" in at.warning[0].value
    assert any("fewer than 30 items" in c.value for c in at.caption)


def test_agreement_page_has_no_small_n_flag_with_30_items(app_store: Store) -> None:
    seed(app_store, n=30, overlap=2)
    for name in ("ann1", "ann2"):
        res = annotate.fetch_next(app_store, name)
        while res["task"]:
            qid = res["task"]["question_id"]
            res = annotate.submit_and_next(app_store, name, qid, action="label", event_id=annotate.new_event_id(),
                                           label="reasoning" if name == "ann1" or int(qid[1:]) % 3 else "knowledge")
    at = login("boss")
    at.switch_page("pages/agreement.py").run()
    assert not at.warning
    assert list(at.dataframe[1].value["Items"]) == ["30"]  # the pairs table


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
    at = login("boss")  # lands on the overview: no question leased
    assert "lab_task" not in at.session_state
    at.switch_page("pages/label.py").run()
    assert at.session_state["lab_task"] is not None
    assert isinstance(at, AppTest)
