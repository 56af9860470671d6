"""`build_release`: a versioned export folder in Hugging Face Hub layout, built in steps.

1. `take_snapshot` reads the store in one transaction; the store is free again at once.
2. `_selection`: which benchmarks go in (licences: `curation.licenses`), with checks.
3. The evaluation configs are written on a second cursor (`_EvalWriter`) while this thread
   decontaminates the training candidates (`_decontaminated_train`): on two cores they overlap.
4. The training configs are written (`_write_train`): `train_reasoning` (our columns, `source`,
   `reasoning`) and `biomed_r1` (the same rows with BioMed-R1-Train's fields), and with
   `pool_config` `m23k_clean` (every decontaminated training-pool row, BioMed-R1-Train's
   fields); then `aliases` (`_write_aliases`) and the figures (`curation.release.figures`).
5. `_assemble` builds the typed manifest; `_write_card_and_hashes` writes the card, the chart
   and every file's sha256.
Config names: a benchmark's config is BioMed-R1-Eval's name for it
(`curation.benchmarks.release_config_name`, e.g. `mmlu_pro_health_biology` ->
`mmlu_health_biology`); the `dataset_name` column keeps the internal name.
Portable: the manifest's `command` never holds `--out`, `--db` or an absolute path
(`portable_command`), and `source` columns no local path (`shape.portable_source`), so the
same version built into two folders is byte-identical, manifest included.
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
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import TracebackType
from typing import Any

import duckdb

from curation import card, decontam, licenses, staging
from curation.benchmarks import release_config_name
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
    pool_config: bool = False
    contact: str | None = None

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
    pool_config: bool = False,
    contact: str | None = None,
) -> Manifest:
    """Build release `version` into `out/version/`; record it in the store; return the manifest.

    `model`: the model whose predictions fill `reasoning_prob` (default: the current scored
    model, `store.models.current_model`; a release without any model has empty prediction
    columns and an empty `train_reasoning`). `threshold`: `reasoning_prob` cut for
    `train_reasoning` (default: each prediction's own `is_reasoning`). `caps`: at most N
    training questions per benchmark, the highest `reasoning_prob` first. `command`: the
    command line, recorded in the manifest without local paths (`portable_command`).
    `pool_config`: also write `m23k_clean`, every decontaminated training-pool row.
    `contact`: who to contact about the dataset (default `$CURATION_CONTACT`; the card says so).
    The manifest's `changes` compare this release with the previous recorded version (by
    version order) when that release's folder is still there; else they are None.
    """
    validate_version(version)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold {threshold} must be between 0 and 1")
    opts = Options(version, include_restricted, threshold, parse_caps(caps),
                   portable_command(command) if command is not None else None, chart, pool_config,
                   card.contact_from(contact))
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
            result, pool = _decontaminated_train(con, opts)
        configs.update(_write_train(con, folder, result.kept, pool, model_version, opts))
        configs["aliases"] = _write_aliases(con, folder, opts)
        figs = figures.compute(con, snap, opts.keep, model_version)
        train_sources = figures.train_sources(con, folder / configs["train_reasoning"]["path"])
    finally:
        con.close()
    configs = {c: configs[c] for c in card.config_order(configs)}  # the card's order, whatever the dict's
    manifest = _assemble(snap, opts, configs, benchmarks, excluded, result, figs, train_sources)
    if pool is not None:
        manifest["decontamination"]["pool"] = pool.summary()
    manifest["annotation"]["annotator_expertise"] = _expertise(folder, configs, snap)
    manifest["contact"] = opts.contact
    manifest["changes"] = _changes(folder, manifest, snap)
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
    taken: dict[str, str] = {}
    for b in benchmarks:
        config = release_config_name(b)
        if config in RESERVED_CONFIGS:
            raise InputError(
                f"benchmark {b!r} has the name of a reserved config ({', '.join(RESERVED_CONFIGS)}); "
                "re-ingest it under another --benchmark name"
            )
        if config in taken:
            raise InputError(
                f"benchmarks {taken[config]!r} and {b!r} would both be release config {config!r}; "
                "re-ingest one of them under another --benchmark name"
            )
        taken[config] = b
    trainable = {r[0] for r in con.execute("SELECT DISTINCT dataset_name FROM questions WHERE split = 'train'").fetchall()}
    unknown_caps = sorted(set(opts.caps) - trainable)
    if unknown_caps:
        raise InputError(f"--cap names benchmark(s) with no training questions: {', '.join(unknown_caps)}")
    return benchmarks, excluded


def _eval_configs(benchmarks: list[str]) -> dict[str, ConfigEntry]:
    """One config per benchmark under BioMed-R1-Eval's name (sorted), then `all` and `gold`."""
    named = sorted((release_config_name(b), b) for b in benchmarks)
    configs: dict[str, ConfigEntry] = {
        c: {"split": "test", "path": f"data/{c}/test.parquet", "rows": 0, "kind": "benchmark", "benchmark": b}
        for c, b in named
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
        *((release_config_name(b), f"SELECT * FROM ({test}) WHERE dataset_name = {literal(b)}", ORDER)
          for b in benchmarks),
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


def _decontaminated_train(
    con: duckdb.DuckDBPyConnection, opts: Options
) -> tuple[decontam.DecontamResult, decontam.DecontamResult | None]:
    """(training candidates, the whole pool or None) after decontamination. Candidates:
    `split=train`, reasoning-heavy, licence permitting; the pool (with `pool_config`): every
    `split=train` row, licence permitting. Both are checked against every evaluation question
    in the store, restricted benchmarks included. Each row is checked on its own, so the
    candidates' result is the pool's restricted to them."""
    cond = "p.reasoning_prob >= $1" if opts.threshold is not None else "p.is_reasoning"
    params: list[Any] = [opts.threshold] if opts.threshold is not None else []
    rows = con.execute(
        f"""SELECT q.id, q.question, json_extract_string(q.options, '$.*') AS opts, coalesce({cond}, false)
            FROM questions q LEFT JOIN predictions p ON p.question_id = q.id
            WHERE q.split = 'train' AND {opts.keep} AND {"true" if opts.pool_config else f"coalesce({cond}, false)"}
            ORDER BY q.id""",
        params,
    ).fetchall()
    refs = con.execute(
        f"SELECT id, question, json_extract_string(options, '$.*') FROM questions q WHERE {EVAL_SPLIT_SQL} ORDER BY id"
    ).fetchall()
    result = decontam.decontaminate_columns(
        [c[0] for c in rows], [c[1] for c in rows], [c[2] or [] for c in rows],
        [r[0] for r in refs], [r[1] for r in refs], [r[2] or [] for r in refs],
    )
    if not opts.pool_config:
        return result, None
    cand = {c[0] for c in rows if c[3]}
    return decontam.DecontamResult([i for i in result.kept if i in cand], [m for m in result.removed if m.id in cand],
                                   result.params), result


def _write_train(con: duckdb.DuckDBPyConnection, folder: Path, kept: list[str], pool: decontam.DecontamResult | None,
                 model_version: str | None, opts: Options) -> dict[str, ConfigEntry]:
    """`train_reasoning`: the kept candidates, at most `caps[benchmark]` each (highest
    `reasoning_prob` first), with the `reasoning` trace and the `source` of each row;
    `biomed_r1`: the same rows with BioMed-R1-Train's fields; `m23k_clean` (when `pool` is
    given): every decontaminated pool row with BioMed-R1-Train's fields."""
    con.execute("CREATE TABLE train_kept AS SELECT unnest(CAST(? AS VARCHAR[])) AS id", [kept])
    con.execute("CREATE TABLE caps (dataset_name VARCHAR, cap INTEGER)")
    if opts.caps:
        con.executemany("INSERT INTO caps VALUES (?, ?)", [[k, v] for k, v in opts.caps.items()])
    rows = shape.eval_select(model_version, "q.id IN (SELECT id FROM train_kept)",
                             ", CAST(q.reasoning AS VARCHAR) AS reasoning, CAST(q.source AS VARCHAR) AS source")
    con.execute(f"""CREATE TABLE train_rows AS SELECT * FROM ({rows}) t
                 QUALIFY row_number() OVER (PARTITION BY dataset_name ORDER BY reasoning_prob DESC, id)
                     <= coalesce((SELECT cap FROM caps c WHERE c.dataset_name = t.dataset_name), 2147483647)""")
    fields = ", ".join(shape.TRAIN_COLUMNS)
    copies = {"train_reasoning": "SELECT * FROM train_rows", "biomed_r1": f"SELECT {fields} FROM train_rows"}
    if pool is not None:
        con.execute("CREATE TABLE pool_kept AS SELECT unnest(CAST(? AS VARCHAR[])) AS id", [pool.kept])
        pool_rows = shape.eval_select(model_version, "q.id IN (SELECT id FROM pool_kept)",
                                      ", CAST(q.reasoning AS VARCHAR) AS reasoning")
        copies["m23k_clean"] = f"SELECT {fields} FROM ({pool_rows})"
    out: dict[str, ConfigEntry] = {}
    for name, select in copies.items():
        rel = f"data/{name}/train.parquet"
        n = shape.copy(con, select, ORDER, folder / rel)
        out[name] = {"split": "train", "path": rel, "rows": n, "kind": "pool" if name == "m23k_clean" else "train"}
    return out


def _write_aliases(con: duckdb.DuckDBPyConnection, folder: Path, opts: Options) -> ConfigEntry:
    """`aliases`: ids merged at ingest as exact duplicates (`alias_id`) -> the id kept (`id`),
    for the release's own questions (evaluation, gold and training configs; licence permitting)."""
    released = "SELECT question_id FROM gold UNION ALL SELECT id FROM train_rows"
    if opts.pool_config:
        released += " UNION ALL SELECT id FROM pool_kept"
    select = f"""SELECT a.alias_id, a.question_id AS id, q.dataset_name
                 FROM aliases a JOIN questions q ON q.id = a.question_id
                 WHERE {opts.keep} AND (q.split = 'test' OR q.id IN ({released}))"""
    rel = "data/aliases/test.parquet"
    return {"split": "test", "path": rel, "rows": shape.copy(con, select, "alias_id", folder / rel), "kind": "aliases"}


def _expertise(folder: Path, configs: Mapping[str, ConfigEntry], snap: Snapshot) -> dict[str, int]:
    """{expertise level: annotators} of the people whose labels are on the release's rows."""
    import pyarrow.parquet as pq

    ids: set[str] = set()
    for c in configs.values():
        if c["kind"] != "aliases":
            ids.update(pq.read_table(folder / c["path"], columns=["id"]).column("id").to_pylist())
    return card.expertise_counts({r["annotator"] for r in snap.human if r["question_id"] in ids}, snap.expertise)


def _changes(folder: Path, manifest: Manifest, snap: Snapshot) -> dict[str, Any] | None:
    """`diff_releases` against the previous recorded version, if its folder is still there."""
    from curation.release import diff

    prev = diff.previous_version(snap.releases, manifest["version"])
    if prev is None or not (Path(snap.releases[prev]) / MANIFEST).is_file():
        return None
    return diff.diff_releases(snap.releases[prev], folder, new_manifest=manifest, first_n=10)


def portable_command(command: Sequence[str]) -> list[str]:
    """The command line as a manifest records it: without `--out`/`--db` and their values
    (where the release was written and the store it was read from: local paths that would
    make two builds of one version differ), and with any other absolute path cut to its base name."""
    out: list[str] = []
    skip = False
    for arg in command:
        if skip:
            skip = False
            continue
        flag, eq, value = arg.partition("=")
        if flag in ("--out", "--db"):
            skip = not eq
            continue
        if eq and flag.startswith("--"):
            out.append(f"{flag}={_portable_arg(value)}")
        else:
            out.append(_portable_arg(arg))
    return out


def _portable_arg(arg: str) -> str:
    if arg.startswith("~") or PurePosixPath(arg).is_absolute() or PureWindowsPath(arg).is_absolute():
        return PureWindowsPath(arg).name or arg  # splits on / and \\
    return arg


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
            "pool_config": opts.pool_config,
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
    from curation.labels import guidelines_info

    files: list[str] = []
    if manifest["chart"]:
        card.write_share_chart(stats, folder / CHART)
        files.append(CHART)
    manifest["guidelines"] = guidelines_info()
    for c in manifest["configs"].values():
        c["features"] = card.config_features(folder / c["path"])
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
