"""Release builds: versioned export folders in Hugging Face Hub layout.

`build_release(store, version=...)` takes one consistent snapshot of the store (one short
unit of work), then shapes it with DuckDB queries in an in-memory database and writes every
table with `COPY (SELECT ... ORDER BY ...) TO '...' (FORMAT parquet, ...)` and fixed writer
options, so building the same version from the same store twice gives byte-identical files.
The folder holds:

- `data/<benchmark>/test.parquet` per benchmark and `data/all/test.parquet`: the paper's fields
  (`id, question, answer, options` (JSON text), `answer_idx, dataset_name, reasoning_prob,
  is_reasoning, reasoning_threshold`) plus `human_label, n_annotators, annotator_agreement,
  label_source, model_version`;
- `data/gold/test.parquet`: the gold set with every annotator's label (pseudonymized);
- `data/train_reasoning/train.parquet`: reasoning-heavy training questions (`split=train`,
  `reasoning_prob >= threshold`, optional per-benchmark caps), decontaminated against every
  evaluation question in the store (`curation.decontam`);
- `README.md` (the dataset card, `curation.card`), `reasoning_share.png`, `manifest.json`.

Benchmarks whose licences forbid redistribution (`RESTRICTED_PREFIXES`, matched as prefixes
of `dataset_name`) are left out unless `include_restricted=True`; such a release is marked
`requires_private` in its manifest and `publish_release` refuses to make it public.

Nothing is half-written: the folder is assembled under a temporary name next to the target
and renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from curation import decontam
from curation.errors import InputError, NotFoundError, PermissionDenied
from curation.schema import validate_name
from curation.store import Store, utcnow
from curation.store import releases as rstore
from curation.store.annotations import CURRENT_LABELS_SQL

RELEASE_SCHEMA_VERSION = "1.0"
PAPER_REASONING_SHARE = 0.328
RESTRICTED_PREFIXES: tuple[str, ...] = ("gpqa", "hle", "medbullets", "lancet", "nejm")
RESTRICTION_NOTES: dict[str, str] = {
    "gpqa": "GPQA: its authors ask that the questions not be revealed in plain text online (canary).",
    "hle": "Humanity's Last Exam: carries a canary string; not for training or redistribution.",
    "medbullets": "MedBullets: no licence for redistribution (content from a commercial site).",
    "lancet": "Lancet clinical cases: copyrighted, never released publicly.",
    "nejm": "NEJM image/case challenges: copyrighted, never released publicly.",
}
RESERVED_CONFIGS = ("all", "gold", "train_reasoning")
EVAL_SPLITS = ("test", "validation", "dev")  # every non-train question is an evaluation question
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3, ROW_GROUP_SIZE 122880"
MANIFEST = "manifest.json"
CHART = "reasoning_share.png"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")

# Columns of the evaluation configs, in order (the paper's, then ours).
EVAL_COLUMNS = (
    "id", "question", "answer", "options", "answer_idx", "dataset_name",
    "reasoning_prob", "is_reasoning", "reasoning_threshold",
    "human_label", "n_annotators", "annotator_agreement", "label_source", "model_version",
)


def is_restricted(dataset_name: str) -> bool:
    """True if the benchmark's licence forbids redistribution (prefix match, case-insensitive)."""
    name = dataset_name.lower()
    return any(name.startswith(p) for p in RESTRICTED_PREFIXES)


def restriction_note(dataset_name: str) -> str | None:
    name = dataset_name.lower()
    for p in RESTRICTED_PREFIXES:
        if name.startswith(p):
            return RESTRICTION_NOTES[p]
    return None


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise InputError(
            f"release version {version!r} is not valid: use letters, digits, '.', '_' or '-' "
            "(at most 64 characters, starting with a letter or digit), e.g. v1.0"
        )
    return version


def parse_caps(values: Sequence[str] | Mapping[str, int] | None) -> dict[str, int]:
    """`["medmcqa=1000", ...]` (or a mapping) -> {benchmark: cap}."""
    if not values:
        return {}
    if isinstance(values, Mapping):
        items = list(values.items())
    else:
        items = []
        for v in values:
            if "=" not in v:
                raise InputError(f"--cap {v!r}: expected BENCHMARK=N, e.g. --cap medmcqa=1000")
            k, _, num = v.partition("=")
            try:
                items.append((k.strip(), int(num)))
            except ValueError:
                raise InputError(f"--cap {v!r}: N must be a whole number") from None
    caps: dict[str, int] = {}
    for k, n in items:
        validate_name(k, "--cap benchmark")
        if int(n) < 0:
            raise InputError(f"--cap {k}={n}: N must be >= 0")
        caps[k] = int(n)
    return dict(sorted(caps.items()))


