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
    pool_config: Annotated[bool, typer.Option(
        "--pool-config", help="Also write m23k_clean: every decontaminated training-pool row with its trace.")] = False,
    contact: Annotated[str | None, typer.Option(
        "--contact", help="Who to contact about the dataset, shown on the card [default: $CURATION_CONTACT].")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build exports/VERSION: a config per benchmark (BioMed-R1-Eval's names) + all + gold +
    train_reasoning + biomed_r1 + aliases, card, manifest (the command is recorded without --out/--db)."""
    from curation.release import build_release

    command = ["curation", *sys.argv[1:]] if sys.argv and Path(sys.argv[0]).name.startswith("curation") else None
    if command is None:
        command = ["curation", "release", "build", "--version", version]
        if model:
            command += ["--model", model]
        if include_restricted:
            command.append("--include-restricted")
        if threshold is not None:
            command += ["--threshold", str(threshold)]
        for c in cap or []:
            command += ["--cap", c]
        if pool_config:
            command.append("--pool-config")
    manifest = build_release(
        store(db), version=version, out=out, model=model, include_restricted=include_restricted,
        threshold=threshold, caps=cap, command=command, pool_config=pool_config, contact=contact,
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
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check, read-only, the token's write access, the repo, the tag and the card; upload nothing.")] = False,
    endpoint: Annotated[str | None, typer.Option(
        "--endpoint", help="Hub endpoint, https:// only [env: HF_ENDPOINT; default https://huggingface.co].")] = None,
    allow_http_loopback: Annotated[bool, typer.Option(
        "--allow-http-loopback", hidden=True,
        help="Tests only: allow a plain http:// endpoint on 127.0.0.1, ::1 or localhost (never another host).")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make the Hub repo's main exactly this release in one commit (files it lacks are deleted) and tag it with
    its version (token: HF_TOKEN or `hf auth login`). A dry run exits 1 when a check fails."""
    from curation.release import publish_release

    result = publish_release(store(db), folder, repo_id=repo, private=private, dry_run=dry_run, endpoint=endpoint,
                             allow_insecure_loopback=allow_http_loopback)
    if as_json:
        print_json(result)
    elif dry_run:
        console.print(
            f"dry run: would upload {len(result['files'])} file(s), {result['total_bytes']:,} bytes, to "
            f"{result['endpoint']}/datasets/{result['repo_id']} ({'private' if private else 'public'}), delete "
            f"{len(result['delete'])} other file(s) from main and tag it {result['tag']!r}; token "
            f"{'found' if result.get('token_found') else 'NOT found (set HF_TOKEN or run hf auth login)'}",
            highlight=False, markup=False,
        )
        for c in result["checks"]:
            console.print(f"  {'passed' if c['passed'] else 'FAILED'}  {c['check']}: {c['detail']}",
                          highlight=False, markup=False)
    else:
        n_deleted = len(result["deleted"])
        console.print(
            f"published {result['repo_id']} at commit {result['commit_sha']} tagged {result['tag']!r}"
            f"{f', {n_deleted} old file(s) deleted from main' if n_deleted else ''}: {result['repo_url']}",
            highlight=False, markup=False,
        )
    if dry_run and not result["ok"]:
        raise typer.Exit(1)


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
    """A rich renderable (the report's tables plus notes)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from curation import evaluate as ev

    parts: list[Any] = []
    for title, headers, rows in ev.tables(report):
        table = Table(title=title)
        for h in headers:
            table.add_column(h, justify="left" if h in ("setting", "benchmark", "config", "kind") else "right")
        for r in rows:
            table.add_row(*[Text(c) for c in r])
        parts.append(table)
    parts += [Text(f"• {n}") for n in ev.notes(report)]
    parts.append(Text(f"CIs: {report['ci_method']}; accuracy = {report['accuracy_definition']}."))
    return Group(*parts)


def evaluate(
    answers: Annotated[Path, typer.Argument(help=(
        "JSONL, one answer per line: {\"id\", \"answer\"} for the plain question, {\"id\", \"answer\", \"trace\": K} "
        "for the question asked with the release's adversarial_trace_K prefix (K = 0, 1, 2). \"answer\" is the "
        "model's raw output (a letter, \"The answer is B\", <answer>B</answer>, \\boxed{B}, option text, ...); "
        "\"predicted\" is accepted for \"answer\"; an id may be an alias from the release's aliases config."))],
    release: Annotated[Path, typer.Option("--release", help="A built release folder, e.g. exports/v1.0.")],
    config: Annotated[str | None, typer.Option("--config", help=(
        "Score exactly this config's questions (a benchmark, all or gold) [default: every question of the "
        "benchmarks the answers file covers; coverage of the others is reported, not counted missing]."))] = None,
    fmt: Annotated[str, typer.Option("--format", help="rich | markdown | json")] = "rich",
    report_path: Annotated[Path | None, typer.Option(
        "--report", help="Also write the JSON report (every missing, unparsed, invalid and unknown id) here.")] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="Also write a PNG chart here.")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="1 - confidence level of the intervals.")] = 0.05,
    n_boot: Annotated[int | None, typer.Option(
        "--n-boot", hidden=True, help="Ignored: intervals are score intervals now (kept so old scripts run).")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", hidden=True, help="Ignored: intervals are score intervals now (kept so old scripts run).")] = None,
) -> None:
    """Score model answers on a release: accuracy per benchmark on its reasoning and knowledge subsets
    (Wilson CIs, gap), per adversarial trace (worst case, drop), with missing, unparsed and unknown ids listed."""
    import json

    from curation import evaluate as ev
    from curation.services.evaluate import evaluate_file, write_chart

    if fmt not in ("rich", "markdown", "json"):
        raise InputError(f"--format {fmt!r} is not rich, markdown or json")
    report = evaluate_file(answers, release, config=config, alpha=alpha)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = report_path.with_name(report_path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(report_path)
    if chart is not None:
        write_chart(report, chart)
    if fmt == "json":
        print_json(report)
    elif fmt == "markdown":
        sys.stdout.write(ev.render_markdown(report))
    else:
        console.print(render_rich(report))
    for what, path in (("report", report_path), ("chart", chart)):
        if path is not None and fmt != "json":
            console.print(f"{what}: {path}", highlight=False, markup=False)


def _ids_cell(ids: list[str], n: int) -> str:
    return ", ".join(ids) + (", …" if n > len(ids) else "")


def diff_cmd(
    old: Annotated[Path, typer.Argument(help="The older release folder, e.g. exports/v1.0.")],
    new: Annotated[Path, typer.Argument(help="The newer release folder, e.g. exports/v1.1.")],
    first: Annotated[int, typer.Option("--first", min=0, help="List at most this many ids of each kind.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """What changed between two releases: rows added/removed per config, labels changed (per
    benchmark and label source), the classifier."""
    from curation.release.diff import diff_releases

    d = diff_releases(old, new, first_n=first)
    if as_json:
        print_json(d)
        return
    title = f"Release {d['old']['version']} -> {d['new']['version']}"
    rows = Table("config", "change", "rows before", "rows now", "added", "removed", "first ids", title=title)
    for name, c in d["configs"].items():
        ids = [*(f"+{i}" for i in c.get("added_ids", [])), *(f"-{i}" for i in c.get("removed_ids", []))]
        rows.add_row(name, c["status"], str(c["rows_old"] if c["rows_old"] is not None else "–"),
                     str(c["rows_new"] if c["rows_new"] is not None else "–"), str(c.get("added", "–")),
                     str(c.get("removed", "–")), _ids_cell(ids[:first], c.get("added", 0) + c.get("removed", 0)))
    console.print(rows)
    lab = d["labels"]
    fields = Table("field", "rows changed", "first ids", title=f"Labels on the {lab['n_compared']} questions in both")
    for f, v in lab["fields"].items():
        fields.add_row(f, str(v["n"]), _ids_cell(v["ids"], v["n"]))
    console.print(fields)
    for what, block in (("benchmark", lab["by_benchmark"]), ("label source (now)", lab["by_label_source"])):
        if block:
            per = Table(what, *lab["fields"], title=f"Changed rows per {what}")
            for k, counts in block.items():
                per.add_row(k, *(str(counts.get(f, 0)) for f in lab["fields"]))
            console.print(per)
    m = d["model"]
    console.print(
        f"classifier: {m['old']['version']} (threshold {m['old']['threshold']}) -> {m['new']['version']} "
        f"(threshold {m['new']['threshold']})" if m["changed"] else f"classifier: unchanged ({m['new']['version']})",
        highlight=False, markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    release_app.command("build")(handle_errors(build))
    release_app.command("publish")(handle_errors(publish))
    release_app.command("list")(handle_errors(list_cmd))
    release_app.command("diff")(handle_errors(diff_cmd))
    app.add_typer(release_app, name="release")
    app.command("evaluate")(handle_errors(evaluate))
