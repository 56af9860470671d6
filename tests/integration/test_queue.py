"""The annotation queue on a real DuckDB file: overlap, no repeats, even spread, leases,
suggestions, idempotent submits, undo, gold draw, exports, CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curation.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from curation.labels import parse_export_csv, parse_export_jsonl
from curation.services import annotate
from curation.store import Store, utcnow
from curation.store import annotations as astore
from curation.store import queue as q
from curation.store import users as users_store
from curation.store.batches import BatchItem, batch_items, create_batch

pytestmark = pytest.mark.integration


def add_questions(store: Store, n: int, *, datasets: tuple[str, ...] = ("medqa", "medmcqa"),
                  split: str = "test", prefix: str = "q") -> list[str]:
    ids = [f"{prefix}{i:04d}" for i in range(n)]

    def work(con) -> None:
        con.executemany(
            "INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, answer, "
            "source, text_hash, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [[qid, datasets[i % len(datasets)], split, f"Question {qid}?",
              json.dumps({"A": "yes", "B": "no"}), "A", "yes", "test", f"h-{qid}", utcnow()]
             for i, qid in enumerate(ids)],
        )

    store.run(work)
    return ids


def label_all(store: Store, annotator: str, label: str = "reasoning", limit: int = 10_000) -> list[str]:
    """Label everything the queue serves to `annotator`; returns the question ids in order."""
    seen: list[str] = []
    res = annotate.fetch_next(store, annotator)
    while res["task"] is not None and len(seen) < limit:
        qid = res["task"]["question_id"]
        seen.append(qid)
        res = annotate.submit_and_next(store, annotator, qid, action="label", label=label,
                                event_id=annotate.new_event_id(), guidelines_version="1.0")
    return seen


def labels_by_question(store: Store) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in store.run(astore.all_current_labels):
        out.setdefault(r["question_id"], []).append(r["annotator"])
    return out


def test_each_item_gets_k_distinct_annotators_no_repeats(store: Store) -> None:
    add_questions(store, 12)
    gold = annotate.draw_gold(store, 6, 2, seed=1)
    served = {a: label_all(store, a) for a in ("ann1", "ann2", "ann3")}
    for a, qids in served.items():
        assert len(qids) == len(set(qids)), f"{a} got an item twice"
    per_q = labels_by_question(store)
    assert len(per_q) == gold["size"] == 6
    assert all(len(v) == 2 == len(set(v)) for v in per_q.values())
    # the first two annotators to arrive do the whole batch; the third finds nothing left
    assert served["ann3"] == []


def test_work_is_spread_evenly_when_interleaved(store: Store) -> None:
    add_questions(store, 30)
    annotate.draw_gold(store, 9, 2, seed=2)
    annotators = ["a", "b", "c"]
    current = {a: annotate.fetch_next(store, a)["task"] for a in annotators}
    counts = dict.fromkeys(annotators, 0)
    while any(current.values()):
        for a in annotators:
            task = current[a]
            if task is None:
                continue
            counts[a] += 1
            current[a] = annotate.submit_and_next(store, a, task["question_id"], action="label",
                                           label="knowledge", event_id=annotate.new_event_id())["task"]
    assert sum(counts.values()) == 18
    # equal-speed annotators share the work (the last items may only fit some of them)
    assert max(counts.values()) - min(counts.values()) <= 2, counts
    # breadth first: every item gets its first label before any item gets a second
    order = [r["question_id"] for r in store.run(astore.annotation_rows)]
    assert len(set(order[:9])) == 9
    assert all(len(v) == 2 for v in labels_by_question(store).values())


def test_fewest_labels_first(store: Store) -> None:
    add_questions(store, 4)
    annotate.draw_gold(store, 3, 3, seed=0)
    first = annotate.fetch_next(store, "a")["task"]["question_id"]
    # b and c get the other two items (0 labels/leases) before the one a holds
    b = annotate.fetch_next(store, "b")["task"]["question_id"]
    c = annotate.fetch_next(store, "c")["task"]["question_id"]
    assert len({first, b, c}) == 3


def test_expired_lease_is_reassigned_and_does_not_block(store: Store) -> None:
    add_questions(store, 2)
    annotate.draw_gold(store, 1, 1, seed=0, batch_id="g")
    now = utcnow()
    held = store.run(lambda con: q.next_task(con, "leaver", now=now, lease_minutes=30))
    qid = held["task"]["question_id"]
    # while the lease is active, nobody else gets the item (K=1)
    assert store.run(lambda con: q.next_task(con, "other", now=now + timedelta(minutes=29)))["task"] is None
    later = store.run(lambda con: q.next_task(con, "other", now=now + timedelta(minutes=31)))
    assert later["task"]["question_id"] == qid
    # the leaver's late label is refused: "other" holds the slot now (K is a hard limit)
    with pytest.raises(ConflictError, match=f"question {qid} is already labeled or being labeled by 1 of 1"):
        store.run(lambda con: q.submit(con, "leaver", qid, action="label", label="reasoning",
                                       event_id="late", now=now + timedelta(minutes=32)))
    # once that lease lapses too and the slot is free again, a late label is kept, never lost
    assert store.run(lambda con: q.submit(con, "leaver", qid, action="label", label="reasoning",
                                          event_id="later", now=now + timedelta(minutes=62)))
    assert labels_by_question(store) == {qid: ["leaver"]}


def test_double_submit_is_idempotent(store: Store) -> None:
    add_questions(store, 3)
    annotate.draw_gold(store, 2, 1, seed=0)
    task = annotate.fetch_next(store, "a")["task"]
    r1 = annotate.submit_and_next(store, "a", task["question_id"], action="label", label="reasoning", event_id="E")
    r2 = annotate.submit_and_next(store, "a", task["question_id"], action="label", label="knowledge", event_id="E")
    assert r1["recorded"] and not r2["recorded"]
    rows = store.run(astore.annotation_rows)
    assert [(r["event_id"], r["label"]) for r in rows] == [("E", "reasoning")]
    assert r2["task"]["question_id"] == r1["task"]["question_id"]  # same next item, not a new lease


def test_skip_and_undo(store: Store) -> None:
    add_questions(store, 4)
    annotate.draw_gold(store, 3, 1, seed=0)
    t1 = annotate.fetch_next(store, "a")["task"]["question_id"]
    r = annotate.submit_and_next(store, "a", t1, action="label", label="reasoning", event_id="e1")
    t2 = r["task"]["question_id"]
    r = annotate.submit_and_next(store, "a", t2, action="skip", event_id="e2")
    assert r["done"] == 2 and r["remaining"] == 1
    # undo the skip: t2 comes back first; undo again: t1 comes back (label retracted)
    r = annotate.undo_and_next(store, "a", event_id="u1")
    assert r["undone"] == t2 and r["task"]["question_id"] == t2
    again = annotate.undo_and_next(store, "a", event_id="u1")  # same event: no second undo
    assert again["undone"] == t2
    r = annotate.undo_and_next(store, "a", event_id="u2")
    assert r["undone"] == t1 and r["task"]["question_id"] == t1
    assert store.run(astore.all_current_labels) == []  # the label is retracted, not deleted
    actions = [x["action"] for x in store.run(astore.annotation_rows)]
    assert actions == ["label", "skip", "retract", "retract"]
    r = annotate.submit_and_next(store, "a", t1, action="label", label="knowledge", event_id="e3")
    cur = store.run(astore.all_current_labels)
    assert [(c["question_id"], c["label"]) for c in cur] == [(t1, "knowledge")]
    assert annotate.undo_and_next(store, "nobody", event_id="u9")["undone"] is None


def test_skipped_items_go_to_someone_else(store: Store) -> None:
    add_questions(store, 2)
    annotate.draw_gold(store, 1, 1, seed=0)
    qid = annotate.fetch_next(store, "a")["task"]["question_id"]
    assert annotate.submit_and_next(store, "a", qid, action="skip", event_id="s")["task"] is None
    assert annotate.fetch_next(store, "b")["task"]["question_id"] == qid


def test_submit_needs_an_assignment(store: Store) -> None:
    ids = add_questions(store, 2)
    with pytest.raises(PermissionDenied):
        store.run(lambda con: q.submit(con, "a", ids[0], action="label", label="reasoning", event_id="x"))
    with pytest.raises(InputError):
        store.run(lambda con: q.submit(con, "a", ids[0], action="label", label="maybe", event_id="y"))


def test_gold_first_then_active_with_suggestions_stored(store: Store) -> None:
    ids = add_questions(store, 6)
    now = utcnow()
    store.run(lambda con: create_batch(
        con, batch_id="act", kind="active", overlap=1, show_suggestions=True, created_at=now - timedelta(days=1),
        items=[BatchItem(ids[5], "reasoning", 0.8)]))
    annotate.draw_gold(store, 2, 1, seed=0, batch_id="gold")
    seen = []
    res = annotate.fetch_next(store, "a")
    while res["task"]:
        t = res["task"]
        seen.append((t["batch_id"], t["suggestion_shown"], t["suggestion_label"]))
        res = annotate.submit_and_next(store, "a", t["question_id"], action="label", label="knowledge",
                                event_id=annotate.new_event_id())
    assert seen == [("gold", False, None), ("gold", False, None), ("act", True, "reasoning")]
    shown = {r["batch_id"]: r["suggestion_shown"] for r in store.run(astore.annotation_rows)}
    assert shown == {"gold": False, "act": True}


def test_gold_never_shows_suggestions_even_if_asked(store: Store) -> None:
    ids = add_questions(store, 2)
    store.run(lambda con: create_batch(
        con, batch_id="g", kind="gold", overlap=1, show_suggestions=True, created_at=utcnow(),
        items=[BatchItem(ids[0], "reasoning", 0.9)]))
    task = annotate.fetch_next(store, "a")["task"]
    assert task["suggestion_shown"] is False and task["suggestion_label"] is None


def test_draw_gold_stratified_test_only_and_excludes_prior_gold(store: Store, tmp_path: Path) -> None:
    add_questions(store, 30, datasets=("a", "b", "c"))
    add_questions(store, 10, split="train", prefix="t")
    g1 = annotate.draw_gold(store, 9, 2, seed=5)
    assert g1["per_dataset"] == {"a": 3, "b": 3, "c": 3}
    g2 = annotate.draw_gold(store, 21, 2, seed=6)
    items = store.run(lambda con: con.execute(
        "SELECT bi.question_id, q.split FROM batch_items bi JOIN questions q ON q.id = bi.question_id").fetchall())
    assert len(items) == 30 == len({i[0] for i in items})  # no question in two gold batches
    assert {i[1] for i in items} == {"test"}
    assert g2["size"] == 21
    with pytest.raises(NotFoundError):
        annotate.draw_gold(store, 1, 2, seed=7)
    # same seed on a fresh store gives the same draw
    other = Store(tmp_path / "other.duckdb")  # the same draw on either backend
    add_questions(other, 30, datasets=("a", "b", "c"))
    assert annotate.draw_gold(other, 9, 2, seed=5, batch_id="x")["per_dataset"] == g1["per_dataset"]
    ids1 = store.run(lambda con: [r["question_id"] for r in batch_items(con, g1["batch_id"])])
    ids2 = other.run(lambda con: [r["question_id"] for r in batch_items(con, "x")])
    assert ids1 == ids2


def test_draw_gold_rejects_bad_sizes(store: Store) -> None:
    add_questions(store, 3)
    with pytest.raises(InputError, match="only 3 are eligible"):
        annotate.draw_gold(store, 4, 2, seed=0)
    with pytest.raises(InputError):
        annotate.draw_gold(store, 0, 2)
    with pytest.raises(InputError):
        annotate.draw_gold(store, 1, 0)


def test_status_views(store: Store) -> None:
    add_questions(store, 4)
    store.run(lambda con: users_store.add_user(con, "a", role="annotator", password="password1"))
    annotate.draw_gold(store, 2, 2, seed=0, batch_id="g")
    label_all(store, "a")
    batch = store.run(q.batch_status)[0]
    assert (batch["items"], batch["labels_done"], batch["labels_needed"], batch["complete_items"]) == (2, 2, 4, 0)
    people = {p["annotator"]: p for p in store.run(q.annotator_status)}
    assert people["a"]["labeled"] == 2 and people["a"]["active_leases"] == 0
    assert store.run(lambda con: q.next_task_preview(con, "a")) == (2, 0)
    assert len(store.run(lambda con: q.my_history(con, "a"))) == 2


def test_users_store(store: Store) -> None:
    store.run(lambda con: users_store.add_user(con, "ann", role="annotator", password="password1"))
    with pytest.raises(InputError, match="already exists"):
        store.run(lambda con: users_store.add_user(con, "ann", role="annotator", password="password1"))
    row = store.run(lambda con: users_store.get_user(con, "ann"))
    assert row["password_hash"].startswith("$argon2id$") and "password1" not in row["password_hash"]
    assert store.run(lambda con: users_store.authenticate(con, "ann", "password1")) == {
        "name": "ann", "role": "annotator"}
    assert store.run(lambda con: users_store.authenticate(con, "ann", "wrong-pass")) is None
    assert store.run(lambda con: users_store.authenticate(con, "nobody", "password1")) is None
    store.run(lambda con: users_store.set_disabled(con, "ann", True))
    assert store.run(lambda con: users_store.authenticate(con, "ann", "password1")) is None
    with pytest.raises(NotFoundError):
        store.run(lambda con: users_store.set_disabled(con, "ghost", True))


# -- CLI --------------------------------------------------------------------------------


def _cli(args: list[str], db: Path, input: str | None = None):
    from curation.cli import app

    return CliRunner().invoke(app, [*args], input=input, env={"CURATION_DB": str(db)})


def test_cli_users_gold_agreement_export(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    store = Store(db)
    add_questions(store, 8)
    pw = tmp_path / "pw"
    pw.write_text("s3cret-pass\n")
    r = _cli(["users", "add", "ann1", "--role", "annotator", "--password-file", str(pw)], db)
    assert r.exit_code == 0, r.output
    r = _cli(["users", "add", "ann2", "--role", "annotator"], db, input="s3cret-pass\ns3cret-pass\n")
    assert r.exit_code == 0, r.output
    r = _cli(["users", "add", "ann3", "--role", "boss", "--password-file", str(pw)], db)
    assert r.exit_code == 2 and "role" in r.output
    r = _cli(["users", "add", "ann1", "--password-file", str(pw)], db)
    assert r.exit_code == 2 and "already exists" in r.output
    listed = json.loads(_cli(["users", "list", "--json"], db).output)
    assert [u["name"] for u in listed] == ["ann1", "ann2"] and "password_hash" not in listed[0]

    r = _cli(["gold", "draw", "--size", "4", "--overlap", "2", "--seed", "1", "--json"], db)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["size"] == 4
    r = _cli(["gold", "draw", "--size", "40"], db)
    assert r.exit_code == 2 and "only 4 are eligible" in r.output

    # ann1 says reasoning everywhere, ann2 alternates: kappa = 0 on 4 items with 2 labels
    label_all(store, "ann1", "reasoning")
    res = annotate.fetch_next(store, "ann2")
    i = 0
    while res["task"]:
        lab = "reasoning" if i % 2 == 0 else "knowledge"
        res = annotate.submit_and_next(store, "ann2", res["task"]["question_id"], action="label", label=lab,
                                event_id=annotate.new_event_id())
        i += 1
    rep = json.loads(_cli(["agreement", "--json", "--n-boot", "200"], db).output)
    assert rep["overall"]["n_items"] == 4
    assert rep["overall"]["percent_agreement"]["value"] == pytest.approx(0.5)
    assert rep["pairwise"][0]["kappa"] == pytest.approx(0.0)
    table = _cli(["agreement", "--n-boot", "200"], db)
    assert table.exit_code == 0 and "overall" in table.output

    out = tmp_path / "labels.csv"
    r = _cli(["labels", "export", "--format", "csv", "--out", str(out)], db)
    assert r.exit_code == 0, r.output
    rows_csv = parse_export_csv(out.read_text())
    rows_jsonl = parse_export_jsonl(_cli(["labels", "export", "--format", "jsonl"], db).output)
    assert len(rows_csv) == 8 == len(rows_jsonl)
    assert rows_csv == rows_jsonl  # the two formats round-trip to the same records
    assert {r["annotator"] for r in rows_csv} == {"ann1", "ann2"}
    assert all(r["source"] == "app" and r["created_at"] for r in rows_csv)
    r = _cli(["labels", "export", "--format", "xml"], db)
    assert r.exit_code == 2


@pytest.mark.parametrize("seed_", [0, 1, 2, 3])
def test_queue_choice_matches_the_pure_reference(store: Store, seed_: int) -> None:
    """Random label/skip/undo/lease-expiry histories, labels imported with old timestamps, a
    question in two batches, and a rolled-back transaction: the in-memory queue state picks
    exactly the item `assign.choose_next` picks from the same state computed in Python, with
    the same open/done counts."""
    import random

    import duckdb

    from curation import assign
    from curation.store.annotations import Annotation, append

    rng = random.Random(seed_)
    ids = add_questions(store, 12)
    now = utcnow()
    store.run(lambda con: create_batch(
        con, batch_id="act", kind="active", overlap=1, show_suggestions=False,
        created_at=now - timedelta(hours=1), items=[BatchItem(i) for i in ids[7:]]))
    annotate.draw_gold(store, 6, 2, seed=seed_, batch_id="gold")
    people = ["a", "b", "c"]
    clock = now

    def check(con: duckdb.DuckDBPyConnection, step: int) -> None:
        for who in people:
            cands = q.candidates(con, who, now=clock)
            ref = assign.choose_next(cands)
            assert q.peek_next(con, who, now=clock) == (ref.question_id if ref else None), step
            expected = (sum(c.done_by_me for c in cands), sum(assign.is_open(c) for c in cands))
            assert q.next_task_preview(con, who, now=clock) == expected, step

    for step in range(60):
        who = rng.choice(people)
        clock += timedelta(minutes=rng.choice([0, 1, 5, 31]))  # sometimes leases expire
        r = rng.random()
        with store.connect() as con:
            check(con, step)
            task = q.next_task(con, who, now=clock, lease_minutes=30)["task"]
            if task is not None and r < 0.55:
                q.submit(con, who, task["question_id"], action="label", now=clock,
                         label=rng.choice(["reasoning", "knowledge"]), event_id=f"e{step}")
            elif task is not None and r < 0.7:
                q.submit(con, who, task["question_id"], action="skip", event_id=f"e{step}", now=clock)
            elif r < 0.8:
                try:  # refused when others took the slot of a skipped item: nothing written
                    q.undo(con, who, event_id=f"u{step}", now=clock)
                except ConflictError:
                    pass
            elif r < 0.9:  # an imported label dated in the past (a Label Studio pull)
                append(con, [Annotation(
                    question_id=rng.choice(ids), annotator=rng.choice(people + ["ls-user"]), action="label",
                    label="reasoning", source="label_studio", created_at=clock - timedelta(days=1),
                    event_id=f"ls{step}")])
        if r >= 0.95:  # a transaction that writes a label, reads the queue, then rolls back
            with pytest.raises(RuntimeError), store.connect() as con:
                append(con, [Annotation(question_id=ids[0], annotator="c", action="label", label="knowledge",
                                        source="app", created_at=clock, event_id=f"rb{step}")])
                check(con, step)
                raise RuntimeError("roll back")
    with store.connect() as con:
        check(con, -1)
