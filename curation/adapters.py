"""Per-benchmark adapters: one raw record of a public benchmark file -> canonical fields.

Pure: no I/O. Each adapter knows one public format (the field names of the file its
benchmark is distributed in) and turns a raw record into a `Converted`: a `Question`, or a
skip with a reason (e.g. an MMLU-Pro question outside health/biology), plus an optional
imported label or imported prediction.

The paper's 11 benchmarks and the formats their public files come in:

| benchmark (`--benchmark`) | format recognised | dataset_name |
|---|---|---|
| medqa | MedQA-USMLE jsonl (`question, options{A-D or A-E}, answer_idx, meta_info`) | `medqa` (4 options) / `medqa_op5` |
| medmcqa | MedMCQA json/jsonl/HF (`opa..opd, cop`) | `medmcqa` |
| pubmedqa | PQA-L `ori_pqal.json` (PMID -> `QUESTION, CONTEXTS, final_decision`) or HF `pubmed_qa` | `pubmedqa` |
| mmlu_pro | MMLU-Pro (`question_id, options[list], answer, category`); health + biology kept | `mmlu_pro_health_biology` |
| gpqa | GPQA csv (`Question, Correct Answer, Incorrect Answer 1-3, Record ID`) | `gpqa` |
| medbullets | MedBullets op4/op5 csv (`question, opa..ope, answer_idx`) | `medbullets_op4` / `medbullets_op5` |
| medxpertqa | MedXpertQA Text (`id: Text-N, question, options, label` = answer letter) | `medxpertqa` |
| hle | Humanity's Last Exam (`answer_type, category`); biomedical multiple choice kept | `hle_biomed` |
| lancet, nejm | as in BioMed-R1-Eval (below) | `lancet`, `nejm` |
| biomed_r1 | BioMed-R1-Eval / -Train (`options` as a JSON string, `reasoning_prob`, `is_reasoning`) | from `dataset_name` |
| canonical | this tool's own format (`id, dataset_name, question, options{}, answer_idx`, opt. `label`) | from `dataset_name` |

Names: `canonical_dataset_name` (`curation.benchmarks`); a release names its configs as
BioMed-R1-Eval does. Traces: `biomed_r1` (also behind `lancet`, `nejm`) and `canonical` keep
every field they do not map in `questions.meta`, so BioMed-R1-Eval's
`adversarial_trace_0..2` and BioMed-R1-Train's `reasoning` reach a release; the other public
formats carry no traces.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curation import benchmarks
from curation.errors import InputError
from curation.schema import LABELS, Question, make_question

LETTERS = string.ascii_uppercase

@dataclass
class Context:
    """What an adapter knows besides the record: where it came from and the user's flags."""

    source: str  # file path or dataset id, recorded in `questions.source`
    row: int  # 0-based row index in the source
    split: str | None = None  # --split, overrides the record's own
    dataset_name: str | None = None  # forced by --benchmark for multi-dataset formats
    file_info: dict[str, Any] = field(default_factory=dict)  # per-file decisions (see prepare)


@dataclass
class Converted:
    question: Question | None = None
    skip_reason: str | None = None
    label: str | None = None  # an imported reasoning/knowledge label
    prediction: float | None = None  # an imported reasoning_prob
    threshold: float | None = None


def _split(ctx: Context, record_split: Any = None, default: str = "test") -> str:
    if ctx.split:
        return ctx.split
    if record_split in (None, ""):
        return default
    return str(record_split)


def _letter_options(values: Sequence[Any]) -> dict[str, Any]:
    return {LETTERS[i]: v for i, v in enumerate(values)}


