"""The loop runs itself: background jobs, the worker that runs them, and the loop policy.

Jobs (`curation jobs ...`, the Loop page) are rows of the store's `jobs` table
(`curation.store.jobs`; rules in `curation.jobs`). A worker (`run_worker`, `curation
worker`) claims one job at a time in one `Store.run` (two workers never get the same job),
hands the store back, and runs the job through the SAME service function as the command
line (`learn.train_model`, `learn.classify`, `learn.al_next`, `build_release`,
Label Studio `pull`), so the store is held only for each short read or write, never
while a model trains. While the job computes, a heartbeat thread renews its lease every
third of the lease; progress callbacks write the stage and fraction (at most twice a
second). A worker that dies stops renewing: the next claim (by any worker) re-queues the
job, or fails it with the reason after `max_attempts`.

Jobs are idempotent: a train job writes its model to `<models_dir>/job-<id>` and an attempt
finding that folder registered returns it (an unregistered one, left by a killed attempt,
is removed and trained again: registration is one transaction, so there is never a
half-registered model); an al-next job's batch id is derived from the job id. A train job
that ends failed or cancelled never leaves its folder as a model (`settle_train_folder`):
a model it registered before the end is kept but withdrawn (never the current model), an
unregistered folder is moved to a hidden `.failed-`/`.cancelled-` name nothing loads.

The loop (`tick`, run by every worker between jobs): when the policy's condition holds
(`retrain_after` new labels by people since the last round), it records a round and queues
train -> classify -> al-next; the al-next job first checks the stopping rule (`al_status`)
and, if it holds, draws nothing: the round ends `stopped`, the loop stops and says why. A
failed round pauses the loop with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation import jobs as J
from curation.errors import CurationError, InputError, NotFoundError
from curation.metrics import finite
from curation.services import learn
from curation.store import Store, utcnow
from curation.store import jobs as sj

Hook = Callable[[str, int, int], None]
PROGRESS_INTERVAL_S = 0.5
# Stages whose every step is written (and so checked for a cancel), however close together:
# `train_model` reports `save model 1/2` right before it registers the model.
COMMIT_STAGES = frozenset({"save model"})


class JobCancelled(Exception):
    """The job is no longer this worker's (cancelled, or re-queued after a lost lease)."""


# ----------------------------------------------------------------------------------------
# jobs
# ----------------------------------------------------------------------------------------
def enqueue(store: Store, kind: str, params: dict[str, Any] | None = None, *, requested_by: str | None = None,
            depends_on: int | None = None, max_attempts: int = J.DEFAULT_MAX_ATTEMPTS) -> dict[str, Any]:
    """Queue a job; returns it."""
    J.check_kind(kind)
    if max_attempts < 1:
        raise InputError(f"--max-attempts must be >= 1, got {max_attempts}")

    def work(con: Any) -> dict[str, Any]:
        job_id = sj.enqueue(con, kind, params or {}, now=utcnow(), requested_by=requested_by,
                            depends_on=depends_on, max_attempts=max_attempts)
        return sj.get_job(con, job_id)

    return store.run(work)


