"""The loop runs itself, end to end: two simulated annotators label through the store API
(`curation.services.annotate`) while a real `curation worker` process watches the store;
after N labels by people it retrains (tfidf), scores the pool, draws the next batch, and
the annotators' queues receive it; the round is recorded. Synthetic questions only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from curation.services import annotate, loop
from curation.store import Store, utcnow
from curation.store import jobs as sj
from curation.store import models as sm
from curation.store.batches import BatchItem, create_batch

pytestmark = pytest.mark.integration

RELIABILITY = Path(__file__).resolve().parents[1] / "reliability"
if str(RELIABILITY) not in sys.path:
    sys.path.insert(0, str(RELIABILITY))

from relkit import CURATION, run_cli, seed_questions  # noqa: E402
from workers import label_for  # noqa: E402

N = 12  # retrain after this many labels by people
K = 10  # questions in the next batch
ANNOTATORS = ("ann1", "ann2")


def seeded_store(path: Path, n_questions: int = 200, first_batch: int = N) -> tuple[Store, list[str]]:
    """A store of synthetic questions with a first batch of `first_batch` (one annotator each)."""
    st = Store(path, create=True)
    ids = seed_questions(st, n_questions)
    st.run(lambda con: create_batch(con, batch_id="start", kind="manual", items=[BatchItem(q) for q in ids[:first_batch]],
                                    overlap=1, show_suggestions=False, created_at=utcnow()))
    return st, ids


def label_until_empty(st: Store, annotators: tuple[str, ...] = ANNOTATORS, limit: int | None = None,
                      label_of: Callable[[str, str], str] = lambda annotator, qid: label_for(qid)) -> list[str]:
    """The annotators take turns labeling what their queues serve (`label_of(annotator,
    question id)`, default the same fixed label per question); returns labeled ids."""
    done: list[str] = []
    state = {a: annotate.fetch_next(st, a) for a in annotators}
    while any(s["task"] for s in state.values()) and (limit is None or len(done) < limit):
        for a in annotators:
            task = state[a]["task"]
            if task is None or (limit is not None and len(done) >= limit):
                continue
            q = task["question_id"]
            state[a] = annotate.submit_and_next(st, a, q, action="label", event_id=annotate.new_event_id(),
                                                label=label_of(a, q))
            done.append(q)
    return done


def start_worker(db: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CURATION), "worker", "--db", str(db), "--device", "cpu", "--poll-seconds", "0.2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CURATION_STORE_LINGER_S": "0.2"})


def wait_for(what: str, fn: Any, timeout: float = 120.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_worker(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return out + err


def test_worker_retrains_after_n_labels_and_the_next_batch_reaches_the_queues(tmp_path: Path) -> None:
    db = tmp_path / "loop.duckdb"
    st, ids = seeded_store(db)
    loop.set_policy(st, {"model": "tfidf", "retrain_after": N, "k": K, "strategy": "badge", "overlap": 1}, by="max")
    worker = start_worker(db)
    try:
        # N-1 labels: no round yet (the worker is watching)
        first = label_until_empty(st, limit=N - 1)
        time.sleep(1.5)
        assert st.run(sj.list_rounds) == [], "a round started before N labels by people"
        first += label_until_empty(st)
        assert len(first) == N
        assert {annotate.fetch_next(st, a)["task"] is None for a in ANNOTATORS} == {True}

        def next_task() -> dict[str, Any] | None:
            for a in ANNOTATORS:
                task = annotate.fetch_next(st, a)["task"]
                if task is not None:
                    return {"annotator": a, **task}
            return None

        task = wait_for("the next batch in an annotator's queue", next_task)
        assert task["batch_id"].startswith("active-loop001-")
        assert task["question_id"] not in first
        # the annotators label the new batch: both queues served it (overlap 1, K items)
        second = label_until_empty(st)
        assert len(second) == K and not set(second) & set(first)
        round1 = wait_for("round 1 closed", lambda: [r for r in st.run(sj.list_rounds) if r["state"] != "running"])[0]
        # K new labels < N: the worker does not start round 2 on its own ...
        time.sleep(1.5)
        assert len(st.run(sj.list_rounds)) == 1
    finally:
        log = stop_worker(worker)
    assert worker.returncode == 0, log
    assert round1["state"] == "done" and round1["n_new_labels"] == N, round1
    assert round1["batch_id"] == task["batch_id"]
    jobs = st.run(lambda con: sj.list_jobs(con, loop_round=1))
    assert sorted((j["kind"], j["state"], j["attempts"]) for j in jobs) == [
        ("al-next", "done", 1), ("classify", "done", 1), ("train", "done", 1)]
    models = st.run(sm.list_models)
    assert [m["version"] for m in models] == [round1["model_version"]]
    assert models[0]["n_train"] == N and models[0]["train_source"] == "store"
    preds = st.run(lambda con: sm.predictions(con, round1["model_version"]))
    assert len(preds) == len(ids)  # the whole pool was scored
    hist = loop.rounds(st)
    assert hist[0]["labels_used"] == N and hist[0]["seconds"] > 0
    assert "job" in log and "train: done" in log


# -- the stopping rule -------------------------------------------------------------------
# `seed_questions` writes "why does the mechanism explain ..." into odd-numbered questions
# and "which drug is first line for ..." into even ones: labels that follow the text
# (`text_label`) are learnable, so the model agrees with the gold set; labels by the hash of
# the id (`label_for`) are not.
GOLD = 20  # gold items, labeled by both annotators
FLIPPED = 2  # gold items ann2 labels the other way (adjudicated to the text's label)


def text_label(qid: str) -> str:
    return "reasoning" if int(qid[1:]) % 2 else "knowledge"


def other(label: str) -> str:
    return "knowledge" if label == "reasoning" else "reasoning"


def stopping_store(path: Path, learnable: bool) -> tuple[Store, list[str]]:
    """A store with a gold set of GOLD items labeled by both annotators (agreeing but on
    FLIPPED items, which a maintainer adjudicates), N start items, the loop set to retrain
    after K labels, draw K, and stop when fewer than 5 % of predictions change."""
    st, ids = seeded_store(path)
    gold = ids[-GOLD:]
    st.run(lambda con: create_batch(con, batch_id="gold", kind="gold", items=[BatchItem(q) for q in gold],
                                    overlap=2, show_suggestions=False, created_at=utcnow()))
    flipped = set(gold[:FLIPPED])

    def label_of(annotator: str, qid: str) -> str:
        if qid in gold:
            return other(text_label(qid)) if annotator == "ann2" and qid in flipped else text_label(qid)
        return text_label(qid) if learnable else label_for(qid)

    label_until_empty(st, label_of=label_of)
    for q in sorted(flipped):
        annotate.adjudicate(st, question_id=q, label=text_label(q), maintainer="max", note="the text says so")
    loop.set_policy(st, {"model": "tfidf", "retrain_after": K, "k": K, "strategy": "badge", "max_changed": 0.05},
                    by="max")
    st.label_of = label_of  # type: ignore[attr-defined]
    return st, ids


def run_worker_once(db: Path) -> None:
    r = run_cli(["worker", "--once", "--device", "cpu", "--db", str(db)], env={"CURATION_STORE_LINGER_S": "0"})
    assert r.returncode == 0, r.stderr


def two_rounds(tmp_path: Path, learnable: bool) -> tuple[Store, list[dict[str, Any]]]:
    """Round 1 (starts by itself: the gold and start labels are due), its batch labeled, then
    round 2 (starts by itself after K new labels), each run by a `curation worker --once`."""
    db = tmp_path / "stop.duckdb"
    st, _ = stopping_store(db, learnable)
    run_worker_once(db)
    [r1] = st.run(sj.list_rounds)
    assert r1["state"] == "done" and r1["batch_id"].startswith("active-loop001-"), r1
    assert not r1["status"]["stop"] and r1["status"]["changed_fraction"] is None  # one scoring: not stable yet
    assert len(label_until_empty(st, label_of=st.label_of)) == K  # type: ignore[attr-defined]
    run_worker_once(db)
    return st, st.run(sj.list_rounds)


def queued_tasks(st: Store) -> list[dict[str, Any]]:
    return [t for a in ANNOTATORS if (t := annotate.fetch_next(st, a)["task"]) is not None]


def test_the_loop_stops_by_itself_when_the_stopping_rule_holds(tmp_path: Path) -> None:
    st, rounds = two_rounds(tmp_path, learnable=True)
    r2 = rounds[-1]
    assert (r2["round"], r2["state"], r2["batch_id"]) == (2, "stopped", None), r2
    status = r2["status"]
    assert status["stop"] and status["kappa_reached"] and status["predictions_stable"]
    assert status["model_kappa"] >= status["human_kappa_ci_low"] and status["changed_fraction"] < 0.05
    assert r2["message"].startswith("STOP: both conditions hold; kappa: model-gold")
    # the al-next job drew nothing, and said why
    draw = next(j for j in st.run(lambda con: sj.list_jobs(con, loop_round=2)) if j["kind"] == "al-next")
    assert draw["state"] == "done" and draw["result"]["stopped"] and "batch_id" not in draw["result"]
    assert [b for b in st.run(lambda con: con.execute("SELECT id FROM batches WHERE id LIKE 'active-loop002%'").fetchall())] == []
    assert queued_tasks(st) == []
    loop_state = loop.loop_status(st)
    assert loop_state["state"] == f"stopped: round 2: {r2['message']}"
    assert loop_state["history"][-1]["model_kappa"] == status["model_kappa"]
    # stopped: more labels by people start no round (until a maintainer resumes the loop)
    extra = [q for q in seed_questions(st, K, prefix="x")]
    st.run(lambda con: create_batch(con, batch_id="more", kind="manual", items=[BatchItem(q) for q in extra],
                                    overlap=1, show_suggestions=False, created_at=utcnow()))
    assert len(label_until_empty(st)) == K
    assert loop.tick(st)["started"] is None and len(st.run(sj.list_rounds)) == 2
    loop.set_policy(st, pause=False, by="max")  # resuming clears the stop: the due round starts
    assert loop.tick(st)["started"]["round"] == 3


def test_the_loop_goes_on_while_the_model_disagrees_with_the_gold_set(tmp_path: Path) -> None:
    """The same store, but the annotators' training labels do not follow the text (the
    gold set still does): the model's gold kappa stays below the humans' lower bound, so
    round 2 draws the next batch and the loop stays on."""
    st, rounds = two_rounds(tmp_path, learnable=False)
    r2 = rounds[-1]
    assert (r2["round"], r2["state"]) == (2, "done"), r2
    status = r2["status"]
    assert not status["stop"] and not status["kappa_reached"]
    assert status["model_kappa"] < status["human_kappa_ci_low"]
    assert r2["batch_id"].startswith("active-loop002-") and r2["message"] == f"batch {r2['batch_id']} queued ({K} questions)"
    assert {t["batch_id"] for t in queued_tasks(st)} == {r2["batch_id"]}
    assert loop.loop_status(st)["state"] == "on"


def test_run_once_wait_runs_a_round_in_the_command(tmp_path: Path) -> None:
    """`curation loop run-once --wait` (no worker needed); the second round compares predictions."""
    db = tmp_path / "once.duckdb"
    st, _ = seeded_store(db)
    label_until_empty(st)
    env = {**os.environ, "CURATION_STORE_LINGER_S": "0"}
    set_cmd = [str(CURATION), "loop", "set", "--db", str(db), "--model", "tfidf", "--k", "5", "--retrain-after", "1000"]
    assert subprocess.run(set_cmd, capture_output=True, text=True, env=env).returncode == 0
    for n in (1, 2):
        r = subprocess.run([str(CURATION), "loop", "run-once", "--wait", "--device", "cpu", "--db", str(db)],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert f"round {n} queued" in r.stdout
        label_until_empty(st)
    hist = loop.rounds(st)
    assert [h["state"] for h in hist] == ["done", "done"]
    assert hist[0]["changed_fraction"] is None and hist[1]["changed_fraction"] is not None
    # `curation jobs list` shows the six jobs of the two rounds
    r = subprocess.run([str(CURATION), "jobs", "list", "--db", str(db), "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.count('"state": "done"') == 6


def test_loop_page_shows_rounds_and_its_buttons_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest of `ui/pages/loop.py` run directly by file, as a logged-in maintainer."""
    import streamlit
    from streamlit.testing.v1 import AppTest
    from test_app_annotator import login, password_hash

    from ui.common import USER_KEY

    db = tmp_path / "page.duckdb"
    monkeypatch.setenv("CURATION_DB", str(db))
    streamlit.cache_resource.clear()
    streamlit.cache_data.clear()
    st, _ = seeded_store(db)
    st.run(lambda con: con.executemany(
        "INSERT INTO users (name, role, password_hash, disabled, created_at) VALUES (?,?,?,false,?)",
        [[n, role, password_hash(), utcnow()] for n, role in (("ann1", "annotator"), ("boss", "maintainer"))]))
    label_until_empty(st)
    loop.set_policy(st, {"model": "tfidf", "retrain_after": 100, "k": 5})
    loop.run_round_now(st, by="boss")
    loop.run_worker(st, once=True, device="cpu")

    def page(user: str) -> AppTest:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "ui" / "pages" / "loop.py"), default_timeout=60)
        at.session_state[USER_KEY] = login(user).session_state[USER_KEY]
        return at.run()

    at = page("boss")
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][:3] == ["on", f"{0} / 100", "1"]
    tables = {str(t.value.columns[0]): t.value for t in at.dataframe}
    assert list(tables["Round"]["State"]) == ["done"] and list(tables["Round"]["Labels used"]) == [str(N)]
    assert sorted(tables["Job"]["Kind"]) == ["al-next", "classify", "train"]
    assert len(at.get("vega_lite_chart")) == 1  # seconds per round (no gold set: no kappa chart)

    at.button(key="loop_pause").click().run()
    assert loop.loop_status(st)["paused"] and [s.value for s in at.success] == ["Loop paused."]
    at.number_input(key="loop_p_k").set_value(7)
    at.button(key="FormSubmitter:loop_policy-Save the policy").click().run()
    assert loop.loop_status(st)["policy"]["k"] == 7
    at.button(key="loop_run_now").click().run()
    queued = loop.list_jobs(st, states=["queued"])
    assert len(queued) == 3 and any("Jobs are queued" in c.value for c in at.caption)
    at.selectbox(key="loop_cancel_pick").set_value(min(j["id"] for j in queued))
    at.button(key="loop_cancel").click().run()
    assert loop.list_jobs(st, states=["queued"]) == []  # the train job and the two waiting on it

    annotator = page("ann1")
    assert [e.value for e in annotator.error] == ["This page needs the maintainer role; you are logged in as annotator."]
