"""Stratified scoring of model answers: accuracy on reasoning- vs knowledge-heavy questions,
plain and under adversarial reasoning traces. Pure: values in, values out (reading the answers
file and the release folder is `curation.services.evaluate`).

`score(questions, answers, configs=..., aliases=..., config=...)`:

* `questions`: rows of a release (`id, dataset_name, options, answer_idx, is_reasoning`, and
  when present `human_label`, `adversarial_trace_0..2`, `benchmark` = its benchmark config).
* `answers`: rows `{"id", "answer"[, "trace"]}` (`predicted` is accepted for `answer`). A row
  without `trace` (or `trace: null`) is the model's answer to the plain question; `trace: k`
  (0, 1 or 2) is its answer when the question was given with the release's
  `adversarial_trace_k` as a prefix. An id has at most one answer per trace. The answer is
  the model's raw output: `curation.answers.extract` reads the option letter from it.
* `configs`: the release's configs `{name: {"kind", "ids"}}` (kinds `benchmark`, `all`,
  `gold`, ...); `aliases`: `{alias_id: kept_id}` (questions merged at ingest): an answer
  keyed by an alias scores the kept question (the report lists the mapping).
* `config`: score exactly that config's questions. Default: every question of the benchmarks
  the answers touch; benchmarks the file does not touch are not "missing", the report gives
  the coverage of every config instead.

Each question of the scope gets, per setting (`standard`, `trace_0..2`, `worst_case`), a
status: `correct`, `wrong`, `unparsed` (no option could be read), `invalid` (a letter that is
not an option), `missing` (no answer) or, for a trace the question does not have (its
`adversarial_trace_k` is null), not applicable. Accuracy = correct / scored, where scored =
correct + wrong + unparsed + invalid (a model that answers nothing readable is wrong, and the
report says how often); missing answers are never scored and are listed by id, like unparsed,
invalid, unknown (not in the release) and out-of-scope ids. `worst_case`: a question with
traces is correct only if its answer under every one of its traces that the file answers for
some question is correct (missing if one of them is missing).

Intervals (level 1 - alpha): Wilson score intervals for accuracies (`curation.metrics.wilson_ci`,
equal to statsmodels' `proportion_confint(method="wilson")`, never zero-width at 0 or 100 %);
Newcombe's hybrid score interval (from the two Wilson intervals) for the gap
knowledge - reasoning (independent subsets, statsmodels' `confint_proportions_2indep(method=
"newcomb")`) and its paired version (Newcombe 1998, square-and-add with the corrected phi) for
the drop plain - adversarial on the questions answered in both settings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from curation import metrics
from curation.answers import extract, parse_answer
from curation.errors import InputError

__all__ = ["HEADERS", "SETTINGS", "TRACES", "notes", "parse_answer", "render_markdown", "score", "summary_rows", "tables"]

TRACES = (0, 1, 2)
SETTINGS = ("standard", *(f"trace_{k}" for k in TRACES), "worst_case")
EVAL_KINDS = ("benchmark", "all", "gold")
SCORED = ("correct", "wrong", "unparsed", "invalid")
NA = "n/a"
SUBSETS = (("reasoning", "is_reasoning", True), ("knowledge", "is_reasoning", False),
           ("human_reasoning", "human_label", "reasoning"), ("human_knowledge", "human_label", "knowledge"))


# -- intervals -------------------------------------------------------------------------------


def _wilson(k: int, n: int, alpha: float) -> tuple[float, float]:
    return metrics.wilson_ci(k, n, alpha)


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 (independent samples)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = _wilson(k1, n1, alpha)
    l2, u2 = _wilson(k2, n2, alpha)
    d = p1 - p2
    return max(-1.0, d - math.hypot(p1 - l1, u2 - p2)), min(1.0, d + math.hypot(u1 - p1, p2 - l2))


def newcombe_paired(a: int, b: int, c: int, d: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's square-and-add interval for p1 - p2 on paired data: a = both correct, b = first
    only, c = second only, d = neither (p1 = (a+b)/n, p2 = (a+c)/n)."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, alpha)
    l2, u2 = _wilson(a + c, n, alpha)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    phi = 0.0 if margins == 0 or 0 <= cross <= n / 2 else (cross - n / 2 if cross > n / 2 else cross) / math.sqrt(margins)
    diff = p1 - p2
    lo = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    hi = diff + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    return max(-1.0, lo), min(1.0, hi)


# -- per-question statuses -------------------------------------------------------------------


def _options(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        value = json.loads(value)
    return {str(k): str(v) for k, v in dict(value).items()}


def _status(output: Any, q: Mapping[str, Any]) -> str:
    found = extract(output, _options(q["options"]))
    if found.status == "ok":
        return "correct" if found.letter == str(q["answer_idx"]).strip().upper() else "wrong"
    return "invalid" if found.status == "invalid" else "unparsed"


def _setting_of(trace: Any) -> str:
    return "standard" if trace is None else f"trace_{trace}"


def _map_answers(answers: Iterable[Mapping[str, Any]], known: set[str], aliases: Mapping[str, str]) -> tuple[
        dict[tuple[str, str], Any], dict[str, str], list[str], list[str]]:
    """{(question id, setting): output}, aliases used, alias answers dropped for a direct one, unknown ids."""
    direct: dict[tuple[str, str], Any] = {}
    via_alias: dict[tuple[str, str], tuple[str, Any]] = {}
    used: dict[str, str] = {}
    conflicts: set[str] = set()
    unknown: set[str] = set()
    for a in answers:
        qid = str(a["id"])
        trace = a.get("trace")
        if trace is not None and trace not in TRACES:
            raise InputError(f"answer for {qid!r}: trace must be one of {TRACES} or null, got {trace!r}")
        output = a["answer"] if "answer" in a else a.get("predicted")
        key_setting = _setting_of(trace)
        if qid in known:
            direct[(qid, key_setting)] = output
        elif qid in aliases and str(aliases[qid]) in known:
            kept = str(aliases[qid])
            used[qid] = kept
            prev = via_alias.get((kept, key_setting))
            if prev is None or qid < prev[0]:
                if prev is not None:
                    conflicts.add(prev[0])
                via_alias[(kept, key_setting)] = (qid, output)
            else:
                conflicts.add(qid)
        else:
            unknown.add(qid)
    for key, (alias, output) in via_alias.items():
        if key in direct:
            conflicts.add(alias)
        else:
            direct[key] = output
    return direct, used, sorted(conflicts), sorted(unknown)


def _scope(qs: Sequence[Mapping[str, Any]], bench: list[str], answered: set[str],
           configs: Mapping[str, Mapping[str, Any]], config: str | None) -> tuple[list[int], dict[str, Any]]:
    if config is not None:
        evaluable = sorted(k for k, v in configs.items() if v.get("kind") in EVAL_KINDS)
        if config not in evaluable:
            raise InputError(f"--config {config!r} is not a question config of this release; "
                             f"choose one of: {', '.join(evaluable) or '(none)'}")
        ids = {str(i) for i in configs[config]["ids"]}
        idx = [i for i, q in enumerate(qs) if str(q["id"]) in ids]
        return idx, {"config": config, "rule": f"every question of config {config!r}"}
    touched = sorted({bench[i] for i, q in enumerate(qs) if str(q["id"]) in answered})
    idx = [i for i in range(len(qs)) if bench[i] in touched]
    return idx, {"config": None, "benchmarks": touched,
                 "rule": "every question of the benchmarks the answers file covers"}


def _statuses(qs: Sequence[Mapping[str, Any]], idx: list[int], outputs: Mapping[tuple[str, str], Any],
              answered_traces: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    has_col = {k: any(f"adversarial_trace_{k}" in q for q in qs) for k in TRACES}
    for setting in SETTINGS[:-1]:
        col = None if setting == "standard" else f"adversarial_trace_{setting[-1]}"
        st: list[str] = []
        for i in idx:
            q = qs[i]
            if col is not None and has_col[int(setting[-1])] and q.get(col) is None:
                st.append(NA)
                continue
            key = (str(q["id"]), setting)
            st.append(_status(outputs[key], q) if key in outputs else "missing")
        out[setting] = st
    worst = []
    for j in range(len(idx)):
        per = [out[t][j] for t in answered_traces if out[t][j] != NA]
        worst.append(NA if not per else "missing" if "missing" in per else
                     "correct" if all(s == "correct" for s in per) else "wrong")
    out["worst_case"] = worst
    return out


# -- blocks ------------------------------------------------------------------------------------


def _block(st: Sequence[str], alpha: float) -> dict[str, Any]:
    n = sum(s in SCORED for s in st)
    k = sum(s == "correct" for s in st)
    out: dict[str, Any] = {"n": n, "correct": k, "missing": sum(s == "missing" for s in st),
                           "unparsed": sum(s == "unparsed" for s in st), "invalid": sum(s == "invalid" for s in st)}
    if n == 0:
        return {**out, "accuracy": None, "ci": [None, None]}
    return {**out, "accuracy": k / n, "ci": list(_wilson(k, n, alpha))}


def _gap(k_block: Mapping[str, Any], r_block: Mapping[str, Any], alpha: float) -> dict[str, Any]:
    if not k_block["n"] or not r_block["n"]:
        return {"value": None, "ci": [None, None]}
    ci = newcombe_diff(k_block["correct"], k_block["n"], r_block["correct"], r_block["n"], alpha)
    return {"value": k_block["accuracy"] - r_block["accuracy"], "ci": list(ci)}


def _drop(plain: Sequence[str], other: Sequence[str], alpha: float) -> dict[str, Any]:
    pairs = [(p == "correct", o == "correct") for p, o in zip(plain, other, strict=True) if p in SCORED and o in SCORED]
    if not pairs:
        return {"n_pairs": 0, "value": None, "ci": [None, None]}
    a = sum(p and o for p, o in pairs)
    b = sum(p and not o for p, o in pairs)
    c = sum(o and not p for p, o in pairs)
    d = len(pairs) - a - b - c
    return {"n_pairs": len(pairs), "value": (b - c) / len(pairs), "ci": list(newcombe_paired(a, b, c, d, alpha))}


def _row(setting: str, bench: str, st: Sequence[str], subsets: Mapping[str, Sequence[bool]], alpha: float) -> dict[str, Any]:
    row: dict[str, Any] = {"setting": setting, "benchmark": bench, "overall": _block(st, alpha)}
    for name, mask in subsets.items():
        row[name] = _block([s for s, m in zip(st, mask, strict=True) if m], alpha)
    row["gap"] = _gap(row["knowledge"], row["reasoning"], alpha)
    row["human_gap"] = _gap(row["human_knowledge"], row["human_reasoning"], alpha)
    return row


def _coverage(qs: Sequence[Mapping[str, Any]], bench: list[str], idx: list[int], outputs: Mapping[tuple[str, str], Any],
              configs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, tuple[str, set[str]]] = {k: (str(v.get("kind")), {str(i) for i in v["ids"]})
                                               for k, v in configs.items() if v.get("kind") in EVAL_KINDS}
    if not groups:
        for i, q in enumerate(qs):
            groups.setdefault(bench[i], ("benchmark", set()))[1].add(str(q["id"]))
    in_scope = {str(qs[i]["id"]) for i in idx}
    answered = {s: {qid for qid, st in outputs if st == s} for s in SETTINGS[:-1]}
    return [{"config": name, "kind": kind, "rows": len(ids), "in_scope": len(ids & in_scope),
             "answered": len(ids & answered["standard"]),
             "answered_traces": {f"trace_{k}": len(ids & answered[f"trace_{k}"]) for k in TRACES}}
            for name, (kind, ids) in sorted(groups.items())]


def score(
    questions: Iterable[Mapping[str, Any]],
    answers: Iterable[Mapping[str, Any]],
    *,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
    aliases: Mapping[str, str] | None = None,
    config: str | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The stratified accuracy report (a JSON-serializable dict); see the module docstring."""
    metrics.check_alpha(alpha)
    qs = list(questions)
    if not qs:
        raise InputError("the release has no questions to score")
    configs = configs or {}
    bench_of = {str(i): name for name, v in sorted(configs.items()) if v.get("kind") == "benchmark" for i in v["ids"]}
    bench = [bench_of.get(str(q["id"]), str(q.get("benchmark") or q["dataset_name"])) for q in qs]
    outputs, used_aliases, conflicts, unknown = _map_answers(answers, {str(q["id"]) for q in qs}, aliases or {})
    answered_ids = {qid for qid, _ in outputs}
    idx, scope = _scope(qs, bench, answered_ids, configs, config)
    if not idx:
        raise InputError(f"no answer is for a question of this release ({len(unknown)} unknown id(s), e.g. "
                         f"{', '.join(unknown[:3]) or '-'}): check the ids against the release's `id` column")
    traces = [s for s in SETTINGS[1:-1] if any(k[1] == s for k in outputs)]
    statuses = _statuses(qs, idx, outputs, traces)
    ids = [str(qs[i]["id"]) for i in idx]
    settings = ["standard", *traces]
    if len(settings) > 1:
        settings.append("worst_case")
    subsets = {name: [qs[i].get(field) is not None and (qs[i].get(field) == value) for i in idx]
               for name, field, value in SUBSETS}
    benches = sorted({bench[i] for i in idx})
    rows, listed = [], {}
    for setting in settings:
        st = statuses[setting]
        listed[setting] = {s: [q for q, x in zip(ids, st, strict=True) if x == s] for s in ("missing", "unparsed", "invalid")}
        for b in [*benches, "all"]:
            sel = [b == "all" or bench[i] == b for i in idx]
            rows.append(_row(setting, b, [x for x, m in zip(st, sel, strict=True) if m],
                             {k: [v for v, m in zip(mask, sel, strict=True) if m] for k, mask in subsets.items()}, alpha))
    adversarial = []
    if len(settings) > 1:
        for b in [*benches, "all"]:
            sel = [b == "all" or bench[i] == b for i in idx]
            plain = [x for x, m in zip(statuses["standard"], sel, strict=True) if m]
            entry: dict[str, Any] = {"benchmark": b, "standard": _block(plain, alpha)}
            for s in settings[1:]:
                other = [x for x, m in zip(statuses[s], sel, strict=True) if m]
                entry[s] = {**_block(other, alpha), "drop": _drop(plain, other, alpha)}
            scored = [s for s in settings[1:-1] if entry[s]["accuracy"] is not None]
            entry["worst_trace"] = min(scored, key=lambda s: (entry[s]["accuracy"], s)) if scored else None
            adversarial.append(entry)
    pos = {q: j for j, q in enumerate(ids)}
    no_trace = {s: sorted(q for (q, t) in outputs if t == s and q in pos and statuses[s][pos[q]] == NA)
                for s in settings[1:-1]}
    return {
        "n_questions": len(idx),
        "n_reasoning": sum(subsets["reasoning"]),
        "n_knowledge": sum(subsets["knowledge"]),
        "n_unstratified": len(idx) - sum(subsets["reasoning"]) - sum(subsets["knowledge"]),
        "n_human_labelled": sum(subsets["human_reasoning"]) + sum(subsets["human_knowledge"]),
        "n_answers": len(outputs),
        "scope": scope,
        "coverage": _coverage(qs, bench, idx, outputs, configs),
        "settings": settings,
        "counts": {s: {"n_scored": sum(x in SCORED for x in statuses[s]), **{f"n_{x}": statuses[s].count(x)
                                                                           for x in (*SCORED, "missing")},
                       "n_not_applicable": statuses[s].count(NA)} for s in settings},
        "ids": {**listed, "unknown": unknown, "out_of_scope": sorted(answered_ids - set(pos)),
                "no_trace": {s: v for s, v in no_trace.items() if v}, "aliased": dict(sorted(used_aliases.items())),
                "alias_conflicts": conflicts},
        "rows": rows,
        "adversarial": adversarial,
        "gap_definition": "accuracy(knowledge) - accuracy(reasoning)",
        "drop_definition": "accuracy(plain) - accuracy(with trace), on questions answered in both settings",
        "accuracy_definition": "correct / (correct + wrong + unparsed + invalid); missing answers are not scored",
        "alpha": alpha,
        "ci_method": "Wilson score intervals; Newcombe hybrid score intervals for gaps and (paired) drops",
    }


