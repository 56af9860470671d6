"""Stratified scoring of model answers: accuracy on reasoning- vs knowledge-heavy questions.

Pure: values in, values out (reading files and release folders is
`curation.services.evaluate`). `score(questions, predictions)`: questions are rows of a release (`id, dataset_name,
options, answer_idx, is_reasoning`), predictions are rows `{id, predicted[, adversarial]}`
where an answer is an option letter ("B", "(b)", "B.") or the option's text. It returns, per
setting (`standard`, and `adversarial` when present) and per benchmark plus `all`, the
accuracy on the reasoning subset, the knowledge subset and overall, each with a 95 %
percentile-bootstrap CI, and the gap knowledge - reasoning with its CI — the paper's main table.

A question with no prediction, or an answer that names no option, counts as wrong (the
report says how many). Predictions for ids not in the release are ignored and counted.

Bootstrap: resampling the n questions of a subset with replacement gives a number of correct
answers distributed Binomial(n, k/n), so each replicate is drawn as exactly that (fast, and
the same distribution); the gap's replicates resample the two subsets independently.
Percentiles use the inverted-CDF rule, so with many replicates the CI of k/n converges to the
binomial quantiles (which a hand calculation gives).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from curation import metrics
from curation.errors import InputError
from curation.schema import normalize_text

SETTINGS = ("standard", "adversarial")
_LETTER_RE = re.compile(r"^\s*(?:answer\s*(?:is)?\s*[:\-]?\s*)?[\(\[]?([A-Za-z])[\)\]]?[.:)]?\s*$", re.IGNORECASE)
_LETTER_PREFIX_RE = re.compile(r"^\s*[\(\[]?([A-Za-z])[\)\].:]\s+(.+)$", re.DOTALL)


def parse_answer(predicted: Any, options: Mapping[str, str]) -> str | None:
    """The option letter an answer names, or None (an unparseable answer counts as wrong)."""
    if predicted is None:
        return None
    if not isinstance(predicted, str):
        predicted = str(predicted)
    m = _LETTER_RE.match(predicted)
    if m:
        letter = m.group(1).upper()
        return letter if letter in options else None
    norm = normalize_text(predicted)
    if not norm:
        return None
    by_text = {normalize_text(v): k for k, v in options.items()}
    if norm in by_text:
        return by_text[norm]
    m = _LETTER_PREFIX_RE.match(predicted)
    if m and m.group(1).upper() in options and normalize_text(m.group(2)) == normalize_text(options[m.group(1).upper()]):
        return m.group(1).upper()
    return None


def _options(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        value = json.loads(value)
    return {str(k): str(v) for k, v in dict(value).items()}


def _quantiles(reps: np.ndarray, alpha: float) -> list[float]:
    return list(metrics.percentile_ci(reps, alpha, method="inverted_cdf"))


def _acc_block(correct: np.ndarray, rng: np.random.Generator, n_boot: int, alpha: float) -> tuple[dict[str, Any], np.ndarray | None]:
    n = int(len(correct))
    if n == 0:
        return {"n": 0, "correct": 0, "accuracy": None, "ci": [None, None]}, None
    k = int(correct.sum())
    reps = rng.binomial(n, k / n, size=n_boot) / n
    return {"n": n, "correct": k, "accuracy": k / n, "ci": _quantiles(reps, alpha)}, reps


def score(
    questions: Iterable[Mapping[str, Any]],
    predictions: Iterable[Mapping[str, Any]],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The stratified accuracy report (a JSON-serializable dict); see the module docstring."""
    if n_boot < 1:
        raise InputError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    qs = list(questions)
    if not qs:
        raise InputError("the release has no questions to score")
    preds = {str(p["id"]): p for p in predictions}
    known = {str(q["id"]) for q in qs}
    unknown = sorted(set(preds) - known)
    settings = ["standard"] + (["adversarial"] if any("adversarial" in p for p in preds.values()) else [])

    bench = np.array([str(q["dataset_name"]) for q in qs])
    strat = np.array([None if q.get("is_reasoning") is None else bool(q["is_reasoning"]) for q in qs], dtype=object)
    if all(s is None for s in strat):
        raise InputError("the release has no is_reasoning values (built without a model): nothing to stratify")
    is_r = np.array([s is True for s in strat])
    is_k = np.array([s is False for s in strat])

    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    for setting in settings:
        field = "predicted" if setting == "standard" else "adversarial"
        correct = np.zeros(len(qs), dtype=bool)
        n_missing = n_invalid = 0
        for i, q in enumerate(qs):
            p = preds.get(str(q["id"]))
            if p is None or field not in p:
                n_missing += 1
                continue
            letter = parse_answer(p[field], _options(q["options"]))
            if letter is None:
                n_invalid += 1
            correct[i] = letter == q["answer_idx"]
        counts[setting] = {"n_missing": n_missing, "n_invalid": n_invalid}
        for b in sorted(set(bench.tolist())) + ["all"]:
            sel = np.ones(len(qs), dtype=bool) if b == "all" else bench == b
            r_block, r_reps = _acc_block(correct[sel & is_r], rng, n_boot, alpha)
            k_block, k_reps = _acc_block(correct[sel & is_k], rng, n_boot, alpha)
            o_block, _ = _acc_block(correct[sel], rng, n_boot, alpha)
            if r_reps is not None and k_reps is not None:
                gap = {"value": k_block["accuracy"] - r_block["accuracy"], "ci": _quantiles(k_reps - r_reps, alpha)}
            else:
                gap = {"value": None, "ci": [None, None]}
            rows.append({"setting": setting, "benchmark": b, "reasoning": r_block, "knowledge": k_block,
                         "overall": o_block, "gap": gap})
    return {
        "n_questions": len(qs),
        "n_reasoning": int(is_r.sum()),
        "n_knowledge": int(is_k.sum()),
        "n_unstratified": int(len(qs) - is_r.sum() - is_k.sum()),
        "n_predictions": len(preds),
        "n_unknown_ids": len(unknown),
        "unknown_ids_sample": unknown[:10],
        "settings": settings,
        "counts": counts,
        "rows": rows,
        "gap_definition": "accuracy(knowledge) - accuracy(reasoning)",
        "n_boot": n_boot,
        "seed": seed,
        "alpha": alpha,
        "ci_method": "percentile bootstrap over questions (binomial draws), inverted-CDF percentiles",
    }


