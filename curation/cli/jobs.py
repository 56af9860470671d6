"""`curation worker`, `curation jobs list|show|cancel`, `curation loop status|set|run-once`.

Thin Typer wrappers over `curation.services.loop`: parse options, call one function, print.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from curation.active import CHOICES, DEFAULT_STRATEGY, DEFAULT_STRATEGY_WHY
from curation.cli._common import DbOption, JsonOption, console, handle_errors, print_json, store
from curation.errors import InputError
from curation.metrics import finite
from curation.services import loop


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False)


@handle_errors
def worker_cmd(
    device: Annotated[str, typer.Option(help="auto (CUDA+bf16 if available, else CPU), cpu, cuda[:N]: where jobs train and score.")] = "auto",
    kinds: Annotated[str | None, typer.Option("--kinds", help="Comma-separated job kinds to run (train, classify, al-next, release-build, ls-pull) [default: all].")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run the jobs that are ready, then exit.")] = False,
    lease_seconds: Annotated[float, typer.Option("--lease-seconds", min=1.0, help="A job whose worker sends no heartbeat for this long is re-queued.")] = 60.0,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=0.05, help="How often an idle worker looks for work.")] = 1.0,
    run_loop: Annotated[bool, typer.Option("--loop/--no-loop", help="Also start and close the loop's rounds.")] = True,
    worker_id: Annotated[str | None, typer.Option("--id", help="Worker name in the jobs table [default: host:pid].")] = None,
    engine: Annotated[str, typer.Option("--engine", help="How classify jobs score: local, or ray (a Ray cluster; pip install \"curation[ray]\").")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="With --engine ray: the cluster (e.g. auto) [default: a local one per job].")] = None,
    actors: Annotated[int, typer.Option("--actors", min=1, help="With --engine ray: scoring actors (one model each; one GPU each where there are GPUs).")] = 1,
    db: DbOption = None,
) -> None:
    """Take queued jobs one at a time and run them (Ctrl-C or SIGTERM: stop after the current job)."""
    st = store(db)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():  # a second signal: stop now (the job's lease runs out; another worker retries it)
            raise KeyboardInterrupt
        stop.set()
        _say("stopping after the current job (signal again to stop now)")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_job(job: dict[str, Any], state: str) -> None:
        _say(f"job {job['id']} {job['kind']}: {state}")

    wid = worker_id or loop.default_worker_id()
    _say(f"worker {wid} on {st.key} (device {device}, kinds {kinds or 'all'})")
    out = loop.run_worker(st, worker_id=wid, kinds=kinds.split(",") if kinds else None, device=device, once=once,
                          lease_seconds=lease_seconds, poll_seconds=poll_seconds, loop=run_loop, stop=stop, on_job=on_job,
                          scoring={"engine": engine, "address": address, "actors": actors})
    _say(f"worker {wid}: {len(out['jobs'])} job(s) run")


def _fmt_job(j: dict[str, Any]) -> list[str]:
    when = j.get("finished_at") or j.get("started_at") or j.get("created_at")
    return [str(j["id"]), j["kind"], j["state"], f"{float(j['progress']):.0%}", str(j.get("message") or ""),
            str(j.get("worker_id") or ""), f"{when:%Y-%m-%d %H:%M:%S}" if when else ""]


@handle_errors
def jobs_list_cmd(
    state: Annotated[str | None, typer.Option("--state", help="Comma-separated states to show.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    rows = loop.list_jobs(store(db), states=state.split(",") if state else None, limit=limit)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    t = Table("id", "kind", "state", "progress", "message", "worker", "time (UTC)")
    for j in rows:
        t.add_row(*_fmt_job(j))
    console.print(t)


@handle_errors
def jobs_show_cmd(job_id: Annotated[int, typer.Argument(help="Job id.")], db: DbOption = None,
                  as_json: JsonOption = False) -> None:
    """One job: parameters, state, progress, log tail, result or error."""
    j = loop.get_job(store(db), job_id)
    if as_json:
        print_json(j)
        return
    for key in ("id", "kind", "state", "progress", "message", "requested_by", "depends_on", "loop_round",
                "attempts", "max_attempts", "worker_id", "created_at", "started_at", "heartbeat_at",
                "lease_expires_at", "finished_at", "params", "error"):
        if j.get(key) is not None:
            _say(f"{key}: {j[key]}")
    if j.get("result") is not None:
        import json

        _say("result: " + json.dumps(finite(j["result"]), default=str)[:2000])
    if j.get("log_tail"):
        _say("log:\n" + j["log_tail"])


@handle_errors
def jobs_cancel_cmd(job_id: Annotated[int, typer.Argument(help="Job id.")], db: DbOption = None,
                    as_json: JsonOption = False) -> None:
    """Cancel a queued or running job (a running job stops at its next progress report)."""
    import getpass

    j = loop.cancel_job(store(db), job_id, by=getpass.getuser())
    if as_json:
        print_json(j)
        return
    _say(f"job {j['id']} {j['kind']}: {j['message']}")


def _print_status(res: dict[str, Any]) -> None:
    p = res["policy"]
    _say(f"loop: {res['state']}")
    _say("policy: " + ", ".join(f"{k}={v}" for k, v in p.items()))
    _say(f"new labels by people since the last round: {res['new_labels']} (a round starts at {p['retrain_after']})")
    for j in res["running"]:
        _say(f"running: job {j['id']} {j['kind']} {float(j['progress']):.0%} {j.get('message') or ''}")
    if res["queued"]:
        _say("queued: " + ", ".join(f"{j['id']} {j['kind']}" for j in sorted(res["queued"], key=lambda j: j["id"])))
    for r in res["history"]:
        k = "-" if r["model_kappa"] is None else f"{r['model_kappa']:.3f}"
        _say(f"round {r['round']}: {r['state']}; labels used {r['labels_used'] or '-'}, model-gold kappa {k}; {r['message'] or ''}")


@handle_errors
def loop_status_cmd(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The loop's policy, state, running and queued jobs, and rounds."""
    res = loop.loop_status(store(db))
    if as_json:
        print_json(finite(res))
        return
    _print_status(res)


