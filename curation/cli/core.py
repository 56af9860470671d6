"""`curation ingest`, `curation stats`, `curation demo`, `curation store init|copy`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from curation import adapters
from curation.cli._common import DbOption, JsonOption, console, handle_errors, print_json, store
from curation.cli.model import progress_bar
from curation.errors import InputError
from curation.ingest import IngestReport, ingest_paths, ingest_sample
from curation.services import stores
from curation.store import Store


def _report_table(reports: list[IngestReport]) -> Table:
    table = Table(title="Ingest", show_lines=False)
    for col in ("source", "rows", "new", "unchanged", "duplicates merged", "skipped", "labels", "predictions"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for r in reports:
        table.add_row(", ".join(Path(p).name for p in r.paths), f"{r.n_rows:,}", f"{r.n_new:,}",
                      f"{r.n_unchanged:,}", f"{r.n_duplicates:,}", f"{r.n_skipped:,}",
                      f"{r.n_labels:,}", f"{r.n_predictions:,}")
    return table


def ingest(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Files (.jsonl .json .csv .tsv .parquet), local `datasets` folders or Hub dataset ids.",
        show_default=False)] = None,
    benchmark: Annotated[str | None, typer.Option(
        "--benchmark", "-b",
        help=f"Format/benchmark when auto-detection is ambiguous: {', '.join(adapters.BENCHMARK_CHOICES)}.")] = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="Split for every record (test|train|validation|dev); default: the record's own, else test.")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Load the bundled real sample (5 benchmarks, training pool, MedXpertQA labels).")] = False,
    annotator: Annotated[str | None, typer.Option(
        "--annotator", help="Who imported labels (a `label` field) are attributed to [default: import:<file stem>].")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing.")] = False,
    move_split: Annotated[bool, typer.Option(
        "--move-split", help="Move stored questions this file puts in another split (default: that is an error).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest benchmark questions into the store (all-or-nothing per call; idempotent).
    Creates the store if --db names a missing file (a dry run creates nothing)."""
    s = store(db, create=True)
    if sample:
        if paths:
            raise InputError("pass either paths or --sample, not both")
        reports = ingest_sample(s)
    else:
        reports = [ingest_paths(s, paths or [], benchmark=benchmark, split=split,
                                annotator=annotator, dry_run=dry_run, move_split=move_split)]
    if as_json:
        print_json([r.to_dict() for r in reports])
        return
    console.print(_report_table(reports))
    for r in reports:
        for reason, n in r.skipped.items():
            console.print(f"skipped {n:,}: {reason}")
        for change, n in r.moved.items():
            console.print(f"{'would move' if dry_run else 'moved'} {n:,} question(s) between splits: {change}")
    if dry_run:
        console.print("dry run: nothing was written")


def stats_table(data: dict) -> Table:  # type: ignore[type-arg]
    table = Table(title=f"{data['questions']:,} questions, {data['labels']['current']:,} current labels")
    for col in ("benchmark", "split", "questions", "duplicates merged", "human-labeled", "benchmark-tagged", "labels"):
        table.add_column(col, justify="left" if col in ("benchmark", "split") else "right")
    for r in data["per_benchmark"]:
        table.add_row(r["dataset_name"], r["split"], f"{r['questions']:,}", f"{r['duplicates_merged']:,}",
                      f"{r['human_labeled']:,}", f"{r['import_labeled']:,}", f"{r['labels']:,}")
    return table


def share_table(share: dict) -> Table:  # type: ignore[type-arg]
    from curation import paper

    table = Table(title=f"Predicted reasoning share (model {share['model_version']}; "
                        f"paper: {paper.pct(paper.REASONING_SHARE)} overall)")
    for col in ("benchmark", "split", "questions", "reasoning", "share", "95 % CI", "in training"):
        table.add_column(col, justify="left" if col in ("benchmark", "split") else "right")
    for r in share["per_benchmark"]:
        table.add_row(r["dataset_name"], r["split"], f"{r['n']:,}", f"{r['n_reasoning']:,}",
                      f"{r['share']:.1%}", f"{r['ci'][0]:.1%}-{r['ci'][1]:.1%}", f"{r['n_in_training']:,}")
    table.caption = "in training: questions the model trained or validated on (their share is in-sample)"
    return table