# -- snapshot -----------------------------------------------------------------------------


@dataclass
class Snapshot:
    """Everything a build reads from the store, taken in one transaction."""

    questions: pa.Table
    predictions: pa.Table
    labels: pa.Table
    adjudications: pa.Table
    gold: pa.Table
    batches: pa.Table
    model: dict[str, Any] | None
    store_info: dict[str, Any]


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pa.Table:
    rel = con.sql(sql, params=list(params)) if params else con.sql(sql)
    return rel.to_arrow_table()


def _resolve_model(con: duckdb.DuckDBPyConnection, model: str | None) -> dict[str, Any] | None:
    cols = "version, base_model, kind, path, round, n_train, train_source, threshold, metrics, created_at"
    if model is not None:
        cur = con.execute(f"SELECT {cols} FROM models WHERE version = ?", [model])
        rows = cur.fetchall()
        if not rows:
            raise NotFoundError(f"no model {model!r}; `curation model list` shows the trained models")
        n = con.execute("SELECT count(*) FROM predictions WHERE model_version = ?", [model]).fetchall()[0][0]
        if not n:
            raise NotFoundError(f"model {model!r} has no predictions; score the questions with it first")
    else:
        cur = con.execute(
            f"SELECT {cols} FROM models m WHERE EXISTS (SELECT 1 FROM predictions p WHERE p.model_version = m.version) "
            "ORDER BY created_at DESC, version DESC LIMIT 1"
        )
        rows = cur.fetchall()
        if not rows:
            return None
    names = [c.strip() for c in cols.split(",")]
    info = dict(zip(names, rows[0], strict=True))
    if isinstance(info.get("metrics"), str):
        info["metrics"] = json.loads(info["metrics"])
    return info


def take_snapshot(store: Store, model: str | None = None) -> Snapshot:
    """Read what a release needs in one short transaction (the store is closed afterwards)."""

    def work(con: duckdb.DuckDBPyConnection) -> Snapshot:
        m = _resolve_model(con, model)
        questions = _arrow(
            con,
            "SELECT id, dataset_name, split, question, CAST(options AS VARCHAR) AS options, answer_idx, "
            "answer, source, text_hash FROM questions",
        )
        predictions = _arrow(
            con,
            "SELECT question_id, reasoning_prob, is_reasoning, reasoning_threshold FROM predictions "
            "WHERE model_version = ?",
            [m["version"] if m else ""],
        )
        labels = _arrow(
            con,
            f"SELECT question_id, annotator, label, source FROM ({CURRENT_LABELS_SQL}) AS cur",
        )
        adjudications = _arrow(
            con,
            """SELECT question_id, label FROM (
                   SELECT *, row_number() OVER (PARTITION BY question_id ORDER BY created_at DESC, seq DESC) rn
                   FROM adjudications) WHERE rn = 1""",
        )
        gold = _arrow(
            con,
            "SELECT DISTINCT bi.question_id FROM batch_items bi JOIN batches b ON b.id = bi.batch_id "
            "WHERE b.kind = 'gold'",
        )
        batches = _arrow(con, "SELECT id, kind, overlap, show_suggestions FROM batches")
        info = con.execute(
            """SELECT (SELECT max(version) FROM schema_migrations),
                      (SELECT count(*) FROM questions),
                      (SELECT count(*) FROM annotations),
                      (SELECT count(*) FROM adjudications),
                      (SELECT max(created_at) FROM ingests),
                      (SELECT max(created_at) FROM annotations),
                      (SELECT max(created_at) FROM adjudications),
                      (SELECT max(ingested_at) FROM questions)"""
        ).fetchall()[0]
        guidelines = con.execute(
            "SELECT DISTINCT guidelines_version FROM annotations WHERE guidelines_version IS NOT NULL "
            "ORDER BY 1"
        ).fetchall()
        times = [t for t in info[4:] if t is not None]
        store_info = {
            "schema_version": info[0],
            "n_questions": info[1],
            "n_annotations": info[2],
            "n_adjudications": info[3],
            "last_ingest_at": info[4].isoformat() if info[4] else None,
            "last_annotation_at": info[5].isoformat() if info[5] else None,
            "data_as_of": max(times).isoformat() if times else None,
            "guidelines_versions": [g[0] for g in guidelines],
        }
        return Snapshot(questions, predictions, labels, adjudications, gold, batches, m, store_info)

    return store.run(work)


