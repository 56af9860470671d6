"""CLI for the annotation app: users, gold draws, agreement, label exports, starting the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from curation.cli._common import DbOption, JsonOption, console, handle_errors, print_json, store
from curation.errors import ConfigError, InputError
from curation.services import annotate

users_app = typer.Typer(help="Accounts for the annotation app.", no_args_is_help=True)
gold_app = typer.Typer(help="The gold set (random, stratified, blind).", no_args_is_help=True)
labels_app = typer.Typer(help="Human labels.", no_args_is_help=True)

EXPERTISE_HELP = ("Annotation expertise: expert, crowd, student or unknown (the release card's "
                  "annotations_creators is derived from it).")
UI_APP = Path(__file__).resolve().parent.parent.parent / "ui" / "app.py"


def read_password(password_file: Path | None) -> str:
    """The password from the first line of a file, else from an interactive prompt (twice)."""
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read the password file: {exc.strerror}", location=str(password_file)) from exc
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise InputError("the password file is empty; put the password on its first line",
                             location=str(password_file))
        return lines[0]
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
@handle_errors
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="annotator or maintainer")] = "annotator",
    expertise: Annotated[str, typer.Option("--expertise", help=EXPERTISE_HELP)] = "unknown",
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="Read the password from this file's first line.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an account (the password is stored as an Argon2 hash, never in plain)."""
    from curation import auth

    auth.validate_username(name)  # before asking for the password
    auth.validate_role(role)
    annotate.validate_expertise(expertise)
    user = annotate.add_user(store(db), name, role=role, password=read_password(password_file), expertise=expertise)
    if as_json:
        print_json(user)
    else:
        console.print(f"created {user['role']} {user['name']!r} (expertise {user['expertise']})", highlight=False)


@users_app.command("set-expertise")
@handle_errors
def users_set_expertise(
    name: Annotated[str, typer.Argument(help="Login name.")],
    level: Annotated[str, typer.Argument(help=EXPERTISE_HELP)],
    db: DbOption = None,
) -> None:
    """Record an existing account's annotation expertise (the release card's annotations_creators)."""
    annotate.set_expertise(store(db), name, level)
    console.print(f"{name!r}: expertise {level}", highlight=False, markup=False)


@users_app.command("list")
@handle_errors
def users_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List accounts (no hashes)."""
    rows = annotate.list_users(store(db))
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['name']}\t{r['role']}\t{r['expertise']}\t{'disabled' if r['disabled'] else 'active'}",
                      highlight=False, markup=False)


@gold_app.command("draw")
@handle_errors
def gold_draw(
    size: Annotated[int, typer.Option("--size", help="How many questions.")],
    overlap: Annotated[int, typer.Option("--overlap", help="Annotators per question (K).")] = 2,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: random, printed).")] = None,
    batch_id: Annotated[str | None, typer.Option("--batch-id", help="Batch id (default gold-<time>-<seed>).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Draw a random gold batch of split='test' questions, stratified by benchmark."""
    from curation.services.annotate import draw_gold

    res = draw_gold(store(db), size, overlap, seed, batch_id=batch_id, created_by="cli")
    if as_json:
        print_json(res)
        return
    console.print(f"gold batch {res['batch_id']}: {res['size']} questions, overlap {res['overlap']}, "
                  f"seed {res['seed']}", highlight=False)
    for ds, n in res["per_dataset"].items():
        console.print(f"  {ds}\t{n}", highlight=False, markup=False)


def _fmt(v: dict[str, Any]) -> str:
    if v["value"] is None:
        return "n/a"
    lo, hi = v["ci"]
    ci = "" if lo is None else f" [{lo:.3f}, {hi:.3f}]"
    return f"{v['value']:.3f}{ci}"


@handle_errors
def agreement_cmd(
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Human-human agreement on the gold set, with bootstrap 95 % CIs."""
    from rich.table import Table

    from curation.services.annotate import agreement_summary

    report = agreement_summary(store(db), n_boot=n_boot, seed=seed)
    if as_json:
        print_json(report)
        return
    keys = ("mean_pairwise_cohen", "fleiss_kappa", "krippendorff_alpha", "percent_agreement")
    table = Table("scope", "items", "Cohen (mean pairwise)", "Fleiss", "Krippendorff", "% agree",
                  title=f"Agreement on the gold set (95 % CI, {n_boot} bootstrap resamples)")
    blocks = [("overall", report["overall"]), *sorted(report["per_group"].items())]
    for name, block in blocks:
        table.add_row(name, str(block["n_items"]), *(_fmt(block[k]) for k in keys))
    console.print(table)
    if report["n_items_dropped"]:
        console.print(f"{report['n_items_dropped']} gold item(s) with a single label left out.")
    console.print(f"raters (people only): {', '.join(report['raters']) or 'none yet'}", highlight=False, markup=False)
    tags = report["benchmark_tags"]
    cmp = tags["human_label_vs_tag"]
    if cmp["n_items"]:
        console.print(
            f"benchmark tags ({', '.join(tags['sources'])}), a reference, not a rater: the human label "
            f"matches the tag on {cmp['percent_agreement']:.1%} of {cmp['n_items']} gold items "
            f"(Cohen's kappa {cmp['cohen_kappa']:.3f})" if cmp["cohen_kappa"] is not None else
            f"benchmark tags: the human label matches on {cmp['percent_agreement']:.1%} of {cmp['n_items']} gold items",
            highlight=False, markup=False)


@labels_app.command("export")
@handle_errors
def labels_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
    db: DbOption = None,
) -> None:
    """Every annotation row (labels, undos, skips) with annotator, time and source. In CSV,
    a text cell starting with = + - @ tab, CR or ' gets a leading ' (no live formulas in a
    spreadsheet); `curation.labels.parse_export_csv` removes it again."""
    from curation.labels import FORMATS, render
    from curation.staging import check_new_file, write_text_atomic

    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if out is not None:
        check_new_file(out, "--out")  # before reading the store
    text = render(annotate.annotation_export(store(db)), fmt)
    if out is None:
        sys.stdout.write(text)
        return
    write_text_atomic(out, text, option="--out")
    console.print(f"wrote {out}", highlight=False, markup=False)


def app_command(port: int, db: str | None, address: str = "127.0.0.1") -> list[str]:
    """The command line that starts the Streamlit app."""
    if not UI_APP.is_file():
        raise ConfigError(f"{UI_APP}: the app is not here; run `curation app` from a source checkout")
    return [
        sys.executable, "-m", "streamlit", "run", str(UI_APP), "--server.headless", "true",
        "--server.port", str(port), "--server.address", address,
        "--browser.gatherUsageStats", "false",
    ]


@handle_errors
def app_cmd(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    address: Annotated[str, typer.Option("--address", help="Interface to bind.")] = "127.0.0.1",
    db: DbOption = None,
) -> None:
    """Start the annotation app (Streamlit) on the store."""
    target = store(db)
    target.require_file()  # a typo in --db is an error here, not a new empty store behind the app
    env = dict(os.environ, CURATION_DB=str(target.path))
    cmd = app_command(port, db, address)
    console.print(f"app on http://{address}:{port} (store {env['CURATION_DB']}); Ctrl-C stops it",
                  highlight=False)
    try:
        raise typer.Exit(subprocess.call(cmd, env=env))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(users_app, name="users")
    app.add_typer(gold_app, name="gold")
    app.add_typer(labels_app, name="labels")
    app.command("agreement")(agreement_cmd)
    app.command("app")(app_cmd)
