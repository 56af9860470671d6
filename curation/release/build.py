"""`build_release`: a versioned export folder in Hugging Face Hub layout, built in steps.

1. `take_snapshot` reads the store in one transaction; the store is free again at once.
2. `_selection`: which benchmarks go in (licences: `curation.licenses`), with checks.
3. The evaluation configs are written on a second cursor (`_EvalWriter`) while this thread
   decontaminates the training candidates (`_decontaminated_train`): on two cores they overlap.
4. `train_reasoning` is written (`_write_train`), then the figures (`curation.release.figures`).
5. `_assemble` builds the typed manifest; `_write_card_and_hashes` writes the card, the chart
   and every file's sha256.
Nothing is half-written: the folder is assembled under a hidden name next to the target,
`.{version}.building-{pid}-{hex}` (`curation.staging.staged_folder`), and renamed into place
at the end; a build removes the leftovers of killed builds (those whose process is gone).
Folders and files get the umask's modes (0755 / 0644 under the usual 022), not mkdtemp's 0700.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from curation import decontam, licenses, staging
from curation.errors import InputError
from curation.release import figures, shape
from curation.release.manifest import (
    CHART,
    MANIFEST,
    RELEASE_SCHEMA_VERSION,
    RESERVED_CONFIGS,
    ConfigEntry,
    Manifest,
    ModelInfo,
    file_sha256,
    parse_caps,
    validate_version,
)
from curation.release.snapshot import Snapshot, take_snapshot
from curation.store import Store, utcnow
from curation.store import releases as rstore
from curation.store.sql import literal

ORDER = "dataset_name, id"
BUILDING = "building"  # the staging kind: `.{version}.building-{pid}-{hex}`
EVAL_SPLIT_SQL = "q.split <> 'train'"  # every non-train question is an evaluation question


@dataclass(frozen=True)
class Options:
    version: str
    include_restricted: bool
    threshold: float | None
    caps: dict[str, int]
    command: list[str] | None
    chart: bool

    @property
    def keep(self) -> str:
        """SQL condition on `q.dataset_name`: the benchmark may go into this release."""
        return "true" if self.include_restricted else "NOT is_restricted(q.dataset_name)"


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
) -> Manifest:
    """Build release `version` into `out/version/`; record it in the store; return the manifest.

    `model`: the model whose predictions fill `reasoning_prob` (default: the current scored
    model, `store.models.current_model`; a release without any model has empty prediction
    columns and an empty `train_reasoning`). `threshold`: `reasoning_prob` cut for
    `train_reasoning` (default: each prediction's own `is_reasoning`). `caps`: at most N
    training questions per benchmark, the highest `reasoning_prob` first. `command`: the
    command line, recorded in the manifest.
    """
    validate_version(version)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold {threshold} must be between 0 and 1")
    opts = Options(version, include_restricted, threshold, parse_caps(caps),
                   list(command) if command is not None else None, chart)
    target = Path(out).expanduser() / version
    hint = "choose a new --version or remove that folder first"
    staging.check_new_folder(target, "--out", what="release", hint=hint)  # before the snapshot
    snap = take_snapshot(store, model)
    with staging.staged_folder(target, BUILDING, what="release", hint=hint) as tmp:
        manifest = _build_into(tmp, snap, opts)
        created = utcnow()
        store.run(lambda con: rstore.record_release(
            con, version=version, path=str(target.resolve()), manifest=dict(manifest),
            content_hash=manifest["content_hash"], created_at=created,
        ))
    return manifest


def _build_into(folder: Path, snap: Snapshot, opts: Options) -> Manifest:
    con = shape.memory_db(snap)
    model_version = snap.model["version"] if snap.model else None
    try:
        benchmarks, excluded = _selection(con, opts)
        configs = _eval_configs(benchmarks)
        with _EvalWriter(con, folder, configs, _eval_copies(model_version, benchmarks, opts)):
            result = _decontaminated_train(con, opts)
        configs["train_reasoning"] = _write_train(con, folder, result.kept, model_version, opts)
        figs = figures.compute(con, snap, opts.keep, model_version)
        train_sources = figures.train_sources(con, folder / configs["train_reasoning"]["path"])
    finally:
        con.close()
    manifest = _assemble(snap, opts, configs, benchmarks, excluded, result, figs, train_sources)
    _write_card_and_hashes(folder, manifest, figs["benchmarks"])
    return manifest


def _selection(con: duckdb.DuckDBPyConnection, opts: Options) -> tuple[list[str], list[str]]:
    """(benchmarks in the release, benchmarks left out by licence), after checking names and caps."""
    benchmarks = [r[0] for r in con.execute(
        f"SELECT DISTINCT dataset_name FROM questions q WHERE split = 'test' AND {opts.keep} ORDER BY 1"
    ).fetchall()]
    excluded = [] if opts.include_restricted else [r[0] for r in con.execute(
        "SELECT DISTINCT dataset_name FROM questions WHERE is_restricted(dataset_name) ORDER BY 1"
    ).fetchall()]
    for b in benchmarks:
        if b in RESERVED_CONFIGS:
            raise InputError(
                f"benchmark {b!r} has the name of a reserved config ({', '.join(RESERVED_CONFIGS)}); "
                "re-ingest it under another --benchmark name"
            )
    trainable = {r[0] for r in con.execute("SELECT DISTINCT dataset_name FROM questions WHERE split = 'train'").fetchall()}
    unknown_caps = sorted(set(opts.caps) - trainable)
    if unknown_caps:
        raise InputError(f"--cap names benchmark(s) with no training questions: {', '.join(unknown_caps)}")
    return benchmarks, excluded


def _eval_configs(benchmarks: list[str]) -> dict[str, ConfigEntry]:
    configs: dict[str, ConfigEntry] = {
        b: {"split": "test", "path": f"data/{b}/test.parquet", "rows": 0, "kind": "benchmark"} for b in benchmarks
    }
    configs["all"] = {"split": "test", "path": "data/all/test.parquet", "rows": 0, "kind": "all"}
    configs["gold"] = {"split": "test", "path": "data/gold/test.parquet", "rows": 0, "kind": "gold"}
    return configs


def _eval_copies(model_version: str | None, benchmarks: list[str], opts: Options) -> list[tuple[str, str, str]]:
    """(config, SELECT, ORDER BY) of every evaluation file. The gold config adds every
    person's current label, pseudonymized (annotator_01, ... by sorted name)."""
    test = shape.eval_select(model_version, f"q.split = 'test' AND {opts.keep}")
    gold_extra = """,
        (SELECT list({'annotator': ps.pseudonym, 'label': gl.label} ORDER BY ps.pseudonym)
         FROM gold_labels gl JOIN pseudonyms ps ON ps.annotator = gl.annotator
         WHERE gl.question_id = q.id) AS annotations,
        CAST(q.split AS VARCHAR) AS source_split"""
    gold = shape.eval_select(model_version, f"q.id IN (SELECT question_id FROM gold) AND {opts.keep}", gold_extra)
    return [
        *((b, f"SELECT * FROM ({test}) WHERE dataset_name = {literal(b)}", ORDER) for b in benchmarks),
        ("all", test, ORDER),
        ("gold", gold, "id"),
    ]


class _EvalWriter:
    """Writes the evaluation files on a second cursor in a thread while the `with` body runs;
    on exit joins it and re-raises its error."""

    def __init__(self, con: duckdb.DuckDBPyConnection, folder: Path, configs: dict[str, ConfigEntry],
                 copies: list[tuple[str, str, str]]) -> None:
        con.execute(
            """CREATE TABLE pseudonyms AS
            SELECT annotator, printf('annotator_%02d', row_number() OVER (ORDER BY annotator)) AS pseudonym
            FROM (SELECT DISTINCT annotator FROM gold_labels)"""
        )
        self.cursor = con.cursor()
        self.folder, self.configs, self.copies = folder, configs, copies
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="release-eval-writer")

    def _run(self) -> None:
        try:
            for name, select, by in self.copies:
                self.configs[name]["rows"] = shape.copy(self.cursor, select, by, self.folder / self.configs[name]["path"])
        except BaseException as exc:  # re-raised by the main thread
            self.error.append(exc)
        finally:
            self.cursor.close()

    def __enter__(self) -> _EvalWriter:
        self.thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.thread.join()
        if self.error and exc is None:
            raise self.error[0]


