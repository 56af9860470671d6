"""Licences of the source benchmarks and which of them may not be redistributed (pure).

One place for every caller: ingest notes, release selection (`is_restricted`), the dataset
card's licence table (`license_of`, `restriction_note`). Names are matched as prefixes of
`dataset_name`, case-insensitively (`GPQA_Medical_test` is GPQA).
"""

from __future__ import annotations

# Benchmarks whose licence forbids redistributing their question text, and why.
RESTRICTION_NOTES: dict[str, str] = {
    "gpqa": "GPQA: its authors ask that the questions not be revealed in plain text online (canary).",
    "hle": "Humanity's Last Exam: carries a canary string; not for training or redistribution.",
    "medbullets": "MedBullets: no licence for redistribution (content from a commercial site).",
    "lancet": "Lancet clinical cases: copyrighted, never released publicly.",
    "nejm": "NEJM image/case challenges: copyrighted, never released publicly.",
}
RESTRICTED_PREFIXES: tuple[str, ...] = tuple(RESTRICTION_NOTES)

# Licence of each known source benchmark (Hub licence ids); unknown benchmarks: "unknown".
LICENSES: dict[str, str] = {
    "medqa": "mit",
    "medmcqa": "mit",
    "pubmedqa": "mit",
    "mmlu": "mit",
    "mmlu_pro": "mit",
    "medxpertqa": "mit",
    "gpqa": "cc-by-4.0",
    "hle": "mit",
    "medbullets": "other",
    "lancet": "other",
    "nejm": "other",
}


def _restricted_prefix(dataset_name: str) -> str | None:
    name = dataset_name.lower()
    return next((p for p in RESTRICTED_PREFIXES if name.startswith(p)), None)


def is_restricted(dataset_name: str) -> bool:
    """True if the benchmark's licence forbids redistribution (prefix match, any case)."""
    return _restricted_prefix(dataset_name) is not None


def restriction_note(dataset_name: str) -> str | None:
    """Why a benchmark may not be redistributed, or None if it may."""
    p = _restricted_prefix(dataset_name)
    return RESTRICTION_NOTES[p] if p is not None else None


def license_of(benchmark: str) -> str:
    """Hub licence id for a benchmark name (longest known prefix wins, any case)."""
    name = benchmark.lower()
    best = max((p for p in LICENSES if name.startswith(p)), key=len, default="")
    return LICENSES[best] if best else "unknown"


def restricted_sql(column: str = "dataset_name") -> str:
    """The same rule as a SQL boolean expression over `column` (for release queries)."""
    return "(" + " OR ".join(f"starts_with(lower({column}), '{p}')" for p in RESTRICTED_PREFIXES) + ")"