# -- shaping (in-memory DuckDB over the snapshot) -------------------------------------------


def _memory_db(snap: Snapshot) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 1")  # deterministic writer output
    con.execute("SET preserve_insertion_order = true")
    for name in ("questions", "predictions", "labels", "adjudications", "gold", "batches"):
        con.register(f"_{name}", getattr(snap, name))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")  # noqa: S608
        con.unregister(f"_{name}")
    restricted = " OR ".join(f"starts_with(lower(dataset_name), '{p}')" for p in RESTRICTED_PREFIXES)
    con.execute(f"CREATE MACRO is_restricted(dataset_name) AS ({restricted})")
    # human labels: adjudicated > strict majority of current labels; ties stay unlabeled
    con.execute(
        """CREATE TABLE label_summary AS
        WITH counts AS (
            SELECT question_id, label, count(*) AS n FROM labels GROUP BY question_id, label
        ), ranked AS (
            SELECT *, max(n) OVER (PARTITION BY question_id) AS top,
                      sum(n) OVER (PARTITION BY question_id) AS total
            FROM counts
        ), per_q AS (
            SELECT question_id, any_value(total) AS n_annotators, any_value(top) AS top,
                   count(*) FILTER (WHERE n = top) AS n_top,
                   min(label) FILTER (WHERE n = top) AS top_label
            FROM ranked GROUP BY question_id
        ), imported AS (
            SELECT question_id, bool_and(source = 'import') AS all_import FROM labels GROUP BY question_id
        )
        SELECT coalesce(p.question_id, a.question_id) AS question_id,
               CASE WHEN a.label IS NOT NULL THEN a.label
                    WHEN p.n_top = 1 THEN p.top_label END AS human_label,
               CAST(coalesce(p.n_annotators, 0) AS INTEGER) AS n_annotators,
               CASE WHEN p.n_annotators > 0 THEN p.top / p.n_annotators END AS annotator_agreement,
               CASE WHEN a.label IS NOT NULL THEN 'adjudicated'
                    WHEN p.n_top > 1 THEN 'tie'
                    WHEN i.all_import THEN 'imported'
                    WHEN p.n_annotators = 1 THEN 'single'
                    ELSE 'majority' END AS label_source
        FROM per_q p
        FULL OUTER JOIN adjudications a ON a.question_id = p.question_id
        LEFT JOIN imported i ON i.question_id = coalesce(p.question_id, a.question_id)"""
    )
    return con


def _eval_select(model_version: str | None, where: str) -> str:
    mv = "NULL" if model_version is None else "'" + model_version.replace("'", "''") + "'"
    return f"""
        SELECT q.id, q.question, q.answer, q.options, q.answer_idx, q.dataset_name,
               CAST(p.reasoning_prob AS DOUBLE) AS reasoning_prob,
               CAST(p.is_reasoning AS BOOLEAN) AS is_reasoning,
               CAST(p.reasoning_threshold AS DOUBLE) AS reasoning_threshold,
               CAST(l.human_label AS VARCHAR) AS human_label,
               CAST(coalesce(l.n_annotators, 0) AS INTEGER) AS n_annotators,
               CAST(l.annotator_agreement AS DOUBLE) AS annotator_agreement,
               CAST(l.label_source AS VARCHAR) AS label_source,
               CAST(CASE WHEN p.question_id IS NOT NULL THEN {mv} END AS VARCHAR) AS model_version
        FROM questions q
        LEFT JOIN predictions p ON p.question_id = q.id
        LEFT JOIN label_summary l ON l.question_id = q.id
        WHERE {where}"""


