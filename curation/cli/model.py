"""`curation train`, `curation classify`, `curation al next|status|simulate|flags`.

Thin Typer wrappers over `curation.services.learn` (`train_model`, `classify`, `al_next`,
`al_status`, `al_simulate`, `al_flags`): parse options, call one function, print.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from curation.active import CHOICES, DEFAULT_STRATEGY, DEFAULT_STRATEGY_WHY
from curation.cli._common import (
    DbOption,
    JsonOption,
    console,
    err_console,
    handle_errors,
    print_json,
)
from curation.errors import InputError
from curation.metrics import finite
from curation.services.learn import (
    Progress,
    al_flags,
    al_next,
    al_simulate,
    al_status,
    classify,
    train_model,
)


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A rich progress bar on stderr as a `progress(stage, done, total)` callback."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def cb(stage: str, done: int, total: int) -> None:
            key = stage.split(" ")[0]
            if key not in tasks:
                tasks[key] = bar.add_task(stage, total=total)
            bar.update(tasks[key], completed=done, total=total, description=stage)

        yield cb


# ----------------------------------------------------------------------------------------
# Typer wrappers
# ----------------------------------------------------------------------------------------

@handle_errors
def train_cmd(
    labels: Annotated[str, typer.Option("--labels", help="Labeled JSONL (id, question, options, label) or 'store'.")],
    out: Annotated[Path, typer.Option("--out", help="New folder to write the model to (must not exist: a model folder is written once).")],
    model: Annotated[str, typer.Option("--model", help="Base: a Hub id, a local folder, 'minilm' (offline) or 'tfidf'.")] = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext",
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping on validation loss).")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA+bf16 if available, else CPU; bf16 where the CPU runs it faster: AMX or a timed matmul), cpu (float32), cuda[:N].")] = "auto",
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens per question (truncation).")] = 256,
    truncation: Annotated[str, typer.Option("--truncation", help="How a longer question is cut: head (keep the start) or head_tail (keep 64 head tokens and the end: the ask and the options).")] = "head",
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
    threshold_folds: Annotated[int, typer.Option("--threshold-folds", help="tfidf: choose calibration and threshold on out-of-fold logits over every training row with this many folds, then fit on all rows (0: hold back a 15 % validation split, as encoders do).")] = 5,
    include_import: Annotated[bool, typer.Option("--include-import", help="With --labels store: also use imported labels.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fine-tune a classifier and save it (weights, tokenizer, threshold, metrics)."""
    with progress_bar(not as_json) as cb:
        res = train_model(labels, model, out, db=db, epochs=epochs, seed=seed, device=device,
                          max_length=max_length, truncation=truncation, batch_size=batch_size,
                          threshold_folds=threshold_folds, include_import=include_import, progress=cb)
    if as_json:
        print_json(finite(res))
        return
    v = res["validation"]
    console.print(f"model {res['model_version']} -> {res['path']}", highlight=False, markup=False)
    held = "out-of-fold" if res.get("threshold_source") == "out_of_fold" else "validation"
    console.print(f"trained on {res['n_labels']} labels; threshold {res['reasoning_threshold']:.3f} (max kappa on {held})", highlight=False, markup=False)
    console.print(f"{held} (n={v['n']}): balanced acc {v['balanced_accuracy']:.3f}, kappa {v['kappa']:.3f}, ECE {v['ece_before_calibration']:.3f} -> {v['ece_after_calibration']:.3f}", highlight=False, markup=False)
    g = res.get("gold")
    if g and g.get("n_gold"):
        hk = g.get("human_kappa")
        human = "n/a" if hk is None else f"{hk:.3f} [{_fmt(g['human_kappa_ci'])}]"
        console.print(
            f"gold (n={g['n_gold']}): kappa {g['kappa']:.3f} [{_fmt(g['kappa_ci'])}], balanced acc {g['balanced_accuracy']:.3f}; "
            f"human-human kappa {human}", highlight=False, markup=False)
    if res.get("round"):
        console.print(f"registered as round {res['round']}", highlight=False, markup=False)