# -- rendering ------------------------------------------------------------------------------


def _fmt(block: Mapping[str, Any]) -> str:
    if block.get("accuracy") is None:
        return "–"
    lo, hi = block["ci"]
    return f"{100 * block['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] (n={block['n']})"


def _fmt_gap(gap: Mapping[str, Any]) -> str:
    if gap.get("value") is None:
        return "–"
    lo, hi = gap["ci"]
    return f"{100 * gap['value']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


HEADERS = ("setting", "benchmark", "knowledge acc % [95 % CI]", "reasoning acc % [95 % CI]",
           "gap K-R (pp)", "overall acc %")


def table_rows(report: Mapping[str, Any]) -> list[list[str]]:
    return [
        [r["setting"], r["benchmark"], _fmt(r["knowledge"]), _fmt(r["reasoning"]), _fmt_gap(r["gap"]), _fmt(r["overall"])]
        for r in report["rows"]
    ]


def notes(report: Mapping[str, Any]) -> list[str]:
    """What the table does not show: missing/invalid answers, unknown ids, unstratified rows."""
    out = []
    for s in report["settings"]:
        c = report["counts"][s]
        if c["n_missing"] or c["n_invalid"]:
            out.append(f"{s}: {c['n_missing']} question(s) without an answer and {c['n_invalid']} answer(s) naming no option count as wrong")
    if report["n_unknown_ids"]:
        out.append(f"{report['n_unknown_ids']} prediction(s) for ids not in this release were ignored")
    if report["n_unstratified"]:
        out.append(f"{report['n_unstratified']} question(s) without is_reasoning count only in 'overall'")
    return out


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as a markdown table (escape-free: only numbers and benchmark names)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report)]
    extra = notes(report)
    if extra:
        lines.append("")
        lines += [f"- {n}" for n in extra]
    lines.append("")
    lines.append(f"CIs: {report['ci_method']}, {report['n_boot']} replicates, seed {report['seed']}.")
    return "\n".join(lines) + "\n"


def summary_rows(report: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """The `all` rows, one per setting."""
    return [r for r in report["rows"] if r["benchmark"] == "all"]