def _copy(con: duckdb.DuckDBPyConnection, select: str, order_by: str, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    target = str(path).replace("'", "''")
    rows = con.execute(f"COPY ({select} ORDER BY {order_by}) TO '{target}' ({PARQUET_OPTIONS})").fetchall()
    return int(rows[0][0])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _software() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("curation", "duckdb", "datasketch", "huggingface_hub", "altair", "vl-convert-python"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


# -- the build ------------------------------------------------------------------------------


def build_release(
    store: Store,
    *,
    version: str,
    out: str | os.PathLike[str] = "exports",
    model: str | None = None,
    include_restricted: bool = False,
    threshold: float | None = None,
    caps: Sequence[str] | Mapping[str, int] | None = None,
    command: Sequence[str] | None = None,
    chart: bool = True,
) -> dict[str, Any]:
    """Build release `version` into `out/version/`; record it in the store; return the manifest.

    `model`: the model whose predictions fill `reasoning_prob` (default: the newest model with
    predictions; a release without any model has empty prediction columns and an empty
    `train_reasoning`). `threshold`: `reasoning_prob` cut for `train_reasoning` (default: each
    prediction's own `is_reasoning`, i.e. the model's threshold). `caps`: at most N training
    questions per benchmark, the highest `reasoning_prob` first. `command`: the command line,
    recorded in the manifest.
    """
    validate_version(version)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold {threshold} must be between 0 and 1")
    cap_map = parse_caps(caps)
    out_dir = Path(out).expanduser()
    target = out_dir / version
    if target.exists():
        raise InputError(
            f"{target} already exists; choose a new --version or remove that folder first"
        )
    snap = take_snapshot(store, model)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.building-", dir=out_dir))
    try:
        manifest = _build_into(tmp, snap, version, include_restricted, threshold, cap_map, command, chart)
        created = utcnow()
        store.run(
            lambda con: rstore.record_release(
                con, version=version, path=str(target.resolve()), manifest=manifest,
                content_hash=manifest["content_hash"], created_at=created,
            )
        )
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _build_into(
    folder: Path,
    snap: Snapshot,
    version: str,
    include_restricted: bool,
    threshold: float | None,
    caps: dict[str, int],
    command: Sequence[str] | None,
    chart: bool,
) -> dict[str, Any]:
    from curation import card as card_mod

    con = _memory_db(snap)
    try:
        model_version = snap.model["version"] if snap.model else None
        keep = "true" if include_restricted else "NOT is_restricted(q.dataset_name)"
        benchmarks = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT dataset_name FROM questions q WHERE split = 'test' AND {keep} ORDER BY 1"  # noqa: S608
            ).fetchall()
        ]
        excluded = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT dataset_name FROM questions WHERE is_restricted(dataset_name) ORDER BY 1"
            ).fetchall()
        ] if not include_restricted else []
        for b in benchmarks:
            if b in RESERVED_CONFIGS:
                raise InputError(
                    f"benchmark {b!r} has the name of a reserved config ({', '.join(RESERVED_CONFIGS)}); "
                    "re-ingest it under another --benchmark name"
                )
        unknown_caps = sorted(set(caps) - {
            r[0] for r in con.execute("SELECT DISTINCT dataset_name FROM questions WHERE split = 'train'").fetchall()
        })
        if unknown_caps:
            raise InputError(f"--cap names benchmark(s) with no training questions: {', '.join(unknown_caps)}")

        configs: dict[str, dict[str, Any]] = {}
        order = "dataset_name, id"
        con.execute(f"CREATE TABLE eval_rows AS {_eval_select(model_version, f'q.split = {chr(39)}test{chr(39)} AND {keep}')}")
        for b in benchmarks:
            configs[b] = {"split": "test", "path": f"data/{b}/test.parquet", "rows": 0, "kind": "benchmark"}
        configs["all"] = {"split": "test", "path": "data/all/test.parquet", "rows": 0, "kind": "all"}

        # gold: every annotator's current label, pseudonymized (annotator_01, ... by sorted name)
        con.execute(
            f"""CREATE TABLE gold_labels AS
            SELECT l.question_id, l.annotator, l.label FROM labels l
            JOIN gold g ON g.question_id = l.question_id
            JOIN questions q ON q.id = l.question_id
            WHERE l.source <> 'import' AND {keep}"""  # noqa: S608
        )
        con.execute(
            """CREATE TABLE pseudonyms AS
            SELECT annotator, printf('annotator_%02d', row_number() OVER (ORDER BY annotator)) AS pseudonym
            FROM (SELECT DISTINCT annotator FROM gold_labels)"""
        )
        gold_select = _eval_select(model_version, f"q.id IN (SELECT question_id FROM gold) AND {keep}").replace(
            "FROM questions q",
            """, (SELECT list({'annotator': ps.pseudonym, 'label': gl.label} ORDER BY ps.pseudonym)
                  FROM gold_labels gl JOIN pseudonyms ps ON ps.annotator = gl.annotator
                  WHERE gl.question_id = q.id) AS annotations,
               CAST(q.split AS VARCHAR) AS source_split
            FROM questions q""",
        )
        configs["gold"] = {"split": "test", "path": "data/gold/test.parquet", "rows": 0, "kind": "gold"}
        copies = [
            *((b, f"SELECT * FROM eval_rows WHERE dataset_name = '{b.replace(chr(39), chr(39) * 2)}'", order)
              for b in benchmarks),  # noqa: S608
            ("all", "SELECT * FROM eval_rows", order),
            ("gold", gold_select, "id"),
        ]

        # The evaluation files are written on a second connection while this thread runs the
        # decontamination (each is single-threaded: the two overlap on two cores).
        writer_error: list[BaseException] = []

        eval_cursor = con.cursor()

        def write_eval(cur: duckdb.DuckDBPyConnection = eval_cursor) -> None:
            try:
                for name, select, by in copies:
                    configs[name]["rows"] = _copy(cur, select, by, folder / configs[name]["path"])
            except BaseException as exc:  # re-raised by the main thread
                writer_error.append(exc)
            finally:
                cur.close()

        writer = threading.Thread(target=write_eval, name="release-eval-writer")
        writer.start()

        # train_reasoning: candidates -> decontaminate -> caps
        try:
            cond = "p.reasoning_prob >= ?" if threshold is not None else "p.is_reasoning"
            params: list[Any] = [threshold] if threshold is not None else []
            cand = con.execute(
                f"""SELECT q.id, q.question, json_extract_string(q.options, '$.*') AS opts
                    FROM questions q JOIN predictions p ON p.question_id = q.id
                    WHERE q.split = 'train' AND {cond} AND {keep} ORDER BY q.id""",  # noqa: S608
                params,
            ).fetchall()
            refs = con.execute(
                "SELECT id, question, json_extract_string(options, '$.*') FROM questions "
                "WHERE split IN ('test', 'validation', 'dev') ORDER BY id"
            ).fetchall()
            result = decontam.decontaminate_columns(
                [c[0] for c in cand], [c[1] for c in cand], [c[2] or [] for c in cand],
                [r[0] for r in refs], [r[1] for r in refs], [r[2] or [] for r in refs],
            )
        finally:
            writer.join()
        if writer_error:
            raise writer_error[0]
        con.execute("CREATE TABLE train_kept AS SELECT unnest(CAST(? AS VARCHAR[])) AS id", [result.kept])
        con.execute("CREATE TABLE caps (dataset_name VARCHAR, cap INTEGER)")
        if caps:
            con.executemany("INSERT INTO caps VALUES (?, ?)", [[k, v] for k, v in caps.items()])
        train_select = _eval_select(model_version, "q.id IN (SELECT id FROM train_kept)").replace(
            "SELECT q.id,", "SELECT row_number() OVER (PARTITION BY q.dataset_name ORDER BY p.reasoning_prob DESC, q.id) AS _rank, q.id,"
        ).replace("FROM questions q", ", CAST(q.source AS VARCHAR) AS source FROM questions q")
        capped = f"""SELECT * EXCLUDE (_rank) FROM ({train_select}) t
                     WHERE _rank <= coalesce((SELECT cap FROM caps c WHERE c.dataset_name = t.dataset_name), 2147483647)"""
        rel = "data/train_reasoning/train.parquet"
        n = _copy(con, capped, order, folder / rel)
        configs["train_reasoning"] = {"split": "train", "path": rel, "rows": n, "kind": "train"}
        n_capped_out = len(result.kept) - n

        stats = _stats(con, keep, benchmarks)
        agreement = _agreement(con)
        model_agreement = _model_agreement(con, model_version, keep)
        train_sources = [
            {"dataset_name": r[0], "source": r[1], "rows": r[2]}
            for r in con.execute(
                f"SELECT dataset_name, source, count(*) FROM read_parquet('{str(folder / rel).replace(chr(39), chr(39) * 2)}') "
                "GROUP BY 1, 2 ORDER BY 1, 2"
            ).fetchall()
        ]
        licenses = {b: card_mod.license_of(b) for b in benchmarks}
    finally:
        con.close()

    suggestions_shown = bool(
        any(r["show_suggestions"] for r in snap.batches.to_pylist() if r["kind"] != "gold")
    )
    model_info = None
    if snap.model:
        model_info = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in snap.model.items()
            if k in ("version", "base_model", "kind", "round", "n_train", "train_source", "threshold", "created_at")
        }
    manifest: dict[str, Any] = {
        "schema_version": RELEASE_SCHEMA_VERSION,
        "version": version,
        "data_as_of": snap.store_info["data_as_of"],
        "store": snap.store_info,
        "model": model_info,
        "selection": {
            "eval_split": "test",
            "train_split": "train",
            "train_threshold": threshold,
            "train_threshold_rule": "reasoning_prob >= threshold" if threshold is not None else "model is_reasoning",
            "caps": caps,
            "n_removed_by_caps": n_capped_out,
            "include_restricted": include_restricted,
            "restricted_prefixes": list(RESTRICTED_PREFIXES),
            "excluded_benchmarks": excluded,
        },
        "requires_private": bool(include_restricted),
        "configs": configs,
        "row_counts": {k: v["rows"] for k, v in configs.items()},
        "benchmarks": stats,
        "annotation": {
            "agreement": agreement,
            "suggestions_shown_outside_gold": suggestions_shown,
            "adjudication_rule": "an adjudicated label wins; otherwise the strict majority of current labels; ties stay unlabeled",
        },
        "model_agreement_on_gold": model_agreement,
        "decontamination": {**result.summary(), "removed": [m.to_dict() for m in result.removed]},
        "train_sources": train_sources,
        "licenses": licenses,
        "command": list(command) if command is not None else None,
        "software": _software(),
    }
    manifest["chart"] = CHART if chart else None
    files: list[str] = []
    if chart:
        card_mod.write_share_chart(stats, folder / CHART)
        files.append(CHART)
    guidelines = card_mod.guidelines_info()
    manifest["guidelines"] = guidelines
    readme = card_mod.render_card(manifest)
    (folder / "README.md").write_text(readme, encoding="utf-8", newline="\n")
    files.append("README.md")
    files += [c["path"] for c in configs.values()]
    manifest["files"] = {
        f: {"sha256": sha256_file(folder / f), "bytes": (folder / f).stat().st_size} for f in sorted(files)
    }
    listing = "".join(f"{f}\t{v['sha256']}\n" for f, v in manifest["files"].items())
    manifest["content_hash"] = hashlib.sha256(listing.encode()).hexdigest()
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
    )
    return manifest


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval (statsmodels, via `curation.agreement.proportion_ci`)."""
    from curation.agreement import proportion_ci

    return proportion_ci(k, n, alpha=alpha)


def cohen_kappa_binary(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two label sequences (scikit-learn via `curation.agreement`); None if empty."""
    if len(a) == 0:
        return None
    from curation.agreement import cohen_kappa

    value = cohen_kappa(list(a), list(b))
    return None if value != value else float(value)  # NaN -> None


