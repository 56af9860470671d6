"""CLI for the annotation app: users, gold draws, agreement, label exports, starting the app."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from curation.cli._common import DbOption, JsonOption, console, handle_errors, print_json, store
from curation.errors import ConfigError, InputError, NotFoundError
from curation.services import annotate

users_app = typer.Typer(help="Accounts for the annotation app.", no_args_is_help=True)
gold_app = typer.Typer(help="The gold set (random, stratified, blind).", no_args_is_help=True)
labels_app = typer.Typer(help="Human labels.", no_args_is_help=True)

EXPERTISE_HELP = ("Annotation expertise: expert, crowd, student or unknown (the release card's "
                  "annotations_creators is derived from it).")
UI_APP = Path(__file__).resolve().parent.parent.parent / "ui" / "app.py"
STREAMLIT_CONFIG = UI_APP.parent.parent / ".streamlit" / "config.toml"


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


@users_app.command("disable")
@handle_errors
def users_disable(name: Annotated[str, typer.Argument(help="Login name.")], db: DbOption = None) -> None:
    """Turn an account off: it cannot log in and its open app sessions end (its labels stay)."""
    res = annotate.set_disabled(store(db), name, True)
    state = "disabled" if res["changed"] else "was already disabled"
    console.print(f"{name!r} {state}; {res['sessions_ended']} app session(s) ended", highlight=False, markup=False)


@users_app.command("enable")
@handle_errors
def users_enable(name: Annotated[str, typer.Argument(help="Login name.")], db: DbOption = None) -> None:
    """Turn a disabled account on again."""
    res = annotate.set_disabled(store(db), name, False)
    console.print(f"{name!r} {'enabled' if res['changed'] else 'was already enabled'}", highlight=False, markup=False)


@users_app.command("reset-password")
@handle_errors
def users_reset_password(
    name: Annotated[str, typer.Argument(help="Login name.")],
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="Read the new password from this file's first line.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Give an account a new password (asked twice, or from --password-file); its open app
    sessions end."""
    if annotate.find_user(store(db), name) is None:  # before asking for the password
        raise NotFoundError(f"no user {name!r}; `curation users list` shows the accounts")
    res = annotate.reset_password(store(db), name, read_password(password_file))
    console.print(f"{name!r}: new password set; {res['sessions_ended']} app session(s) ended",
                  highlight=False, markup=False)


@users_app.command("set-role")
@handle_errors
def users_set_role(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Argument(help="annotator or maintainer")],
    db: DbOption = None,
) -> None:
    """Change an account's role (open app sessions pick it up within a minute, and before any write)."""
    res = annotate.set_role(store(db), name, role)
    console.print(f"{name!r}: {res['previous']} -> {res['role']}", highlight=False, markup=False)


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


def parse_since(text: str) -> datetime:
    """`--since` as a naive UTC datetime (the store's times are naive UTC); an offset is converted."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since {text!r} is not a date or time; use 2026-01-31 or 2026-01-31T14:00 (UTC)") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


@labels_app.command("export")
@handle_errors
def labels_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
    source: Annotated[str | None, typer.Option(
        "--source", help="Only rows from this source: app, label_studio or import.")] = None,
    annotator: Annotated[str | None, typer.Option("--annotator", help="Only this annotator's rows.")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Only rows of this batch id.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only rows created at or after this UTC date or time (2026-01-31 or 2026-01-31T14:00).")] = None,
    db: DbOption = None,
) -> None:
    """Every annotation row (labels, undos, skips) with annotator, time and source, or those
    the filters keep. In CSV, a text cell starting with = + - @ tab, CR or ' gets a leading '
    (no live formulas in a spreadsheet); `curation.labels.parse_export_csv` removes it again."""
    from curation.labels import FORMATS, render
    from curation.rules import SOURCE_ORIGINS
    from curation.staging import check_new_file, write_text_atomic

    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if source is not None and source not in SOURCE_ORIGINS:
        raise InputError(f"--source {source!r} is not one of {', '.join(SOURCE_ORIGINS)}")
    since_at = parse_since(since) if since is not None else None
    if out is not None:
        check_new_file(out, "--out")  # before reading the store
    rows = annotate.annotation_export(store(db), source=source, annotator=annotator, batch=batch, since=since_at)
    text = render(rows, fmt)
    if out is None:
        sys.stdout.write(text)
        return
    write_text_atomic(out, text, option="--out")
    console.print(f"wrote {out}", highlight=False, markup=False)


# `streamlit run`, told first that `ui/pages/` is not a Streamlit v1 pages folder. Streamlit runs
# the very first session of a server as a v1 multipage app when a `pages/` folder sits next to
# the main script (until some script calls `st.navigation`): a first visit to `/agreement`
# would run that page file directly, outside the router, with every page in the menu.
STREAMLIT_LAUNCH = (
    "import sys; from streamlit.runtime.pages_manager import PagesManager; "
    "PagesManager.uses_pages_directory = False; "
    "from streamlit.web.cli import main; sys.argv[0] = 'streamlit'; main(prog_name='streamlit')"
)


def streamlit_flags(config_file: Path = STREAMLIT_CONFIG) -> list[str]:
    """`.streamlit/config.toml` as Streamlit command-line flags (`--client.toolbarMode viewer`, ...):
    Streamlit reads that file only from the working directory and ~/.streamlit, the flags hold
    wherever `curation app` is started."""
    import tomllib

    try:
        config = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{config_file}: cannot read the app's Streamlit settings: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file}: the app's Streamlit settings are not valid TOML ({exc}); "
                          "fix the file or restore it from the repository") from exc
    flags: list[str] = []
    for section, options in config.items():
        for key, value in options.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags += [f"--{section}.{key}", text]
    return flags


def app_command(port: int, db: str | None, address: str = "127.0.0.1") -> list[str]:
    """The command line that starts the Streamlit app."""
    if not UI_APP.is_file():
        raise ConfigError(f"{UI_APP}: the app is not here; run `curation app` from a source checkout")
    return [
        sys.executable, "-c", STREAMLIT_LAUNCH, "run", str(UI_APP), *streamlit_flags(),
        "--server.port", str(port), "--server.address", address,
    ]


def wait_healthy(proc: subprocess.Popen[Any], url: str, timeout: float) -> bool:
    """Poll the Streamlit app at `url` (``http://host:port``) until its health check answers
    200: True; False when `proc` exits first or `timeout` seconds pass (`proc.poll()` tells which)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


@handle_errors
def app_cmd(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    address: Annotated[str, typer.Option("--address", help="Interface to bind.")] = "127.0.0.1",
    db: DbOption = None,
) -> None:
    """Start the annotation app (Streamlit) on the store. The command becomes the Streamlit
    server (same process id), so stopping it (Ctrl-C, `kill`, `systemctl stop`, `docker stop`)
    stops the server."""
    target = store(db)
    target.require_file()  # a typo in --db is an error here, not a new empty store behind the app
    env = dict(os.environ, CURATION_DB=target.location)
    cmd = app_command(port, db, address)
    console.print(f"app on http://{address}:{port} (store {target.key}); Ctrl-C stops it",
                  highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], cmd, env)  # no child left behind: signals reach Streamlit itself


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(users_app, name="users")
    app.add_typer(gold_app, name="gold")
    app.add_typer(labels_app, name="labels")
    app.command("agreement")(agreement_cmd)
    app.command("app")(app_cmd)
