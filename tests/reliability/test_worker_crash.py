"""A worker SIGKILLed in the middle of a training job: the job is re-queued (or failed with
the reason once it has no attempts left) when its lease runs out, the next worker finishes
the round, and the store holds no duplicate or half-registered model.

Deterministic without mocking the store: the doomed worker is this file run as a script
(`python test_worker_crash.py --db D --pause-at STAGE/DONE`): the real
`curation.services.loop.run_worker` on the real store, training tfidf, with a progress hook
that, at the chosen stage, prints `PAUSED` and sleeps (its heartbeat keeps the lease alive,
as a long training would). The test kills it at that line. `save model 1/2` is the worst
moment: the model folder is written, the model is not registered yet.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(ROOT), str(HERE), str(ROOT / "tests" / "integration")):
    if p not in sys.path:
        sys.path.insert(0, p)

from curation.services import loop  # noqa: E402
from curation.store import Store  # noqa: E402
from curation.store import jobs as sj  # noqa: E402
from curation.store import models as sm  # noqa: E402

pytestmark = pytest.mark.reliability

LEASE = 2.0


def doomed_worker(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--pause-at", help="STAGE/DONE, e.g. 'save model/1'")
    ap.add_argument("--claim-only", metavar="WORKER_ID", help="claim jobs until none is left; print CLAIMED <id> each")
    args = ap.parse_args(argv)
    if args.claim_only:
        st = Store(args.db)
        while (job := loop.claim(st, args.claim_only, lease_seconds=600)) is not None:
            sys.stdout.write(f"CLAIMED {job['id']}\n")
            sys.stdout.flush()
        return
    stage, done = args.pause_at.rsplit("/", 1)

    def hook(s: str, d: int, total: int) -> None:
        if s == stage and d == int(done):
            sys.stdout.write(f"PAUSED {s} {d}/{total}\n")
            sys.stdout.flush()
            time.sleep(3600)

    loop.run_worker(Store(args.db), worker_id="doomed", device="cpu", lease_seconds=LEASE, poll_seconds=0.1, hook=hook)


def _start_doomed(db: Path, pause_at: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen([sys.executable, str(Path(__file__)), "--db", str(db), "--pause-at", pause_at],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "CURATION_STORE_LINGER_S": "0.1"})
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _wait_paused(proc: subprocess.Popen[str], lines: queue.Queue[str], timeout: float = 120) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("PAUSED"):
            return line
    proc.kill()
    raise AssertionError("the doomed worker never paused:\n" + "".join(seen))


def _setup(tmp_path: Path, **policy: Any) -> tuple[Path, Store]:
    from test_loop import N, label_until_empty, seeded_store

    db = tmp_path / "crash.duckdb"
    st, _ = seeded_store(db)
    label_until_empty(st)
    loop.set_policy(st, {"model": "tfidf", "retrain_after": N, "k": 5, **policy}, by="max")
    return db, st


def _no_half_models(st: Store, folder: Path) -> list[dict[str, Any]]:
    """Every registered model is whole on disk; no seen-id rows of unregistered models; no
    staging leftovers next to the models."""
    models = st.run(sm.list_models)
    items = st.run(lambda con: {r[0] for r in con.execute("SELECT DISTINCT model_version FROM model_items").fetchall()})
    assert items <= {m["version"] for m in models}
    for m in models:
        info = json.loads((Path(m["path"]) / "curation_model.json").read_text(encoding="utf-8"))
        assert info["version"] == m["version"]
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []
    return models


def test_killed_after_saving_before_registering_is_requeued_and_finished_once(tmp_path: Path) -> None:
    db, st = _setup(tmp_path)
    proc, lines = _start_doomed(db, "save model/1")
    _wait_paused(proc, lines)
    folder = Path(loop.models_dir(st)) / "job-000001"
    job = loop.get_job(st, 1)
    assert (job["state"], job["worker_id"], job["attempts"]) == ("running", "doomed", 1)
    assert (folder / "curation_model.json").is_file()  # written ...
    assert st.run(sm.list_models) == []  # ... not registered
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    time.sleep(LEASE + 0.5)
    loop.requeue_expired(st)
    job = loop.get_job(st, 1)
    assert job["state"] == "queued" and job["worker_id"] is None
    assert "doomed stopped renewing its lease" in job["message"] and "re-queued" in job["message"]

    from relkit import run_cli

    r = run_cli(["worker", "--once", "--device", "cpu", "--db", str(db)], env={"CURATION_STORE_LINGER_S": "0"})
    assert r.returncode == 0, r.stderr
    job = loop.get_job(st, 1)
    assert (job["state"], job["attempts"]) == ("done", 2)
    assert "stopped renewing its lease" in job["log_tail"]
    models = _no_half_models(st, folder)
    assert len(models) == 1 and models[0]["path"] == str(folder.resolve())
    rnd = st.run(sj.list_rounds)
    assert [(x["round"], x["state"], x["model_version"]) for x in rnd] == [(1, "done", models[0]["version"])]
    assert all(j["state"] == "done" for j in st.run(lambda con: sj.list_jobs(con, loop_round=1)))


@pytest.mark.parametrize("pause_at", ["save model/0", "save model/1"])
def test_killed_on_its_last_attempt_fails_with_the_reason_and_pauses_the_loop(tmp_path: Path, pause_at: str) -> None:
    """Killed when trained and nothing written yet (`save model/0`), or when its folder is
    written but not registered (`save model/1`): failed after its one attempt, and no model
    folder is left where a model is looked for (a written one is moved aside, and the
    job's error says where)."""
    db, st = _setup(tmp_path, max_attempts=1)
    proc, lines = _start_doomed(db, pause_at)
    _wait_paused(proc, lines)
    folder = Path(loop.models_dir(st)) / "job-000001"
    written = pause_at.endswith("/1")
    assert (folder / "curation_model.json").is_file() == written
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(LEASE + 0.5)

    from relkit import run_cli

    r = run_cli(["worker", "--once", "--device", "cpu", "--db", str(db)], env={"CURATION_STORE_LINGER_S": "0"})
    assert r.returncode == 0, r.stderr
    train, score, draw = sorted(st.run(lambda con: sj.list_jobs(con, loop_round=1)), key=lambda j: j["id"])
    assert train["state"] == "failed" and "gave up after 1 attempt" in train["error"]
    assert score["state"] == draw["state"] == "cancelled" and "waits for" in score["message"]
    assert st.run(sm.list_models) == [] and st.run(sm.current_model) is None
    assert not folder.exists()
    aside = folder.with_name(".failed-job-000001")
    assert aside.exists() == written
    if written:  # moved whole, and the error says so
        assert (aside / "curation_model.json").is_file()
        assert f"its model folder {folder} was never registered: moved to {aside}" in train["error"]
        assert "moved to" in train["log_tail"]
    else:
        assert "moved to" not in train["error"]
    status = loop.loop_status(st)
    assert status["paused"] and status["history"][0]["state"] == "failed"
    assert "stopped renewing its lease" in status["history"][0]["message"]
    # paused: a worker starts no new round by itself, however many labels arrive
    loop.tick(st)
    assert len(st.run(sj.list_rounds)) == 1


def _stage_hook(stage: str, done: int, action: Any) -> Any:
    def hook(s: str, d: int, total: int) -> None:
        if s == stage and d == done:
            action()
    return hook


def test_a_training_error_after_writing_the_folder_fails_the_job_and_moves_the_folder(tmp_path: Path) -> None:
    """An error between writing the model folder and registering it (here raised by the
    progress hook at `save model 1/2`, where a full disk or a store error would strike):
    the job fails at once, the folder never registered is moved to `.failed-job-...`, and
    the job's error says so; nothing takes it as the current model."""
    _, st = _setup(tmp_path)

    def boom() -> None:
        raise RuntimeError("disk full while registering")

    loop.run_worker(st, once=True, device="cpu", hook=_stage_hook("save model", 1, boom))
    train = loop.get_job(st, 1)
    folder = Path(loop.models_dir(st)) / "job-000001"
    assert train["state"] == "failed" and "RuntimeError: disk full while registering" in train["error"]
    assert f"was never registered: moved to {folder.with_name('.failed-job-000001')}" in train["error"]
    assert not folder.exists() and (folder.with_name(".failed-job-000001") / "curation_model.json").is_file()
    assert st.run(sm.list_models) == [] and st.run(sm.current_model) is None
    assert loop.loop_status(st)["history"][0]["state"] == "failed"


@pytest.mark.parametrize("at", [0, 1, 2])
def test_cancelled_while_saving_never_leaves_a_current_model(tmp_path: Path, at: int) -> None:
    """The maintainer cancels round 2's training while it saves: before the folder is
    written (`save model 0/2`), after it is written (1/2: registration is already under
    way) or after the model is registered (2/2). A model registered before the cancel took
    effect is kept (models are never deleted) but withdrawn: round 1's model stays the
    current one, the loop uses none of round 2, and the job and the round say so. A folder
    never registered is moved to `.cancelled-job-...`."""
    from test_loop import label_until_empty

    from curation.services import learn

    _, st = _setup(tmp_path)
    loop.run_worker(st, once=True, device="cpu")  # round 1 starts by itself (N labels) and ends
    [first] = st.run(sm.list_models)
    label_until_empty(st)  # round 1's batch
    train_id = loop.run_round_now(st, by="max")["jobs"][0]
    loop.run_worker(st, once=True, device="cpu",
                    hook=_stage_hook("save model", at, lambda: loop.cancel_job(st, train_id, by="boss")))

    job = loop.get_job(st, train_id)
    folder = Path(loop.models_dir(st)) / f"job-{train_id:06d}"
    assert job["state"] == "cancelled" and job["message"].startswith("cancelled by boss")
    models = st.run(sm.list_models)
    assert st.run(sm.current_model)["version"] == first["version"]
    if at == 0:  # never registered: moved aside
        assert [m["version"] for m in models] == [first["version"]]
        assert not folder.exists() and (folder.with_name(f".cancelled-job-{train_id:06d}") / "curation_model.json").is_file()
        assert "was never registered: moved to" in job["message"]
    else:  # registered: kept, withdrawn
        [_, second] = models
        assert second["path"] == str(folder.resolve()) and (folder / "curation_model.json").is_file()
        assert job["result"]["model_version"] == second["version"] and "withdrawn" in job["result"]
        assert f"its model {second['version']} was registered before the job cancelled" in job["message"]
        assert "not the current model" in job["message"]
        assert st.run(lambda con: sm.current_model(con, name=second["version"]))["version"] == second["version"]
        assert learn.al_next(store=st, size=2, strategy="random")["model_version"] == first["version"]
    rnd = st.run(sj.list_rounds)[-1]
    assert (rnd["round"], rnd["state"], rnd["model_version"], rnd["batch_id"]) == (2, "failed", None, None)
    assert f"train job {train_id} cancelled: cancelled by boss" in rnd["message"]
    assert loop.loop_status(st)["paused"]
    assert all(j["state"] == "cancelled" for j in st.run(lambda con: sj.list_jobs(con, loop_round=2)))


def test_two_workers_never_claim_the_same_job(tmp_path: Path) -> None:
    st = Store(tmp_path / "race.duckdb", create=True)
    ids = [loop.enqueue(st, "release-build", {"version": f"v{i}"})["id"] for i in range(60)]
    st.close()
    procs = [subprocess.Popen([sys.executable, str(Path(__file__)), "--db", str(st.path), "--claim-only", f"w{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "CURATION_STORE_LINGER_S": "0"}) for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    claimed = [[int(x.split()[1]) for x in out.splitlines() if x.startswith("CLAIMED ")] for out, _ in outs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    flat = [i for c in claimed for i in c]
    assert sorted(flat) == ids  # every job once, none twice
    owners = {j["id"]: j["worker_id"] for j in loop.list_jobs(st, limit=100)}
    for i, c in enumerate(claimed):
        assert all(owners[j] == f"w{i}" for j in c)


if __name__ == "__main__":
    doomed_worker()