# -- rendering ---------------------------------------------------------------------------------


def _pct(x: float | None, signed: bool = False) -> str:
    return "–" if x is None else f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def _fmt(block: Mapping[str, Any]) -> str:
    if block.get("accuracy") is None:
        return "–"
    lo, hi = block["ci"]
    return f"{_pct(block['accuracy'])} [{_pct(lo)}, {_pct(hi)}] (n={block['n']})"


def _fmt_gap(gap: Mapping[str, Any]) -> str:
    if gap.get("value") is None:
        return "–"
    lo, hi = gap["ci"]
    return f"{_pct(gap['value'], True)} [{_pct(lo, True)}, {_pct(hi, True)}]"


HEADERS = ("setting", "benchmark", "answered", "missing", "overall acc % [CI]", "knowledge acc % [CI]",
           "reasoning acc % [CI]", "gap K-R (pp)")
HUMAN_HEADERS = ("knowledge (human) %", "reasoning (human) %", "gap K-R (human)")


def table_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """The main table (`HEADERS`, plus `HUMAN_HEADERS` when some question has a human label)."""
    human = bool(report.get("n_human_labelled"))
    out = []
    for r in report["rows"]:
        o = r["overall"]
        row = [r["setting"], r["benchmark"], str(o["n"]), str(o["missing"]), _fmt(o), _fmt(r["knowledge"]),
               _fmt(r["reasoning"]), _fmt_gap(r["gap"])]
        if human:
            row += [_fmt(r["human_knowledge"]), _fmt(r["human_reasoning"]), _fmt_gap(r["human_gap"])]
        out.append(row)
    return out