def _decontaminated_train(con: duckdb.DuckDBPyConnection, opts: Options) -> decontam.DecontamResult:
    """Training candidates (`split=train`, reasoning-heavy, licence permitting), checked
    against every evaluation question in the store, restricted benchmarks included."""
    cond = "p.reasoning_prob >= ?" if opts.threshold is not None else "p.is_reasoning"
    params: list[Any] = [opts.threshold] if opts.threshold is not None else []
    cand = con.execute(
        f"""SELECT q.id, q.question, json_extract_string(q.options, '$.*') AS opts
            FROM questions q JOIN predictions p ON p.question_id = q.id
            WHERE q.split = 'train' AND {cond} AND {opts.keep} ORDER BY q.id""",
        params,
    ).fetchall()
    refs = con.execute(
        f"SELECT id, question, json_extract_string(options, '$.*') FROM questions q WHERE {EVAL_SPLIT_SQL} ORDER BY id"
    ).fetchall()
    return decontam.decontaminate_columns(
        [c[0] for c in cand], [c[1] for c in cand], [c[2] or [] for c in cand],
        [r[0] for r in refs], [r[1] for r in refs], [r[2] or [] for r in refs],
    )


def _write_train(con: duckdb.DuckDBPyConnection, folder: Path, kept: list[str],
                 model_version: str | None, opts: Options) -> ConfigEntry:
    """`train_reasoning`: the kept candidates, at most `caps[benchmark]` each (highest
    `reasoning_prob` first), with the `source` of each row."""
    con.execute("CREATE TABLE train_kept AS SELECT unnest(CAST(? AS VARCHAR[])) AS id", [kept])
    con.execute("CREATE TABLE caps (dataset_name VARCHAR, cap INTEGER)")
    if opts.caps:
        con.executemany("INSERT INTO caps VALUES (?, ?)", [[k, v] for k, v in opts.caps.items()])
    rows = shape.eval_select(model_version, "q.id IN (SELECT id FROM train_kept)", ", CAST(q.source AS VARCHAR) AS source")
    capped = f"""SELECT * FROM ({rows}) t
                 QUALIFY row_number() OVER (PARTITION BY dataset_name ORDER BY reasoning_prob DESC, id)
                     <= coalesce((SELECT cap FROM caps c WHERE c.dataset_name = t.dataset_name), 2147483647)"""
    rel = "data/train_reasoning/train.parquet"
    n = shape.copy(con, capped, ORDER, folder / rel)
    return {"split": "train", "path": rel, "rows": n, "kind": "train"}


