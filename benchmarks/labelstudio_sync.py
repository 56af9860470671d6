"""Label Studio sync speed: push 5k tasks (with suggestions), pull 10k annotations.

Against a real Label Studio 1.23.2 server: started here from `.venv-ls` on a free port
with a fresh data dir (default), or an existing one with `--url/--api-key`.

* **push**: `curation.labelstudio.push_batch` of a 5,000-question batch with suggestions
  (imports in chunks of 1,000 tasks with inline predictions), then the idempotent re-push.
* **pull**: 5,000 tasks carrying 2 annotations each (10,000; set up by one bulk import
  with inline annotations of two users, then adopted by `push_batch`, which reconciles
  by question id), pulled by `curation.labelstudio.pull` (pages of 1,000, one
  transaction per page, the next page fetched while one is stored); a re-pull right away
  (it lists the tasks changed less than `SINCE_MARGIN`, 2 min, before the last pull
  again); once the setup is older than that (the benchmark waits), a pull with
  `full=True` (every task: the cost without the filter) and the pull with nothing new
  (only tasks updated since the last complete pull, then the annotation counts checked).
* **Label Studio's own export** of the same project in the same run, what the pull is
  compared with: a snapshot export (`POST /api/projects/{id}/exports/`, wait until
  completed, download as JSON). Targets (issue 17): full pull / export <= 1.3, pull with
  nothing new <= 1 s.
* **naive baselines**, side by side: push = one `POST /api/tasks` plus one
  `POST /api/predictions` per task; pull = the SDK's `tasks.list(fields="all")` with its
  default page size and typed models, plus one store transaction per annotation. They
  are measured on a sample (`--naive-sample` tasks) and extrapolated linearly to the full
  size -- marked "extrapolated" in the table -- because running them in full takes
  minutes.

    python benchmarks/labelstudio_sync.py [--tasks 5000] [--url URL --api-key KEY]

Prints a table and writes benchmarks/results/labelstudio_sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation import labelstudio as lsmod  # noqa: E402
from curation.store import Store, utcnow  # noqa: E402
from curation.store.annotations import Annotation, append, current_labels  # noqa: E402
from curation.store.batches import BatchItem, create_batch  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TARGET_PULL_OVER_EXPORT = 1.3  # a full pull within 1.3x of Label Studio's own export
TARGET_REPULL_S = 1.0  # a pull with nothing new


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str, float]:
    port, token = free_port(), secrets.token_hex(20)
    log = (data_dir / "server.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "labelstudio.sh"), "start", "--port", str(port), "--data-dir",
         str(data_dir / "data"), "--username", "admin@example.com", "--password",
         secrets.token_urlsafe(12), "--token", token],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 600:
        if proc.poll() is not None:
            raise SystemExit(f"Label Studio exited; see {data_dir / 'server.log'}")
        try:
            if httpx.get(f"{url}/health", timeout=5).json().get("status") == "UP":
                return proc, url, token, time.monotonic() - t0
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("Label Studio did not start within 600 s")


def signup(url: str, admin_token: str, email: str) -> int:
    """An annotator account through the invite link; returns its user id."""
    h = {"Authorization": f"Token {admin_token}"}
    invite = httpx.get(f"{url}/api/invite", headers=h, timeout=60).json()["invite_url"]
    with httpx.Client(base_url=url, follow_redirects=False, timeout=60) as c:
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', c.get(invite).text)
        assert csrf
        c.post(invite, data={"csrfmiddlewaretoken": csrf.group(1), "email": email,
                             "password": "Bench-pass-123"}, headers={"Referer": url + invite})
        return int(c.get("/api/current-user/whoami").json()["id"])


def add_questions(store: Store, ids: list[str]) -> None:
    import pyarrow as pa

    now = utcnow()
    table = pa.Table.from_pylist([
        {"id": q, "dataset_name": ("medqa", "medmcqa", "pubmedqa")[i % 3], "split": "test",
         "question": f"A {40 + i % 30}-year-old presents with finding {i}. What is the next step? "
                     * 3,
         "options": json.dumps({"A": "one", "B": "two", "C": "three", "D": "four"}),
         "answer_idx": "A", "answer": "one", "source": "bench", "text_hash": f"h{q}",
         "ingested_at": now}
        for i, q in enumerate(ids)
    ])

    def go(con: Any) -> None:
        con.register("_q", table)
        con.execute("INSERT INTO question_rows (id, dataset_name, split, question, options, answer_idx, "
                    "answer, source, text_hash, ingested_at) SELECT id, dataset_name, split, "
                    "question, options, answer_idx, answer, source, text_hash, ingested_at FROM _q")
        con.unregister("_q")

    store.run(go)


def make_batch(store: Store, batch_id: str, ids: list[str], *, suggestions: bool) -> None:
    items = [BatchItem(q, "reasoning" if i % 3 else "knowledge", (i % 100) / 100)
             for i, q in enumerate(ids)]
    store.run(lambda con: create_batch(
        con, batch_id=batch_id, kind="active", items=items, overlap=2,
        show_suggestions=suggestions, created_at=utcnow(), model_version="bench-m1",
    ))


def naive_push(url: str, token: str, project_id: int, store: Store, ids: list[str]) -> float:
    """One POST per task and one per prediction (what a straightforward script does)."""
    from label_studio_sdk.client import LabelStudio

    ls = LabelStudio(base_url=url, api_key=token)
    rows = store.run(lambda con: con.execute(
        "SELECT id, question, options, dataset_name FROM questions WHERE id IN (SELECT unnest(?))",
        [ids]).fetchall())
    t0 = time.monotonic()
    for qid, text, options, ds in rows:
        task = lsmod.question_to_task({"id": qid, "question": text, "options": options,
                                       "dataset_name": ds}, batch_id="naive")
        created = ls.tasks.create(project=project_id, data=task["data"])
        pred = lsmod.suggestion_to_prediction("reasoning", 0.7, "bench-m1")
        assert pred is not None
        ls.predictions.create(task=created.id, result=pred["result"], score=pred["score"],
                              model_version=pred["model_version"])
    return time.monotonic() - t0


def naive_pull(url: str, token: str, project_id: int, store: Store, n_tasks: int) -> tuple[float, int]:
    """SDK task listing with typed models, one store transaction per annotation."""
    from label_studio_sdk.client import LabelStudio

    ls = LabelStudio(base_url=url, api_key=token)
    t0 = time.monotonic()
    n = 0
    for i, task in enumerate(ls.tasks.list(project=project_id, fields="all")):
        if i >= n_tasks:
            break
        for a in task.annotations or []:
            a = a if isinstance(a, dict) else a.model_dump()
            label = a["result"][0]["value"]["choices"][0]
            row = Annotation(question_id=f"naive-{task.id}", annotator=str(a["completed_by"]),
                             action="label", label=label, source="label_studio",
                             created_at=utcnow(), event_id=f"naive-{a['id']}")
            store.run(lambda con, row=row: append(con, [row]))
            n += 1
    return time.monotonic() - t0, n


def ls_export(url: str, token: str, project_id: int) -> tuple[float, int, int]:
    """Label Studio's own snapshot export of the project (what the issue compares a pull
    with): `POST /api/projects/{id}/exports/` (built synchronously by the Community Edition
    without a Redis queue; polled until `completed` otherwise), then the JSON download.
    Returns (seconds, tasks, annotations) of the downloaded file."""
    h = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=url, headers=h, timeout=900) as c:
        t0 = time.monotonic()
        r = c.post(f"/api/projects/{project_id}/exports/", json={"title": "bench export"})
        r.raise_for_status()
        export_id = int(r.json()["id"])
        while (status := c.get(f"/api/projects/{project_id}/exports/{export_id}").json()
               .get("status")) != "completed":
            if status == "failed":
                raise SystemExit(f"Label Studio export {export_id} failed")
            time.sleep(0.05)
        r = c.get(f"/api/projects/{project_id}/exports/{export_id}/download",
                  params={"exportType": "JSON"})
        r.raise_for_status()
        tasks = r.json()
        seconds = time.monotonic() - t0
    return seconds, len(tasks), sum(len(t.get("annotations") or []) for t in tasks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--naive-sample", type=int, default=100)
    ap.add_argument("--url")
    ap.add_argument("--api-key")
    args = ap.parse_args()
    n = args.tasks
    tmp = Path(tempfile.mkdtemp(prefix="ls-bench-"))
    proc = None
    started_s = None
    if args.url:
        url, token = args.url, args.api_key or os.environ.get("LABEL_STUDIO_API_KEY", "")
    else:
        proc, url, token, started_s = start_server(tmp)
    try:
        api = lsmod.LabelStudioApi(lsmod.Connection(url, token))
        store = Store(tmp / "bench.duckdb")
        tag = secrets.token_hex(3)
        push_ids = [f"push-{tag}-{i:05d}" for i in range(n)]
        pull_ids = [f"pull-{tag}-{i:05d}" for i in range(n)]
        add_questions(store, push_ids + pull_ids)
        make_batch(store, "bench-push", push_ids, suggestions=True)
        make_batch(store, "bench-pull", pull_ids, suggestions=False)

        # -- push ------------------------------------------------------------------
        t0 = time.monotonic()
        pushed = lsmod.push_batch(store, api, "bench-push", project=f"bench push {tag}")
        push_s = time.monotonic() - t0
        assert pushed.n_created == n and pushed.n_predictions == n
        t0 = time.monotonic()
        again = lsmod.push_batch(store, api, "bench-push", project=f"bench push {tag}")
        repush_s = time.monotonic() - t0
        assert again.n_created == 0

        # -- pull setup: 2 annotations per task, by two users, via one bulk import --
        u1 = signup(url, token, f"bench-a-{tag}@example.com")
        u2 = signup(url, token, f"bench-b-{tag}@example.com")
        h = {"Authorization": f"Token {token}"}
        proj = httpx.post(f"{url}/api/projects", headers=h, timeout=120, json={
            "title": f"bench pull {tag}", "label_config": lsmod.load_label_config(),
            "maximum_annotations": 2}).json()
        t_setup = time.monotonic()
        for start in range(0, n, 1000):
            chunk = []
            for i, q in enumerate(pull_ids[start:start + 1000], start):
                task = lsmod.question_to_task(
                    {"id": q, "question": f"Q {i}", "options": '{"A": "a"}', "dataset_name": "x"},
                    batch_id="bench-pull")
                task["annotations"] = [
                    {"result": [{"from_name": "label", "to_name": "question", "type": "choices",
                                 "value": {"choices": [lab]}}], "completed_by": uid}
                    for uid, lab in ((u1, "reasoning"), (u2, "reasoning" if i % 4 else "knowledge"))
                ]
                chunk.append(task)
            r = httpx.post(f"{url}/api/projects/{proj['id']}/import", headers=h, json=chunk,
                           timeout=900)
            r.raise_for_status()
        setup_end = time.monotonic()
        setup_s = setup_end - t_setup
        adopted = lsmod.push_batch(store, api, "bench-pull", project=f"bench pull {tag}")
        assert adopted.n_created == 0 and adopted.n_existing == n

        t0 = time.monotonic()
        (pulled,) = lsmod.pull(store, api, project=f"bench pull {tag}")
        pull_s = time.monotonic() - t0
        assert pulled.n_new_rows == 2 * n, pulled
        # right away: the tasks changed less than SINCE_MARGIN ago are listed again
        t0 = time.monotonic()
        (recent,) = lsmod.pull(store, api, project=f"bench pull {tag}")
        recent_s = time.monotonic() - t0
        assert recent.n_new_rows == 0
        export_s, export_tasks, export_anns = ls_export(url, token, int(proj["id"]))
        assert (export_tasks, export_anns) == (n, 2 * n), (export_tasks, export_anns)
        # Once the last change is older than SINCE_MARGIN before a pull's start, the next
        # pull lists only what changed since: wait for that, pull everything (full=True, the
        # cost of a pull that cannot use the filter), then the pull with nothing new.
        margin = lsmod.sync.SINCE_MARGIN.total_seconds()
        time.sleep(max(0.0, setup_end + margin + 2 - time.monotonic()))
        t0 = time.monotonic()
        (full_again,) = lsmod.pull(store, api, project=f"bench pull {tag}", full=True)
        full_repull_s = time.monotonic() - t0
        assert full_again.n_new_rows == 0
        t0 = time.monotonic()
        (repulled,) = lsmod.pull(store, api, project=f"bench pull {tag}")
        repull_s = time.monotonic() - t0
        assert repulled.n_new_rows == 0 and repulled.since is not None
        labels = store.run(lambda con: current_labels(con, sources=["label_studio"]))
        annotators = sorted({r["annotator"] for r in labels})

        # -- naive baselines on a sample, extrapolated ---------------------------------
        k = min(args.naive_sample, n)
        naive_proj = httpx.post(f"{url}/api/projects", headers=h, timeout=120, json={
            "title": f"bench naive {tag}", "label_config": lsmod.load_label_config()}).json()
        naive_push_s = naive_push(url, token, naive_proj["id"], store, push_ids[:k]) * n / k
        naive_store = Store(tmp / "naive.duckdb")
        sample_s, sample_n = naive_pull(url, token, proj["id"], naive_store, k)
        naive_pull_s = sample_s * (2 * n) / max(sample_n, 1)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    rows = [
        ("push", f"{n} tasks + {n} predictions", push_s, naive_push_s),
        ("re-push (idempotent)", "0 new tasks", repush_s, None),
        ("pull", f"{2 * n} annotations ({n} tasks)", pull_s, naive_pull_s),
        ("re-pull right away", f"0 new rows, {recent.n_tasks} recent tasks", recent_s, None),
        ("re-pull, full listing", "0 new rows, every task", full_repull_s, None),
        ("re-pull (no change)", f"0 new rows, {repulled.n_tasks} tasks listed", repull_s, None),
        ("LS snapshot export", f"{export_anns} annotations ({export_tasks} tasks)", export_s, None),
    ]
    load = os.getloadavg()
    print(f"\nLabel Studio sync, label-studio 1.23.2 on 127.0.0.1, {platform.machine()}, "
          f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"{'step':<24}{'size':<34}{'ours (s)':>10}{'naive (s)':>22}{'ratio':>8}")
    for step, size, ours, naive in rows:
        naive_txt = f"{naive:.1f} (extrapolated)" if naive is not None else "-"
        ratio = f"{naive / ours:.1f}x" if naive is not None and ours > 0 else "-"
        print(f"{step:<24}{size:<34}{ours:>10.2f}{naive_txt:>22}{ratio:>8}")
    pull_ratio = pull_s / export_s
    meets_ratio = pull_ratio <= TARGET_PULL_OVER_EXPORT
    meets_repull = repull_s <= TARGET_REPULL_S
    print(f"pull / LS export = {pull_ratio:.2f} (target <= {TARGET_PULL_OVER_EXPORT}): "
          f"{'meets' if meets_ratio else 'MISSES'}; no-change pull {repull_s:.2f} s (target <= "
          f"{TARGET_REPULL_S:.0f} s): {'meets' if meets_repull else 'MISSES'}")
    print(f"annotators: {annotators}; server start {started_s or 0:.0f} s; "
          f"bulk-import setup {setup_s:.1f} s")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "benchmark": "labelstudio_sync",
        "label_studio": "1.23.2",
        "machine": {"cpus": os.cpu_count(), "load_average_1m": load[0],
                    "load_average_5m": load[1], "load_average_15m": load[2],
                    "python": platform.python_version()},
        "n_tasks": n,
        "n_annotations": 2 * n,
        "push_s": round(push_s, 2),
        "repush_s": round(repush_s, 2),
        "pull_s": round(pull_s, 2),
        "repull_s": round(repull_s, 2),
        "repull_right_away_s": round(recent_s, 2),
        "repull_right_away_tasks_listed": recent.n_tasks,
        "since_margin_s": margin,
        "repull_pages": repulled.n_pages,
        "repull_tasks_listed": repulled.n_tasks,
        "full_repull_s": round(full_repull_s, 2),
        "ls_export_s": round(export_s, 2),
        "pull_over_export": round(pull_ratio, 2),
        "pull_pages": pulled.n_pages,
        "naive_push_s_extrapolated": round(naive_push_s, 1),
        "naive_pull_s_extrapolated": round(naive_pull_s, 1),
        "naive_sample_tasks": k,
        "push_ratio_naive_over_ours": round(naive_push_s / push_s, 2),
        "pull_ratio_naive_over_ours": round(naive_pull_s / pull_s, 2),
        "target_pull_over_export": TARGET_PULL_OVER_EXPORT,
        "target_repull_s": TARGET_REPULL_S,
        "meets_pull_over_export_target": meets_ratio,
        "meets_repull_target": meets_repull,
        "server_start_s": round(started_s, 1) if started_s else None,
        "setup_bulk_import_s": round(setup_s, 1),
    }
    (RESULTS / "labelstudio_sync.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'labelstudio_sync.json'}")


if __name__ == "__main__":
    main()
