"""Benchmark names, defined once (pure): ours in the store, and BioMed-R1-Eval's in a release.

Two names per benchmark:

- the **internal name** (`questions.dataset_name`, `--benchmark`, `--cap`, licences):
  `medqa`, `medqa_op5`, `medmcqa`, `pubmedqa`, `mmlu_pro_health_biology`, `gpqa`,
  `medbullets_op4`, `medbullets_op5`, `medxpertqa`, `hle_biomed`, `lancet`, `nejm`.
  `canonical_name` maps other spellings to it (`MedQA_USLME_test` -> `medqa`,
  `GPQA_Medical_test` -> `gpqa`); it is what ingest stores.
- the **release config name**: BioMed-R1-Eval's config names (`release_config_name`,
  `RELEASE_CONFIGS`), so that scripts written for the paper's dataset load a release
  unchanged. A benchmark the paper does not have keeps its internal name as its config name
  (`medqa_op5`, and anything a user ingests under another name).

The `dataset_name` column of a release holds the **internal name**, not the config name:
re-ingesting a release (`curation ingest <parquet>`, adapter `biomed_r1`) then gives back
the same benchmark for every row, and the alias table and `curation evaluate` use the
same names as the store. The config names also map back (`canonical_name(config) ==
internal`), so the paper's own files ingest under the same names.

MedQA: the 4-option test set (the paper's `medqa`) is `medqa`; the 5-option variant is
`medqa_op5` (names containing `op5` or `5_option(s)`), never merged into `medqa`.
"""

from __future__ import annotations

import functools
import re

# internal name -> BioMed-R1-Eval config name (the paper's 11 benchmarks)
RELEASE_CONFIGS: dict[str, str] = {
    "gpqa": "GPQA_Medical_test",
    "lancet": "Lancet",
    "medxpertqa": "MedXpertQA",
    "nejm": "NEJM",
    "hle_biomed": "hle_biomed",
    "medbullets_op4": "medbullets_op4",
    "medbullets_op5": "medbullets_op5",
    "medmcqa": "medmcqa",
    "medqa": "medqa",
    "mmlu_pro_health_biology": "mmlu_health_biology",
    "pubmedqa": "pubmedqa",
}

# How other files spell a benchmark: (pattern on the normalized name, internal name), first match wins.
_SPELLINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), name) for p, name in (
        (r"^medbullets.*(op5|5_?options?)", "medbullets_op5"),
        (r"^medbullets", "medbullets_op4"),
        (r"^medxpert", "medxpertqa"),
        (r"^medmcqa", "medmcqa"),
        (r"^med_?qa.*(op5|5_?options?)", "medqa_op5"),
        (r"^med_?qa", "medqa"),
        (r"^pubmedqa", "pubmedqa"),
        (r"^mmlu", "mmlu_pro_health_biology"),
        (r"^gpqa", "gpqa"),
        (r"^(hle|humanity)", "hle_biomed"),
        (r"^lancet", "lancet"),
        (r"^nejm", "nejm"),
    )
)


@functools.lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """The internal name of a benchmark as any release spells it (lower case, `_` for
    punctuation; unknown names are kept, normalized)."""
    low = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    return next((canon for pattern, canon in _SPELLINGS if pattern.search(low)), low)


def release_config_name(benchmark: str) -> str:
    """The release config of an internal benchmark name (BioMed-R1-Eval's, or its own)."""
    return RELEASE_CONFIGS.get(benchmark, benchmark)