def canonical_dataset_name(name: Any) -> str:
    """Map a dataset name as other releases spell it to ours (`MedQA_USLME_test` -> `medqa`,
    `medqa_op5` -> `medqa_op5`): `curation.benchmarks.canonical_name`."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"dataset_name {name!r} is missing or empty")
    return benchmarks.canonical_name(name)


def _id_from(dataset: str, *parts: Any) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"{dataset}-{digest[:12]}"


def _need(raw: Mapping[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in raw]
    if missing:
        raise InputError(f"missing field(s) {', '.join(missing)}")


def _label(raw: Mapping[str, Any]) -> str | None:
    value = raw.get("label")
    if value is None:
        return None
    if value not in LABELS:
        raise InputError(f"label {value!r} is not one of {', '.join(LABELS)}")
    return str(value)


# --- adapters ---------------------------------------------------------------------------


_CANONICAL_KEYS = frozenset({
    "id", "dataset_name", "split", "question", "options", "answer_idx", "answer", "source", "meta",
    "label", "reasoning_prob", "is_reasoning", "reasoning_threshold"})


def convert_canonical(raw: Mapping[str, Any], ctx: Context) -> Converted:
    _need(raw, "id", "question", "options", "answer_idx")
    dataset = ctx.dataset_name or raw.get("dataset_name")
    if dataset is None:
        raise InputError("missing field dataset_name (or pass --benchmark NAME)")
    known = _CANONICAL_KEYS
    meta = dict(raw.get("meta") or {}) if isinstance(raw.get("meta") or {}, Mapping) else raw.get("meta")
    if isinstance(meta, dict):
        for k, v in raw.items():
            if k not in known:
                meta.setdefault(k, v)
    q = make_question(
        id=raw["id"], dataset_name=canonical_dataset_name(dataset), split=_split(ctx, raw.get("split")),
        question=raw["question"], options=raw["options"], answer_idx=raw["answer_idx"],
        answer=raw.get("answer"), source=raw.get("source") or ctx.source, meta=meta,
    )
    prob = raw.get("reasoning_prob")
    return Converted(question=q, label=_label(raw), prediction=_prob(prob),
                     threshold=_prob(raw.get("reasoning_threshold"), "reasoning_threshold"))


def _prob(value: Any, name: str = "reasoning_prob") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= float(value) <= 1:
        raise InputError(f"{name} {value!r} is not a number between 0 and 1")
    return float(value)


def convert_biomed_r1(raw: Mapping[str, Any], ctx: Context) -> Converted:
    """BioMed-R1-Eval / BioMed-R1-Train: `options` is a JSON string; predictions imported."""
    _need(raw, "question", "options", "answer_idx")
    options = raw["options"]
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except json.JSONDecodeError as exc:
            raise InputError(f"options is not valid JSON: {exc.msg} at char {exc.pos}") from exc
        except (ValueError, RecursionError) as exc:
            raise InputError("options is not readable JSON (nested too deeply or a number too long)") from exc
    if isinstance(options, list):
        options = _letter_options(options)
    dataset = ctx.dataset_name or raw.get("dataset_name") or ctx.file_info.get("default_dataset")
    if dataset is None:
        raise InputError("missing field dataset_name (or pass --benchmark NAME)")
    dataset = canonical_dataset_name(dataset)
    qid = raw.get("id")
    if qid in (None, ""):
        qid = _id_from(dataset, raw["question"])
    elif str(qid).isdigit():  # per-config row numbers: make them unique across benchmarks
        qid = f"{dataset}-{qid}"
    meta = {k: v for k, v in raw.items() if k not in {
        "id", "question", "options", "answer_idx", "answer", "dataset_name", "reasoning_prob",
        "is_reasoning", "reasoning_threshold", "split", "source"}}
    q = make_question(
        id=qid, dataset_name=dataset, split=_split(ctx, raw.get("split"), ctx.file_info.get("default_split", "test")),
        question=raw["question"], options=options, answer_idx=raw["answer_idx"],
        answer=raw.get("answer"), source=raw.get("source") or ctx.source, meta=meta,
    )
    return Converted(question=q, prediction=_prob(raw.get("reasoning_prob")),
                     threshold=_prob(raw.get("reasoning_threshold"), "reasoning_threshold"))


def convert_medqa(raw: Mapping[str, Any], ctx: Context) -> Converted:
    _need(raw, "question", "options", "answer_idx")
    options = raw["options"]
    if not isinstance(options, Mapping):
        raise InputError(f"options must be an object {{letter: text}}, got {type(options).__name__}")
    dataset = ctx.dataset_name or ("medqa_op5" if len(options) == 5 else "medqa")
    meta: dict[str, Any] = {"row": ctx.row}
    if "meta_info" in raw:
        meta["usmle_step"] = raw["meta_info"]
    q = make_question(
        id=raw.get("id") or _id_from(dataset, raw["question"], json.dumps(options, sort_keys=True)),
        dataset_name=dataset, split=_split(ctx, raw.get("split")), question=raw["question"],
        options=options, answer_idx=raw["answer_idx"], answer=raw.get("answer"),
        source=ctx.source, meta=meta,
    )
    return Converted(question=q)


def prepare_medmcqa(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """MedMCQA's `cop` is 1-4 in the original json files and 0-3 in the HF dataset."""
    cops = {r.get("cop") for r in records if isinstance(r, Mapping)}
    if 0 in cops and 4 in cops:
        return {"cop_base": None, "cop_error": "cop has both 0 and 4: cannot tell 0-based from 1-based"}
    if 0 in cops:
        return {"cop_base": 0}
    if 4 in cops:
        return {"cop_base": 1}
    return {"cop_base": None, "cop_error": (
        "cannot tell whether cop is 0-based (HF) or 1-based (original files): no row has 0 or 4; "
        "convert cop to the letter answer_idx and ingest as --benchmark canonical")}