def list_jobs(store: Store, *, states: Sequence[str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Jobs, newest first."""
    for s in states or ():
        if s not in J.STATES:
            raise InputError(f"job state {s!r} is not one of {', '.join(J.STATES)}")
    return store.run(lambda con: sj.list_jobs(con, states=states, limit=limit))


def get_job(store: Store, job_id: int) -> dict[str, Any]:
    return store.run(lambda con: sj.get_job(con, job_id))


def cancel_job(store: Store, job_id: int, *, by: str | None = None) -> dict[str, Any]:
    """Cancel a queued or running job (and the jobs waiting on it)."""
    return store.run(lambda con: sj.cancel(con, job_id, now=utcnow(), by=by))


def claim(store: Store, worker_id: str, *, lease_seconds: float = J.DEFAULT_LEASE_SECONDS,
          kinds: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Take the next job for `worker_id` (one transaction; see `store.jobs.claim`), after
    re-queuing or failing the jobs whose lease ran out (`requeue_expired`)."""
    requeue_expired(store)
    return store.run(lambda con: sj.claim(con, worker_id, now=utcnow(), lease_seconds=lease_seconds, kinds=kinds))


def requeue_expired(store: Store) -> list[dict[str, Any]]:
    """Re-queue (or fail) running jobs whose worker stopped renewing the lease; a train job
    failed so (its worker died on the last attempt) has its model folder settled
    (`settle_train_folder`)."""
    out = store.run(lambda con: sj.requeue_expired(con, utcnow()))
    for job in out:
        if job["state"] == "failed":
            job["note"] = settle_train_folder(store, int(job["id"]))
    return out


@dataclass
class _Reporter:
    """A job's progress callback and heartbeat; `cancelled` is set once the job is no
    longer this worker's, and the next progress call raises `JobCancelled`."""

    store: Store
    job_id: int
    worker_id: str
    lease_seconds: float
    hook: Hook | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    _last: float = 0.0
    _stage: str = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.cancelled.is_set():
            raise JobCancelled(f"job {self.job_id} is no longer run by {self.worker_id}")
        now = time.monotonic()
        new_stage = stage != self._stage
        if new_stage or done >= total or stage in COMMIT_STAGES or now - self._last >= PROGRESS_INTERVAL_S:
            self._last, self._stage = now, stage
            ok = self.store.run(lambda con: sj.report_progress(
                con, self.job_id, self.worker_id, fraction=J.progress_fraction(done, total),
                message=f"{stage} {done}/{total}", now=utcnow(), lease_seconds=self.lease_seconds, log=new_stage))
            if not ok:
                self.cancelled.set()
                raise JobCancelled(f"job {self.job_id} is no longer run by {self.worker_id}")
        if self.hook is not None:
            self.hook(stage, done, total)

    def beat_forever(self) -> None:
        while not self.stopped.wait(self.lease_seconds / 3):
            try:
                ok = self.store.run(lambda con: sj.heartbeat(con, self.job_id, self.worker_id, now=utcnow(),
                                                             lease_seconds=self.lease_seconds))
            except CurationError:
                continue  # the store was busy: the next beat renews the lease
            if not ok:
                self.cancelled.set()
                return


@dataclass
class JobContext:
    store: Store
    job: dict[str, Any]
    device: str
    progress: _Reporter
    scoring: dict[str, Any] = field(default_factory=dict)  # the worker's classify engine (`run_worker`)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.job.get("params") or {})

    @property
    def job_id(self) -> int:
        return int(self.job["id"])

    def dependency_result(self) -> dict[str, Any]:
        dep = self.job.get("depends_on")
        if dep is None:
            raise InputError(f"job {self.job_id} reads its model from the job it depends on, but it has none")
        return self.store.run(lambda con: sj.job_result(con, int(dep)))

    def model_dir(self) -> str | None:
        p = self.params
        if p.get("model_from") == "dependency":
            return str(self.dependency_result()["path"])
        return p.get("model_dir")


def _registered(store: Store, folder: Path) -> str | None:
    """The version of the complete model folder `folder` if the store registered it."""
    import json

    from curation.classifier import MODEL_FILE
    from curation.store import models as sm

    info = folder / MODEL_FILE
    if not info.is_file():
        return None
    version = str(json.loads(info.read_text(encoding="utf-8")).get("version"))
    return version if store.run(lambda con: sm.model_exists(con, version)) else None


def _train_folder(store: Store, job: dict[str, Any]) -> Path:
    """Where train job `job` writes its model: `out`, else `<models_dir>/job-<id>`."""
    p = dict(job.get("params") or {})
    return Path(p.get("out") or Path(p.get("models_dir") or store.home / "models") / f"job-{int(job['id']):06d}")


def settle_train_folder(store: Store, job_id: int) -> str | None:
    """After a train job ended failed or cancelled, its model folder never counts as its result:

    - registered (the job ended after `train_model` registered it): the model is kept (models
      are never deleted) but withdrawn: the job's result names it, and `store.models.
      current_model` and the loop never use it;
    - never registered: the folder is moved to `.<state>-job-<id>` beside it, which nothing
      loads (kept, not deleted: it may have cost hours of GPU; delete it when not needed).

    The job's message (and error, if it failed) and log say which. Returns that note, or
    None when there was nothing to settle (another kind, done, or no folder)."""
    job = get_job(store, job_id)
    if job["kind"] != "train" or job["state"] not in ("failed", "cancelled"):
        return None
    folder = _train_folder(store, job)
    if not folder.exists():
        return None
    version = _registered(store, folder)
    result: dict[str, Any] | None = None
    if version is not None:
        note = (f"its model {version} was registered before the job {job['state']}: kept (models are never "
                f"deleted) but withdrawn: it is not the current model and the loop does not use it")
        result = {"model_version": version, "path": str(folder.resolve()), "withdrawn": note}
    else:
        dest = folder.with_name(f".{job['state']}-{folder.name}")
        n = 1
        while dest.exists():
            n += 1
            dest = folder.with_name(f".{job['state']}-{folder.name}-{n}")
        try:
            folder.rename(dest)
        except FileNotFoundError:  # another worker settled it first
            return None
        note = (f"its model folder {folder} was never registered: moved to {dest}, which nothing loads "
                f"(delete it when it is not needed)")
    store.run(lambda con: sj.note_ended(con, job_id, note, now=utcnow(), result=result))
    return note


def _run_train(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    labels = str(p.get("labels", "store"))
    out = _train_folder(ctx.store, ctx.job)
    if out.exists():
        version = _registered(ctx.store, out)
        if version is not None or labels != "store":  # an earlier attempt finished: the same result
            return {"model_version": version, "path": str(out.resolve()), "reused": True}
        shutil.rmtree(out)  # a killed attempt's folder that was never registered
    res = learn.train_model(
        labels, str(p.get("model", "tfidf")), out, store=ctx.store, epochs=int(p.get("epochs", 3)),
        seed=int(p.get("seed", 0)), device=ctx.device, batch_size=int(p.get("batch_size", 16)),
        max_length=int(p.get("max_length", 256)), include_import=bool(p.get("include_import", False)),
        progress=ctx.progress)
    return {**res, "label_seq": p.get("label_seq")}


def _run_classify(ctx: JobContext) -> dict[str, Any]:
    path = ctx.model_dir()
    if not path:
        raise InputError("a classify job needs model_dir (a model folder) or model_from: dependency")
    p = {**ctx.scoring, **ctx.params}  # `engine: ray` (+ `address`, `actors`): scored on a Ray cluster
    res = learn.classify(path, store=ctx.store, device=ctx.device, batch_size=int(p.get("batch_size", 64)),
                         progress=ctx.progress, engine=str(p.get("engine", "local")), address=p.get("address"),
                         actors=int(p.get("actors", 1)))
    res.pop("rows", None)
    return {**res, "path": str(Path(path).resolve())}


def _run_al_next(ctx: JobContext) -> dict[str, Any]:
    from curation.store.batches import batch_items, get_batch

    p = ctx.params
    if p.get("check_stop"):
        status = learn.al_status(store=ctx.store, max_changed=float(p.get("max_changed", 0.01)))
        if status["stop"]:
            return {"stopped": True, "message": status["message"], "status": status}
    bid = str(p.get("batch_id") or (f"active-loop{int(p['round']):03d}-job{ctx.job_id:06d}" if p.get("round")
                                    else f"active-job{ctx.job_id:06d}"))
    try:
        have = ctx.store.run(lambda con: (get_batch(con, bid), batch_items(con, bid)))
    except NotFoundError:
        have = None
    if have is not None:  # an earlier attempt drew it
        batch, items = have
        return {"batch_id": bid, "strategy": batch["strategy"], "model_version": batch["model_version"], "reused": True,
                "items": [{"id": i["question_id"], "suggestion": i["suggestion_label"],
                           "reasoning_prob": i["suggestion_prob"]} for i in items]}
    return learn.al_next(store=ctx.store, size=int(p.get("size", 50)), strategy=p.get("strategy"),
                         model_dir=ctx.model_dir(), seed=int(p.get("seed", 0)), overlap=int(p.get("overlap", 1)),
                         show_suggestions=bool(p.get("show_suggestions", True)), batch_id=bid,
                         created_by=ctx.job.get("requested_by"), progress=ctx.progress)


def _run_release(ctx: JobContext) -> dict[str, Any]:
    from curation.release import build_release

    p = ctx.params
    version, out = p.get("version"), Path(p.get("out") or "exports")
    if not version:
        raise InputError("a release-build job needs params.version")
    if (out / str(version) / "manifest.json").is_file():
        return {"version": version, "path": str((out / str(version)).resolve()), "reused": True}
    manifest = build_release(ctx.store, version=str(version), out=out, model=p.get("model"),
                             include_restricted=bool(p.get("include_restricted", False)),
                             command=["curation", "worker", f"job {ctx.job_id}"])
    return {"version": version, "path": str((out / str(version)).resolve()), "row_counts": manifest.get("row_counts")}


def _run_ls_pull(ctx: JobContext) -> dict[str, Any]:
    from dataclasses import asdict

    from curation import labelstudio as lsmod

    p = ctx.params  # the URL and key come from the worker's environment, never from the store
    results = lsmod.pull(ctx.store, lsmod.open_api(), project=p.get("project"), page_size=int(p.get("page_size", 1000)))
    return {"projects": [asdict(r) for r in results]}


HANDLERS: dict[str, Callable[[JobContext], dict[str, Any]]] = {
    "train": _run_train, "classify": _run_classify, "al-next": _run_al_next,
    "release-build": _run_release, "ls-pull": _run_ls_pull,
}


def run_job(store: Store, job: dict[str, Any], worker_id: str, *, device: str = "auto",
            lease_seconds: float = J.DEFAULT_LEASE_SECONDS, hook: Hook | None = None,
            scoring: dict[str, Any] | None = None) -> str:
    """Run a claimed job to its end; returns its final state as this worker saw it."""
    rep = _Reporter(store, int(job["id"]), worker_id, lease_seconds, hook)
    beat = threading.Thread(target=rep.beat_forever, name=f"curation-job-{job['id']}-heartbeat", daemon=True)
    beat.start()
    store.close()  # hand the store back before computing
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        result = HANDLERS[job["kind"]](JobContext(store, job, device, rep, dict(scoring or {})))
    except JobCancelled:
        pass
    except CurationError as exc:
        error = str(exc)
    except Exception as exc:  # a bug or a library error: recorded with its traceback tail
        tail = "".join(traceback.format_exception(exc)[-3:]).strip()
        error = f"{type(exc).__name__}: {exc}\n{tail}"
    finally:
        rep.stopped.set()
        beat.join()
    if error is not None:
        state = _fail(store, job, worker_id, error)
    elif result is None:
        state = "cancelled"
    else:
        done = finite(result)
        ok = store.run(lambda con: sj.finish(con, int(job["id"]), worker_id, result=done, now=utcnow()))
        state = "done" if ok else "cancelled"
    if state != "done" and job["kind"] == "train":
        settle_train_folder(store, int(job["id"]))  # no-op unless the job is failed or cancelled
    return state


def _fail(store: Store, job: dict[str, Any], worker_id: str, error: str) -> str:
    ok = store.run(lambda con: sj.fail(con, int(job["id"]), worker_id, error=error, now=utcnow()))
    return "failed" if ok else "cancelled"


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(
    store: Store,
    *,
    worker_id: str | None = None,
    kinds: Sequence[str] | None = None,
    device: str = "auto",
    once: bool = False,
    lease_seconds: float = J.DEFAULT_LEASE_SECONDS,
    poll_seconds: float = 1.0,
    loop: bool = True,
    stop: threading.Event | None = None,
    hook: Hook | None = None,
    on_job: Callable[[dict[str, Any], str], None] | None = None,
    scoring: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Take jobs one at a time until `stop` is set (with `once`: until none is ready).
    With `loop`, each turn first lets the loop close a finished round or start a due one.
    `scoring`: how classify jobs score unless a job says otherwise, e.g. `{"engine": "ray",
    "address": "auto", "actors": 4}` hands them to a Ray cluster."""
    wid = worker_id or default_worker_id()
    kinds = J.check_kinds(kinds)
    engine = (scoring or {}).get("engine", "local")
    if engine not in learn.ENGINES:
        raise InputError(f"--engine {engine!r} is not one of {', '.join(learn.ENGINES)}")
    stop = stop or threading.Event()
    ran: list[dict[str, Any]] = []
    while not stop.is_set():
        if loop:
            tick(store)
        job = claim(store, wid, lease_seconds=lease_seconds, kinds=kinds)
        if job is None:
            if once:
                if loop:  # close a round whose jobs this claim failed or cancelled
                    tick(store)
                break
            store.close()
            stop.wait(poll_seconds)
            continue
        if on_job is not None:
            on_job(job, "running")
        state = run_job(store, job, wid, device=device, lease_seconds=lease_seconds, hook=hook, scoring=scoring)
        ran.append({"id": job["id"], "kind": job["kind"], "state": state})
        if on_job is not None:
            on_job(job, state)
    return {"worker_id": wid, "jobs": ran}


# ----------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------
def models_dir(store: Store) -> str:
    """Where the loop's models go: `models/loop` beside the store."""
    return str(store.home / "models" / "loop")


def _policy(row: dict[str, Any] | None) -> J.LoopPolicy:
    return J.LoopPolicy.from_dict(row["policy"]) if row else J.LoopPolicy()


def set_policy(store: Store, changes: dict[str, Any] | None = None, *, pause: bool | None = None,
               by: str | None = None) -> dict[str, Any]:
    """Change the policy (unset values keep theirs); `pause=True` pauses the loop,
    `pause=False` resumes it (and clears a stop). Returns `loop_status`."""

    def work(con: Any) -> None:
        row = sj.get_policy(con)
        policy = _policy(row).updated(changes or {})
        paused = bool(row["paused"]) if row and pause is None else bool(pause)
        stopped = None if pause is False or row is None else row["stopped_reason"]
        sj.set_policy(con, policy.to_dict(), paused=paused, stopped_reason=stopped, now=utcnow(), by=by)

    store.run(work)
    return loop_status(store)


def loop_status(store: Store) -> dict[str, Any]:
    """The policy, whether the loop is on, labels since the last round, the rounds, the jobs."""

    def read(con: Any) -> dict[str, Any]:
        row = sj.get_policy(con)
        last = sj.last_round(con)
        n_new = sj.new_human_labels(con, int(last["label_seq"]) if last else 0)
        return {"policy": _policy(row).to_dict(), "configured": row is not None,
                "paused": bool(row and row["paused"]), "stopped_reason": row and row["stopped_reason"],
                "new_labels": n_new, "rounds": sj.list_rounds(con),
                "jobs": sj.list_jobs(con, limit=50),
                "running": sj.list_jobs(con, states=["running"]), "queued": sj.list_jobs(con, states=["queued"])}

    out = store.run(read)
    p = out["policy"]
    state = ("off (no policy: `curation loop set`)" if not out["configured"] else
             f"stopped: {out['stopped_reason']}" if out["stopped_reason"] else "paused" if out["paused"] else "on")
    out["state"] = state
    out["history"] = history(out["rounds"])
    out["next_round_after"] = max(0, int(p["retrain_after"]) - int(out["new_labels"]))
    return out


def _start_round(con: Any, *, store_models: str, force: bool, by: str | None) -> dict[str, Any] | None:
    row = sj.get_policy(con)
    if row is None and not force:
        return None
    policy = _policy(row)
    last = sj.last_round(con)
    if last is not None and last["state"] == "running":
        if force:
            raise InputError(f"round {last['round']} is still running; wait for it or cancel its jobs")
        return None
    seq = sj.label_seq(con)
    n_new = sj.new_human_labels(con, int(last["label_seq"]) if last else 0)
    if not force and not J.round_due(policy, paused=bool(row and row["paused"]),
                                     stopped=bool(row and row["stopped_reason"]), open_round=False, new_labels=n_new):
        return None
    round_no = (int(last["round"]) if last else 0) + 1
    chain = J.round_chain(policy, round_no=round_no, models_dir=store_models, label_seq=seq)
    ids = sj.start_round(con, round_no=round_no, forced=force, requested_by=by, seq=seq, n_new=n_new,
                         policy=policy.to_dict(), chain=chain, now=utcnow(), max_attempts=policy.max_attempts)
    return {"round": round_no, "jobs": ids, "n_new_labels": n_new, "forced": force}


def run_round_now(store: Store, *, by: str | None = None) -> dict[str, Any]:
    """Queue a round now, whatever the label count (the loop's policy, else the defaults)."""
    started = store.run(lambda con: _start_round(con, store_models=models_dir(store), force=True, by=by))
    assert started is not None
    return started


def _close_round(store: Store, rnd: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    by_kind = {j["kind"]: j for j in jobs}
    last = by_kind.get("al-next")
    outcome = J.round_outcome([j["state"] for j in jobs], last["result"] if last else None)
    if outcome is None:
        return None
    state, message = outcome
    if state == "failed":
        bad = next(j for j in sorted(jobs, key=lambda j: j["id"]) if j["state"] != "done")
        message = f"{bad['kind']} job {bad['id']} {bad['state']}: {bad.get('error') or bad.get('message')}"
    policy = J.LoopPolicy.from_dict(rnd["policy"])
    status = learn.al_status(store=store, max_changed=policy.max_changed) if state != "failed" else None
    train_job = by_kind.get("train") or {}
    train = (train_job.get("result") or {}) if train_job.get("state") == "done" else {}  # never a withdrawn model
    batch = (last or {}).get("result") or {}

    def write(con: Any) -> bool:
        if not sj.end_round(con, int(rnd["round"]), state=state, message=message, now=utcnow(),
                            status=None if status is None else finite(status), model_version=train.get("model_version"),
                            batch_id=batch.get("batch_id")):
            return False
        row = sj.get_policy(con)
        if row is not None and state in ("stopped", "failed"):
            sj.set_policy(con, _policy(row).to_dict(), paused=state == "failed" or bool(row["paused"]),
                          stopped_reason=f"round {rnd['round']}: {message}" if state == "stopped" else row["stopped_reason"],
                          now=utcnow(), by="loop")
        return True

    closed = store.run(write)
    return {"round": rnd["round"], "state": state, "message": message} if closed else None


def tick(store: Store, *, by: str | None = None) -> dict[str, Any]:
    """One turn of the loop: close the open round if its jobs ended; start a round if due."""

    def read(con: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        last = sj.last_round(con)
        if last is None or last["state"] != "running":
            return last, []
        return last, sj.list_jobs(con, loop_round=int(last["round"]))

    last, jobs = store.run(read)
    out: dict[str, Any] = {"closed": None, "started": None}
    if last is not None and last["state"] == "running":
        out["closed"] = _close_round(store, last, jobs)
        if out["closed"] is None:
            return out
    out["started"] = store.run(lambda con: _start_round(con, store_models=models_dir(store), force=False, by=by))
    return out


def rounds(store: Store) -> list[dict[str, Any]]:
    """The loop's rounds with their figures (the Loop page's history), oldest first."""
    return history(store.run(sj.list_rounds))


def history(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Round rows (`store.jobs.list_rounds`) as the history table: labels used, model-gold
    kappa (on gold items the model never trained on) and human-human kappa with their CIs,
    the share of predictions that changed, seconds per round."""
    out = []
    for r in rows:
        st = r.get("status") or {}
        mine: dict[str, Any] = next((x for x in st.get("rounds", []) if x.get("version") == r.get("model_version")), {})
        took = (r["finished_at"] - r["started_at"]).total_seconds() if r.get("finished_at") else None
        out.append({"round": r["round"], "state": r["state"], "started_at": r["started_at"], "seconds": took,
                    "new_labels": r["n_new_labels"], "labels_used": mine.get("n_train"),
                    "model_kappa": mine.get("kappa"), "model_kappa_ci": mine.get("kappa_ci"),
                    "human_kappa": mine.get("human_kappa"), "human_kappa_ci": mine.get("human_kappa_ci"),
                    "n_gold": mine.get("n_gold"), "changed_fraction": st.get("changed_fraction"),
                    "model_version": r.get("model_version"), "batch_id": r.get("batch_id"), "message": r.get("message")})
    return out