@handle_errors
def classify_cmd(
    model: Annotated[Path, typer.Option("--model", help="A model folder written by `curation train`.")],
    input: Annotated[Path | None, typer.Option("--input", help="JSONL with id, question, options. Default: every store question (writes predictions).")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write one JSON object per line here ('-' = stdout; the default with --input).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    device: Annotated[str, typer.Option(help="auto (CUDA+bf16 if available, else CPU; bf16 where the CPU runs it faster (AMX, or a timed matmul)), cpu (float32), cuda[:N].")] = "auto",
    engine: Annotated[str, typer.Option("--engine", help="local (this process) or ray (a Ray cluster, one model per actor, same predictions; needs pip install \"curation\\[ray]\"). Ray costs seconds to start: worth it for large pools or many GPUs.")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="With --engine ray: the cluster to use ('auto' = the one `ray start` runs on this node, or ray://host:10001); default: start a local cluster for this command.")] = None,
    actors: Annotated[int, typer.Option("--actors", help="With --engine ray: scoring actors, each loading the model once (one GPU each when the cluster has GPUs).")] = 1,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score questions: reasoning_prob, is_reasoning, reasoning_threshold, model_version."""
    # JSONL goes to --output; to stdout with `--output -`, or when --input is given without --output
    to_stdout = (output is not None and str(output) == "-") or (output is None and input is not None and not as_json)
    with progress_bar(not as_json and not to_stdout) as cb:
        res = classify(model, input=input, output=None if to_stdout else output, db=db, batch_size=batch_size, device=device,
                       progress=cb, engine=engine, address=address, actors=actors)
    if to_stdout:
        for r in res["rows"]:
            sys.stdout.write(json.dumps(r) + "\n")
        err_console.print(f"scored {res['n']} questions with {res['model_version']}: {res['n_reasoning']} reasoning "
                          f"({res['reasoning_share']:.1%})", highlight=False, markup=False)
        return
    res.pop("rows")
    if as_json:
        print_json(res)
        return
    where = "store predictions" if res["written_to_store"] else ""
    if res["output"]:
        where = (where + " and " if where else "") + res["output"]
    console.print(f"scored {res['n']} questions with {res['model_version']}: {res['n_reasoning']} reasoning ({res['reasoning_share']:.1%}) at threshold {res['reasoning_threshold']:.3f} -> {where or 'nowhere (pass --output)'}", highlight=False, markup=False)

@handle_errors
def next_cmd(
    size: Annotated[int, typer.Option("--size", help="How many questions to queue.")] = 50,
    strategy: Annotated[str, typer.Option("--strategy", help=f"{' | '.join(CHOICES)} (default {DEFAULT_STRATEGY}: {DEFAULT_STRATEGY_WHY})")] = DEFAULT_STRATEGY,
    model: Annotated[str | None, typer.Option("--model", help="Model folder (default: the latest registered model).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    overlap: Annotated[int, typer.Option(help="Annotators per question.")] = 1,
    suggestions: Annotated[bool, typer.Option("--suggestions/--no-suggestions", help="Show the model's suggestion to annotators.")] = True,
    batch_id: Annotated[str | None, typer.Option("--batch-id")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue the next batch of questions chosen by the model."""
    with progress_bar(not as_json) as cb:
        res = al_next(db=db, size=size, strategy=strategy, model_dir=model, seed=seed, overlap=overlap,
                      show_suggestions=suggestions, batch_id=batch_id, progress=cb)
    if as_json:
        print_json(res)
        return
    console.print(f"batch {res['batch_id']}: {len(res['items'])} of {res['n_candidates']} candidates by {res['strategy']} (model {res['model_version']})", highlight=False, markup=False)

@handle_errors
def status_cmd(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The stopping rule: model-gold kappa vs human-human kappa, and prediction churn."""
    res = al_status(db=db)
    if as_json:
        print_json(res)
        return
    from rich.table import Table

    t = Table("round", "model", "n_train", "n_gold", "kappa [95% CI]", "human kappa [95% CI]", "bal. acc")
    for r in res["rounds"]:
        t.add_row(str(r["round"]), r["version"], str(r["n_train"]), str(r["n_gold"] or "-"),
                  "-" if r["kappa"] is None else f"{r['kappa']:.3f} [{_fmt(r['kappa_ci'])}]",
                  "-" if r["human_kappa"] is None else f"{r['human_kappa']:.3f} [{_fmt(r['human_kappa_ci'])}]",
                  "-" if r["balanced_accuracy"] is None else f"{r['balanced_accuracy']:.3f}")
    console.print(t)
    console.print(res["message"], highlight=False, markup=False)

@handle_errors
def simulate_cmd(
    oracle: Annotated[Path, typer.Option("--oracle", help="Labeled JSONL: the pool whose labels the oracle reveals.")],
    eval_file: Annotated[Path, typer.Option("--eval", help="Labeled JSONL held out for evaluation.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for learning_curve.csv/.png and simulation.json.")],
    strategies: Annotated[str, typer.Option("--strategies", help=f"Comma-separated, of {', '.join(CHOICES)}.")] = "auto,badge,entropy,kmeans,random",
    budgets: Annotated[str, typer.Option("--budgets", help="Comma-separated label counts.")] = "50,100,200,400,800",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated.")] = "0,1,2",
    features: Annotated[str, typer.Option("--features", help="tfidf (fast) or minilm (frozen embeddings).")] = "tfidf",
    init: Annotated[str, typer.Option("--init", help="The first labels: random, or kmeans (cold start: the question nearest each k-means centre; rows named STRATEGY@kmeans0).")] = "random",
    c: Annotated[float | None, typer.Option("--c", help="The proxy learner's inverse regularisation (default: the product's tfidf C).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Simulate the loop with an oracle; write the learning curve (CSV + PNG)."""
    try:
        b = [int(x) for x in budgets.split(",") if x.strip()]
        s = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise InputError("--budgets and --seeds are comma-separated integers") from None
    with progress_bar(not as_json) as cb:
        res = al_simulate(oracle, eval_file, strategies=[x.strip() for x in strategies.split(",") if x.strip()],
                          budgets=b, seeds=s, out=out, features=features, init=init, c=c, progress=cb)
    if as_json:
        print_json(finite(res))
        return
    from rich.table import Table

    t = Table("strategy", *[str(x) for x in res["budgets"]], "labels to 95%", "sustained")
    for strat in res["strategies"]:
        cells = {r["n_labels"]: r for r in res["curve"] if r["strategy"] == strat}
        t.add_row(strat, *[f"{cells[x]['mean']:.3f}±{cells[x]['std']:.3f}" for x in res["budgets"]],
                  str(res["labels_to_95pct"].get(strat) or "-"), str(res["labels_to_95pct_sustained"].get(strat) or "-"))
    console.print(t)
    console.print(f"wrote {res['files']['csv']}, {res['files']['png']}, {res['files']['json']}", highlight=False, markup=False)

@handle_errors
def flags_cmd(
    model: Annotated[str, typer.Option("--model", help="Base for the out-of-fold models (tfidf is fast).")] = "tfidf",
    min_confidence: Annotated[float, typer.Option("--min-confidence")] = 0.8,
    labels: Annotated[str | None, typer.Option("--labels", help="A labeled JSONL instead of the store.")] = None,
    include_import: Annotated[bool, typer.Option("--include-import")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List human labels an out-of-fold model confidently contradicts."""
    with progress_bar(not as_json) as cb:
        res = al_flags(db=db, labels_file=labels, model=model, min_confidence=min_confidence, include_import=include_import, progress=cb)
    if as_json:
        print_json(res)
        return
    from rich.table import Table

    t = Table("id", "label", "model says", "confidence", "origin")
    for f in res["flags"][:limit]:
        t.add_row(f["id"], f["label"], f["model_label"], f"{f['model_confidence']:.2f}", f["origin"])
    console.print(t)
    console.print(f"{res['n_flagged']} of {res['n_labels']} labels flagged (out-of-fold {res['model']}, confidence >= {res['min_confidence']})", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add `train`, `classify` and the `al` group."""
    al = typer.Typer(help="Active learning: pick the next batch, check the stopping rule, simulate, flag label noise.",
                     no_args_is_help=True)
    app.command("train")(train_cmd)
    app.command("classify")(classify_cmd)
    al.command("next")(next_cmd)
    al.command("status")(status_cmd)
    al.command("simulate")(simulate_cmd)
    al.command("flags")(flags_cmd)
    app.add_typer(al, name="al")


def _fmt(ci: Sequence[float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    return f"{ci[0]:.3f}, {ci[1]:.3f}"
