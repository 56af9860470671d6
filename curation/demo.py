"""The main job on the embedded defaults, step by step (what `curation demo` runs).

1. ingest the bundled real sample into the store;
2. create a demo maintainer and annotator (random passwords, written to a 0600 file);
3. draw a blind gold batch (stratified by benchmark, 2 annotators per item);
4. train a first classifier on the bundled MedXpertQA labels and score every question in
   the store. The demo uses the TF-IDF + logistic-regression baseline so that it finishes in
   seconds on a CPU (on the bundled labels its held-out balanced accuracy is 0.712 against
   MiniLM's 0.729, see benchmarks/results/classifier_quality.json); `curation train --model
   minilm` or the default PubMedBERT is the same command with a transformer;
5. build a release into `exports/` that `datasets.load_dataset` reads.

Each step returns plain data; `curation.cli.core.demo` prints it and then starts the app.
Re-running is safe: finished steps are skipped (the store is append-only and ingest is
idempotent).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curation.active import DEFAULT_STRATEGY
from curation.ingest import ingest_sample, sample_path
from curation.services import annotate
from curation.store import Store

DEMO_USERS = (("demo-maintainer", "maintainer"), ("demo-annotator", "annotator"), ("demo-annotator2", "annotator"))
GOLD_SIZE = 60
GOLD_OVERLAP = 2
RELEASE_VERSION = "v0.1.0-demo"


def demo_dir(store: Store) -> Path:
    """Where demo artefacts go (models, credentials): `$CURATION_DEMO_DIR`, else beside the store."""
    return Path(os.environ.get("CURATION_DEMO_DIR") or store.home)


def exports_dir() -> Path:
    return Path(os.environ.get("CURATION_EXPORTS") or "exports")


def ensure_users(store: Store) -> dict[str, Any]:
    """Create the demo accounts once; their passwords go to `demo_credentials.txt` (mode 0600)."""
    from curation.store import users

    creds_file = demo_dir(store) / "demo_credentials.txt"
    existing = {u["name"] for u in store.run(users.list_users)}
    created: dict[str, str] = {}
    for name, role in DEMO_USERS:
        if name in existing:
            continue
        password = secrets.token_urlsafe(12)
        def add(con: Any, n: str = name, r: str = role, p: str = password) -> Any:
            return users.add_user(con, n, role=r, password=p)

        store.run(add)
        created[name] = password
    if created:
        creds_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            for name, password in created.items():
                fh.write(f"{name}\t{password}\n")
    return {"created": created, "credentials_file": str(creds_file)}


def ensure_gold(store: Store) -> dict[str, Any]:

    have = store.run(lambda con: con.execute("SELECT id FROM batches WHERE kind = 'gold'").fetchall())
    if have:
        return {"batch_id": have[0][0], "created": False}
    batch = annotate.draw_gold(store, GOLD_SIZE, GOLD_OVERLAP, seed=0, created_by="demo")
    return {**batch, "created": True}


DEMO_MODEL = "tfidf"


def ensure_model(store: Store, progress: Any = None) -> dict[str, Any]:
    """Train the demo classifier on the bundled labels (once) and score every question."""
    from curation.services.learn import classify, train_model

    out = demo_dir(store) / "models" / f"demo-{DEMO_MODEL}"
    trained = None
    if not (out / "curation_model.json").exists():
        trained = train_model(str(sample_path("medxpertqa_labeled_dev.jsonl")), DEMO_MODEL, out,
                              store=store, seed=0, progress=progress)
    scored = classify(out, store=store, progress=progress)
    scored.pop("rows", None)
    return {"trained": trained, "scored": scored, "path": str(out)}


def ensure_release(store: Store) -> dict[str, Any]:
    from curation.release import build_release

    target = exports_dir() / RELEASE_VERSION
    if (target / "manifest.json").exists():
        return {"path": str(target), "created": False}
    manifest = build_release(store, version=RELEASE_VERSION, out=exports_dir(),
                             command=["curation", "demo"])
    return {"path": str(target), "created": True, "rows": manifest.get("row_counts")}


STEPS: tuple[tuple[str, Callable[..., dict[str, Any]]], ...] = (
    ("users", ensure_users),
    ("gold", ensure_gold),
    ("model", ensure_model),
    ("release", ensure_release),
)


def ingest(store: Store) -> list[Any]:
    return ingest_sample(store)


DEMO_LOOP = {"model": DEMO_MODEL, "retrain_after": 20, "k": 20, "strategy": DEFAULT_STRATEGY, "epochs": 1}


def ensure_loop(store: Store) -> dict[str, Any]:
    """Turn the loop on once with a tfidf policy (a round takes seconds on a CPU): after 20
    labels by people the worker beside the app retrains, re-scores and queues 20 questions."""
    from curation.services import loop

    status = loop.loop_status(store)
    if status["configured"]:
        return {"created": False, "policy": status["policy"]}
    return {"created": True, "policy": loop.set_policy(store, dict(DEMO_LOOP), by="demo")["policy"]}


def worker_command() -> list[str]:
    """The `curation worker` started beside the demo's app (CPU: the demo model is tfidf). Its
    store comes from `CURATION_DB` in its environment, not the command line, where a
    PostgreSQL URL's password would show in the process list."""
    import sys

    return [sys.executable, "-c", "from curation.cli import main; main()", "worker", "--device", "cpu"]