def stats(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Questions per benchmark and split, duplicates merged, labels so far, reasoning share."""
    from curation.services.annotate import store_stats

    data = store_stats(store(db))
    if as_json:
        print_json(data)
        return
    console.print(stats_table(data))
    by_label = ", ".join(f"{k}: {v:,}" for k, v in data["labels"]["by_label"].items()) or "none yet"
    by_source = ", ".join(f"{k}: {v:,}" for k, v in data["labels"]["by_source"].items()) or "none yet"
    console.print(f"labels by class: {by_label}; by source: {by_source}; "
                  f"annotation rows: {data['labels']['rows']:,}; adjudicated: {data['adjudications']:,}")
    if data.get("reasoning_share"):
        console.print(share_table(data["reasoning_share"]))


def demo(
    db: DbOption = None,
    port: Annotated[int | None, typer.Option(
        "--port", help="Port for the app [env: CURATION_DEMO_PORT; default 8501].")] = None,
    no_app: Annotated[bool, typer.Option("--no-app", help="Stop after the release; do not start the app.")] = False,
) -> None:
    """The main job on the embedded defaults: ingest the bundled sample, create demo users and a
    gold batch, train a first classifier and score the store, build a release, start the app."""
    import os

    from curation import demo as D
    from curation.cli.model import progress_bar

    s = store(db, create=True)
    console.print(f"[bold]1/6 ingest[/] the bundled sample into {escape(s.key)}")
    console.print(_report_table(D.ingest(s)))
    console.print("[bold]2/6 users[/]")
    users = D.ensure_users(s)
    for name, password in users["created"].items():
        console.print(f"  created {name} / password {password}")
    console.print(f"  credentials are in {users['credentials_file']}")
    console.print("[bold]3/6 gold batch[/]")
    gold = D.ensure_gold(s)
    console.print(f"  {gold['batch_id']} ({'new' if gold['created'] else 'exists'})")
    console.print(f"[bold]4/6 classifier[/]: {D.DEMO_MODEL} on the bundled MedXpertQA labels, then score the store")
    with progress_bar() as bar:
        model = D.ensure_model(s, progress=bar)
    if model["trained"]:
        v = model["trained"]["validation"]
        held = "out-of-fold" if model["trained"].get("threshold_source") == "out_of_fold" else "validation"
        console.print(f"  trained {model['trained']['model_version']}: {held} balanced accuracy "
                      f"{v.get('balanced_accuracy', float('nan')):.3f}, kappa {v.get('kappa', float('nan')):.3f}")
    console.print(f"  scored {model['scored']['n']:,} questions; predicted reasoning share "
                  f"{model['scored']['reasoning_share']:.1%}")
    from curation.services.annotate import store_stats

    data = store_stats(s)
    console.print(stats_table(data))
    if data.get("reasoning_share"):
        console.print(share_table(data["reasoning_share"]))
    console.print("[bold]5/6 release[/]")
    rel = D.ensure_release(s)
    console.print(f"  {rel['path']} ({'built' if rel['created'] else 'exists'}); load it with:")
    console.print(f"  python -c \"import datasets; print(datasets.load_dataset('{rel['path']}', 'all', split='test'))\"",
                  highlight=False, markup=False)
    if no_app:
        console.print("demo ready (no app)")
        return
    _serve_demo(s, port or int(os.environ.get("CURATION_DEMO_PORT") or 8501))


def _serve_demo(s: Store, port: int) -> None:
    """Step 6: the app, and the loop's worker beside it, until Ctrl-C or SIGTERM."""
    import os
    import signal
    import subprocess

    from curation import demo as D
    from curation.cli.app_cmds import app_command, wait_healthy

    console.print(f"[bold]6/6 app[/] on http://127.0.0.1:{port}")
    env = {**os.environ, "CURATION_DB": s.location}
    policy = D.ensure_loop(s)["policy"]
    console.print(f"  the loop: a worker beside the app retrains ({policy['model']}) after every "
                  f"{policy['retrain_after']} labels by people and queues the next {policy['k']} questions")
    proc = subprocess.Popen(app_command(port, s.location), env=env)
    worker = subprocess.Popen(D.worker_command(), env=env)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", 120)
        if proc.poll() is not None:
            raise typer.Exit(proc.returncode or 1)
        console.print(f"demo ready: open http://127.0.0.1:{port} and log in with the credentials above "
                      "(Ctrl-C stops the app)", highlight=False)
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in (worker, proc):  # the worker finishes its current job, then stops
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in (worker, proc):
            child.wait(timeout=60)


def store_init(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Create an empty store (its folder, the schema) at --db; an existing store is left as
    it is. Other commands refuse a --db that names no store (a typo would create one)."""
    report = store(db, create=True).init()
    if as_json:
        print_json(report)
        return
    done = "created" if report["created"] else "already exists"
    console.print(f"store {report['path']} {done} (schema version {report['schema_version']})", highlight=False)


def store_copy(
    source: Annotated[str, typer.Option("--from", help="The store to copy: a DuckDB file or a postgresql:// URL.")],
    target: Annotated[str, typer.Option("--to", help="An empty store to copy into (a new DuckDB file is created).")],
    as_json: JsonOption = False,
) -> None:
    """Copy a whole store between a DuckDB file and PostgreSQL (either way), in one
    transaction; every table's row count and content hash are checked on both sides. A target
    that holds any row is refused."""
    with progress_bar(not as_json) as cb:
        report = stores.copy_store(store(source), store(target, create=True), progress=cb)
    if as_json:
        print_json(report)
        return
    console.print(f"copied {report['rows']} rows in {len(report['tables'])} tables from {report['from']} "
                  f"to {report['to']}; row counts and content hashes match", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(handle_errors(demo))
    app.command("ingest")(handle_errors(ingest))
    app.command("stats")(handle_errors(stats))
    store_app = typer.Typer(help="The store itself: create it, copy it between DuckDB and PostgreSQL.",
                            no_args_is_help=True)
    store_app.command("init")(handle_errors(store_init))
    store_app.command("copy")(handle_errors(store_copy))
    app.add_typer(store_app, name="store")