def _stats(con: duckdb.DuckDBPyConnection, keep: str, benchmarks: list[str]) -> list[dict[str, Any]]:
    """Per benchmark (and overall): counts, model reasoning share with a Wilson 95 % CI,
    human-labeled counts and the human reasoning share."""
    proportion_ci = wilson_ci
    rows = con.execute(
        f"""SELECT coalesce(q.dataset_name, '__all__') AS b, count(*) AS n,
                   count(p.question_id) AS n_pred,
                   count(*) FILTER (WHERE p.is_reasoning) AS n_reasoning,
                   count(l.human_label) AS n_human,
                   count(*) FILTER (WHERE l.human_label = 'reasoning') AS n_human_reasoning
            FROM questions q
            LEFT JOIN predictions p ON p.question_id = q.id
            LEFT JOIN label_summary l ON l.question_id = q.id
            WHERE q.split = 'test' AND {keep}
            GROUP BY ROLLUP (q.dataset_name) ORDER BY q.dataset_name NULLS LAST"""  # noqa: S608
    ).fetchall()
    out = []
    for b, n, n_pred, n_r, n_h, n_hr in rows:
        share = n_r / n_pred if n_pred else None
        ci = list(proportion_ci(n_r, n_pred)) if n_pred else [None, None]
        out.append({
            "benchmark": "all" if b == "__all__" else b,
            "n": n, "n_predicted": n_pred, "n_reasoning": n_r,
            "reasoning_share": share, "reasoning_share_ci": ci,
            "n_human_labeled": n_h,
            "human_reasoning_share": (n_hr / n_h) if n_h else None,
        })
    return out