def _software() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("curation", "duckdb", "datasketch", "huggingface_hub", "altair", "vl-convert-python"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _model_info(snap: Snapshot) -> ModelInfo | None:
    if not snap.model:
        return None
    keys = ("version", "base_model", "kind", "round", "n_train", "train_source", "threshold", "created_at")
    info = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in snap.model.items() if k in keys}
    info["n_seen"] = len(snap.seen)
    return info  # type: ignore[return-value]


def _assemble(snap: Snapshot, opts: Options, configs: dict[str, ConfigEntry], benchmarks: list[str],
              excluded: list[str], result: decontam.DecontamResult, figs: dict[str, Any],
              train_sources: list[dict[str, Any]]) -> Manifest:
    suggestions_shown = any(r["show_suggestions"] for r in snap.batches if r["kind"] != "gold")
    return {
        "schema_version": RELEASE_SCHEMA_VERSION,
        "version": opts.version,
        "data_as_of": snap.store_info["data_as_of"],
        "store": snap.store_info,
        "model": _model_info(snap),
        "selection": {
            "eval_split": "test",
            "train_split": "train",
            "train_threshold": opts.threshold,
            "train_threshold_rule": "reasoning_prob >= threshold" if opts.threshold is not None else "model is_reasoning",
            "caps": opts.caps,
            "n_removed_by_caps": len(result.kept) - configs["train_reasoning"]["rows"],
            "include_restricted": opts.include_restricted,
            "restricted_prefixes": list(licenses.RESTRICTED_PREFIXES),
            "excluded_benchmarks": excluded,
        },
        "requires_private": bool(opts.include_restricted),
        "configs": configs,
        "row_counts": {k: v["rows"] for k, v in configs.items()},
        "benchmarks": figs["benchmarks"],
        "annotation": {
            "agreement": figs["agreement"],
            "suggestions_shown_outside_gold": suggestions_shown,
            "adjudication_rule": "an adjudicated label wins; otherwise the strict majority of people's current labels; ties stay unlabeled",
        },
        "model_agreement_on_gold": figs["model_agreement"],
        "provenance": figs["provenance"],
        "decontamination": {**result.summary(), "removed": [m.to_dict() for m in result.removed]},
        "train_sources": train_sources,
        "licenses": {b: licenses.license_of(b) for b in benchmarks},
        "command": opts.command,
        "software": _software(),
        "chart": CHART if opts.chart else None,
    }


def _write_card_and_hashes(folder: Path, manifest: Manifest, stats: list[dict[str, Any]]) -> None:
    from curation import card
    from curation.labels import guidelines_info

    files: list[str] = []
    if manifest["chart"]:
        card.write_share_chart(stats, folder / CHART)
        files.append(CHART)
    manifest["guidelines"] = guidelines_info()
    (folder / "README.md").write_text(card.render_card(manifest), encoding="utf-8", newline="\n")
    files.append("README.md")
    files += [c["path"] for c in manifest["configs"].values()]
    manifest["files"] = {
        f: {"sha256": file_sha256(folder / f), "bytes": (folder / f).stat().st_size} for f in sorted(files)
    }
    listing = "".join(f"{f}\t{v['sha256']}\n" for f, v in manifest["files"].items())
    manifest["content_hash"] = hashlib.sha256(listing.encode()).hexdigest()
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
    )