def convert_medmcqa(raw: Mapping[str, Any], ctx: Context) -> Converted:
    _need(raw, "question", "opa", "opb", "opc", "opd", "cop")
    cop = raw["cop"]
    if cop in (-1, None, ""):
        return Converted(skip_reason="no answer key (MedMCQA test split)")
    if ctx.file_info.get("cop_base") is None:
        raise InputError(ctx.file_info.get("cop_error", "cop base unknown"))
    if isinstance(cop, bool) or not isinstance(cop, int):
        raise InputError(f"cop must be an integer, got {cop!r}")
    index = cop - ctx.file_info["cop_base"]
    if not 0 <= index <= 3:
        raise InputError(f"cop {cop!r} out of range for options A-D")
    options = _letter_options([raw["opa"], raw["opb"], raw["opc"], raw["opd"]])
    dataset = ctx.dataset_name or "medmcqa"
    meta = {k: raw.get(k) for k in ("subject_name", "topic_name", "choice_type") if k in raw}
    if raw.get("id"):
        meta["orig_id"] = raw["id"]
    qid = f"{dataset}-{raw['id']}" if raw.get("id") else _id_from(dataset, raw["question"], *options.values())
    q = make_question(
        id=qid, dataset_name=dataset, split=_split(ctx, raw.get("split")), question=raw["question"],
        options=options, answer_idx=LETTERS[index], source=ctx.source, meta=meta,
    )
    return Converted(question=q)


_PQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


def convert_pubmedqa(raw: Mapping[str, Any], ctx: Context) -> Converted:
    """PQA-L: options yes/no/maybe as A/B/C; question = contexts (one per line), then the question."""
    if "QUESTION" in raw:  # ori_pqal.json: {PMID: {...}}
        _need(raw, "QUESTION", "CONTEXTS", "final_decision")
        stem, contexts, decision = raw["QUESTION"], raw["CONTEXTS"], raw["final_decision"]
        pmid = raw.get("_key") or raw.get("pubid")
        extra = {"long_answer": raw.get("LONG_ANSWER"), "year": raw.get("YEAR")}
    else:  # HF pubmed_qa pqa_labeled
        _need(raw, "pubid", "question", "context", "final_decision")
        stem, decision, pmid = raw["question"], raw["final_decision"], raw["pubid"]
        context = raw["context"]
        contexts = context.get("contexts") if isinstance(context, Mapping) else context
        extra = {"long_answer": raw.get("long_answer")}
    if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
        raise InputError("contexts must be a list of strings")
    if not isinstance(stem, str):
        raise InputError(f"question must be a string, got {type(stem).__name__}")
    letter = {v: k for k, v in _PQA_OPTIONS.items()}.get(str(decision).strip().lower())
    if letter is None:
        raise InputError(f"final_decision {decision!r} is not yes, no or maybe")
    dataset = ctx.dataset_name or "pubmedqa"
    q = make_question(
        id=f"{dataset}-{pmid}" if pmid else _id_from(dataset, stem),
        dataset_name=dataset, split=_split(ctx, raw.get("split")),
        question="\n".join([*contexts, stem]), options=dict(_PQA_OPTIONS), answer_idx=letter,
        source=ctx.source,
        meta={"orig_id": str(pmid) if pmid else None, "question_stem": stem,
              **{k: v for k, v in extra.items() if v is not None}},
    )
    return Converted(question=q)


MMLU_PRO_KEEP = ("health", "biology")


def convert_mmlu_pro(raw: Mapping[str, Any], ctx: Context) -> Converted:
    _need(raw, "question", "options", "answer", "category")
    if str(raw["category"]).lower() not in MMLU_PRO_KEEP:
        return Converted(skip_reason=f"MMLU-Pro category {raw['category']!r} (only health, biology kept)")
    options = raw["options"]
    if not isinstance(options, list):
        raise InputError(f"options must be a list, got {type(options).__name__}")
    options = [o for o in options if not (isinstance(o, str) and o.strip() in ("", "N/A"))]
    dataset = ctx.dataset_name or "mmlu_pro_health_biology"
    answer = raw["answer"]
    if isinstance(answer, int) and not isinstance(answer, bool):
        answer = LETTERS[answer] if 0 <= answer < len(options) else str(answer)
    qid = raw.get("question_id")
    q = make_question(
        id=f"{dataset}-{qid}" if qid is not None else _id_from(dataset, raw["question"]),
        dataset_name=dataset, split=_split(ctx, raw.get("split")), question=raw["question"],
        options=_letter_options(options), answer_idx=answer, source=ctx.source,
        meta={"category": raw["category"], "orig_id": qid, "mmlu_src": raw.get("src")},
    )
    return Converted(question=q)