@handle_errors
def loop_set_cmd(
    model: Annotated[str | None, typer.Option("--model", help="Base to train: a Hub id, a folder, minilm or tfidf.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help=f"{' | '.join(CHOICES)} (default {DEFAULT_STRATEGY}: {DEFAULT_STRATEGY_WHY})")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Training batch size.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs")] = None,
    retrain_after: Annotated[int | None, typer.Option("--retrain-after", help="Start a round after this many new labels by people.")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Questions in the next active-learning batch.")] = None,
    overlap: Annotated[int | None, typer.Option("--overlap", help="Annotators per question of that batch.")] = None,
    max_changed: Annotated[float | None, typer.Option("--max-changed", help="Stopping rule: share of predictions that may still change.")] = None,
    pause: Annotated[bool, typer.Option("--pause", help="Pause the loop (no round starts by itself).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume a paused or stopped loop.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the loop's policy (settings not given keep their value); turns the loop on."""
    import getpass

    if pause and resume:
        raise InputError("--pause and --resume contradict each other; pass one")
    changes = {"model": model, "strategy": strategy, "batch_size": batch_size, "epochs": epochs,
               "retrain_after": retrain_after, "k": k, "overlap": overlap, "max_changed": max_changed}
    res = loop.set_policy(store(db), changes, pause=True if pause else (False if resume else None), by=getpass.getuser())
    if as_json:
        print_json(finite(res))
        return
    _print_status(res)


@handle_errors
def loop_run_once_cmd(
    wait: Annotated[bool, typer.Option("--wait", help="Run the round's jobs in this process instead of leaving them to a worker.")] = False,
    device: Annotated[str, typer.Option(help="With --wait: auto, cpu, cuda[:N].")] = "auto",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a round now (train -> classify -> al-next), whatever the label count."""
    import getpass

    st = store(db)
    started = loop.run_round_now(st, by=getpass.getuser())
    if wait:
        loop.run_worker(st, device=device, once=True)
    status = loop.loop_status(st) if wait else None
    if as_json:
        print_json(finite({"started": started, "status": status}))
        return
    _say(f"round {started['round']} queued: jobs {', '.join(map(str, started['jobs']))}")
    if status is not None:
        _print_status(status)


def register(app: typer.Typer) -> None:
    """Add `worker`, the `jobs` group and the `loop` group."""
    app.command("worker")(worker_cmd)
    jobs = typer.Typer(help="Background jobs run by `curation worker`.", no_args_is_help=True)
    jobs.command("list")(jobs_list_cmd)
    jobs.command("show")(jobs_show_cmd)
    jobs.command("cancel")(jobs_cancel_cmd)
    app.add_typer(jobs, name="jobs")
    lp = typer.Typer(help="The active-learning loop: its policy, state and rounds.", no_args_is_help=True)
    lp.command("status")(loop_status_cmd)
    lp.command("set")(loop_set_cmd)
    lp.command("run-once")(loop_run_once_cmd)
    app.add_typer(lp, name="loop")