def _adv_cell(entry: Mapping[str, Any]) -> str:
    if entry.get("accuracy") is None:
        return "–"
    return f"{_fmt(entry)}; drop {_fmt_gap(entry['drop'])}"


def tables(report: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of every table of the report: accuracy, adversarial, coverage."""
    headers = list(HEADERS) + (list(HUMAN_HEADERS) if report.get("n_human_labelled") else [])
    out = [("Accuracy on knowledge- vs reasoning-heavy questions (95 % CI)" if report["alpha"] == 0.05 else
            f"Accuracy on knowledge- vs reasoning-heavy questions ({100 * (1 - report['alpha']):g} % CI)",
            headers, table_rows(report))]
    if report["adversarial"]:
        adv_settings = report["settings"][1:]
        rows = [[e["benchmark"], _fmt(e["standard"]), *[_adv_cell(e[s]) for s in adv_settings], e["worst_trace"] or "–"]
                for e in report["adversarial"]]
        out.append(("Adversarial traces: accuracy and drop from the plain answer (pp)",
                    ["benchmark", "plain", *adv_settings, "worst trace"], rows))
    cov = [[c["config"], c["kind"], str(c["rows"]), str(c["in_scope"]), str(c["answered"]),
            ", ".join(f"{v}" for v in c["answered_traces"].values())] for c in report["coverage"]]
    out.append(("Coverage per config", ["config", "kind", "rows", "scored", "answered", "trace 0, 1, 2 answered"], cov))
    return out


def _ids(values: Sequence[str], limit: int = 5) -> str:
    more = f", ... (+{len(values) - limit})" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def notes(report: Mapping[str, Any]) -> list[str]:
    """What the tables do not show: missing/unparsed/invalid answers, unknown and aliased ids."""
    out = [f"scope: {report['scope']['rule']} ({report['n_questions']} question(s))"]
    ids = report["ids"]
    for s in report["settings"]:
        for kind, what in (("missing", "without an answer (not scored)"), ("unparsed", "with an answer naming no option (scored wrong)"),
                           ("invalid", "with a letter that is not an option (scored wrong)")):
            v = ids.get(s, {}).get(kind, [])
            if v:
                out.append(f"{s}: {len(v)} question(s) {what}: {_ids(v)}")
    if ids["unknown"]:
        out.append(f"{len(ids['unknown'])} answer id(s) not in this release (ignored): {_ids(ids['unknown'])}")
    if ids["out_of_scope"]:
        out.append(f"{len(ids['out_of_scope'])} answered question(s) outside the scope (ignored): {_ids(ids['out_of_scope'])}")
    if ids["aliased"]:
        out.append(f"{len(ids['aliased'])} answer id(s) were aliases of merged questions, scored as the kept id: "
                   + _ids([f"{a} -> {k}" for a, k in ids["aliased"].items()]))
    if ids["alias_conflicts"]:
        out.append(f"{len(ids['alias_conflicts'])} alias answer(s) ignored (the kept id has its own answer): "
                   f"{_ids(ids['alias_conflicts'])}")
    for s, v in ids["no_trace"].items():
        out.append(f"{s}: {len(v)} answer(s) for questions without that trace (not scored): {_ids(v)}")
    if report["n_unstratified"]:
        out.append(f"{report['n_unstratified']} question(s) without is_reasoning count only in 'overall'")
    out.append("full id lists: --format json or --report FILE")
    return out


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as markdown tables (escape-free: only numbers, ids and config names)."""
    lines: list[str] = []
    for title, headers, rows in tables(report):
        lines += [f"**{title}**", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    lines += [f"- {n}" for n in notes(report)]
    lines += ["", f"CIs: {report['ci_method']}; accuracy = {report['accuracy_definition']}."]
    return "\n".join(lines) + "\n"


def summary_rows(report: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """The `all` rows, one per setting."""
    return [r for r in report["rows"] if r["benchmark"] == "all"]