def _agreement(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """Human-human agreement on the gold set (curation.agreement.agreement_report, overall)."""
    rows = [tuple(r) for r in con.execute(
        "SELECT question_id, annotator, label FROM gold_labels ORDER BY question_id, annotator"
    ).fetchall()]
    if not rows:
        return None
    from curation.agreement import agreement_report

    rep = agreement_report(rows, n_boot=1000, seed=0)
    n_ann = con.execute(
        "SELECT count(DISTINCT annotator), avg(k) FROM (SELECT question_id, count(*) k, any_value(annotator) annotator "
        "FROM gold_labels GROUP BY question_id)"
    ).fetchall()[0]
    return {
        "n_rows": rep.get("n_rows"),
        "n_items": rep.get("overall", {}).get("n_items"),
        "n_raters": rep.get("overall", {}).get("n_raters"),
        "mean_annotators_per_item": round(float(n_ann[1]), 3) if n_ann[1] is not None else None,
        "overall": rep.get("overall"),
        "n_boot": rep.get("n_boot"),
        "seed": rep.get("seed"),
        "alpha": rep.get("alpha"),
    }


def _model_agreement(con: duckdb.DuckDBPyConnection, model_version: str | None, keep: str) -> dict[str, Any] | None:
    """Classifier vs human label on gold items that have both."""
    if model_version is None:
        return None
    rows = con.execute(
        """SELECT l.human_label, CASE WHEN p.is_reasoning THEN 'reasoning' ELSE 'knowledge' END
           FROM gold g JOIN label_summary l ON l.question_id = g.question_id
           JOIN predictions p ON p.question_id = g.question_id
           JOIN questions q ON q.id = g.question_id
           WHERE l.human_label IS NOT NULL AND """ + keep + " ORDER BY g.question_id"
    ).fetchall()
    if not rows:
        return None
    human = [r[0] for r in rows]
    pred = [r[1] for r in rows]
    k = sum(h == p for h, p in rows)
    kappa = cohen_kappa_binary(human, pred)
    return {
        "n_items": len(rows),
        "percent_agreement": k / len(rows),
        "percent_agreement_ci": list(wilson_ci(k, len(rows))),
        "cohen_kappa": kappa,
    }


# -- reading a release back ----------------------------------------------------------------


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise NotFoundError(f"{folder}: not a release folder (no {MANIFEST}); build one with `curation release build`")
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg})", location=f"{path}:{exc.lineno}") from None


