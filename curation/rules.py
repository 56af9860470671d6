"""The rules every caller shares, defined once (pure: values in, values out).

Label provenance. Every label has an *origin*:

- ``person``: a person labeled it (in the app, or in Label Studio);
- ``adjudication``: a maintainer's final decision on a disagreement;
- ``reference``: an imported tag, e.g. MedXpertQA's own Reasoning/Understanding tags, with
  the name of its source (the annotator column, ``import:<source>``);
- ``model``: a classifier's prediction (the ``predictions`` table, never ``annotations``).

Only people are raters: only their labels fill overlap slots (K), count in majorities and
in agreement. A reference tag is reported beside human labels, never as one. Every module
that asks "who is a rater", "what is the human label" or "which labels count" calls this
one; the store turns `HUMAN_SOURCES` into SQL with `curation.store.sql.in_list`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Origin = Literal["person", "adjudication", "reference", "model"]

# annotations.source -> origin. `import` is a benchmark's own tag: a reference, not a rater.
SOURCE_ORIGINS: dict[str, Origin] = {"app": "person", "label_studio": "person", "import": "reference"}
ANNOTATION_SOURCES: tuple[str, ...] = tuple(SOURCE_ORIGINS)
HUMAN_SOURCES: tuple[str, ...] = tuple(s for s, o in SOURCE_ORIGINS.items() if o == "person")
REFERENCE_SOURCES: tuple[str, ...] = tuple(s for s, o in SOURCE_ORIGINS.items() if o == "reference")
REFERENCE_PREFIX = "import:"
IMPORTED_MODEL_KIND = "imported"  # models rows for predictions that came with a dataset


def origin_of(source: str) -> Origin:
    """The origin of an annotation row's `source`."""
    try:
        return SOURCE_ORIGINS[source]
    except KeyError:
        raise ValueError(f"unknown annotation source {source!r}; one of {', '.join(SOURCE_ORIGINS)}") from None


def is_human(source: str) -> bool:
    """True if a label from this source was given by a person (a rater)."""
    return source in HUMAN_SOURCES


def human_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Only the rows (each with a `source`) whose label a person gave."""
    return [dict(r) for r in rows if is_human(str(r["source"]))]


def reference_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Only the imported reference tags among the rows (each with a `source`)."""
    return [dict(r) for r in rows if origin_of(str(r["source"])) == "reference"]


def reference_name(annotator: str) -> str:
    """The source named by an imported tag's annotator: `import:medxpertqa_authors` ->
    `medxpertqa_authors`."""
    return annotator[len(REFERENCE_PREFIX):] if annotator.startswith(REFERENCE_PREFIX) else annotator


def reference_tags(rows: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """question_id -> (tag, source name) from imported reference rows (`question_id`,
    `annotator`, `label`). Several sources on one question: their strict majority, the source
    names joined by ','; a tie gives no tag."""
    by_q: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_q.setdefault(str(r["question_id"]), []).append((str(r["label"]), reference_name(str(r["annotator"]))))
    out: dict[str, tuple[str, str]] = {}
    for q, tags in by_q.items():
        m = majority([t[0] for t in tags])
        if m is not None:
            out[q] = (m, ",".join(sorted({t[1] for t in tags})))
    return out


def rater_set(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The human raters among label rows (`annotator`, `source`), sorted."""
    return sorted({str(r["annotator"]) for r in rows if is_human(str(r["source"]))})


# -- the human label ---------------------------------------------------------------------


def majority(labels: Sequence[str]) -> str | None:
    """The most frequent label if it is the only most frequent one; None if empty or tied."""
    if not labels:
        return None
    top = Counter(labels).most_common()
    if len(top) > 1 and top[0][1] == top[1][1]:
        return None
    return top[0][0]


LabelSource = Literal["adjudicated", "majority", "single", "tie"]


@dataclass(frozen=True)
class HumanLabel:
    """One question's human label: an adjudication wins, else the strict majority of the
    current labels people gave; a tie gives no label."""

    label: str | None
    label_source: LabelSource | None  # None when nobody labeled and nobody adjudicated
    n_annotators: int  # people with a current label
    agreement: float | None  # share of those labels equal to the most frequent one


def human_label(votes: Sequence[str], adjudicated: str | None = None) -> HumanLabel:
    """The human label from people's current labels (`votes`) and the latest adjudication."""
    n = len(votes)
    agreement = max(Counter(votes).values()) / n if n else None
    if adjudicated is not None:
        return HumanLabel(adjudicated, "adjudicated", n, agreement)
    if n == 0:
        return HumanLabel(None, None, 0, None)
    m = majority(votes)
    if m is None:
        return HumanLabel(None, "tie", n, agreement)
    return HumanLabel(m, "single" if n == 1 else "majority", n, agreement)


def human_labels(
    rows: Iterable[tuple[str, str, str]], adjudications: Mapping[str, str] | None = None
) -> dict[str, HumanLabel]:
    """`question_id -> HumanLabel` from people's `(question_id, rater, label)` rows and the
    latest adjudication per question. Pass human rows only (see `human_rows`)."""
    votes: dict[str, list[str]] = {}
    for qid, _rater, label in rows:
        votes.setdefault(qid, []).append(label)
    adj = dict(adjudications or {})
    return {q: human_label(votes.get(q, []), adj.get(q)) for q in sorted(set(votes) | set(adj))}


# -- leakage ---------------------------------------------------------------------------


def held_out(question_ids: Iterable[str], seen_by_model: Iterable[str]) -> list[str]:
    """The ids a model never trained or validated on, in the given order. Every
    model-vs-human figure is computed on these only."""
    seen = set(seen_by_model)
    return [q for q in question_ids if q not in seen]