def convert_gpqa(raw: Mapping[str, Any], ctx: Context) -> Converted:
    """GPQA: the correct answer is shuffled among the 4 choices, deterministically per question."""
    _need(raw, "Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
    correct = raw["Correct Answer"]
    choices = [correct, raw["Incorrect Answer 1"], raw["Incorrect Answer 2"], raw["Incorrect Answer 3"]]
    for c in choices:
        if not isinstance(c, str) or not c.strip():
            raise InputError("an answer column is empty")
    key = str(raw.get("Record ID") or raw["Question"])
    seed = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16)
    order = sorted(range(4), key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    shuffled = [choices[i].strip() for i in order]
    dataset = ctx.dataset_name or "gpqa"
    q = make_question(
        id=f"{dataset}-{raw['Record ID']}" if raw.get("Record ID") else _id_from(dataset, raw["Question"]),
        dataset_name=dataset, split=_split(ctx), question=str(raw["Question"]).strip(),
        options=_letter_options(shuffled), answer_idx=LETTERS[order.index(0)], source=ctx.source,
        meta={k: raw.get(k) for k in ("High-level domain", "Subdomain", "Record ID") if raw.get(k)},
    )
    return Converted(question=q)


def convert_medbullets(raw: Mapping[str, Any], ctx: Context) -> Converted:
    _need(raw, "question", "opa", "opb", "opc", "opd", "answer_idx")
    opts = [raw["opa"], raw["opb"], raw["opc"], raw["opd"]]
    ope = raw.get("ope")
    if isinstance(ope, str) and ope.strip():
        opts.append(ope)
    dataset = ctx.dataset_name or ("medbullets_op5" if len(opts) == 5 else "medbullets_op4")
    q = make_question(
        id=_id_from(dataset, raw["question"]), dataset_name=dataset, split=_split(ctx),
        question=raw["question"], options=_letter_options(opts),
        answer_idx=str(raw["answer_idx"]).strip().upper(), answer=raw.get("answer"),
        source=ctx.source, meta={"link": raw.get("link")} if raw.get("link") else {},
    )
    return Converted(question=q)


_CHOICES_RE = re.compile(r"\n*\s*Answer Choices:.*\Z", re.S)


def convert_medxpertqa(raw: Mapping[str, Any], ctx: Context) -> Converted:
    """MedXpertQA Text: `label` is the answer letter; the `Answer Choices:` block is stripped."""
    _need(raw, "id", "question", "options", "label")
    text = raw["question"]
    if isinstance(text, str):
        text = _CHOICES_RE.sub("", text).rstrip()
    dataset = ctx.dataset_name or "medxpertqa"
    q = make_question(
        id=f"{dataset}-{str(raw['id']).lower()}", dataset_name=dataset, split=_split(ctx),
        question=text, options=raw["options"], answer_idx=raw["label"], source=ctx.source,
        meta={"orig_id": raw["id"], **{k: raw[k] for k in ("question_type", "medical_task", "body_system") if k in raw}},
    )
    return Converted(question=q)


_HLE_CHOICE_RE = re.compile(r"^\s*([A-Z])[.)]\s+(.*\S)\s*$")
HLE_BIOMED = ("biology/medicine",)


def convert_hle(raw: Mapping[str, Any], ctx: Context) -> Converted:
    """HLE: keep text-only multiple-choice questions of the Biology/Medicine category."""
    _need(raw, "id", "question", "answer", "answer_type", "category")
    if str(raw["category"]).lower() not in HLE_BIOMED:
        return Converted(skip_reason=f"HLE category {raw['category']!r} (only Biology/Medicine kept)")
    if raw["answer_type"] != "multipleChoice":
        return Converted(skip_reason="HLE answer_type is not multipleChoice")
    if raw.get("image"):
        return Converted(skip_reason="HLE question needs an image")
    text = raw["question"]
    if not isinstance(text, str) or "Answer Choices:" not in text:
        raise InputError("multipleChoice question has no 'Answer Choices:' block")
    stem, _, block = text.partition("Answer Choices:")
    options: dict[str, str] = {}
    for line in block.splitlines():
        m = _HLE_CHOICE_RE.match(line)
        if m:
            options[m.group(1)] = m.group(2)
        elif line.strip() and options:
            last = list(options)[-1]
            options[last] += "\n" + line.strip()
    dataset = ctx.dataset_name or "hle_biomed"
    q = make_question(
        id=f"{dataset}-{raw['id']}", dataset_name=dataset, split=_split(ctx), question=stem.strip(),
        options=options, answer_idx=str(raw["answer"]).strip(), source=ctx.source,
        meta={"raw_subject": raw.get("raw_subject"), "canary": "HLE: not for training or redistribution"},
    )
    return Converted(question=q)


@dataclass(frozen=True)
class Adapter:
    name: str
    convert: Callable[[Mapping[str, Any], Context], Converted]
    signature: frozenset[str]  # keys whose presence identifies the format
    dataset_name: str | None = None  # forced dataset name (lancet, nejm)
    prepare: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]] | None = None


