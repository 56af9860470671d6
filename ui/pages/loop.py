"""Loop (maintainers): the active-learning loop that runs itself. Its state and policy (a
form), the running job with a live progress bar, the job queue, the history of rounds
(labels used, model-vs-gold and human-human kappa with CIs on items the model never
trained on, predictions changed, time per round) as a table and charts, and buttons to run
a round now, cancel a job, or pause / resume the loop. A `curation worker` runs the jobs;
this page only reads the store and queues or cancels work (`curation.services.loop`)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.common import require_role

require_role("maintainer")

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402

from curation import jobs as J  # noqa: E402
from curation import plots  # noqa: E402
from curation.errors import CurationError  # noqa: E402
from curation.services import loop  # noqa: E402
from ui import widgets as w  # noqa: E402
from ui.common import get_store, require_active_user  # noqa: E402

store = get_store()
st.title("Active-learning loop")
JOB_COLUMNS = [
    ("id", "Job", w.text), ("kind", "Kind", w.text), ("state", "State", w.text), ("progress", "Progress", w.pct),
    ("message", "Message", w.text), ("loop_round", "Round", w.text), ("attempts", "Attempts", w.text),
    ("worker_id", "Worker", w.text), ("requested_by", "Asked by", w.text), ("created_at", "Queued", w.when),
]


def _act(fn: Any, done: str) -> None:
    """A button callback: the maintainer checked now, then the action; its outcome shown."""
    who = require_active_user("maintainer")
    if who is None:
        return
    try:
        fn(str(who["name"]))
    except CurationError as exc:
        st.session_state["loop_flash"] = ("error", str(exc))
        return
    st.session_state["loop_flash"] = ("success", done)


def _run_now() -> None:
    _act(lambda by: loop.run_round_now(store, by=by), "A round was queued; a worker runs it.")


def _pause(pause: bool) -> None:
    _act(lambda by: loop.set_policy(store, pause=pause, by=by), "Loop paused." if pause else "Loop resumed.")


def _cancel() -> None:
    job_id = st.session_state.get("loop_cancel_pick")
    if job_id is not None:
        _act(lambda by: loop.cancel_job(store, int(job_id), by=by), f"Job {job_id} cancelled.")


def _save_policy() -> None:
    keys = ("model", "strategy", "batch_size", "epochs", "retrain_after", "k", "overlap", "max_changed", "max_attempts")
    changes = {k: st.session_state[f"loop_p_{k}"] for k in keys}
    _act(lambda by: loop.set_policy(store, changes, by=by), "Policy saved.")


if (flash := st.session_state.pop("loop_flash", None)) is not None:
    (st.error if flash[0] == "error" else st.success)(flash[1])


@st.fragment(run_every=2)
def live() -> None:
    """The loop's state, the running jobs' progress and the queue; refreshed every 2 s."""
    status = loop.loop_status(store)
    p = status["policy"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Loop", status["state"].split(":")[0])
    c2.metric("New labels by people since the last round", f"{status['new_labels']} / {p['retrain_after']}")
    c3.metric("Rounds", len(status["rounds"]))
    if status["stopped_reason"]:
        st.info(f"The loop stopped by itself: {status['stopped_reason']}")
    st.subheader("Running")
    if not status["running"]:
        st.caption("No job is running." + (" Jobs are queued: is a `curation worker` running?" if status["queued"] else ""))
    for j in status["running"]:
        st.progress(float(j["progress"]), text=f"Job {j['id']} {j['kind']} (round {j['loop_round'] or '-'}): {j['message'] or ''}")
    st.subheader("Jobs")
    if status["jobs"]:
        w.show_table(w.table(status["jobs"], JOB_COLUMNS), key="loop_jobs")
    else:
        st.caption("No jobs yet.")


live()

status = loop.loop_status(store)
b1, b2, b3 = st.columns(3)
b1.button("Run a round now", key="loop_run_now", on_click=_run_now,
          disabled=any(r["state"] == "running" for r in status["rounds"]))
if status["paused"] or status["stopped_reason"]:
    b2.button("Resume the loop", key="loop_resume", on_click=_pause, args=(False,))
else:
    b2.button("Pause the loop", key="loop_pause", on_click=_pause, args=(True,), disabled=not status["configured"])
open_jobs = [j for j in status["jobs"] if j["state"] in ("queued", "running")]
if open_jobs:
    b3.selectbox("Job to cancel", [j["id"] for j in open_jobs], key="loop_cancel_pick",
                 format_func=lambda i: next(f"{j['id']} {j['kind']} ({j['state']})" for j in open_jobs if j["id"] == i))
    b3.button("Cancel the job", key="loop_cancel", on_click=_cancel)
    b3.caption("A cancelled training job's model is never used: if it was registered before the cancel "
               "reached the worker it is kept but withdrawn (not the current model); the job says which.")

# -- policy -----------------------------------------------------------------------------
st.subheader("Policy")
pol = status["policy"]
with st.form("loop_policy"):
    st.text_input("Model (a Hub id, a folder, minilm or tfidf)", pol["model"], key="loop_p_model")
    st.selectbox("Strategy", J.CHOICES, index=list(J.CHOICES).index(pol["strategy"]), key="loop_p_strategy")
    f1, f2, f3 = st.columns(3)
    f1.number_input("Retrain after N new labels by people", 1, None, int(pol["retrain_after"]), key="loop_p_retrain_after")
    f2.number_input("Questions in the next batch (K)", 1, None, int(pol["k"]), key="loop_p_k")
    f3.number_input("Annotators per question", 1, None, int(pol["overlap"]), key="loop_p_overlap")
    g1, g2, g3, g4 = st.columns(4)
    g1.number_input("Training batch size", 1, None, int(pol["batch_size"]), key="loop_p_batch_size")
    g2.number_input("Epochs", 1, None, int(pol["epochs"]), key="loop_p_epochs")
    g3.number_input("Stop when predictions changed below", 0.0, 1.0, float(pol["max_changed"]), 0.005,
                    format="%.3f", key="loop_p_max_changed")
    g4.number_input("Attempts per job", 1, None, int(pol["max_attempts"]), key="loop_p_max_attempts")
    st.form_submit_button("Save the policy", on_click=_save_policy)
st.caption("The loop stops by itself when model-gold kappa reaches the lower 95 % bound of human-human kappa "
           "and fewer predictions than the share above changed since the previous round (`curation al status`).")

# -- rounds -----------------------------------------------------------------------------
st.subheader("Rounds")
hist = status["history"]
if not hist:
    st.caption("No round yet.")
else:
    rows: list[dict[str, Any]] = [
        {**h, "kappa_cell": f"{w.num(h['model_kappa'])} {w.ci(*(h['model_kappa_ci'] or [None, None]))}",
         "human_cell": f"{w.num(h['human_kappa'])} {w.ci(*(h['human_kappa_ci'] or [None, None]))}"} for h in reversed(hist)]
    w.show_table(w.table(rows, [
        ("round", "Round", w.text), ("state", "State", w.text), ("labels_used", "Labels used", w.text),
        ("kappa_cell", "Model-gold kappa [95 % CI]", w.text), ("human_cell", "Human-human kappa [95 % CI]", w.text),
        ("n_gold", "Gold items", w.n_items), ("changed_fraction", "Predictions changed", w.pct),
        ("seconds", "Seconds", w.num), ("batch_id", "Batch", w.text), ("message", "Outcome", w.text),
    ]), key="loop_rounds")
    scored = [{"round": h["round"], "kappa": h["model_kappa"], "kappa_ci": h["model_kappa_ci"],
               "human_kappa": h["human_kappa"], "human_kappa_ci": h["human_kappa_ci"]}
              for h in hist if h["model_kappa"] is not None]
    if scored:
        st.altair_chart(plots.kappa_over_rounds(scored), width="stretch")
    timing = pd.DataFrame([{"round": h["round"], "seconds": h["seconds"], "labels used": h["labels_used"]}
                           for h in hist if h["seconds"] is not None])
    if not timing.empty:
        st.altair_chart(alt.Chart(timing).mark_bar().encode(
            x=alt.X("round:O", title="Round", axis=alt.Axis(labelAngle=0)), y=alt.Y("seconds:Q", title="Seconds per round"),
            tooltip=["round", "seconds", "labels used"]), width="stretch")