def verify_release(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Check every file listed in the manifest against its sha256 and that no file is extra."""
    root = Path(folder)
    manifest = read_manifest(root)
    listed = manifest.get("files") or {}
    problems = []
    for rel, meta in sorted(listed.items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(p) != meta.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the manifest")
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    extra = sorted(present - set(listed) - {MANIFEST})
    problems += [f"{e}: not listed in the manifest" for e in extra]
    if problems:
        raise InputError(f"{root}: release folder does not match its manifest:\n" + "\n".join(problems))
    return manifest


def read_config(folder: str | os.PathLike[str], config: str = "all") -> pa.Table:
    """One config of a release as an Arrow table (the reader matching the writer)."""
    manifest = read_manifest(folder)
    configs = manifest.get("configs", {})
    if config not in configs:
        raise NotFoundError(f"{folder}: no config {config!r}; configs are {', '.join(configs)}")
    import pyarrow.parquet as pq

    return pq.read_table(Path(folder) / configs[config]["path"])


def publish_release(
    store: Store,
    folder: str | os.PathLike[str],
    *,
    repo_id: str,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """Verify a built release, publish it with `curation.hub.publish`, record the publication."""
    from curation import hub

    manifest = verify_release(folder)
    if manifest.get("requires_private") and not private:
        raise PermissionDenied(
            f"release {manifest.get('version')!r} includes restricted benchmarks "
            f"({', '.join(manifest.get('selection', {}).get('restricted_prefixes', []))}): "
            "it may only be published with --private"
        )
    result = hub.publish(
        folder, repo_id, private=private, dry_run=dry_run, token=token, endpoint=endpoint,
        tag=str(manifest["version"]),
    )
    if not dry_run:
        now = utcnow()
        store.run(
            lambda con: rstore.record_publication(
                con, release_version=str(manifest["version"]), repo_id=repo_id,
                endpoint=result["endpoint"], private=private, revision=result.get("revision"),
                commit_sha=result.get("commit_sha"), tag=result.get("tag"), published_at=now,
            )
        )
    return result