ADAPTERS: dict[str, Adapter] = {
    "canonical": Adapter("canonical", convert_canonical, frozenset({"id", "dataset_name", "question", "options", "answer_idx"})),
    "biomed_r1": Adapter("biomed_r1", convert_biomed_r1, frozenset({"question", "options", "answer_idx", "reasoning_prob"})),
    "medqa": Adapter("medqa", convert_medqa, frozenset({"question", "options", "answer_idx", "meta_info"})),
    "medmcqa": Adapter("medmcqa", convert_medmcqa, frozenset({"question", "opa", "opb", "opc", "opd", "cop"}), prepare=prepare_medmcqa),
    "pubmedqa": Adapter("pubmedqa", convert_pubmedqa, frozenset({"QUESTION", "CONTEXTS", "final_decision"})),
    "pubmedqa_hf": Adapter("pubmedqa", convert_pubmedqa, frozenset({"pubid", "question", "context", "final_decision"})),
    "mmlu_pro": Adapter("mmlu_pro", convert_mmlu_pro, frozenset({"question_id", "question", "options", "answer", "category"})),
    "gpqa": Adapter("gpqa", convert_gpqa, frozenset({"Question", "Correct Answer", "Incorrect Answer 1"})),
    "medbullets": Adapter("medbullets", convert_medbullets, frozenset({"question", "opa", "opb", "opc", "opd", "answer_idx"})),
    "medxpertqa": Adapter("medxpertqa", convert_medxpertqa, frozenset({"id", "question", "options", "label", "question_type"})),
    "hle": Adapter("hle", convert_hle, frozenset({"id", "question", "answer", "answer_type", "category"})),
    "lancet": Adapter("lancet", convert_biomed_r1, frozenset(), dataset_name="lancet"),
    "nejm": Adapter("nejm", convert_biomed_r1, frozenset(), dataset_name="nejm"),
}

# What `--benchmark` accepts: a benchmark name, or a format name.
BENCHMARK_CHOICES = sorted(set(ADAPTERS) - {"pubmedqa_hf"})


def detect(first: Mapping[str, Any]) -> Adapter:
    """Pick the adapter whose signature the first record matches, if exactly one fits best."""
    keys = set(first)
    if not keys:
        raise InputError("the first record has no fields")
    fits = [a for name, a in ADAPTERS.items() if a.signature and a.signature <= keys]
    if "options" in keys and isinstance(first.get("options"), str):
        # options as a JSON string is the BioMed-R1 layout whatever else is present
        fits = [ADAPTERS["biomed_r1"]]
    if ADAPTERS["canonical"] in fits and isinstance(first.get("options"), Mapping):
        fits = [ADAPTERS["canonical"]]
    if ADAPTERS["medbullets"] in fits and ADAPTERS["medmcqa"] in fits:
        fits = [ADAPTERS["medmcqa"]]
    if len(fits) == 1:
        return fits[0]
    names = ", ".join(sorted(a.name for a in fits)) or "none"
    raise InputError(
        f"cannot tell which benchmark format this is (fields: {', '.join(sorted(keys)[:12])}; "
        f"formats that fit: {names}); pass --benchmark with one of: {', '.join(BENCHMARK_CHOICES)}"
    )


def by_name(name: str) -> Adapter:
    key = name.strip().lower()
    if key in ADAPTERS:
        return ADAPTERS[key]
    raise InputError(f"unknown --benchmark {name!r}; choose one of: {', '.join(BENCHMARK_CHOICES)}")
