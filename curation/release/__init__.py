"""Releases: versioned export folders in Hugging Face Hub layout, and publishing them.

A release folder (schema 2.0) holds:

- one config per benchmark, named as BioMed-R1-Eval names it (`MedXpertQA`, `GPQA_Medical_test`,
  `medqa`, ...: `curation.benchmarks`), at `data/<config>/test.parquet`, and `data/all/test.parquet`:
  BioMed-R1-Eval's 12 fields in its order (`id, question, answer, options` (JSON text),
  `answer_idx, dataset_name, adversarial_trace_0..2, reasoning_prob, is_reasoning,
  reasoning_threshold`), then people's labels (`human_label, n_annotators,
  annotator_agreement, label_source`), `model_version`, and provenance: `source_label` /
  `source_label_origin` (a benchmark's own tag, a reference, never a human label) and
  `in_model_training` (the model trained or validated on the row: its `reasoning_prob` is
  in-sample);
- `data/gold/test.parquet`: the gold set with every person's label (pseudonymized);
- the reasoning-heavy training questions, decontaminated against every evaluation question in
  the store (`curation.decontam`), as `train_reasoning` (our columns, with the `reasoning`
  trace) and `biomed_r1` (BioMed-R1-Train's 8 fields); with `pool_config`, `m23k_clean`
  (every decontaminated training-pool row);
- `aliases`: ids merged at ingest as exact duplicates -> the id kept (`curation evaluate` reads it);
- `README.md` (the dataset card, `curation.card`), `reasoning_share.png`, `manifest.json`
  (with `changes` against the previous recorded release: `diff`).

Modules: `snapshot` (one read of the store), `shape` (rows, in an in-memory DuckDB),
`figures` (the reported numbers), `build` (the steps), `manifest` (typed manifest and the
readers), `diff` (what changed between two releases), `publish` (to the Hub). Licences: `curation.licenses`.
"""

from curation.release.build import build_release
from curation.release.manifest import (
    CHART,
    MANIFEST,
    RELEASE_SCHEMA_VERSION,
    RESERVED_CONFIGS,
    Manifest,
    parse_caps,
    read_config,
    read_manifest,
    validate_version,
    verify_release,
)
from curation.release.publish import list_releases, publish_release
from curation.release.shape import EVAL_COLUMNS, PARQUET_OPTIONS
from curation.release.snapshot import Snapshot, take_snapshot
from curation.staging import file_sha256

__all__ = [
    "CHART",
    "EVAL_COLUMNS",
    "MANIFEST",
    "PARQUET_OPTIONS",
    "RELEASE_SCHEMA_VERSION",
    "RESERVED_CONFIGS",
    "Manifest",
    "Snapshot",
    "build_release",
    "list_releases",
    "file_sha256",
    "parse_caps",
    "publish_release",
    "read_config",
    "read_manifest",
    "take_snapshot",
    "validate_version",
    "verify_release",
]
