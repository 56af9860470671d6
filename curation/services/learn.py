"""Learn: train, classify, and the active-learning use cases (next batch, stopping rule,
label-noise flags, simulation). Each takes a `Store` (or files), returns data and prints
nothing; `curation.cli.model` and the app's pages render the results.

Provenance and leakage: a model records the question ids it was trained and validated on
(`store.models.record_seen_ids`; a model folder carries them in `seen_ids.json`), and every
model-vs-human figure is computed on the others only.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curation.errors import InputError
from curation.metrics import finite
from curation.schema import LABELS, format_for_model
from curation.staging import check_new_file, check_new_folder, write_text_atomic
from curation.store import Store, utcnow

Progress = Any  # Callable[[str, int, int], None] | None
SEEN_IDS_FILE = "seen_ids.json"
ENGINES = ("local", "ray")  # classify: this process, or a Ray cluster (curation.ray_scoring)


# ----------------------------------------------------------------------------------------
# Reading labeled / unlabeled JSONL
# ----------------------------------------------------------------------------------------
def read_questions_jsonl(path: str | Path, *, require_label: bool) -> list[dict[str, Any]]:
    """Rows `{id, question, options[, label]}`; errors name `file:line` and the field."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    from curation.readers import read_jsonl

    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in read_jsonl(p):  # located errors for bad bytes, bad JSON, non-objects
        loc, r = rec.location, rec.data
        qid = r.get("id")
        if isinstance(qid, int) and not isinstance(qid, bool):
            qid = str(qid)
        if not isinstance(qid, str) or not qid:
            raise InputError("missing or empty 'id'", location=loc)
        if qid in seen:
            raise InputError(f"id {qid!r} appears twice", location=loc)
        seen.add(qid)
        q = r.get("question")
        if not isinstance(q, str) or not q.strip():
            raise InputError("missing or empty 'question'", location=loc)
        opts = r.get("options")
        if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
            raise InputError("'options' must be an object {letter: text}", location=loc)
        row = {"id": qid, "question": q, "options": opts}
        if require_label:
            lab = r.get("label")
            if lab not in LABELS:
                raise InputError(f"label {lab!r} is not one of {', '.join(LABELS)}", location=loc)
            row["label"] = lab
        rows.append(row)
    if not rows:
        raise InputError(f"{p}: no rows")
    return rows


