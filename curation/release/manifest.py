"""The release manifest (`manifest.json`): its typed shape, and reading a release back.

Every writer has a reader: `read_manifest`, `verify_release` (every file against its
sha256, nothing extra) and `read_config` (one config as an Arrow table).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pyarrow as pa

from curation.errors import InputError, NotFoundError
from curation.schema import validate_name
from curation.staging import file_sha256

# 1.1: provenance columns (source_label*, in_model_training).
# 2.0: configs named as BioMed-R1-Eval's (`curation.benchmarks`), `adversarial_trace_0..2`
#      columns, configs `biomed_r1` (BioMed-R1-Train's fields), `aliases`, opt-in `m23k_clean`;
#      `train_reasoning` gains `reasoning`; `command` and `source` hold no local paths.
RELEASE_SCHEMA_VERSION = "2.0"
MANIFEST = "manifest.json"
CHART = "reasoning_share.png"
RESERVED_CONFIGS = ("all", "gold", "train_reasoning", "biomed_r1", "m23k_clean", "aliases")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")


class ConfigEntry(TypedDict):
    split: str
    path: str
    rows: int
    kind: str  # 'benchmark' | 'all' | 'gold' | 'train' | 'pool' | 'aliases'
    benchmark: NotRequired[str]  # kind 'benchmark': the internal name (its `dataset_name` values)
    features: NotRequired[list[dict[str, Any]]]  # the card's `dataset_info` features (`card.config_features`)


class ModelInfo(TypedDict, total=False):
    version: str
    base_model: str
    kind: str
    round: int | None
    n_train: int | None
    train_source: str | None
    threshold: float | None
    created_at: str | None
    n_seen: int  # question ids it trained or validated on (recorded in the store)


class Selection(TypedDict):
    eval_split: str
    train_split: str
    train_threshold: float | None
    train_threshold_rule: str
    caps: dict[str, int]
    n_removed_by_caps: int
    include_restricted: bool
    pool_config: bool  # `m23k_clean` written
    restricted_prefixes: list[str]
    excluded_benchmarks: list[str]


class Comparison(TypedDict):
    """Two label sources on the same items (`curation.labels.label_comparison`)."""

    n_items: int
    percent_agreement: float | None
    percent_agreement_ci: list[float | None]
    cohen_kappa: float | None


class ModelAgreement(Comparison):
    held_out_only: bool  # always True: items the model trained on are left out
    n_excluded_in_training: int
    in_sample: Comparison  # the excluded items, reported apart (never next to the paper)


class Provenance(TypedDict):
    human_sources: list[str]
    reference_sources: list[dict[str, Any]]  # {name, n_questions}
    human_vs_reference: Comparison
    model_vs_reference_held_out: Comparison | None
    rule: str


class Manifest(TypedDict, total=False):
    schema_version: str
    version: str
    data_as_of: str | None
    store: dict[str, Any]
    model: ModelInfo | None
    selection: Selection
    requires_private: bool
    configs: dict[str, ConfigEntry]
    row_counts: dict[str, int]
    benchmarks: list[dict[str, Any]]
    annotation: dict[str, Any]
    model_agreement_on_gold: ModelAgreement | None
    provenance: Provenance
    decontamination: dict[str, Any]
    train_sources: list[dict[str, Any]]
    licenses: dict[str, str]
    command: list[str] | None
    software: dict[str, str]
    chart: str | None
    guidelines: dict[str, Any]
    files: dict[str, dict[str, Any]]
    content_hash: str
    contact: str | None  # who to contact about the dataset (`--contact`, `CURATION_CONTACT`)
    changes: dict[str, Any] | None  # `release.diff.diff_releases` against the previous recorded release


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise InputError(
            f"release version {version!r} is not valid: use letters, digits, '.', '_' or '-' "
            "(at most 64 characters, starting with a letter or digit), e.g. v1.0"
        )
    return version


def parse_caps(values: Sequence[str] | Mapping[str, int] | None) -> dict[str, int]:
    """`["medmcqa=1000", ...]` (or a mapping) -> {benchmark: cap}."""
    if not values:
        return {}
    if isinstance(values, Mapping):
        items = list(values.items())
    else:
        items = []
        for v in values:
            if "=" not in v:
                raise InputError(f"--cap {v!r}: expected BENCHMARK=N, e.g. --cap medmcqa=1000")
            k, _, num = v.partition("=")
            try:
                items.append((k.strip(), int(num)))
            except ValueError:
                raise InputError(f"--cap {v!r}: N must be a whole number") from None
    caps: dict[str, int] = {}
    for k, n in items:
        validate_name(k, "--cap benchmark")
        if int(n) < 0:
            raise InputError(f"--cap {k}={n}: N must be >= 0")
        caps[k] = int(n)
    return dict(sorted(caps.items()))


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise NotFoundError(f"{folder}: not a release folder (no {MANIFEST}); build one with `curation release build`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg})", location=f"{path}:{exc.lineno}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a manifest is a JSON object", location=str(path))
    return data  # type: ignore[return-value]


def verify_release(folder: str | os.PathLike[str]) -> Manifest:
    """Check every file listed in the manifest against its sha256 and that no file is extra."""
    root = Path(folder)
    manifest = read_manifest(root)
    listed = manifest.get("files") or {}
    problems = []
    for rel, meta in sorted(listed.items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif file_sha256(p) != meta.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the manifest")
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    extra = sorted(present - set(listed) - {MANIFEST})
    problems += [f"{e}: not listed in the manifest" for e in extra]
    if problems:
        raise InputError(f"{root}: release folder does not match its manifest:\n" + "\n".join(problems))
    return manifest


def read_config(folder: str | os.PathLike[str], config: str = "all") -> pa.Table:
    """One config of a release as an Arrow table (the reader matching the writer)."""
    manifest = read_manifest(folder)
    configs = manifest.get("configs", {})
    if config not in configs:
        raise NotFoundError(f"{folder}: no config {config!r}; configs are {', '.join(configs)}")
    import pyarrow.parquet as pq

    return pq.read_table(Path(folder) / configs[config]["path"])
