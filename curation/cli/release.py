"""`curation release build|publish|list` and `curation evaluate`: thin wrappers that print."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curation.cli._common import DbOption, JsonOption, console, handle_errors, print_json, store
from curation.errors import InputError

release_app = typer.Typer(
    name="release",
    help="Build versioned dataset releases (Hub layout) and publish them to the Hugging Face Hub.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _build_table(manifest: Mapping[str, Any]) -> Table:
    table = Table(title=f"Release {manifest['version']}")
    for col in ("config", "split", "rows", "file"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for name, c in manifest["configs"].items():
        table.add_row(name, c["split"], f"{c['rows']:,}", c["path"])
    return table


def build(
    version: Annotated[str, typer.Option("--version", help="Release version, e.g. v1.0 (also the Hub tag).")],
    model: Annotated[str | None, typer.Option(
        "--model", help="Model version whose predictions fill reasoning_prob [default: newest model with predictions].")] = None,
    out: Annotated[Path, typer.Option("--out", help="Parent folder of the release folder.")] = Path("exports"),
    include_restricted: Annotated[bool, typer.Option(
        "--include-restricted",
        help="Include GPQA, HLE, MedBullets, Lancet, NEJM (licences forbid redistribution): private publishing only.")] = False,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="reasoning_prob cut for train_reasoning [default: the model's own is_reasoning].")] = None,
    cap: Annotated[list[str] | None, typer.Option(
        "--cap", help="At most N training questions from a benchmark: BENCH=N (repeatable).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build exports/VERSION: per-benchmark + all + gold + train_reasoning configs, card, manifest."""
    from curation.release import build_release

    command = ["curation", *sys.argv[1:]] if sys.argv and Path(sys.argv[0]).name.startswith("curation") else None
    if command is None:
        command = ["curation", "release", "build", "--version", version]
        if model:
            command += ["--model", model]
        command += ["--out", str(out)]
        if include_restricted:
            command.append("--include-restricted")
        if threshold is not None:
            command += ["--threshold", str(threshold)]
        for c in cap or []:
            command += ["--cap", c]
    manifest = build_release(
        store(db), version=version, out=out, model=model, include_restricted=include_restricted,
        threshold=threshold, caps=cap, command=command,
    )
    if as_json:
        print_json({k: manifest[k] for k in ("version", "configs", "row_counts", "content_hash", "requires_private")})
        return
    console.print(_build_table(manifest))
    d = manifest["decontamination"]
    console.print(
        f"decontamination: {d['n_removed']} of {d['n_candidates']} training candidates removed "
        f"({d['n_exact']} exact, {d['n_near']} near duplicates, Jaccard >= {d['jaccard_threshold']})"
    )
    if manifest["requires_private"]:
        console.print("[bold yellow]includes restricted benchmarks: publish only with --private[/]")
    folder = Path(out) / version
    console.print(f"written: {folder}", highlight=False)
    console.print(
        f"load it: datasets.load_dataset({str(folder)!r}, 'all', split='test')", highlight=False, markup=False
    )


def publish(
    folder: Annotated[Path, typer.Argument(help="A built release folder, e.g. exports/v1.0.")],
    repo: Annotated[str, typer.Option("--repo", help="Hub dataset repo ORG/NAME.")],
    private: Annotated[bool, typer.Option("--private", help="Create/require a private repo.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and show the plan; contact nobody.")] = False,
    endpoint: Annotated[str | None, typer.Option(
        "--endpoint", help="Hub endpoint, https:// only [env: HF_ENDPOINT; default https://huggingface.co].")] = None,
    allow_http_loopback: Annotated[bool, typer.Option(
        "--allow-http-loopback", hidden=True,
        help="Tests only: allow a plain http:// endpoint on 127.0.0.1, ::1 or localhost (never another host).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a release to the Hub in one commit and tag it with its version (token: HF_TOKEN or `hf auth login`)."""
    from curation.release import publish_release

    result = publish_release(store(db), folder, repo_id=repo, private=private, dry_run=dry_run, endpoint=endpoint,
                             allow_insecure_loopback=allow_http_loopback)
    if as_json:
        print_json(result)
        return
    if dry_run:
        console.print(
            f"dry run: would upload {len(result['files'])} file(s), {result['total_bytes']:,} bytes, to "
            f"{result['endpoint']}/datasets/{result['repo_id']} ({'private' if private else 'public'}) and tag it "
            f"{result['tag']!r}; token {'found' if result.get('token_found') else 'NOT found (set HF_TOKEN or run hf auth login)'}",
            highlight=False, markup=False,
        )
        return
    console.print(
        f"published {result['repo_id']} at commit {result['commit_sha']} tagged {result['tag']!r}: {result['repo_url']}",
        highlight=False, markup=False,
    )


def list_cmd(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Releases recorded in the store and where they were published."""
    from curation.release import list_releases

    rows = list_releases(store(db))
    if as_json:
        print_json([{**r, "manifest": {k: r["manifest"].get(k) for k in ("row_counts", "requires_private")}} for r in rows])
        return
    table = Table(title="Releases")
    for col in ("version", "built", "rows (all)", "train", "published to"):
        table.add_column(col)
    for r in rows:
        counts = r["manifest"].get("row_counts", {})
        table.add_row(r["version"], str(r["created_at"])[:19], f"{counts.get('all', 0):,}",
                      f"{counts.get('train_reasoning', 0):,}",
                      ", ".join(f"{p['repo_id']}@{(p['commit_sha'] or '')[:8]}" for p in r["publications"]) or "–")
    console.print(table)


def render_rich(report: Mapping[str, Any]) -> Any:
    """A rich renderable (Table plus notes)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from curation import evaluate as ev

    table = Table(title="Accuracy on knowledge- vs reasoning-heavy questions")
    for h in ev.HEADERS:
        table.add_column(h, justify="left" if h in ("setting", "benchmark") else "right")
    for r in ev.table_rows(report):
        table.add_row(*[Text(c) for c in r])
    notes = [Text(f"• {n}") for n in ev.notes(report)]
    notes.append(Text(f"CIs: {report['ci_method']}, {report['n_boot']} replicates, seed {report['seed']}."))
    return Group(table, *notes)


def evaluate(
    predictions: Annotated[Path, typer.Argument(help="JSONL: {\"id\", \"predicted\"[, \"adversarial\"]} per line.")],
    release: Annotated[Path, typer.Option("--release", help="A built release folder, e.g. exports/v1.0.")],
    fmt: Annotated[str, typer.Option("--format", help="rich | markdown | json")] = "rich",
    chart: Annotated[Path | None, typer.Option("--chart", help="Also write a PNG chart here.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap replicates.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
) -> None:
    """Score model answers on a release's reasoning and knowledge subsets (bootstrap CIs, gap)."""
    from curation import evaluate as ev
    from curation.services.evaluate import evaluate_file, write_chart

    if fmt not in ("rich", "markdown", "json"):
        raise InputError(f"--format {fmt!r} is not rich, markdown or json")
    report = evaluate_file(predictions, release, n_boot=n_boot, seed=seed)
    if chart is not None:
        write_chart(report, chart)
    if fmt == "json":
        print_json(report)
    elif fmt == "markdown":
        sys.stdout.write(ev.render_markdown(report))
    else:
        console.print(render_rich(report))
    if chart is not None and fmt != "json":
        console.print(f"chart: {chart}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    release_app.command("build")(handle_errors(build))
    release_app.command("publish")(handle_errors(publish))
    release_app.command("list")(handle_errors(list_cmd))
    app.add_typer(release_app, name="release")
    app.command("evaluate")(handle_errors(evaluate))
