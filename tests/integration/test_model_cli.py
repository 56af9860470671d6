"""`curation train|classify|al ...` through Typer's CliRunner, with the tfidf model and a
real DuckDB store file in tmp_path."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from curation import active
from curation.cli import model as model_cli
from curation.schema import text_hash
from curation.store import Store
from curation.store import models as sm
from curation.store.annotations import Annotation, adjudicate, append
from curation.store.batches import BatchItem, create_batch

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "curation" / "data" / "medxpertqa_labeled_dev.jsonl"
KEYS = {"id", "reasoning_prob", "is_reasoning", "reasoning_threshold", "model_version"}
T0 = datetime(2026, 11, 1, 12, 0, 0)


def _app() -> typer.Typer:
    app = typer.Typer()
    model_cli.register(app)
    return app


def _rows(n: int, start: int = 0) -> list[dict]:
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows[start : start + n]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _insert_questions(con: Any, rows: list[dict]) -> None:
    con.executemany(
        "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, source, meta, text_hash, ingested_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [[r["id"], r["dataset_name"], "test", r["question"], json.dumps(r["options"]), r["answer_idx"], r["answer"],
          r["source"], "{}", text_hash(r["question"], r["options"]), T0] for r in rows],
    )


@pytest.fixture()
def store(tmp_path: Path) -> tuple[str, list[dict]]:
    """A store with 260 questions: 30 gold (2 annotators, 3 disagreements adjudicated),
    150 labeled by one or three annotators, 80 unlabeled."""
    db = str(tmp_path / "c.duckdb")
    rows = _rows(260)
    gold, labeled = rows[:30], rows[30:180]

    def setup(con: Any) -> None:
        _insert_questions(con, rows)
        create_batch(con, batch_id="gold-1", kind="gold", items=[BatchItem(r["id"]) for r in gold], overlap=2,
                     show_suggestions=False, created_at=T0)
        anns = []
        for i, r in enumerate(gold):
            anns.append(Annotation(r["id"], "ann", "label", r["label"], "app", T0))
            other = r["label"] if i % 10 else ("knowledge" if r["label"] == "reasoning" else "reasoning")
            anns.append(Annotation(r["id"], "bob", "label", other, "label_studio", T0))
        for i, r in enumerate(labeled):
            anns.append(Annotation(r["id"], "ann", "label", r["label"], "app", T0 + timedelta(seconds=i)))
        anns.append(Annotation(labeled[0]["id"], "imp", "label", "reasoning", "import", T0))
        append(con, anns)
        for i, r in enumerate(gold):
            if i % 10 == 0:
                adjudicate(con, question_id=r["id"], label=r["label"], maintainer="max", note=None, created_at=T0)

    Store(db).run(setup)
    return db, rows


def test_train_and_classify_file(tmp_path: Path) -> None:
    runner = CliRunner()
    labels = _write(tmp_path / "l.jsonl", _rows(200))
    unl = _write(tmp_path / "u.jsonl", [{k: r[k] for k in ("id", "question", "options")} for r in _rows(20, 300)])
    res = runner.invoke(_app(), ["train", "--labels", str(labels), "--model", "tfidf", "--out", str(tmp_path / "m"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["n_labels"] == 200 and info["kind"] == "tfidf"
    meta = json.loads((tmp_path / "m" / "curation_model.json").read_text())
    assert meta["reasoning_threshold"] == info["reasoning_threshold"] and "validation" in meta["metrics"]
    # tfidf fits on every row; its threshold comes from 5-fold out-of-fold logits over them
    seen = json.loads((tmp_path / "m" / "seen_ids.json").read_text())
    assert sorted(seen["train"]) == sorted(r["id"] for r in _rows(200)) and seen["validation"] == []
    assert info["threshold_source"] == meta["metrics"]["threshold_source"] == "out_of_fold"
    assert meta["metrics"]["validation"]["n"] == 200 and meta["metrics"]["n_val"] == 0
    # --threshold-folds 0: a held-back validation split, as encoders use; the folder says which
    res = runner.invoke(_app(), ["train", "--labels", str(labels), "--model", "tfidf", "--out", str(tmp_path / "m0"),
                                 "--threshold-folds", "0", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["threshold_source"] == "validation"
    seen0 = json.loads((tmp_path / "m0" / "seen_ids.json").read_text())
    meta0 = json.loads((tmp_path / "m0" / "curation_model.json").read_text())
    assert not set(seen0["train"]) & set(seen0["validation"])
    assert sorted(seen0["train"] + seen0["validation"]) == sorted(r["id"] for r in _rows(200))
    assert len(seen0["validation"]) == meta0["metrics"]["n_val"] == meta0["metrics"]["validation"]["n"] > 0
    res = runner.invoke(_app(), ["train", "--labels", str(labels), "--model", "tfidf", "--out", str(tmp_path / "m1"),
                                 "--threshold-folds", "1"])
    assert res.exit_code != 0 and "threshold_folds must be 0" in res.output and not (tmp_path / "m1").exists()
    out = tmp_path / "o.jsonl"
    res = runner.invoke(_app(), ["classify", "--model", str(tmp_path / "m"), "--input", str(unl), "--output", str(out)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 20 and all(set(x) == KEYS for x in lines)
    assert [x["id"] for x in lines] == [r["id"] for r in _rows(20, 300)]
    assert all(x["is_reasoning"] == (x["reasoning_prob"] >= x["reasoning_threshold"]) for x in lines)
    assert all(x["model_version"] == info["model_version"] for x in lines)
    for extra in (["--output", "-"], []):  # no --output with --input: JSONL on stdout
        res = runner.invoke(_app(), ["classify", "--model", str(tmp_path / "m"), "--input", str(unl), *extra])
        assert res.exit_code == 0 and [json.loads(x) for x in res.stdout.splitlines()] == lines


def test_bad_input_says_where(tmp_path: Path) -> None:
    runner = CliRunner()
    rows = _rows(10)
    rows[6]["label"] = "Reasoning"
    bad = _write(tmp_path / "bad.jsonl", rows)
    res = runner.invoke(_app(), ["train", "--labels", str(bad), "--model", "tfidf", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "bad.jsonl:7" in res.output and "Reasoning" in res.output
    assert not (tmp_path / "m").exists()
    (tmp_path / "j.jsonl").write_text('{"id": "x"\n')
    res = runner.invoke(_app(), ["classify", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "j.jsonl")])
    assert res.exit_code != 0 and "curation train" in res.output


def test_store_round_trip(tmp_path: Path, store: tuple[str, list[dict]]) -> None:
    db, rows = store
    runner = CliRunner()
    labs = Store(db).run(lambda con: sm.training_labels(con))
    gold = [x for x in labs if x.gold]
    assert len(gold) == 30 and all(x.origin == "adjudication" for x in gold if x.question_id in {rows[i]["id"] for i in (0, 10, 20)})
    assert len([x for x in labs if not x.gold]) == 150  # ties on gold dropped, imports ignored
    assert len(Store(db).run(lambda con: sm.training_labels(con, include_import=True))) == 180

    res = runner.invoke(_app(), ["train", "--labels", "store", "--model", "tfidf", "--out", str(tmp_path / "r1"), "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    r1 = json.loads(res.output)
    assert r1["round"] == 1 and r1["n_labels"] == 150
    # the store records the ids it saw: the 150 non-gold labels, never a gold item
    seen = Store(db).run(lambda con: sm.seen_ids(con, r1["model_version"]))
    assert seen == {x.question_id for x in labs if not x.gold}
    g = r1["gold"]
    assert g["n_gold"] == 30 and -1 <= g["kappa"] <= 1 and g["kappa_ci"][0] <= g["kappa"] <= g["kappa_ci"][1]
    assert g["human_kappa"] is not None and g["human_kappa_ci"][0] <= g["human_kappa"]

    res = runner.invoke(_app(), ["classify", "--model", str(tmp_path / "r1"), "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    version, preds = Store(db).run(sm.latest_predictions)
    assert version == r1["model_version"] and len(preds) == 260
    share = Store(db).run(sm.reasoning_share_by_benchmark)
    assert len(share) == 1 and share[0]["n"] == 260 and share[0]["ci_low"] <= share[0]["reasoning_share"] <= share[0]["ci_high"]

    res = runner.invoke(_app(), ["al", "next", "--size", "7", "--strategy", "entropy", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    nxt = json.loads(res.output)
    unlabeled = {r["id"] for r in rows[180:]}
    assert len(nxt["items"]) == 7 and {i["id"] for i in nxt["items"]} <= unlabeled
    assert all(i["suggestion"] in ("reasoning", "knowledge") and 0 <= i["reasoning_prob"] <= 1 for i in nxt["items"])
    items = Store(db).run(lambda con: con.execute(
        "SELECT b.kind, b.strategy, bi.suggestion_label FROM batch_items bi JOIN batches b ON b.id = bi.batch_id WHERE b.id = ?",
        [nxt["batch_id"]]).fetchall())
    assert len(items) == 7 and all(k == "active" and s == "entropy" and lab for k, s, lab in items)
    res = runner.invoke(_app(), ["al", "next", "--size", "5", "--strategy", "kmeans", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    km = json.loads(res.output)
    assert not {i["id"] for i in km["items"]} & {i["id"] for i in nxt["items"]}
    res = runner.invoke(_app(), ["al", "next", "--size", "4", "--db", db, "--json"])  # the default strategy
    assert res.exit_code == 0, res.output
    dflt = json.loads(res.output)
    # the default, auto, is entropy for a model fitted on fewer than AUTO_SWITCH labels
    assert dflt["requested_strategy"] == active.DEFAULT_STRATEGY == "auto" and len(dflt["items"]) == 4
    assert dflt["strategy"] == "entropy"
    assert not {i["id"] for i in dflt["items"]} & ({i["id"] for i in nxt["items"]} | {i["id"] for i in km["items"]})

    res = runner.invoke(_app(), ["al", "status", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    st = json.loads(res.output)
    assert st["stop"] is False and "two model rounds" in st["message"] and st["rounds"][0]["round"] == 1
    res = runner.invoke(_app(), ["al", "status", "--db", db])
    assert res.exit_code == 0 and "CONTINUE" in res.output

    res = runner.invoke(_app(), ["al", "flags", "--db", db, "--json", "--min-confidence", "0.6"])
    assert res.exit_code == 0, res.output
    fl = json.loads(res.output)
    assert fl["n_labels"] == 180 and all(f["model_confidence"] >= 0.6 for f in fl["flags"])


def test_train_from_empty_store_explains(tmp_path: Path) -> None:
    Store(tmp_path / "e.duckdb").run(lambda con: None)  # an empty store (a missing one is another error)
    res = CliRunner().invoke(_app(), ["train", "--labels", "store", "--model", "tfidf", "--out", str(tmp_path / "m"), "--db", str(tmp_path / "e.duckdb")])
    assert res.exit_code == 2 and "labeled non-gold" in res.output


def test_simulate_writes_curve(tmp_path: Path) -> None:
    oracle = _write(tmp_path / "o.jsonl", _rows(300))
    ev = _write(tmp_path / "e.jsonl", _rows(150, 300))
    res = CliRunner().invoke(_app(), ["al", "simulate", "--oracle", str(oracle), "--eval", str(ev), "--strategies", "entropy,random",
                                      "--budgets", "40,80", "--seeds", "0,1", "--out", str(tmp_path / "sim")])
    assert res.exit_code == 0, res.output
    for name in ("learning_curve.csv", "learning_curve.png", "simulation.json"):
        assert (tmp_path / "sim" / name).stat().st_size > 0
    assert (tmp_path / "sim" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "labels to 95%" in res.output and "sustained" in res.output
    sim = json.loads((tmp_path / "sim" / "simulation.json").read_text(encoding="utf-8"))
    assert set(sim["labels_to_95pct_sustained"]) == {"entropy", "random"} and sim["c"] == 4.0
    # the k-means cold start and the learner's C, from the command line; the table names the rows
    res = CliRunner().invoke(_app(), ["al", "simulate", "--oracle", str(oracle), "--eval", str(ev), "--strategies", "auto",
                                      "--budgets", "40", "--seeds", "0", "--init", "kmeans", "--c", "1",
                                      "--out", str(tmp_path / "cold"), "--json"])
    assert res.exit_code == 0, res.output
    cold = json.loads(res.output)
    assert cold["strategies"] == ["auto@kmeans0"] and cold["init"] == "kmeans" and cold["c"] == 1.0
    res = CliRunner().invoke(_app(), ["al", "simulate", "--oracle", str(oracle), "--eval", str(ev), "--init", "typiclust",
                                      "--budgets", "40", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "init" in res.output
    res = CliRunner().invoke(_app(), ["al", "simulate", "--oracle", str(oracle), "--eval", str(oracle), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "held out" in res.output