def _texts(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [format_for_model(r["question"], r["options"]) for r in rows]


# ----------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------
def _store(store: Store | None, db: str | None) -> Store:
    return store if store is not None else Store(db)


def _report(progress: Progress, stage: str, done: int, total: int) -> None:
    if progress:
        progress(stage, done, total)


def seen_ids(ids: Sequence[str], clf: Any) -> dict[str, list[str]]:
    """The question ids `clf` was fitted and validated on (`Classifier.fit_rows`)."""
    return {role: [ids[i] for i in rows] for role, rows in clf.fit_rows.items()}


def write_seen_ids(folder: str | Path, seen: dict[str, list[str]]) -> None:
    """`seen_ids.json` in a model folder: the question ids it trained and validated on."""
    Path(folder, SEEN_IDS_FILE).write_text(json.dumps(seen, sort_keys=True) + "\n", encoding="utf-8")


def read_seen_ids(folder: str | Path) -> dict[str, list[str]]:
    """The ids a model folder says it saw; {} for folders written before this was recorded."""
    p = Path(folder, SEEN_IDS_FILE)
    if not p.is_file():
        return {}
    data = json.loads(p.read_text(encoding="utf-8"))
    return {k: [str(x) for x in v] for k, v in data.items() if k in ("train", "validation")}


def _gold_report(clf: Any, gold_rows: Sequence[Any], human: Any) -> dict[str, Any]:
    """The model against the adjudicated gold labels (never trained on), next to human-human
    agreement on the same items (`active.gold_agreement`)."""
    from curation import active

    p = clf.predict_proba([format_for_model(r.question, r.options) for r in gold_rows])
    return active.gold_agreement(
        {r.question_id: r.label for r in gold_rows},
        {r.question_id: bool(pi >= clf.threshold) for r, pi in zip(gold_rows, p, strict=True)},
        human,
    )


def train_model(
    labels: str,
    model: str,
    out: str | Path,
    *,
    store: Store | None = None,
    db: str | None = None,
    epochs: int = 3,
    seed: int = 0,
    device: str = "auto",
    max_length: int = 256,
    batch_size: int = 16,
    include_import: bool = False,
    progress: Progress = None,
    truncation: str = "head",
    threshold_folds: int = 5,
) -> dict[str, Any]:
    """Train on a labeled JSONL file or on the store's labels; save the model folder with the
    ids it saw (`seen_ids.json`). `out` must not exist (checked before training): a model
    folder is written once and appears whole (`Classifier.save`).

    From the store: trains on every labeled non-gold question (people's labels; with
    `include_import`, benchmark tags where no person labeled), evaluates on the gold set
    (never trained on) against human-human agreement on the same items, and registers the
    model (round, metrics, the ids it saw) in `models`.
    """
    from curation import model as M

    cfg = M.TrainConfig(base=model, epochs=epochs, seed=seed, device=device, max_length=max_length, batch_size=batch_size, truncation=truncation,
                        threshold_folds=threshold_folds)
    cfg.validate()
    check_new_folder(out, "--out", what="model folder")
    gold_report: dict[str, Any] | None = None
    if labels == "store":
        from curation.store import models as sm

        st = _store(store, db)
        labeled, human = st.run(lambda con: (sm.training_labels(con, include_import=include_import),
                                             sm.human_label_rows(con, sm.gold_ids(con))))
        train_rows = [r for r in labeled if not r.gold]
        gold_rows = [r for r in labeled if r.gold and r.origin != "reference"]
        if len(train_rows) < 4:
            raise InputError(
                f"the store has {len(train_rows)} labeled non-gold question(s); training needs at least 4 "
                "with both labels (label an active-learning batch, or pass --include-import)"
            )
        ids, texts = [r.question_id for r in train_rows], [format_for_model(r.question, r.options) for r in train_rows]
        label_list = [r.label for r in train_rows]
        clf = M.train(texts, label_list, cfg, progress=progress, source=f"the store {st.key}")
        if gold_rows:
            gold_report = clf.info.metrics["gold"] = _gold_report(clf, gold_rows, human)
    else:
        rows = read_questions_jsonl(labels, require_label=True)
        ids, label_list = [r["id"] for r in rows], [r["label"] for r in rows]
        clf = M.train(_texts(rows), label_list, cfg, progress=progress, source=str(labels))
    n_train = len(ids)
    seen = seen_ids(ids, clf)
    # the file's name, not its path: the source is published in cards and manifests
    clf.info.metrics["train_source"] = "store" if labels == "store" else Path(labels).name
    _report(progress, "save model", 0, 2)  # then saved (1/2), then registered from the store (2/2)
    path = clf.save(out, also=lambda folder: write_seen_ids(folder, seen))
    _report(progress, "save model", 1, 2)
    result: dict[str, Any] = {
        "model_version": clf.version, "path": str(path.resolve()), "base": clf.info.base, "kind": clf.info.kind,
        "n_labels": n_train, "reasoning_threshold": clf.threshold, "validation": clf.info.metrics["validation"],
        "threshold_source": clf.info.metrics["threshold_source"], "gold": gold_report,
    }
    if labels == "store":  # `sm` was imported above, in the same case
        result["round"] = _store(store, db).run(lambda con: sm.register_model(
            con, version=clf.version, base_model=clf.info.base, kind=clf.info.kind, path=str(path.resolve()),
            n_train=n_train, train_source="store", threshold=clf.threshold, metrics=finite(clf.info.metrics),
            created_at=utcnow(), seen_ids=seen,
        ))
    _report(progress, "save model", 2, 2)
    return result


# ----------------------------------------------------------------------------------------
# classify
# ----------------------------------------------------------------------------------------
def classify(
    model_dir: str | Path,
    *,
    input: str | Path | None = None,
    output: str | Path | None = None,
    store: Store | None = None,
    db: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    progress: Progress = None,
    engine: str = "local",
    address: str | None = None,
    actors: int = 1,
) -> dict[str, Any]:
    """Score a JSONL file (or, without `input`, every store question, writing `predictions`).

    Returns `{model_version, n, reasoning_share, rows}`; writes one JSON object a line to
    `output` when given: id, reasoning_prob, is_reasoning, reasoning_threshold, model_version.
    `engine` ``ray`` scores on a Ray cluster (`curation.ray_scoring.score`: `actors` actors,
    `address` or a local cluster) with the same probabilities; the rest is the same path.
    """
    from curation import model as M

    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "local" and (address is not None or actors != 1):
        raise InputError("--address and --actors apply to --engine ray only; add --engine ray")
    if output is not None:  # a bad --output is refused before any scoring or store write
        check_new_file(output, "--output", create_parent=True)
    if engine == "ray":
        from curation import ray_scoring

        ray_scoring.require_ray()
    # with Ray the driver keeps the model for its version, threshold and info; the actors score
    clf = M.load(model_dir, device=device if engine == "local" else "cpu")
    if input is not None:
        rows = read_questions_jsonl(input, require_label=False)
    else:
        from curation.store import models as sm

        rows = _store(store, db).run(sm.questions_for_scoring)
        if not rows:
            raise InputError("the store has no questions; run `curation ingest` first")
    if engine == "ray":
        probs = ray_scoring.score(str(model_dir), _texts(rows), kind=clf.info.kind, address=address, actors=actors,
                                  batch_size=batch_size, device=device, progress=progress)
    else:
        probs = clf.predict_proba(_texts(rows), batch_size=batch_size, progress=progress)
    thr = float(clf.threshold)
    out_rows = [
        {"id": r["id"], "reasoning_prob": float(p), "is_reasoning": bool(p >= thr),
         "reasoning_threshold": thr, "model_version": clf.version}
        for r, p in zip(rows, probs, strict=True)
    ]
    if input is None:
        from curation.store import models as sm

        seen = read_seen_ids(model_dir)

        def register(con: Any) -> None:
            if not sm.model_exists(con, clf.version):
                sm.register_model(
                    con, version=clf.version, base_model=clf.info.base, kind=clf.info.kind,
                    path=str(Path(model_dir).resolve()), n_train=clf.n_labels,
                    train_source=str(clf.info.metrics.get("train_source", "file")), threshold=thr,
                    metrics=finite(clf.info.metrics), created_at=utcnow(), seen_ids=seen,
                )

        write_scores(_store(store, db), clf.version, [r["id"] for r in rows], [float(p) for p in probs], thr,
                     register=register)
    if output is not None:
        write_text_atomic(output, "".join(json.dumps(r) + "\n" for r in out_rows), option="--output",
                          create_parent=True)
    n_reason = sum(r["is_reasoning"] for r in out_rows)
    return {"model_version": clf.version, "n": len(out_rows), "n_reasoning": n_reason,
            "reasoning_share": n_reason / len(out_rows), "reasoning_threshold": thr,
            "written_to_store": input is None, "output": None if output is None else str(output), "rows": out_rows}


PREDICTION_CHUNK = 100_000  # predictions written per store hold


def write_scores(st: Store, version: str, ids: Sequence[str], probs: Sequence[float], threshold: float, *,
                 register: Callable[[Any], None]) -> None:
    """Store a model's predictions, `PREDICTION_CHUNK` per hold, so no annotator waits long
    behind a large pool. A first scoring is hidden until its last hold (the `predictions`
    view, migration 10) and registers the model there; a re-scoring by the same model writes
    the same numbers, visible as they land. A failed first scoring leaves nothing shown."""
    from curation.store import models as sm

    now = utcnow()
    bounds = [(a, min(a + PREDICTION_CHUNK, len(ids))) for a in range(0, len(ids), PREDICTION_CHUNK)] or [(0, 0)]
    fresh = len(bounds) > 1 and not st.run(lambda con: sm.has_predictions(con, version))
    with st.writer() as owner:  # alive until the last hold: a pending first scoring is not stale
        try:
            for k, (a, b) in enumerate(bounds):

                def write(con: Any, a: int = a, b: int = b, first: bool = k == 0,
                          last: bool = k == len(bounds) - 1) -> None:
                    if fresh and first:
                        sm.begin_pending_predictions(con, version, pid=owner, now=now,
                                                     alive=lambda o: st.owner_alive(con, o))
                    sm.write_predictions(con, model_version=version, question_ids=ids[a:b], probs=probs[a:b],
                                         threshold=threshold, created_at=now)
                    if last:
                        register(con)
                        if fresh:
                            sm.end_pending_predictions(con, version)

                st.run(write)
        except BaseException:
            if fresh:
                with contextlib.suppress(Exception):
                    st.run(lambda con: sm.abandon_pending_predictions(con, version))
            raise


# ----------------------------------------------------------------------------------------
# active learning
# ----------------------------------------------------------------------------------------
def _model_for_store(con: Any, model_dir: str | None) -> str:
    from curation.store import models as sm

    if model_dir:
        return model_dir
    m = sm.current_model(con)
    if m is None or not m.get("path"):
        raise InputError("no trained model in the store; run `curation train --labels store --model minilm --out DIR` or pass --model DIR")
    return str(m["path"])


def al_next(
    *,
    store: Store | None = None,
    db: str | None = None,
    size: int = 50,
    strategy: str | None = None,
    model_dir: str | None = None,
    seed: int = 0,
    overlap: int = 1,
    show_suggestions: bool = True,
    batch_id: str | None = None,
    created_by: str | None = None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Pick `size` unlabeled, non-gold questions by `strategy` (default
    `active.DEFAULT_STRATEGY`; ``auto`` resolves by how many labels the model was fitted on,
    `active.resolve_strategy`) and queue them as an 'active' batch with the model's
    suggestion (label and p(reasoning)) on each item."""
    from curation import active
    from curation import model as M
    from curation.store import models as sm
    from curation.store.batches import BatchItem, create_batch

    asked = strategy or active.DEFAULT_STRATEGY
    active.resolve_strategy(asked, 0)  # refuse an unknown strategy before reading anything
    if size < 1:
        raise InputError(f"--size must be >= 1, got {size}")
    st = _store(store, db)
    path, cands, rnd = st.run(lambda con: (_model_for_store(con, model_dir), sm.active_candidates(con), sm.next_active_round(con)))
    if not cands:
        raise InputError("no unlabeled question outside existing batches is left to select")
    clf = M.load(path)
    strategy = active.resolve_strategy(asked, clf.n_labels)  # auto: by how many labels the model has
    texts = _texts(cands)
    ids = [c["id"] for c in cands]
    probs = clf.predict_proba(texts, progress=progress)
    emb = clf.embed(texts, progress=progress) if strategy in active.NEEDS_EMBEDDINGS else None
    picked = active.query(strategy, ids, size, probs=probs, embeddings=emb, seed=seed)
    pmap = dict(zip(ids, probs, strict=True))
    items = [BatchItem(q, "reasoning" if pmap[q] >= clf.threshold else "knowledge", float(pmap[q])) for q in picked]
    bid = batch_id or f"active-{rnd:03d}-{utcnow():%Y%m%dT%H%M%S}"
    st.run(lambda con: create_batch(
        con, batch_id=bid, kind="active", items=items, overlap=overlap, show_suggestions=show_suggestions,
        created_at=utcnow(), created_by=created_by, strategy=strategy, model_version=clf.version,
        note=f"active-learning round {rnd}: {strategy}{' (auto)' if asked == active.AUTO else ''}, "
             f"{len(items)} of {len(cands)} candidates",
    ))
    return {"batch_id": bid, "strategy": strategy, "requested_strategy": asked, "model_version": clf.version, "n_candidates": len(cands),
            "items": [{"id": i.question_id, "suggestion": i.suggestion_label, "reasoning_prob": i.suggestion_prob} for i in items]}


def al_status(*, store: Store | None = None, db: str | None = None, max_changed: float = 0.01) -> dict[str, Any]:
    """The stopping rule on the latest store-trained model and the last two prediction rounds.

    The model-gold kappa of a store-trained model is measured on gold items it never
    trained on (training excludes the gold set); each round states its `n_gold`."""
    from curation import active
    from curation.store import models as sm

    def read(con: Any) -> tuple[list[dict[str, Any]], list[str], dict[str, Any], dict[str, Any]]:
        from curation.store.jobs import withdrawn_models

        withdrawn = withdrawn_models(con)  # a model whose training job failed or was cancelled
        models = [m for m in sm.list_models(con) if m["version"] not in withdrawn]
        versions = sm.prediction_versions(con)
        cur = sm.predictions(con, versions[0]) if versions else {}
        prev = sm.predictions(con, versions[1]) if len(versions) > 1 else {}
        return models, versions, cur, prev

    models, versions, cur, prev = _store(store, db).run(read)
    store_models = [m for m in models if m.get("train_source") == "store" and (m.get("metrics") or {}).get("gold")]
    gold = store_models[-1]["metrics"]["gold"] if store_models else {}
    hci = gold.get("human_kappa_ci") or [None, None]
    changed = active.changed_fraction({k: v["is_reasoning"] for k, v in prev.items()}, {k: v["is_reasoning"] for k, v in cur.items()}) if prev else None
    d = active.stopping_rule(gold.get("kappa"), hci[0], changed, max_changed=max_changed)
    rounds = [
        {"round": m.get("round"), "version": m["version"], "n_train": m.get("n_train"),
         "kappa": (m["metrics"].get("gold") or {}).get("kappa"), "kappa_ci": (m["metrics"].get("gold") or {}).get("kappa_ci"),
         "human_kappa": (m["metrics"].get("gold") or {}).get("human_kappa"),
         "human_kappa_ci": (m["metrics"].get("gold") or {}).get("human_kappa_ci"),
         "balanced_accuracy": (m["metrics"].get("gold") or {}).get("balanced_accuracy"),
         "n_gold": (m["metrics"].get("gold") or {}).get("n_gold")}
        for m in models if m.get("train_source") == "store"
    ]
    return {"stop": d.stop, "kappa_reached": d.kappa_reached, "predictions_stable": d.predictions_stable,
            "model_kappa": d.model_kappa, "human_kappa_ci_low": d.human_kappa_ci_low,
            "changed_fraction": d.changed_fraction, "message": d.message,
            "compared_versions": versions[:2], "rounds": rounds}


def al_flags(
    *,
    store: Store | None = None,
    db: str | None = None,
    labels_file: str | None = None,
    model: str = "tfidf",
    min_confidence: float = 0.8,
    n_splits: int = 5,
    seed: int = 0,
    include_import: bool = False,
    epochs: int = 1,
    progress: Progress = None,
) -> dict[str, Any]:
    """Human labels that an out-of-fold model contradicts with confidence >= `min_confidence`.

    Every label is predicted by a model trained on the other folds (tfidf by default: five
    fits in seconds; any `--model` base works, at five fine-tunings' cost)."""
    from curation import active
    from curation import model as M

    if labels_file:
        rows = read_questions_jsonl(labels_file, require_label=True)
        items = [{"id": r["id"], "text": format_for_model(r["question"], r["options"]), "label": r["label"], "origin": "file", "n_votes": 1} for r in rows]
    else:
        from curation.store import models as sm

        lab = _store(store, db).run(lambda con: sm.training_labels(con, include_import=include_import))
        items = [{"id": r.question_id, "text": format_for_model(r.question, r.options), "label": r.label, "origin": r.origin, "n_votes": r.n_votes} for r in lab]
    if len(items) < max(n_splits, 10):
        raise InputError(f"{len(items)} labeled questions; label-noise flags need at least {max(n_splits, 10)}")
    y = M.encode_labels([i["label"] for i in items])
    if len(np.unique(y)) < 2:
        raise InputError("every labeled question has the same label; flags need both labels")
    texts = [i["text"] for i in items]

    def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        cfg = M.TrainConfig(base=model, epochs=epochs, seed=seed, val_fraction=0.15)
        clf = M.train([texts[i] for i in tr], [items[i]["label"] for i in tr], cfg)
        return clf.predict_proba([texts[i] for i in te])

    oof = active.out_of_fold_probs(y, fit_predict, n_splits=n_splits, seed=seed)
    flags = active.label_noise_flags([i["id"] for i in items], y, oof, min_confidence=min_confidence)
    extra = {i["id"]: i for i in items}
    for f in flags:
        f["origin"] = extra[f["id"]]["origin"]
        f["n_votes"] = extra[f["id"]]["n_votes"]
    return {"model": model, "n_labels": len(items), "n_flagged": len(flags), "min_confidence": min_confidence,
            "n_splits": n_splits, "flags": flags}


def write_learning_curve(curve: Sequence[dict[str, Any]], stem: str | Path, *, target: float | None = None) -> dict[str, str]:
    """Write `<stem>.csv` (one row per strategy and budget) and `<stem>.png` (mean balanced
    accuracy vs labels, with a min-max band over seeds; `target` as a dashed rule)."""
    from curation import plots

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = stem.with_suffix(".csv"), stem.with_suffix(".png")
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(plots.LEARNING_CURVE_FIELDS), extrasaction="ignore")
        w.writeheader()
        w.writerows(curve)
    plots.save_png(plots.learning_curve(curve, target), png_path, scale=1)
    return {"csv": str(csv_path), "png": str(png_path)}


def al_simulate(
    oracle: str | Path,
    eval_file: str | Path,
    *,
    strategies: Sequence[str] = ("auto", "entropy", "kmeans", "random"),
    budgets: Sequence[int] = (50, 100, 200, 400, 800),
    seeds: Sequence[int] = (0, 1, 2),
    out: str | Path = "al_simulation",
    features: str = "tfidf",
    init_size: int = 20,
    step: int = 25,
    init: str = "random",
    c: float | None = None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Run the loop with the oracle file's labels; evaluate on the eval file; write the learning
    curve (`learning_curve.csv`, `learning_curve.png`, `simulation.json`) under `out`.

    Proxy learner: class-balanced logistic regression on fixed features (`tfidf`, or frozen
    `minilm` embeddings) with inverse regularisation `c` (default: the product's
    `TrainConfig.tfidf_c`), refit after each query of `step` labels. `init`: the first
    `init_size` labels are a random sample or the k-means cold start (``kmeans``)."""
    from curation import active
    from curation import model as M

    pool = read_questions_jsonl(oracle, require_label=True)
    ev = read_questions_jsonl(eval_file, require_label=True)
    overlap = {r["id"] for r in pool} & {r["id"] for r in ev}
    if overlap:
        raise InputError(f"{len(overlap)} question(s) are in both the oracle and the eval file (e.g. {sorted(overlap)[0]!r}); the eval set must be held out")
    yp = M.encode_labels([r["label"] for r in pool])
    ye = M.encode_labels([r["label"] for r in ev])
    emb: np.ndarray | None
    if features == "tfidf":
        from sklearn.decomposition import TruncatedSVD

        vec = M.TfidfClassifier.make_vectorizer()
        xp = vec.fit_transform(_texts(pool))
        xe = vec.transform(_texts(ev))
        k = max(1, min(64, xp.shape[0] - 1, xp.shape[1] - 1))
        emb = TruncatedSVD(k, random_state=0).fit_transform(xp)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    elif features == "minilm":
        allx = M.frozen_embeddings("minilm", _texts(pool) + _texts(ev), progress=progress)
        xp, xe, emb = allx[: len(pool)], allx[len(pool):], None
    else:
        raise InputError(f"features {features!r} is not tfidf or minilm")
    c = M.TrainConfig().tfidf_c if c is None else c
    if not c > 0:
        raise InputError(f"--c must be > 0, got {c}")
    res = active.simulate(xp, yp, xe, ye, strategies=list(strategies), budgets=list(budgets), seeds=list(seeds),
                          init_size=init_size, step=step, init=init, fit=functools.partial(active.logistic_fit, c=c),
                          embeddings=emb, progress=progress)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    curve = res.curve()
    target = res.target(0.95)
    files = write_learning_curve(curve, outdir / "learning_curve", target=target if math.isfinite(target) else None)
    summary: dict[str, Any] = {"features": features, "n_pool": len(pool), "n_eval": len(ev), "strategies": list(dict.fromkeys(r["strategy"] for r in res.rows)),
               "budgets": sorted(set(budgets)), "seeds": list(seeds), "init_size": init_size, "step": step, "init": init, "c": c,
               "full_data_balanced_accuracy": res.full_data, "labels_to_95pct": res.labels_to_reach(0.95),
               "labels_to_95pct_sustained": res.labels_to_reach(0.95, sustained=True),
               "curve": curve, "files": files}
    files["json"] = str(outdir / "simulation.json")
    Path(files["json"]).write_text(json.dumps(finite({**summary, "rows": res.rows}), indent=2) + "\n", encoding="utf-8")
    return summary




def list_models(store: Store) -> list[dict[str, Any]]:
    """Every registered model, oldest first (the Models page)."""
    from curation.store import models as sm

    return store.run(sm.list_models)


def n_training_labels(store: Store, *, include_import: bool = False) -> int:
    """How many questions have a training label (`store.models.training_labels`)."""
    from curation.store import models as sm

    return store.run(lambda con: len(sm.training_labels(con, include_import=include_import)))
