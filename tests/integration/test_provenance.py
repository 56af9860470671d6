"""Label provenance on one store that mixes every origin: people in the app, a person in
Label Studio, a benchmark's own imported tags, an adjudication and a model.

Only people are raters: imported tags never take a gold slot (K), never count toward a
majority or agreement, never appear as a rater, never count as human labels in a release.
`curation agreement --json`, the Agreement page and the release card give the same
human-human figures; the card's model-vs-human figure uses only items the model never saw.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from test_app_annotator import login, seed
from typer.testing import CliRunner

from curation.cli import app
from curation.release import build_release, read_config
from curation.services import annotate
from curation.services.annotate import adjudication_queue, agreement_summary
from curation.store import Store, utcnow
from curation.store import annotations as astore
from curation.store import models as mstore
from curation.store import questions as qstore
from curation.store import queue as q

pytestmark = pytest.mark.integration

TAGS = {"q0": "reasoning", "q1": "reasoning", "q2": "knowledge", "q3": "reasoning", "q4": "knowledge", "q5": "reasoning"}
ANN1 = {"q0": "reasoning", "q1": "knowledge", "q2": "knowledge", "q3": "knowledge", "q4": "reasoning", "q5": "knowledge"}
ANN2 = {"q0": "reasoning", "q1": "knowledge", "q2": "reasoning", "q3": "knowledge", "q4": "reasoning", "q5": "reasoning"}
AUTHORS = "import:medqa_authors"


def _label_all(store: Store, name: str, labels: dict[str, str]) -> list[str]:
    done = []
    res = annotate.fetch_next(store, name)
    while res["task"]:
        qid = res["task"]["question_id"]
        res = annotate.submit_and_next(store, name, qid, action="label", label=labels[qid], event_id=annotate.new_event_id())
        done.append(qid)
    return done


@pytest.fixture
def mixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    db = tmp_path / "mixed.duckdb"
    monkeypatch.setenv("CURATION_DB", str(db))
    st.cache_resource.clear()
    st.cache_data.clear()
    store = Store(db)
    seed(store, n=6, overlap=2)  # gold-1: q0..q5, K=2; users ann1, ann2 (annotators), boss
    now = utcnow()
    # the benchmark's own tags arrive before anyone labels: they must not take a slot
    store.run(lambda con: qstore.import_labels(con, [(k, v, AUTHORS) for k, v in TAGS.items()], now=now))
    # a person in Label Studio labels q0 first: a rater, so q0 then needs one app label only
    store.run(lambda con: astore.append(con, [astore.Annotation(
        "q0", "lsperson", "label", "reasoning", "label_studio", now, event_id="ls-1")]))
    served = {"ann1": _label_all(store, "ann1", ANN1), "ann2": _label_all(store, "ann2", ANN2)}
    # a maintainer adjudicates the people's disagreement on q2
    store.run(lambda con: astore.adjudicate(con, question_id="q2", label="knowledge", maintainer="boss",
                                            note=None, created_at=now + timedelta(seconds=1)))
    # a model that trained on q1 and q4 and scored everything
    store.run(lambda con: mstore.register_model(
        con, version="m1", base_model="tiny", kind="transformer", path=None, n_train=2, train_source="store",
        threshold=0.5, metrics={}, created_at=now, seen_ids={"train": ["q1"], "validation": ["q4"]}))
    probs = {"q0": 0.9, "q1": 0.2, "q2": 0.3, "q3": 0.8, "q4": 0.7, "q5": 0.6}
    store.run(lambda con: mstore.write_predictions(
        con, model_version="m1", question_ids=list(probs), probs=list(probs.values()), threshold=0.5, created_at=now))
    return {"store": store, "served": served, "tmp": tmp_path}


def test_imported_tags_never_fill_a_slot(mixed: dict[str, Any]) -> None:
    store, served = mixed["store"], mixed["served"]
    # every gold item got exactly K=2 people: q0 had the Label Studio person, so one annotator
    # got it; the tags on all six items took nothing
    assert sorted(served["ann1"] + served["ann2"]) == sorted(["q0"] + [f"q{i}" for i in range(1, 6)] * 2)
    people = store.run(lambda con: astore.current_labels(con, gold_only=True))
    per_item: dict[str, int] = {}
    for r in people:
        per_item[r["question_id"]] = per_item.get(r["question_id"], 0) + 1
    assert per_item == {f"q{i}": 2 for i in range(6)}
    status = store.run(q.batch_status)[0]
    assert (status["labels_done"], status["labels_needed"], status["complete_items"]) == (12, 12, 6)
    # the queue's slow reference agrees (tags ignored there too)
    for name in ("ann1", "ann2"):
        cands = store.run(lambda con, n=name: q.candidates(con, n))
        assert all(c.n_labels == 2 for c in cands)


def test_one_rater_set_and_one_figure_everywhere(mixed: dict[str, Any]) -> None:
    store, tmp = mixed["store"], mixed["tmp"]
    res = CliRunner().invoke(app, ["agreement", "--json"])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)
    assert cli["raters"] == ["ann1", "ann2", "lsperson"]  # never the authors' tags
    assert cli["overall"]["n_raters"] == 3 and cli["overall"]["n_labels"] == 12
    assert not any(r["rater_a"].startswith("import:") or r["rater_b"].startswith("import:") for r in cli["pairwise"])
    assert all(not a.startswith("import:") for a in cli["per_annotator"])
    # the tags are reported apart: human label vs tag on gold items with both
    tags = cli["benchmark_tags"]
    assert tags["sources"] == ["medqa_authors"] and tags["human_label_vs_tag"]["n_items"] >= 5
    keys = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "mean_pairwise_cohen")
    expected = {k: f"{cli['overall'][k]['value']:.3f}" for k in keys}

    # the Agreement page shows the same numbers
    at = login("boss")
    at.switch_page("pages/agreement.py").run()
    assert not at.error
    shown = {m.label: m.value for m in at.metric}
    assert shown["Percent agreement"] == expected["percent_agreement"]
    assert shown["Fleiss' kappa"] == expected["fleiss_kappa"]
    assert shown["Krippendorff's alpha"] == expected["krippendorff_alpha"]
    assert shown["Cohen's kappa (mean pairwise)"] == expected["mean_pairwise_cohen"]

    # and so does the release card, with the same CIs
    manifest = build_release(store, version="v1", out=tmp / "exports")
    overall = manifest["annotation"]["agreement"]["overall"]
    for k in keys:
        assert f"{overall[k]['value']:.3f}" == expected[k]
        assert overall[k]["ci"] == pytest.approx(cli["overall"][k]["ci"])
    card = (tmp / "exports" / "v1" / "README.md").read_text(encoding="utf-8")
    assert f"| Fleiss' kappa | {expected['fleiss_kappa']} |" in card
    assert manifest["annotation"]["agreement"]["raters_total"] == 3
    # the service (what the page calls) is the CLI's function
    assert agreement_summary(store)["overall"] == cli["overall"]


def test_release_counts_people_only_and_keeps_tags_apart(mixed: dict[str, Any]) -> None:
    store, tmp = mixed["store"], mixed["tmp"]
    manifest = build_release(store, version="v1", out=tmp / "exports")
    rows = {r["id"]: r for r in read_config(tmp / "exports" / "v1", "all").to_pylist()}
    for qid, r in rows.items():
        assert r["n_annotators"] == 2, qid  # two people each; the tag is not a third
        assert (r["source_label"], r["source_label_origin"]) == (TAGS[qid], "medqa_authors")
    # q5: people tie (knowledge vs reasoning); the authors' tag must not break the tie
    assert (rows["q5"]["human_label"], rows["q5"]["label_source"]) == (None, "tie")
    assert (rows["q2"]["human_label"], rows["q2"]["label_source"]) == ("knowledge", "adjudicated")
    stats = {b["benchmark"]: b for b in manifest["benchmarks"]}
    assert stats["all"]["n_human_labeled"] == 5  # q5 tied: no human label
    assert stats["all"]["n_reference_labeled"] == 6
    # model vs human only on gold items the model never trained on (q1, q4 left out)
    ma = manifest["model_agreement_on_gold"]
    assert ma["n_excluded_in_training"] == 2
    assert ma["n_items"] == 3  # q0, q2, q3 (q5 has no human label)
    assert {i for i, r in rows.items() if r["in_model_training"]} == {"q1", "q4"}
    card = (tmp / "exports" / "v1" / "README.md").read_text(encoding="utf-8")
    assert "on 3 gold items the model never trained on" in card
    assert "81.0 %" in card and "in-sample agreement" in card


def test_adjudication_queue_and_training_labels_ignore_tags(mixed: dict[str, Any]) -> None:
    store = mixed["store"]
    items, _ = adjudication_queue(store)
    # people disagree on q2 and q5 only; the tags disagree with people elsewhere (q3, q4): not a queue item
    assert set(items) == {"q2", "q5"}
    assert all(not r["annotator"].startswith("import:") for rows in items.values() for r in rows)
    labeled = store.run(lambda con: mstore.training_labels(con))
    assert {r.question_id: r.origin for r in labeled}["q2"] == "adjudication"
    assert "q5" not in {r.question_id for r in labeled}  # a tie stays unlabeled; the tag does not decide
    with_tags = store.run(lambda con: mstore.training_labels(con, include_import=True))
    assert {r.question_id: (r.label, r.origin) for r in with_tags}["q5"] == ("reasoning", "reference")


def test_current_model_never_an_imported_one(mixed: dict[str, Any]) -> None:
    store = mixed["store"]
    later = utcnow() + timedelta(days=1)
    store.run(lambda con: qstore.import_predictions(
        con, [("q0", 0.9, 0.5)], model_version="imported:biomed_r1", source="data.jsonl", now=later))
    assert store.run(lambda con: mstore.current_model(con, scored=True))["version"] == "m1"
    assert store.run(lambda con: mstore.current_model(con, name="imported:biomed_r1"))["kind"] == "imported"
